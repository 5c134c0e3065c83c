"""``--task regress``: a CNN regresses numbers about the one shape in an image.

Task argument ``target``:

- ``box`` (default): ``s = (c_x, c_y, w, h)`` of the shape's bounding box as fractions of
  the image size; scored by the mean IoU of predicted and true boxes and the mean absolute
  error of the four numbers in pixels;
- ``vertices``: ``s = (x_1, y_1, x_2, y_2, x_3, y_3)`` of a triangle (images of triangles
  only), the vertices sorted by their angle around the centroid (atan2 from -pi, increasing:
  the order is a function of the picture), as fractions of the image size; scored by the
  mean distance in pixels between a predicted and a true vertex (landmark error).

The loss is the lecture's squared loss with its factor 1/2, ``E = 1/2 sum_i (s_i - s^_i)^2``
per image, averaged over the batch (:class:`HalfSquaredError`). Any classifier of the zoo is
a regressor with one output per number (``num_classes`` = 4 or 6). A flip mirrors the image
and the target (``c_x -> 1 - c_x``; vertices mirrored and sorted again).
"""

from __future__ import annotations

import numpy as np

import filterbank.functional as F
from filterbank.nn import Module
from filterbank.ops import box_convert, box_iou
from filterbank.tensor import Tensor
from filterbank.train.metrics import Metric
from filterbank.train.runs import write_json
from filterbank.train.tasks.base import Task, TaskData, array_loaders, flipper, predict_batches

#: colours of the true and the predicted box or vertices in the pictures
TRUE, PREDICTED = (255, 255, 255), (230, 25, 75)
TARGETS = {"box": ["c_x", "c_y", "w", "h"], "vertices": ["x_1", "y_1", "x_2", "y_2", "x_3",
                                                         "y_3"]}


class HalfSquaredError(Module):
    r"""The squared loss with the factor 1/2 of the lecture notes, summed over the outputs of
    a sample and averaged over the batch.

    .. math::

        E = \frac{1}{N} \sum_n \frac{1}{2} \sum_i (s_{n,i} - \hat s_{n,i})^2

    so its gradient is ``(s^ - s) / N``. ``nn.MSELoss`` instead averages over every number and
    has no 1/2: ``E = HalfSquaredError * 2 / D`` for D outputs per sample.

    Shape:
        input, target: ``(N, D)``; output: scalar.
    """

    def forward(self, input, target):  # noqa: A002
        if tuple(input.shape) != tuple(target.shape) or len(input.shape) != 2:
            raise ValueError(f"HalfSquaredError: expected input and target of the same shape "
                             f"(N, D), got {tuple(input.shape)} and {tuple(target.shape)}")
        return 0.5 * F.mse_loss(input, target, reduction="sum") / input.shape[0]


def sort_vertices(v: np.ndarray) -> np.ndarray:
    """``(n, 3, 2)`` vertices ordered by angle around their centroid (from -pi, increasing)."""
    d = v - v.mean(axis=1, keepdims=True)
    order = np.argsort(np.arctan2(d[..., 1], d[..., 0]), axis=1, kind="stable")
    return np.take_along_axis(v, order[..., None], axis=1)


def box_scores(pred: np.ndarray, target: np.ndarray, size: int) -> dict:
    """Mean IoU, mean absolute pixel error and mean centre distance of cxcywh boxes given as
    fractions of an image of ``size`` pixels."""
    p, t = np.asarray(pred, np.float64) * size, np.asarray(target, np.float64) * size
    iou = np.diagonal(box_iou(box_convert(p, "cxcywh", "xyxy"), box_convert(t, "cxcywh",
                                                                             "xyxy")))
    return {"mean_iou": float(iou.mean()), "mean_pixel_error": float(np.abs(p - t).mean()),
            "centre_pixel_error": float(np.hypot(*(p[:, :2] - t[:, :2]).T).mean())}


def vertex_error(pred: np.ndarray, target: np.ndarray, size: int) -> float:
    d = (np.asarray(pred, np.float64) - np.asarray(target, np.float64)).reshape(-1, 3, 2)
    return float(np.hypot(d[..., 0], d[..., 1]).mean() * size)


def _targets(s, target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (train, val, test) targets of the splits ``s``, as fractions of the image size."""
    size = s.size
    if target == "box":
        y = [box_convert(np.concatenate([t["boxes"] for t in ts]).astype(np.float64),
                         "xyxy", "cxcywh") / size if ts else np.zeros((0, 4))
             for ts in (s.targets_train, s.targets_val, s.targets_test)]
    else:
        y = [sort_vertices(np.stack([o[0]["vertices"] for o in objs])).reshape(-1, 6) / size
             if objs else np.zeros((0, 6))
             for objs in (s.objects_train, s.objects_val, s.objects_test)]
    return tuple(a.astype(np.float32) for a in y)


class RegressionScore(Metric):
    """Running mean box IoU (``target='box'``, name ``mean_iou``) or mean vertex distance in
    pixels (``'vertices'``, name ``vertex_error``)."""

    def __init__(self, target: str, size: int):
        self.target, self.size = target, size
        self.name = "mean_iou" if target == "box" else "vertex_error"
        self.reset()

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, output, target) -> None:
        p = output.data if isinstance(output, Tensor) else np.asarray(output)
        t = target.data if isinstance(target, Tensor) else np.asarray(target)
        value = (box_scores(p, t, self.size)["mean_iou"] if self.target == "box"
                 else vertex_error(p, t, self.size))
        self.total += value * len(p)
        self.count += len(p)

    def compute(self) -> float:
        return self.total / self.count if self.count else 0.0


class RegressTask(Task):
    name = "regress"
    description = "regression of a box (c_x, c_y, w, h) or a triangle's vertices (1/2 MSE)"
    default_model = "simple_cnn"
    # four conv blocks (4x4 maps on 64x64 images) and no dropout: coordinates need precise
    # features, the flattened maps keep where things are
    defaults = {"epochs": 20, "batch_size": 32, "lr": 2e-3, "augment": ["flip"],
                "limit": 2000,
                "model_args": {"blocks": 4, "width": 16, "dropout": 0.0}}
    options = {"target": "box"}
    model_kind = "classify"
    needs = ("a model with one output per number, such as simple_cnn or resnet18 "
             "(num_classes outputs)")
    reads_coco = False  # one object per image, and a triangle's vertices

    def class_names(self, classes, options) -> list[str]:
        return list(TARGETS[options["target"]])

    def load(self, dataset, *, data_root, download, image_size, limit, seed, val_split,
             batch_size, prefetch, augment, options, old, init, log) -> TaskData:
        target = options["target"]
        if target not in TARGETS:
            raise ValueError(f"task 'regress': target must be 'box' or 'vertices', got "
                             f"{target!r}")
        s = self.splits(dataset, image_size, limit, val_split, seed, options, log)
        y = _targets(s, target)
        data = self.task_data(s, self.class_names(s.classes, options), y[2])

        def flip_target(t):
            t = t.copy()
            if target == "box":
                t[:, 0] = 1 - t[:, 0]
                return t
            v = t.reshape(-1, 3, 2)
            v[..., 0] = 1 - v[..., 0]
            return sort_vertices(v).reshape(-1, 6)

        array_loaders(data, (s.x_train, s.x_val), y[:2], batch_size, prefetch, seed,
                      flipper(augment, flip_target))
        return data

    def loss(self, data, net, options):
        return HalfSquaredError()

    def metrics(self, data, net, options) -> list:
        return [RegressionScore(options["target"], data.size[0])]

    def monitor(self, has_val: bool) -> tuple[str, str]:
        # the metric's name depends on the target; the run's config gives it (see report)
        return ("val_loss", "min") if has_val else ("loss", "min")

    def shapes_overrides(self, options) -> dict:
        kw = {"min_objects": 1, "max_objects": 1}
        if options["target"] == "vertices":
            kw["shapes"] = ("triangle",)
        return kw

    def needs_objects(self, options) -> bool:
        return options["target"] == "vertices"

    def test_truth(self, splits, options) -> np.ndarray:
        return _targets(splits, options["target"])[2]

    def predict_arrays(self, net, x, config) -> list[dict]:
        size = x.shape[-1]
        classes = config["classes"]
        return [{"values": {c: round(float(v) * size, 2) for c, v in zip(classes, p)}}
                for p in predict_batches(net, x)]

    def draw(self, image, result, config):
        from filterbank.viz.tasks import draw_boxes, draw_points

        v = np.array(list(result["values"].values()), np.float64)
        if len(v) == 4:
            return draw_boxes(image, box_convert(v[None], "cxcywh", "xyxy"), [0], [],
                              colours=[PREDICTED], text=False)
        return draw_points(image, v.reshape(-1, 2), colour=PREDICTED)

    def describe(self, result) -> str:
        return "  ".join(f"{k} {v:.1f}" for k, v in result["values"].items())

    def score(self, net, x, truth, classes, options, out, stem, log, dataset) -> dict:
        pred = predict_batches(net, x)
        images = x
        size = images.shape[-1]
        if options["target"] == "box":
            sc = box_scores(pred, truth, size)
            results = {"test_mean_iou": round(sc["mean_iou"], 4),
                       "test_mean_pixel_error": round(sc["mean_pixel_error"], 3),
                       "test_centre_pixel_error": round(sc["centre_pixel_error"], 3)}
            line = (f"test mean IoU {sc['mean_iou']:.4f}  mean absolute error "
                    f"{sc['mean_pixel_error']:.2f} px  centre error "
                    f"{sc['centre_pixel_error']:.2f} px")
            main = ("mean IoU", sc["mean_iou"])
        else:
            err = vertex_error(pred, truth, size)
            results = {"test_vertex_pixel_error": round(err, 3)}
            line = f"test mean vertex error {err:.2f} px"
            main = ("vertex error (px)", err)
        results["test_images"] = int(len(truth))
        write_json(out / f"{stem}.json", {**results, "target": options["target"]})
        try:
            from filterbank.viz.tasks import draw_boxes, draw_points, image_sheet

            tiles = []
            for k in range(min(16, len(images))):
                if options["target"] == "box":
                    tb = box_convert(truth[k:k + 1].astype(np.float64) * size, "cxcywh", "xyxy")
                    pb = box_convert(pred[k:k + 1].astype(np.float64) * size, "cxcywh", "xyxy")
                    tile = draw_boxes(images[k], tb, [0], [], colours=[TRUE], dashed=True,
                                      text=False)
                    tiles.append(draw_boxes(tile, pb, [0], [], colours=[PREDICTED],
                                            text=False))
                else:
                    tile = draw_points(images[k], truth[k].reshape(3, 2) * size, colour=TRUE)
                    tiles.append(draw_points(tile, pred[k].reshape(3, 2) * size,
                                             colour=PREDICTED))
            image_sheet(tiles, out / f"{stem}-predictions.png",
                        titles=[f"{k}: white true, red predicted" for k in range(len(tiles))])
        except ImportError as e:
            log(f"filterbank: no regression pictures ({e})")
        return {"results": results, "lines": [f"{line} ({len(truth):,} {dataset} test images)"],
                "main": main}
