"""The dashboard pages in a real headless browser (Debian's ``chromium``): the page loads, its
JavaScript runs without errors and draws what the server sent (loss curve, activation
canvases, filters, predictions), and the page changes as training goes on.

``chromium --dump-dom`` waits for open requests, so the page is opened with ``?snapshot=1``
(the event stream sends the state so far and ends; the page then draws it).
"""

from __future__ import annotations

import http.client
import re
import shutil
import threading
import time

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn
from filterbank.train import Callback, Trainer
from filterbank.train.dashboard import Dashboard, headless, serve

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no headless browser: `chromium` is "
                                "not installed (Debian: apt-get install -y chromium)")


def dump_dom(url: str) -> str:
    return headless.dump_dom(CHROMIUM, url, budget_ms=5000, timeout=120)


def js_errors(dom: str) -> str:
    text = headless.js_errors(dom)
    assert text is not None, "the page has no #js-errors element"
    return text


def points(dom: str, series: str) -> int:
    m = re.search(rf'<path[^>]*data-series="{series}"[^>]*data-points="(\d+)"', dom)
    return int(m.group(1)) if m else 0


def text_of(dom: str, ident: str) -> str:
    m = re.search(rf'id="{ident}">([^<]*)<', dom)
    return m.group(1) if m else ""


def wait_paused(trainer, dash, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while not (dash.paused and trainer.global_step >= at_least):
        assert time.monotonic() < deadline, "training did not pause"
        time.sleep(0.02)
    time.sleep(0.2)


def test_training_page_draws_the_stream():
    rng = np.random.default_rng(0)
    y = np.arange(256) % 3
    x = rng.random((256, 1, 12, 12), dtype=np.float32)
    fb.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(100, 3))
    trainer = Trainer(model, fb.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                      metrics=["accuracy"], progress=False)
    dash = Dashboard(port=0, every=2, samples=(x[:50], y[:50]), classes=["a", "b", "c"],
                     epochs=3, verbose=0)
    url = dash.start()
    # a live page (raw client) keeps the pictures coming while chromium takes snapshots
    live = http.client.HTTPConnection(url.split("//", 1)[1].split("/", 1)[0], timeout=60)
    live.request("GET", "/events")
    stream = live.getresponse()
    while stream.readline() != b"event: hello\n":  # connected: pictures from step 1 on
        pass
    assert headless.post(url, "/control/pause") == 202  # pauses at the end of step 1
    errors = []

    class PauseAt(Callback):  # presses "pause" at step 10, through the page's endpoint
        def on_batch_end(self, trainer, step, logs):
            if step == 10:
                assert headless.post(url, "/control/pause") == 202

    def fit():
        try:
            trainer.fit(x, y, batch_size=32, epochs=3, callbacks=[PauseAt(), dash],
                        validation_data=(x[:64], y[:64]))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    thread = threading.Thread(target=fit)
    thread.start()
    try:
        wait_paused(trainer, dash, 1)
        first = dump_dom(url + "&snapshot=1")
        assert headless.post(url, "/control/resume") == 202
        wait_paused(trainer, dash, 10)  # PauseAt pauses it again at step 10
        second = dump_dom(url + "&snapshot=1")
    finally:
        dash.paused = False
        headless.post(url, "/control/resume")
        thread.join(60)
        live.close()
    assert not errors

    for dom in (first, second):
        assert js_errors(dom) == ""
        assert text_of(dom, "state") == "paused"
        # what the JavaScript made from the events: curves, activations, filters, predictions
        for layer in ("input", "0", "1", "2", "3", "4"):
            assert f'data-layer="{layer}"' in dom
        assert dom.count('data-filter="0"') == 4
        assert dom.count('class="pred"') == 50
        assert 'class="bar right"' in dom or 'class="bar wrong"' in dom
    assert text_of(first, "step") == "1" and points(first, "loss") == 1
    step = int(text_of(second, "step"))
    assert step == 10 and points(second, "loss") == 10
    assert points(second, "val_loss") >= 1  # the first epoch (8 steps) is done
    assert first != second


def test_model_page_predicts_on_load(tmp_path):
    from filterbank.train.run import train

    out = tmp_path / "run"
    train("simple_cnn", "fashion-mnist-sample", epochs=1, limit=32, out=out,
          model_args={"width": 2, "hidden": 4}, progress=False, log=lambda *a: None,
          echo=lambda *a: None)
    server = serve(out, port=0, block=False)
    try:
        dom = dump_dom(server.url)
    finally:
        server.close()
    assert js_errors(dom) == ""
    assert dom.count('class="row"') == 10  # a probability per class of the blank canvas
    assert "T-shirt/top" in dom
    assert 'data-layer="input"' in dom and dom.count("<canvas") > 5
