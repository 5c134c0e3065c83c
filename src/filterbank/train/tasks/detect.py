"""``--task detect``: YOLO v1 on ``shapes``.

Targets are YOLO v1's grid ``(N, S, S, 5 + C)`` (:func:`~filterbank.train.yolo.encode_targets`,
S the model's grid), the loss :class:`~filterbank.nn.YOLOv1Loss` (the paper's five terms,
lambda_coord 5, lambda_noobj 0.5), the metric COCO's mAP@0.5 of the validation images
(decoded with :func:`~filterbank.train.yolo.decode`: score = confidence x class score, per-class
NMS), and the test report mAP@0.5, mAP@[.5:.95], mAP@0.75 and AP per class, with the
precision-recall curves (``pr-curves.png``) and test images with their boxes drawn
(``detections.png``). A horizontal flip mirrors the pixels and the grid together.
"""

from __future__ import annotations

import numpy as np

from filterbank import nn
from filterbank.tensor import Tensor
from filterbank.train.metrics import Metric, mean_average_precision
from filterbank.train.runs import write_json
from filterbank.train.tasks.base import Task, TaskData, array_loaders, flipper, predict_batches
from filterbank.train.yolo import decode, encode_targets

#: every box, also the small ones, counts (COCO's pixel area ranges mean little on 64x64)
ALL_AREAS = {"all": (0.0, 1e10)}


def grid_targets(y: np.ndarray, image_size: int) -> list[dict]:
    """The ground truth an encoded grid ``(N, S, S, 5 + C)`` holds, as xyxy pixel boxes and
    labels per image (the inverse of :func:`encode_targets` for one object per cell)."""
    y = np.asarray(y, np.float64)
    S = y.shape[1]
    out = []
    for g in y:
        r, c = np.nonzero(g[..., 4] > 0.5)
        cx, cy = (c + g[r, c, 0]) / S, (r + g[r, c, 1]) / S
        w, h = g[r, c, 2], g[r, c, 3]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) * image_size
        out.append({"boxes": boxes.astype(np.float32).reshape(-1, 4),
                    "labels": np.argmax(g[r, c, 5:], axis=-1).astype(np.int64)})
    return out


def flip_grid(y: np.ndarray) -> np.ndarray:
    """A target grid mirrored left-right: columns reversed, x offsets ``1 - x`` where an
    object is."""
    y = y[:, :, ::-1].copy()
    y[..., 0] = np.where(y[..., 4] > 0, 1 - y[..., 0], 0)
    return y


class DetectionMAP(Metric):
    """COCO's mAP at IoU 0.5 of the decoded outputs against the decoded target grids, over
    everything seen since ``reset()``. Tracked on validation only (``validation_only``): it
    needs the whole set and costs a decode and a matching."""

    name = "map_50"
    validation_only = True

    def __init__(self, B: int, C: int, image_size: int, conf_threshold: float = 0.01,
                 iou_threshold: float = 0.5):
        self.B, self.C, self.image_size = B, C, image_size
        self.conf_threshold, self.iou_threshold = conf_threshold, iou_threshold
        self.reset()

    def reset(self) -> None:
        self.preds, self.targets, self._cache = [], [], None

    def update(self, output, target) -> None:
        out = output.data if isinstance(output, Tensor) else np.asarray(output)
        t = target.data if isinstance(target, Tensor) else np.asarray(target)
        self.preds += decode(out, self.conf_threshold, self.iou_threshold, self.B, self.C,
                             self.image_size)
        self.targets += grid_targets(t, self.image_size)
        self._cache = None

    def compute(self) -> float:
        if not self.preds:
            return 0.0
        if self._cache is None:
            m = mean_average_precision(self.preds, self.targets, area_ranges=ALL_AREAS)
            self._cache = max(0.0, float(m["map_50"]))
        return self._cache


class DetectTask(Task):
    name = "detect"
    description = "object detection with YOLO v1 (boxes, classes, scores; mAP)"
    default_model = "tiny_yolo"
    defaults = {"epochs": 16, "batch_size": 32, "lr": 2e-3, "augment": ["flip"]}
    options = {"conf_threshold": 0.01, "nms_iou": 0.5, "score_threshold": 0.3}
    model_kind = "detect"
    needs = "a detector whose output is YOLO v1's grid (tiny_yolo, yolo_v1)"

    def load(self, dataset, *, data_root, download, image_size, limit, seed, val_split,
             batch_size, prefetch, augment, options, old, init, log) -> TaskData:
        s = self.splits(dataset, image_size, limit, val_split, seed, options, log)
        return self.task_data(s, s.classes, self.test_truth(s, options), batch_size=batch_size,
                              prefetch=prefetch, seed=seed, augment=list(augment))

    def model_kwargs(self, name, data, extra, options) -> dict:
        size = data.size[0]
        if name == "tiny_yolo" and size % 16 and "S" not in (extra or {}):
            raise ValueError(f"task 'detect': tiny_yolo needs images whose size is a multiple "
                             f"of 16 (one grid cell per 16 pixels, as 'shapes' places at most "
                             f"one object centre per cell), got {size}x{size}")
        return super().model_kwargs(name, data, extra, options)

    def _grid(self, net_or_kwargs) -> tuple[int, int, int]:
        get = (net_or_kwargs.get if isinstance(net_or_kwargs, dict)
               else lambda k, d=None: getattr(net_or_kwargs, k, d))
        return int(get("S")), int(get("B", 2)), int(get("C", get("num_classes")))

    def prepare(self, data: TaskData, net, options: dict) -> None:
        """Encode the targets for the model's grid and build the loaders."""
        S, B, C = self._grid(net)
        if C != len(data.classes):
            raise ValueError(f"the detector predicts {C} classes but the data set "
                             f"{data.resolved} has {len(data.classes)}")
        s = data.extra["splits"]
        size = data.size[0]
        enc = [encode_targets([t["boxes"] / size for t in ts], [t["labels"] for t in ts], S, C)
               for ts in (s.targets_train, s.targets_val)]
        array_loaders(data, (s.x_train, s.x_val), tuple(enc),
                      data.extra["batch_size"], data.extra["prefetch"], data.extra["seed"],
                      flipper(data.extra["augment"], flip_grid))
        data.extra.update(S=S, B=B, C=C)

    def output_shape(self, data, net, options) -> tuple:
        S, B, C = self._grid(net)
        return (1, S, S, 5 * B + C)

    def loss(self, data, net, options):
        S, B, C = self._grid(net)
        return nn.YOLOv1Loss(S=S, B=B, C=C)

    def metrics(self, data, net, options) -> list:
        S, B, C = self._grid(net)
        return [DetectionMAP(B, C, data.size[0], options["conf_threshold"],
                             options["nms_iou"])]

    def monitor(self, has_val: bool) -> tuple[str, str]:
        return ("val_map_50", "max") if has_val else ("loss", "min")

    def detect(self, net, x: np.ndarray, options: dict) -> list[dict]:
        S, B, C = self._grid(net)
        return decode(predict_batches(net, x), options["conf_threshold"], options["nms_iou"],
                      B, C, x.shape[-2:])

    def test_truth(self, splits, options) -> list[dict]:
        return [{"boxes": t["boxes"], "labels": t["labels"]} for t in splits.targets_test]

    def predict_arrays(self, net, x, config) -> list[dict]:
        options = self.parse_options(config.get("task_args"))
        classes = config["classes"]
        out = []
        for d in self.detect(net, x, options):
            keep = d["scores"] >= options["score_threshold"]
            out.append({"detections": [
                {"class": classes[int(lab)], "label": int(lab), "score": round(float(sc), 4),
                 "box": [round(float(v), 2) for v in box]}
                for box, sc, lab in zip(d["boxes"][keep], d["scores"][keep],
                                        d["labels"][keep])]})
        return out

    def draw(self, image, result, config):
        from filterbank.viz.tasks import draw_boxes

        d = result["detections"]
        return draw_boxes(image, [r["box"] for r in d], [r["label"] for r in d],
                          config["classes"], [r["score"] for r in d])

    def describe(self, result) -> str:
        d = result["detections"]
        return ", ".join(f"{r['class']} {r['score']:.2f}" for r in d) or "nothing found"

    def score(self, net, x, truth, classes, options, out, stem, log, dataset) -> dict:
        dets = self.detect(net, x, options)
        images = x
        m = mean_average_precision(dets, truth, area_ranges=ALL_AREAS)
        # AP at IoU 0.5 per class: the mean of its interpolated precision (first threshold)
        prec = m["precision"][0, :, :, 0]  # (R, K)
        ap50 = {int(c): float(prec[:, k].mean()) for k, c in enumerate(m["classes"])
                if prec[0, k] >= 0}
        per_class = {classes[c]: round(v, 4) for c, v in ap50.items()}
        per_class_coco = {classes[int(c)]: round(float(v), 4)
                          for c, v in zip(m["classes"], m["map_per_class"]) if v >= 0}
        results = {"test_map_50": round(float(m["map_50"]), 4),
                   "test_map": round(float(m["map"]), 4),
                   "test_map_75": round(float(m["map_75"]), 4),
                   "test_mar": round(float(m["mar"]), 4),
                   "test_images": len(truth)}
        write_json(out / f"{stem}.json", {
            **results, "ap_50_per_class": per_class, "ap_per_class": per_class_coco,
            "classes": classes,
            "conf_threshold": options["conf_threshold"], "nms_iou": options["nms_iou"],
            "pr_curve_iou_0.5": {classes[int(c)]: {k: np.round(v, 4).tolist()
                                                   for k, v in curve.items()}
                                 for c, curve in m["pr_curve"].items()}})
        try:
            from filterbank.viz.tasks import draw_boxes, image_sheet, plot_pr_curves

            plot_pr_curves(m["pr_curve"], classes, out / f"{stem}-pr-curves.png", ap=ap50,
                           title=f"{dataset}: precision-recall at IoU 0.5 "
                                 f"(mAP {m['map_50']:.3f})")
            n = min(16, len(images))
            tiles = []
            for k in range(n):
                d = dets[k]
                keep = d["scores"] >= options["score_threshold"]
                tiles.append(draw_boxes(images[k], d["boxes"][keep], d["labels"][keep],
                                        classes, d["scores"][keep]))
            image_sheet(tiles, out / f"{stem}-detections.png")
        except ImportError as e:
            log(f"filterbank: no detection pictures ({e})")
        lines = ["AP@0.5 per class: " + "  ".join(f"{k} {v:.3f}" for k, v in per_class.items()),
                 f"test mAP@0.5 {results['test_map_50']:.4f}  mAP@[.5:.95] "
                 f"{results['test_map']:.4f}  mAP@0.75 {results['test_map_75']:.4f} "
                 f"({len(truth):,} {dataset} test images)"]
        return {"results": results, "lines": lines, "main": ("mAP@0.5", m["map_50"])}
