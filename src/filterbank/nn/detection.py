"""The YOLO v1 loss (Redmon et al., 2016) over a grid of cells, as written in the lecture.

Layout (shared with :func:`filterbank.train.yolo.encode_targets` and
:func:`filterbank.train.yolo.decode`):

- predictions ``(N, S, S, B*5 + C)``: per cell first the B boxes, each
  ``(x, y, sqrt_w, sqrt_h, confidence)``, then the C class scores. ``x, y`` are the box centre's
  offset inside its cell (0..1); ``sqrt_w, sqrt_h`` are the square roots of the width and height
  as fractions of the image. The network predicts the roots directly (darknet's convention), so
  the size term never takes the root of a negative number; a predicted box's width is
  ``sqrt_w ** 2``.
- targets ``(N, S, S, 5 + C)``: ``(x, y, w, h, 1)`` and a one-hot class in a cell that holds an
  object centre, zeros elsewhere (``w, h`` themselves here, not their roots).
- cell ``[n, i, j]`` is row ``i`` (the y direction) and column ``j`` (x): a centre at
  image-relative ``(cx, cy)`` lies in row ``floor(cy * S)``, column ``floor(cx * S)``, and
  ``x = cx * S - j``, ``y = cy * S - i``.
"""

from __future__ import annotations

import numpy as np

from filterbank.backend import xp
from filterbank.nn.module import Module
from filterbank.tensor import Tensor

PARTS = ("coord", "size", "obj", "noobj", "class")


def _cell_boxes_xyxy(boxes, S: int, *, roots: bool):
    """Image-relative xyxy corners of per-cell boxes, ``(N, S, S, 4+)`` or ``(N, S, S, B, 4+)``.

    ``boxes[..., :4]`` is ``(x, y, sqrt_w, sqrt_h)`` when ``roots`` (predictions), else
    ``(x, y, w, h)`` (targets).
    """
    extra = boxes.ndim - 4  # 0 for (N, S, S, 4+), 1 for (N, S, S, B, 4+)
    rows = xp.arange(S, dtype=boxes.dtype).reshape((S, 1) + (1,) * (extra + 1))
    cols = xp.arange(S, dtype=boxes.dtype).reshape((1, S) + (1,) * (extra + 1))
    x, y, w, h = boxes[..., 0:1], boxes[..., 1:2], boxes[..., 2:3], boxes[..., 3:4]
    if roots:
        w, h = w * w, h * h
    cx, cy = (cols + x) / S, (rows + y) / S
    return xp.concatenate([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def _pairwise_iou(a, b):
    """Elementwise IoU of xyxy boxes ``a`` and ``b`` (broadcast). A pair whose union has no
    area (degenerate boxes) has IoU 0, never NaN."""
    iw = xp.clip(xp.minimum(a[..., 2], b[..., 2]) - xp.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = xp.clip(xp.minimum(a[..., 3], b[..., 3]) - xp.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = xp.clip(a[..., 2] - a[..., 0], 0, None) * xp.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = xp.clip(b[..., 2] - b[..., 0], 0, None) * xp.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    safe = xp.where(union > 0, union, 1)
    return xp.where(union > 0, inter / safe, 0).astype(a.dtype, copy=False)


class YOLOv1Loss(Module):
    r"""The YOLO v1 loss: a sum-squared error over the grid, term by term as in the paper.

    .. math::

        L = \frac{1}{N} \Big[
            \lambda_{coord} \sum_{i=0}^{S^2} \sum_{j=0}^{B} 1_{ij}^{obj}
                [(x_i - \hat x_i)^2 + (y_i - \hat y_i)^2]
          + \lambda_{coord} \sum_i \sum_j 1_{ij}^{obj}
                [(\sqrt{w_i} - \sqrt{\hat w_i})^2 + (\sqrt{h_i} - \sqrt{\hat h_i})^2]
          + \sum_i \sum_j 1_{ij}^{obj} (C_i - \hat C_i)^2
          + \lambda_{noobj} \sum_i \sum_j 1_{ij}^{noobj} (C_i - \hat C_i)^2
          + \sum_i 1_i^{obj} \sum_{c} (p_i(c) - \hat p_i(c))^2 \Big]

    ``1_i^obj`` marks a cell that holds an object centre. Of its B predictors the
    *responsible* one (``1_ij^obj``) is the one whose box has the highest IoU with the ground
    truth (ties: the lowest index); ``1_ij^noobj`` marks every other predictor, in every cell,
    so a cell's second predictor is pushed to confidence 0. The confidence target ``C_i`` of the
    responsible predictor is that IoU (``rescore=True``, the paper) or 1 (``rescore=False``).
    The IoU only selects and sets targets: it is computed without gradient, so the target
    moves with the prediction but is a constant for backprop. The class term is the squared
    error of the raw class scores against the one-hot class.

    Every term is a weighted square ``W (P - T)^2`` of the prediction P against a constant
    target T, so the gradient is ``dL/dP = 2 W (P - T) / N`` (W = lambda_coord on the
    responsible box's x, y, sqrt_w, sqrt_h; 1 on its confidence; lambda_noobj on the other
    confidences; 1 on the class scores of cells with an object; 0 elsewhere). It is built from
    Tensor ops, so autodiff derives it.

    Args:
        S: grid size (S x S cells). Default 7.
        B: boxes per cell. Default 2.
        C: number of classes. Default 20.
        lambda_coord: weight of the coordinate and size terms. Default 5.
        lambda_noobj: weight of the confidence term of predictors without an object.
            Default 0.5.
        rescore: confidence target = IoU (True, the paper and darknet) or 1 (False).

    After each call ``self.parts`` holds the five terms (each divided by N, as floats) under
    the keys ``'coord', 'size', 'obj', 'noobj', 'class'``; they sum to the loss.
    ``loss_fn(pred, target, return_parts=True)`` returns ``(loss, parts)``.

    Shape:
        pred: (N, S, S, B*5 + C), layout in :mod:`filterbank.nn.detection`.
        target: (N, S, S, 5 + C), e.g. from :func:`filterbank.train.yolo.encode_targets`.
        Output: scalar.

    Example:
        >>> import numpy as np
        >>> import filterbank as fb
        >>> from filterbank import nn
        >>> target = np.zeros((1, 2, 2, 6), np.float32)
        >>> target[0, 0, 0] = [0.5, 0.5, 0.25, 0.25, 1, 1]  # one object, class 0, in cell (0, 0)
        >>> pred = fb.zeros(1, 2, 2, 11)
        >>> loss_fn = nn.YOLOv1Loss(S=2, B=2, C=1, rescore=False)
        >>> round(loss_fn(pred, target).item(), 4)  # 5*(0.25+0.25) + 5*(0.25+0.25) + 1 + 0 + 1
        7.0
    """

    def __init__(self, S: int = 7, B: int = 2, C: int = 20, lambda_coord: float = 5.0,
                 lambda_noobj: float = 0.5, rescore: bool = True):
        super().__init__()
        for name, value in (("S", S), ("B", B), ("C", C)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"YOLOv1Loss: {name} must be a positive int, got {value!r}")
        for name, value in (("lambda_coord", lambda_coord), ("lambda_noobj", lambda_noobj)):
            if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not (
                np.isfinite(value) and value >= 0
            ):
                raise ValueError(
                    f"YOLOv1Loss: {name} must be a finite number >= 0, got {value!r}"
                )
        if not isinstance(rescore, bool | np.bool_):
            raise TypeError(f"YOLOv1Loss: rescore must be a bool, got {rescore!r}")
        self.S, self.B, self.C = int(S), int(B), int(C)
        self.lambda_coord, self.lambda_noobj = float(lambda_coord), float(lambda_noobj)
        self.rescore = bool(rescore)
        self.parts: dict[str, float] = {}

    def extra_repr(self) -> str:
        return (
            f"S={self.S}, B={self.B}, C={self.C}, lambda_coord={self.lambda_coord}, "
            f"lambda_noobj={self.lambda_noobj}, rescore={self.rescore}"
        )

    def _check(self, pred, target):
        S, B, C = self.S, self.B, self.C
        if not isinstance(pred, Tensor):
            pred = Tensor(pred)
        if not np.issubdtype(pred.dtype, np.floating):
            raise TypeError(f"YOLOv1Loss: pred must be floating point, got dtype {pred.dtype}")
        want = f"(N, S, S, B*5 + C) = (N, {S}, {S}, {B * 5 + C})"
        if pred.ndim != 4 or pred.shape[1:3] != (S, S):
            raise ValueError(f"YOLOv1Loss: pred must have shape {want}, got {pred.shape}")
        if pred.shape[3] != B * 5 + C:
            raise ValueError(
                f"YOLOv1Loss: pred's last dimension must be B*5 + C = {B}*5 + {C} = "
                f"{B * 5 + C} (B boxes of (x, y, sqrt_w, sqrt_h, confidence), then C class "
                f"scores), got shape {pred.shape}"
            )
        t = target.data if isinstance(target, Tensor) else xp.asarray(target)
        if t.dtype.kind not in "biuf":
            raise TypeError(f"YOLOv1Loss: target must be numeric, got dtype {t.dtype}")
        want_t = (pred.shape[0], S, S, 5 + C)
        if t.shape != want_t:
            raise ValueError(
                f"YOLOv1Loss: target must have shape (N, S, S, 5 + C) = {want_t} to match pred "
                f"{pred.shape}, got {t.shape}"
            )
        t = t.astype(pred.dtype, copy=False)
        if not np.all(np.isfinite(t)):
            raise ValueError("YOLOv1Loss: target has NaN or infinite values")
        conf = t[..., 4]
        if not np.all((conf == 0) | (conf == 1)):
            raise ValueError(
                f"YOLOv1Loss: target[..., 4] (object present) must be 0 or 1, got values "
                f"{np.unique(conf)[:5].tolist()}"
            )
        if np.any(t[..., :4] < 0) or np.any(t[..., :4] > 1):
            raise ValueError(
                "YOLOv1Loss: target (x, y, w, h) must lie in [0, 1] (cell offsets and "
                f"image fractions), got values in [{t[..., :4].min()}, {t[..., :4].max()}]"
            )
        return pred, t

    def _weights_and_targets(self, p, t):
        """Constant weight W and target T (pred's shape) and the responsible mask 1_ij^obj."""
        S, B = self.S, self.B
        n = p.shape[0]
        obj = t[..., 4] == 1  # (N, S, S)
        boxes = p[..., : 5 * B].reshape(n, S, S, B, 5)
        iou = _pairwise_iou(
            _cell_boxes_xyxy(boxes, S, roots=True),
            _cell_boxes_xyxy(t[..., None, :4], S, roots=False),
        )  # (N, S, S, B)
        best = xp.argmax(iou, axis=-1)  # the first maximum: ties go to the lowest index
        resp = (xp.arange(B) == best[..., None]) & obj[..., None]  # 1_ij^obj, (N, S, S, B)
        noobj = ~resp

        W = xp.zeros(p.shape, p.dtype)
        T = xp.zeros(p.shape, p.dtype)
        Wb = W[..., : 5 * B].reshape(n, S, S, B, 5)  # views: writes land in W and T
        Tb = T[..., : 5 * B].reshape(n, S, S, B, 5)
        Wb[..., 0:4] = self.lambda_coord * resp[..., None]
        Wb[..., 4] = resp + self.lambda_noobj * noobj
        Tb[..., 0:2] = t[..., None, 0:2]
        Tb[..., 2:4] = xp.sqrt(t[..., None, 2:4])
        Tb[..., 4] = xp.where(resp, iou if self.rescore else 1, 0)
        W[..., 5 * B :] = obj[..., None]
        T[..., 5 * B :] = t[..., 5:]
        return W, T, resp

    def forward(self, pred, target, return_parts: bool = False):
        pred, t = self._check(pred, target)
        n = pred.shape[0]
        # IoU, responsibility and targets come from the raw arrays: no gradient flows there
        W, T, resp = self._weights_and_targets(pred.data, t)
        weighted = (pred - T) ** 2 * W  # (N, S, S, B*5 + C)
        loss = weighted.sum() / n

        sq = weighted.data
        box = sq[..., : 5 * self.B].reshape(sq.shape[:3] + (self.B, 5))
        self.parts = {
            "coord": float(box[..., 0:2].sum() / n),
            "size": float(box[..., 2:4].sum() / n),
            "obj": float(box[..., 4][resp].sum() / n),
            "noobj": float(box[..., 4][~resp].sum() / n),
            "class": float(sq[..., 5 * self.B :].sum() / n),
        }
        if return_parts:
            return loss, dict(self.parts)
        return loss
