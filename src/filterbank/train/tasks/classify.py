"""``--task classify`` (the default): one class per image, cross-entropy, accuracy.

Data: a registered data set or an image folder (:func:`~filterbank.train.recipe.load_data`),
normalised per channel with the training images' statistics (kept from the run being resumed
or the run whose weights start this one); the test report is the accuracy, the per-class
precision/recall/F1 and the confusion matrix (``confusion.json``/``.png``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from filterbank import nn
from filterbank.data import DataLoader, Subset
from filterbank.models import model_task
from filterbank.train.inference import report_test_set
from filterbank.train.recipe import (
    _images,
    _limit,
    _source,
    channel_stats,
    image_geometry,
    is_folder_dataset,
    load_data,
    make_transform,
)
from filterbank.train.tasks.base import Task, TaskData


class ClassifyTask(Task):
    name = "classify"
    description = "image classification (one class per image; accuracy)"
    default_model = None
    default_dataset = "fashion-mnist"
    defaults = {}
    augmentations = ("flip", "crop", "affine", "erase")
    options = {}

    def check_model(self, name: str) -> None:
        if model_task(name) != "classify":
            raise ValueError(f"model {name!r} is a {model_task(name)} model, but the task "
                             f"classify needs one score per class; choose a classifier (e.g. "
                             f"simple_cnn, lenet5, resnet18), or train it for its task "
                             f"({model_task(name)})")

    def load(self, dataset, *, data_root, download, image_size, limit, seed, val_split,
             batch_size, prefetch, augment, options, old, init, log) -> TaskData:
        folder_size = (image_size, image_size) if image_size else None
        resolved, train_full, val_given, test_set = load_data(dataset, data_root, download,
                                                              folder_size, log)
        requested = (str(Path(dataset).expanduser().resolve()) if is_folder_dataset(dataset)
                     else str(dataset))
        channels, size = image_geometry(train_full)
        resize = False
        if image_size is not None:
            resize = (image_size, image_size) != tuple(size)
            size = (image_size, image_size)
        # a seeded subset (limit) and validation split, independent of the model's seed
        split_rng = np.random.default_rng(seed)
        idx = _limit(len(train_full), limit, split_rng)
        if val_given is not None:  # the folder's own val/ split
            train_idx, val_idx = idx, _limit(len(val_given), limit, split_rng)
            val_source = val_given
        else:
            n_val = int(round(val_split * len(idx)))
            perm = split_rng.permutation(idx)
            train_idx, val_idx = np.sort(perm[n_val:]), np.sort(perm[:n_val])
            val_source = train_full
        test_idx = _limit(len(test_set), limit, split_rng)
        if old is not None:  # a resumed run keeps its normalisation
            mean, std = old["preprocessing"]["mean"], old["preprocessing"]["std"]
        elif init is not None and init["config"]["preprocessing"]["channels"] == channels:
            mean = init["config"]["preprocessing"]["mean"]  # what the loaded features expect
            std = init["config"]["preprocessing"]["std"]
        else:
            mean, std = channel_stats(_images(train_full), train_idx)
        pre = {"channels": channels, "size": list(size), "resize": resize, "scale": 1 / 255,
               "mean": mean, "std": std,
               "formula": "x = (pixel / 255 [resized bilinearly to size] - mean[c]) / std[c]"}
        train_tf, eval_tf = make_transform(pre, augment), make_transform(pre)
        n_val = len(val_idx)
        return TaskData(
            resolved=resolved, requested=requested, source=_source(train_full, data_root),
            classes=[str(c) for c in train_full.classes], channels=channels, size=tuple(size),
            pre=pre,
            train_loader=DataLoader(Subset(train_full, train_idx), batch_size=batch_size,
                                    shuffle=True, transform=train_tf, prefetch=prefetch,
                                    generator=seed + 1),
            val_loader=(DataLoader(Subset(val_source, val_idx), batch_size=512,
                                   transform=eval_tf, prefetch=prefetch) if n_val else None),
            test_loader=DataLoader(Subset(test_set, test_idx), batch_size=512,
                                   transform=eval_tf, prefetch=prefetch),
            probe=DataLoader(Subset(train_full, train_idx[:1]), transform=eval_tf, generator=0),
            counts={"train_images": int(len(train_idx)), "val_images": int(n_val),
                    "test_images": int(len(test_idx))},
            test_truth=test_set.targets[test_idx])

    def loss(self, data, net, options):
        return nn.CrossEntropyLoss()

    def metrics(self, data, net, options) -> list:
        return ["accuracy"]

    def monitor(self, has_val: bool) -> tuple[str, str]:
        return ("val_accuracy", "max") if has_val else ("accuracy", "max")

    def report(self, net, data, config, out, stem, log, trainer=None) -> dict:
        r = report_test_set(net, trainer, data.test_loader, data.test_truth, data.classes, out,
                            stem, log)
        n = len(data.test_truth)
        return {"results": {"test_accuracy": r["accuracy"], "test_images": int(n)},
                "lines": [r["report"]],
                "main": ("accuracy", r["accuracy"]), "correct": r["correct"]}
