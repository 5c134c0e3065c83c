"""Reductions: sum, mean, var, max, min, argmax/argmin, logsumexp, softmax, log_softmax.

``axis`` is an int, a tuple of ints or None (all axes); negative axes count from the end.
The Tensor methods also accept PyTorch's ``dim=`` / ``keepdim=`` spellings.
"""

from __future__ import annotations

import builtins
import collections

import numpy as np

from filterbank.autograd.function import Function
from filterbank.backend import get_array_module, xp
from filterbank.functional._dims import dim_alias
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


@dim_alias
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


@dim_alias
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


@dim_alias
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


@dim_alias
def amax(x, axis=None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis`` (values only, as ``torch.amax``).

    Backward: ``dL/dx_i = dL/dy / k`` for the ``k`` entries equal to the maximum, else 0
    (ties share the gradient equally).

    Args:
        x: input tensor (not empty).
        axis: int, tuple of ints, or None (default: all axes); ``dim`` is an alias.
        keepdims: keep the reduced axes with size 1 (default False); ``keepdim`` is an alias.

    Shape:
        As :func:`sum`.

    Example:
        >>> import filterbank as fb
        >>> fb.amax(fb.tensor([[1.0, 4.0], [3.0, 2.0]]), dim=1).tolist()
        [4.0, 3.0]
    """
    return _maxmin(x, axis, keepdims, True)


@dim_alias
def amin(x, axis=None, keepdims: bool = False) -> Tensor:
    """Minimum over ``axis`` (values only, as ``torch.amin``); ties share the gradient.

    Args:
        x: input tensor (not empty).
        axis: int, tuple of ints, or None (default: all axes); ``dim`` is an alias.
        keepdims: keep the reduced axes with size 1 (default False).

    Shape:
        As :func:`sum`.

    Example:
        >>> import filterbank as fb
        >>> fb.amin(fb.tensor([[1.0, 4.0], [3.0, 2.0]]), dim=1).tolist()
        [1.0, 2.0]
    """
    return _maxmin(x, axis, keepdims, False)


@dim_alias
def max(x, dim=None, keepdim: bool = False):  # noqa: A001
    """PyTorch's ``max``: the largest element, the maxima along ``dim`` with their indices,
    or the elementwise maximum of two tensors.

    * ``max(x)``: a 0-d tensor (ties share the gradient, as ``amax``);
    * ``max(x, dim, keepdim=False)``: a named tuple ``(values, indices)``, so
      ``_, pred = out.max(1)`` works; the index is the first maximum, and the gradient goes
      to that element only (as in PyTorch);
    * ``max(x, other)``: :func:`~filterbank.functional.maximum`.

    Args:
        x: input tensor (not empty).
        dim: an int (``axis`` is an alias), another tensor, or None.
        keepdim: keep ``dim`` with size 1 (``keepdims`` is an alias).

    Shape:
        ``values`` and ``indices`` (int64) have the input's shape without ``dim``.

    Example:
        >>> import filterbank as fb
        >>> values, indices = fb.max(fb.tensor([[1.0, 4.0], [3.0, 2.0]]), 1)
        >>> values.tolist(), indices.tolist()
        ([4.0, 3.0], [1, 0])
    """
    return _max_or_min(x, dim, keepdim, True)


@dim_alias
def min(x, dim=None, keepdim: bool = False):  # noqa: A001
    """PyTorch's ``min``: as :func:`max`, for the smallest elements (``(values, indices)``
    along ``dim``; ``min(x, other)`` is :func:`~filterbank.functional.minimum`).

    Example:
        >>> import filterbank as fb
        >>> fb.min(fb.tensor([[1.0, 4.0], [3.0, 2.0]]), dim=1).indices.tolist()
        [0, 1]
    """
    return _max_or_min(x, dim, keepdim, False)


def _max_or_min(x, dim, keepdim, is_max):
    name = "max" if is_max else "min"
    if isinstance(dim, Tensor | np.ndarray):
        from filterbank.functional import elementwise as ew

        return (ew.maximum if is_max else ew.minimum)(x, dim)
    if dim is None:
        if keepdim:
            raise TypeError(f"{name}(): keepdim needs a dim")
        return _maxmin(x, None, False, is_max)
    if not isinstance(dim, int | np.integer):
        raise TypeError(f"{name}(): dim must be an int (use amax/amin for several dims), got "
                        f"{dim!r}")
    x = _x(x)
    d = _one_axis(dim, x.ndim, name)
    if x.data.size == 0:
        raise ValueError(f"{name}: expected a non-empty tensor, got shape {x.shape}")
    arg = xp.argmax if is_max else xp.argmin
    idx = (arg(x.data, axis=d, keepdims=True) if x.ndim
           else get_array_module(x.data).zeros((), np.int64))
    return _indexed(name, x, idx, d, keepdim)


def _maxmin(x, axis, keepdims, is_max):
    x = _x(x)
    name = ("amax" if is_max else "amin") if axis is not None else ("max" if is_max else "min")
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
    out = f(a, axis=axis, keepdims=keepdims)  # a NumPy scalar for a full reduction
    return Tensor._wrap(get_array_module(a).asarray(out, dtype=np.int64))


@dim_alias
def argmax(x, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the maximum along ``axis`` (of the flattened tensor when None); the first one
    on ties. An int64 tensor with no gradient.

    Example:
        >>> import filterbank as fb
        >>> fb.argmax(fb.tensor([[1.0, 4.0], [3.0, 2.0]]), axis=1).tolist()
        [1, 0]
    """
    return _arg(x, axis, keepdims, "argmax", xp.argmax)


@dim_alias
def argmin(x, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the minimum along ``axis`` (first one on ties); int64, no gradient.

    Example:
        >>> import filterbank as fb
        >>> fb.argmin(fb.tensor([[1.0, 4.0], [3.0, 2.0]]), axis=1).tolist()
        [0, 1]
    """
    return _arg(x, axis, keepdims, "argmin", xp.argmin)


@dim_alias
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


@dim_alias
def softmax(x, axis: int = -1, dtype=None) -> Tensor:
    """Softmax along ``axis``, stable for logits of any size (the max is subtracted first).

    ``y_i = exp(x_i - m) / sum_j exp(x_j - m)``; backward:
    ``dL/dx = y * (dL/dy - sum_j(dL/dy_j * y_j))``.

    Args:
        x: input tensor.
        axis: the axis that sums to 1 (default -1; ``dim`` is an alias, as in
            ``F.softmax(x, dim=1)``).
        dtype: cast the input to this dtype first (PyTorch's argument).

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.softmax(fb.tensor([1000.0, 1000.0])).tolist()
        [0.5, 0.5]
    """
    x = _x(x) if dtype is None else _x(x).astype(dtype)
    return Softmax.apply(x, axis=_softmax_axis(x, axis, "softmax"))


@dim_alias
def log_softmax(x, axis: int = -1, dtype=None) -> Tensor:
    """``log(softmax(x))`` along ``axis``, computed as ``x - logsumexp(x)`` (stable).

    Backward: ``dL/dx = dL/dy - softmax(x) * sum_j dL/dy_j``.

    Args:
        x: input tensor.
        axis: the axis to normalise over (default -1; ``dim`` is an alias).
        dtype: cast the input to this dtype first.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.log_softmax(fb.tensor([-1000.0, 1000.0])).tolist()
        [-2000.0, 0.0]
    """
    x = _x(x) if dtype is None else _x(x).astype(dtype)
    return LogSoftmax.apply(x, axis=_softmax_axis(x, axis, "log_softmax"))


# ------------------------------------------------------------ reductions with indices
def _result_type(name: str):
    t = collections.namedtuple(name, ("values", "indices"))
    t.__doc__ = f"What ``{name}`` returns: ``(values, indices)``, as ``torch.return_types.{name}``."
    return t


RETURN_TYPES = {n: _result_type(n) for n in ("max", "min", "topk", "sort", "kthvalue",
                                              "median")}


def _one_axis(dim, ndim: int, name: str) -> int:
    axes = normalize_axes(dim, ndim, name)
    if len(axes) > 1:
        raise TypeError(f"{name}(): expected one dim, got {dim!r}")
    return axes[0] if axes else 0


class TakeAlong(Function):
    """``y = take_along_axis(x, idx, axis)`` for indices an op chose (max, sort, topk, ...);
    backward puts each gradient back at its index (the indices along ``axis`` are distinct,
    so no accumulation is needed)."""

    def forward(self, x):
        self.shape = x.shape
        y = xp.take_along_axis(x, self.idx, axis=self.axis)
        return y if self.keepdims else xp.squeeze(y, axis=self.axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, gy.dtype)
        xp.put_along_axis(gx, self.idx, gy.reshape(self.idx.shape), axis=self.axis)
        return gx


def _indexed(name: str, x: Tensor, idx, axis: int, keepdim: bool):
    """``(values, indices)`` of ``x`` at ``idx`` (kept-dims indices along ``axis``)."""
    if x.ndim == 0:
        zero = get_array_module(x.data).zeros((), np.int64)
        return RETURN_TYPES[name](x.clone(), Tensor._wrap(zero))
    idx = idx.astype(np.int64, copy=False)
    values = TakeAlong.apply(x, idx=idx, axis=axis, keepdims=keepdim)
    indices = idx if keepdim else xp.squeeze(idx, axis=axis)
    return RETURN_TYPES[name](values, Tensor._wrap(indices))


def _order_key(a, descending: bool):
    """An array whose ascending stable order is ``a``'s (descending) order."""
    if not descending:
        return a
    if a.dtype.kind in "bu":
        a = a.astype(np.int64)
    return -a


def _argsort(x: Tensor, axis: int, descending: bool):
    if x.ndim == 0:
        return get_array_module(x.data).zeros((), np.int64)
    return xp.argsort(_order_key(x.data, descending), axis=axis, kind="stable")


@dim_alias
def sort(x, dim: int = -1, descending: bool = False, stable: bool = False):
    """Sort along ``dim``; returns ``(values, indices)`` with ``x.gather(dim, indices) ==
    values``. The sort is always stable (equal elements keep their order, so ``stable`` is
    accepted for PyTorch's signature); backward puts each gradient back at its index.

    Args:
        x: input tensor.
        dim: the dim to sort (default -1; ``axis`` is an alias).
        descending: largest first.
        stable: accepted; every sort here is stable.

    Shape:
        ``values`` and ``indices`` (int64) have the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.sort(fb.tensor([3.0, 1.0, 2.0]), descending=True).indices.tolist()
        [0, 2, 1]
    """
    x = _x(x)
    d = _one_axis(dim, x.ndim, "sort")
    return _indexed("sort", x, _argsort(x, d, descending), d, True)


@dim_alias
def argsort(x, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``x`` along ``dim`` (stable); int64, no gradient.

    Example:
        >>> import filterbank as fb
        >>> fb.argsort(fb.tensor([3.0, 1.0, 2.0])).tolist()
        [1, 2, 0]
    """
    x = _x(x)
    return Tensor._wrap(_argsort(x, _one_axis(dim, x.ndim, "argsort"), descending)
                        .astype(np.int64, copy=False))


@dim_alias
def topk(x, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The ``k`` largest (or smallest) elements along ``dim``: ``(values, indices)``.

    Always sorted (largest first, or smallest first with ``largest=False``); among equal
    elements the lower index comes first. Backward puts each gradient back at its index.

    Args:
        x: input tensor.
        k: how many, ``0 <= k <= x.shape[dim]``.
        dim: default -1 (``axis`` is an alias).
        largest: the largest (default) or the smallest elements.
        sorted: accepted for PyTorch's signature; the result is always sorted.

    Shape:
        ``values`` and ``indices`` have the input's shape with ``k`` along ``dim``.

    Example:
        >>> import filterbank as fb
        >>> fb.topk(fb.tensor([1.0, 5.0, 3.0]), 2).indices.tolist()
        [1, 2]
    """
    x = _x(x)
    d = _one_axis(dim, x.ndim, "topk")
    n = x.shape[d] if x.ndim else 1
    if not isinstance(k, int | np.integer) or not 0 <= k <= n:
        raise ValueError(f"topk: k must be an int in [0, {n}] (the size of dim {dim}), got {k!r}")
    idx = _argsort(x, d, largest)
    if x.ndim:
        idx = idx[(builtins.slice(None),) * d + (builtins.slice(0, int(k)),)]
    return _indexed("topk", x, idx, d, True)


@dim_alias
def kthvalue(x, k: int, dim: int = -1, keepdim: bool = False):
    """The ``k``-th smallest element along ``dim`` (``k`` from 1): ``(values, indices)``.

    Example:
        >>> import filterbank as fb
        >>> fb.kthvalue(fb.tensor([3.0, 1.0, 2.0]), 2).values.item()
        2.0
    """
    x = _x(x)
    d = _one_axis(dim, x.ndim, "kthvalue")
    n = x.shape[d] if x.ndim else 1
    if not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise ValueError(f"kthvalue: k must be an int in [1, {n}] (the size of dim {dim}), "
                         f"got {k!r}")
    idx = _argsort(x, d, False)
    if x.ndim:
        idx = idx[(builtins.slice(None),) * d + (builtins.slice(k - 1, k),)]
    return _indexed("kthvalue", x, idx, d, keepdim)


class _ValueOf(Function):
    """A full reduction to ``value``, one of x's elements (the median): the gradient is shared
    equally by the elements equal to it (PyTorch's ``evenly_distribute_backward``)."""

    def forward(self, x):
        self.mask = xp.isnan(x) if self.value != self.value else x == self.value
        return get_array_module(x).asarray(self.value, dtype=x.dtype)

    def backward(self, gy):
        return self.mask * (gy / self.mask.sum()).astype(gy.dtype, copy=False)


@dim_alias
def median(x, dim=None, keepdim: bool = False):
    """The median: for an even count the lower of the two middle values (as PyTorch, no
    averaging). ``median(x)`` is a 0-d tensor; ``median(x, dim)`` gives ``(values, indices)``.
    The gradient of ``median(x)`` is shared equally by the elements equal to the median (as
    PyTorch's full reductions); over a dim it goes to the returned index.

    Example:
        >>> import filterbank as fb
        >>> fb.median(fb.tensor([4.0, 1.0, 3.0, 2.0])).item()
        2.0
    """
    x = _x(x)
    if x.data.size == 0:
        raise ValueError(f"median: expected a non-empty tensor, got shape {x.shape}")
    if dim is None:
        if keepdim:
            raise TypeError("median(): keepdim needs a dim")
        flat = x.data.reshape(-1)
        k = (flat.shape[0] + 1) // 2
        nan = xp.isnan(flat).any() if flat.dtype.kind == "f" else False
        value = flat.dtype.type(np.nan) if nan else np.partition(flat, k - 1)[k - 1]
        return _ValueOf.apply(x, value=value)  # NaN if any element is NaN, as PyTorch
    d = _one_axis(dim, x.ndim, "median")
    if x.ndim == 0:
        return _indexed("median", x, None, 0, keepdim)
    k = (x.shape[d] + 1) // 2
    idx = _argsort(x, d, False)[(builtins.slice(None),) * d + (builtins.slice(k - 1, k),)]
    if x.dtype.kind == "f":
        isnan = xp.isnan(x.data)
        if isnan.any():  # a row with a NaN has median NaN, at its first NaN (as PyTorch)
            idx = xp.where(isnan.any(axis=d, keepdims=True),
                           xp.argmax(isnan, axis=d, keepdims=True), idx)
    return _indexed("median", x, idx, d, keepdim)


# ------------------------------------------------------------------ std, prod, norm
@dim_alias
def std(x, axis=None, keepdims: bool = False, correction: int = 1, *,
        unbiased: bool | None = None) -> Tensor:
    """Standard deviation, ``sqrt(var)``, Bessel-corrected by default (as ``torch.std``).

    Backward: ``dL/dx_i = dL/dy * (x_i - mean) / ((N - correction) * y)``.

    Args:
        x: input tensor.
        axis: int, tuple of ints, or None (all); ``dim`` is an alias.
        keepdims: keep the reduced axes (``keepdim`` is an alias).
        correction: 1 for the sample estimate (default), 0 for the population one.
        unbiased: PyTorch's older flag: False means ``correction=0``.

    Shape:
        As :func:`sum`.

    Example:
        >>> import filterbank as fb
        >>> fb.std(fb.tensor([1.0, 2.0, 3.0])).item()
        1.0
    """
    if unbiased is not None:
        correction = 1 if unbiased else 0
    x = _x(x)
    normalize_axes(axis, x.ndim, "std")  # errors name std, not var
    return _StdSqrt.apply(var(x, axis, keepdims, correction))


class _StdSqrt(Function):
    """sqrt(var) for std: where std is 0 (a constant slice) the gradient is 0, not 0/0 = nan,
    as PyTorch's std backward masks it."""

    def forward(self, v):
        self.y = xp.sqrt(v)
        return self.y

    def backward(self, gy):
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.where(self.y == 0, 0, gy / (2 * self.y)).astype(gy.dtype, copy=False)


class Prod(Function):
    """y = prod_i x_i along one axis; dy/dx_i = prod_{j != i} x_j, computed from exclusive
    prefix and suffix products, so zeros in ``x`` are handled exactly (no division)."""

    def forward(self, x):
        a = x.reshape(-1) if self.axis is None else x
        ax = 0 if self.axis is None else self.axis
        self.shape, self.a, self.ax = x.shape, a, ax
        return xp.prod(a, axis=ax, keepdims=self.keepdims and self.axis is not None)

    def backward(self, gy):
        a, ax = xp.moveaxis(self.a, self.ax, -1), self.ax
        ones = get_array_module(a).ones(a.shape[:-1] + (1,), a.dtype)
        left = xp.cumprod(xp.concatenate([ones, a[..., :-1]], axis=-1), axis=-1)
        right = xp.cumprod(xp.concatenate([ones, a[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        g = gy if self.keepdims and self.axis is not None else xp.expand_dims(
            gy, -1 if self.axis is None else ax)
        gx = xp.moveaxis(left * right, -1, ax) * g
        return gx.reshape(self.shape)


@dim_alias
def prod(x, dim: int | None = None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Product of the elements, of all of them or along one ``dim`` (as ``torch.prod``).

    Backward: ``dL/dx_i = dL/dy * prod_{j != i} x_j`` (exact with zeros).

    Args:
        x: input tensor.
        dim: None (all elements, default) or one int (``axis`` is an alias).
        keepdim: keep ``dim`` with size 1.
        dtype: cast the input to this dtype first.

    Shape:
        As :func:`sum`.

    Example:
        >>> import filterbank as fb
        >>> fb.prod(fb.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1).tolist()
        [2.0, 12.0]
    """
    x = _x(x)
    if dtype is not None:
        x = x.astype(dtype)
    axis = None if dim is None else _one_axis(dim, x.ndim, "prod")
    if x.ndim == 0:
        axis = None
    return Prod.apply(x, axis=axis, keepdims=keepdim)


class Norm(Function):
    """``||x||_p = (sum |x_i|^p)^(1/p)``; ``dy/dx_i = sign(x_i) |x_i|^(p-1) / y^(p-1)``,
    0 where ``y = 0`` (as PyTorch). ``p = inf``: ``max |x_i|``, the gradient shared by the
    maxima."""

    def forward(self, x):
        self.x = x
        ax = self.axes
        if self.p == np.inf:
            a = xp.abs(x)
            y = xp.max(a, axis=ax, keepdims=True)
            self.mask = a == y
        elif self.p == 2:
            y = xp.sqrt(xp.sum(x * x, axis=ax, keepdims=True))
        elif self.p == 1:
            y = xp.sum(xp.abs(x), axis=ax, keepdims=True)
        else:
            y = xp.sum(xp.abs(x) ** self.p, axis=ax, keepdims=True) ** (1.0 / self.p)
        self.y = y
        return _drop(y, x.shape, ax, self.keepdims)

    def backward(self, gy):
        x, y, p = self.x, self.y, self.p
        g = _keep(gy, x.shape, self.axes, self.keepdims) if not self.keepdims else gy
        if p == np.inf:
            count = self.mask.sum(axis=self.axes, keepdims=True)
            return xp.sign(x) * self.mask * (g / count)
        if p == 1:
            return xp.sign(x) * g
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == 2:
                scale = xp.where(y == 0, 0, g / y)
                return x * scale
            scale = xp.where(y == 0, 0, g / y ** (p - 1))
            return xp.sign(x) * xp.abs(x) ** (p - 1) * scale


@dim_alias
def norm(x, p="fro", dim=None, keepdim: bool = False) -> Tensor:
    """The vector p-norm over ``dim`` (all elements by default), as ``torch.norm``.

    ``||x||_p = (sum_i |x_i|^p)^(1/p)``; ``p="fro"`` is 2 (over the flattened elements),
    ``p=inf`` the largest ``|x_i|``. Backward:
    ``dL/dx_i = dL/dy * sign(x_i) |x_i|^(p-1) / ||x||_p^(p-1)``, 0 at ``x = 0``.

    Args:
        x: floating input tensor.
        p: a number ``>= 1``, ``float("inf")`` or ``"fro"`` (default).
        dim: int, tuple of ints, or None (all; ``axis`` is an alias).
        keepdim: keep the reduced dims with size 1.

    Shape:
        As :func:`sum`.

    Example:
        >>> import filterbank as fb
        >>> fb.norm(fb.tensor([3.0, 4.0])).item()
        5.0
    """
    x = _x(x)
    if p == "fro":
        p = 2
    if isinstance(p, str) or not (p == np.inf or (isinstance(p, int | float) and p >= 1)):
        raise ValueError(f"norm: p must be a number >= 1, inf or 'fro', got {p!r}")
    if x.dtype.kind != "f":
        raise TypeError(f"norm: expected a floating tensor, got dtype {x.dtype}")
    return Norm.apply(x, p=float(p), axes=normalize_axes(dim, x.ndim, "norm"),
                      keepdims=keepdim)
