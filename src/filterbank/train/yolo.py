"""YOLO v1 targets and detections: boxes in, grid tensors out, and back.

The grid layout is the one of :class:`filterbank.nn.YOLOv1Loss` (see
:mod:`filterbank.nn.detection`): predictions ``(N, S, S, B*5 + C)`` with per cell B boxes
``(x, y, sqrt_w, sqrt_h, confidence)`` then C class scores; targets ``(N, S, S, 5 + C)`` with
``(x, y, w, h, 1)`` and a one-hot class in a cell holding an object centre. Cell ``[n, i, j]``
is row ``i`` (y) and column ``j`` (x).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from filterbank.nn.detection import _cell_boxes_xyxy
from filterbank.ops import batched_nms
from filterbank.tensor import Tensor


def _array(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)  # a network output needs no grad


def _positive_int(fn: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{fn}: {name} must be a positive int, got {value!r}")
    return int(value)


def encode_targets(boxes_per_image: Sequence, labels_per_image: Sequence, S: int,
                   C: int) -> np.ndarray:
    """Ground-truth boxes to the YOLO v1 target grid ``(N, S, S, 5 + C)``.

    A box ``(x1, y1, x2, y2)`` (image-relative, in [0, 1]) has centre
    ``(cx, cy) = ((x1 + x2) / 2, (y1 + y2) / 2)`` and size ``(w, h) = (x2 - x1, y2 - y1)``. It
    goes to row ``i = floor(cy S)``, column ``j = floor(cx S)`` (a centre on the image's far
    edge, 1.0, goes to the last cell), which gets ``(cx S - j, cy S - i, w, h, 1)`` followed by
    the one-hot label. Every other cell is zeros.

    One object per cell: when several centres fall in one cell the cell keeps the box with the
    largest area (on equal areas, the one listed first); the others are dropped, as in YOLO v1,
    whose cell predicts one class.

    Args:
        boxes_per_image: one ``(K, 4)`` array (or Tensor) of xyxy boxes per image; ``K`` may be 0.
        labels_per_image: one ``(K,)`` int array of class indices in ``[0, C)`` per image.
        S: grid size.
        C: number of classes.

    Returns:
        float32 NumPy array ``(N, S, S, 5 + C)``, N = the number of images.

    Example:
        >>> import numpy as np
        >>> t = encode_targets([np.array([[0.0, 0.0, 0.5, 0.5]])], [np.array([1])], S=2, C=2)
        >>> t[0, 0, 1].tolist()  # centre (0.25, 0.25): row 0, column 0 ...
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        >>> t[0, 0, 0].tolist()  # ... at offset (0.5, 0.5), size 0.5 x 0.5, class 1
        [0.5, 0.5, 0.5, 0.5, 1.0, 0.0, 1.0]
    """
    fn = "encode_targets"
    S, C = _positive_int(fn, "S", S), _positive_int(fn, "C", C)
    if len(boxes_per_image) != len(labels_per_image):
        raise ValueError(
            f"{fn}: boxes_per_image and labels_per_image must have one entry per image, got "
            f"{len(boxes_per_image)} and {len(labels_per_image)}"
        )
    out = np.zeros((len(boxes_per_image), S, S, 5 + C), np.float32)
    for n, (boxes, labels) in enumerate(zip(boxes_per_image, labels_per_image)):
        boxes = _array(boxes)
        labels = _array(labels)
        if boxes.size == 0 and labels.size == 0:
            continue
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{fn}: image {n}: boxes must have shape (K, 4), got {boxes.shape}")
        if boxes.dtype.kind not in "iuf":
            raise TypeError(f"{fn}: image {n}: boxes must be numeric, got dtype {boxes.dtype}")
        if labels.shape != (len(boxes),):
            raise ValueError(
                f"{fn}: image {n}: labels must have shape ({len(boxes)},) to match the boxes, "
                f"got {labels.shape}"
            )
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{fn}: image {n}: labels must be integers, got dtype {labels.dtype}")
        boxes = boxes.astype(np.float64)
        if not np.all(np.isfinite(boxes)):
            raise ValueError(f"{fn}: image {n}: boxes have NaN or infinite coordinates")
        bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
        if bad.size:
            raise ValueError(
                f"{fn}: image {n}: boxes must be xyxy with x2 >= x1 and y2 >= y1, got box "
                f"{bad[0]} = {boxes[bad[0]].tolist()}"
            )
        bad = np.flatnonzero(np.any((boxes < 0) | (boxes > 1), axis=1))
        if bad.size:
            raise ValueError(
                f"{fn}: image {n}: boxes must be image-relative, in [0, 1], got box {bad[0]} = "
                f"{boxes[bad[0]].tolist()}"
            )
        bad = np.flatnonzero((labels < 0) | (labels >= C))
        if bad.size:
            raise ValueError(
                f"{fn}: image {n}: labels must be in [0, C) = [0, {C}), got {labels[bad[0]]}"
            )

        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        col = np.minimum(np.floor(cx * S).astype(np.int64), S - 1)
        row = np.minimum(np.floor(cy * S).astype(np.int64), S - 1)
        # per cell, the largest box (then the first listed): sort by cell, area desc, index
        cell = row * S + col
        order = np.lexsort((np.arange(len(boxes)), -(w * h), cell))
        _, first = np.unique(cell[order], return_index=True)
        keep = order[first]
        r, c = row[keep], col[keep]
        out[n, r, c, 0] = cx[keep] * S - c
        out[n, r, c, 1] = cy[keep] * S - r
        out[n, r, c, 2] = w[keep]
        out[n, r, c, 3] = h[keep]
        out[n, r, c, 4] = 1
        out[n, r, c, 5 + labels[keep]] = 1
    return out


def decode(pred, conf_threshold: float, iou_threshold: float, B: int = 2, C: int | None = None,
           image_size=None) -> list[dict[str, np.ndarray]]:
    """YOLO v1 predictions to detections: boxes, scores and labels per image, after NMS.

    Each of the ``S*S*B`` predicted boxes of an image takes the cell's best class
    ``label = argmax_c p(c)`` and the score ``confidence * p(label)`` (the paper's
    class-specific confidence, Pr(class | object) Pr(object) IoU). Boxes with
    ``score > conf_threshold`` are kept, converted to xyxy
    (``cx = (j + x) / S, cy = (i + y) / S, w = sqrt_w^2, h = sqrt_h^2``), clipped to the image,
    and reduced by :func:`filterbank.ops.batched_nms` (greedy non-maximum suppression per
    class: by descending score, ties in row, column, predictor order, a box whose IoU with a
    kept box of its class is strictly greater than ``iou_threshold`` is dropped).

    Args:
        pred: ``(N, S, S, B*5 + C)`` Tensor or array, the network's raw output.
        conf_threshold: keep boxes whose score is above it.
        iou_threshold: NMS overlap threshold in [0, 1].
        B: boxes per cell. Default 2.
        C: number of classes; default: what the last dimension leaves after ``B*5``.
        image_size: ``None`` for image-relative boxes in [0, 1], else pixels of an image of
            ``(H, W)`` (or ``H = W`` given as one int).

    Returns:
        One dict per image: ``boxes`` float32 ``(K, 4)`` xyxy, ``scores`` float32 ``(K,)``
        and ``labels`` int64 ``(K,)``, in descending score order.

    Example:
        >>> import numpy as np
        >>> pred = np.zeros((1, 1, 1, 12), np.float32)
        >>> pred[0, 0, 0, :5] = [0.5, 0.5, 0.5, 0.5, 0.9]  # a 0.25 x 0.25 box, confidence 0.9
        >>> pred[0, 0, 0, 10:] = [0.2, 0.8]                 # class 1 at 0.8
        >>> out = decode(pred, conf_threshold=0.5, iou_threshold=0.5, image_size=(100, 200))
        >>> out[0]["boxes"].tolist(), out[0]["labels"].tolist()
        ([[75.0, 37.5, 125.0, 62.5]], [1])
    """
    fn = "decode"
    p = _array(pred)
    B = _positive_int(fn, "B", B)
    if p.dtype.kind != "f":
        raise TypeError(f"{fn}: pred must be floating point, got dtype {p.dtype}")
    if p.ndim != 4 or p.shape[1] != p.shape[2]:
        raise ValueError(f"{fn}: pred must have shape (N, S, S, B*5 + C), got {p.shape}")
    if C is None:
        C = p.shape[3] - 5 * B
        if C < 1:
            raise ValueError(
                f"{fn}: pred's last dimension must be B*5 + C with C >= 1, B = {B}: at least "
                f"{5 * B + 1}, got shape {p.shape}"
            )
    C = _positive_int(fn, "C", C)
    if p.shape[3] != 5 * B + C:
        raise ValueError(
            f"{fn}: pred's last dimension must be B*5 + C = {B}*5 + {C} = {5 * B + C}, got "
            f"shape {p.shape}"
        )
    for name, v in (("conf_threshold", conf_threshold), ("iou_threshold", iou_threshold)):
        if isinstance(v, bool) or not isinstance(v, int | float | np.number) or np.isnan(v):
            raise ValueError(f"{fn}: {name} must be a number, got {v!r}")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"{fn}: iou_threshold must be in [0, 1], got {iou_threshold}")
    scale = None
    if image_size is not None:
        hw = (image_size, image_size) if isinstance(image_size, int | np.integer) else image_size
        try:
            H, W = (float(v) for v in hw)
        except (TypeError, ValueError):
            raise ValueError(
                f"{fn}: image_size must be an int or (H, W), got {image_size!r}"
            ) from None
        if not (H > 0 and W > 0 and np.isfinite(H) and np.isfinite(W)):
            raise ValueError(f"{fn}: image_size must be positive, got {image_size!r}")
        scale = np.array([W, H, W, H], np.float32)

    n, S = p.shape[0], p.shape[1]
    box = p[..., : 5 * B].reshape(n, S, S, B, 5)
    cls = p[..., 5 * B :]
    labels = np.broadcast_to(np.argmax(cls, axis=-1)[..., None], (n, S, S, B))
    scores = box[..., 4] * np.max(cls, axis=-1)[..., None]  # (N, S, S, B)
    xyxy = np.clip(_cell_boxes_xyxy(box, S, roots=True), 0, 1)  # (N, S, S, B, 4)
    out = []
    for k in range(n):
        s, b, lab = scores[k].reshape(-1), xyxy[k].reshape(-1, 4), labels[k].reshape(-1)
        sel = np.flatnonzero(s > conf_threshold)
        keep = sel[batched_nms(b[sel], s[sel], lab[sel], iou_threshold)]
        boxes = b[keep].astype(np.float32)
        if scale is not None:
            boxes = boxes * scale
        out.append({
            "boxes": boxes.reshape(-1, 4),
            "scores": s[keep].astype(np.float32),
            "labels": lab[keep].astype(np.int64),
        })
    return out
