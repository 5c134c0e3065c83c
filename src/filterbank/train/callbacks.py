"""Callbacks: hooks the :class:`~filterbank.train.Trainer` calls around epochs and steps.

Each hook receives the trainer, so a callback can read ``trainer.model``, ``trainer.history``,
``trainer.epoch`` and set ``trainer.stop_training``. Within one event the callbacks run by
their ``order`` (then as given): learning-rate schedulers first, checkpoints last, so a
checkpoint sees the state the next epoch will start from.

Callbacks with state (early stopping's patience counter, the best value so far) implement
``state_dict()``/``load_state_dict()``; the trainer stores it in its checkpoints, so a resumed
run behaves as if it had never stopped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np


class Callback:
    """Base class; override the hooks you need. ``logs`` are plain dicts of floats."""

    order = 50

    def on_train_begin(self, trainer) -> None:
        pass

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        pass

    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, trainer) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _verbosity(verbose, where: str) -> int:
    """Keras's ``verbose=`` of a callback: 0 silent, 1 (or 2) its messages."""
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"{where}: verbose must be 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _mode(mode: str, monitor: str, where: str) -> str:
    """'min' or 'max'; 'auto' as Keras: max for accuracy-like names (acc, auc, f1, precision,
    recall), min for the rest (losses, errors)."""
    if mode == "auto":
        name = monitor.lower().removeprefix("val_")
        if "loss" in name or "error" in name:
            return "min"
        return "max" if "acc" in name or "auc" in name \
            or name.endswith(("f1", "precision", "recall")) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"{where}: mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def _monitored(logs: dict, monitor: str, where: str) -> float:
    if monitor not in logs or logs[monitor] is None:
        raise ValueError(f"{where}: the monitored metric {monitor!r} is not in the epoch's logs "
                         f"(available: {sorted(k for k, v in logs.items() if v is not None)}); "
                         f"pass a val_loader, or monitor a training metric such as 'loss'")
    return float(logs[monitor])


class _Best:
    """Tracks the best value of a monitored metric (shared by EarlyStopping/ModelCheckpoint)."""

    def __init__(self, mode: str, min_delta: float = 0.0):
        self.mode = mode
        self.min_delta = abs(min_delta)
        self.best: float | None = None

    def improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop training when a monitored metric has stopped improving.

    After every epoch: if ``monitor`` improved by more than ``min_delta`` on the best value so
    far, remember it (and a copy of the weights, with ``restore_best_weights``); otherwise
    count one epoch of patience. After ``patience`` epochs without improvement, training stops.

    The arguments have Keras's names. Two differences from Keras: ``patience`` defaults to 5
    (Keras: 0), and ``restore_best_weights`` restores the best weights whenever training ends,
    stopped early or not (Keras only when it stops early).

    Args:
        monitor: History key to watch, e.g. 'val_loss' or 'val_accuracy'.
        patience: epochs without improvement before stopping.
        mode: 'min', 'max', or 'auto' (max for accuracy-like names: acc, auc, f1, precision,
            recall; min otherwise).
        min_delta: smallest change that counts as an improvement.
        restore_best_weights: load the best epoch's weights back into the model when training
            ends. ``restore_best`` is the same option under its older name.
        verbose: 1 (default; Keras: 0) says when and why training stops, 0 says nothing.

    Example:
        >>> cb = EarlyStopping(monitor="val_accuracy", patience=3, restore_best_weights=True)
        >>> cb.mode
        'max'
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, mode: str = "auto",
                 min_delta: float = 0.0, restore_best: bool = False, *,
                 restore_best_weights: bool | None = None, verbose: int = 1):
        self.verbose = _verbosity(verbose, "EarlyStopping")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, int | float):
            raise TypeError(f"EarlyStopping: min_delta must be a number, got "
                            f"{type(min_delta).__name__}")
        if restore_best_weights is not None:
            if restore_best and not restore_best_weights:
                raise ValueError("EarlyStopping: restore_best=True and "
                                 "restore_best_weights=False contradict each other; pass one")
            restore_best = restore_best_weights
        self.monitor = monitor
        self.patience = patience
        self.mode = _mode(mode, monitor, "EarlyStopping")
        self.min_delta = min_delta
        self.restore_best = bool(restore_best)
        self._best = _Best(self.mode, min_delta)
        self.wait = 0
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.best_weights: dict | None = None

    @property
    def best(self) -> float | None:
        return self._best.best

    def on_epoch_end(self, trainer, epoch, logs):
        value = _monitored(logs, self.monitor, repr(self))
        if self._best.improved(value):
            self._best.best = value
            self.best_epoch = epoch + 1
            self.wait = 0
            if self.restore_best:
                self.best_weights = trainer.model.state_dict()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch + 1
                trainer.stop_training = True
                if self.verbose:
                    trainer.log(f"EarlyStopping: {self.monitor} did not improve for {self.wait} "
                                f"epochs (best {self.best:.6g} at epoch {self.best_epoch}); "
                                f"stopping after epoch {epoch + 1}")

    def on_train_end(self, trainer):
        if self.restore_best and self.best_weights is not None:
            trainer.model.load_state_dict(self.best_weights)

    def state_dict(self):
        return {"best": self._best.best, "wait": self.wait, "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state):
        self._best.best = state.get("best")
        self.wait = state.get("wait", 0)
        self.best_epoch = state.get("best_epoch")
        self.stopped_epoch = state.get("stopped_epoch")
        self.best_weights = state.get("best_weights")

    @property
    def restore_best_weights(self) -> bool:
        """Keras's name of ``restore_best``."""
        return self.restore_best

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"mode={self.mode!r})")


class ModelCheckpoint(Callback):
    """Save the training state after every epoch (``last``) and when it is the best (``best``).

    Files are written with :func:`~filterbank.train.save_checkpoint` (atomic; a crash never
    leaves a half-written checkpoint). An epoch whose training or validation loss is NaN/Inf
    is never saved, so the last good checkpoint survives a diverging run.

    Two ways to name the files:

    * ``ModelCheckpoint(dirpath)``: ``dirpath/last`` after every epoch and ``dirpath/best``
      when the monitored value improves; ``save_best_only=True`` keeps only ``best``.
    * ``ModelCheckpoint(filepath=...)``, as in Keras: one checkpoint name, which may hold
      ``str.format`` fields filled from the epoch's logs (``"ckpt/e{epoch:02d}-{val_loss:.3f}"``);
      written after every epoch, or with ``save_best_only=True`` only after an epoch that
      improved on the best value so far (a name without fields is then always the best).

    Each checkpoint is ``<name>.json`` plus a ``.safetensors`` file; a ``.json`` or
    ``.safetensors`` suffix on the name is ignored.

    Args:
        dirpath: folder for ``last``/``best`` (created if needed).
        monitor: History key deciding the best epoch.
        mode: 'min', 'max' or 'auto' (max for accuracy-like names, else min).
        save_best: keep ``dirpath/best`` for the best epoch so far.
        save_last: keep ``dirpath/last`` for the latest epoch (what ``resume=`` wants).
        filepath: Keras-style checkpoint name (instead of ``dirpath``).
        save_best_only: Keras's option: save only when the monitored value improved
            (with ``dirpath``: ``best`` only, no ``last``).
        verbose: 1 or 2 logs each save (Keras's option; default 0).

    Example:
        >>> cb = ModelCheckpoint("runs/exp1", monitor="val_accuracy", mode="max")
        >>> trainer.fit(train, val, epochs=10)                   # doctest: +SKIP
        >>> trainer.fit(train, val, epochs=20, resume="runs/exp1/last")   # doctest: +SKIP
        >>> keras_style = ModelCheckpoint(filepath="ckpt/best", monitor="val_loss",
        ...                               save_best_only=True)
    """

    order = 90

    def __init__(self, dirpath: str | os.PathLike | None = None, monitor: str = "val_loss",
                 mode: str = "auto", save_best: bool = True, save_last: bool = True, *,
                 filepath: str | os.PathLike | None = None, save_best_only: bool | None = None,
                 verbose: int = 0):
        self.verbose = _verbosity(verbose, "ModelCheckpoint")
        if (dirpath is None) == (filepath is None):
            raise ValueError(f"ModelCheckpoint: pass a folder (dirpath) or a Keras-style "
                             f"checkpoint name (filepath=), exactly one; got dirpath={dirpath!r}"
                             f", filepath={filepath!r}")
        self.filepath = None if filepath is None else str(filepath)
        self.dirpath = Path(dirpath) if dirpath is not None else Path(self.filepath).parent
        self.monitor = monitor
        self.mode = _mode(mode, monitor, "ModelCheckpoint")
        self.save_best_only = bool(save_best_only)
        if save_best_only:
            save_best, save_last = True, False
        self.save_best = save_best
        self.save_last = save_last
        self._best = _Best(self.mode)
        self.best_epoch: int | None = None
        self.last_saved: Path | None = None  # the latest checkpoint written (filepath form)

    @property
    def best(self) -> float | None:
        return self._best.best

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.json"

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.json"

    def _formatted(self, epoch: int, logs: dict) -> Path:
        fields = {k: v for k, v in logs.items() if v is not None}
        fields["epoch"] = epoch + 1
        try:
            return Path(self.filepath.format(**fields))
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"{self!r}: cannot fill the checkpoint name {self.filepath!r} "
                             f"from the epoch's logs ({e!r}); available fields: "
                             f"{sorted(fields)}") from None

    def on_epoch_end(self, trainer, epoch, logs):
        losses = [logs.get(k) for k in ("loss", "val_loss") if logs.get(k) is not None]
        if not all(math.isfinite(v) for v in losses):
            trainer.log(f"ModelCheckpoint: epoch {epoch + 1} has a non-finite loss; the "
                        f"previous checkpoints are kept")
            return
        if self.filepath is not None:
            if self.save_best_only:
                value = _monitored(logs, self.monitor, repr(self))
                if not self._best.improved(value):
                    return
                self._best.best = value
                self.best_epoch = epoch + 1
            path = self._formatted(epoch, logs)
            trainer.save_checkpoint(path)
            self.last_saved = path
            if self.verbose:
                trainer.log(f"ModelCheckpoint: epoch {epoch + 1}: saved {path}")
            return
        improved = False
        if self.save_best:
            value = _monitored(logs, self.monitor, repr(self))
            improved = self._best.improved(value)
            if improved:
                self._best.best = value
                self.best_epoch = epoch + 1
        # save "last" first so that a best checkpoint never records a newer state than "last"
        if self.save_last:
            trainer.save_checkpoint(self.dirpath / "last")
        if improved:
            trainer.save_checkpoint(self.dirpath / "best")
        if self.verbose and (improved or self.save_last):
            what = ["last"] * self.save_last + ["best"] * improved
            trainer.log(f"ModelCheckpoint: epoch {epoch + 1}: saved {' and '.join(what)} in "
                        f"{self.dirpath}")

    def state_dict(self):
        return {"best": self._best.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        self._best.best = state.get("best")
        self.best_epoch = state.get("best_epoch")

    def __repr__(self):
        if self.filepath is not None:
            return f"ModelCheckpoint(filepath={self.filepath!r}, monitor={self.monitor!r})"
        return f"ModelCheckpoint({str(self.dirpath)!r}, monitor={self.monitor!r})"


def _is_plateau(scheduler) -> bool:
    return any(c.__name__ == "ReduceLROnPlateau" for c in type(scheduler).__mro__)


class LRSchedulerCallback(Callback):
    """Step a learning-rate scheduler after every epoch or after every optimizer step.

    ``ReduceLROnPlateau`` is stepped with the monitored metric (``scheduler.step(value)``);
    every other scheduler with ``scheduler.step()``. Runs before the other callbacks, so a
    checkpoint saved at the end of an epoch holds the learning rate of the next epoch.

    Args:
        scheduler: the scheduler (``filterbank.optim.lr_scheduler``).
        interval: 'epoch' or 'step'.
        monitor: History key passed to ``ReduceLROnPlateau`` (epoch interval only); None
            means 'val_loss' when there is validation, else 'loss'.
    """

    order = 10

    def __init__(self, scheduler, interval: str = "epoch", monitor: str | None = None):
        if interval not in ("epoch", "step"):
            raise ValueError(f"LRSchedulerCallback: interval must be 'epoch' or 'step', got "
                             f"{interval!r}")
        if interval == "step" and _is_plateau(scheduler):
            raise ValueError("LRSchedulerCallback: ReduceLROnPlateau needs a metric; use "
                             "interval='epoch'")
        self.scheduler = scheduler
        self.interval = interval
        self.monitor = monitor

    def on_batch_end(self, trainer, step, logs):
        if self.interval == "step":
            self.scheduler.step()

    def on_epoch_end(self, trainer, epoch, logs):
        if self.interval != "epoch":
            return
        if _is_plateau(self.scheduler):
            monitor = self.monitor
            if monitor is None:
                monitor = "val_loss" if logs.get("val_loss") is not None else "loss"
            self.scheduler.step(_monitored(logs, monitor, repr(self)))
        else:
            self.scheduler.step()

    def __repr__(self):
        return f"LRSchedulerCallback({type(self.scheduler).__name__}, interval={self.interval!r})"


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


class CSVLogger(Callback):
    """Append one row per epoch (the epoch's logs) to a CSV file.

    A resumed run (or ``append=True``) appends to the existing file; otherwise it is replaced.
    On resume, trailing rows of epochs after the checkpoint's (written before a crash stopped
    their checkpoint from being saved) are removed first, so no epoch appears twice.

    Args:
        filename: the CSV file.
        separator: column separator.
        append: append even to a fresh run.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self._file = None
        self._writer = None
        self._keys: list[str] | None = None

    def on_train_begin(self, trainer):
        self.filename.parent.mkdir(parents=True, exist_ok=True)
        resume = (self.append or trainer.epoch > 0) and self.filename.exists()
        self._keys = None
        if resume:
            with open(self.filename, newline="") as f:
                rows = list(csv.reader(f, delimiter=self.separator))
            self._keys = rows[0] if rows else None
            if trainer.epoch > 0 and self._trim(rows, trainer.epoch):
                trainer.log(f"CSVLogger: {self.filename} had rows after epoch {trainer.epoch}, "
                            f"the epoch being resumed from (a crash before their checkpoint "
                            f"was saved); removed them")
        self._file = open(self.filename, "a" if resume else "w", newline="")  # noqa: SIM115

    def _trim(self, rows: list[list[str]], epoch: int) -> bool:
        """Drop the trailing rows of epochs after ``epoch`` (written before a crash kept their
        checkpoint from being saved), so that a resumed run does not log them twice. Returns
        whether the file was rewritten."""
        if not rows or "epoch" not in rows[0]:
            return False
        col = rows[0].index("epoch")
        keep = len(rows)
        while keep > 1:
            try:
                if int(float(rows[keep - 1][col])) <= epoch:
                    break
            except (IndexError, ValueError):
                break
            keep -= 1
        if keep == len(rows):
            return False
        from filterbank.serialization import atomic_write_bytes

        buf = io.StringIO(newline="")
        csv.writer(buf, delimiter=self.separator).writerows(rows[:keep])
        atomic_write_bytes(self.filename, buf.getvalue().encode("utf-8"))
        return True

    def on_epoch_end(self, trainer, epoch, logs):
        if self._file is None:
            self.on_train_begin(trainer)
        if self._keys is None:
            self._keys = list(logs)
            self._writer = csv.writer(self._file, delimiter=self.separator)
            self._writer.writerow(self._keys)
        if self._writer is None:
            self._writer = csv.writer(self._file, delimiter=self.separator)
        self._writer.writerow(["" if logs.get(k) is None else _jsonable(logs.get(k))
                               for k in self._keys])
        self._file.flush()

    def on_train_end(self, trainer):
        if self._file is not None:
            self._file.close()
            self._file = None
            self._writer = None

    def __repr__(self):
        return f"CSVLogger({str(self.filename)!r})"


class JSONLogger(Callback):
    """Rewrite a JSON file with the whole History after every epoch (atomically)."""

    def __init__(self, filename: str | os.PathLike):
        self.filename = Path(filename)

    def on_epoch_end(self, trainer, epoch, logs):
        from filterbank.train.checkpoint import atomic_write_bytes

        self.filename.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(trainer.history.to_dict(), indent=1)
        atomic_write_bytes(self.filename, text.encode("utf-8"))

    def __repr__(self):
        return f"JSONLogger({str(self.filename)!r})"


from filterbank.train.dashboard import Dashboard  # noqa: E402, F401 - a re-export; it subclasses Callback
