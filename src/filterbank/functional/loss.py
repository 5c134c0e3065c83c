"""Loss functions: regression (MSE, L1, smooth L1, Huber) and classification (cross-entropy,
NLL, binary cross-entropy), each one fused Function with its reduction.

Every loss takes ``reduction``: ``'mean'`` (default), ``'sum'`` or ``'none'`` (per-element or
per-sample losses), exactly as PyTorch. The backward of each loss is written by hand: the
reduction only scales the upstream gradient (by 1/n for the mean), so no reduction node is
recorded and no intermediate beyond what the gradient needs is kept.

Unlike PyTorch, which broadcasts mismatched input/target shapes with a warning, a shape mismatch
is an error here: it is almost always a bug (e.g. ``(N, 1)`` predictions against ``(N,)``
targets silently become an ``(N, N)`` loss).
"""

from __future__ import annotations

import numpy as np

from filterbank.autograd.function import Function
from filterbank.backend import get_array_module, xp
from filterbank.functional.elementwise import _stable_sigmoid
from filterbank.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------------------ helpers
def _array(x):
    return x.data if isinstance(x, Tensor) else xp.asarray(x)


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _target_operand(target):
    """A target that needs no gradient enters as a constant, so it takes the input's dtype
    (a float64 or integer target does not promote a float32 graph)."""
    if isinstance(target, Tensor) and not target.requires_grad:
        return target.data
    return target


def _const(value):
    """Weights are constants: their arrays are cast to the graph's dtype by ``apply``."""
    return None if value is None else _array(value)


def _reduce(loss, reduction: str, denom=None):
    """Sum or average ``loss``; ``denom`` overrides the element count of the mean."""
    xp = get_array_module(loss)
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return xp.asarray(total, dtype=loss.dtype)
    if denom is None:
        denom = loss.size
    with np.errstate(invalid="ignore", divide="ignore"):  # nothing to average: NaN, as PyTorch
        return xp.asarray(total / denom, dtype=loss.dtype)


def _upstream(gy, reduction: str, shape, denom=None):
    """The gradient reaching each element of the unreduced loss."""
    xp = get_array_module(gy)
    if reduction == "none":
        return gy
    if reduction == "mean":
        n = (int(np.prod(shape, dtype=np.int64)) if denom is None else denom)
        with np.errstate(invalid="ignore", divide="ignore"):
            gy = gy / n
    return xp.broadcast_to(gy, shape)


def _check_same_shape(name: str, x, t) -> None:
    if x.shape != t.shape:
        raise ValueError(
            f"{name}: target shape {tuple(t.shape)} does not match input shape "
            f"{tuple(x.shape)}; they must be equal"
        )


def _check_weight(name: str, what: str, w, shape) -> None:
    if w is None:
        return
    try:
        ok = np.broadcast_shapes(w.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name}: {what} of shape {tuple(w.shape)} does not broadcast to the input shape "
            f"{tuple(shape)}"
        )


# ---------------------------------------------------------------- element-wise losses
class _PointwiseLoss(Function):
    """l = weight * f(x, t), reduced. Subclasses define ``loss`` (saving what their
    derivatives need) and ``grads`` (df/dx, df/dt, computed only where wanted)."""

    name_: str
    weight_normalised_mean = False  # PyTorch's weighted MSE/L1 mean: sum(w l) / sum(w)

    def forward(self, x, t, w=None):
        _check_same_shape(self.name_, x, t)
        _check_weight(self.name_, "weight", w, x.shape)
        self.shape, self.w = x.shape, w
        loss = self.loss(x, t)
        if w is not None:
            loss = loss * w
        self.denom = self._mean_denominator(w, x.shape)
        return _reduce(loss, self.reduction, self.denom)

    def _mean_denominator(self, w, shape):
        """What the mean divides by: None for the element count."""
        xp = get_array_module(w)
        if w is not None and self.weight_normalised_mean and self.reduction == "mean":
            return xp.broadcast_to(w, shape).sum()
        return None

    def backward(self, gy):
        g = _upstream(gy, self.reduction, self.shape, self.denom)
        if self.w is not None:
            g = g * self.w
        gx, gt = self.grads(*self.needs_input_grad[:2])
        return (g * gx if gx is not None else None), (g * gt if gt is not None else None)


class MSELoss(_PointwiseLoss):
    name_ = "mse_loss"
    weight_normalised_mean = True

    def loss(self, x, t):
        self.d = x - t
        return self.d * self.d

    def grads(self, nx, nt):
        d2 = 2 * self.d
        return (d2 if nx else None), (-d2 if nt else None)


class L1Loss(_PointwiseLoss):
    name_ = "l1_loss"
    weight_normalised_mean = True

    def loss(self, x, t):
        xp = get_array_module(x)
        d = x - t
        self.sign = xp.sign(d)
        return xp.abs(d)

    def grads(self, nx, nt):
        return (self.sign if nx else None), (-self.sign if nt else None)


class SmoothL1Loss(_PointwiseLoss):
    name_ = "smooth_l1_loss"

    def loss(self, x, t):
        xp = get_array_module(x)
        d = x - t
        ad = xp.abs(d)
        if self.beta == 0:  # the quadratic zone vanishes: plain L1 (and no 0/0 below)
            self.dfdx = xp.sign(d)
            return ad
        quad = ad < self.beta
        self.dfdx = xp.where(quad, d / self.beta, xp.sign(d))
        return xp.where(quad, 0.5 * d * d / self.beta, ad - 0.5 * self.beta)

    def grads(self, nx, nt):
        return (self.dfdx if nx else None), (-self.dfdx if nt else None)


class HuberLoss(_PointwiseLoss):
    name_ = "huber_loss"

    def loss(self, x, t):
        xp = get_array_module(x)
        d = x - t
        ad = xp.abs(d)
        self.dfdx = xp.clip(d, -self.delta, self.delta)
        return xp.where(ad < self.delta, 0.5 * d * d, self.delta * (ad - 0.5 * self.delta))

    def grads(self, nx, nt):
        return (self.dfdx if nx else None), (-self.dfdx if nt else None)


_LOG_FLOOR = -100.0  # PyTorch clamps log(p) at -100 so that p = 0 gives a finite loss
_BCE_EPS = 1e-12  # PyTorch's floor on p (1 - p) in the BCE gradient


class BinaryCrossEntropy(_PointwiseLoss):
    name_ = "binary_cross_entropy"

    def loss(self, p, t):
        xp = get_array_module(p)
        if p.size and not (xp.all(p >= 0) and xp.all(p <= 1)):
            bad = p[~((p >= 0) & (p <= 1))].ravel()[0]
            raise ValueError(
                f"binary_cross_entropy: input must hold probabilities in [0, 1], got {bad} "
                f"(use binary_cross_entropy_with_logits for raw scores)"
            )
        self.p, self.t = p, t
        with np.errstate(divide="ignore"):
            self.log_p = xp.maximum(xp.log(p), _LOG_FLOOR)
            self.log_q = xp.maximum(xp.log1p(-p), _LOG_FLOOR)
        return -(t * self.log_p + (1 - t) * self.log_q)

    def grads(self, nx, nt):
        xp = get_array_module(self.p)
        gx = gt = None
        if nx:
            p = self.p
            gx = (p - self.t) / xp.maximum(p * (1 - p), _BCE_EPS)
        if nt:  # derivative of the clamped loss: finite where PyTorch's -logit(p) is +-inf
            gt = self.log_q - self.log_p
        return gx, gt


class BinaryCrossEntropyWithLogits(_PointwiseLoss):
    name_ = "binary_cross_entropy_with_logits"

    ignore_index = None

    def forward(self, x, t, w=None, pos_weight=None):
        xp = get_array_module(x)
        _check_weight(self.name_, "pos_weight", pos_weight, x.shape)
        self.pos_weight, self.known = pos_weight, None
        if self.ignore_index is not None:
            # unknown labels ("?"): weight 0, and a finite stand-in target so that no NaN
            # reaches the loss or either gradient
            _check_same_shape(self.name_, x, t)
            _check_weight(self.name_, "weight", w, x.shape)
            self.known = ~(xp.isnan(t) | (t == self.ignore_index))
            t = xp.where(self.known, t, 0).astype(t.dtype, copy=False)
            w = (self.known.astype(x.dtype) if w is None
                 else xp.where(self.known, w, 0).astype(x.dtype, copy=False))
        return super().forward(x, t, w)

    def _mean_denominator(self, w, shape):
        if self.known is not None and self.reduction == "mean":
            return self.known.sum()  # the known entries only; none known gives NaN
        return None

    def loss(self, x, t):
        # softplus(-x) = log(1 + e^-x) = log1p(e^-|x|) + max(-x, 0): no overflow at |x| ~ 100
        xp = get_array_module(x)
        self.x, self.t = x, t
        self.sp = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)
        if self.pos_weight is None:
            return (1 - t) * x + self.sp
        self.lw = 1 + (self.pos_weight - 1) * t
        return (1 - t) * x + self.lw * self.sp

    def grads(self, nx, nt):
        gx = gt = None
        if nx:
            s_neg = _stable_sigmoid(-self.x)  # sigma(-x) = 1 - sigma(x), exact near x >> 0
            lw = 1 if self.pos_weight is None else self.lw
            gx = (1 - self.t) - lw * s_neg
        if nt:
            gt = -self.x if self.pos_weight is None else (self.pos_weight - 1) * self.sp - self.x
        return gx, gt


# -------------------------------------------------------------- class-index losses
def _class_axis(name: str, shape) -> int:
    if len(shape) == 0:
        raise ValueError(f"{name}: input must have a class dimension, (C,) or (N, C, ...), "
                         f"got a 0-d tensor")
    return 1 if len(shape) >= 2 else 0


def _index_target(name: str, shape, target, ignore_index: int):
    """Validate class-index targets; return (index, valid mask, safe index expanded on the
    class axis) for ``take_along_axis``."""
    xp = get_array_module(target)
    ax = _class_axis(name, shape)
    expected = tuple(shape[:1]) + tuple(shape[2:]) if ax == 1 else ()
    if target.shape != expected:
        raise ValueError(
            f"{name}: class-index target must have shape {expected} for input of shape "
            f"{tuple(shape)}, got {tuple(target.shape)}"
        )
    valid = target != ignore_index
    c = shape[ax]
    bad = valid & ((target < 0) | (target >= c))
    if bad.any():
        raise ValueError(
            f"{name}: target class index {int(target[bad].ravel()[0])} is out of range for "
            f"{c} classes (expected 0..{c - 1}, or ignore_index={ignore_index}); "
            f"input shape {tuple(shape)}"
        )
    safe = xp.where(valid, target, 0)
    return valid, xp.expand_dims(safe, ax), safe


def _class_weight(name: str, w, c: int):
    if w is not None and w.shape != (c,):
        raise ValueError(f"{name}: weight must have shape ({c},) (one per class), got "
                         f"{tuple(w.shape)}")


def _along(a, ax: int, ndim: int):
    """Reshape a per-class vector to broadcast along axis ``ax`` of an ``ndim``-d array."""
    shape = [1] * ndim
    shape[ax] = a.shape[0]
    return a.reshape(shape)


#: exp of float32 overflows above ~88.7; below -80 a row's largest term could be subnormal
#: (float16 always takes the shifted path)
_EXP_SAFE = 80.0


def _log_softmax_and_softmax(x, ax: int, want_p: bool):
    """``(log_softmax(x), softmax(x) or None)`` from one ``exp`` pass, shifted by the max."""
    xp = get_array_module(x)
    z = x - xp.max(x, axis=ax, keepdims=True)
    e = xp.exp(z)
    s = xp.sum(e, axis=ax, keepdims=True)
    z -= xp.log(s)
    if not want_p:
        return z, None
    e *= 1 / s
    return z, e


class NLLLoss(Function):
    """l_n = -w[y_n] x[n, y_n]; the mean divides by sum of w[y_n] over non-ignored n."""

    def forward(self, x, w=None):
        xp = get_array_module(x)
        ax = _class_axis("nll_loss", x.shape)
        c = x.shape[ax]
        _class_weight("nll_loss", w, c)
        valid, idx, safe = _index_target("nll_loss", x.shape, self.target, self.ignore_index)
        wy = valid.astype(x.dtype) if w is None else xp.where(valid, w[safe], 0).astype(x.dtype)
        loss = -wy * xp.take_along_axis(x, idx, axis=ax).squeeze(ax)
        self.ax, self.idx, self.wy, self.shape = ax, idx, wy, x.shape
        self.denom = wy.sum() if self.reduction == "mean" else None
        return _reduce(loss, self.reduction, self.denom)

    def backward(self, gy):
        xp = get_array_module(gy)
        g = _upstream(gy, self.reduction, self.wy.shape, self.denom)
        gx = xp.zeros(self.shape, g.dtype)
        xp.put_along_axis(gx, self.idx, xp.expand_dims(-self.wy * g, self.ax), axis=self.ax)
        return gx, None


class CrossEntropy(Function):
    """log-softmax + NLL in one op, for class-index (``self.index``) or probability targets.

    With the effective target q (one-hot or probabilities, label-smoothed, class-weighted),
    l = -sum_c q_c log p_c and dl/dx = p * sum_c q_c - q (= p - q without class weights).

    Forward computes the softmax once (one ``exp``) and, when x needs a gradient, leaves
    ``G = p * sum_c q_c - q`` (scaled by 1/N for the plain mean) ready, so backward is one
    multiply by the upstream gradient (a scalar, or one value per sample for 'none').
    """

    def forward(self, x, t=None, w=None):
        xp = get_array_module(x)
        self.rows = None
        need_x = self.needs_input_grad[0]
        if (self.index is not None and w is None and x.ndim == 2 and not self.label_smoothing
                and self.reduction != "none" and self._plain_targets(x.shape)):
            # the classifier case ((N, C) logits, in-range class indices, no weights or
            # smoothing): plain row/column indexing, a fraction of the general path's calls
            n = x.shape[0]
            self.rows = rows = xp.arange(n)
            m = xp.max(x, axis=1)
            if x.dtype.itemsize >= 4 and -_EXP_SAFE < m.min() and m.max() < _EXP_SAFE:
                # exp(x) cannot overflow and each row's largest term stays a normal float, so
                # the max-shift (a full broadcast pass) changes nothing: softmax is
                # shift-invariant
                e, lse = xp.exp(x), 0
            else:
                e, lse = xp.exp(x - m[:, None]), m
            s = xp.einsum("nc->n", e)
            lse = xp.log(s) + lse  # log sum_c exp(x_nc)
            total = (lse - x[rows, self.index]).sum()
            scale = 1 / n if self.reduction == "mean" else 1
            self.grad = None
            if need_x:
                e *= (scale / s)[:, None]
                e[rows, self.index] -= x.dtype.type(scale)
                self.grad = e  # (softmax - onehot) / N
            return xp.asarray(total * scale, dtype=x.dtype)
        ax = _class_axis("cross_entropy", x.shape)
        c = x.shape[ax]
        _class_weight("cross_entropy", w, c)
        eps = self.label_smoothing
        logp, p = _log_softmax_and_softmax(x, ax, need_x)
        self.ax, self.shape = ax, x.shape
        w_b = None if w is None else _along(w, ax, x.ndim)
        self.w_b = w_b
        if self.index is None:  # probability targets
            _check_same_shape("cross_entropy", x, t)
            q = t * (1 - eps) + eps / c if eps > 0 else t
            if w_b is not None:
                q = q * w_b
            loss = -xp.sum(logp * q, axis=ax)
            self.grad = p * xp.sum(q, axis=ax, keepdims=True) - q if need_x else None
            self.logp = logp if self.needs_input_grad[1] else None  # the target's gradient
            # PyTorch averages over the samples (and pixels), never over class weights
            self.denom = x.size // c if x.size else 0
            return _reduce(loss, self.reduction, self.denom)

        valid, idx, safe = _index_target("cross_entropy", x.shape, self.index,
                                         self.ignore_index)
        wy = valid.astype(x.dtype) if w is None else xp.where(valid, w[safe], 0).astype(x.dtype)
        loss = -(1 - eps) * wy * xp.take_along_axis(logp, idx, axis=ax).squeeze(ax)
        if eps > 0:
            smooth = -xp.sum(logp if w_b is None else logp * w_b, axis=ax)
            loss = loss + (eps / c) * xp.where(valid, smooth, 0)
        if need_x:
            # sum_c q_c per sample: (1 - eps) w[y] + eps/C sum(w) (= 1 without class weights)
            w_total = c if w is None else w.sum()
            qsum = (1 - eps) * wy + (eps / c) * w_total * valid
            p *= xp.expand_dims(qsum.astype(p.dtype, copy=False), ax)
            picked = xp.take_along_axis(p, idx, axis=ax)
            xp.put_along_axis(p, idx, picked - xp.expand_dims((1 - eps) * wy, ax), axis=ax)
            if eps > 0:
                spread = xp.expand_dims(valid.astype(p.dtype), ax) * (eps / c)
                p -= spread if w_b is None else spread * w_b
        self.grad, self.wy = p, wy
        self.denom = wy.sum() if self.reduction == "mean" else None
        return _reduce(loss, self.reduction, self.denom)

    def _plain_targets(self, shape) -> bool:
        n, c = shape
        t = self.index
        return (t.shape == (n,) and n > 0 and not 0 <= self.ignore_index < c
                and int(t.min()) >= 0 and int(t.max()) < c)

    def backward(self, gy):
        xp = get_array_module(gy)
        if self.rows is not None:
            return self.grad * gy, None, None
        ax, eps = self.ax, self.label_smoothing
        if self.index is None:
            per_sample = self.shape[:ax] + self.shape[ax + 1:]
            g = xp.expand_dims(_upstream(gy, self.reduction, per_sample, self.denom), ax)
            gx = gt = None
            if self.needs_input_grad[0]:
                gx = g * self.grad
            if self.needs_input_grad[1]:
                gt = -g * self.logp * (1 - eps)
                if self.w_b is not None:
                    gt = gt * self.w_b
            return gx, gt, None
        g = _upstream(gy, self.reduction, self.wy.shape, self.denom)
        return self.grad * xp.expand_dims(g, ax), None, None


# ------------------------------------------------------------------ public functions
def mse_loss(input, target, *, reduction: str = "mean", weight=None) -> Tensor:  # noqa: A002
    """Mean squared error: l_i = w_i (x_i - t_i)^2, reduced.

    dl/dx_i = 2 w_i (x_i - t_i) (divided by n for the mean).

    The lecture's squared loss is E = 1/2 sum_i (y_i - t_i)^2, whose gradient is (y - t); this
    function follows PyTorch (no 1/2), so its gradient is twice that: with ``reduction='sum'``,
    ``0.5 * mse_loss(y, t, reduction='sum')`` is the lecture's E exactly.

    Args:
        input: predictions, any shape.
        target: same shape as ``input`` (gradients flow into it too when it requires grad).
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
        weight: optional per-element weights (broadcastable to the input); the mean is then
            sum(w l) / sum(w), as in PyTorch.

    Shape:
        input, target: (*). Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.mse_loss(fb.tensor([1.0, 2.0]), fb.tensor([0.0, 0.0])).item()
        2.5
    """
    _check_reduction("mse_loss", reduction)
    return MSELoss.apply(input, _target_operand(target), _const(weight), reduction=reduction)


def l1_loss(input, target, *, reduction: str = "mean", weight=None) -> Tensor:  # noqa: A002
    """Mean absolute error: l_i = w_i |x_i - t_i|, reduced.

    dl/dx_i = w_i sign(x_i - t_i) (subgradient 0 where x_i = t_i, as PyTorch).

    Args:
        input: predictions, any shape.
        target: same shape as ``input``.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
        weight: optional per-element weights; the mean is sum(w l) / sum(w).

    Shape:
        input, target: (*). Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.l1_loss(fb.tensor([1.0, -3.0]), fb.tensor([0.0, 0.0])).item()
        2.0
    """
    _check_reduction("l1_loss", reduction)
    return L1Loss.apply(input, _target_operand(target), _const(weight), reduction=reduction)


def smooth_l1_loss(input, target, *, reduction: str = "mean",  # noqa: A002
                   beta: float = 1.0) -> Tensor:
    """Smooth L1: quadratic near zero, linear beyond ``beta``.

    With d = x - t: l = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta;
    dl/dx = d / beta inside, sign(d) outside. ``beta = 0`` is the L1 loss.

    Args:
        input: predictions, any shape.
        target: same shape as ``input``.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
        beta: where the quadratic zone ends (>= 0).

    Shape:
        input, target: (*). Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> x, t = fb.tensor([0.5, 3.0]), fb.tensor([0.0, 0.0])
        >>> F.smooth_l1_loss(x, t, reduction="none").tolist()
        [0.125, 2.5]
    """
    _check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    return SmoothL1Loss.apply(input, _target_operand(target), None, reduction=reduction,
                              beta=float(beta))


def huber_loss(input, target, *, reduction: str = "mean", delta: float = 1.0,  # noqa: A002
               weight=None) -> Tensor:
    """Huber loss: quadratic near zero, linear with slope ``delta`` beyond it.

    With d = x - t: l = 0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta);
    dl/dx = clip(d, -delta, delta). Equals ``delta * smooth_l1_loss(beta=delta)``.

    Args:
        input: predictions, any shape.
        target: same shape as ``input``.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
        delta: where the quadratic zone ends (> 0).
        weight: optional per-element weights (the mean stays the plain mean of w l, as
            PyTorch).

    Shape:
        input, target: (*). Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.huber_loss(fb.tensor([0.5, 3.0]), fb.tensor([0.0, 0.0]), reduction="none").tolist()
        [0.125, 2.5]
    """
    _check_reduction("huber_loss", reduction)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    return HuberLoss.apply(input, _target_operand(target), _const(weight), reduction=reduction,
                           delta=float(delta))


def cross_entropy(input, target, weight=None, *, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits against class indices or class probabilities.

    log-softmax and the negative log-likelihood in one op (stable for any logit size):
    log p = x - logsumexp(x) over the class dimension (dim 1, or dim 0 for a (C,) input).

    - Class-index targets y: l_n = -w[y_n] log p[n, y_n]; with label smoothing eps,
      l_n = (1 - eps) w[y_n] (-log p[n, y_n]) + eps/C sum_c w_c (-log p[n, c]).
      Samples with y_n = ``ignore_index`` contribute 0; ``'mean'`` divides by
      sum_n w[y_n] over the non-ignored samples (the count of them without weights).
    - Probability targets t (same shape as the input): q = (1 - eps) t + eps/C,
      l_n = -sum_c w_c q[n, c] log p[n, c]; ``'mean'`` divides by the number of samples
      (N times the spatial size), not by the weights.

    Backward: dl/dx = p * sum_c q_c - q with q the weighted, smoothed one-hot/probability
    target, i.e. softmax - target for unweighted targets.

    Args:
        input: logits (N, C), (N, C, d1, ...) for per-pixel classes, or (C,).
        target: int class indices (N,), (N, d1, ...) or (), or float probabilities with the
            input's shape.
        weight: optional per-class weights (C,).
        ignore_index: class-index value to skip (index targets only).
        reduction: ``'mean'`` | ``'sum'`` | ``'none'`` (per sample / pixel losses).
        label_smoothing: eps in [0, 1].

    Shape:
        input: (N, C, *) or (C,). target: (N, *) or () of ints, or (N, C, *) of floats.
        Output: scalar, or (N, *) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> round(F.cross_entropy(fb.tensor([[0.0, 0.0]]), fb.tensor([1])).item(), 4)
        0.6931
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    t = _array(target)
    eps = float(label_smoothing)
    if t.dtype.kind in "iu":
        return CrossEntropy.apply(input, None, _const(weight), index=t.astype(np.int64),
                                  ignore_index=int(ignore_index), reduction=reduction,
                                  label_smoothing=eps)
    if t.dtype.kind != "f":
        raise TypeError(f"cross_entropy: target must hold int class indices or float "
                        f"probabilities, got dtype {t.dtype}")
    shape = tuple(_array(input).shape)
    if tuple(t.shape) != shape:
        index_shape = shape[:1] + shape[2:] if len(shape) >= 2 else ()
        raise ValueError(f"cross_entropy: target shape {tuple(t.shape)} does not match input "
                         f"shape {shape}: float targets (dtype {t.dtype}) are read as class "
                         f"probabilities, which need the input's shape {shape}; class indices "
                         f"must be integers of shape {index_shape} (e.g. y.long() or "
                         f"y.astype(np.int64))")
    if ignore_index != -100:
        raise ValueError("cross_entropy: ignore_index is only supported with class-index "
                         f"targets, got probability targets of dtype {t.dtype}")
    return CrossEntropy.apply(input, _target_operand(target), _const(weight), index=None,
                              ignore_index=int(ignore_index), reduction=reduction,
                              label_smoothing=eps)


def nll_loss(input, target, weight=None, *, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (e.g. the output of ``log_softmax``).

    l_n = -w[y_n] x[n, y_n]; ignored targets contribute 0; ``'mean'`` divides by
    sum_n w[y_n] over the non-ignored samples. dl/dx[n, c] = -w[y_n] [c = y_n].

    Args:
        input: log-probabilities (N, C), (N, C, d1, ...) or (C,).
        target: int class indices (N,), (N, d1, ...) or ().
        weight: optional per-class weights (C,).
        ignore_index: target value to skip.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Shape:
        input: (N, C, *) or (C,). target: (N, *) or (). Output: scalar, or (N, *) for
        ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.nll_loss(fb.tensor([[-1.0, -2.0]]), fb.tensor([1])).item()
        2.0
    """
    _check_reduction("nll_loss", reduction)
    t = _array(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold int class indices, got dtype {t.dtype}")
    return NLLLoss.apply(input, _const(weight), target=t.astype(np.int64),
                         ignore_index=int(ignore_index), reduction=reduction)


def binary_cross_entropy(input, target, weight=None, *,  # noqa: A002
                         reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities: l = -w [t log p + (1 - t) log(1 - p)].

    Each log is clamped to >= -100 (as PyTorch) so p = 0 or 1 gives a finite loss.
    dl/dp = w (p - t) / max(p (1 - p), 1e-12); dl/dt = w (log(1 - p) - log p) (clamped logs).
    Prefer :func:`binary_cross_entropy_with_logits` on raw scores: it is exact where this one
    saturates.

    Args:
        input: probabilities in [0, 1], any shape.
        target: same shape, values in [0, 1].
        weight: optional rescaling weight, broadcastable to the input.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Shape:
        input, target: (*). Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> round(F.binary_cross_entropy(fb.tensor([0.5]), fb.tensor([1.0])).item(), 4)
        0.6931
    """
    _check_reduction("binary_cross_entropy", reduction)
    return BinaryCrossEntropy.apply(input, _target_operand(target), _const(weight),
                                    reduction=reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, *,  # noqa: A002
                                     reduction: str = "mean", pos_weight=None,
                                     ignore_index: float | None = None) -> Tensor:
    """Sigmoid + binary cross-entropy on logits, computed stably (multi-label ready).

    l = w [(1 - t) x + (1 + (pw - 1) t) softplus(-x)], which equals
    -w [pw t log sigma(x) + (1 - t) log(1 - sigma(x))]; softplus(-x) = log1p(e^-|x|) +
    max(-x, 0) never overflows. dl/dx = w [(1 - t) - (1 + (pw - 1) t) sigma(-x)]
    (= w (sigma(x) - t) without ``pos_weight``).

    Unknown labels (the lecture's y = [1 1 ? 0]): with ``ignore_index`` set, every target
    equal to it, and every NaN target, is left out. Such an entry has loss 0 and no gradient
    (input or target), and ``'mean'`` divides by the number of *known* entries, so
    ``reduction='mean'`` is exactly the mean BCE over the known labels (NaN when none is
    known, as ``cross_entropy`` with every target ignored). Without ``ignore_index``
    (PyTorch's behaviour) a NaN target gives a NaN loss.

    Args:
        input: logits, any shape.
        target: same shape, values in [0, 1] (several labels may be 1 at once), or
            ``ignore_index`` / NaN for unknown labels.
        weight: optional rescaling weight, broadcastable to the input.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
        pos_weight: weight of the positive term per class, broadcast along the last
            dimension (shape (C,) for (N, C) inputs); > 1 raises recall.
        ignore_index: target value meaning "unknown" (e.g. -1), or None (default: every
            target counts). Not in PyTorch, whose loss has no such option.

    Shape:
        input, target: (*). Output: scalar, or (*) for ``'none'``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> round(F.binary_cross_entropy_with_logits(fb.tensor([0.0]), fb.tensor([1.0])).item(), 4)
        0.6931
        >>> x = fb.tensor([[2.0, 1.0, 0.5, -1.0]])
        >>> y = fb.tensor([[1.0, 1.0, -1.0, 0.0]])  # y = [1 1 ? 0]
        >>> masked = F.binary_cross_entropy_with_logits(x, y, ignore_index=-1)
        >>> known = F.binary_cross_entropy_with_logits(x[:, [0, 1, 3]], y[:, [0, 1, 3]])
        >>> round(masked.item(), 6) == round(known.item(), 6)
        True
    """
    name = "binary_cross_entropy_with_logits"
    _check_reduction(name, reduction)
    if ignore_index is not None:
        if isinstance(ignore_index, bool) or not isinstance(
                ignore_index, int | float | np.integer | np.floating):
            raise TypeError(f"{name}: ignore_index must be a number or None, got "
                            f"{type(ignore_index).__name__}")
        ignore_index = float(ignore_index)
    return BinaryCrossEntropyWithLogits.apply(input, _target_operand(target), _const(weight),
                                              _const(pos_weight), reduction=reduction,
                                              ignore_index=ignore_index)
