"""``Trainer``: the training loop, evaluation, prediction, checkpoints and exact resume.

One training step is the lecture's loop: forward, loss, backward (reverse-mode autodiff),
optional gradient clipping, optimizer update. An epoch runs the steps over the training loader
with a tqdm progress bar (loss, metrics, images/s, ETA), then evaluates on the validation
loader, appends the epoch's numbers to the :class:`History` and calls the callbacks.

Determinism: every random draw comes from the global generator (dropout, initialisation) or a
loader's own generator (shuffling, augmentation). A checkpoint stores all of them with the
model, optimizer and scheduler states, so ``fit(..., resume=path)`` continues with exactly the
numbers an uninterrupted run would have produced (bit-identical weights).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence

import numpy as np

from filterbank import random as _random
from filterbank.autograd import grad_mode
from filterbank.nn.utils import clip_grad_norm_, clip_grad_value_
from filterbank.tensor import Tensor
from filterbank.train import checkpoint as _ckpt
from filterbank.train.callbacks import Callback, LRSchedulerCallback
from filterbank.train.metrics import Metric, get_metric


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or Inf; training stopped before applying that step."""


class History(dict):
    """Per-epoch numbers: a dict of lists, one entry per epoch (JSON-able).

    Keys: ``epoch``, ``loss``, each metric, the ``val_`` versions, ``lr``, ``time`` (seconds)
    and ``images_per_sec``. A value missing in some epoch is None.

    Example:
        >>> h = History(); h.append({"epoch": 1, "loss": 0.5}); h.append({"epoch": 2, "loss": 0.25})
        >>> h["loss"], h.epochs
        ([0.5, 0.25], 2)
    """

    @property
    def epochs(self) -> int:
        return max((len(v) for v in self.values()), default=0)

    def append(self, logs: dict) -> None:
        n = self.epochs
        for k in logs:
            if k not in self:
                self[k] = [None] * n
        for k in self:
            v = logs.get(k)
            self[k].append(v.item() if isinstance(v, np.generic) else v)

    def best(self, monitor: str, mode: str = "min") -> tuple[int, float]:
        """(epoch number, value) of the best finite value of ``monitor``."""
        vals = [(i, v) for i, v in enumerate(self.get(monitor, []))
                if v is not None and math.isfinite(v)]
        if not vals:
            raise ValueError(f"History.best: no finite values for {monitor!r} "
                             f"(keys: {sorted(self)})")
        i, v = (min if mode == "min" else max)(vals, key=lambda t: t[1])
        epochs = self.get("epoch")
        return (epochs[i] if epochs else i + 1), v

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.items()}

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            _ckpt.atomic_write_bytes(path, text.encode("utf-8"))
        return text

    @classmethod
    def from_json(cls, text_or_path) -> History:
        if isinstance(text_or_path, os.PathLike) or (
                isinstance(text_or_path, str) and not text_or_path.lstrip().startswith("{")):
            with open(text_or_path, encoding="utf-8") as f:
                text_or_path = f.read()
        return cls(json.loads(text_or_path))


def _split_batch(batch, where: str):
    if isinstance(batch, tuple | list) and len(batch) >= 2:
        return batch[0], batch[1]
    if isinstance(batch, dict):
        for xk, yk in (("input", "target"), ("image", "label"), ("x", "y")):
            if xk in batch and yk in batch:
                return batch[xk], batch[yk]
    raise TypeError(f"{where}: expected batches of (inputs, targets), got "
                    f"{type(batch).__name__}"
                    + (f" of length {len(batch)}" if isinstance(batch, tuple | list) else ""))


def _as_tensor(a):
    return a if isinstance(a, Tensor) else Tensor(a)


class Trainer:
    """Train a model with an optimizer and a loss, with metrics, callbacks and checkpoints.

    Per step: ``out = model(x)``, ``loss = loss_fn(out, y)``, ``loss.backward()``, clip,
    ``optimizer.step()``. Per epoch: validation (``model.eval()`` under ``no_grad``), History,
    callbacks (LR schedulers, early stopping, checkpoints, loggers).

    Args:
        model: the Module to train.
        optimizer: an optimizer over ``model.parameters()``.
        loss_fn: callable ``(output, target) -> scalar Tensor`` (e.g. ``nn.CrossEntropyLoss()``).
        metrics: names ('accuracy', 'top5_accuracy'), Metric objects or functions
            ``(output, target) -> float``. Default ('accuracy',).
        scheduler: an LR scheduler stepped once per epoch (use :class:`LRSchedulerCallback`
            for per-step schedules; ReduceLROnPlateau gets ``val_loss``, else ``loss``).
        callbacks: list of :class:`~filterbank.train.callbacks.Callback`.
        grad_clip_norm: clip the total gradient 2-norm to this value (``clip_grad_norm_``).
        grad_clip_value: clamp every gradient element to [-v, v] (``clip_grad_value_``).
        device: None or 'cpu' (filterbank computes with NumPy on the CPU).
        seed: reseed the global generator (``fb.manual_seed``) when a fresh ``fit`` starts.
        progress: show a tqdm progress bar per epoch.
        on_nonfinite: 'stop' (raise :class:`NonFiniteLossError` naming the epoch and step,
            without updating the weights or saving a checkpoint) or 'skip' (drop that batch:
            no update; counted in the History as ``skipped``).
        detect_anomaly: run backward under ``fb.autograd.detect_anomaly()``, which names the
            op whose backward first produced NaN/Inf (slower).

    Example:
        >>> trainer = Trainer(model, fb.optim.SGD(model.parameters(), lr=0.1),
        ...                   fb.nn.CrossEntropyLoss(), metrics=["accuracy"])   # doctest: +SKIP
        >>> history = trainer.fit(train_loader, val_loader, epochs=5)           # doctest: +SKIP
        >>> history["val_accuracy"][-1]                                         # doctest: +SKIP
        0.97
    """

    def __init__(self, model, optimizer, loss_fn, metrics: Sequence = ("accuracy",),
                 scheduler=None, callbacks: Iterable[Callback] = (),
                 grad_clip_norm: float | None = None, grad_clip_value: float | None = None,
                 device: str | None = None, seed: int | None = None, progress: bool = True,
                 on_nonfinite: str = "stop", detect_anomaly: bool = False):
        if device not in (None, "cpu"):
            raise ValueError(f"Trainer: device {device!r} is not available; filterbank computes "
                             f"with NumPy on the CPU (use device=None or 'cpu')")
        if on_nonfinite not in ("stop", "skip"):
            raise ValueError(f"Trainer: on_nonfinite must be 'stop' or 'skip', got "
                             f"{on_nonfinite!r}")
        for name, v in (("grad_clip_norm", grad_clip_norm), ("grad_clip_value", grad_clip_value)):
            if v is not None and not (isinstance(v, int | float) and v > 0):
                raise ValueError(f"Trainer: {name} must be a positive number or None, got {v!r}")
        if not callable(loss_fn):
            raise TypeError(f"Trainer: loss_fn must be callable, got {type(loss_fn).__name__}")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        if isinstance(metrics, str | Metric) or callable(metrics):
            metrics = [metrics]
        self.metric_specs = list(metrics or ())
        self._check_metric_names()
        self.callbacks: list[Callback] = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"Trainer: callbacks must be Callback instances, got "
                                f"{type(cb).__name__}")
        self.scheduler = scheduler
        if scheduler is not None and not any(isinstance(cb, LRSchedulerCallback)
                                             and cb.scheduler is scheduler
                                             for cb in self.callbacks):
            self.callbacks.append(LRSchedulerCallback(scheduler, "epoch"))
        self.grad_clip_norm = grad_clip_norm
        self.grad_clip_value = grad_clip_value
        self.seed = seed
        self.progress = progress
        self.on_nonfinite = on_nonfinite
        self.detect_anomaly = detect_anomaly
        self.history = History()
        self.epoch = 0  # completed epochs
        self.global_step = 0  # completed optimizer steps
        self.stop_training = False
        self._loaders: dict = {}

    # ------------------------------------------------------------------------ helpers
    def _check_metric_names(self):
        names = [get_metric(m).name for m in self.metric_specs]
        if len(set(names)) != len(names) or "loss" in names:
            raise ValueError(f"Trainer: metric names must be unique and not 'loss', got {names}")

    def _new_metrics(self) -> list[Metric]:
        out = []
        for spec in self.metric_specs:
            m = get_metric(spec)
            m.reset()
            out.append(m)
        return out

    def _sorted_callbacks(self) -> list[Callback]:
        return sorted(self.callbacks, key=lambda cb: cb.order)

    @property
    def schedulers(self) -> list:
        return [cb.scheduler for cb in self.callbacks if isinstance(cb, LRSchedulerCallback)]

    def log(self, message: str) -> None:
        """Print a message without breaking the progress bar."""
        if self.progress:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def _anomaly(self):
        if not self.detect_anomaly:
            return contextlib.nullcontext()
        from filterbank.autograd import detect_anomaly

        return detect_anomaly()

    # ------------------------------------------------------------------- checkpoints
    def _callback_states(self) -> dict:
        return {f"{i}:{type(cb).__name__}": cb.state_dict()
                for i, cb in enumerate(self.callbacks)}

    def save_checkpoint(self, path: str | os.PathLike) -> os.PathLike:
        """Save everything needed to resume (see :mod:`filterbank.train.checkpoint`)."""
        scheds = self.schedulers
        extra = {"schedulers": [s.state_dict() for s in scheds[1:]]} if len(scheds) > 1 else None
        return _ckpt.save_checkpoint(
            path, self.model, self.optimizer, scheds[0] if scheds else None,
            epoch=self.epoch, global_step=self.global_step, history=self.history,
            loaders=self._loaders, callbacks=self._callback_states(), extra=extra)

    def load_checkpoint(self, path: str | os.PathLike, loaders: dict | None = None) -> dict:
        """Restore model, optimizer, scheduler(s), RNG states, History, counters, callbacks."""
        scheds = self.schedulers
        # a loader added since the checkpoint (e.g. validation) just keeps its own state
        meta = _ckpt.load_checkpoint(path, self.model, self.optimizer,
                                     scheds[0] if scheds else None, loaders=loaders,
                                     missing_loaders="ignore")
        extra = meta.get("extra") or {}
        for s, state in zip(scheds[1:], extra.get("schedulers", [])):
            s.load_state_dict(state)
        rng = (meta.get("rng") or {}).get("global")
        if rng is not None:
            _random.set_rng_state(rng)
        self.epoch = int(meta.get("epoch") or 0)
        self.global_step = int(meta.get("global_step") or 0)
        self.history = History(meta.get("history") or {})
        states = meta.get("callbacks") or {}
        for key, cb in zip(self._callback_states(), self.callbacks):
            if key in states:
                cb.load_state_dict(states[key])
        return meta

    # -------------------------------------------------------------------------- fit
    def fit(self, train_loader, val_loader=None, epochs: int = 1,
            resume: str | os.PathLike | None = None) -> History:
        """Train until ``epochs`` epochs are complete (counting those of a resumed run).

        Args:
            train_loader: iterable of ``(inputs, targets)`` batches (a DataLoader).
            val_loader: optional loader evaluated after every epoch (keys ``val_*``).
            epochs: total number of epochs.
            resume: a checkpoint to continue from (e.g. ``ModelCheckpoint``'s ``last``).

        Returns:
            the :class:`History` (also ``trainer.history``).

        Raises:
            NonFiniteLossError: the loss became NaN/Inf and ``on_nonfinite='stop'``.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"Trainer.fit: epochs must be an int >= 0, got {epochs!r}")
        self._loaders = {name: ld for name, ld in (("train", train_loader), ("val", val_loader))
                         if ld is not None and hasattr(ld, "state_dict")}
        if resume is not None:
            self.load_checkpoint(resume, loaders=self._loaders)
        elif self.seed is not None:
            _random.manual_seed(self.seed)
        self.stop_training = False
        callbacks = self._sorted_callbacks()
        for cb in callbacks:
            cb.on_train_begin(self)
        try:
            for epoch in range(self.epoch, epochs):
                if self.stop_training:
                    break
                for cb in callbacks:
                    cb.on_epoch_begin(self, epoch)
                lr = self.optimizer.param_groups[0]["lr"]
                logs = {"epoch": epoch + 1}
                bar = self._progress_bar(train_loader, epoch, epochs)
                try:
                    logs.update(self._train_epoch(train_loader, epoch, bar, callbacks))
                    if val_loader is not None:
                        val = self._evaluate(val_loader)
                        logs.update({f"val_{k}": v for k, v in val.items()})
                        if bar is not None:
                            bar.set_postfix(self._postfix(logs), refresh=True)
                finally:
                    if bar is not None:
                        bar.close()
                if self.on_nonfinite == "stop" and val_loader is not None \
                        and not math.isfinite(logs["val_loss"]):
                    raise NonFiniteLossError(
                        f"Trainer.fit: the validation loss is {logs['val_loss']} after epoch "
                        f"{epoch + 1}; training stopped and no checkpoint was written for this "
                        f"epoch")
                logs["lr"] = float(lr)
                self.history.append(logs)
                self.epoch = epoch + 1
                for cb in callbacks:
                    cb.on_epoch_end(self, epoch, logs)
        finally:
            for cb in callbacks:
                cb.on_train_end(self)
        return self.history

    def _progress_bar(self, loader, epoch, epochs):
        if not self.progress:
            return None
        from tqdm import tqdm

        try:
            total = len(loader)
        except TypeError:
            total = None
        return tqdm(total=total, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                    dynamic_ncols=True, leave=True, file=sys.stderr)

    @staticmethod
    def _postfix(logs: dict) -> dict:
        out = {}
        for k, v in logs.items():
            if k in ("epoch", "time", "skipped") or v is None:
                continue
            if k == "images_per_sec":
                out["img/s"] = f"{v:.0f}"
            else:
                out[k.replace("accuracy", "acc")] = f"{v:.4f}"
        return out

    def _train_epoch(self, loader, epoch: int, bar, callbacks) -> dict:
        self.model.train()
        metrics = self._new_metrics()
        loss_sum, seen, skipped = 0.0, 0, 0
        start = time.perf_counter()
        step = 0
        for step, batch in enumerate(loader, start=1):
            x, y = _split_batch(batch, "Trainer.fit")
            x, y = _as_tensor(x), _as_tensor(y)
            n = x.shape[0] if x.ndim else 1
            result = self._train_step(x, y, epoch, step)
            if result is None:
                skipped += 1
            else:
                loss_value, out = result
                loss_sum += loss_value * n
                seen += n
                for m in metrics:
                    m.update(out, y)
                self.global_step += 1
            step_logs = {"loss": loss_sum / seen if seen else float("nan")}
            for cb in callbacks:
                cb.on_batch_end(self, self.global_step, step_logs)
            if bar is not None:
                elapsed = time.perf_counter() - start
                logs = {"loss": step_logs["loss"], **{m.name: m.compute() for m in metrics},
                        "images_per_sec": (seen / elapsed) if elapsed > 0 else 0.0}
                bar.set_postfix(self._postfix(logs), refresh=False)
                bar.update(1)
        elapsed = time.perf_counter() - start
        if step == 0:
            raise ValueError("Trainer.fit: the training loader produced no batches")
        logs = {"loss": loss_sum / seen if seen else float("nan")}
        logs.update({m.name: m.compute() for m in metrics})
        logs["time"] = elapsed
        logs["images_per_sec"] = seen / elapsed if elapsed > 0 else 0.0
        if self.on_nonfinite == "skip":
            logs["skipped"] = skipped
        return logs

    def _train_step(self, x: Tensor, y: Tensor, epoch: int, step: int):
        """One update; returns (loss, output array), or None when the batch was skipped."""
        self.optimizer.zero_grad()
        with self._anomaly():
            out = self.model(x)
            loss = self.loss_fn(out, y)
            if not isinstance(loss, Tensor) or loss.data.size != 1:
                raise TypeError(f"Trainer: loss_fn must return a one-element Tensor, got "
                                f"{type(loss).__name__}"
                                + (f" of shape {loss.shape}" if isinstance(loss, Tensor) else ""))
            value = float(loss.data.reshape(()))
            if not math.isfinite(value):
                return self._nonfinite(value, "loss", epoch, step)
            loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.on_nonfinite == "skip":
            if not all(np.isfinite(p.grad.data).all() for p in params):
                return self._nonfinite(float("nan"), "gradient", epoch, step)
        if self.grad_clip_value is not None:
            clip_grad_value_(params, self.grad_clip_value)
        if self.grad_clip_norm is not None:
            clip_grad_norm_(params, self.grad_clip_norm)
        self.optimizer.step()
        return value, out.data

    def _nonfinite(self, value: float, what: str, epoch: int, step: int):
        self.optimizer.zero_grad()
        where = (f"epoch {epoch + 1}, step {step} (global step {self.global_step + 1})")
        if self.on_nonfinite == "skip":
            self.log(f"Trainer: skipped a batch with a non-finite {what} ({value}) at {where}")
            return None
        raise NonFiniteLossError(
            f"Trainer.fit: the {what} is {value} at {where}; training stopped before this "
            f"update, so the weights and the last checkpoint are those of the last good state. "
            f"Try a smaller learning rate, gradient clipping (grad_clip_norm=), "
            f"on_nonfinite='skip', or detect_anomaly=True to name the op that produced it")

    # --------------------------------------------------------------------- evaluate
    def _evaluate(self, loader) -> dict:
        was_training = self.model.training
        self.model.eval()
        metrics = self._new_metrics()
        loss_sum, seen = 0.0, 0
        try:
            with grad_mode.no_grad():
                for batch in loader:
                    x, y = _split_batch(batch, "Trainer.evaluate")
                    x, y = _as_tensor(x), _as_tensor(y)
                    out = self.model(x)
                    n = x.shape[0] if x.ndim else 1
                    loss_sum += float(self.loss_fn(out, y).data.reshape(())) * n
                    seen += n
                    for m in metrics:
                        m.update(out.data, y)
        finally:
            self.model.train(was_training)
        if seen == 0:
            raise ValueError("Trainer.evaluate: the loader produced no batches")
        return {"loss": loss_sum / seen, **{m.name: m.compute() for m in metrics}}

    def evaluate(self, loader) -> dict:
        """Loss and metrics over ``loader`` in eval mode, without gradients.

        Returns:
            ``{"loss": float, "<metric>": float, ...}`` (sample-weighted means).
        """
        return self._evaluate(loader)

    def predict(self, data, batch_size: int = 256) -> np.ndarray:
        """Model outputs for ``data`` (eval mode, no gradients), concatenated along axis 0.

        Args:
            data: a loader (batches of inputs, or of ``(inputs, targets)``), or an array /
                Tensor of inputs, processed ``batch_size`` samples at a time.
        """
        if isinstance(data, np.ndarray | Tensor):
            arr = data.data if isinstance(data, Tensor) else data
            batches = (arr[i:i + batch_size] for i in range(0, len(arr), batch_size))
        else:
            batches = data
        was_training = self.model.training
        self.model.eval()
        outs = []
        try:
            with grad_mode.no_grad():
                for batch in batches:
                    if isinstance(batch, tuple | list | dict):
                        batch = _split_batch(batch, "Trainer.predict")[0] \
                            if not (isinstance(batch, tuple | list) and len(batch) == 1) \
                            else batch[0]
                    outs.append(np.asarray(self.model(_as_tensor(batch)).data))
        finally:
            self.model.train(was_training)
        if not outs:
            raise ValueError("Trainer.predict: no input batches")
        return np.concatenate(outs, axis=0)
