"""The work behind the command line: train a zoo model on a named data set into a run folder,
evaluate a run on a test set, classify image files, describe models and data sets.

A run folder (``filterbank train --out runs/x``) holds everything needed to use the model later
without the training code::

    config.json          model name and arguments, classes, preprocessing, training options,
                         results; ``evaluate`` and ``predict`` rebuild the model from it
    model.json           final weights (a checkpoint: JSON sidecar + model-<hash>.safetensors;
                         the sidecar also embeds the config)
    checkpoints/last.*   full training state after the latest epoch (``--resume``), best.* for
                         the best validation accuracy
    metrics.csv          one row per epoch (loss, accuracy, val_*, lr, time, images/s)
    curves.png           learning curves, train vs validation, with the final gap
    confusion.png/.json  confusion matrix on the test set (+ per-class precision/recall/F1)
    filters.png          the first convolution's learned kernels as an image grid

Preprocessing is the same everywhere: uint8 pixels / 255, optional bilinear resize, then
``(x - mean[c]) / std[c]`` with the per-channel mean and standard deviation of the training
images (stored in ``config.json``, reused by ``evaluate`` and ``predict``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import filterbank as fb
from filterbank import nn, optim
from filterbank.data import DataLoader, Subset
from filterbank.data import transforms as T
from filterbank.data.datasets import available_datasets, get_dataset
from filterbank.data.datasets.download import DownloadError
from filterbank.models import available_models, get_model
from filterbank.train.callbacks import CSVLogger, LRSchedulerCallback, ModelCheckpoint
from filterbank.train.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    load_checkpoint,
    save_checkpoint,
)
from filterbank.train.metrics import classification_report, confusion_matrix, precision_recall_f1
from filterbank.train.trainer import Trainer

RUN_FORMAT = "filterbank-run"
RUN_VERSION = 1
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "step", "cosine", "onecycle", "plateau")
AUGMENTATIONS = ("flip", "crop", "affine", "erase")
#: Learning rate used when ``--lr`` is not given.
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "adagrad": 1e-2}
#: ``summary``'s input size when none is given: what each family was designed for.
DEFAULT_INPUT = {"lenet5": (1, 32, 32), "simple_cnn": (1, 28, 28), "unet": (1, 64, 64)}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")

Log = Callable[[str], object]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# -------------------------------------------------------------------------- models
def model_name(name: str) -> str:
    """The registry key for ``name`` (case, ``-``/``_`` and 'lenet' tolerated)."""
    key = name.strip().lower().replace("-", "_")
    key = {"lenet": "lenet5", "simplecnn": "simple_cnn"}.get(key, key)
    if key not in available_models():
        raise ValueError(f"unknown model {name!r} (choose from: {', '.join(available_models())})")
    return key


def model_kwargs(name: str, channels: int, size: Sequence[int], num_classes: int,
                 extra: dict | None = None) -> dict:
    """Constructor arguments that fit ``name`` to images of ``channels`` x ``size``.

    LeNet-5 pads its first convolution for 28x28 inputs; SimpleCNN is told its input size;
    ResNets use the CIFAR stem (3x3 convolution, no max pool) up to 64x64. ``extra``
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
    elif name.startswith("resnet") and max(h, w) <= 64:
        kw["stem"] = "cifar"
    kw.update(extra or {})
    return kw


def build_model(name: str, kwargs: dict) -> nn.Module:
    try:
        return get_model(name, **kwargs)
    except TypeError as e:
        raise TypeError(f"model {name!r} does not accept these arguments: {e}") from None


def parse_model_args(items: Sequence[str] | None) -> dict:
    """``["width=16", "dropout=0.1"]`` -> ``{"width": 16, "dropout": 0.1}`` (JSON values,
    else strings)."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--model-arg expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


# ---------------------------------------------------------------------------- data
def dataset_names() -> list[str]:
    return [d["name"] for d in available_datasets()]


def _canonical_dataset(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    return {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
            "cifar-100": "cifar100"}.get(key, key)


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = False,
                 log: Log = _stderr) -> tuple[str, object, object]:
    """``(resolved name, train split, test split)`` of the data set called ``name``.

    Fashion-MNIST falls back to the embedded sample (6,000 / 1,000 images) when the full set
    is neither found (``root``, ``$FILTERBANK_DATA``, ``~/.cache/filterbank``,
    ``/usr/share/datasets/fashion-mnist``) nor downloadable; ``log`` says so.
    """
    key = _canonical_dataset(name)
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


def build_schedule(name: str, opt, epochs: int, steps_per_epoch: int):
    """A scheduler callback for ``name`` (None for 'none'). Cosine and one-cycle are stepped
    after every batch (smooth even for a few epochs); step and plateau after every epoch."""
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
        return LRSchedulerCallback(lr_s.OneCycleLR(opt, max_lr=lr, total_steps=total,
                                                   pct_start=0.25, cycle_momentum=cycle),
                                   "step")
    if key == "plateau":
        return LRSchedulerCallback(lr_s.ReduceLROnPlateau(opt, factor=0.1, patience=2),
                                   "epoch")
    raise ValueError(f"unknown schedule {name!r} (choose from: {', '.join(SCHEDULES)})")


# -------------------------------------------------------------------------- config
def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode("utf-8"))


def find_run(path: str | os.PathLike) -> tuple[Path, dict]:
    """(checkpoint sidecar, run config) for a run folder or a checkpoint inside one.

    A folder means its final ``model.json`` (else ``checkpoints/last.json``). The config comes
    from the checkpoint itself (``model.json`` embeds it) or from ``config.json`` in the
    checkpoint's folder or the one above (``checkpoints/..``).
    """
    p = Path(path).expanduser()
    if p.is_dir():
        for cand in (p / "model.json", p / "checkpoints" / "last.json"):
            if cand.exists():
                p = cand
                break
        else:
            raise FileNotFoundError(f"{path}: not a run folder (no model.json or "
                                    f"checkpoints/last.json in it)")
    meta = load_checkpoint(p)  # verifies the files; raises FileNotFoundError/CheckpointError
    config = (meta.get("extra") or {}).get("config") if isinstance(meta.get("extra"), dict) \
        else None
    if config is None:
        folder = Path(meta["sidecar"]).parent
        for cand in (folder / "config.json", folder.parent / "config.json"):
            if cand.is_file():
                config = json.loads(cand.read_text(encoding="utf-8"))
                break
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
        raise CheckpointError(f"{path}: a checkpoint without a run configuration (no "
                              f"config.json beside it); evaluate and predict need a run "
                              f"written by 'filterbank train'")
    return Path(meta["sidecar"]), config


def load_run_model(path, model: str | None = None) -> tuple[nn.Module, dict, Path]:
    """Rebuild the model of a run (``model`` overrides the configured name) and load its
    weights; an incompatible checkpoint raises CheckpointError before anything is used."""
    ckpt, config = find_run(path)
    name = config["model"]
    kwargs = dict(config["model_kwargs"])
    if model is not None and model_name(model) != name:
        name = model_name(model)
        pre = config["preprocessing"]
        kwargs = model_kwargs(name, pre["channels"], pre["size"], len(config["classes"]))
    net = build_model(name, kwargs)
    load_checkpoint(ckpt, net)
    net.eval()
    return net, config, ckpt


# --------------------------------------------------------------------------- train
def default_out(model: str, dataset: str) -> Path:
    return Path("runs") / f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(model: str | None, dataset: str = "fashion-mnist", epochs: int | None = None,
          batch_size: int = 128,
          optimizer: str = "adam", lr: float | None = None, momentum: float = 0.9,
          weight_decay: float | None = None, schedule: str = "onecycle",
          augment: str | Sequence[str] | None = None, seed: int = 0,
          out: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
          val_split: float = 0.1, data_root: str | os.PathLike | None = None,
          download: bool = False, prefetch: int = 2, limit: int | None = None,
          image_size: int | None = None, model_args: dict | None = None,
          progress: bool = True, log: Log = _stderr, echo: Log = print) -> dict:
    """Train ``model`` on ``dataset`` and write a run folder (see the module docstring).

    Per step: cross-entropy loss, backward, ``optimizer`` update; the learning rate follows
    ``schedule``. After training: accuracy, report and confusion matrix on the test split.

    Args:
        model: zoo name (:func:`filterbank.models.available_models`); None with ``resume``.
        dataset: registry name; ``fashion-mnist`` falls back to the embedded sample.
        epochs: total epochs (default 5; with ``resume``, the run's own).
        batch_size, optimizer, lr, momentum, weight_decay: the optimisation (``lr`` None:
            :data:`DEFAULT_LR`; ``weight_decay`` None: the optimizer's default).
        schedule: 'none', 'step' (x0.1 every third of the epochs), 'cosine' or 'onecycle'
            (per batch, over the whole run), 'plateau' (x0.1 after 2 flat epochs).
        augment: subset of 'flip', 'crop', 'affine', 'erase' (list or comma-separated).
        seed: seeds initialisation and dropout, shuffling, the split and augmentation.
        out: the run folder (default ``runs/<model>-<dataset>-<time>``).
        resume: a run folder or checkpoint to continue with its own settings, in its folder.
        val_split: fraction of the training images held out for validation.
        data_root, download: where to look for the data first; fetch missing files.
        prefetch: batches prepared ahead by a background thread.
        limit: use at most this many images of each split.
        image_size: resize images to this square size.
        model_args: extra constructor arguments for the model.
        progress: show progress bars.
        log, echo: where notes (stderr) and results (stdout) go.

    Returns:
        dict with ``out`` (the run folder), ``test_accuracy``, ``history``, ``config``,
        ``seconds``.

    Example:
        >>> r = train("simple_cnn", "fashion-mnist", epochs=3, lr=2e-3)  # doctest: +SKIP
        >>> r["test_accuracy"], r["out"]  # doctest: +SKIP
        (0.913, PosixPath('runs/simple_cnn-fashion-mnist-20250101-120000'))
    """
    if not 0 <= val_split < 1:
        raise ValueError(f"--val-split must be in [0, 1), got {val_split}")
    if isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"--batch-size must be a positive int, got {batch_size!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive int, got {limit}")
    ckpt = None
    if resume is not None:
        resume = Path(resume).expanduser()
        if resume.is_dir():  # the training state, not the final weights
            resume = resume / "checkpoints" / "last.json"
        ckpt, old = find_run(resume)
        opts = dict(old["training"])
        model, dataset = old["model"] if model is None else model, old["requested_dataset"]
        if model_name(model) != old["model"]:
            # a different architecture: loading will name the mismatching keys
            model_args = None
        else:
            model_args = old.get("model_args")
        batch_size, optimizer, lr = opts["batch_size"], opts["optimizer"], opts["lr"]
        momentum, weight_decay, schedule = opts["momentum"], opts["weight_decay"], \
            opts["schedule"]
        augment, seed, val_split = opts["augment"], opts["seed"], opts["val_split"]
        limit, image_size = opts["limit"], opts["image_size"]
        out = Path(out) if out is not None else Path(ckpt).parent
        if out.name == "checkpoints":
            out = out.parent
        planned = old["training"]["epochs"]
        if epochs is None:
            epochs = planned
        elif epochs > planned and schedule in ("onecycle", "cosine"):
            raise ValueError(f"{resume}: its {schedule} schedule spans {planned} epochs and "
                             f"cannot be extended to {epochs}; resume without --epochs, or "
                             f"start a new run")
    epochs = 5 if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"--epochs must be a positive int, got {epochs!r}")
    if model is None:
        raise ValueError("--model is required (choose from: "
                         f"{', '.join(available_models())})")
    name = model_name(model)
    if name == "unet":
        raise ValueError("model 'unet' outputs a segmentation map, but train classifies whole "
                         "images; choose a classifier (e.g. simple_cnn, lenet5, resnet18)")
    optimizer = optimizer.lower()
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r} (choose from: "
                         f"{', '.join(OPTIMIZERS)})")
    if schedule.lower() not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r} (choose from: {', '.join(SCHEDULES)})")
    aug = parse_augment(augment)
    resolved, train_full, test_set = load_dataset(dataset, data_root, download, log)
    channels, size = image_geometry(train_full)
    resize = False
    if image_size is not None:
        resize = (image_size, image_size) != tuple(size)
        size = (image_size, image_size)
    classes = [str(c) for c in train_full.classes]
    kwargs = model_kwargs(name, channels, size, len(classes), model_args)

    out = default_out(name, resolved) if out is None else Path(out).expanduser()
    if ckpt is None and (out / "config.json").exists():
        raise ValueError(f"run folder {out} already holds a run; continue it with --resume "
                         f"{out}, or choose another --out")

    # data: a seeded subset (--limit) and validation split, independent of the model's seed
    split_rng = np.random.default_rng(seed)
    idx = _limit(len(train_full), limit, split_rng)
    n_val = int(round(val_split * len(idx)))
    perm = split_rng.permutation(idx)
    train_idx, val_idx = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    test_idx = _limit(len(test_set), limit, split_rng)
    mean, std = channel_stats(_images(train_full), train_idx)
    pre = {"channels": channels, "size": list(size), "resize": resize, "scale": 1 / 255,
           "mean": mean, "std": std,
           "formula": "x = (pixel / 255 [resized bilinearly to size] - mean[c]) / std[c]"}
    train_tf, eval_tf = make_transform(pre, aug), make_transform(pre)
    train_loader = DataLoader(Subset(train_full, train_idx), batch_size=batch_size, shuffle=True,
                              transform=train_tf, prefetch=prefetch, generator=seed + 1)
    val_loader = (DataLoader(Subset(train_full, val_idx), batch_size=512, transform=eval_tf,
                             prefetch=prefetch) if n_val else None)
    test_loader = DataLoader(Subset(test_set, test_idx), batch_size=512, transform=eval_tf,
                             prefetch=prefetch)

    fb.manual_seed(seed)
    net = build_model(name, kwargs)
    if ckpt is not None:
        load_checkpoint(ckpt, net)  # an incompatible checkpoint fails here, before any output
    net.summary((channels, *size), includes_batch=False, print_fn=echo)
    opt = build_optimizer(optimizer, net.parameters(), lr, momentum, weight_decay)
    lr = opt.param_groups[0]["lr"]
    sched_cb = build_schedule(schedule, opt, epochs, len(train_loader))
    monitor = "val_accuracy" if val_loader is not None else "accuracy"
    callbacks = [ModelCheckpoint(out / "checkpoints", monitor=monitor, mode="max"),
                 CSVLogger(out / "metrics.csv")]
    if sched_cb is not None:
        callbacks.insert(0, sched_cb)
    trainer = Trainer(net, opt, nn.CrossEntropyLoss(), metrics=["accuracy"],
                      callbacks=callbacks, seed=seed, progress=progress)

    config = {
        "format": RUN_FORMAT, "version": RUN_VERSION, "filterbank_version": fb.__version__,
        "model": name, "model_kwargs": kwargs, "model_args": model_args or {},
        "dataset": resolved, "requested_dataset": dataset, "classes": classes,
        "preprocessing": pre,
        "training": {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer,
                     "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                     "schedule": schedule.lower(), "augment": aug, "seed": seed,
                     "val_split": val_split, "limit": limit, "image_size": image_size},
        "data": {"train_images": int(len(train_idx)), "val_images": int(n_val),
                 "test_images": int(len(test_idx))},
    }
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "config.json", config)
    log(f"training {name} on {resolved} ({_source(train_full, data_root)}): "
        f"{len(train_idx):,} training / {n_val:,} validation images, {epochs} epochs of "
        f"{len(train_loader)} batches; run folder {out}")

    start = time.perf_counter()
    try:
        history = trainer.fit(train_loader, val_loader, epochs=epochs, resume=ckpt)
    except KeyboardInterrupt:
        if trainer.epoch:
            log(f"filterbank: interrupted; epoch {trainer.epoch} is saved, continue with: "
                f"filterbank train --resume {out}")
        raise
    seconds = time.perf_counter() - start

    result = _test_and_report(net, trainer, test_loader, test_set.targets[test_idx], classes,
                              out, "confusion", log)
    config["results"] = {"test_accuracy": result["accuracy"], "test_images": int(len(test_idx)),
                         "epochs_completed": trainer.epoch, "train_seconds": round(seconds, 1)}
    save_checkpoint(out / "model", net, epoch=trainer.epoch, global_step=trainer.global_step,
                    history=history, extra={"config": config}, rng=False)
    _write_json(out / "config.json", config)
    _plots(history, net, out, log)
    echo(result["report"])
    echo(f"test accuracy: {result['accuracy']:.4f} ({result['correct']:,}/{len(test_idx):,} "
         f"{resolved} test images) after {trainer.epoch} epoch(s), {seconds:.0f} s of training")
    echo(f"run folder: {out}")
    return {"out": out, "test_accuracy": result["accuracy"], "history": history,
            "config": config, "seconds": seconds}


def _test_and_report(net, trainer, loader, targets, classes, out: Path, stem: str,
                     log: Log) -> dict:
    logits = trainer.predict(loader) if trainer is not None else _predict(net, loader)
    targets = np.asarray(targets)
    pred = logits.argmax(axis=1)
    cm = confusion_matrix(targets, pred, num_classes=len(classes))
    stats = precision_recall_f1(cm=cm)
    report = classification_report(targets, pred, class_names=classes)
    correct = int(np.sum(pred == targets))
    acc = correct / len(targets) if len(targets) else 0.0
    _write_json(out / f"{stem}.json", {
        "classes": classes, "matrix": cm.tolist(), "accuracy": acc, "images": len(targets),
        "precision": stats["precision"].tolist(), "recall": stats["recall"].tolist(),
        "f1": stats["f1"].tolist(), "support": stats["support"].tolist()})
    try:
        from filterbank.viz import plot_confusion_matrix

        plot_confusion_matrix(cm, classes, out / f"{stem}.png",
                              title=f"Confusion matrix (accuracy {acc:.4f})")
    except ImportError as e:
        log(f"filterbank: no {stem}.png ({e})")
    return {"accuracy": acc, "correct": correct, "report": report, "matrix": cm}


def _plots(history, net, out: Path, log: Log) -> None:
    try:
        from filterbank.viz import save_history_plot

        save_history_plot(history, out / "curves.png", metrics=["loss", "accuracy"])
    except ImportError as e:
        log(f"filterbank: no curves.png ({e})")
    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is not None:
        try:
            from filterbank.viz.filters import save_filter_grid

            save_filter_grid(conv.weight, out / "filters.png")
        except ImportError as e:
            log(f"filterbank: no filters.png ({e})")


def _predict(net, loader) -> np.ndarray:
    outs = []
    net.eval()
    with fb.no_grad():
        for batch in loader:
            x = batch[0] if isinstance(batch, tuple | list) else batch
            outs.append(np.asarray(net(x).data))
    return np.concatenate(outs, axis=0)


# ------------------------------------------------------------------------ evaluate
def evaluate(path: str | os.PathLike, dataset: str | None = None, model: str | None = None,
             data_root: str | os.PathLike | None = None, download: bool = False,
             batch_size: int = 512, limit: int | None = None,
             out: str | os.PathLike | None = None, log: Log = _stderr,
             echo: Log = print) -> dict:
    """Accuracy, per-class report and confusion matrix of a run's model on a test set.

    The test images go through the run's own preprocessing (resized if the data set's size
    differs from the model's). Writes ``eval-<dataset>.json`` (matrix, per-class precision,
    recall, F1) and ``eval-<dataset>.png`` into ``out`` (default: the run folder).

    Args:
        path: run folder or checkpoint.
        dataset: test set name (default: the one the run was trained on).
        model: rebuild this model instead of the configured one.
        data_root, download, batch_size, limit: as for :func:`train`.
        out: folder for the confusion matrix files.

    Returns:
        dict with ``accuracy``, ``matrix`` and ``out``.

    Example:
        >>> evaluate("runs/demo")["accuracy"]  # doctest: +SKIP
        0.913
    """
    net, config, ckpt = load_run_model(path, model)
    resolved, _, test_set = load_dataset(dataset or config["requested_dataset"], data_root,
                                         download, log)
    classes = config["classes"]
    channels, size = image_geometry(test_set)
    pre = config["preprocessing"]
    if channels != pre["channels"] or len(test_set.classes) != len(classes):
        raise ValueError(f"data set {resolved!r} ({channels} channel(s), "
                         f"{len(test_set.classes)} classes) does not fit the model of {ckpt} "
                         f"({pre['channels']} channel(s), {len(classes)} classes)")
    pre = dict(pre, resize=tuple(size) != tuple(pre["size"]))
    idx = _limit(len(test_set), limit, np.random.default_rng(0))
    loader = DataLoader(Subset(test_set, idx), batch_size=batch_size,
                        transform=make_transform(pre))
    folder = Path(out) if out is not None else (ckpt.parent.parent
                                                if ckpt.parent.name == "checkpoints"
                                                else ckpt.parent)
    folder.mkdir(parents=True, exist_ok=True)
    result = _test_and_report(net, None, loader, test_set.targets[idx], classes, folder,
                              f"eval-{resolved}", log)
    echo(result["report"])
    echo(f"test accuracy: {result['accuracy']:.4f} ({result['correct']:,}/{len(idx):,} "
         f"{resolved} test images)")
    echo(f"confusion matrix: {folder / f'eval-{resolved}.json'}")
    return {"accuracy": result["accuracy"], "matrix": result["matrix"], "out": folder}


# ------------------------------------------------------------------------- predict
def image_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files named directly, plus those in named folders (recursively, sorted)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*")
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{p}: no image files in this folder "
                                        f"({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    if not files:
        raise ValueError("predict: no images given")
    return files


def load_images(files: Sequence[Path], pre: dict) -> np.ndarray:
    """Images as the model saw them in training: converted to its channels (grey 'L' or
    'RGB'), resized to its input size (bilinear), as uint8 (N, H, W, C)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as e:
        raise ImportError(f"predict needs Pillow: pip install 'filterbank[images]' ({e})") \
            from None
    h, w = pre["size"]
    mode = {1: "L", 3: "RGB"}.get(pre["channels"])
    if mode is None:
        raise ValueError(f"predict: models with {pre['channels']} input channels cannot read "
                         f"image files (1 or 3 only)")
    out = np.empty((len(files), h, w, pre["channels"]), np.uint8)
    for i, f in enumerate(files):  # one decode per file; the arithmetic is batched below
        try:
            with Image.open(f) as im:
                im = im.convert(mode)
                if im.size != (w, h):
                    im = im.resize((w, h), Image.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except UnidentifiedImageError:
            raise ValueError(f"{f}: not an image Pillow can read") from None
        out[i] = arr.reshape(h, w, pre["channels"])
    return out


def predict(paths: Sequence[str | os.PathLike], checkpoint: str | os.PathLike, top_k: int = 3,
            as_json: bool = False, model: str | None = None, batch_size: int = 256,
            echo: Log = print) -> list[dict]:
    """Top-k classes with probabilities for image files (or folders of them).

    Each image is converted to the model's channels and size with Pillow, scaled by 1/255 and
    standardised with the training mean and std; probabilities are ``softmax(logits)``.

    Args:
        paths: image files and/or folders (searched recursively).
        checkpoint: run folder or checkpoint.
        top_k: classes per image.
        as_json: print JSON instead of a table.
        model: rebuild this model instead of the configured one.

    Returns:
        one dict per image: ``file`` and ``predictions`` (``class``, ``index``,
        ``probability``), most probable first.

    Example:
        >>> predict(["shoe.png"], "runs/demo", top_k=1)  # doctest: +SKIP
        image     top-1
        --------  ---------------
        shoe.png  Sneaker (97.1%)
    """
    if top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {top_k}")
    net, config, _ = load_run_model(checkpoint, model)
    pre = dict(config["preprocessing"], resize=False)  # Pillow already resized
    classes = config["classes"]
    files = image_files(paths)
    images = load_images(files, pre)
    x = make_transform(pre)(images, batched=True)
    logits = _predict(net, [(x[i:i + batch_size],) for i in range(0, len(x), batch_size)])
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    k = min(top_k, len(classes))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    results = [{"file": str(f),
                "predictions": [{"class": classes[j], "index": int(j),
                                 "probability": round(float(probs[i, j]), 6)}
                                for j in order[i]]}
               for i, f in enumerate(files)]
    if as_json:
        echo(json.dumps(results, indent=1))
    else:
        echo(_predict_table(results, k))
    return results


def _predict_table(results: list[dict], k: int) -> str:
    head = ["image"] + [f"top-{i + 1}" for i in range(k)]
    rows = [[r["file"]] + [f"{p['class']} ({p['probability']:.1%})" for p in r["predictions"]]
            for r in results]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ------------------------------------------------------------------- summary, datasets
def summary(model: str, input_size: Sequence[int] | None = None, num_classes: int = 10,
            model_args: dict | None = None, echo: Log = print) -> dict:
    """Print the layer table of a zoo model for one input of shape ``input_size`` (C, H, W).

    Args:
        model: zoo name.
        input_size: (C, H, W); default the model's usual input (:data:`DEFAULT_INPUT`,
            else 3x224x224). The model is fitted to it as in :func:`model_kwargs`.
        num_classes: outputs of the model.
        model_args: extra constructor arguments.

    Returns:
        the numbers of :func:`filterbank.nn.summary.summary`.

    Example:
        >>> summary("lenet5", echo=lambda s: None)["total_params"]
        61706
    """
    name = model_name(model)
    if input_size is None:
        input_size = DEFAULT_INPUT.get(name, (3, 224, 224))
    if len(input_size) != 3 or any(int(s) < 1 for s in input_size):
        raise ValueError(f"--input-size expects three positive ints C H W, got "
                         f"{list(input_size)}")
    c, h, w = (int(s) for s in input_size)
    if num_classes < 1:
        raise ValueError(f"--num-classes must be >= 1, got {num_classes}")
    net = build_model(name, model_kwargs(name, c, (h, w), num_classes, model_args))
    return net.summary((c, h, w), includes_batch=False, print_fn=echo)


def datasets(data_root: str | os.PathLike | None = None,
             download: Sequence[str] | None = None, echo: Log = print) -> list[dict]:
    """Print the registered data sets: where their files were found, sizes, classes.

    Args:
        data_root: folder searched first (and downloaded into).
        download: names of data sets to download first where missing (SHA-256 verified).
    """
    for name in download or ():
        key = _canonical_dataset(name)
        if key not in dataset_names():
            raise ValueError(f"unknown data set {name!r} (choose from: "
                             f"{', '.join(dataset_names())})")
        for split in (True, False):
            get_dataset(key, train=split, root=data_root, download=True)
    rows = available_datasets(data_root)
    head = ["name", "found", "train", "test", "classes", "download", "description"]
    table = [[d["name"], d["found"] or "not found", f"{d['train_size']:,}",
              f"{d['test_size']:,}", str(d["num_classes"]), "yes" if d["downloadable"] else "no",
              d["description"]] for d in rows]
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    for r in [head, *table]:
        echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    from filterbank.data.datasets.download import search_dirs

    echo("searched: " + ", ".join(str(d) for d in search_dirs(data_root)) + " (and each data "
         "set's system folder); 'fashion-mnist' falls back to the embedded sample")
    return rows
