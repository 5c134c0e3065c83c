"""The cost of watching: the same training with and without the live dashboard page open.

simple_cnn (the demo model) on the first ``--images`` Fashion-MNIST training images, one epoch,
batch 128, Adam (lr 0.002): once bare, once with a :class:`~filterbank.train.dashboard.Dashboard`
callback (pictures every ``--every`` steps, 50 test images' predictions) and a connected
event-stream client that reads every event, as an open page does. Runs alternate
(bare, dashboard, then dashboard, bare, ...) for ``--pairs`` pairs, each from the same seed;
prints each run's seconds, the medians and their ratio, and writes
``bench/results/dashboard.json``.

Run: ``.venv/bin/python bench/dashboard.py [--pairs 3] [--images 20000] [--every 20]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import filterbank as fb  # noqa: E402
from filterbank import nn  # noqa: E402
from filterbank.data.datasets import FashionMNIST  # noqa: E402
from filterbank.models import get_model  # noqa: E402
from filterbank.train import Trainer  # noqa: E402
from filterbank.train.dashboard import Dashboard  # noqa: E402

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's pixel statistics


def arrays(train: bool, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    ds = FashionMNIST(train=train)
    x = np.asarray(ds.data[:n], dtype=np.float32)[:, None] / 255
    return ((x - MEAN) / STD).astype(np.float32), np.asarray(ds.targets[:n], dtype=np.int64)


class Reader(threading.Thread):
    """An open page: reads the event stream, every event, until training ends it."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection(url.split("//", 1)[1].split("/", 1)[0],
                                               timeout=120)
        self.conn.request("GET", "/events")
        self.stream = self.conn.getresponse()
        self.events: dict[str, int] = {}
        self.bytes = 0
        self.hello = threading.Event()

    def run(self):
        try:
            for line in self.stream:
                self.bytes += len(line)
                if line.startswith(b"event: "):
                    kind = line[7:].strip().decode()
                    self.events[kind] = self.events.get(kind, 0) + 1
                    if kind == "hello":
                        self.hello.set()
                elif line.startswith(b"data: "):
                    json.loads(line[6:])  # as the page does
        except OSError:
            pass
        finally:
            self.conn.close()


def one_run(x, y, samples, with_dashboard: bool, batch_size: int, every: int) -> dict:
    fb.manual_seed(0)
    model = get_model("simple_cnn")
    trainer = Trainer(model, fb.optim.Adam(model.parameters(), lr=0.002),
                      nn.CrossEntropyLoss(), metrics=["accuracy"], progress=False, seed=0)
    callbacks, reader = [], None
    if with_dashboard:
        dash = Dashboard(port=0, every=every, samples=samples, classes=FashionMNIST.classes,
                         epochs=1, verbose=0)
        reader = Reader(dash.start())
        reader.start()
        if not reader.hello.wait(30):
            raise RuntimeError("the event stream sent no hello")
        callbacks.append(dash)
    t0 = time.perf_counter()
    trainer.fit(x, y, batch_size=batch_size, epochs=1, callbacks=callbacks)
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "loss": trainer.history["loss"][-1]}
    if reader is not None:
        reader.join(30)
        out["events"] = dict(reader.events)
        out["stream_mb"] = reader.bytes / 2**20
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--every", type=int, default=20, help="steps between pictures (as the CLI)")
    p.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "dashboard.json")
    args = p.parse_args(argv)
    x, y = arrays(True, args.images)
    samples = arrays(False, 50)
    print(f"simple_cnn, {len(x)} Fashion-MNIST images, 1 epoch, batch {args.batch_size}, "
          f"pictures every {args.every} steps; {args.pairs} pairs", flush=True)
    times: dict[str, list[float]] = {"bare": [], "dashboard": []}
    runs = []
    for i in range(args.pairs):
        order = ("bare", "dashboard") if i % 2 == 0 else ("dashboard", "bare")
        for kind in order:
            r = one_run(x, y, samples, kind == "dashboard", args.batch_size, args.every)
            times[kind].append(r["seconds"])
            runs.append({"pair": i, "kind": kind, **r})
            extra = f"  events {r['events']}, {r['stream_mb']:.1f} MiB read" \
                if "events" in r else ""
            print(f"pair {i} {kind:9s} {r['seconds']:7.2f} s  loss {r['loss']:.4f}{extra}",
                  flush=True)
    bare, dash = statistics.median(times["bare"]), statistics.median(times["dashboard"])
    print(f"median: bare {bare:.2f} s, with the dashboard and an open page {dash:.2f} s; "
          f"ratio {dash / bare:.3f} ({(dash / bare - 1) * 100:+.1f}%)", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "dashboard", "images": len(x), "batch_size": args.batch_size,
        "every": args.every, "pairs": args.pairs, "median_bare_s": bare,
        "median_dashboard_s": dash, "ratio": dash / bare, "runs": runs,
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    "machine": platform.machine()}}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
