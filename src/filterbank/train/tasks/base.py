"""What every task supplies to ``filterbank train``, ``evaluate`` and ``predict``.

A :class:`Task` owns what differs between classification, detection, segmentation,
regression and multi-label classification: which models and data sets fit, how targets are
encoded for the loss, the loss, the metrics tracked per epoch, the test report with its plots
and the pictures ``predict`` draws. The run folder, options, optimizer, schedule, checkpoints
and resuming are the same for all of them (:mod:`filterbank.train.run`).

The tasks other than classification train on :class:`~filterbank.data.datasets.Shapes`
images (``--dataset shapes``), drawn once into arrays (6,000 64x64 images take about 6 s), in
``[0, 1]`` with no further normalisation (the run's preprocessing records mean 0, std 1, so
``predict`` reads an image file as ``pixel / 255``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from filterbank.data import DataLoader

Log = Callable[[str], object]


@dataclass
class TaskData:
    """The data of one run, ready for the Trainer: loaders and what the report needs."""

    resolved: str                 # the data set's name in the run folder
    requested: str                # what was asked for (an image folder: its full path)
    source: str                   # where the images came from (for the log)
    classes: list[str]
    channels: int
    size: tuple[int, int]
    pre: dict                     # the preprocessing recorded in config.json
    train_loader: DataLoader
    val_loader: DataLoader | None
    test_loader: DataLoader | None  # classify's; the other tasks score arrays
    probe: DataLoader             # one training image, for the fit check
    counts: dict                  # train_images, val_images, test_images
    test_truth: object = None     # what the task's test report compares with
    extra: dict = field(default_factory=dict)


class ArrayPairs:
    """Inputs ``x`` and encoded targets ``y`` held as arrays, with an optional augmentation
    applied to a whole batch of pairs (a flip must move the pixels and the targets together).

    ``augment(x, y, rng) -> (x, y)`` gets copies and a generator seeded from ``seed`` and the
    batch's indices, so a batch is augmented the same way whatever order it is drawn in.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, augment: Callable | None = None,
                 seed: int = 0):
        if len(x) != len(y):
            raise ValueError(f"ArrayPairs: {len(x)} inputs but {len(y)} targets")
        self.x, self.y, self.augment, self.seed = x, y, augment, int(seed)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        x, y = self.get_batch(np.array([i]))
        return x[0], y[0]

    def get_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        x, y = self.x[idx], self.y[idx]
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, *idx[:4].tolist(), len(idx)])
            x, y = self.augment(x, y, rng)
        return x, y


def flip_half(x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
              flip_target: Callable[[np.ndarray], np.ndarray]):
    """Mirror a random half of the batch left-right: the images, and the targets through
    ``flip_target`` (which gets the selected targets and returns them mirrored)."""
    which = rng.random(len(x)) < 0.5
    if which.any():
        x = x.copy()
        y = y.copy()
        x[which] = x[which][..., ::-1]
        y[which] = flip_target(y[which])
    return x, y


def flipper(augment, flip_target: Callable[[np.ndarray], np.ndarray]) -> Callable | None:
    """The batch augmentation for ``augment`` (``'flip'`` or nothing): :func:`flip_half`
    with ``flip_target``."""
    if "flip" not in augment:
        return None
    return lambda x, y, rng: flip_half(x, y, rng, flip_target)


def split_indices(n: int, limit: int | None, val_split: float, seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of a training split of ``n`` items: at most ``limit``
    of them (seeded), ``val_split`` of those held out."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n) if limit is None or limit >= n else np.sort(rng.choice(n, limit,
                                                                             replace=False))
    n_val = int(round(val_split * len(idx)))
    perm = rng.permutation(idx)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class Task:
    """The interface of a task (see the module docstring). Subclasses set the attributes and
    implement the methods; :mod:`filterbank.train.run` calls them in this order:
    :meth:`parse_options`, :meth:`check_model`, :meth:`check_augment`, :meth:`load`,
    :meth:`model_kwargs`, (the model is built) :meth:`prepare`, :meth:`output_shape` (checked
    on one image), :meth:`loss`, :meth:`metrics`, :meth:`monitor`, then after training
    :meth:`report`. ``evaluate`` calls :meth:`evaluate_run`, ``predict``
    :meth:`predict_arrays`, :meth:`draw` and :meth:`describe`."""

    #: the ``--task`` name
    name = "task"
    #: one line for ``--help`` and errors
    description = ""
    #: the zoo model used when none is given (None: ``--model`` is required)
    default_model: str | None = None
    #: the data set used when none is given
    default_dataset = "shapes"
    #: training options this task changes from the command line's defaults, when not given
    defaults: dict = {}
    #: augmentations this task can apply
    augmentations: tuple[str, ...] = ("flip",)
    #: whether ``--dataset`` may be a COCO-format folder
    reads_coco = True
    #: whether the task needs the COCO polygons rasterised
    coco_masks = False
    #: options of ``task_args`` (``--task-arg KEY=VALUE``) and their defaults
    options: dict = {}

    # ----------------------------------------------------------------- options
    def parse_options(self, given: dict | None) -> dict:
        """``given`` checked against :attr:`options` (unknown keys and wrong types refused),
        completed with the defaults."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise ValueError(f"task {self.name!r}: unknown task argument(s) {unknown} "
                             f"(its arguments: {known})")
        out = dict(self.options)
        for key, value in given.items():
            default = self.options[key]
            if isinstance(default, bool) != isinstance(value, bool) or not isinstance(
                    value, type(default) if not isinstance(default, float) else int | float):
                raise ValueError(f"task {self.name!r}: argument {key} must be "
                                 f"{type(default).__name__} like its default {default!r}, "
                                 f"got {value!r}")
            out[key] = value
        return out

    #: the kind of zoo model the task trains (:func:`filterbank.models.model_task`), and
    #: what that means, for the error naming a model of another kind
    model_kind = "classify"
    needs = "a model with one output per class"

    def check_model(self, name: str) -> None:
        from filterbank.models import model_task

        kind = model_task(name)
        if kind != self.model_kind:
            raise ValueError(f"task {self.name!r} needs {self.needs}; model {name!r} is a "
                             f"{kind} model")

    def check_augment(self, aug: Sequence[str]) -> None:
        bad = [a for a in aug if a not in self.augmentations]
        if bad:
            raise ValueError(f"task {self.name!r} supports the augmentations "
                             f"{', '.join(self.augmentations) or 'none'}; got {', '.join(bad)}")

    # -------------------------------------------------------------- the methods
    def load(self, dataset: str, *, data_root, download: bool, image_size: int | None,
             limit: int | None, seed: int, val_split: float, batch_size: int, prefetch: int,
             augment: Sequence[str], options: dict, old: dict | None, init: dict | None,
             log: Log) -> TaskData:  # pragma: no cover - overridden
        raise NotImplementedError

    def model_kwargs(self, name: str, data: TaskData, extra: dict | None,
                     options: dict) -> dict:
        """The zoo model ``name``'s arguments for this data
        (:func:`~filterbank.train.recipe.model_kwargs`: channels, size, one output per class)."""
        from filterbank.train.recipe import model_kwargs

        return model_kwargs(name, data.channels, data.size, len(data.classes), extra)

    def prepare(self, data: TaskData, net, options: dict) -> None:
        """Anything that needs the built model (a detector's grid) before training."""

    def output_shape(self, data: TaskData, net, options: dict) -> tuple:
        """What the model must give for one training image (checked before training): one
        output per class by default."""
        return (1, len(data.classes))

    def loss(self, data: TaskData, kwargs: dict, options: dict):  # pragma: no cover
        raise NotImplementedError

    def metrics(self, data: TaskData, kwargs: dict, options: dict) -> list:  # pragma: no cover
        raise NotImplementedError

    def monitor(self, has_val: bool) -> tuple[str, str]:  # pragma: no cover - overridden
        raise NotImplementedError

    # ------------------------------------------------- test report, evaluate, predict
    def score(self, net, x: np.ndarray, truth, classes: list[str], options: dict, out: Path,
              stem: str, log: Log, dataset: str) -> dict:  # pragma: no cover - overridden
        """Score the model on the images ``x`` against ``truth``; write ``<stem>.json`` and
        the task's pictures into ``out``. Returns ``{"results": {...}`` (into config.json),
        ``"lines": [...]`` (printed), ``"main": (name, value)}``."""
        raise NotImplementedError

    def report(self, net, data: TaskData, config: dict, out: Path, stem: str,
               log: Log) -> dict:
        """:meth:`score` on the run's test split."""
        s = data.extra["splits"]
        return self.score(net, s.x_test, data.test_truth, data.classes, config["task_args"],
                          out, stem, log, data.resolved)

    def shapes_overrides(self, options: dict) -> dict:
        """How this task's ``shapes`` differ from the registered ones."""
        return {}

    def needs_objects(self, options: dict) -> bool:
        return False

    def test_truth(self, splits, options: dict):  # pragma: no cover - overridden
        """What :meth:`score` compares with, for the test split of ``splits``."""
        raise NotImplementedError

    def splits(self, dataset: str, image_size: int | None, limit: int | None,
               val_split: float, seed: int, options: dict, log: Log, test_only: bool = False):
        """The run's images: ``shapes`` with this task's overrides, or a COCO folder (when
        :attr:`reads_coco`)."""
        from filterbank.train.tasks.splits import load_splits

        return load_splits(self.name, dataset, image_size, limit, val_split, seed, log,
                           objects=self.needs_objects(options), test_only=test_only,
                           coco=self.reads_coco, masks=self.coco_masks,
                           **self.shapes_overrides(options))

    def task_data(self, s, classes: list[str], test_truth, **extra) -> TaskData:
        """A :class:`TaskData` for the splits ``s`` (loaders filled in later)."""
        return TaskData(resolved=s.name, requested=s.requested, source=s.source(),
                        classes=list(classes), channels=s.channels, size=(s.size, s.size),
                        pre=s.pre(), train_loader=None, val_loader=None, test_loader=None,
                        probe=None, counts=s.counts(), test_truth=test_truth,
                        extra={"splits": s, **extra})

    def evaluate_run(self, net, config: dict, out: Path, stem: str, limit: int | None,
                     log: Log, dataset: str | None = None) -> dict:
        """:meth:`score` of a trained run's model on its test split (``shapes`` is drawn
        again from its seed) or on the test split of ``dataset``."""
        options = self.parse_options(config.get("task_args"))
        size = config["preprocessing"]["size"][0]
        s = self.splits(dataset or config["requested_dataset"], size, limit, 0.0, 0, options,
                        log, test_only=True)
        if dataset is not None and self.class_names(s.classes, options) != config["classes"]:
            raise ValueError(f"data set {dataset}: its classes {s.classes} are not those the "
                             f"model of this run was trained on ({config['classes']})")
        return self.score(net, s.x_test, self.test_truth(s, options), config["classes"],
                          options, out, stem, log, s.name)

    def class_names(self, classes: list[str], options: dict) -> list[str]:
        """The names of the model's outputs for a data set with ``classes``."""
        return list(classes)

    def predict_arrays(self, net, x: np.ndarray, config: dict) -> list[dict]:
        """One JSON-ready dict per image of ``x`` (pixels of the model's input)."""
        raise NotImplementedError  # pragma: no cover - overridden

    def draw(self, image: np.ndarray, result: dict, config: dict):
        """A PIL image of ``result`` drawn on ``image`` (C, H, W) in [0, 1]."""
        raise NotImplementedError  # pragma: no cover - overridden

    def describe(self, result: dict) -> str:
        """One line of ``predict``'s table for ``result``."""
        raise NotImplementedError  # pragma: no cover - overridden


def predict_batches(net, x: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """The model's outputs for the arrays ``x``, in eval mode, without gradients."""
    import filterbank as fb

    was = net.training
    net.eval()
    try:
        with fb.no_grad():
            outs = [np.asarray(net(fb.tensor(x[i:i + batch_size])).data)
                    for i in range(0, len(x), batch_size)]
    finally:
        net.train(was)
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(z, np.float64)))



def array_loaders(data: TaskData, x: tuple, y: tuple, batch_size: int, prefetch: int,
                  seed: int, augment: Callable | None) -> None:
    """Fill ``data``'s loaders from arrays: ``x = (train, val)`` inputs and ``y`` their encoded
    targets; the training loader shuffles (seeded) and augments. (The test split is scored from
    its arrays by :meth:`Task.score`, not through a loader.)"""
    (xt, xv), (yt, yv) = x, y
    data.train_loader = DataLoader(ArrayPairs(xt, yt, augment, seed), batch_size=batch_size,
                                   shuffle=True, prefetch=prefetch, generator=seed + 1)
    data.val_loader = (DataLoader(ArrayPairs(xv, yv), batch_size=256, prefetch=prefetch)
                       if len(xv) else None)
    data.probe = DataLoader(ArrayPairs(xt[:1], yt[:1]), batch_size=1)
