"""The ``shapes`` data set for the tasks beyond classification, drawn once into arrays."""

from __future__ import annotations

import time

import numpy as np

from filterbank.data.datasets import StandardShapes, canonical_name
from filterbank.train.tasks.base import Log, split_indices

#: preprocessing of images drawn in [0, 1]: nothing more (an image file is ``pixel / 255``)
IDENTITY = "x = pixel / 255 [resized bilinearly to size]"


def check_dataset(task: str, dataset: str) -> str:
    key = canonical_name(str(dataset))
    if key != "shapes":
        raise ValueError(f"task {task!r} trains on the data set 'shapes' (synthetic images "
                         f"with boxes, masks and labels), got {dataset!r}")
    return key


class ShapesSplits:
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
        log("filterbank: drew " + ("" if test_only else
                                    f"{len(self.train_idx):,} training, {len(self.val_idx):,} "
                                    f"validation and ")
            + f"{n_test:,} test images of 'shapes' ({self.size}x{self.size}) in "
              f"{self.seconds:.1f} s")

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

    def pre(self) -> dict:
        c = self.train_set.channels
        return {"channels": c, "size": [self.size, self.size], "resize": False,
                "scale": 1 / 255, "mean": [0.0] * c, "std": [1.0] * c, "formula": IDENTITY}

    def source(self) -> str:
        return f"generated from seed {self.train_set.seed}"

    def counts(self) -> dict:
        return {"train_images": int(len(self.train_idx)), "val_images": int(len(self.val_idx)),
                "test_images": int(len(self.test_idx))}
