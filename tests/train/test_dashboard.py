"""The live training dashboard (issue 13): its event stream, controls, server life cycle, and
the model page of ``filterbank serve``."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn
from filterbank.train import Trainer
from filterbank.train.dashboard import Dashboard, serve
from filterbank.train.dashboard._server import Broker
from filterbank.train.dashboard.serve import ModelServer
from filterbank.train.dashboard.snapshot import decode

N, SIZE, CLASSES = 192, 12, 3
LAYER_SHAPES = {"input": [1, 12, 12], "0": [4, 10, 10], "1": [4, 10, 10], "2": [4, 5, 5],
                "3": [100], "4": [3]}


def tiny_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(100, CLASSES))


def data():
    rng = np.random.default_rng(0)
    y = np.arange(N) % CLASSES
    x = rng.random((N, 1, SIZE, SIZE), dtype=np.float32) * 0.5
    x[:, 0, :4, :4] += (y == 0)[:, None, None]  # something to learn
    x[:, 0, -4:, -4:] += (y == 1)[:, None, None]
    return x, y


def trainer(lr: float = 0.1) -> Trainer:
    fb.manual_seed(0)
    model = tiny_model()
    return Trainer(model, fb.optim.SGD(model.parameters(), lr=lr), nn.CrossEntropyLoss(),
                   metrics=["accuracy"], progress=False)


def port_of(url: str) -> int:
    return int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


class Events:
    """Reads /events in a thread (a plain HTTP client) and keeps the parsed events."""

    def __init__(self, url: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=30)
        self.conn.request("GET", "/events")
        self.sock = self.conn.sock
        self.response = self.conn.getresponse()
        self.events: list[tuple[str, dict]] = []
        self.hello = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.hello.wait(10), "no hello event"

    def _read(self):
        kind = None
        for raw in self.response:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                self.events.append((kind, json.loads(line[6:])))
                if kind == "hello":
                    self.hello.set()

    def of(self, kind: str) -> list[dict]:
        return [d for k, d in self.events if k == kind]

    def close(self):
        self.thread.join(10)
        self.conn.close()


def post(url: str, path: str, body=None, token: str | None = "", raw: bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict]:
    token = url.split("token=", 1)[1] if token == "" else token
    conn = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=10)
    full = path + (f"?token={token}" if token is not None else "")
    payload = raw if raw is not None else json.dumps(body or {}).encode()
    conn.request("POST", full, body=payload, headers=headers or {})
    r = conn.getresponse()
    answer = json.loads(r.read() or b"{}")
    conn.close()
    return r.status, answer


def get(url: str, path: str) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=10)
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body, r.getheader("Content-Type")


def dashboard_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "filterbank-dashboard"
            or "process_request" in t.name]


def port_free(port: int) -> bool:
    """Whether a new server can listen on ``port`` (as http.server does: SO_REUSEADDR, so the
    closed connections' TIME_WAIT does not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def recorded():
    """One short run with the dashboard and a connected client: (history, events, port,
    trainer)."""
    x, y = data()
    tr = trainer()
    dash = Dashboard(port=0, every=3, samples=(x[:50], y[:50]), classes=["a", "b", "c"],
                     epochs=2, verbose=0)
    url = dash.start()
    events = Events(url)
    history = tr.fit(x, y, batch_size=32, epochs=2, callbacks=[dash], shuffle=False,
                     validation_data=(x[:64], y[:64]))
    events.close()
    return history, events, port_of(url), tr, dash


def test_progress_losses_are_the_history_losses(recorded):
    history, events, _, tr, _ = recorded
    progress = events.of("progress")
    steps = [p["step"] for p in progress]
    assert steps == list(range(1, tr.global_step + 1))
    per_epoch = tr.global_step // 2
    # a step's loss is the epoch's running mean: at an epoch's last step, the History's loss
    for epoch in (1, 2):
        last = progress[epoch * per_epoch - 1]
        assert last["epoch"] == epoch
        assert last["loss"] == history["loss"][epoch - 1]
    assert all(p["lr"] == 0.1 and p["images_per_sec"] > 0 for p in progress)
    assert progress[-1]["eta"] == 0 and progress[per_epoch - 1]["eta"] > 0
    assert progress[per_epoch]["accuracy"] == history["accuracy"][0]


def test_epoch_events_are_the_history_rows(recorded):
    history, events, _, _, _ = recorded
    rows = events.of("epoch")
    assert [r["epoch"] for r in rows] == [1, 2]
    for i, row in enumerate(rows):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
            assert row[key] == history[key][i], key
    assert events.events[-1][0] == "end"


def test_picture_events(recorded):
    _, events, _, tr, _ = recorded
    pictures = events.of("pictures")
    # at the first step (a page connected), every 3 steps, and at each epoch's end
    assert [p["step"] for p in pictures] == [1, 3, 6, 6, 9, 12, 12]
    p = pictures[-1]
    assert {a["name"]: a["shape"] for a in p["activations"]} == LAYER_SHAPES
    for a in p["activations"]:
        grid = decode(a["grid"])
        assert list(grid.shape) == a["shape"]
        assert a["min"] <= a["mean"] <= a["max"]
    params = {a["name"]: a["params"] for a in p["activations"]}
    assert params == {"input": 0, "0": 40, "1": 0, "2": 0, "3": 0, "4": 303}
    # the activations are those of the final model on the first sample
    x, _ = data()
    assert p["activations"][-1]["max"] == pytest.approx(
        float(tr.model.eval()(fb.Tensor(x[:1])).data.max()), rel=1e-6)
    [conv] = p["filters"]
    assert conv["name"] == "0" and conv["shape"] == [4, 1, 3, 3]
    assert decode(conv["grid"]).shape == (4, 1, 3, 3) and len(conv["grad_norm"]) == 4
    assert all(g > 0 for g in conv["grad_norm"])
    preds = p["predictions"]
    assert len(preds) == 50
    for row in preds:
        assert len(row["top"]) == 3 and row["probs"] == sorted(row["probs"], reverse=True)
        assert row["correct"] == (row["top"][0] == row["label"])
    hello = events.of("hello")[0]
    assert len(hello["samples"]["images"]) == 50 and hello["classes"] == ["a", "b", "c"]


def test_server_stops_and_frees_the_port(recorded):
    _, _, port, _, dash = recorded
    assert dash.url is None
    assert port_free(port)
    assert dashboard_threads() == []


def test_the_dashboard_does_not_change_the_training():
    x, y = data()
    plain = trainer().fit(x, y, batch_size=32, epochs=2, shuffle=False)
    dash = Dashboard(port=0, every=1, samples=(x[:50], y[:50]), verbose=0)
    events = Events(dash.start())
    watched = trainer().fit(x, y, batch_size=32, epochs=2, shuffle=False, callbacks=[dash])
    events.close()
    assert watched["loss"] == plain["loss"] and watched["accuracy"] == plain["accuracy"]


def test_page_files_and_no_traversal():
    dash = Dashboard(port=0, verbose=0)
    url = dash.start()
    try:
        status, body, ctype = get(url, "/")
        assert status == 200 and ctype.startswith("text/html") and b"/train.js" in body
        for name in ("/dashboard.js", "/train.js", "/dashboard.css"):
            assert get(url, name)[0] == 200
        assert b"http" not in get(url, "/train.js")[1]  # no CDN: nothing outside the server
        for bad in ("/nope", "/../pyproject.toml", "/static/train.html", "/../callback.py",
                    "/%2e%2e/callback.py", "/..%2fcallback.py", "//etc/passwd",
                    "/train.html", "/dashboard.js/../../__init__.py"):
            assert get(url, bad)[0] == 404, bad
        assert post(url, "/control/nope")[0] == 404
        assert post(url, "/../control/pause")[0] == 404
    finally:
        dash.stop()


def test_controls_need_the_token_and_valid_bodies():
    dash = Dashboard(port=0, verbose=0)
    url = dash.start()
    try:
        for path in ("/control/pause", "/control/resume", "/control/lr", "/control/save"):
            assert post(url, path, {"lr": 0.1}, token=None)[0] == 403
            assert post(url, path, {"lr": 0.1}, token="wrong")[0] == 403
            assert post(url, path, {"lr": 0.1}, token=dash.app.token[:-1])[0] == 403
        # the token can also come as a header
        assert post(url, "/control/lr", {"lr": 0.5}, token=None,
                    headers={"X-Token": dash.app.token})[0] == 202
        for bad in ("abc", -1, 0, "nan", "inf", True, None, [0.1], "1e999"):
            status, answer = post(url, "/control/lr", {"lr": bad})
            assert status == 400 and "lr must be a positive" in answer["error"], bad
        assert post(url, "/control/lr", raw=b"{not json")[0] == 400
        assert post(url, "/control/lr", raw=b"\xff\xfe")[0] == 400
        assert post(url, "/control/lr", raw=b"[1, 2]")[0] == 400
        status, answer = post(url, "/control/lr", raw=b" " * 5000)
        assert status == 413 and "at most 4096" in answer["error"]
        assert post(url, "/control/lr", {"lr": "0.25"}) == (202, {"queued": "lr", "lr": 0.25})
        commands = []
        while not dash._commands.empty():
            commands.append(dash._commands.get())
        assert commands == [("lr", 0.5), ("lr", 0.25)]  # the refused ones queued nothing
    finally:
        dash.stop()


def test_pause_resume_lr_and_save(tmp_path):
    x, y = data()
    tr = trainer()
    dash = Dashboard(port=0, verbose=0, save_dir=tmp_path / "ckpt")
    url = dash.start()
    events = Events(url)
    assert post(url, "/control/pause")[0] == 202  # applied at the first step's end
    errors = []

    def fit():
        try:
            tr.fit(x, y, batch_size=32, epochs=3, callbacks=[dash])
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    thread = threading.Thread(target=fit)
    thread.start()
    deadline = time.monotonic() + 20
    while tr.global_step < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    assert tr.global_step == 1 and dash.paused  # paused at the end of step 1
    time.sleep(0.3)
    assert tr.global_step == 1
    # commands still apply while paused
    assert post(url, "/control/lr", {"lr": 0.025})[0] == 202
    assert post(url, "/control/save")[0] == 202
    while not events.of("saved") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tr.optimizer.param_groups[0]["lr"] == 0.025
    saved = events.of("saved")[0]
    assert saved["step"] == 1 and Path(saved["path"]).is_file()
    assert tr.global_step == 1
    assert post(url, "/control/resume")[0] == 202
    thread.join(30)
    assert not thread.is_alive() and not errors
    assert tr.global_step == 18 and tr.history["lr"] == [0.1, 0.025, 0.025]
    events.close()
    controls = events.of("control")
    assert [c["paused"] for c in controls] == [True, True, False]
    assert controls[1]["lr"] == 0.025
    assert dashboard_threads() == []


def test_a_slow_client_loses_old_events_and_never_blocks():
    broker = Broker(queue_size=8)
    client = broker.add()
    for i in range(100):
        broker.publish("progress", {"step": i})
    assert len(client.events) == 8 and client.dropped == 92
    assert b'"step": 99' in client.events[-1] and b'"step": 92' in client.events[0]
    # a client that connects and never reads, and one that goes away: training goes on
    x, y = data()
    dash = Dashboard(port=0, every=1, samples=(x[:50], y[:50]), verbose=0)
    url = dash.start()
    silent = socket.create_connection(("127.0.0.1", port_of(url)))
    silent.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    gone = Events(url)
    gone.sock.shutdown(socket.SHUT_RDWR)  # the page is closed
    gone.close()
    start = time.monotonic()
    trainer().fit(x, y, batch_size=32, epochs=3, callbacks=[dash])
    assert time.monotonic() - start < 60
    silent.close()
    assert dashboard_threads() == []


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="every"):
        Dashboard(every=0)
    with pytest.raises(ValueError, match="port"):
        Dashboard(port=70000)
    with pytest.raises(ValueError, match="samples"):
        Dashboard(samples=(np.zeros((5, 4)), np.zeros(5)))
    with pytest.warns(RuntimeWarning, match="other machines"):
        dash = Dashboard(port=0, host="0.0.0.0", verbose=0)
        dash.start()
    dash.stop()


# ---------------------------------------------------------------------- filterbank serve
# run_dir: tests/train/conftest.py
def test_serve_predicts_drawn_pixels(run_dir):
    from filterbank.train import load_run

    server = serve(run_dir, port=0, block=False)
    url = server.url
    try:
        model, config = load_run(run_dir)
        pre = config["preprocessing"]
        status, info = post(url, "/info")
        assert status == 200 and info["size"] == [28, 28] and info["channels"] == 1
        rng = np.random.default_rng(1)
        pixels = rng.integers(0, 256, size=28 * 28)
        status, answer = post(url, "/predict", {"pixels": pixels.tolist()})
        assert status == 200
        x = (pixels.reshape(1, 1, 28, 28).astype(np.float32) / 255 - pre["mean"][0]) \
            / pre["std"][0]
        logits = model(fb.Tensor(x.astype(np.float32))).data[0]
        expected = np.exp(logits - logits.max())
        np.testing.assert_allclose(answer["probs"], expected / expected.sum(), rtol=1e-5)
        assert answer["classes"] == config["classes"]
        assert answer["layers"][0]["shape"] == [1, 28, 28]
        assert answer["layers"][-1]["shape"] == [10]
        assert get(url, "/")[0] == 200 and b"/serve.js" in get(url, "/")[1]
        assert get(url, "/events")[0] == 404
        assert post(url, "/predict", {"pixels": pixels.tolist()}, token=None)[0] == 403
        for bad in ([1] * 10, [256] * 784, [-1] * 784, ["a"] * 784, [None] * 784, "abc"):
            status, answer = post(url, "/predict", {"pixels": bad})
            assert status == 400 and "pixels must be" in answer["error"]
        assert post(url, "/predict", raw=b"1" * (8 * 784 + 2000))[0] == 413
    finally:
        server.close()
    assert port_free(port_of(url))


def test_model_server_with_rgb_input():
    fb.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 2)).eval()
    config = {"classes": ["x", "y"], "preprocessing": {"channels": 3, "size": [8, 8],
                                                       "mean": [0.5] * 3, "std": [0.25] * 3}}
    server = ModelServer(model, config, "127.0.0.1", 0)
    try:
        status, answer = post(server.url, "/predict", {"pixels": [128.0] * 192})
        assert status == 200 and answer["layers"][1]["shape"] == [2, 6, 6]
        assert sum(answer["probs"]) == pytest.approx(1)
    finally:
        server.close()


def test_samples_from_a_loader():
    x, y = data()
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32)]
    dash = Dashboard(samples=batches, verbose=0)
    np.testing.assert_array_equal(dash._samples[0], x[:50])
    np.testing.assert_array_equal(dash._samples[1], y[:50])
    with pytest.raises(ValueError, match="no batches"):
        Dashboard(samples=[])


def test_command_line_options():
    import argparse

    from filterbank import cli_dashboard

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    common = argparse.ArgumentParser(add_help=False)
    cli_dashboard.add_train_options(sub.add_parser("train"))
    cli_dashboard.add_parsers(sub, common)
    assert parser.parse_args(["train"]).dashboard is None
    assert parser.parse_args(["train", "--dashboard"]).dashboard == 8765
    assert parser.parse_args(["train", "--dashboard", "0"]).dashboard == 0
    args = parser.parse_args(["serve", "runs/x", "--port", "9000"])
    assert (args.run, args.port, args.host) == ("runs/x", 9000, "127.0.0.1")
    for bad in ("-1", "65536", "http"):
        with pytest.raises(SystemExit):
            parser.parse_args(["serve", "runs/x", "--port", bad])
