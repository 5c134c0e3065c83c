"""Bounding boxes: format conversion, area, pairwise IoU and non-maximum suppression.

The names, arguments and results follow ``torchvision.ops``. Boxes are rows of four
coordinates; ``'xyxy'`` (corners ``x1, y1, x2, y2`` with ``x1 < x2`` and ``y1 < y2``) is the
format that ``box_area``, ``box_iou`` and the NMS functions expect.

Degenerate boxes. A box with ``x2 <= x1`` or ``y2 <= y1`` (zero or negative width or height)
covers no area. Here its area is 0 (torchvision returns the signed product
``(x2 - x1) * (y2 - y1)``, which is positive when both sides are inverted), and its IoU with
any box, itself and other degenerate boxes included, is 0, never NaN: the intersection of a
degenerate box with anything is empty, and the one 0/0 case (two boxes without area) is
defined as 0. So NMS never suppresses a degenerate box and never lets one suppress another
box (for ``iou_threshold >= 0``), as torchvision's kernels do (their 0/0 is a NaN, and NaN
compares false). NaN coordinates propagate through ``box_iou``; the NMS functions refuse them.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from filterbank._xp import like
from filterbank.autograd.function import Function
from filterbank.backend import DEFAULT_DTYPE
from filterbank.tensor import Tensor

FORMATS = ("xyxy", "xywh", "cxcywh")

# Each conversion is linear. Row-vector convention: ``to_xyxy = boxes @ _TO_XYXY[fmt]`` and
# ``out = xyxy @ _FROM_XYXY[fmt]``; backward multiplies by the transposed product.
_TO_XYXY = {
    "xyxy": np.eye(4),
    "xywh": np.array([[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]], float),
    "cxcywh": np.array([[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]]),
}
_FROM_XYXY = {
    "xyxy": np.eye(4),
    "xywh": np.array([[1, 0, -1, 0], [0, 1, 0, -1], [0, 0, 1, 0], [0, 0, 0, 1]], float),
    "cxcywh": np.array([[0.5, 0, -1, 0], [0, 0.5, 0, -1], [0.5, 0, 1, 0], [0, 0.5, 0, 1]]),
}


# ----------------------------------------------------------------------------- arguments
def _boxes_arg(name: str, arg: str, value, *, matrix: bool):
    """``(operand, array, is_tensor)`` for a boxes argument.

    ``array`` is floating (integers become float32); ``operand`` is what a Function is applied
    to (the Tensor itself when it is floating, so gradients flow). ``matrix``: the shape must be
    (N, 4); otherwise (..., 4) with at least two dims.
    """
    is_tensor = isinstance(value, Tensor)
    arr = value.data if is_tensor else _as_array(name, arg, value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name}: {arg} must hold real numbers, got dtype {arr.dtype}")
    ok = arr.ndim == 2 if matrix else arr.ndim >= 2
    if not ok or arr.shape[-1] != 4:
        want = "(N, 4)" if matrix else "(N, 4) or (..., 4)"
        raise ValueError(f"{name}: expected {arg} of shape {want}, got {tuple(arr.shape)}")
    if arr.dtype.kind != "f":
        arr = arr.astype(DEFAULT_DTYPE)
        return arr, arr, is_tensor
    return (value if is_tensor else arr), arr, is_tensor


def _as_array(name: str, arg: str, value) -> np.ndarray:
    if value is None or isinstance(value, str | bytes):
        raise TypeError(f"{name}: {arg} must be an array or Tensor, got {type(value).__name__}")
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as e:  # ragged lists
        raise TypeError(f"{name}: {arg} must be an array or Tensor, got {value!r}") from e


def _fmt(name: str, arg: str, fmt) -> str:
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ValueError(f"{name}: {arg} must be one of {', '.join(map(repr, FORMATS))}, "
                         f"got {fmt!r}")
    return fmt


def _wrap(out: np.ndarray, as_tensor: bool):
    return Tensor._wrap(out) if as_tensor else out


# ------------------------------------------------------------------------------ box_convert
def _to_xyxy(b, fmt):
    if fmt == "xyxy":
        return b
    p, q, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if fmt == "xywh":
        return np.stack((p, q, p + w, q + h), axis=-1)
    half = b.dtype.type(0.5)
    return np.stack((p - half * w, q - half * h, p + half * w, q + half * h), axis=-1)


def _from_xyxy(b, fmt):
    if fmt == "xyxy":
        return b
    x1, y1, x2, y2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if fmt == "xywh":
        return np.stack((x1, y1, x2 - x1, y2 - y1), axis=-1)
    two = b.dtype.type(2)
    return np.stack(((x1 + x2) / two, (y1 + y2) / two, x2 - x1, y2 - y1), axis=-1)


def _convert(b, in_fmt, out_fmt):
    if in_fmt == out_fmt:
        return b.copy()
    return _from_xyxy(_to_xyxy(b, in_fmt), out_fmt)


class BoxConvert(Function):
    """out = boxes @ J with J = TO_XYXY[in_fmt] @ FROM_XYXY[out_fmt] (computed coordinate by
    coordinate, as torchvision); dL/dboxes = g @ J^T."""

    def forward(self, b):
        return _convert(b, self.in_fmt, self.out_fmt)

    def backward(self, g):
        jac = _TO_XYXY[self.in_fmt] @ _FROM_XYXY[self.out_fmt]
        return g @ like(g, jac.T, dtype=g.dtype)  # a host constant, moved where g is


def box_convert(boxes, in_fmt: str, out_fmt: str):
    """Convert boxes between the ``'xyxy'``, ``'xywh'`` and ``'cxcywh'`` formats
    (``torchvision.ops.box_convert``).

    ``'xyxy'``: corners ``(x1, y1, x2, y2)``; ``'xywh'``: top-left corner, width, height
    ``(x1, y1, w, h)``; ``'cxcywh'``: centre, width, height ``(cx, cy, w, h)``::

        x2 = x1 + w,   cx = (x1 + x2) / 2,   x1 = cx - w / 2   (and the same for y)

    Every conversion is linear, so the gradient is the transposed 4x4 matrix applied to the
    output gradient. The same format in and out gives a copy.

    Args:
        boxes: array or Tensor of shape (N, 4) (or (..., 4): the last dim holds the box).
            Integer boxes become float32.
        in_fmt: the format of ``boxes``.
        out_fmt: the format wanted.

    Shape:
        boxes (..., 4) -> (..., 4)

    Example::

        >>> box_convert(np.array([[10., 20., 4., 6.]]), "cxcywh", "xyxy")
        array([[ 8., 17., 12., 23.]])
    """
    in_fmt = _fmt("box_convert", "in_fmt", in_fmt)
    out_fmt = _fmt("box_convert", "out_fmt", out_fmt)
    op, arr, is_tensor = _boxes_arg("box_convert", "boxes", boxes, matrix=False)
    if isinstance(op, Tensor):
        return BoxConvert.apply(op, in_fmt=in_fmt, out_fmt=out_fmt)
    return _wrap(_convert(arr, in_fmt, out_fmt), is_tensor)


# --------------------------------------------------------------------------------- box_area
def _sides(b):
    """Width and height, signed (negative for an inverted box)."""
    return b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]


def _area(b):
    w, h = _sides(b)
    return np.maximum(w, 0) * np.maximum(h, 0)


def _area_backward(b, g):
    """dL/dboxes of ``_area`` given g = dL/darea: d/dx2 = h+ [w > 0], d/dx1 = -d/dx2, ..."""
    w, h = _sides(b)
    zero = b.dtype.type(0)
    gw = np.where(w > 0, g * np.maximum(h, zero), zero)
    gh = np.where(h > 0, g * np.maximum(w, zero), zero)
    return np.stack((-gw, -gh, gw, gh), axis=-1)


class BoxArea(Function):
    """area = max(x2 - x1, 0) * max(y2 - y1, 0); dA/dx2 = -dA/dx1 = max(h, 0) where w > 0
    (0 at and beyond w = 0), and the same for y."""

    def forward(self, b):
        self.b = b
        return _area(b)

    def backward(self, g):
        return _area_backward(self.b, g)


def box_area(boxes):
    """Area of each ``'xyxy'`` box (``torchvision.ops.box_area``)::

        area = max(x2 - x1, 0) * max(y2 - y1, 0)

    A degenerate box (``x2 <= x1`` or ``y2 <= y1``) has area 0 and passes no gradient
    (torchvision returns the signed product instead; both agree on proper boxes).

    Args:
        boxes: array or Tensor of shape (N, 4) (or (..., 4)) in ``'xyxy'`` format.

    Shape:
        boxes (..., 4) -> (...)

    Example::

        >>> box_area(np.array([[0., 0., 2., 3.], [1., 1., 0., 4.]]))
        array([6., 0.])
    """
    op, arr, is_tensor = _boxes_arg("box_area", "boxes", boxes, matrix=False)
    if isinstance(op, Tensor):
        return BoxArea.apply(op)
    return _wrap(_area(arr), is_tensor)


# ---------------------------------------------------------------------------------- box_iou
def _iou_parts(a, b):
    """Everything IoU and its gradient need, for (N, 4) and (M, 4) boxes (float arrays)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2) intersection's top-left
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])  # bottom-right
    wh = rb - lt
    whc = np.maximum(wh, 0)
    inter = whc[..., 0] * whc[..., 1]
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    # union <= 0 only when both boxes have no area (then inter is 0 too): IoU 0, not 0/0.
    # Written as "not <= 0" so that a NaN coordinate stays visible as a NaN IoU.
    live = ~(union <= 0)
    safe = np.where(live, union, union.dtype.type(1))
    return wh, whc, inter, live, safe


def _iou(a, b):
    dtype = np.result_type(a.dtype, b.dtype)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype)
    a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    _, _, inter, live, safe = _iou_parts(a, b)
    return np.where(live, inter / safe, dtype.type(0))


class BoxIoU(Function):
    """IoU = I / U with U = A_a + A_b - I, I = max(w, 0) max(h, 0) of the intersection.

    dIoU/dI = 1/U + I/U^2 (I also lowers U), dIoU/dA_a = dIoU/dA_b = -I/U^2; the intersection's
    sides pass their gradient to whichever box gives the min/max corner (halved on ties)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return _iou(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        dt = g.dtype
        if a.shape[0] == 0 or b.shape[0] == 0:
            return np.zeros(a.shape, dt), np.zeros(b.shape, dt)
        wh, whc, inter, live, safe = _iou_parts(a, b)
        g = np.where(live, g, dt.type(0))
        g_union = -g * inter / (safe * safe)  # (N, M)
        g_inter = g / safe - g_union
        # dI/dw = max(h, 0) where w > 0 (and the same for h): (N, M, 2)
        g_wh = np.where(wh > 0, g_inter[..., None] * whc[..., ::-1], dt.type(0))
        half = dt.type(0.5)
        a1, b1 = a[:, None, :2], b[None, :, :2]
        a2, b2 = a[:, None, 2:], b[None, :, 2:]
        to_a_lt = (a1 > b1) + half * (a1 == b1)  # lt = max(a1, b1)
        to_a_rb = (a2 < b2) + half * (a2 == b2)  # rb = min(a2, b2)
        ga = np.concatenate((-(g_wh * to_a_lt).sum(1), (g_wh * to_a_rb).sum(1)), axis=-1)
        gb = np.concatenate((-(g_wh * (1 - to_a_lt)).sum(0), (g_wh * (1 - to_a_rb)).sum(0)),
                            axis=-1)
        ga += _area_backward(a, g_union.sum(1))
        gb += _area_backward(b, g_union.sum(0))
        return ga.astype(dt, copy=False), gb.astype(dt, copy=False)


def box_iou(boxes1, boxes2):
    """Pairwise intersection over union of two sets of ``'xyxy'`` boxes
    (``torchvision.ops.box_iou``)::

        IoU(a, b) = |a ∩ b| / (|a| + |b| - |a ∩ b|),
        |a ∩ b| = max(min(a.x2, b.x2) - max(a.x1, b.x1), 0) * (the same in y)

    A degenerate box (no area) has IoU 0 with every box, never NaN (see the module docstring).
    Differentiable in both arguments (the gradient is 0 where a clamp is at or below 0).

    Args:
        boxes1: array or Tensor of shape (N, 4).
        boxes2: array or Tensor of shape (M, 4).

    Shape:
        (N, 4), (M, 4) -> (N, M); a Tensor if either argument is one.

    Example::

        >>> box_iou(np.array([[0., 0., 2., 2.]]), np.array([[1., 0., 3., 2.], [5., 5., 6., 6.]]))
        array([[0.33333333, 0.        ]])
    """
    op1, a, t1 = _boxes_arg("box_iou", "boxes1", boxes1, matrix=True)
    op2, b, t2 = _boxes_arg("box_iou", "boxes2", boxes2, matrix=True)
    if isinstance(op1, Tensor) or isinstance(op2, Tensor):
        return BoxIoU.apply(op1, op2)
    return _wrap(_iou(a, b), t1 or t2)


# -------------------------------------------------------------------------------------- NMS
def _threshold(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: iou_threshold must be a real number, got "
                        f"{type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: iou_threshold must be finite, got {value}")
    return value


def _vector_arg(name: str, arg: str, value, n: int, kinds: str, what: str) -> np.ndarray:
    arr = value.data if isinstance(value, Tensor) else _as_array(name, arg, value)
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{name}: {arg} must hold {what}, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected {arg} of shape ({n},) to match boxes of shape "
                         f"({n}, 4), got {tuple(arr.shape)}")
    return arr


def _nms(name: str, boxes, scores, idxs, iou_threshold):
    _, b, as_tensor = _boxes_arg(name, "boxes", boxes, matrix=True)
    n = b.shape[0]
    s = _vector_arg(name, "scores", scores, n, "iuf", "real numbers")
    cls = None if idxs is None else _vector_arg(name, "idxs", idxs, n, "iu", "integers")
    thr = _threshold(name, iou_threshold)
    as_tensor = as_tensor or any(isinstance(v, Tensor) for v in (scores, idxs))
    b = b.astype(np.float64)  # an IoU that equals the threshold in exact arithmetic is kept
    if not np.isfinite(b).all():
        raise ValueError(f"{name}: boxes must be finite, got NaN or infinite coordinates")
    s = s.astype(np.float64)
    if np.isnan(s).any():
        raise ValueError(f"{name}: scores must not be NaN")
    order = np.argsort(-s, kind="stable")  # descending; ties keep the lower index first
    # Greedy walk over the survivors in score order: the best one is kept and every later box
    # it overlaps (IoU > threshold, same class) is dropped, one vector IoU per kept box.
    # Columns: x1, y1, x2, y2, area (the survivors, still in score order).
    cols = np.concatenate((b[order], _area(b[order])[:, None]), axis=1).T.copy()
    pos = order
    same = None if cls is None else cls[order]
    keep = []
    while pos.size:
        keep.append(pos[0])
        x1, y1, x2, y2, area = cols[:, 1:]
        iw = np.minimum(x2, cols[2, 0]) - np.maximum(x1, cols[0, 0])
        ih = np.minimum(y2, cols[3, 0]) - np.maximum(y1, cols[1, 0])
        inter = np.maximum(iw, 0) * np.maximum(ih, 0)
        union = area + cols[4, 0] - inter
        # union <= 0: both boxes without area, and inter is 0: IoU 0
        iou = inter / np.where(union > 0, union, 1.0)
        drop = iou > thr
        if same is not None:
            drop &= same[1:] == same[0]
        if drop.any():
            survive = ~drop
            cols, pos = cols[:, 1:][:, survive], pos[1:][survive]
            same = None if same is None else same[1:][survive]
        else:  # views, no copies: the common case among well-separated boxes
            cols, pos = cols[:, 1:], pos[1:]
            same = None if same is None else same[1:]
    return _wrap(np.asarray(keep, dtype=np.int64), as_tensor)


def nms(boxes, scores, iou_threshold: float):
    """Non-maximum suppression (``torchvision.ops.nms``).

    Greedy: visit the boxes by decreasing score (equal scores: lower index first); keep a box
    unless a box kept before it overlaps it with IoU **strictly greater** than
    ``iou_threshold`` (a pair whose IoU equals the threshold is kept). IoUs are computed in
    float64; degenerate boxes have IoU 0 with everything, so they are never suppressed and
    suppress nothing (for ``iou_threshold >= 0``).

    Pseudocode::

        order = argsort(-scores, stable)
        keep = []
        for i in order:
            if all(IoU(i, k) <= iou_threshold for k in keep): keep.append(i)

    Args:
        boxes: array or Tensor of shape (N, 4), ``'xyxy'``, finite.
        scores: array or Tensor of shape (N,), no NaN.
        iou_threshold: finite float; boxes with IoU > iou_threshold are discarded.

    Returns:
        int64 indices of the kept boxes, by decreasing score: a Tensor if any argument is one,
        otherwise a NumPy array. Shape (K,), K <= N.

    Example::

        >>> boxes = np.array([[0., 0., 2., 2.], [0., 0., 2., 1.9], [5., 5., 6., 6.]])
        >>> nms(boxes, np.array([0.9, 0.8, 0.95]), 0.5)
        array([2, 0])
    """
    return _nms("nms", boxes, scores, None, iou_threshold)


def batched_nms(boxes, scores, idxs, iou_threshold: float):
    """Non-maximum suppression within each category (``torchvision.ops.batched_nms``).

    Boxes of different ``idxs`` never suppress each other. The result is what running
    :func:`nms` on each category separately and merging by decreasing score (ties: lower index
    first) gives; it is computed in one greedy walk that only compares boxes of the same
    category (exact, unlike the coordinate-offset trick, which shifts the coordinates).

    Args:
        boxes: array or Tensor of shape (N, 4), ``'xyxy'``, finite.
        scores: array or Tensor of shape (N,), no NaN.
        idxs: integer array or Tensor of shape (N,): the category of each box.
        iou_threshold: finite float; boxes with IoU > iou_threshold are discarded.

    Returns:
        int64 indices of the kept boxes, by decreasing score, shape (K,); a Tensor if any
        argument is one.

    Example::

        >>> boxes = np.array([[0., 0., 2., 2.], [0., 0., 2., 1.9], [0., 0., 2., 2.]])
        >>> batched_nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([0, 0, 1]), 0.5)
        array([0, 2])
    """
    if idxs is None:
        raise TypeError("batched_nms: idxs must be an integer array or Tensor, got None")
    return _nms("batched_nms", boxes, scores, idxs, iou_threshold)
