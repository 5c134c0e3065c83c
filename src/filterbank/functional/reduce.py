"""Reductions: sum, mean, var, max, min, argmax/argmin, logsumexp, softmax, log_softmax."""

from __future__ import annotations

import numpy as np

from filterbank.autograd.function import Function
from filterbank.backend import xp
from filterbank.tensor import Tensor


def normalize_axes(axis, ndim: int, name: str = "reduce") -> tuple[int, ...]:
    """``None`` -> all axes; ints/tuples -> sorted non-negative tuple; checks bounds."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{name}: axis {a} is out of range for a tensor with {ndim} dims")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated axis in {axis}")
    return tuple(sorted(out))


def _keep(gy, shape, axes, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input."""
    if keepdims or not axes:
        return gy
    kshape = [1 if i in axes else s for i, s in enumerate(shape)]
    return gy.reshape(kshape)


class Sum(Function):
    def forward(self, x):
        self.shape = x.shape
        return xp.sum(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        return xp.broadcast_to(_keep(gy, self.shape, self.axes, self.keepdims), self.shape)


class Mean(Function):
    def forward(self, x):
        self.shape = x.shape
        self.n = int(np.prod([x.shape[a] for a in self.axes]))
        return xp.mean(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        g = _keep(gy, self.shape, self.axes, self.keepdims) / gy.dtype.type(max(self.n, 1))
        return xp.broadcast_to(g, self.shape)


class Var(Function):
    """var = sum((x - mean)^2) / (N - correction);  d/dx = 2 (x - mean) / (N - correction)."""

    def forward(self, x):
        self.shape = x.shape
        n = int(np.prod([x.shape[a] for a in self.axes]))
        self.denom = x.dtype.type(max(n - self.correction, 0))
        self.xc = x - xp.mean(x, axis=self.axes, keepdims=True)
        return xp.sum(self.xc * self.xc, axis=self.axes, keepdims=self.keepdims) / self.denom

    def backward(self, gy):
        g = _keep(gy, self.shape, self.axes, self.keepdims)
        return g * self.xc * (2 / self.denom)


class MaxMin(Function):
    """max / min. Ties share the gradient equally (as PyTorch's ``amax``/``amin``)."""

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"{'max' if self.is_max else 'min'}: empty tensor")
        f = xp.max if self.is_max else xp.min
        y = f(x, axis=self.axes, keepdims=True)
        self.mask = x == y
        self.shape = x.shape
        return y if self.keepdims else y.reshape([s for i, s in enumerate(x.shape)
                                                  if i not in self.axes])

    def backward(self, gy):
        g = _keep(gy, self.shape, self.axes, self.keepdims)
        count = self.mask.sum(axis=self.axes, keepdims=True).astype(gy.dtype)
        return self.mask * (g / count)


class LogSumExp(Function):
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))), m = max: stable at |x| ~ 1000."""

    def forward(self, x):
        m = xp.max(x, axis=self.axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        e = xp.exp(x - m)
        s = xp.sum(e, axis=self.axes, keepdims=True)
        y = xp.log(s) + m
        self.p = e / s
        self.shape = x.shape
        return y if self.keepdims else y.reshape([s for i, s in enumerate(x.shape)
                                                  if i not in self.axes])

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
    """Sum over ``axis`` (int, tuple or None for all)."""
    x = _x(x)
    return Sum.apply(x, axes=normalize_axes(axis, x.ndim, "sum"), keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis``."""
    x = _x(x)
    return Mean.apply(x, axes=normalize_axes(axis, x.ndim, "mean"), keepdims=keepdims)


def var(x, axis=None, keepdims: bool = False, correction: int = 1) -> Tensor:
    """Variance with Bessel's correction by default (``correction=1``, as ``torch.var``)."""
    x = _x(x)
    return Var.apply(x, axes=normalize_axes(axis, x.ndim, "var"), keepdims=keepdims,
                     correction=correction)


def max(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; ties share the gradient equally."""
    x = _x(x)
    return MaxMin.apply(x, axes=normalize_axes(axis, x.ndim, "max"), keepdims=keepdims,
                        is_max=True)


def min(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis``; ties share the gradient equally."""
    x = _x(x)
    return MaxMin.apply(x, axes=normalize_axes(axis, x.ndim, "min"), keepdims=keepdims,
                        is_max=False)


def argmax(x, axis=None, keepdims: bool = False) -> Tensor:
    """Index of the maximum (first one on ties); an int64 tensor with no gradient."""
    a = x.data if isinstance(x, Tensor) else xp.asarray(x)
    return Tensor._wrap(xp.asarray(xp.argmax(a, axis=axis, keepdims=keepdims), dtype=np.int64))


def argmin(x, axis=None, keepdims: bool = False) -> Tensor:
    a = x.data if isinstance(x, Tensor) else xp.asarray(x)
    return Tensor._wrap(xp.asarray(xp.argmin(a, axis=axis, keepdims=keepdims), dtype=np.int64))


def logsumexp(x, axis=None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``axis``, stable for large |x|."""
    x = _x(x)
    return LogSumExp.apply(x, axes=normalize_axes(axis, x.ndim, "logsumexp"), keepdims=keepdims)


def softmax(x, axis: int = -1) -> Tensor:
    """Softmax along ``axis`` (stable: the max is subtracted first)."""
    x = _x(x)
    return Softmax.apply(x, axis=normalize_axes(axis, x.ndim, "softmax")[0])


def log_softmax(x, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed as x - logsumexp(x) (stable)."""
    x = _x(x)
    return LogSoftmax.apply(x, axis=normalize_axes(axis, x.ndim, "log_softmax")[0])
