"""Reductions: sum, mean, var, max, min, argmax/argmin, logsumexp, softmax, log_softmax.

``axis`` is an int, a tuple of ints or None (all axes); negative axes count from the end.
The Tensor methods also accept PyTorch's ``dim=`` / ``keepdim=`` spellings.
"""

from __future__ import annotations

import builtins

import numpy as np

from filterbank.autograd.function import Function
from filterbank.backend import xp
from filterbank.tensor import Tensor


def normalize_axes(axis, ndim: int, name: str = "reduce") -> tuple[int, ...]:
    """``None`` -> all axes; ints/tuples -> sorted non-negative tuple; checks bounds.

    As in PyTorch, a 0-d tensor accepts axis 0 and -1 (both mean "no axis").
    """
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    n = builtins.max(ndim, 1)
    out = []
    for a in axes:
        if not isinstance(a, int | np.integer) or not -n <= a < n:
            raise ValueError(f"{name}: axis {a!r} is out of range for a tensor with {ndim} dims")
        out.append(int(a) % n)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated axis in {axis}")
    return tuple(sorted(out)) if ndim else ()


def _count(shape, axes) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _keep(gy, shape, axes, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input."""
    if keepdims or not axes:
        return gy
    return gy.reshape([1 if i in axes else s for i, s in enumerate(shape)])


def _drop(y, shape, axes, keepdims):
    """Remove the kept reduced axes unless ``keepdims``."""
    if keepdims:
        return y
    return y.reshape([s for i, s in enumerate(shape) if i not in axes])


class Sum(Function):
    def forward(self, x):
        self.shape = x.shape
        return xp.sum(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        return xp.broadcast_to(_keep(gy, self.shape, self.axes, self.keepdims), self.shape)


class Mean(Function):
    def forward(self, x):
        self.shape = x.shape
        self.n = _count(x.shape, self.axes)
        return xp.mean(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        g = _keep(gy, self.shape, self.axes, self.keepdims) / builtins.max(self.n, 1)
        return xp.broadcast_to(g, self.shape)


class Var(Function):
    """var = sum((x - mean)^2) / (N - correction);  d/dx = 2 (x - mean) / (N - correction)."""

    def forward(self, x):
        self.shape = x.shape
        # N - correction <= 0 gives nan/inf (as PyTorch), without NumPy's warning
        self.denom = float(builtins.max(_count(x.shape, self.axes) - self.correction, 0))
        self.xc = x - xp.mean(x, axis=self.axes, keepdims=True)
        ss = xp.sum(self.xc * self.xc, axis=self.axes, keepdims=self.keepdims)
        with np.errstate(divide="ignore", invalid="ignore"):
            return ss / self.denom if self.denom else ss * np.nan

    def backward(self, gy):
        g = _keep(gy, self.shape, self.axes, self.keepdims)
        scale = 2.0 / self.denom if self.denom else np.nan
        return g * self.xc * scale


class MaxMin(Function):
    """max / min over axes. Ties share the gradient equally (as PyTorch's ``amax``/``amin``)."""

    def forward(self, x):
        y = (xp.max if self.is_max else xp.min)(x, axis=self.axes, keepdims=True)
        self.mask = x == y
        self.shape = x.shape
        return _drop(y, x.shape, self.axes, self.keepdims)

    def backward(self, gy):
        g = _keep(gy, self.shape, self.axes, self.keepdims)
        count = self.mask.sum(axis=self.axes, keepdims=True).astype(gy.dtype)
        return self.mask * (g / count)


class LogSumExp(Function):
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))), m = max: stable at |x| ~ 1000."""

    def forward(self, x):
        m = xp.max(x, axis=self.axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # an all -inf slice gives -inf, not nan
        e = xp.exp(x - m)
        s = xp.sum(e, axis=self.axes, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = xp.log(s) + m
            self.p = e / s
        self.shape = x.shape
        return _drop(y, x.shape, self.axes, self.keepdims)

    def backward(self, gy):
        return _keep(gy, self.shape, self.axes, self.keepdims) * self.p


class Softmax(Function):
    """y_i = exp(x_i - max) / sum_j exp(x_j - max);  dx = y * (gy - sum(gy * y))."""

    def forward(self, x):
        e = xp.exp(x - xp.max(x, axis=self.axis, keepdims=True))
        self.y = e / xp.sum(e, axis=self.axis, keepdims=True)
        return self.y

    def backward(self, gy):
        y = self.y
        return y * (gy - xp.sum(gy * y, axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x - logsumexp(x);  dx = gy - softmax(x) * sum(gy)."""

    def forward(self, x):
        z = x - xp.max(x, axis=self.axis, keepdims=True)
        y = z - xp.log(xp.sum(xp.exp(z), axis=self.axis, keepdims=True))
        self.y = y
        return y

    def backward(self, gy):
        return gy - xp.exp(self.y) * xp.sum(gy, axis=self.axis, keepdims=True)


def _x(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def sum(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis``.

    ``y = sum_i x_i``; backward: ``dL/dx_i = dL/dy`` (the gradient is broadcast back).

    Args:
        x: input tensor.
        axis: int, tuple of ints, or None (default: all axes).
        keepdims: keep the reduced axes with size 1 (default False).

    Shape:
        Input ``(d_0, ..., d_n)``; output drops (or, with ``keepdims``, sets to 1) ``axis``.

    Example:
        >>> import filterbank as fb
        >>> fb.sum(fb.ones(2, 3), axis=1).tolist()
        [3.0, 3.0]
    """
    x = _x(x)
    return Sum.apply(x, axes=normalize_axes(axis, x.ndim, "sum"), keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis``.

    ``y = (1/N) sum_i x_i``; backward: ``dL/dx_i = dL/dy / N``.

    Args:
        x: input tensor.
        axis: int, tuple of ints, or None (default: all axes).
        keepdims: keep the reduced axes with size 1 (default False).

    Shape:
        As :func:`sum`.

    Example:
        >>> import filterbank as fb
        >>> fb.mean(fb.tensor([[1.0, 2.0], [3.0, 5.0]]), axis=0).tolist()
        [2.0, 3.5]
    """
    x = _x(x)
    return Mean.apply(x, axes=normalize_axes(axis, x.ndim, "mean"), keepdims=keepdims)


def var(x, axis=None, keepdims: bool = False, correction: int = 1) -> Tensor:
    """Variance over ``axis``, Bessel-corrected by default (as ``torch.var``).

    ``y = sum_i (x_i - mean)^2 / (N - correction)``; backward:
    ``dL/dx_i = dL/dy * 2 (x_i - mean) / (N - correction)``. ``N <= correction`` gives nan.

    Args:
        x: input tensor.
        axis: int, tuple of ints, or None (default: all axes).
        keepdims: keep the reduced axes with size 1 (default False).
        correction: 1 for the sample variance (default), 0 for the population variance.

    Shape:
        As :func:`sum`.

    Example:
        >>> import filterbank as fb
        >>> fb.var(fb.tensor([1.0, 2.0, 3.0])).item()
        1.0
    """
    x = _x(x)
    return Var.apply(x, axes=normalize_axes(axis, x.ndim, "var"), keepdims=keepdims,
                     correction=correction)


def max(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis`` (values only, like ``torch.amax``).

    Backward: ``dL/dx_i = dL/dy / k`` for the ``k`` entries equal to the maximum, else 0
    (ties share the gradient equally).

    Args:
        x: input tensor (not empty).
        axis: int, tuple of ints, or None (default: all axes).
        keepdims: keep the reduced axes with size 1 (default False).

    Shape:
        As :func:`sum`.

    Example:
        >>> import filterbank as fb
        >>> fb.max(fb.tensor([[1.0, 4.0], [3.0, 2.0]]), axis=1).tolist()
        [4.0, 3.0]
    """
    return _maxmin(x, axis, keepdims, True)


def min(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis`` (values only, like ``torch.amin``); ties share the gradient.

    Args:
        x: input tensor (not empty).
        axis: int, tuple of ints, or None (default: all axes).
        keepdims: keep the reduced axes with size 1 (default False).

    Shape:
        As :func:`sum`.

    Example:
        >>> import filterbank as fb
        >>> fb.min(fb.tensor([[1.0, 4.0], [3.0, 2.0]]), axis=1).tolist()
        [1.0, 2.0]
    """
    return _maxmin(x, axis, keepdims, False)


def _maxmin(x, axis, keepdims, is_max):
    x = _x(x)
    name = "max" if is_max else "min"
    axes = normalize_axes(axis, x.ndim, name)
    if x.data.size == 0:
        raise ValueError(f"{name}: expected a non-empty tensor, got shape {x.shape}")
    return MaxMin.apply(x, axes=axes, keepdims=keepdims, is_max=is_max)


def _arg(x, axis, keepdims, name, f):
    a = x.data if isinstance(x, Tensor) else xp.asarray(x)
    if axis is not None:
        axes = normalize_axes(axis, a.ndim, name)
        axis = axes[0] if axes else None
    if a.size == 0:
        raise ValueError(f"{name}: expected a non-empty tensor, got shape {a.shape}")
    return Tensor._wrap(xp.asarray(f(a, axis=axis, keepdims=keepdims), dtype=np.int64))


def argmax(x, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the maximum along ``axis`` (of the flattened tensor when None); the first one
    on ties. An int64 tensor with no gradient.

    Example:
        >>> import filterbank as fb
        >>> fb.argmax(fb.tensor([[1.0, 4.0], [3.0, 2.0]]), axis=1).tolist()
        [1, 0]
    """
    return _arg(x, axis, keepdims, "argmax", xp.argmax)


def argmin(x, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the minimum along ``axis`` (first one on ties); int64, no gradient.

    Example:
        >>> import filterbank as fb
        >>> fb.argmin(fb.tensor([[1.0, 4.0], [3.0, 2.0]]), axis=1).tolist()
        [0, 1]
    """
    return _arg(x, axis, keepdims, "argmin", xp.argmin)


def logsumexp(x, axis=None, keepdims: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` over ``axis``, stable for large ``|x|``.

    Computed as ``m + log(sum(exp(x - m)))`` with ``m = max(x)``; backward:
    ``dL/dx_i = dL/dy * softmax(x)_i``.

    Args:
        x: input tensor.
        axis: int, tuple of ints, or None (default: all axes).
        keepdims: keep the reduced axes with size 1 (default False).

    Shape:
        As :func:`sum`.

    Example:
        >>> import filterbank as fb
        >>> round(fb.logsumexp(fb.tensor([1000.0, 1000.0])).item(), 2)
        1000.69
    """
    x = _x(x)
    return LogSumExp.apply(x, axes=normalize_axes(axis, x.ndim, "logsumexp"), keepdims=keepdims)


def _softmax_axis(x, axis, name):
    axes = normalize_axes(axis, x.ndim, name)
    return axes[0] if axes else None  # a 0-d tensor: softmax over its single element


def softmax(x, axis: int = -1) -> Tensor:
    """Softmax along ``axis``, stable for logits of any size (the max is subtracted first).

    ``y_i = exp(x_i - m) / sum_j exp(x_j - m)``; backward:
    ``dL/dx = y * (dL/dy - sum_j(dL/dy_j * y_j))``.

    Args:
        x: input tensor.
        axis: the axis that sums to 1 (default -1).

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.softmax(fb.tensor([1000.0, 1000.0])).tolist()
        [0.5, 0.5]
    """
    x = _x(x)
    return Softmax.apply(x, axis=_softmax_axis(x, axis, "softmax"))


def log_softmax(x, axis: int = -1) -> Tensor:
    """``log(softmax(x))`` along ``axis``, computed as ``x - logsumexp(x)`` (stable).

    Backward: ``dL/dx = dL/dy - softmax(x) * sum_j dL/dy_j``.

    Args:
        x: input tensor.
        axis: the axis to normalise over (default -1).

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.log_softmax(fb.tensor([-1000.0, 1000.0])).tolist()
        [-2000.0, 0.0]
    """
    x = _x(x)
    return LogSoftmax.apply(x, axis=_softmax_axis(x, axis, "log_softmax"))
