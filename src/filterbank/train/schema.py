"""The JSON files of checkpoints and run folders, and the one schema every reader checks.

Two kinds of JSON file sit beside the arrays:

* a checkpoint sidecar (``model.json``, ``checkpoints/last.json``, ``best.json``; see
  :mod:`filterbank.train.checkpoint`): :data:`CHECKPOINT`;
* a run configuration (``config.json``, also embedded in ``model.json`` as
  ``extra.config``; see :mod:`filterbank.train.runs`): :data:`RUN_CONFIG`.

Whoever reads them reads them through :func:`read_json` (a regular file of at most
:data:`MAX_JSON_BYTES` bytes, nested at most :data:`~filterbank.serialization.MAX_DEPTH`
levels) and then :func:`validate`, so a damaged or hostile file gives one line naming the
file and the field, what was expected and what was found::

    runs/x/config.json: training.optimizer: expected a string (an optimizer name), got 5
    runs/x/model.json: extra.config.model_kwargs: missing (expected an object of model
    constructor arguments)

Keys not in the schema are allowed (a newer filterbank may add some); the types of the keys
listed are checked, and those readers rely on must be present.
"""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np

from filterbank.serialization import MAX_DEPTH, ErrorType, parse_json, read_regular_file

__all__ = ["CHECKPOINT", "MAX_JSON_BYTES", "RUN_CONFIG", "read_json", "validate",
           "validate_config"]

#: Largest JSON sidecar or config a reader accepts.
MAX_JSON_BYTES = 64 * 2**20


class _Invalid(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(field, message)
        self.field, self.message = field, message


def _got(value) -> str:
    kind = ("null" if value is None else "a boolean" if isinstance(value, bool)
            else "a number" if isinstance(value, int | float)
            else "a string" if isinstance(value, str)
            else "a list" if isinstance(value, list | tuple)
            else "an object" if isinstance(value, dict) else type(value).__name__)
    try:
        text = json.dumps(value, default=repr)
    except (ValueError, TypeError, RecursionError):
        text = "..."
    if len(text) > 40:
        text = text[:37] + "..."
    return text if value is None or isinstance(value, bool) else f"{text} ({kind})"


# ------------------------------------------------------------------------ the checks
class Spec:
    """One node of a schema: ``what`` says what is expected (for the message)."""

    what = "a value"

    def check(self, value, field: str) -> None:
        raise NotImplementedError

    def fail(self, value, field: str):
        raise _Invalid(field, f"expected {self.what}, got {_got(value)}")


class Anything(Spec):
    """Anything JSON holds (the depth limit still applies)."""

    def check(self, value, field: str) -> None:
        pass


class Scalar(Spec):
    """A string, int, number or boolean (ints and numbers exclude booleans), optionally at
    least ``minimum`` or matching ``pattern``."""

    def __init__(self, kind: str, what: str | None = None, minimum=None, pattern=None):
        self.kind, self.minimum = kind, minimum
        self.pattern = re.compile(pattern) if pattern else None
        base = {"str": "a string", "int": "an integer", "number": "a number",
                "bool": "true or false"}[kind]
        if minimum is not None:
            base += f" >= {minimum}"
        self.what = f"{base} ({what})" if what else base

    def check(self, value, field: str) -> None:
        ok = {"str": isinstance(value, str),
              "int": isinstance(value, int | np.integer) and not isinstance(value, bool),
              "number": isinstance(value, int | float | np.integer | np.floating)
              and not isinstance(value, bool),
              "bool": isinstance(value, bool)}[self.kind]
        if not ok or (self.minimum is not None and not value >= self.minimum) \
                or (self.pattern is not None and not self.pattern.fullmatch(value)):
            self.fail(value, field)


class Nullable(Spec):
    """``inner`` or null."""

    def __init__(self, inner: Spec):
        self.inner, self.what = inner, f"{inner.what} or null"

    def check(self, value, field: str) -> None:
        if value is not None:
            try:
                self.inner.check(value, field)
            except _Invalid as e:
                if e.field != field or not e.message.startswith("expected "):
                    raise  # a problem inside the value: report that one
                self.fail(value, field)


class ListOf(Spec):
    """A list (a tuple, once decoded) of ``item``; ``length``: exactly that many."""

    def __init__(self, item: Spec, what: str | None = None, length: int | None = None,
                 min_length: int = 0):
        self.item, self.length, self.min_length = item, length, min_length
        self.what = what or f"a list of {item.what}"

    def check(self, value, field: str) -> None:
        if not isinstance(value, list | tuple) or len(value) < self.min_length \
                or (self.length is not None and len(value) != self.length):
            self.fail(value, field)
        for i, v in enumerate(value):
            self.item.check(v, f"{field}[{i}]")


class MapOf(Spec):
    """An object whose values are all ``value``."""

    def __init__(self, value: Spec, what: str):
        self.value, self.what = value, what

    def check(self, value, field: str) -> None:
        if not isinstance(value, dict):
            self.fail(value, field)
        for k, v in value.items():
            self.value.check(v, f"{field}.{k}" if field else str(k))


class Obj(Spec):
    """An object with ``required`` and ``optional`` keys (others are allowed)."""

    def __init__(self, what: str, required: dict[str, Spec],
                 optional: dict[str, Spec] | None = None):
        self.what, self.required, self.optional = what, required, optional or {}

    def check(self, value, field: str) -> None:
        if not isinstance(value, dict):
            self.fail(value, field)
        for key, spec in (*self.required.items(), *self.optional.items()):
            sub = f"{field}.{key}" if field else key
            if key in value:
                spec.check(value[key], sub)
            elif key in self.required:
                raise _Invalid(sub, f"missing (expected {spec.what})")


class GeneratorState(Spec):
    """A NumPy bit generator's state (``bit_generator.state``): checked by giving it to a
    fresh generator of the kind it names, so a damaged one is caught before it is used."""

    what = "a NumPy generator state ({\"bit_generator\": \"PCG64\", \"state\": {...}, ...})"
    KINDS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")

    def check(self, value, field: str) -> None:
        if not isinstance(value, dict) or value.get("bit_generator") not in self.KINDS:
            self.fail(value, field)
        try:
            getattr(np.random, value["bit_generator"])().state = value
        except Exception as e:  # NumPy's setters raise many kinds (IndexError, OverflowError...)
            raise _Invalid(field, f"not a valid {value['bit_generator']} state "
                                  f"({str(e)[:60]})") from None


INT = Scalar("int")
COUNT = Scalar("int", minimum=0)
POSITIVE = Scalar("int", minimum=1)
NUMBER = Scalar("number")
STR = Scalar("str")
BOOL = Scalar("bool")
ANY = Anything()
OBJECT = MapOf(ANY, "an object")
GENERATOR = GeneratorState()
STRINGS = ListOf(STR)

#: A checkpoint sidecar (written by :func:`~filterbank.train.checkpoint.save_checkpoint`).
CHECKPOINT = Obj("a checkpoint sidecar object", {
    "format": STR,
    "format_version": INT,
    "epoch": COUNT,
    "global_step": COUNT,
    "tensor_file": STR,
    "tensor_bytes": COUNT,
    "tensor_sha256": Scalar("str", "64 hex digits", pattern="[0-9a-f]{64}"),
}, {
    "filterbank_version": STR,
    "model": Obj("an object with the model's class and keys", {
        "class": STR,
        "keys": MapOf(ListOf(COUNT), "an object of key -> shape"),
    }),
    "optimizer": Obj("an object with the optimizer's class and state",
                     {"class": STR, "state": OBJECT}),
    "scheduler": Obj("an object with the scheduler's class and state",
                     {"class": STR, "state": OBJECT}),
    "history": MapOf(ListOf(ANY), "an object of metric name -> list of values"),
    "rng": Obj("an object of generator states", {}, {
        "global": Nullable(GENERATOR),
        "loaders": MapOf(Obj("a data loader's generator states", {"generator": GENERATOR},
                             {"transform_generators": ListOf(GENERATOR)}),
                         "an object of loader name -> generator states"),
    }),
    "callbacks": OBJECT,
    "extra": ANY,
})

#: A run configuration (``config.json``, written by ``filterbank train``).
RUN_CONFIG = Obj("a run configuration object", {
    "format": STR,
    "version": INT,
    "model": Scalar("str", "a zoo model name"),
    "model_kwargs": MapOf(ANY, "an object of model constructor arguments"),
    "dataset": STR,
    "requested_dataset": Scalar("str", "a data set name or folder"),
    "classes": ListOf(STR, "a non-empty list of class names", min_length=1),
    "preprocessing": Obj("an object with channels, size, mean and std", {
        "channels": POSITIVE,
        "size": ListOf(POSITIVE, "a list of 2 positive integers (height, width)", length=2),
        "mean": ListOf(NUMBER, "a list of numbers, one per channel", min_length=1),
        "std": ListOf(NUMBER, "a list of numbers, one per channel", min_length=1),
    }, {"resize": BOOL, "scale": NUMBER, "formula": STR}),
    "training": Obj("an object of training options", {
        "epochs": POSITIVE,
        "batch_size": POSITIVE,
        "optimizer": Scalar("str", "an optimizer name"),
        "lr": NUMBER,
        "momentum": NUMBER,
        "weight_decay": Nullable(NUMBER),
        "schedule": Scalar("str", "a schedule name"),
        "augment": ListOf(STR, "a list of augmentation names"),
        "seed": COUNT,
        "val_split": NUMBER,
        "limit": Nullable(POSITIVE),
        "image_size": Nullable(POSITIVE),
    }, {
        "warmup_steps": Nullable(NUMBER),
        "freeze": Nullable(STRINGS),
        "init_from": Nullable(STR),
    }),
}, {
    "filterbank_version": STR,
    "task": Scalar("str", "a task name: classify, detect, segment, regress or multilabel"),
    "task_args": MapOf(ANY, "an object of the task's options"),
    "model_args": MapOf(ANY, "an object of model arguments"),
    "data": OBJECT,
    "results": OBJECT,
})


# ------------------------------------------------------------------------ entry points
def validate(obj, spec: Spec, where: str, error: ErrorType = ValueError,
             prefix: str = "") -> None:
    """Check ``obj`` against ``spec``; raise ``error("<where>: <field>: <problem>")``.

    ``prefix`` names where ``obj`` sits in its file (``extra.config`` for the run config
    embedded in ``model.json``).
    """
    try:
        spec.check(obj, prefix)
    except _Invalid as e:
        raise error(f"{where}: {e.field or 'the top level'}: {e.message}") from None


def _preprocessing_fits(config: dict, where: str, error: ErrorType, prefix: str) -> None:
    pre = config["preprocessing"]
    for key in ("mean", "std"):
        if len(pre[key]) != pre["channels"]:
            field = f"{prefix}.preprocessing.{key}" if prefix else f"preprocessing.{key}"
            raise error(f"{where}: {field}: expected {pre['channels']} number(s), one per "
                        f"channel (preprocessing.channels), got {len(pre[key])}")


def _training_fits(config: dict, where: str, error: ErrorType, prefix: str) -> None:
    """The ranges ``filterbank train`` checks its options against (a resumed run takes them
    from the file, past those checks): val_split=2 ended in a StopIteration traceback."""
    t = config["training"]
    checks = {"val_split": (0 <= t["val_split"] < 1, "a number in [0, 1)"),
              "lr": (math.isfinite(t["lr"]) and t["lr"] > 0, "a finite number > 0"),
              "momentum": (math.isfinite(t["momentum"]), "a finite number"),
              "weight_decay": (t["weight_decay"] is None or math.isfinite(t["weight_decay"]),
                               "a finite number or null")}
    for key, (ok, what) in checks.items():
        if not ok:
            field = f"{prefix}.training.{key}" if prefix else f"training.{key}"
            raise error(f"{where}: {field}: expected {what}, got {_got(t[key])}")


def validate_config(obj, path: str | os.PathLike, error: ErrorType | None = None,
                    prefix: str = "") -> dict:
    """Check a run configuration (``config.json``) against :data:`RUN_CONFIG`; returns it.

    Args:
        obj: the parsed JSON.
        path: the file it came from (for the message).
        error: what to raise (default :class:`~filterbank.train.checkpoint.CheckpointError`).
        prefix: where the config sits in its file (``extra.config`` inside ``model.json``).

    Raises:
        CheckpointError: (a ValueError) a missing or wrong-typed field, named with the file.

    Example:
        >>> validate_config({"format": "filterbank-run", "version": 1, "model": 5},
        ...                 "runs/x/config.json")
        Traceback (most recent call last):
        ...
        filterbank.train.checkpoint.CheckpointError: runs/x/config.json: model: expected a \
string (a zoo model name), got 5 (a number)
    """
    if error is None:
        from filterbank.train.checkpoint import CheckpointError as error
    validate(obj, RUN_CONFIG, str(path), error, prefix)
    _preprocessing_fits(obj, str(path), error, prefix)
    _training_fits(obj, str(path), error, prefix)
    if "task" in obj:
        from filterbank.train.tasks import TASKS

        if obj["task"] not in TASKS:
            field = f"{prefix}.task" if prefix else "task"
            raise error(f"{path}: {field}: expected one of {', '.join(TASKS)}, got "
                        f"{_got(obj['task'])}")
    return obj


def read_json(path: str | os.PathLike, error: ErrorType = ValueError, what: str = "JSON file"):
    """Parse the JSON file ``path`` safely: a regular file (no FIFO, device or link to one),
    at most :data:`MAX_JSON_BYTES` bytes, valid UTF-8 JSON nested at most
    :data:`~filterbank.serialization.MAX_DEPTH` levels; otherwise ``error`` naming the file.

    Raises:
        FileNotFoundError: no such file.
    """
    data = read_regular_file(path, MAX_JSON_BYTES, error, what)
    return parse_json(data, str(path), error, MAX_DEPTH)
