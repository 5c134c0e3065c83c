"""Loss layers: thin modules over :mod:`filterbank.functional.loss` (PyTorch's names).

Class weights and ``pos_weight`` are registered as buffers, so they travel with the module's
state_dict as in PyTorch. Each loss is called as ``loss_fn(input, target)``.
"""

from __future__ import annotations

import numpy as np

from filterbank.functional import loss as F
from filterbank.nn.module import Module
from filterbank.tensor import Tensor


def _buffer(value):
    """Weights as float tensors (lists and float64 arrays become float32, the default)."""
    if value is None or isinstance(value, Tensor):
        return value
    return Tensor(value)


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        F._check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error ``(x - t)^2``, reduced; see :func:`filterbank.functional.mse_loss`.

    No factor 1/2: the lecture's E = 1/2 sum (y - t)^2 is ``0.5 * MSELoss('sum')``, and
    this loss's gradient is twice the lecture's (y - t).

    Args:
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Shape:
        input, target: (*), same shape. Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank import nn
        >>> nn.MSELoss()(fb.tensor([1.0, 2.0]), fb.tensor([0.0, 0.0])).item()
        2.5
    """

    def forward(self, input, target):  # noqa: A002
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error ``|x - t|``; see :func:`filterbank.functional.l1_loss`.

    Args:
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Shape:
        input, target: (*), same shape. Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank import nn
        >>> nn.L1Loss()(fb.tensor([1.0, -3.0]), fb.tensor([0.0, 0.0])).item()
        2.0
    """

    def forward(self, input, target):  # noqa: A002
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Smooth L1: 0.5 d^2 / beta for |d| < beta, else |d| - 0.5 beta (d = x - t); see
    :func:`filterbank.functional.smooth_l1_loss`.

    Args:
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
        beta: end of the quadratic zone (>= 0; 0 gives L1).

    Shape:
        input, target: (*), same shape. Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank import nn
        >>> nn.SmoothL1Loss(beta=1.0)(fb.tensor([3.0]), fb.tensor([0.0])).item()
        2.5
    """

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be >= 0, got {beta}")
        self.beta = float(beta)

    def forward(self, input, target):  # noqa: A002
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, beta={self.beta}"


class HuberLoss(_Loss):
    """Huber loss: 0.5 d^2 for |d| < delta, else delta (|d| - 0.5 delta); see
    :func:`filterbank.functional.huber_loss`.

    Args:
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
        delta: end of the quadratic zone (> 0).

    Shape:
        input, target: (*), same shape. Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank import nn
        >>> nn.HuberLoss(delta=2.0)(fb.tensor([3.0]), fb.tensor([0.0])).item()
        4.0
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"HuberLoss: delta must be > 0, got {delta}")
        self.delta = float(delta)

    def forward(self, input, target):  # noqa: A002
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, delta={self.delta}"


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits against class indices or probabilities (log-softmax + NLL
    fused); see :func:`filterbank.functional.cross_entropy` for the exact formulas.

    l_n = -w[y_n] log softmax(x_n)[y_n]; the gradient is softmax(x) - onehot(y).

    Args:
        weight: optional per-class weights (C,), stored as a buffer.
        ignore_index: class-index target to skip.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
        label_smoothing: eps in [0, 1]; the target becomes (1 - eps) onehot + eps / C.

    Shape:
        input: (N, C), (N, C, d1, ...) or (C,). target: (N,), (N, d1, ...) or () ints, or
        floats of the input's shape. Output: scalar, or (N, d1, ...) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank import nn
        >>> loss = nn.CrossEntropyLoss()(fb.tensor([[2.0, 0.0, 0.0]]), fb.tensor([0]))
        >>> round(loss.item(), 4)
        0.2395
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got "
                             f"{label_smoothing}")
        self.register_buffer("weight", _buffer(weight))
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input, target):  # noqa: A002
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return (f"weight={'None' if self.weight is None else tuple(self.weight.shape)}, "
                f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, "
                f"label_smoothing={self.label_smoothing}")


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities: l_n = -w[y_n] x[n, y_n]; see
    :func:`filterbank.functional.nll_loss`.

    Args:
        weight: optional per-class weights (C,), stored as a buffer.
        ignore_index: target value to skip.
        reduction: ``'mean'`` (divides by sum of w[y_n]) | ``'sum'`` | ``'none'``.

    Shape:
        input: (N, C), (N, C, d1, ...) or (C,). target: (N,), (N, d1, ...) or ().

    Example:
        >>> import filterbank as fb
        >>> from filterbank import nn
        >>> nn.NLLLoss()(fb.tensor([[-1.0, -2.0]]), fb.tensor([1])).item()
        2.0
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))
        self.ignore_index = int(ignore_index)

    def forward(self, input, target):  # noqa: A002
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities, -w [t log p + (1 - t) log(1 - p)], logs clamped
    at -100; see :func:`filterbank.functional.binary_cross_entropy`.

    Args:
        weight: optional rescaling weight broadcastable to the input (a buffer).
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Shape:
        input, target: (*), same shape. Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank import nn
        >>> round(nn.BCELoss()(fb.tensor([0.5]), fb.tensor([1.0])).item(), 4)
        0.6931
    """

    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy on logits, computed stably; multi-label targets; see
    :func:`filterbank.functional.binary_cross_entropy_with_logits`.

    Args:
        weight: optional rescaling weight broadcastable to the input (a buffer).
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
        pos_weight: optional weight of positives per class, broadcast along the last dim
            (a buffer).
        ignore_index: target value meaning "unknown label" (e.g. -1), or None. Targets equal
            to it, and NaN targets, are left out of the loss and of the mean's count (not in
            PyTorch).

    Shape:
        input, target: (*), same shape. Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank import nn
        >>> round(nn.BCEWithLogitsLoss()(fb.tensor([0.0]), fb.tensor([1.0])).item(), 4)
        0.6931
        >>> loss = nn.BCEWithLogitsLoss(ignore_index=-1)  # y = [1 ? 0]: the mean of two terms
        >>> round(loss(fb.tensor([0.0, 5.0, 0.0]), fb.tensor([1.0, -1.0, 0.0])).item(), 4)
        0.6931
    """

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None,
                 ignore_index: float | None = None):
        super().__init__(reduction)
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(
                ignore_index, int | float | np.integer | np.floating)):
            raise TypeError(f"BCEWithLogitsLoss: ignore_index must be a number or None, got "
                            f"{type(ignore_index).__name__}")
        self.register_buffer("weight", _buffer(weight))
        self.register_buffer("pos_weight", _buffer(pos_weight))
        self.ignore_index = None if ignore_index is None else float(ignore_index)

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight,
                                                  ignore_index=self.ignore_index)

    def extra_repr(self) -> str:
        if self.ignore_index is None:
            return super().extra_repr()
        return f"reduction={self.reduction!r}, ignore_index={self.ignore_index}"
