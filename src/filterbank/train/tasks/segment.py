"""``--task segment``: semantic segmentation of ``shapes`` with a U-Net.

Every pixel is classified as background or one of the shape kinds: the model outputs
``(N, 1 + C, H, W)`` logits, the loss is pixel-wise cross-entropy (the fused
``F.cross_entropy``) with ``ignore_index`` 255 for void pixels. Void pixels: a band ``void``
pixels wide (task argument, default 1; 0 for none) along every class boundary of the training
and validation masks is labelled 255, left out of the loss and of the metrics (PASCAL VOC
marks its object outlines the same way). The metrics per epoch are the mIoU and the pixel
accuracy, each from one confusion matrix over the whole split; the test report scores the
test split both with the void band left out (``test_miou``) and on every pixel
(``test_miou_all``), writes the IoU per class as bars (``iou.png``) and test images with the
predicted masks overlaid (``masks.png``).
"""

from __future__ import annotations

import numpy as np

from filterbank import nn
from filterbank.train.metrics import MeanIoU, PixelAccuracy, mean_iou
from filterbank.train.runs import write_json
from filterbank.train.tasks.base import Task, TaskData, array_loaders, flipper, predict_batches

#: the target label of void pixels
VOID = 255


def void_band(masks: np.ndarray, width: int, void: int = VOID) -> np.ndarray:
    """Masks ``(N, H, W)`` with every pixel within ``width`` pixels (chessboard distance) of
    a class boundary set to ``void``; a boundary pixel is one whose right, left, upper or
    lower neighbour has another class. ``width`` 0 returns a copy."""
    masks = np.asarray(masks)
    if width <= 0:
        return masks.copy()
    edge = np.zeros(masks.shape, dtype=bool)
    dx = masks[..., :, 1:] != masks[..., :, :-1]
    dy = masks[..., 1:, :] != masks[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    band = edge
    for _ in range(width - 1):  # grow by one pixel in every direction (diagonals included)
        grown = band.copy()
        grown[..., 1:, :] |= band[..., :-1, :]
        grown[..., :-1, :] |= band[..., 1:, :]
        rows = grown.copy()
        grown[..., :, 1:] |= rows[..., :, :-1]
        grown[..., :, :-1] |= rows[..., :, 1:]
        band = grown
    return np.where(band, void, masks)


def _flip_mask(y: np.ndarray) -> np.ndarray:
    return y[..., ::-1]


class SegmentTask(Task):
    name = "segment"
    description = "semantic segmentation with a U-Net (a class per pixel; mIoU)"
    default_model = "unet"
    defaults = {"epochs": 10, "batch_size": 16, "lr": 3e-3, "augment": ["flip"],
                "limit": 2000}
    options = {"void": 1}
    model_kind = "segment"
    needs = "a model that outputs a class map (N, classes, H, W), such as unet"
    coco_masks = True

    def class_names(self, classes, options) -> list[str]:
        return ["background", *classes]

    def load(self, dataset, *, data_root, download, image_size, limit, seed, val_split,
             batch_size, prefetch, augment, options, old, init, log) -> TaskData:
        if not isinstance(options["void"], int) or options["void"] < 0:
            raise ValueError(f"task 'segment': void must be an int >= 0 (pixels), got "
                             f"{options['void']!r}")
        s = self.splits(dataset, image_size, limit, val_split, seed, options, log)
        classes = self.class_names(s.classes, options)
        masks = [np.stack([t["mask"] for t in ts]) if ts else
                 np.zeros((0, s.size, s.size), np.int64)
                 for ts in (s.targets_train, s.targets_val, s.targets_test)]
        w = options["void"]
        y = (void_band(masks[0], w), void_band(masks[1], w))
        data = self.task_data(s, classes, masks[2])
        array_loaders(data, (s.x_train, s.x_val), y, batch_size, prefetch, seed,
                      flipper(augment, _flip_mask))
        return data

    def output_shape(self, data, net, options) -> tuple:
        return (1, len(data.classes), *data.size)

    def loss(self, data, net, options):
        return nn.CrossEntropyLoss(ignore_index=VOID)

    def metrics(self, data, net, options) -> list:
        k = len(data.classes)
        return [MeanIoU(k, ignore_index=VOID, name="miou"),
                PixelAccuracy(k, ignore_index=VOID)]

    def monitor(self, has_val: bool) -> tuple[str, str]:
        return ("val_miou", "max") if has_val else ("miou", "max")

    def test_truth(self, splits, options) -> np.ndarray:
        return np.stack([t["mask"] for t in splits.targets_test])

    def predict_arrays(self, net, x, config) -> list[dict]:
        classes = config["classes"]
        pred = predict_batches(net, x, 64).argmax(axis=1)
        out = []
        for m in pred:
            counts = np.bincount(m.reshape(-1), minlength=len(classes)) / m.size
            out.append({"mask": m, "fractions": {c: round(float(f), 4)
                                                 for c, f in zip(classes, counts) if f > 0}})
        return out

    def draw(self, image, result, config):
        from filterbank.viz.tasks import overlay_mask

        return overlay_mask(image, result["mask"])

    def describe(self, result) -> str:
        return ", ".join(f"{c} {f:.1%}" for c, f in sorted(result["fractions"].items(),
                                                            key=lambda kv: -kv[1]))

    def score(self, net, x, truth, classes, options, out, stem, log, dataset) -> dict:
        pred = predict_batches(net, x, 64).argmax(axis=1)
        images = x
        k = len(classes)
        band = mean_iou(pred, void_band(truth, options["void"]), k, ignore_index=VOID)
        full = mean_iou(pred, truth, k)
        results = {"test_miou": round(band["miou"], 4),
                   "test_pixel_accuracy": round(band["pixel_accuracy"], 4),
                   "test_miou_all": round(full["miou"], 4),
                   "test_pixel_accuracy_all": round(full["pixel_accuracy"], 4),
                   "test_images": int(len(truth)), "void": options["void"]}
        per_class = {c: (None if np.isnan(v) else round(float(v), 4))
                     for c, v in zip(classes, band["iou_per_class"])}
        per_class_all = {c: (None if np.isnan(v) else round(float(v), 4))
                         for c, v in zip(classes, full["iou_per_class"])}
        write_json(out / f"{stem}.json", {
            **results, "classes": classes, "iou_per_class": per_class,
            "iou_per_class_all": per_class_all,
            "confusion_matrix_all": full["confusion_matrix"].tolist()})
        try:
            from filterbank.viz.tasks import image_sheet, overlay_mask, plot_class_bars

            plot_class_bars(band["iou_per_class"], classes, out / f"{stem}-iou.png",
                            title=f"{dataset}: IoU per class (mIoU {band['miou']:.3f}, "
                                  f"void band {options['void']} px left out)",
                            mean=band["miou"])
            n = min(8, len(images))
            tiles, titles = [], []
            for i in range(n):
                tiles += [overlay_mask(images[i], truth[i], scale=3),
                          overlay_mask(images[i], pred[i], scale=3)]
                titles += [f"{i}: true", f"{i}: predicted"]
            image_sheet(tiles, out / f"{stem}-masks.png", columns=4, titles=titles)
        except ImportError as e:
            log(f"filterbank: no segmentation pictures ({e})")
        lines = ["IoU per class (void band left out): "
                 + "  ".join(f"{c} {v:.3f}" for c, v in per_class.items() if v is not None),
                 f"test mIoU {results['test_miou']:.4f}  pixel accuracy "
                 f"{results['test_pixel_accuracy']:.4f} (void band of {options['void']} px "
                 f"left out); on every pixel: mIoU {results['test_miou_all']:.4f}, pixel "
                 f"accuracy {results['test_pixel_accuracy_all']:.4f} ({len(truth):,} "
                 f"{dataset} test images)"]
        return {"results": results, "lines": lines, "main": ("mIoU", band["miou"])}
