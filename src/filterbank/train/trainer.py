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

from filterbank import _allocator
from filterbank import backend as _backend
from filterbank import random as _random
from filterbank.autograd import grad_mode
from filterbank.nn.utils import clip_grad_norm_, clip_grad_value_
from filterbank.tensor import Tensor
from filterbank.train import checkpoint as _ckpt
from filterbank.train.callbacks import Callback, LRSchedulerCallback
from filterbank.train.metrics import BinaryAccuracy, Metric, default_metrics, get_metric, loss_kind

DIVERGENCE_FACTOR = 1e4
"""Default ``Trainer(divergence_factor=)``: a loss this many times above its level stops
training (see :class:`Trainer`)."""

_RUNNING = 0.1  # weight of the newest step in the running loss level (an EMA)


class DivergenceError(FloatingPointError):
    """Training diverged: the loss exploded (more than ``divergence_factor`` times its level)
    or became NaN/Inf; training stopped before applying that step."""


class NonFiniteLossError(DivergenceError):
    """The loss became NaN or Inf; training stopped before applying that step."""


def _close(iterator, iterable) -> None:
    """Close an iterator made here from ``iterable`` (a DataLoader's stops its prefetch
    thread); one the caller handed in as the iterable itself is left alone."""
    if iterator is not iterable:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()


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

    @property
    def history(self) -> History:
        """The History itself, so that Keras's ``history.history["loss"]`` works too."""
        return self

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


def _is_array(a) -> bool:
    return isinstance(a, np.ndarray | Tensor)


def _arrays(x, y, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) as NumPy arrays with the same number of samples (batches become Tensors, which
    store float64 as float32)."""
    for name, a in (("x", x), ("y", y)):
        if not _is_array(a):
            raise TypeError(f"{where}: {name} must be a NumPy array or a Tensor, got "
                            f"{type(a).__name__}")
    xa = x.data if isinstance(x, Tensor) else x
    ya = y.data if isinstance(y, Tensor) else y
    if xa.ndim == 0 or ya.ndim == 0:
        raise ValueError(f"{where}: x and y need a leading sample axis, got shapes {xa.shape} "
                         f"and {ya.shape}")
    if len(xa) != len(ya):
        raise ValueError(f"{where}: x and y must hold the same number of samples, got "
                         f"{len(xa)} inputs (x shape {xa.shape}) and {len(ya)} targets "
                         f"(y shape {ya.shape})")
    if len(xa) == 0:
        raise ValueError(f"{where}: x and y are empty")
    return xa, ya


def _check_batch_size(batch_size, where: str) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) \
            or batch_size < 1:
        raise ValueError(f"{where}: batch_size must be an int >= 1, got {batch_size!r}")
    return int(batch_size)


def _check_verbose(verbose, where: str) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"{where}: verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _array_loader(x, y, batch_size: int, shuffle: bool = False, generator=0):
    from filterbank.data import DataLoader, TensorDataset

    # generator=0 for unshuffled loaders: no draw from the global generator (dropout's stream)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                      generator=generator)


class Trainer:
    """Train a model with an optimizer and a loss, with metrics, callbacks and checkpoints.

    Per step: ``out = model(x)``, ``loss = loss_fn(out, y)``, ``loss.backward()``, clip,
    ``optimizer.step()``. Per epoch: validation (``model.eval()`` under ``no_grad``), History,
    callbacks (LR schedulers, early stopping, checkpoints, loggers).

    Two ways to train, as in PyTorch and as in Keras: ``fit(train_loader, val_loader,
    epochs=)`` over loaders of ``(inputs, targets)`` batches, or ``fit(x, y, batch_size=,
    epochs=, validation_data=(xv, yv), validation_split=, verbose=)`` over arrays;
    ``evaluate`` and ``predict`` take either too.

    Args:
        model: the Module to train.
        optimizer: an optimizer over ``model.parameters()``.
        loss_fn: callable ``(output, target) -> scalar Tensor`` (e.g. ``nn.CrossEntropyLoss()``).
        metrics: names ('accuracy', 'binary_accuracy', 'top5_accuracy'), Metric objects or
            functions ``(output, target) -> float``. Default None: the metric that fits the
            loss (:func:`~filterbank.train.metrics.default_metrics`): accuracy for
            ``CrossEntropyLoss``/``NLLLoss``, binary accuracy (named 'accuracy') for
            ``BCELoss``/``BCEWithLogitsLoss``, none for regression and unknown losses. As in
            Keras, 'accuracy' with a binary loss means binary accuracy.
        scheduler: an LR scheduler stepped once per epoch (use :class:`LRSchedulerCallback`
            for per-step schedules; ReduceLROnPlateau gets ``val_loss``, else ``loss``).
        callbacks: list of :class:`~filterbank.train.callbacks.Callback`.
        grad_clip_norm: clip the total gradient 2-norm to this value (``clip_grad_norm_``).
        grad_clip_value: clamp every gradient element to [-v, v] (``clip_grad_value_``).
        device: None or 'cpu' (NumPy on the CPU), or 'cuda' / 'cuda:N' / ``fb.device``
            (CuPy on that GPU; needs ``filterbank[cuda12]`` or ``[cuda13]``): the model is
            moved there in place (an optimizer made before keeps its parameters) and every
            batch is copied there; loaders stay on the CPU, metrics and ``predict`` get host
            arrays.
        seed: reseed the global generator (``fb.manual_seed``) when a fresh ``fit`` starts.
        progress: show a tqdm progress bar per epoch.
        on_nonfinite: 'stop' (raise :class:`NonFiniteLossError` naming the epoch and step,
            without applying that step or saving a checkpoint) or 'skip' (drop that batch:
            no update; counted in the History as ``skipped``).
        divergence_factor: stop with :class:`DivergenceError` when a training loss is more
            than this many times its level, ``max(1, lowest running level)``: the running
            level is an exponential moving average of the batch losses (weight 0.1 on the
            newest, from the first step on), and the reference is the lowest value it has
            had: the first steps' level at the start, the best level reached later. The
            floor of 1 keeps a well-fit model's hard batch (1e-3 -> 5) from tripping it. A
            validation loss is checked against the lowest validation loss so far, likewise.
            The step is not applied and no checkpoint is written, but the weights in memory
            are those after the update that diverged. Default :data:`DIVERGENCE_FACTOR`
            (1e4), chosen conservatively: on the README recipe (on the embedded Fashion-MNIST
            sample, 3 epochs) the largest batch loss is 0.97 times its level, a run that
            spikes and recovers (Adam, lr 0.05, batches of 8) reaches 132 times and SGD stuck
            at chance (lr 0.1, batches of 4) 13 times; a divergence grows by orders of
            magnitude (SGD at lr 1e6 goes from 2.3 to 6e11 in one step; at lr 0.5, batches of
            16, to losses of 6e4, 3.0e4 times its level, at chance accuracy). The first step
            of a fresh run is not checked (no level yet); a resumed run
            (``load_checkpoint``) takes the lowest epoch mean of its History as its lowest
            level. None turns the check off; NaN/Inf losses are handled by ``on_nonfinite``
            either way.
        detect_anomaly: run backward under ``fb.autograd.detect_anomaly()``, which names the
            op whose backward first produced NaN/Inf (slower).
        tune_allocator: call :func:`filterbank._allocator.tune` (glibc ``mallopt``: freed
            arrays stay in the heap, so a training step does not page-fault its buffers in
            again; process-wide, up to 256 MiB of freed memory kept). Pass False, or set the
            environment variable ``FILTERBANK_MALLOC_TUNING=0``, to leave the allocator alone.

    Example:
        >>> trainer = Trainer(model, fb.optim.SGD(model.parameters(), lr=0.1),
        ...                   fb.nn.CrossEntropyLoss(), metrics=["accuracy"])   # doctest: +SKIP
        >>> history = trainer.fit(train_loader, val_loader, epochs=5)           # doctest: +SKIP
        >>> history["val_accuracy"][-1]                                         # doctest: +SKIP
        0.97
    """

    def __init__(self, model, optimizer, loss_fn, metrics: Sequence | None = None,
                 scheduler=None, callbacks: Iterable[Callback] = (),
                 grad_clip_norm: float | None = None, grad_clip_value: float | None = None,
                 device: str | None = None, seed: int | None = None, progress: bool = True,
                 on_nonfinite: str = "stop", detect_anomaly: bool = False,
                 tune_allocator: bool = True,
                 divergence_factor: float | None = DIVERGENCE_FACTOR):
        # the clear error first (no CuPy, no GPU)
        self.device = None if device is None else _backend.usable_device(device)
        if on_nonfinite not in ("stop", "skip"):
            raise ValueError(f"Trainer: on_nonfinite must be 'stop' or 'skip', got "
                             f"{on_nonfinite!r}")
        for name, v in (("grad_clip_norm", grad_clip_norm), ("grad_clip_value", grad_clip_value)):
            if v is not None and not (isinstance(v, int | float) and v > 0):
                raise ValueError(f"Trainer: {name} must be a positive number or None, got {v!r}")
        if divergence_factor is not None and (
                isinstance(divergence_factor, bool)
                or not isinstance(divergence_factor, int | float)
                or not 1 < divergence_factor < math.inf):
            raise ValueError(f"Trainer: divergence_factor must be a finite number > 1 or None "
                             f"(no check), got {divergence_factor!r}")
        if not callable(loss_fn):
            raise TypeError(f"Trainer: loss_fn must be callable, got {type(loss_fn).__name__}")
        self.model = model
        if self.device is not None:
            model.to(self.device)
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        if metrics is None:
            metrics = default_metrics(loss_fn)
        elif isinstance(metrics, str | Metric) or callable(metrics):
            metrics = [metrics]
        self.metric_specs = list(metrics or ())
        self._check_metric_names()
        self.callbacks: list[Callback] = self._check_callbacks(callbacks, "Trainer")
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
        self.divergence_factor = divergence_factor
        self._running: float | None = None  # running loss level (EMA of the batch losses)
        self._lowest: float | None = None  # its lowest value so far
        self.history = History()
        self.epoch = 0  # completed epochs
        self.global_step = 0  # completed optimizer steps
        self.stop_training = False
        self._loaders: dict = {}
        self._verbose: int | None = None  # the running fit's verbose (None: from progress)
        if tune_allocator:
            _allocator.tune()

    # ------------------------------------------------------------------------ helpers
    @staticmethod
    def _check_callbacks(callbacks, where: str) -> list[Callback]:
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        out = list(callbacks)
        for cb in out:
            if not isinstance(cb, Callback):
                raise TypeError(f"{where}: callbacks must be Callback instances, got "
                                f"{type(cb).__name__}")
        return out

    def _metric(self, spec) -> Metric:
        kind = loss_kind(self.loss_fn)
        if isinstance(spec, str) and spec.lower() in ("accuracy", "acc") \
                and kind in ("binary", "binary_logits"):
            # Keras: 'accuracy' with a binary cross-entropy is binary accuracy
            return BinaryAccuracy(from_logits=kind == "binary_logits", name="accuracy")
        return get_metric(spec)

    def _check_metric_names(self):
        names = [self._metric(m).name for m in self.metric_specs]
        if len(set(names)) != len(names) or "loss" in names:
            raise ValueError(f"Trainer: metric names must be unique and not 'loss', got {names}")

    def _new_metrics(self) -> list[Metric]:
        out = []
        for spec in self.metric_specs:
            m = self._metric(spec)
            m.reset()
            out.append(m)
        return out

    def _sorted_callbacks(self) -> list[Callback]:
        return sorted(self.callbacks, key=lambda cb: cb.order)

    @property
    def schedulers(self) -> list:
        return [cb.scheduler for cb in self.callbacks if isinstance(cb, LRSchedulerCallback)]

    def log(self, message: str) -> None:
        """Print a message without breaking the progress bar (nothing under ``verbose=0``)."""
        if self._verbose == 0:
            return
        if self._bar_on():
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

    def _checkpoint_model(self):
        """The model whose weights checkpoints hold: the wrapped one for a wrapper that says
        so (``DistributedDataParallel``), else the model."""
        m = self.model
        return m.module if getattr(m, "checkpoint_module", False) else m

    def save_checkpoint(self, path: str | os.PathLike) -> os.PathLike:
        """Save everything needed to resume (see :mod:`filterbank.train.checkpoint`)."""
        scheds = self.schedulers
        extra = {"schedulers": [s.state_dict() for s in scheds[1:]]} if len(scheds) > 1 else None
        return _ckpt.save_checkpoint(
            path, self._checkpoint_model(), self.optimizer, scheds[0] if scheds else None,
            epoch=self.epoch, global_step=self.global_step, history=self.history,
            loaders=self._loaders, callbacks=self._callback_states(), extra=extra)

    def load_checkpoint(self, path: str | os.PathLike, loaders: dict | None = None) -> dict:
        """Restore model, optimizer, scheduler(s), RNG states, History, counters, callbacks."""
        scheds = self.schedulers
        # a loader added since the checkpoint (e.g. validation) just keeps its own state
        meta = _ckpt.load_checkpoint(path, self._checkpoint_model(), self.optimizer,
                                     scheds[0] if scheds else None, loaders=loaders,
                                     missing_loaders="ignore")
        where = str(path)
        extra = meta.get("extra")
        extra = {} if extra is None else extra
        if not isinstance(extra, dict) or not isinstance(extra.get("schedulers", []), list):
            raise _ckpt.CheckpointError(f"{where}: extra.schedulers: expected a list of "
                                        f"scheduler states")
        for i, (s, state) in enumerate(zip(scheds[1:], extra.get("schedulers", []))):
            try:
                s.load_state_dict(state)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise _ckpt.CheckpointError(f"{where}: extra.schedulers[{i}]: {e}") from None
        rng = (meta.get("rng") or {}).get("global")
        if rng is not None:
            _random.set_rng_state(rng)
        self.epoch = int(meta.get("epoch") or 0)
        self.global_step = int(meta.get("global_step") or 0)
        self.history = History(meta.get("history") or {})
        self._running = None  # the divergence check's levels, from the restored History
        self._lowest = self._lowest_of("loss")
        states = meta.get("callbacks")
        states = {} if states is None else states
        if not isinstance(states, dict):
            raise _ckpt.CheckpointError(f"{where}: callbacks: expected an object of callback "
                                        f"states, got {type(states).__name__}")
        for key, cb in zip(self._callback_states(), self.callbacks):
            if key in states:
                try:
                    cb.load_state_dict(states[key])
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    raise _ckpt.CheckpointError(f"{where}: callbacks.{key}: {e}") from None
        return meta

    # -------------------------------------------------------------------------- fit
    def fit(self, x=None, y=None, *, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str | None = None, callbacks: Iterable[Callback] | None = None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True,
            generator: np.random.Generator | int | None = None,
            resume: str | os.PathLike | None = None, train_loader=None,
            val_loader=None) -> History:
        """Train on loaders (PyTorch style) or on arrays (Keras style).

        Loader form, ``fit(train_loader, val_loader=None, epochs=)``: ``x`` is an iterable of
        ``(inputs, targets)`` batches (a DataLoader) and the second argument the optional
        validation loader. ``epochs`` is the total number of epochs, counting those already
        done (by this trainer or in the checkpoint given to ``resume``), so calling it again
        with the same ``epochs`` trains no further.

        Array form, ``fit(x, y, batch_size=32, epochs=1, validation_data=(xv, yv), ...)``:
        ``x`` and ``y`` are arrays or Tensors with the samples along axis 0 (float64 becomes
        float32). As in Keras, ``epochs`` epochs are trained by each call (a second call
        continues from the current weights; the History keeps counting epochs), shuffling
        every epoch unless ``shuffle=False``, and ``validation_split=f`` holds out the *last*
        ``f`` of the samples, taken before shuffling: samples ``floor(N (1 - f))`` to ``N-1``.

        Args:
            x: a training loader, or the inputs.
            y: the targets (array form), or the validation loader (loader form).
            batch_size: samples per step (array form; default 32). Validation uses it too.
            epochs: epochs to train (array form) or the total to reach (loader form).
            verbose: 0 silent (no progress bar, no messages), 1 a progress bar per epoch,
                2 one line per epoch on stdout ("auto" = 1). Default: 1 when the trainer was
                made with ``progress=True``, else 0 (messages still shown).
            callbacks: callbacks for this call only, run with the trainer's own.
            validation_split: fraction in [0, 1) of the array samples held out for validation
                (array form; not with ``validation_data``).
            validation_data: ``(x_val, y_val)`` arrays or a loader, evaluated after every
                epoch (History keys ``val_*``).
            shuffle: reshuffle the training arrays every epoch (array form; a loader shuffles
                by its own settings).
            generator: the shuffling generator or its seed (array form). Default: a seed drawn
                from the global generator, so ``Trainer(seed=)``/``fb.manual_seed`` make the
                order reproducible.
            resume: a checkpoint to continue from (e.g. ``ModelCheckpoint``'s ``last``); then
                ``epochs`` is the total to reach in both forms.
            train_loader, val_loader: the loader form's arguments by keyword.

        Returns:
            the :class:`History` (also ``trainer.history``; ``history.history`` is itself).

        Raises:
            NonFiniteLossError: the loss became NaN/Inf and ``on_nonfinite='stop'``.
            DivergenceError: a loss exceeded ``divergence_factor`` times its level (the
                parent class of NonFiniteLossError; the message names the step, and the
                weights in memory are those after the update that diverged).
            ValueError, TypeError: inconsistent arguments (x and y of different lengths,
                ``validation_split`` outside [0, 1) or given with ``validation_data``, ...).

        Example:
            >>> import filterbank as fb
            >>> x = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
            >>> y = (x[:, 0] > 0).astype(np.int64)
            >>> _ = fb.manual_seed(0); model = fb.nn.Linear(2, 2)
            >>> trainer = Trainer(model, fb.optim.SGD(model.parameters(), lr=0.5),
            ...                   fb.nn.CrossEntropyLoss())
            >>> h = trainer.fit(x, y, batch_size=16, epochs=5, validation_split=0.25, verbose=0)
            >>> h["epoch"], h["val_accuracy"][-1] > 0.8
            ([1, 2, 3, 4, 5], True)
            >>> trainer.evaluate(x, y)["accuracy"] > 0.8, trainer.predict(x).shape
            (True, (64, 2))
        """
        where = "Trainer.fit"
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"{where}: epochs must be an int >= 0, got {epochs!r}")
        if verbose is not None:
            verbose = _check_verbose(verbose, where)
        if isinstance(validation_split, bool) or not isinstance(validation_split, int | float) \
                or not 0 <= validation_split < 1:
            raise ValueError(f"{where}: validation_split must be a number in [0, 1), got "
                             f"{validation_split!r}")
        if train_loader is not None:
            if x is not None:
                raise TypeError(f"{where}: got both x and train_loader; pass one")
            x = train_loader
        if x is None:
            raise TypeError(f"{where}: missing the training data: fit(x, y, ...) with arrays or "
                            f"fit(train_loader, ...) with a loader")
        if val_loader is not None:
            if validation_data is not None:
                raise ValueError(f"{where}: got both val_loader and validation_data; pass one")
            validation_data = val_loader
        arrays = _is_array(x)
        if arrays:
            if y is None:
                raise ValueError(f"{where}: x is an array but y (the targets) is missing; "
                                 f"call fit(x, y, ...)")
        else:
            if _is_array(y):
                raise TypeError(f"{where}: x is a {type(x).__name__} (a loader of batches) but "
                                f"y is an array; pass arrays for both x and y, or a training "
                                f"loader and a validation loader")
            if y is not None:
                if validation_data is not None:
                    raise ValueError(f"{where}: got a validation loader twice (second argument "
                                     f"and validation_data/val_loader); pass one")
                validation_data = y
            if batch_size is not None:
                raise ValueError(f"{where}: batch_size={batch_size!r} applies to array inputs; "
                                 f"a loader has its own batch size")
            if validation_split:
                raise ValueError(f"{where}: validation_split needs arrays x and y (it cannot "
                                 f"split a loader); pass validation_data or a val_loader")
            if generator is not None:
                raise ValueError(f"{where}: generator= shuffles array inputs; a loader has its "
                                 f"own generator")
        if validation_split and validation_data is not None:
            raise ValueError(f"{where}: pass validation_data or validation_split, not both")
        extra = self._check_callbacks(callbacks or (), where)

        if resume is None and self.seed is not None:
            _random.manual_seed(self.seed)  # before any generator is drawn below
        if arrays:
            batch_size = _check_batch_size(32 if batch_size is None else batch_size, where)
            xa, ya = _arrays(x, y, where)
            if validation_split:
                n = len(xa)
                split_at = int(math.floor(n * (1.0 - validation_split)))  # Keras's formula
                if split_at in (0, n):
                    raise ValueError(f"{where}: validation_split={validation_split} of {n} "
                                     f"samples leaves {split_at} for training and {n - split_at}"
                                     f" for validation; both need at least one")
                validation_data = (xa[split_at:], ya[split_at:])
                xa, ya = xa[:split_at], ya[:split_at]
            train = _array_loader(xa, ya, batch_size, shuffle=bool(shuffle), generator=generator)
            end = epochs if resume is not None else self.epoch + epochs
        else:
            train = x
            end = epochs
        val = self._validation_loader(validation_data, batch_size, where)
        return self._fit(train, val, end, resume, extra, verbose)

    def _validation_loader(self, data, batch_size: int | None, where: str):
        if data is None:
            return None
        if isinstance(data, tuple | list) and data and _is_array(data[0]):
            if len(data) != 2:
                raise ValueError(f"{where}: validation_data must be (x_val, y_val), got a "
                                 f"{type(data).__name__} of {len(data)} items (sample weights "
                                 f"are not supported)")
            xv, yv = _arrays(data[0], data[1], f"{where} (validation_data)")
            return _array_loader(xv, yv, batch_size or 256)
        if _is_array(data):
            raise TypeError(f"{where}: validation_data must be (x_val, y_val) or a loader, got "
                            f"a single {type(data).__name__}")
        if not isinstance(data, Iterable):
            raise TypeError(f"{where}: validation_data must be (x_val, y_val) or a loader, got "
                            f"{type(data).__name__}")
        return data

    def _fit(self, train_loader, val_loader, epochs: int, resume, extra: list[Callback],
             verbose: int | None) -> History:
        self._loaders = {name: ld for name, ld in (("train", train_loader), ("val", val_loader))
                         if ld is not None and hasattr(ld, "state_dict")}
        n_own = len(self.callbacks)
        self.callbacks.extend(extra)  # for this call: their state goes into its checkpoints
        self._verbose = verbose
        try:
            if resume is not None:
                self.load_checkpoint(resume, loaders=self._loaders)
            return self._epochs(train_loader, val_loader, epochs)
        finally:
            del self.callbacks[n_own:]
            self._verbose = None

    def _epochs(self, train_loader, val_loader, epochs: int) -> History:
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
                if val_loader is not None:
                    self._check_val_divergence(logs["val_loss"], epoch)
                logs["lr"] = float(lr)
                self.history.append(logs)
                self.epoch = epoch + 1
                if self._verbose == 2:
                    print(self._epoch_line(logs, epochs), flush=True)
                for cb in callbacks:
                    cb.on_epoch_end(self, epoch, logs)
        finally:
            for cb in callbacks:
                cb.on_train_end(self)
        return self.history

    @staticmethod
    def _epoch_line(logs: dict, epochs: int) -> str:
        parts = [f"Epoch {logs['epoch']}/{epochs}", f"{logs.get('time', 0.0):.2f}s"]
        parts += [f"{k}: {v:.4f}" for k, v in logs.items()
                  if k not in ("epoch", "time", "images_per_sec", "skipped", "lr")
                  and v is not None]
        return " - ".join(parts)

    def _bar_on(self) -> bool:
        return self.progress if self._verbose is None else self._verbose == 1

    def _progress_bar(self, loader, epoch, epochs):
        if not self._bar_on():
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

    def _lowest_of(self, key: str) -> float | None:
        """The lowest finite epoch mean of ``key`` in the History (None if there is none)."""
        values = [v for v in self.history.get(key) or () if v is not None and math.isfinite(v)]
        return min(values) if values else None

    def _check_val_divergence(self, value: float, epoch: int) -> None:
        lowest = self._lowest_of("val_loss")
        if self.divergence_factor is None or lowest is None:
            return
        level = max(1.0, lowest)
        if value > self.divergence_factor * level:
            raise DivergenceError(
                f"Trainer.fit: the validation loss diverged after epoch {epoch + 1}: "
                f"{value:.4g} is more than {self.divergence_factor:g} times its level "
                f"{level:.4g} (the lowest so far, at least 1); training "
                f"stopped and no checkpoint was written for this epoch. The weights in memory "
                f"are those after the epoch's last update; "
                + (f"a checkpoint saved after epoch {self.epoch} is the last good state. "
                   if self.epoch else "")
                + "Try a smaller learning rate or gradient clipping (grad_clip_norm=); "
                  "divergence_factor=None turns this check off")

    def _train_epoch(self, loader, epoch: int, bar, callbacks) -> dict:
        self.model.train()
        # a metric marked validation_only (a detector's mAP: it decodes and matches the whole
        # set) is computed on the validation data only
        metrics = [m for m in self._new_metrics() if not getattr(m, "validation_only", False)]
        loss_sum, seen, skipped = 0.0, 0, 0
        start = time.perf_counter()
        step = 0
        it = iter(loader)
        try:
            for step, batch in enumerate(it, start=1):
                x, y = _split_batch(batch, "Trainer.fit")
                x, y = _as_tensor(x), _as_tensor(y)
                n = x.shape[0] if x.ndim else 1
                level = None if self._lowest is None else max(1.0, self._lowest)
                result = self._train_step(self._on_device(x), self._on_device(y), epoch, step,
                                          level)
                if result is None:
                    skipped += 1
                else:
                    loss_value, out = result
                    loss_sum += loss_value * n
                    seen += n
                    if metrics:
                        out = _backend.to_numpy(out)
                    for m in metrics:
                        m.update(out, y)
                    self.global_step += 1
                    self._track_level(loss_value)
                step_logs = {"loss": loss_sum / seen if seen else float("nan")}
                for cb in callbacks:
                    cb.on_batch_end(self, self.global_step, step_logs)
                if bar is not None:
                    elapsed = time.perf_counter() - start
                    logs = {"loss": step_logs["loss"], **{m.name: m.compute() for m in metrics},
                            "images_per_sec": (seen / elapsed) if elapsed > 0 else 0.0}
                    bar.set_postfix(self._postfix(logs), refresh=False)
                    bar.update(1)
        finally:
            _close(it, loader)
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

    def _on_device(self, t: Tensor) -> Tensor:
        """A batch tensor on the trainer's device (as it is, without a device)."""
        if self.device is None:
            return t
        return Tensor._wrap(_backend.to_device(t.data, self.device))

    def _track_level(self, loss: float) -> None:
        r = loss if self._running is None else (1 - _RUNNING) * self._running + _RUNNING * loss
        self._running = r
        self._lowest = r if self._lowest is None else min(self._lowest, r)

    def _train_step(self, x: Tensor, y: Tensor, epoch: int, step: int,
                    level: float | None = None):
        """One update; returns (loss, output array), or None when the batch was skipped.
        ``level``: the loss level for the divergence check (None: not checked)."""
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
            if level is not None and self.divergence_factor is not None \
                    and value > self.divergence_factor * level:
                self._diverged(value, level, epoch, step)
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

    def _where(self, epoch: int, step: int) -> str:
        return f"epoch {epoch + 1}, step {step} (global step {self.global_step + 1})"

    def _state_note(self) -> str:
        """What the weights in memory and the checkpoints hold after a stop."""
        done = self.global_step
        weights = (f"the weights in memory are those after the previous update (global step "
                   f"{done}), the one that led here, not a good state" if done else
                   "no update was applied, the weights in memory are the initial ones")
        saved = (f"a checkpoint saved after epoch {self.epoch} (ModelCheckpoint's last) is the "
                 f"last good state" if self.epoch else
                 "no epoch has ended, so no checkpoint of this run was written")
        return f"{weights}; {saved}"

    def _diverged(self, value: float, level: float, epoch: int, step: int):
        self.optimizer.zero_grad()
        raise DivergenceError(
            f"Trainer.fit: the loss diverged at {self._where(epoch, step)}: {value:.4g} is "
            f"more than {self.divergence_factor:g} times its level {level:.4g} (the lowest "
            f"running mean of the batch losses so far, at least 1); training stopped before "
            f"this update; {self._state_note()}. Try a smaller learning rate or gradient "
            f"clipping (grad_clip_norm=); divergence_factor=None turns this check off")

    def _nonfinite(self, value: float, what: str, epoch: int, step: int):
        self.optimizer.zero_grad()
        where = self._where(epoch, step)
        if self.on_nonfinite == "skip":
            self.log(f"Trainer: skipped a batch with a non-finite {what} ({value}) at {where}")
            return None
        raise NonFiniteLossError(
            f"Trainer.fit: the {what} is {value} at {where}; training stopped before this "
            f"update; {self._state_note()}. Try a smaller learning rate, gradient clipping "
            f"(grad_clip_norm=), on_nonfinite='skip', or detect_anomaly=True to name the op "
            f"that produced it")

    # --------------------------------------------------------------------- evaluate
    def _evaluate(self, loader) -> dict:
        was_training = self.model.training
        self.model.eval()
        metrics = self._new_metrics()
        loss_sum, seen = 0.0, 0
        it = iter(loader)
        try:
            with grad_mode.no_grad():
                for batch in it:
                    x, y = _split_batch(batch, "Trainer.evaluate")
                    x, y = _as_tensor(x), _as_tensor(y)
                    out = self.model(self._on_device(x))
                    n = x.shape[0] if x.ndim else 1
                    loss_sum += float(self.loss_fn(out, self._on_device(y)).data.reshape(())) * n
                    seen += n
                    host = _backend.to_numpy(out.data) if metrics else None
                    for m in metrics:
                        m.update(host, y)
        finally:
            _close(it, loader)
            self.model.train(was_training)
        if seen == 0:
            raise ValueError("Trainer.evaluate: the loader produced no batches")
        return {"loss": loss_sum / seen, **{m.name: m.compute() for m in metrics}}

    def evaluate(self, x, y=None, *, batch_size: int | None = None,
                 verbose: int | str = 0) -> dict:
        """Loss and metrics in eval mode, without gradients: ``evaluate(loader)`` or, as in
        Keras, ``evaluate(x, y, batch_size=)`` (a dict, like Keras's ``return_dict=True``).

        Args:
            x: a loader of ``(inputs, targets)`` batches, or the inputs (array or Tensor).
            y: the targets (with array inputs).
            batch_size: samples per forward pass with arrays (default 256; the results do
                not depend on it).
            verbose: 0 silent; 1, 2 or 'auto' print the results on one line (stdout).

        Returns:
            ``{"loss": float, "<metric>": float, ...}`` (sample-weighted means).
        """
        where = "Trainer.evaluate"
        verbose = _check_verbose(verbose, where)
        if _is_array(x):
            if y is None:
                raise ValueError(f"{where}: x is an array but y (the targets) is missing; "
                                 f"call evaluate(x, y)")
            bs = _check_batch_size(256 if batch_size is None else batch_size, where)
            res = self._evaluate(_array_loader(*_arrays(x, y, where), bs))
        elif y is not None or batch_size is not None:
            raise TypeError(f"{where}: with a loader ({type(x).__name__}) pass neither y nor "
                            f"batch_size; with arrays call evaluate(x, y, batch_size=)")
        else:
            res = self._evaluate(x)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in res.items()), flush=True)
        return res

    def predict(self, x, batch_size: int = 256, verbose: int | str = 0) -> np.ndarray:
        """Model outputs (eval mode, no gradients) as one NumPy array, concatenated along axis 0.

        Args:
            x: an array / Tensor of inputs, processed ``batch_size`` samples at a time, or a
                loader (batches of inputs, or of ``(inputs, targets)``).
            batch_size: samples per forward pass for array inputs (the outputs do not depend
                on it).
            verbose: accepted for Keras's ``predict(x, verbose=0)``; predict prints nothing.

        Returns:
            ``(N, ...)`` array of outputs (float64 inputs are cast to float32 first).
        """
        _check_verbose(verbose, "Trainer.predict")
        if _is_array(x):
            bs = _check_batch_size(batch_size, "Trainer.predict")
            arr = x.data if isinstance(x, Tensor) else x
            if arr.ndim == 0:
                raise ValueError(f"Trainer.predict: x needs a leading sample axis, got shape "
                                 f"{arr.shape}")
            batches = (arr[i:i + bs] for i in range(0, len(arr), bs))
        else:
            batches = x
        was_training = self.model.training
        self.model.eval()
        outs = []
        it = iter(batches)
        try:
            with grad_mode.no_grad():
                for batch in it:
                    if isinstance(batch, tuple | list | dict):
                        batch = _split_batch(batch, "Trainer.predict")[0] \
                            if not (isinstance(batch, tuple | list) and len(batch) == 1) \
                            else batch[0]
                    out = self.model(self._on_device(_as_tensor(batch)))
                    outs.append(_backend.to_numpy(out.data))
        finally:
            _close(it, batches)
            self.model.train(was_training)
        if not outs:
            raise ValueError("Trainer.predict: no input batches")
        return np.concatenate(outs, axis=0)
