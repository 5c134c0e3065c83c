"""The recipe behind ``filterbank train``: zoo models fitted to the data, data sets (registry
names or image folders), preprocessing, optimizers and learning-rate schedules.

Preprocessing is the same everywhere: uint8 pixels / 255, optional bilinear resize, then
``(x - mean[c]) / std[c]`` with the per-channel mean and standard deviation of the training
images (stored in the run's ``config.json``, reused by ``evaluate`` and ``predict``).
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import filterbank as fb
from filterbank import nn, optim
from filterbank.data import transforms as T
from filterbank.data.datasets import available_datasets, canonical_name, get_dataset
from filterbank.data.datasets.download import DownloadError
from filterbank.models import available_models, get_model
from filterbank.models.registry import canonical_name as canonical_model_name
from filterbank.train.callbacks import Callback, LRSchedulerCallback

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "step", "cosine", "onecycle", "plateau")
AUGMENTATIONS = ("flip", "crop", "affine", "erase")
#: Learning rate used when ``--lr`` is not given.
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "adagrad": 1e-2}
#: Fraction of a one-cycle schedule spent warming up.
ONECYCLE_WARMUP = 0.25
#: ``summary``'s input size when none is given: what each family was designed for.
DEFAULT_INPUT = {"lenet5": (1, 32, 32), "simple_cnn": (1, 28, 28), "unet": (1, 64, 64),
                 "tiny_yolo": (3, 64, 64), "yolo_v1": (3, 448, 448)}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")
#: Share of a flat image folder (no train/test sub-folders) held out as its test split.
FOLDER_TEST_SPLIT = 0.2

Log = Callable[[str], object]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# -------------------------------------------------------------------------- models
def model_name(name: str) -> str:
    """The registry key for ``name`` (case, ``-``/``_`` and 'lenet' tolerated)."""
    key = canonical_model_name(name)
    if key not in available_models():
        raise ValueError(f"unknown model {name!r} (choose from: {', '.join(available_models())})")
    return key


def model_kwargs(name: str, channels: int, size: Sequence[int], num_classes: int,
                 extra: dict | None = None) -> dict:
    """Constructor arguments that fit ``name`` to images of ``channels`` x ``size``.

    LeNet-5 pads its first convolution for 28x28 inputs; SimpleCNN is told its input size;
    ResNet-18/34/50 use the CIFAR stem (3x3 convolution, no max pool) up to 64x64 (resnet8 and
    resnet20 are built for small images and get only the class and channel counts); ``tiny_yolo``
    gets its input size and, for multiples of 16, a stride-2 stem and one grid cell per 16
    pixels; ``yolo_v1`` the grid its input size implies (448 -> 7). ``extra``
    (``--model-arg``) is merged last.
    """
    h, w = int(size[0]), int(size[1])
    kw: dict = {"num_classes": int(num_classes), "in_channels": int(channels)}
    if name == "lenet5":
        if (h, w) == (28, 28):
            kw["padding"] = 2
        elif (h, w) != (32, 32):
            raise ValueError(f"model 'lenet5' takes 28x28 or 32x32 images, got {h}x{w} "
                             f"(use --image-size 32)")
    elif name == "simple_cnn":
        if h != w:
            raise ValueError(f"model 'simple_cnn' takes square images, got {h}x{w} "
                             f"(use --image-size)")
        kw["input_size"] = h
    elif name in ("resnet18", "resnet34", "resnet50") and max(h, w) <= 64:
        kw["stem"] = "cifar"  # resnet8/20 (CifarResNet) have no stem: small images are theirs
    elif name in ("tiny_yolo", "yolo_v1"):
        if h != w:
            raise ValueError(f"model {name!r} takes square images, got {h}x{w} (use "
                             f"--image-size)")
        if name == "tiny_yolo":
            kw["input_size"] = h
            if h % 16 == 0:  # stride 16: one cell per 16 pixels, like the 'shapes' data set
                kw.update(S=h // 16, stem="stride")
        elif h % 64:
            raise ValueError(f"model 'yolo_v1' takes images of 64*S pixels (448 for its 7x7 "
                             f"grid), got {h}x{w} (use --image-size 448)")
        else:
            kw["S"] = h // 64
    kw.update(extra or {})
    return kw


def build_model(name: str, kwargs: dict, where: str = "",
                error: type[Exception] = ValueError) -> nn.Module:
    """``get_model(name, **kwargs)``; arguments describing a model too large to allocate
    (``width=10**9`` typed on the command line or found in a run's files) raise ``error``
    starting with ``where``, not a MemoryError with a traceback."""
    try:
        return get_model(name, **kwargs)
    except TypeError as e:
        raise TypeError(f"model {name!r} does not accept these arguments: {e}") from None
    except MemoryError as e:
        raise error(f"{where}model {name!r} with arguments {kwargs} does not fit in memory "
                    f"({e})") from None


def parse_model_args(items: Sequence[str] | None, flag: str = "--model-arg") -> dict:
    """``["width=16", "dropout=0.1"]`` -> ``{"width": 16, "dropout": 0.1}`` (JSON values,
    else strings); ``flag`` names the option in errors."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


# ---------------------------------------------------------------------------- data
def dataset_names() -> list[str]:
    return [d["name"] for d in available_datasets()]


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = False,
                 log: Log = _stderr) -> tuple[str, object, object]:
    """``(resolved name, train split, test split)`` of the data set called ``name``.

    Fashion-MNIST falls back to the embedded sample (6,000 / 1,000 images) when the full set
    is neither found (``root``, ``$FILTERBANK_DATA``, ``~/.cache/filterbank``,
    ``/usr/share/datasets/fashion-mnist``) nor downloadable; ``log`` says so.
    """
    key = canonical_name(name)
    if key not in dataset_names():
        raise ValueError(f"unknown data set {name!r} (choose from: {', '.join(dataset_names())})")

    def both(k: str, dl: bool):
        return (get_dataset(k, train=True, root=root, download=dl),
                get_dataset(k, train=False, root=root, download=dl))

    try:
        return (key, *both(key, False))
    except FileNotFoundError as missing:
        reason = f"not found in {', '.join(str(p) for p in _searched(key, root))}"
        if download:
            try:
                return (key, *both(key, True))
            except (DownloadError, OSError) as e:
                reason = f"download failed ({str(e).splitlines()[0]})"
        if key != "fashion-mnist":
            if download:
                raise FileNotFoundError(f"data set {key!r}: {reason}") from None
            raise FileNotFoundError(f"{missing} (command line: --download, or --data-root "
                                    f"DIR)") from None
    log(f"filterbank: the full Fashion-MNIST is {reason}; using the embedded sample "
        f"(6,000 training / 1,000 test images) instead. For the full set: pass --download, or "
        f"'apt-get install dataset-fashion-mnist' on Debian/Ubuntu.")
    return ("fashion-mnist-sample", *both("fashion-mnist-sample", False))


def _searched(key: str, root) -> list[Path]:
    from filterbank.data.datasets import FashionMNIST, search_dirs

    return search_dirs(root, FashionMNIST.system_dirs if key == "fashion-mnist" else ())


def _source(ds, root) -> str:
    """Where a data set's files are, for the log."""
    if getattr(ds, "sample", False):
        return "embedded sample"
    if getattr(ds, "paths", None) is not None and getattr(ds, "root", None) is not None:
        return f"from {ds.root}"
    found = ds.find(root, ds.train) if hasattr(ds, "find") else None
    return f"from {found[0].parent}" if found else "from its data folder"


def _images(ds) -> np.ndarray:
    data = np.asarray(ds.data)
    if data.dtype != np.uint8 or data.ndim not in (3, 4):
        raise TypeError(f"data set {type(ds).__name__}: expected uint8 images (N, H, W[, C]), "
                        f"got {data.dtype} {data.shape}")
    return data


def image_geometry(ds) -> tuple[int, tuple[int, int]]:
    """(channels, (height, width)) of a data set's images."""
    data = _images(ds)
    return (1 if data.ndim == 3 else data.shape[3]), (data.shape[1], data.shape[2])


def channel_stats(data: np.ndarray, indices: np.ndarray | None = None
                  ) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images scaled to [0, 1], exactly, from
    a 256-bin histogram per channel (no float copy of the data set)."""
    x = data if indices is None else data[np.sort(indices)]
    x = x[..., None] if x.ndim == 3 else x
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[-1]):
        counts = np.bincount(x[..., c].reshape(-1), minlength=256).astype(np.float64)
        n = counts.sum()
        m = float(counts @ levels / n)
        var = float(counts @ (levels - m) ** 2 / n)
        means.append(round(m, 6))
        stds.append(round(max(math.sqrt(var), 1e-6), 6))
    return means, stds


def _resize_fn(size: tuple[int, int]):
    from filterbank.functional import interpolate

    def resize(x: np.ndarray) -> np.ndarray:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return interpolate(fb.Tensor._wrap(x), size=tuple(size), mode="bilinear").data

    return resize


def make_transform(pre: dict, augment: Sequence[str] = ()) -> T.Compose:
    """The batch transform: uint8 NHWC -> float32 NCHW in [0, 1], resize, augmentation,
    standardisation (random erasing after it, so erased pixels are the mean)."""
    steps: list = [T.ToTensor()]
    size = tuple(pre["size"])
    if pre.get("resize"):
        steps.append(T.Lambda(_resize_fn(size)))
    if "flip" in augment:
        steps.append(T.RandomHorizontalFlip())
    if "crop" in augment:
        steps.append(T.RandomCrop(size, padding=max(1, size[0] // 8)))
    if "affine" in augment:
        steps.append(T.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)))
    steps.append(T.Normalize(pre["mean"], pre["std"]))
    if "erase" in augment:
        steps.append(T.RandomErasing(p=0.5))
    return T.Compose(steps)


def parse_augment(spec: str | Sequence[str] | None) -> list[str]:
    if not spec:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = [s.strip().lower() for s in items if s.strip()]
    bad = [s for s in out if s not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"unknown augmentation {bad[0]!r} (choose from: "
                         f"{', '.join(AUGMENTATIONS)}; comma-separated)")
    return out


def _limit(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    idx = rng.permutation(n)
    return np.sort(idx[:limit]) if limit is not None and limit < n else np.arange(n)

# -------------------------------------------------------------------- optimisation
def build_optimizer(name: str, params, lr: float | None, momentum: float,
                    weight_decay: float | None):
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (choose from: {', '.join(OPTIMIZERS)})")
    lr = DEFAULT_LR[key] if lr is None else lr
    if not lr > 0:
        raise ValueError(f"--lr must be > 0, got {lr}")
    wd = {} if weight_decay is None else {"weight_decay": weight_decay}
    if key == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, **wd)
    if key == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=momentum, **wd)
    cls = {"adam": optim.Adam, "adamw": optim.AdamW, "adagrad": optim.Adagrad}[key]
    return cls(params, lr=lr, **wd)


def build_schedule(name: str, opt, epochs: int, steps_per_epoch: int,
                   warmup_steps: float | None = None):
    """A scheduler callback for ``name`` (None for 'none'). Cosine and one-cycle are stepped
    after every batch (smooth even for a few epochs); step and plateau after every epoch.

    ``warmup_steps``: one-cycle's rising phase in steps (default :data:`ONECYCLE_WARMUP` of
    all steps); a resumed run that was given more epochs keeps its original warm-up.
    """
    key = name.lower()
    lr_s = optim.lr_scheduler
    total = max(1, epochs * steps_per_epoch)
    if key == "none":
        return None
    if key == "step":
        return LRSchedulerCallback(lr_s.StepLR(opt, step_size=max(1, round(epochs / 3))),
                                   "epoch")
    if key == "cosine":
        return LRSchedulerCallback(lr_s.CosineAnnealingLR(opt, T_max=total), "step")
    if key == "onecycle":
        lr = opt.param_groups[0]["lr"]
        cycle = "betas" in opt.defaults or opt.defaults.get("momentum", 0) > 0
        pct = ONECYCLE_WARMUP if warmup_steps is None else min(1.0, warmup_steps / total)
        return LRSchedulerCallback(lr_s.OneCycleLR(opt, max_lr=lr, total_steps=total,
                                                   pct_start=pct, cycle_momentum=cycle),
                                   "step")
    if key == "plateau":
        return LRSchedulerCallback(lr_s.ReduceLROnPlateau(opt, factor=0.1, patience=2),
                                   "epoch")
    raise ValueError(f"unknown schedule {name!r} (choose from: {', '.join(SCHEDULES)})")


class ExtendedSchedule(Callback):
    """Resume a run with more epochs than it was planned for, under any schedule.

    The rule: the schedule is rebuilt over the new total (``sched_cb``, made by
    :func:`build_schedule` for the new number of epochs) and fast-forwarded, after the
    checkpoint is loaded, by as many steps as the run had taken. The learning rate goes on
    from where the longer schedule is at that step: cosine and one-cycle anneal over the new
    total (one-cycle keeps its warm-up length, so only its annealing phase is stretched), step
    decay uses the new total's step size, plateau and none are unaffected. A run that had
    finished its one-cycle at the minimum rate therefore restarts from a moderate rate.

    Args:
        sched_cb: the trainer's :class:`LRSchedulerCallback`, built for the new total.
        log: receives one line describing the change.
    """

    order = 0  # runs before the scheduler callback itself; loading happens before any

    def __init__(self, sched_cb: LRSchedulerCallback, log: Log = _stderr):
        self.sched_cb = sched_cb
        self.fresh = copy.deepcopy(sched_cb.scheduler.state_dict())
        self.log = log

    def on_train_begin(self, trainer) -> None:
        sched = self.sched_cb.scheduler
        reached = int(sched.last_epoch)  # the loaded (shorter) schedule's position
        sched.load_state_dict(copy.deepcopy(self.fresh))
        for group, lr in zip(sched.optimizer.param_groups, self.fresh["_last_lr"]):
            group["lr"] = lr  # chainable schedules continue from the fresh rate
        for _ in range(reached - int(sched.last_epoch)):
            sched.step()
        self.log(f"filterbank: {type(sched).__name__} rebuilt over the new total and "
                 f"fast-forwarded {reached} step(s); learning rate now "
                 f"{sched.optimizer.param_groups[0]['lr']:.3g}")


# -------------------------------------------------------------------- image folders
def is_folder_dataset(name: str | os.PathLike) -> bool:
    """Whether ``--dataset`` names an image folder: anything path-like (``./x``, ``a/b``,
    ``~/x``), or an existing directory whose name is not a registered data set's."""
    text = str(name)
    if os.sep in text or (os.altsep and os.altsep in text) or text.startswith((".", "~")):
        return True
    return canonical_name(text) not in dataset_names() and Path(text).is_dir()


def load_image_folder(path: str | os.PathLike, size: Sequence[int] | None = None,
                      log: Log = _stderr) -> tuple[object, object | None, object]:
    """``(train, val or None, test)`` of an image folder, decoded into memory by
    :func:`filterbank.data.datasets.image_folder.image_folder_splits`.

    Layouts: ``path/<class>/<image>``, or ``path/train/<class>/...`` with ``path/val`` and/or
    ``path/test`` beside it. Without a test folder, a stratified :data:`FOLDER_TEST_SPLIT` of
    the training images (seed 0, so the same every time: ``evaluate`` finds it again) is the
    test split. Images are resized (bilinear) to ``size`` (H, W) when given, else to the most
    common size among them; they are grey (1 channel) when every image is grey, else RGB.
    """
    from filterbank.data.datasets.image_folder import image_folder_splits

    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--dataset {path}: no such folder (and not a registered data "
                                f"set name; see 'filterbank datasets')")
    splits = image_folder_splits(root, size=tuple(size) if size else "auto", mode="auto",
                                 val_split=0.0, test_split=FOLDER_TEST_SPLIT, seed=0,
                                 extensions=IMAGE_SUFFIXES)
    h, w = splits["size"]
    if size:
        log(f"filterbank: {root}: resizing all images to {h}x{w}")
    elif (splits["file_sizes"] or 1) > 1:
        log(f"filterbank: {root}: images of {splits['file_sizes']} sizes; resizing all to "
            f"{h}x{w} (the most common; --image-size S to choose)")
    return splits["train"], splits["val"], splits["test"]


def load_data(name: str | os.PathLike, root: str | os.PathLike | None = None,
              download: bool = False, size: Sequence[int] | None = None, log: Log = _stderr
              ) -> tuple[str, object, object | None, object]:
    """``(resolved name, train, validation or None, test)`` for a registry name
    (:func:`load_dataset`) or an image folder (:func:`load_image_folder`, resized to ``size``
    when given; its resolved name is the folder's name)."""
    if is_folder_dataset(name):
        train, val, test = load_image_folder(name, size, log)
        folder = Path(name).expanduser().resolve()
        return folder.name or "folder", train, val, test
    resolved, train, test = load_dataset(str(name), root, download, log)
    return resolved, train, None, test
