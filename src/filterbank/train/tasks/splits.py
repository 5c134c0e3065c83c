"""The data of the tasks beyond classification, read once into arrays: the generated
``shapes`` (:class:`ShapesSplits`) or your own COCO-format annotations (:class:`CocoSplits`).
:func:`load_splits` picks one from the ``--dataset`` value."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from filterbank.data.datasets import CocoDetection, StandardShapes, canonical_name
from filterbank.serialization import check_fits_in_memory
from filterbank.train.tasks.base import Log, split_indices

#: preprocessing of images drawn in [0, 1]: nothing more (an image file is ``pixel / 255``)
IDENTITY = "x = pixel / 255 [resized bilinearly to size]"


#: the annotation file of a COCO-format folder
ANNOTATIONS = "instances.json"
#: share of a COCO folder without train/ and test/ sub-folders held out as its test split
COCO_TEST_SPLIT = 0.2


def coco_layout(dataset: str | os.PathLike) -> dict[str, Path] | None:
    """The annotation files of a COCO-format folder: ``{"all": FOLDER/instances.json}``, or
    ``{"train": ..., "test": ..., ["val": ...]}`` from ``train/``, ``test/`` (and ``val/``)
    sub-folders each holding an ``instances.json`` and its images; None if ``dataset`` is no
    such folder."""
    folder = Path(dataset).expanduser()
    if not folder.is_dir():
        return None
    if (folder / ANNOTATIONS).is_file():
        return {"all": folder / ANNOTATIONS}
    split = {k: folder / k / ANNOTATIONS for k in ("train", "val", "test")
             if (folder / k / ANNOTATIONS).is_file()}
    return split if "train" in split and "test" in split else None


def check_dataset(task: str, dataset: str, coco: bool = True) -> str:
    """``'shapes'``, or ``'coco'`` for a COCO-format folder (when the task reads them)."""
    if canonical_name(str(dataset)) == "shapes":
        return "shapes"
    if coco and coco_layout(dataset) is not None:
        return "coco"
    folder = Path(str(dataset)).expanduser()
    hint = (f"; {folder} holds neither {ANNOTATIONS} nor train/{ANNOTATIONS} and "
            f"test/{ANNOTATIONS}" if folder.is_dir() else "")
    what = ("the data set 'shapes' or a COCO-format folder (images and an "
            f"{ANNOTATIONS})" if coco else "the data set 'shapes' (it needs one object per "
            "image, with its outline)")
    raise ValueError(f"task {task!r} trains on {what}, got {str(dataset)!r}{hint}")


def load_splits(task: str, dataset: str, image_size: int | None, limit: int | None,
                val_split: float, seed: int, log: Log, objects: bool = False,
                test_only: bool = False, coco: bool = True, masks: bool = True, **overrides):
    """:class:`ShapesSplits` for ``shapes``, :class:`CocoSplits` for a COCO folder."""
    if check_dataset(task, dataset, coco) == "shapes":
        return ShapesSplits(task, dataset, image_size, limit, val_split, seed, log, objects,
                            test_only, **overrides)
    return CocoSplits(task, dataset, image_size, limit, val_split, seed, log, test_only,
                      masks)


class _Splits:
    """What both kinds of splits share: the counts, the log line."""

    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    seconds: float

    def counts(self) -> dict:
        return {"train_images": int(len(self.train_idx)), "val_images": int(len(self.val_idx)),
                "test_images": int(len(self.test_idx))}

    def _log_read(self, log: Log, verb: str, what: str, test_only: bool) -> None:
        log(f"filterbank: {verb} " + ("" if test_only else
                                      f"{len(self.train_idx):,} training, "
                                      f"{len(self.val_idx):,} validation and ")
            + f"{len(self.test_idx):,} test images of {what} in {self.seconds:.1f} s")


class ShapesSplits(_Splits):
    """The training, validation and test images of ``shapes`` for one run: ``x_*`` float32
    ``(n, 3, H, W)`` in [0, 1], ``targets_*`` one dict per image (boxes, labels, mask),
    ``objects_*`` (only with ``objects=True``) each image's shapes as
    :meth:`Shapes.objects` gives them."""

    def __init__(self, task: str, dataset: str, image_size: int | None, limit: int | None,
                 val_split: float, seed: int, log: Log, objects: bool = False,
                 test_only: bool = False, **overrides):
        check_dataset(task, dataset)
        if image_size is not None:
            if image_size < 16:
                raise ValueError(f"task {task!r}: the image size must be at least 16 pixels, "
                                 f"got {image_size}")
            overrides["image_size"] = int(image_size)
        start = time.perf_counter()
        self.train_set = StandardShapes(train=True, **overrides)
        self.test_set = StandardShapes(train=False, **overrides)
        self.size = self.train_set.image_size
        self.classes = list(self.train_set.classes)
        self.train_idx, self.val_idx = split_indices(0 if test_only else len(self.train_set),
                                                     limit, val_split, seed)
        n_test = len(self.test_set) if limit is None else min(limit, len(self.test_set))
        self.test_idx = np.arange(n_test)
        self.x_train, self.targets_train, self.objects_train = self._draw(
            self.train_set, self.train_idx, objects)
        self.x_val, self.targets_val, self.objects_val = self._draw(
            self.train_set, self.val_idx, objects)
        self.x_test, self.targets_test, self.objects_test = self._draw(
            self.test_set, self.test_idx, objects)
        self.seconds = time.perf_counter() - start
        self._log_read(log, "drew", f"'shapes' ({self.size}x{self.size})", test_only)

    @staticmethod
    def _draw(ds, idx, objects: bool):
        s = ds.image_size
        x = np.empty((len(idx), ds.channels, s, s), np.float32)
        targets, objs = [], []
        for k, i in enumerate(idx):
            x[k], t = ds[int(i)]
            targets.append(t)
            if objects:
                objs.append(ds.objects(int(i)))
        return x, targets, objs

    @property
    def channels(self) -> int:
        return self.train_set.channels

    @property
    def name(self) -> str:
        return "shapes"

    @property
    def requested(self) -> str:
        return "shapes"

    def pre(self) -> dict:
        c = self.train_set.channels
        return {"channels": c, "size": [self.size, self.size], "resize": False,
                "scale": 1 / 255, "mean": [0.0] * c, "std": [1.0] * c, "formula": IDENTITY}

    def source(self) -> str:
        return f"generated from seed {self.train_set.seed}"



class CocoSplits(_Splits):
    """The training, validation and test images of a COCO-format folder (see
    :func:`coco_layout`), resized to ``image_size`` (default: the images' own size when they
    all share one square size), with the attributes of :class:`ShapesSplits`. A folder with
    one ``instances.json`` gives a seeded 20% of its images as the test split; the validation
    images come from ``val/`` if there is one, else ``val_split`` of the training images."""

    def __init__(self, task: str, dataset: str, image_size: int | None, limit: int | None,
                 val_split: float, seed: int, log: Log, test_only: bool = False,
                 masks: bool = True):
        layout = coco_layout(dataset)
        folder = Path(dataset).expanduser().resolve()
        self.folder = folder
        start = time.perf_counter()
        read = {k: CocoDetection(f.parent, f, masks=masks) for k, f in layout.items()}
        first = next(iter(read.values()))
        if image_size is None:
            sizes = {(w, h) for ds in read.values() for _, _, w, h in ds._images}
            if len(sizes) != 1 or len(set(next(iter(sizes)))) != 1:
                shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4])
                raise ValueError(f"task {task!r}: the images of {dataset} have sizes {shown}"
                                 f"{' ...' if len(sizes) > 4 else ''}; give an image size "
                                 f"(one int) to resize them to")
            image_size = next(iter(sizes))[0]
        self.size = int(image_size)
        for k, ds in read.items():
            ds.size = (self.size, self.size)
            if ds.classes != first.classes:
                raise ValueError(f"task {task!r}: {layout[k]} has the categories "
                                 f"{ds.classes}, {layout[next(iter(layout))]} has "
                                 f"{first.classes}; every split needs the same ones")
        self.classes = list(first.classes)
        self._channels = 3
        rng = np.random.default_rng(seed)
        if "all" in read:
            ds = read["all"]
            n = len(ds)
            perm = rng.permutation(n)
            n_test = max(1, int(round(COCO_TEST_SPLIT * n)))
            test_src, test_idx = ds, np.sort(perm[:n_test])
            train_src, pool = ds, np.sort(perm[n_test:])
        else:
            test_src, test_idx = read["test"], np.arange(len(read["test"]))
            train_src, pool = read["train"], np.arange(len(read["train"]))
        if limit is not None:
            test_idx = test_idx[:limit]
            pool = np.sort(rng.permutation(pool)[:limit])
        if test_only:
            pool = pool[:0]
        if "val" in read and not test_only:
            val_src, val_idx = read["val"], np.arange(len(read["val"]))[:limit]
            train_idx = pool
        else:
            val_src = train_src
            k = int(round(val_split * len(pool)))
            perm = rng.permutation(pool)
            train_idx, val_idx = np.sort(perm[k:]), np.sort(perm[:k])
        total = len(train_idx) + len(val_idx) + len(test_idx)
        check_fits_in_memory(total * 3 * self.size * self.size * 4,
                             f"task {task!r}: the {total:,} images of {dataset} at "
                             f"{self.size}x{self.size} take")
        self.train_idx, self.val_idx, self.test_idx = train_idx, val_idx, test_idx
        self.x_train, self.targets_train = self._read(train_src, train_idx)
        self.x_val, self.targets_val = self._read(val_src, val_idx)
        self.x_test, self.targets_test = self._read(test_src, test_idx)
        self.objects_train = self.objects_val = self.objects_test = []
        self.seconds = time.perf_counter() - start
        self._log_read(log, "read", f"{folder} ({len(self.classes)} classes, resized to "
                                    f"{self.size}x{self.size})", test_only)

    def _read(self, ds, idx):
        x = np.empty((len(idx), 3, self.size, self.size), np.float32)
        targets = []
        for k, i in enumerate(idx):
            x[k], t = ds[int(i)]
            targets.append(t)
        return x, targets

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def name(self) -> str:
        return self.folder.name or "coco"

    @property
    def requested(self) -> str:
        return str(self.folder)

    def pre(self) -> dict:
        return {"channels": 3, "size": [self.size, self.size], "resize": True,
                "scale": 1 / 255, "mean": [0.0] * 3, "std": [1.0] * 3, "formula": IDENTITY}

    def source(self) -> str:
        return f"COCO annotations in {self.folder}"

