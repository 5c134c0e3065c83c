"""Metrics: classification (accuracy, top-k, confusion matrix, precision/recall/F1),
semantic segmentation (:func:`mean_iou`) and object detection (:func:`mean_average_precision`,
COCO's mAP).

Functions take model outputs (logits or probabilities, ``(N, C)``) or predicted labels
(``(N,)``) and integer targets, as NumPy arrays or Tensors, and return plain Python numbers or
NumPy arrays. The streaming classes (:class:`Accuracy`, :class:`TopKAccuracy`, :class:`Mean`,
:class:`MeanIoU`, :class:`PixelAccuracy`) accumulate over an epoch for the
:class:`~filterbank.train.Trainer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from filterbank.tensor import Tensor


def _np(a) -> np.ndarray:
    return a.data if isinstance(a, Tensor) else np.asarray(a)


def _labels(output, where: str) -> np.ndarray:
    """Predicted labels from logits (argmax over axis 1) or from labels as they are."""
    out = _np(output)
    if out.ndim >= 2:
        if out.shape[1] == 1:
            raise ValueError(f"{where}: the output has one column (shape {out.shape}), so there "
                             f"is no class to pick; for regression pass metrics=[] to the "
                             f"Trainer")
        return np.argmax(out, axis=1)
    if out.dtype.kind not in "iub":
        raise TypeError(f"{where}: expected logits of shape (N, C) or integer labels of shape "
                        f"(N,), got a 1-d {out.dtype} array")
    return out


def _targets(target, n: int, where: str) -> np.ndarray:
    t = _np(target)
    if t.ndim == 2 and t.dtype.kind == "f":  # one-hot / probability targets
        t = np.argmax(t, axis=1)
    if t.shape[0] != n:
        raise ValueError(f"{where}: output has {n} samples but target has {t.shape[0]} "
                         f"(target shape {t.shape})")
    return t


def accuracy(output, target) -> float:
    """Fraction of samples whose predicted class equals the target.

    ``acc = (1/N) sum_i [argmax_c output[i, c] == target[i]]``

    Args:
        output: logits/probabilities ``(N, C, ...)`` or predicted labels ``(N, ...)``.
        target: integer labels ``(N, ...)`` (or one-hot ``(N, C)``).

    Example:
        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
        0.5
    """
    pred = _labels(output, "accuracy")
    t = _targets(target, pred.shape[0], "accuracy")
    if pred.shape != t.shape:
        raise ValueError(f"accuracy: predictions have shape {pred.shape} but target has shape "
                         f"{t.shape}")
    return float(np.mean(pred == t)) if pred.size else 0.0


def binary_accuracy(output, target, threshold: float = 0.5) -> float:
    """Fraction of binary decisions ``output > threshold`` that equal the 0/1 target.

    ``acc = (1/M) sum_j [(output_j > threshold) == (target_j > 0.5)]`` over all M elements
    (one per sample for outputs ``(N,)``/``(N, 1)``, several per sample for multi-label
    outputs), as Keras's ``binary_accuracy``. Use ``threshold=0`` for logits (the output of a
    model trained with ``BCEWithLogitsLoss``), 0.5 for probabilities (``BCELoss``).

    Args:
        output: probabilities or logits, any shape with N samples first.
        target: 0/1 labels with the same number of elements.
        threshold: decision threshold on ``output``.

    Example:
        >>> binary_accuracy(np.array([0.9, 0.2, 0.6]), np.array([1.0, 0.0, 0.0]))
        0.6666666666666666
    """
    correct, total = _binary_counts(output, target, threshold, "binary_accuracy")
    return correct / total if total else 0.0


def _binary_counts(output, target, threshold: float, where: str) -> tuple[int, int]:
    out, t = _np(output), _np(target)
    if out.size != t.size:
        raise ValueError(f"{where}: output has {out.size} elements (shape {out.shape}) but "
                         f"target has {t.size} (shape {t.shape}); expected one 0/1 target per "
                         f"output")
    pred = out.reshape(-1) > threshold
    return int(np.sum(pred == (t.reshape(-1) > 0.5))), int(out.size)


def top_k_accuracy(output, target, k: int = 5) -> float:
    """Fraction of samples whose target is among the ``k`` highest-scoring classes.

    Args:
        output: scores ``(N, C)``.
        target: integer labels ``(N,)``.
        k: how many top classes count (``k=1`` is :func:`accuracy`).

    Example:
        >>> top_k_accuracy(np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]]), np.array([2, 2]), k=2)
        0.5
    """
    out = _np(output)
    if out.ndim != 2:
        raise ValueError(f"top_k_accuracy: expected scores of shape (N, C), got {out.shape}")
    if not 1 <= k:
        raise ValueError(f"top_k_accuracy: k must be >= 1, got {k}")
    t = _targets(target, out.shape[0], "top_k_accuracy")
    k = min(k, out.shape[1])
    # rank by "how many classes score strictly higher than the target": ties favour the target
    tscore = np.take_along_axis(out, t.reshape(-1, 1).astype(np.int64), axis=1)
    rank = np.sum(out > tscore, axis=1)
    return float(np.mean(rank < k)) if out.shape[0] else 0.0


def confusion_matrix(target, pred, num_classes: int | None = None) -> np.ndarray:
    """Counts ``cm[i, j]`` of samples with true class i predicted as class j.

    Args:
        target: integer labels ``(N,)``.
        pred: predicted labels ``(N,)`` or logits ``(N, C)``.
        num_classes: matrix size (default: ``C`` of the logits, else 1 + the largest label).

    Returns:
        int64 array ``(num_classes, num_classes)``; rows are true classes (as scikit-learn).

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 0, 1])
        array([[1, 0],
               [1, 1]])
    """
    p_in = _np(pred)
    p = _labels(p_in, "confusion_matrix").reshape(-1).astype(np.int64)
    t = _targets(target, _np(pred).shape[0], "confusion_matrix").reshape(-1).astype(np.int64)
    if num_classes is None:
        num_classes = p_in.shape[1] if p_in.ndim == 2 else int(max(t.max(initial=-1),
                                                                     p.max(initial=-1)) + 1)
    for name, a in (("target", t), ("pred", p)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} labels must lie in [0, {num_classes}), "
                             f"got range [{a.min()}, {a.max()}]")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def precision_recall_f1(target=None, pred=None, num_classes: int | None = None, *,
                        cm: np.ndarray | None = None) -> dict:
    """Per-class precision, recall and F1, their macro averages and the supports.

    ``precision_c = TP_c / (TP_c + FP_c)``, ``recall_c = TP_c / (TP_c + FN_c)``,
    ``F1_c = 2 P R / (P + R)``; a 0/0 is reported as 0 (scikit-learn's ``zero_division=0``).
    Macro averages are unweighted means over classes.

    Args:
        target, pred: labels as for :func:`confusion_matrix` (or give ``cm=``).
        num_classes: number of classes.
        cm: a confusion matrix to use instead of ``target``/``pred``.

    Returns:
        dict with float64 arrays ``precision``, ``recall``, ``f1``, int ``support`` and floats
        ``macro_precision``, ``macro_recall``, ``macro_f1``, ``accuracy``.
    """
    if cm is None:
        if target is None or pred is None:
            raise ValueError("precision_recall_f1: give target and pred, or cm=")
        cm = confusion_matrix(target, pred, num_classes)
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    total = cm.sum()
    return {
        "precision": precision, "recall": recall, "f1": f1,
        "support": support.astype(np.int64),
        "macro_precision": float(precision.mean()) if tp.size else 0.0,
        "macro_recall": float(recall.mean()) if tp.size else 0.0,
        "macro_f1": float(f1.mean()) if tp.size else 0.0,
        "accuracy": float(tp.sum() / total) if total else 0.0,
    }


def classification_report(target, pred, class_names: Sequence[str] | None = None,
                          num_classes: int | None = None, digits: int = 3) -> str:
    """A readable table of per-class precision, recall, F1 and support (scikit-learn style).

    Example:
        >>> print(classification_report([0, 1, 1], [0, 0, 1], class_names=["cat", "dog"]))
        ... # doctest: +NORMALIZE_WHITESPACE
                   precision    recall  f1-score   support
        <BLANKLINE>
                cat      0.500     1.000     0.667         1
                dog      1.000     0.500     0.667         2
        <BLANKLINE>
           accuracy                          0.667         3
          macro avg      0.750     0.750     0.667         3
    """
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    cm = confusion_matrix(target, pred, num_classes)
    r = precision_recall_f1(cm=cm)
    k = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    if len(names) != k:
        raise ValueError(f"classification_report: {k} classes but {len(names)} class names")
    width = max(len("macro avg"), *(len(nm) for nm in names))
    head = " " * width + "  " + "".join(f"{h:>10}" for h in
                                         ("precision", "recall", "f1-score", "support"))
    lines = [head, ""]
    for i, nm in enumerate(names):
        lines.append(f"{nm:>{width}}  {r['precision'][i]:>10.{digits}f}"
                     f"{r['recall'][i]:>10.{digits}f}{r['f1'][i]:>10.{digits}f}"
                     f"{r['support'][i]:>10d}")
    total = int(cm.sum())
    lines.append("")
    lines.append(f"{'accuracy':>{width}}  {'':>10}{'':>10}{r['accuracy']:>10.{digits}f}"
                 f"{total:>10d}")
    lines.append(f"{'macro avg':>{width}}  {r['macro_precision']:>10.{digits}f}"
                 f"{r['macro_recall']:>10.{digits}f}{r['macro_f1']:>10.{digits}f}{total:>10d}")
    return "\n".join(lines)


# ------------------------------------------------------------------ semantic segmentation
def _segmentation_cm(pred, target, num_classes: int, ignore_index: int | None,
                     where: str) -> np.ndarray:
    """The (num_classes, num_classes) confusion matrix of one batch, ignored pixels dropped."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) \
            or num_classes < 1:
        raise ValueError(f"{where}: num_classes must be an int >= 1, got {num_classes!r}")
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, int | np.integer)):
        raise TypeError(f"{where}: ignore_index must be an int or None, got "
                        f"{type(ignore_index).__name__}")
    p, t = _np(pred), _np(target)
    if t.dtype.kind not in "iub":
        raise TypeError(f"{where}: target must hold integer class labels, got dtype {t.dtype}")
    if t.ndim and p.ndim == t.ndim + 1:  # scores (N, C, H, W) for a target (N, H, W)
        if p.shape[1] != num_classes or p.shape[:1] + p.shape[2:] != t.shape:
            raise ValueError(f"{where}: scores of shape {p.shape} do not fit a target of shape "
                             f"{t.shape} with {num_classes} classes; expected scores "
                             f"{t.shape[:1] + (num_classes,) + t.shape[1:]}")
        p = np.argmax(p, axis=1)
    elif p.shape != t.shape:
        raise ValueError(f"{where}: prediction has shape {p.shape} but target has shape "
                         f"{t.shape}; expected labels of the target's shape or scores with the "
                         f"classes on axis 1")
    elif p.dtype.kind not in "iub":
        raise TypeError(f"{where}: a prediction of the target's shape must hold integer labels, "
                        f"got dtype {p.dtype}; pass scores with the classes on axis 1 instead")
    t = t.reshape(-1).astype(np.int64)
    p = p.reshape(-1).astype(np.int64)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    for name, a in (("target", t), ("prediction", p)):
        bad = (a < 0) | (a >= num_classes)
        if bad.any():
            extra = f" (or ignore_index={ignore_index})" if name == "target" and \
                ignore_index is not None else ""
            raise ValueError(f"{where}: {name} holds class {int(a[bad][0])}; expected classes "
                             f"in [0, {num_classes}){extra}")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _iou_from_cm(cm: np.ndarray) -> dict:
    c = cm.astype(np.float64)
    tp = np.diag(c)
    union = c.sum(axis=0) + c.sum(axis=1) - tp
    present = union > 0  # in the prediction or in the target
    iou = np.full(tp.shape, np.nan)
    np.divide(tp, union, out=iou, where=present)
    total = c.sum()
    return {"miou": float(iou[present].mean()) if present.any() else 0.0,
            "iou_per_class": iou,
            "pixel_accuracy": float(tp.sum() / total) if total else 0.0,
            "confusion_matrix": cm.astype(np.int64)}


def mean_iou(pred, target, num_classes: int, ignore_index: int | None = None) -> dict:
    """Mean intersection over union of a semantic segmentation, from one confusion matrix.

    With ``cm[i, j]`` the number of pixels of true class i predicted as j, over the whole data
    set (not averaged per image)::

        IoU_c = cm[c, c] / (sum_j cm[c, j] + sum_i cm[i, c] - cm[c, c])
        mIoU  = mean of IoU_c over the classes in the prediction or the target
        pixel_accuracy = sum_c cm[c, c] / sum cm

    A class absent from both prediction and target has no IoU (NaN) and is left out of the
    mean; pixels whose target is ``ignore_index`` (void) are dropped before counting. With no
    pixel counted, ``miou`` and ``pixel_accuracy`` are 0.

    Args:
        pred: scores ``(N, C, H, W)`` (argmax over axis 1) or labels ``(N, H, W)``; any
            number of spatial axes.
        target: integer labels ``(N, H, W)``.
        num_classes: C.
        ignore_index: the target label of pixels to leave out (e.g. 255), or None.

    Returns:
        dict with ``miou`` (float), ``iou_per_class`` (float64 ``(C,)``, NaN for absent
        classes), ``pixel_accuracy`` (float) and ``confusion_matrix`` (int64 ``(C, C)``, rows
        true classes).

    Raises:
        ValueError: shapes that do not fit, or a class outside ``[0, num_classes)`` (other
            than ``ignore_index`` in the target).

    Example:
        >>> r = mean_iou(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 255]]), 3,
        ...              ignore_index=255)
        >>> r["iou_per_class"], r["miou"], r["pixel_accuracy"]
        (array([0.5, 0.5, nan]), 0.5, 0.6666666666666666)
    """
    return _iou_from_cm(_segmentation_cm(pred, target, num_classes, ignore_index, "mean_iou"))


# ------------------------------------------------------------------ object detection
# COCO's defaults (cocoeval.Params.setDetParams), built the same way so the floats are equal.
COCO_AREA_RANGES = {"all": (0.0, 1e5 ** 2), "small": (0.0, 32.0 ** 2),
                    "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, 1e5 ** 2)}


def _coco_iou_thresholds() -> np.ndarray:
    return np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)


def _coco_rec_thresholds() -> np.ndarray:
    return np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)


def _det_image(d, i: int, kind: str, with_scores: bool, where: str):
    keys = ("boxes", "scores", "labels") if with_scores else ("boxes", "labels")
    if not isinstance(d, Mapping):
        raise TypeError(f"{where}: {kind}[{i}] must be a dict with keys {keys}, got "
                        f"{type(d).__name__}")
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(f"{where}: {kind}[{i}] has no {missing[0]!r}; expected keys {keys}, "
                         f"got {tuple(d)}")
    boxes = np.asarray(_np(d["boxes"]), dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where}: {kind}[{i}]['boxes'] must have shape (N, 4) (x1, y1, x2, "
                         f"y2), got {boxes.shape}")
    n = boxes.shape[0]
    if not np.isfinite(boxes).all():
        raise ValueError(f"{where}: {kind}[{i}]['boxes'] holds a non-finite value")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        j = int(np.argmax(bad))
        raise ValueError(f"{where}: {kind}[{i}]['boxes'][{j}] = {boxes[j].tolist()} has "
                         f"x2 < x1 or y2 < y1; expected xyxy boxes (x1, y1, x2, y2)")
    labels = _np(d["labels"]).reshape(-1)
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind != "f" or not np.all(labels == np.round(labels)):
            raise TypeError(f"{where}: {kind}[{i}]['labels'] must hold integer class labels, "
                            f"got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size != n:
        raise ValueError(f"{where}: {kind}[{i}] has {n} boxes but {labels.size} labels")
    if not with_scores:
        return boxes, labels, None
    scores = np.asarray(_np(d["scores"]), dtype=np.float64).reshape(-1)
    if scores.size != n:
        raise ValueError(f"{where}: {kind}[{i}] has {n} boxes but {scores.size} scores")
    if not np.isfinite(scores).all():
        raise ValueError(f"{where}: {kind}[{i}]['scores'] holds a non-finite value")
    return boxes, labels, scores


def _pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # COCO's bbox IoU (maskApi bbIou): widths are x2 - x1, no +1; no overlap -> 0, so
    # zero-area boxes get 0, never NaN
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:])
                 - np.maximum(a[:, None, :2], b[None, :, :2]), 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def _match(ious: np.ndarray, gt_ignore: np.ndarray, dt_out: np.ndarray, thr: np.ndarray):
    """COCOeval.evaluateImg for one image and class, for all area ranges and thresholds.

    ``ious`` (D, G) with detections by descending score, ``gt_ignore`` (A, G), ``dt_out``
    (A, D) detections outside the area range, ``thr`` (T,). Returns ``matched`` and
    ``ignored`` (A, T, D).
    """
    a_n, g_n = gt_ignore.shape
    d_n = ious.shape[0]
    taken = np.zeros((a_n, thr.size, g_n), dtype=bool)
    matched = np.zeros((a_n, thr.size, d_n), dtype=bool)
    ignored = np.zeros((a_n, thr.size, d_n), dtype=bool)
    if g_n:
        ok = ious[:, None, :] >= np.minimum(thr, 1 - 1e-10)[None, :, None]  # (D, T, G)
        keep = ~gt_ignore[:, None, :]
        for d in range(d_n):  # greedy, by descending score: inherently sequential
            cand = ok[d][None] & ~taken
            # a ground truth inside the area range wins over an ignored one, whatever the IoU
            preferred = cand & keep
            cand = np.where(preferred.any(axis=-1, keepdims=True), preferred, cand)
            found = cand.any(axis=-1)  # (A, T)
            if not found.any():
                continue
            # the highest IoU; among equal IoUs the last ground truth, as COCO's loop
            val = np.where(cand, ious[d], -1.0)
            g = g_n - 1 - np.argmax(val[..., ::-1], axis=-1)  # (A, T)
            ai, ti = np.nonzero(found)
            taken[ai, ti, g[ai, ti]] = True
            matched[:, :, d] = found
            ignored[:, :, d] = found & np.take_along_axis(gt_ignore, g, axis=1)
    ignored |= ~matched & dt_out[:, None, :]
    return matched, ignored


def _area_ranges(area_ranges, where: str) -> tuple[list[str], np.ndarray]:
    if area_ranges is not None and not isinstance(area_ranges, Mapping):
        raise TypeError(f"{where}: area_ranges must be a dict {{name: (min_area, max_area)}}, "
                        f"got {type(area_ranges).__name__}")
    ranges = dict(COCO_AREA_RANGES if area_ranges is None else area_ranges)
    ranges.setdefault("all", COCO_AREA_RANGES["all"])
    names = ["all"] + [n for n in ranges if n != "all"]
    try:
        arr = np.array([[float(v) for v in ranges[n]] for n in names], dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (len(names), 2) or np.isnan(arr).any() \
            or (arr[:, 1] < arr[:, 0]).any():
        raise ValueError(f"{where}: area_ranges must map names to (min_area, max_area) with "
                         f"min <= max, got {area_ranges!r}")
    return names, arr


def _thresholds(values, default: np.ndarray, name: str, where: str) -> np.ndarray:
    if values is None:
        return default
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.size == 0 or np.isnan(arr).any() or (arr < 0).any() or (arr > 1).any():
        raise ValueError(f"{where}: {name} must be a non-empty list of values in [0, 1], got "
                         f"{values!r}")
    return arr


def _coco_mean(a: np.ndarray) -> float:
    # COCOeval.summarize: the mean over the defined entries, -1 when there are none
    v = a[a > -1]
    return float(v.mean()) if v.size else -1.0


def mean_average_precision(preds: Sequence, targets: Sequence, iou_thresholds=None,
                           rec_thresholds=None, max_detections: int = 100,
                           area_ranges: dict | None = None) -> dict:
    """COCO's mean average precision of object detections (``COCOeval``'s bbox AP, exactly).

    For each class c and IoU threshold t, every image's detections of class c, at most
    ``max_detections`` of them with the highest scores (per image and class, as COCO's
    ``maxDets``), are matched greedily by descending score (ties keep their order): a
    detection takes the still unmatched ground truth of its class with the highest IoU, if
    that IoU is >= t; otherwise it is a false positive. Over the whole data set, sorted by
    score, ``recall = TP / #GT`` and ``precision = TP / (TP + FP)``; precision is made
    monotone (``p(r) = max_{r' >= r} p(r')``) and read at the recall thresholds (101 points
    0, 0.01, ..., 1; the first detection reaching each recall, 0 beyond the last recall)::

        AP_c(t) = mean_r p_c,t(r)        mAP = mean over t and over classes with ground truth

    Classes without ground truth have no AP (-1, as COCO) and stay out of the mean. For an
    area range, ground truths outside it are ignored (a detection matched to one is neither
    TP nor FP; a detection matches an ignored one only when no other qualifies) and so are
    unmatched detections outside it. IoU uses ``w = x2 - x1`` (no +1, as COCO's bbox IoU);
    zero-area boxes have IoU 0. No crowd annotations.

    Args:
        preds: one dict per image: ``boxes`` ``(D, 4)`` xyxy, ``scores`` ``(D,)``,
            ``labels`` ``(D,)`` int (NumPy arrays, Tensors or lists).
        targets: one dict per image: ``boxes`` ``(G, 4)`` xyxy, ``labels`` ``(G,)``.
        iou_thresholds: default COCO's 0.50:0.05:0.95.
        rec_thresholds: default COCO's 101 points 0:0.01:1.
        max_detections: detections kept per image and class (COCO's 100).
        area_ranges: ``{name: (min_area, max_area)}`` in pixels², bounds included; default
            COCO's ``all`` (0, 1e10), ``small`` (0, 32²), ``medium`` (32², 96²), ``large``
            (96², 1e10). The main numbers use ``all`` ((0, 1e10) when not given); scale the
            others to the images (COCO's sizes mean little on 64x64 images).

    Returns:
        dict with floats ``map`` (over ``iou_thresholds``), ``map_50``, ``map_75``,
        ``map_<name>`` for every other area range and ``mar`` (recall at the last detection,
        averaged over thresholds and classes), each -1 where no class has ground truth;
        ``classes`` (int64 ``(K,)``, every label in preds or targets, sorted),
        ``map_per_class`` (``(K,)``, -1 without ground truth), ``pr_curve``
        (``{class: {"recall": (R,), "precision": (R,)}}`` at IoU 0.5, the interpolated
        precision at the recall thresholds, for classes with ground truth), ``precision``
        (``(T, R, K, A)``, COCO's ``eval['precision']`` for this ``max_detections``),
        ``recall`` (``(T, K, A)``), ``iou_thresholds``, ``rec_thresholds``, ``area_ranges``
        (names in the order of axis A, ``all`` first).

    Example:
        >>> gt = [{"boxes": np.array([[0, 0, 10, 10]]), "labels": np.array([1])}]
        >>> det = [{"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]]),
        ...         "scores": np.array([0.6, 0.9]), "labels": np.array([1, 1])}]
        >>> r = mean_average_precision(det, gt)
        >>> round(r["map"], 4), r["map_per_class"]     # recall 1 reached at precision 1/2
        (0.5, array([0.5]))
    """
    where = "mean_average_precision"
    if not isinstance(preds, Sequence) or not isinstance(targets, Sequence) \
            or isinstance(preds, str | Mapping) or isinstance(targets, str | Mapping):
        raise TypeError(f"{where}: preds and targets must be lists with one dict per image, "
                        f"got {type(preds).__name__} and {type(targets).__name__}")
    if len(preds) != len(targets):
        raise ValueError(f"{where}: {len(preds)} images in preds but {len(targets)} in targets")
    if isinstance(max_detections, bool) or not isinstance(max_detections, int | np.integer) \
            or max_detections < 1:
        raise ValueError(f"{where}: max_detections must be an int >= 1, got "
                         f"{max_detections!r}")
    user_thr = _thresholds(iou_thresholds, _coco_iou_thresholds(), "iou_thresholds", where)
    rec_thr = _thresholds(rec_thresholds, _coco_rec_thresholds(), "rec_thresholds", where)
    names, ranges = _area_ranges(area_ranges, where)
    # 0.5 and 0.75 are evaluated even when not asked for, for map_50, map_75 and the curves
    extra = [v for v in (0.5, 0.75) if not np.isclose(user_thr, v, rtol=0, atol=1e-12).any()]
    thr = np.concatenate([user_thr, extra])
    t50 = int(np.flatnonzero(np.isclose(thr, 0.5, rtol=0, atol=1e-12))[0])
    t75 = int(np.flatnonzero(np.isclose(thr, 0.75, rtol=0, atol=1e-12))[0])

    images = [(_det_image(p, i, "preds", True, where), _det_image(t, i, "targets", False, where))
              for i, (p, t) in enumerate(zip(preds, targets))]
    labels = [lab for (_, lab, _), (_, tlab, _) in images for lab in (lab, tlab)]
    classes = np.unique(np.concatenate(labels)) if labels else np.zeros(0, np.int64)
    k_of = {int(c): k for k, c in enumerate(classes)}
    a_n, t_n, r_n, k_n = len(names), thr.size, rec_thr.size, classes.size
    # per class: lists of (scores, matched, ignored) per image and the ground-truth counts
    per_class = [([], [], []) for _ in range(k_n)]
    n_gt = np.zeros((k_n, a_n), dtype=np.int64)
    lo, hi = ranges[:, 0][:, None], ranges[:, 1][:, None]
    for (dbox, dlab, dscore), (gbox, glab, _) in images:
        for c in np.union1d(dlab, glab):
            k = k_of[int(c)]
            g = gbox[glab == c]
            sel = np.flatnonzero(dlab == c)
            sel = sel[np.argsort(-dscore[sel], kind="mergesort")][:max_detections]
            d = dbox[sel]
            g_area = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
            d_area = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
            gt_ignore = (g_area[None] < lo) | (g_area[None] > hi)  # (A, G)
            matched, ignored = _match(_pairwise_iou(d, g), gt_ignore,
                                      (d_area[None] < lo) | (d_area[None] > hi), thr)
            n_gt[k] += (~gt_ignore).sum(axis=1)
            per_class[k][0].append(dscore[sel])
            per_class[k][1].append(matched)
            per_class[k][2].append(ignored)

    precision = -np.ones((t_n, r_n, k_n, a_n))
    recall = -np.ones((t_n, k_n, a_n))
    for k, (scores, matched, ignored) in enumerate(per_class):
        # COCOeval.accumulate: all images' detections by descending score, stable
        order = np.argsort(-np.concatenate(scores), kind="mergesort")
        matched = np.concatenate(matched, axis=-1)[..., order]
        ignored = np.concatenate(ignored, axis=-1)[..., order]
        tp = np.cumsum(matched & ~ignored, axis=-1, dtype=np.float64)
        fp = np.cumsum(~matched & ~ignored, axis=-1, dtype=np.float64)
        nd = order.size
        for a in range(a_n):
            if n_gt[k, a] == 0:
                continue
            rc = tp[a] / n_gt[k, a]
            pr = tp[a] / (fp[a] + tp[a] + np.spacing(1))
            recall[:, k, a] = rc[:, -1] if nd else 0.0
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            for t in range(t_n):
                idx = np.searchsorted(rc[t], rec_thr, side="left")
                inside = idx < nd
                precision[t, :, k, a] = np.where(inside, pr[t, np.minimum(idx, nd - 1)]
                                                 if nd else 0.0, 0.0)

    user = slice(0, user_thr.size)
    out = {
        "map": _coco_mean(precision[user, :, :, 0]),
        "map_50": _coco_mean(precision[t50, :, :, 0]),
        "map_75": _coco_mean(precision[t75, :, :, 0]),
    }
    for a, name in enumerate(names[1:], start=1):
        out[f"map_{name}"] = _coco_mean(precision[user, :, :, a])
    out["mar"] = _coco_mean(recall[user, :, 0])
    out["classes"] = classes
    out["map_per_class"] = np.array([_coco_mean(precision[user, :, k, 0]) for k in range(k_n)])
    out["pr_curve"] = {int(c): {"recall": rec_thr.copy(), "precision": precision[t50, :, k, 0]}
                       for k, c in enumerate(classes) if n_gt[k, 0] > 0}
    out["precision"] = precision[user]
    out["recall"] = recall[user]
    out["iou_thresholds"] = user_thr
    out["rec_thresholds"] = rec_thr
    out["area_ranges"] = names
    return out

# ------------------------------------------------------------------ streaming metrics
class Metric:
    """A metric accumulated over batches: ``reset()``, ``update(output, target)``,
    ``compute() -> float``. ``name`` is its key in the History."""

    name = "metric"

    def reset(self) -> None:
        raise NotImplementedError  # pragma: no cover

    def update(self, output, target) -> None:
        raise NotImplementedError  # pragma: no cover

    def compute(self) -> float:
        raise NotImplementedError  # pragma: no cover


class Accuracy(Metric):
    """Running :func:`accuracy` over all samples seen since ``reset()``."""

    name = "accuracy"

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, output, target) -> None:
        pred = _labels(output, "Accuracy")
        t = _targets(target, pred.shape[0], "Accuracy")
        if pred.shape != t.shape:
            raise ValueError(f"Accuracy: predictions have shape {pred.shape} but target has "
                             f"shape {t.shape}")
        self.correct += int(np.sum(pred == t))
        self.total += int(t.size)

    def compute(self) -> float:
        return self.correct / self.total if self.total else 0.0


class BinaryAccuracy(Metric):
    """Running :func:`binary_accuracy` over all elements seen since ``reset()``.

    Args:
        threshold: decision threshold on the output (0.5 for probabilities).
        from_logits: the outputs are logits: threshold 0 (``sigmoid(x) > 0.5`` iff ``x > 0``).
        name: History key; 'accuracy' when the Trainer picks it as the default metric of a
            binary loss, 'binary_accuracy' when asked for by that name.
    """

    def __init__(self, threshold: float = 0.5, from_logits: bool = False,
                 name: str = "binary_accuracy"):
        self.threshold = 0.0 if from_logits else float(threshold)
        self.from_logits = from_logits
        self.name = name
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, output, target) -> None:
        c, n = _binary_counts(output, target, self.threshold, "BinaryAccuracy")
        self.correct += c
        self.total += n

    def compute(self) -> float:
        return self.correct / self.total if self.total else 0.0


class TopKAccuracy(Metric):
    """Running :func:`top_k_accuracy`; named ``top{k}_accuracy``."""

    def __init__(self, k: int = 5):
        self.k = k
        self.name = f"top{k}_accuracy"
        self.reset()

    def reset(self) -> None:
        self.correct = 0.0
        self.total = 0

    def update(self, output, target) -> None:
        n = _np(output).shape[0]
        self.correct += top_k_accuracy(output, target, self.k) * n
        self.total += n

    def compute(self) -> float:
        return self.correct / self.total if self.total else 0.0


class Mean(Metric):
    """The sample-weighted mean of ``fn(output, target)`` over batches."""

    def __init__(self, fn: Callable, name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "metric")
        self.reset()

    def reset(self) -> None:
        self.sum = 0.0
        self.total = 0

    def update(self, output, target) -> None:
        n = _np(output).shape[0] if _np(output).ndim else 1
        self.sum += float(self.fn(output, target)) * n
        self.total += n

    def compute(self) -> float:
        return self.sum / self.total if self.total else 0.0


class MeanIoU(Metric):
    """Running :func:`mean_iou`: one confusion matrix summed over all batches since ``reset()``.

    ``update(output, target)`` takes scores ``(N, C, H, W)`` or labels ``(N, H, W)`` and
    integer targets ``(N, H, W)``; ``compute()`` gives the mIoU, ``result()`` the whole
    :func:`mean_iou` dict.

    Args:
        num_classes: C; None takes it from the scores' axis 1 at the first update.
        ignore_index: target label of void pixels, left out.
        name: History key.

    Example:
        >>> m = MeanIoU(num_classes=2)
        >>> m.update(np.array([[[0, 1]]]), np.array([[[0, 0]]]))
        >>> m.update(np.array([[[1, 1]]]), np.array([[[1, 1]]]))
        >>> m.compute()       # class 0: 1 / 2, class 1: 2 / 3 (not the mean of per-batch mIoUs)
        0.5833333333333333
    """

    def __init__(self, num_classes: int | None = None, ignore_index: int | None = None,
                 name: str = "miou"):
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(
                num_classes, int | np.integer) or num_classes < 1):
            raise ValueError(f"{type(self).__name__}: num_classes must be an int >= 1 or None, "
                             f"got {num_classes!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.name = name
        self.reset()

    def reset(self) -> None:
        self.cm = None

    def update(self, output, target) -> None:
        where = type(self).__name__
        k = self.num_classes
        if k is None:
            out, t = _np(output), _np(target)
            if out.ndim != t.ndim + 1:
                raise ValueError(f"{where}: without num_classes the output must be scores "
                                 f"(N, C, H, W) for a target (N, H, W), got shapes {out.shape} "
                                 f"and {t.shape}")
            k = self.num_classes = int(out.shape[1])
        cm = _segmentation_cm(output, target, k, self.ignore_index, where)
        self.cm = cm if self.cm is None else self.cm + cm

    def result(self) -> dict:
        """The :func:`mean_iou` dict of everything seen since ``reset()``."""
        k = self.num_classes or 0
        return _iou_from_cm(self.cm if self.cm is not None else np.zeros((k, k), np.int64))

    def compute(self) -> float:
        return self.result()["miou"]


class PixelAccuracy(MeanIoU):
    """Running pixel accuracy of a segmentation (``ignore_index`` pixels left out)."""

    def __init__(self, num_classes: int | None = None, ignore_index: int | None = None,
                 name: str = "pixel_accuracy"):
        super().__init__(num_classes, ignore_index, name)

    def compute(self) -> float:
        return self.result()["pixel_accuracy"]

def get_metric(spec) -> Metric:
    """A Metric from a name ('accuracy', 'top5_accuracy', 'miou', ...), a Metric, or a function.

    'miou' and 'pixel_accuracy' take the number of classes from the scores and count every
    pixel; for void pixels pass ``MeanIoU(ignore_index=...)`` instead of the name."""
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str):
        key = spec.lower()
        if key in ("accuracy", "acc"):
            return Accuracy()
        if key == "binary_accuracy":
            return BinaryAccuracy()
        if key.startswith("top") and key.endswith("_accuracy") and key[3:-9].isdigit():
            return TopKAccuracy(int(key[3:-9]))
        if key in ("miou", "mean_iou"):
            return MeanIoU()
        if key == "pixel_accuracy":
            return PixelAccuracy()
        raise ValueError(f"unknown metric {spec!r}; expected 'accuracy', 'binary_accuracy', "
                         f"'top<k>_accuracy', 'miou', 'pixel_accuracy', a Metric or a function "
                         f"of (output, target)")
    if callable(spec):
        return Mean(spec)
    raise TypeError(f"metric must be a name, a Metric or a function, got {type(spec).__name__}")


# Which kind of task a loss trains, by class name (nn.CrossEntropyLoss, or the functional
# F.cross_entropy, or the Function behind it): no import of filterbank.nn needed here.
_CLASSIFICATION_LOSSES = {"CrossEntropyLoss", "NLLLoss", "CrossEntropy", "cross_entropy",
                          "nll_loss"}
_BINARY_LOSSES = {"BCELoss": False, "binary_cross_entropy": False,
                  "BCEWithLogitsLoss": True, "binary_cross_entropy_with_logits": True}
_REGRESSION_LOSSES = {"MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "mse_loss", "l1_loss",
                      "smooth_l1_loss", "huber_loss"}


def loss_kind(loss_fn) -> str | None:
    """'classification', 'binary', 'binary_logits', 'regression' or None (unknown loss)."""
    names = [c.__name__ for c in type(loss_fn).__mro__]
    if callable(loss_fn) and hasattr(loss_fn, "__name__"):
        names.insert(0, loss_fn.__name__)  # a function such as F.cross_entropy
    for n in names:
        if n in _CLASSIFICATION_LOSSES:
            return "classification"
        if n in _BINARY_LOSSES:
            return "binary_logits" if _BINARY_LOSSES[n] else "binary"
        if n in _REGRESSION_LOSSES:
            return "regression"
    return None


def default_metrics(loss_fn) -> list[Metric]:
    """The metrics that fit a loss, used when the Trainer is given ``metrics=None``.

    Accuracy for ``CrossEntropyLoss``/``NLLLoss`` (argmax over classes); binary accuracy,
    named 'accuracy', for ``BCELoss`` (threshold 0.5) and ``BCEWithLogitsLoss`` (threshold 0
    on logits); nothing for regression losses (``MSELoss``, ``L1Loss``, ``SmoothL1Loss``,
    ``HuberLoss``) and for losses it does not know (pass ``metrics=[...]`` yourself), so the
    History holds only the loss.

    Example:
        >>> import filterbank as fb
        >>> [m.name for m in default_metrics(fb.nn.CrossEntropyLoss())]
        ['accuracy']
        >>> default_metrics(fb.nn.MSELoss())
        []
    """
    kind = loss_kind(loss_fn)
    if kind == "classification":
        return [Accuracy()]
    if kind in ("binary", "binary_logits"):
        return [BinaryAccuracy(from_logits=kind == "binary_logits", name="accuracy")]
    return []


# ------------------------------------------------------------------------ multi-label
def average_precision(scores, targets, ignore_index: float | None = None):
    """Average precision of a ranking by score: the area under the precision-recall steps.

    Sort the samples by score, descending; at each distinct score s_k (ties form one step)
    take precision P_k and recall R_k of "score >= s_k is positive"; then::

        AP = sum_k (R_k - R_{k-1}) P_k        (R_0 = 0)

    the definition of scikit-learn's ``average_precision_score`` (no interpolation). For
    multi-label outputs ``(N, C)`` each column is scored on its own: the per-class AP, whose
    mean over classes is the multi-label mAP.

    Args:
        scores: ``(N,)`` or ``(N, C)`` scores (logits or probabilities: only the order counts).
        targets: the same shape, 1 for positive and 0 for negative.
        ignore_index: target value of unknown labels, left out (NaN targets too), or None.

    Returns:
        A float for ``(N,)`` inputs, a float64 ``(C,)`` array for ``(N, C)``; NaN for a
        column without a known positive (AP is undefined there).

    Raises:
        ValueError: shapes that differ or are not 1-d / 2-d, or a known target other than
            0 and 1.

    Example:
        >>> average_precision(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.8333333333333333
    """
    s, t = _np(scores).astype(np.float64), _np(targets).astype(np.float64)
    if s.shape != t.shape or s.ndim not in (1, 2):
        raise ValueError(f"average_precision: expected scores and targets of one shape, (N,) "
                         f"or (N, C), got {s.shape} and {t.shape}")
    known = ~np.isnan(t)
    if ignore_index is not None:
        known &= t != ignore_index
    bad = known & (t != 0) & (t != 1)
    if bad.any():
        extra = "" if ignore_index is None else f" (or ignore_index={ignore_index})"
        raise ValueError(f"average_precision: targets must be 0 or 1{extra}, got "
                         f"{t[bad].ravel()[0]:g}")
    if s.ndim == 1:
        return _average_precision_1d(s[known], t[known])
    return np.array([_average_precision_1d(s[known[:, c], c], t[known[:, c], c])
                     for c in range(s.shape[1])], dtype=np.float64)


def _average_precision_1d(s: np.ndarray, t: np.ndarray) -> float:
    positives = t.sum()
    if positives == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    tp = np.cumsum(t)
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # the end of each tie group
    precision = tp[last] / (last + 1)
    recall = tp[last] / positives
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))
