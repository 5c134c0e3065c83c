"""``--task multilabel``: which shapes are in this image? Several labels per image, some of
them unknown.

The target of an image is one 0/1 entry per shape kind (``y = [1 1 0 0 1]``); a fraction
``unknown`` (task argument, default 0.3) of the training and validation entries is hidden as
``-1`` ("?", the lecture's ``y = [1 1 ? 0]``) and left out of the loss
(:class:`~filterbank.nn.BCEWithLogitsLoss` with ``ignore_index=-1``: a sigmoid and a binary
cross-entropy per class on the logits, no softmax, the classes are not exclusive). The test
labels are all known. Metrics: the mean over classes of the average precision of each
class's ranking (``map``), the per-class AP in the report and as bars (``ap.png``), and the
exact-match rate at logit 0 (probability 0.5).
"""

from __future__ import annotations

import numpy as np

from filterbank import nn
from filterbank.tensor import Tensor
from filterbank.train.metrics import Metric, average_precision
from filterbank.train.runs import write_json
from filterbank.train.tasks.base import (
    Task,
    TaskData,
    array_loaders,
    flipper,
    predict_batches,
    sigmoid,
)

UNKNOWN = -1.0


def _multi_hot(targets: list[dict], k: int) -> np.ndarray:
    y = np.zeros((len(targets), k), np.float32)
    for i, t in enumerate(targets):
        y[i, t["labels"]] = 1.0
    return y


class MultiLabelMAP(Metric):
    """Mean over classes of the average precision (unknown ``-1`` targets left out), over
    everything seen since ``reset()``; validation only (it ranks the whole set)."""

    name = "map"
    validation_only = True

    def reset(self) -> None:
        self.scores, self.targets = [], []

    def __init__(self):
        self.reset()

    def update(self, output, target) -> None:
        self.scores.append(np.asarray(output.data if isinstance(output, Tensor) else output))
        self.targets.append(np.asarray(target.data if isinstance(target, Tensor) else target))

    def compute(self) -> float:
        if not self.scores:
            return 0.0
        ap = average_precision(np.concatenate(self.scores), np.concatenate(self.targets),
                               ignore_index=UNKNOWN)
        return float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0


class MultiLabelTask(Task):
    name = "multilabel"
    description = "multi-label classification, unknown labels masked out (per-class AP)"
    default_model = "simple_cnn"
    # four conv blocks and a global max pool: "is there a triangle" holds wherever it is
    defaults = {"epochs": 20, "batch_size": 32, "lr": 2e-3, "augment": ["flip"],
                "limit": 3000,
                "model_args": {"blocks": 4, "width": 16, "pool": "max"}}
    options = {"unknown": 0.3}
    model_kind = "classify"
    needs = "a model with one logit per class, such as simple_cnn or resnet18"

    def load(self, dataset, *, data_root, download, image_size, limit, seed, val_split,
             batch_size, prefetch, augment, options, old, init, log) -> TaskData:
        u = options["unknown"]
        if not 0 <= u < 1:
            raise ValueError(f"task 'multilabel': unknown must be in [0, 1), got {u!r}")
        s = self.splits(dataset, image_size, limit, val_split, seed, options, log)
        k = len(s.classes)
        rng = np.random.default_rng([seed, 7])
        y = []
        for ts, hide in ((s.targets_train, True), (s.targets_val, True),
                         (s.targets_test, False)):
            a = _multi_hot(ts, k)
            if hide and u > 0:
                a[rng.random(a.shape) < u] = UNKNOWN
            y.append(a)
        data = self.task_data(s, s.classes, y[2],
                              unknown_fraction=float(np.mean(y[0] == UNKNOWN)))
        log(f"filterbank: {data.extra['unknown_fraction']:.1%} of the training labels are "
            f"unknown (-1) and left out of the loss")
        array_loaders(data, (s.x_train, s.x_val), tuple(y[:2]), batch_size, prefetch,
                      seed, flipper(augment, lambda t: t))
        return data

    def loss(self, data, net, options):
        return nn.BCEWithLogitsLoss(ignore_index=UNKNOWN)

    def metrics(self, data, net, options) -> list:
        return [MultiLabelMAP()]

    def monitor(self, has_val: bool) -> tuple[str, str]:
        return ("val_map", "max") if has_val else ("loss", "min")

    def shapes_overrides(self, options) -> dict:
        return {"min_objects": 1}

    def test_truth(self, splits, options) -> np.ndarray:
        return _multi_hot(splits.targets_test, len(splits.classes))

    def predict_arrays(self, net, x, config) -> list[dict]:
        classes = config["classes"]
        return [{"probabilities": {c: round(float(p), 4) for c, p in zip(classes, row)},
                 "present": [c for c, p in zip(classes, row) if p >= 0.5]}
                for row in sigmoid(predict_batches(net, x))]

    def draw(self, image, result, config):
        from filterbank.viz.tasks import caption

        return caption(image, [f"{c} {p:.2f}" for c, p in result["probabilities"].items()
                               if p >= 0.5] or ["(none)"])

    def describe(self, result) -> str:
        return ", ".join(f"{c} {p:.0%}" for c, p in result["probabilities"].items()
                         if p >= 0.5) or "none above 50%"

    def score(self, net, x, truth, classes, options, out, stem, log, dataset) -> dict:
        logits = predict_batches(net, x)
        ap = average_precision(logits, truth, ignore_index=UNKNOWN)
        known = truth != UNKNOWN
        exact = float(np.mean(np.all(((logits > 0) == (truth == 1)) | ~known, axis=1)))
        results = {"test_map": round(float(np.nanmean(ap)), 4),
                   "test_exact_match": round(exact, 4), "test_images": int(len(truth))}
        per_class = {c: (None if np.isnan(v) else round(float(v), 4))
                     for c, v in zip(classes, ap)}
        write_json(out / f"{stem}.json", {**results, "classes": classes,
                                          "ap_per_class": per_class})
        try:
            from filterbank.viz.tasks import plot_class_bars

            plot_class_bars(ap, classes, out / f"{stem}-ap.png", xlabel="average precision",
                            title=f"{dataset}: AP per class (mAP {np.nanmean(ap):.3f})",
                            mean=float(np.nanmean(ap)))
        except ImportError as e:
            log(f"filterbank: no AP plot ({e})")
        lines = ["AP per class: " + "  ".join(f"{c} {v:.3f}" for c, v in per_class.items()
                                              if v is not None),
                 f"test mAP {results['test_map']:.4f}  exact match "
                 f"{results['test_exact_match']:.4f} ({len(truth):,} {dataset} test images)"]
        return {"results": results, "lines": lines, "main": ("mAP", float(np.nanmean(ap)))}

