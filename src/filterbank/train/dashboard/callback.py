"""``Dashboard``: a Trainer callback that shows the training live in the browser."""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
import time
from http import HTTPStatus
from pathlib import Path

import numpy as np

from filterbank.train.callbacks import Callback
from filterbank.train.dashboard import snapshot
from filterbank.train.dashboard._server import App, Broker, HTTPError

N_SAMPLES = 50
"""Test images whose top-3 predictions the page shows."""

MAX_POINTS = 5000
"""Progress points kept for a page that connects late (the oldest are thinned out)."""

PAGES = {"/": "train.html", "/index.html": "train.html", "/dashboard.js": "dashboard.js",
         "/train.js": "train.js", "/dashboard.css": "dashboard.css"}


def _positive_lr(body) -> float:
    lr = body.get("lr") if isinstance(body, dict) else None
    if isinstance(lr, str):
        try:
            lr = float(lr)
        except ValueError:
            lr = None
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) \
            or lr <= 0:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"lr must be a positive finite number, got "
                        f"{str(body.get('lr') if isinstance(body, dict) else body)[:50]!r}")
    return float(lr)


class Dashboard(Callback):
    """A live training dashboard in the browser, in the spirit of ConvNetJS's MNIST demo.

    A small HTTP server in a daemon thread (started at ``on_train_begin``, stopped at
    ``on_train_end``) serves one self-contained page (no network access needed) and a stream
    of server-sent events (``/events``): after every step the loss, epoch, learning rate,
    images/s and ETA; after every epoch the History row; every ``every`` steps (only while a
    page is open) the pictures: one fixed image's activations at every layer, the conv
    filters and the size of their gradients, and the top-3 predictions on 50 test images.

    The page's buttons pause and resume training, change the learning rate and save a
    checkpoint. They POST to ``/control/...`` with the token of the printed URL
    (``http://127.0.0.1:PORT/?token=...``); the training thread applies them at the next
    step's end, so the training loop never waits for the browser (a client that falls behind
    loses its oldest events).

    Args:
        port: TCP port; 0 picks a free one (see ``url``).
        host: address to listen on; anything but localhost warns (others could see the page).
        every: steps between two picture updates.
        samples: ``(x, y)`` test arrays (inputs as the model takes them) or a loader of
            batches; the first 50 images are shown with their predictions.
        classes: class names for the predictions (default: their numbers).
        epochs: the planned number of epochs, for the overall ETA (else only the epoch's).
        save_dir: folder of the checkpoints saved from the page.
        verbose: 1 prints the URL on stderr when the server starts; 0 prints nothing.

    Example:
        >>> dash = Dashboard(port=0)
        >>> trainer.fit(train_loader, val_loader, epochs=5, callbacks=[dash])  # doctest: +SKIP
        dashboard: http://127.0.0.1:41313/?token=...
    """

    order = 90  # after the schedulers: the page shows the learning rate of the next step

    def __init__(self, port: int = 8765, host: str = "127.0.0.1", every: int = 20, *,
                 samples=None, classes=None, epochs: int | None = None,
                 save_dir: str | os.PathLike = "dashboard-checkpoints", verbose: int = 1):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Dashboard: every must be an int >= 1, got {every!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"Dashboard: port must be an int in 0..65535, got {port!r}")
        self.port, self.host, self.every = port, host, every
        self.classes = None if classes is None else [str(c) for c in classes]
        self.epochs = epochs
        self.save_dir = Path(save_dir)
        self.verbose = verbose
        self._samples = self._first_samples(samples)
        self.app: App | None = None
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self.paused = False
        self._want_picture = threading.Event()
        self._points: list[dict] = []
        self._epoch_rows: list[dict] = []
        self._last: dict[str, dict] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _first_samples(samples):
        if samples is None:
            return None
        if isinstance(samples, tuple | list) and len(samples) == 2 \
                and hasattr(samples[0], "shape"):
            x, y = samples
        else:
            xs, ys, n = [], [], 0
            it = iter(samples)
            try:
                for batch in it:
                    bx, by = batch[0], batch[1]
                    xs.append(np.asarray(getattr(bx, "data", bx)))
                    ys.append(np.asarray(getattr(by, "data", by)))
                    n += len(xs[-1])
                    if n >= N_SAMPLES:
                        break
            finally:
                close = getattr(it, "close", None)
                if it is not samples and callable(close):
                    close()  # a DataLoader's iterator stops its prefetch thread
            if not xs:
                raise ValueError("Dashboard: the samples loader produced no batches")
            x, y = np.concatenate(xs), np.concatenate(ys)
        x = np.asarray(getattr(x, "data", x), dtype=np.float32)[:N_SAMPLES]
        y = np.asarray(getattr(y, "data", y))[:N_SAMPLES]
        if x.ndim != 4 or len(x) != len(y):
            raise ValueError(f"Dashboard: samples must be (x, y) with x of shape (N, C, H, W) "
                             f"and N labels, got x {x.shape} and y {y.shape}")
        return x, (y if y.ndim == 1 else None)

    @property
    def url(self) -> str | None:
        """The page's address with its token (None while the server is not running)."""
        return None if self.app is None else self.app.url

    def start(self) -> str:
        """Start the server (``on_train_begin`` does); returns the URL."""
        if self.app is not None:
            return self.app.url
        broker = Broker()
        broker.on_connect = self._hello
        app = App(PAGES, {"/control/pause": self._post_pause,
                          "/control/resume": self._post_resume,
                          "/control/lr": self._post_lr, "/control/save": self._post_save},
                  broker)
        app.bind(self.host, self.port, "Dashboard")
        app.start()
        self.app = app
        if self.verbose:
            print(f"dashboard: {app.url}", file=sys.stderr, flush=True)
        return app.url

    def stop(self) -> None:
        """Stop the server and free the port (``on_train_end`` does)."""
        if self.app is not None:
            self.app.close()
            self.app = None

    # ------------------------------------------------------------------ server side
    def _hello(self, client) -> None:
        """Everything so far, for a page that connects in the middle of training."""
        with self._lock:
            state = {"points": list(self._points), "epochs": list(self._epoch_rows),
                     **self._last}
        state["samples"] = None
        if self._samples is not None:
            state["samples"] = {"images": [snapshot.as_uint8(im) for im in self._samples[0]]}
        state["classes"] = self.classes
        state["paused"] = self.paused
        self.app.broker.send_to(client, "hello", state)
        self._want_picture.set()

    def _queue(self, command: tuple) -> None:
        self._commands.put(command)
        self._wake.set()

    def _post_pause(self, body):
        self._queue(("pause",))
        return HTTPStatus.ACCEPTED, {"queued": "pause"}

    def _post_resume(self, body):
        self._queue(("resume",))
        return HTTPStatus.ACCEPTED, {"queued": "resume"}

    def _post_lr(self, body):
        lr = _positive_lr(body)
        self._queue(("lr", lr))
        return HTTPStatus.ACCEPTED, {"queued": "lr", "lr": lr}

    def _post_save(self, body):
        self._queue(("save",))
        return HTTPStatus.ACCEPTED, {"queued": "save"}

    # ------------------------------------------------------------------ training thread
    def _publish(self, kind: str, data: dict, keep: bool = True) -> None:
        if keep:
            with self._lock:
                self._last[kind] = data
        if self.app is not None:
            self.app.broker.publish(kind, data)

    def _apply(self, trainer, command: tuple) -> None:
        kind = command[0]
        if kind == "pause":
            self.paused = True
        elif kind == "resume":
            self.paused = False
        elif kind == "lr":
            for group in trainer.optimizer.param_groups:
                group["lr"] = command[1]
        elif kind == "save":
            try:
                self.save_dir.mkdir(parents=True, exist_ok=True)
                path = trainer.save_checkpoint(self.save_dir / f"step{trainer.global_step}")
                self._publish("saved", {"path": str(path), "step": trainer.global_step}, False)
            except OSError as e:
                self._publish("saved", {"error": str(e), "step": trainer.global_step}, False)
            return
        self._publish("control", {"paused": self.paused,
                                  "lr": trainer.optimizer.param_groups[0]["lr"],
                                  "step": trainer.global_step}, False)

    def _commands_now(self, trainer) -> None:
        """Apply the queued commands; while paused, wait (no timeout) for the next one."""
        while True:
            self._wake.clear()
            while True:
                try:
                    command = self._commands.get_nowait()
                except queue.Empty:
                    break
                self._apply(trainer, command)
            if not self.paused:
                return
            self._wake.wait()

    def on_train_begin(self, trainer):
        self.start()
        self._t0 = time.perf_counter()
        self._step0 = trainer.global_step
        self._seen = 0
        self._steps_per_epoch = None
        self._epoch_start_step = trainer.global_step
        self._image = None if self._samples is None else self._samples[0][0]
        self._hook = trainer.model.register_forward_pre_hook(self._count)
        self._publish("start", {"step": trainer.global_step, "epoch": trainer.epoch,
                                "epochs": self.epochs,
                                "params": int(trainer.model.num_parameters())})

    def _count(self, module, args):
        if module.training and args:
            x = args[0]
            self._seen += int(x.shape[0]) if getattr(x, "ndim", 0) else 1
            if self._image is None and getattr(x, "ndim", 0) == 4:
                self._image = np.array(x.data[0], dtype=np.float32)  # the fixed sample

    def on_epoch_begin(self, trainer, epoch):
        self._epoch_start_step = trainer.global_step
        self._epoch_t0 = time.perf_counter()

    def _eta(self, trainer) -> tuple[float | None, float | None]:
        per_epoch = self._steps_per_epoch
        if per_epoch is None:
            per_epoch = len(trainer._loaders["train"]) if "train" in trainer._loaders and \
                hasattr(trainer._loaders["train"], "__len__") else None
        done = trainer.global_step - self._step0
        elapsed = time.perf_counter() - self._t0
        if not per_epoch or not done:
            return None, None
        per_step = elapsed / done
        in_epoch = trainer.global_step - self._epoch_start_step
        epoch_eta = max(0, per_epoch - in_epoch) * per_step
        total = None
        if self.epochs is not None:
            left = max(0, self.epochs - trainer.epoch - 1) * per_epoch
            total = epoch_eta + left * per_step
        return epoch_eta, total

    def on_batch_end(self, trainer, step, logs):
        elapsed = time.perf_counter() - self._t0
        epoch_eta, eta = self._eta(trainer)
        hist = trainer.history
        point = {"step": step, "epoch": trainer.epoch + 1, "loss": logs.get("loss"),
                 "accuracy": (hist.get("accuracy") or [None])[-1],
                 "lr": trainer.optimizer.param_groups[0]["lr"],
                 "images_per_sec": self._seen / elapsed if elapsed > 0 else None,
                 "epoch_eta": epoch_eta, "eta": eta, "elapsed": elapsed}
        with self._lock:
            self._points.append(point)
            if len(self._points) > MAX_POINTS:
                self._points = self._points[::2]
        self._publish("progress", point)
        if self.app is not None and self.app.broker.clients and (
                step % self.every == 0 or self._want_picture.is_set()):
            self._pictures(trainer, step)
        self._commands_now(trainer)  # after the step's events: a paused page shows this step

    def _pictures(self, trainer, step: int) -> None:
        self._want_picture.clear()
        model = trainer.model
        data: dict = {"step": step, "epoch": trainer.epoch + 1,
                      "filters": snapshot.filters(model)}
        if self._image is not None:
            _, data["activations"] = snapshot.activations(model, self._image)
        if self._samples is not None:
            data["predictions"] = snapshot.predictions(model, *self._samples)
        self._publish("pictures", data)

    def on_epoch_end(self, trainer, epoch, logs):
        self._steps_per_epoch = trainer.global_step - self._epoch_start_step or None
        row = {"epoch": epoch + 1, "step": trainer.global_step, **logs}
        with self._lock:
            self._epoch_rows.append(row)
        self._publish("epoch", row)
        if self.app is not None and self.app.broker.clients:
            self._pictures(trainer, trainer.global_step)

    def on_train_end(self, trainer):
        hook, self._hook = getattr(self, "_hook", None), None
        if hook is not None:
            hook.remove()
        self._publish("end", {"step": trainer.global_step, "epoch": trainer.epoch}, False)
        self.stop()

    def __repr__(self):
        return f"Dashboard(port={self.port}, host={self.host!r}, every={self.every})"
