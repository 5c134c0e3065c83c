"""The README's dashboard pictures, taken with a headless Chromium.

    python tools/dashboard_screenshots.py [--out docs/images] [--epochs 3] [--example 0]

1. Trains ``make demo``'s run (simple_cnn on the full Fashion-MNIST, 3 epochs, batch 128,
   Adam, lr 0.002, one-cycle, 5% validation) through :func:`filterbank.train.run.train` with
   ``dashboard=0``, a live event-stream client connected (so the pictures keep coming). In
   the middle of epoch ``--pause-epoch`` it presses "pause" through the token-checked
   ``/control/pause`` endpoint, screenshots the page (``?snapshot=1``, so that Chromium's
   ``--screenshot`` returns) to ``dashboard-training.png`` and resumes.
2. Serves the finished run (:func:`filterbank.train.dashboard.serve`) and screenshots its
   page with test image ``--example`` in the canvas (the page's ``?image=`` query: the
   pixels as base64, drawn as if by hand) to ``dashboard-serve.png``.

PNGs over ``--max-kb`` are quantized to a 64-colour palette with Pillow. Needs ``chromium``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from filterbank.train import dashboard as dashboard_pkg  # noqa: E402
from filterbank.train.dashboard import headless  # noqa: E402

DEMO = {"model": "simple_cnn", "dataset": "fashion-mnist", "batch_size": 128,
        "optimizer": "adam", "lr": 0.002, "schedule": "onecycle", "val_split": 0.05}
"""The Makefile's DEMO_ARGS (but --epochs, an option here)."""


def chromium_shot(chromium: str, url: str, png: Path, width: int, height: int) -> None:
    try:
        headless.screenshot(chromium, url, png, width, height)
    except RuntimeError as e:
        raise SystemExit(str(e)) from None


def chromium_dom(chromium: str, url: str) -> str:
    try:
        return headless.dump_dom(chromium, url, budget_ms=8000)
    except RuntimeError as e:
        raise SystemExit(str(e)) from None


def check_dom(dom: str, what: str, needles: list[str]) -> None:
    errors = headless.js_errors(dom)
    if errors is None or errors.strip():
        raise SystemExit(f"{what}: JavaScript errors: {errors or 'no #js-errors'}")
    missing = [n for n in needles if n not in dom]
    if missing:
        raise SystemExit(f"{what}: the page lacks {missing}")


def shrink(png: Path, max_kb: int) -> None:
    """Quantize ``png`` to a palette when it is over ``max_kb``."""
    if png.stat().st_size <= max_kb * 1024:
        return
    from PIL import Image

    for colors in (128, 64, 32):
        with Image.open(png) as im:
            q = im.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
        q.save(png, optimize=True)
        if png.stat().st_size <= max_kb * 1024:
            return


def drain(url: str, stop: threading.Event) -> None:
    """A live page: read the event stream until training ends (keeps pictures coming)."""
    conn = http.client.HTTPConnection(url.split("//", 1)[1].split("/", 1)[0], timeout=120)
    try:
        conn.request("GET", "/events")
        stream = conn.getresponse()
        while not stop.is_set() and stream.readline():
            pass
    except OSError:
        pass
    finally:
        conn.close()


def train_and_shoot(args, chromium: str, run: Path) -> None:
    from filterbank.train.run import train

    dashes: list = []
    original = dashboard_pkg.Dashboard.start

    def start(self):  # note the training's Dashboard (train() makes it) to reach its URL
        dashes.append(self)
        return original(self)

    dashboard_pkg.Dashboard.start = start
    result: dict = {}

    def fit():
        try:
            result["run"] = train(**DEMO, epochs=args.epochs, limit=args.limit, out=run,
                                  dashboard=0, progress=False)
        except BaseException as e:  # noqa: BLE001 - reported below
            result["error"] = e

    thread = threading.Thread(target=fit, name="train")
    t0 = time.perf_counter()
    thread.start()
    stop = threading.Event()
    reader = None
    try:
        while not (dashes and dashes[0].url) and thread.is_alive():
            time.sleep(0.05)
        if not dashes:
            raise SystemExit(f"training ended without a dashboard: {result.get('error')!r}")
        dash = dashes[0]
        url = dash.url
        reader = threading.Thread(target=drain, args=(url, stop), daemon=True)
        reader.start()
        pause_epoch = min(args.pause_epoch, args.epochs)
        while thread.is_alive():  # halfway through epoch pause_epoch (1-based)
            points = dash._points
            per_epoch = dash._steps_per_epoch
            if points and points[-1]["epoch"] >= pause_epoch and (
                    pause_epoch == 1 or (per_epoch and points[-1]["step"]
                                         >= (pause_epoch - 1 + args.pause_at) * per_epoch)):
                break
            time.sleep(0.05)
        if not thread.is_alive():
            raise SystemExit("training ended before the pause point; see its output above")
        if headless.post(url, "/control/pause") != 202:
            raise SystemExit("the dashboard refused the pause")
        while not dash.paused and thread.is_alive():
            time.sleep(0.02)
        time.sleep(0.3)
        step = dash._points[-1]["step"]
        print(f"paused at step {step} (epoch {dash._points[-1]['epoch']}) after "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        try:
            check_dom(chromium_dom(chromium, url + "&snapshot=1"), "training page",
                      ['data-layer="input"', 'class="pred"', 'data-series="loss"'])
            png = args.out / "dashboard-training.png"
            chromium_shot(chromium, url + "&snapshot=1", png, args.width, args.train_height)
        finally:
            headless.post(url, "/control/resume")
        print(f"wrote {png}", flush=True)
    finally:
        thread.join()
        stop.set()
        dashboard_pkg.Dashboard.start = original
    if "error" in result:
        raise result["error"]
    print(f"trained in {time.perf_counter() - t0:.0f} s: {run}", flush=True)


def serve_and_shoot(args, chromium: str, run: Path) -> None:
    from filterbank.data.datasets import FashionMNIST
    from filterbank.train.dashboard import serve

    test = FashionMNIST(train=False)
    image = np.asarray(test.data[args.example], dtype=np.uint8)
    label = test.classes[int(test.targets[args.example])]
    b64 = base64.urlsafe_b64encode(image.tobytes()).decode("ascii")
    server = serve(run, port=0, block=False)
    try:
        url = f"{server.url}&image={b64}"
        check_dom(chromium_dom(chromium, url), "serve page",
                  ['class="row"', 'data-layer="input"'])
        png = args.out / "dashboard-serve.png"
        chromium_shot(chromium, url, png, args.width, args.serve_height)
    finally:
        server.close()
    print(f"wrote {png} (test image {args.example}: {label})", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    p.add_argument("--epochs", type=int, default=3, help="as make demo: 3")
    p.add_argument("--limit", type=int, default=None, help="training images (default: all)")
    p.add_argument("--pause-epoch", type=int, default=3,
                   help="1-based; from 3 on, the accuracy curve has two points")
    p.add_argument("--pause-at", type=float, default=0.5, help="fraction of that epoch")
    p.add_argument("--example", type=int, default=0, help="test image in the serve picture")
    p.add_argument("--run", type=Path, default=None,
                   help="run folder to write (default: a temporary one); with --serve-only, "
                        "the run to serve")
    p.add_argument("--serve-only", action="store_true", help="skip training; serve --run")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--train-height", type=int, default=2300)
    p.add_argument("--serve-height", type=int, default=1400)
    p.add_argument("--max-kb", type=int, default=300)
    args = p.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium (Debian: apt-get install -y chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fb-dashboard-") as tmp:
        run = args.run or Path(tmp) / "run"
        if args.serve_only:
            if args.run is None:
                raise SystemExit("--serve-only needs --run")
        else:
            train_and_shoot(args, chromium, run)
        serve_and_shoot(args, chromium, run)
    for name in ("dashboard-training.png", "dashboard-serve.png"):
        png = args.out / name
        if png.exists():
            shrink(png, args.max_kb)
            print(f"{png}: {png.stat().st_size // 1024} KB", flush=True)


if __name__ == "__main__":
    main()
