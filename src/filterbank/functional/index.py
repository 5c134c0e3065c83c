"""Index ops along one dim, as PyTorch: ``gather``, ``scatter``, ``scatter_add``,
``masked_fill``, and ``one_hot``.

``gather`` and the scatters pair up: the gradient of a gather is a scatter-add of the incoming
gradient, and the gradient of a scatter(-add)'s source is a gather. Both are done on flat
positions: for an index tensor ``idx`` along ``dim``, element ``(i_0, ..., i_k)`` of the result
talks to input element ``(i_0, ..., idx[i_0, ..., i_k], ..., i_k)``, whose flat (C-order)
position is ``sum_d i_d * stride_d`` with ``i_dim`` replaced by the index. Scatter-add sums
repeated positions with one ``bincount`` (no ``np.add.at``).
"""

from __future__ import annotations

import builtins
import numbers

import numpy as np

from filterbank._xp import like
from filterbank.autograd.function import Function
from filterbank.backend import get_array_module
from filterbank.functional._dims import dim_alias
from filterbank.tensor import Tensor


# ------------------------------------------------------------------------------ helpers
def _dim(name: str, dim, ndim: int) -> int:
    n = builtins.max(ndim, 1)
    if not isinstance(dim, int | np.integer) or isinstance(dim, bool) or not -n <= dim < n:
        raise ValueError(f"{name}: dim {dim!r} is out of range for a tensor with {ndim} dims")
    return int(dim) % n


def _index_array(name: str, index, input_shape, dim: int, what: str = "input") -> np.ndarray:
    """Check ``index`` as PyTorch does: integer, same number of dims as the input, no larger
    than the input outside ``dim``, values in ``[0, size)`` along ``dim``."""
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer index tensor, got dtype {idx.dtype}")
    ndim = len(input_shape)
    if ndim == 0:
        raise ValueError(f"{name}: expected an {what} with at least 1 dim, got a 0-d tensor")
    if idx.ndim != ndim:
        raise ValueError(f"{name}: index must have as many dims as the {what} ({ndim}), got "
                         f"index of shape {idx.shape}")
    shape = input_shape
    for d, (si, sx) in enumerate(zip(idx.shape, shape)):
        if d != dim and si > sx:
            raise ValueError(f"{name}: index has size {si} in dim {d} but the {what} has only "
                             f"{sx} (shapes {idx.shape} and {tuple(input_shape)})")
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= shape[dim]:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{name}: index {bad} is out of bounds for dim {dim} with size "
                             f"{shape[dim]}")
    return idx


def _flat_positions(idx: np.ndarray, shape, dim: int) -> np.ndarray:
    """C-order flat positions in an array of ``shape`` of the elements that ``idx`` picks
    along ``dim`` (all other coordinates are those of the index element itself)."""
    strides = np.cumprod((1,) + tuple(shape[::-1]))[:-1][::-1]  # in elements
    pos = idx.astype(np.int64) * int(strides[dim])
    for d, n in enumerate(idx.shape):
        if d != dim and n > 1:
            r = get_array_module(idx).arange(n, dtype=np.int64) * int(strides[d])
            pos = pos + r.reshape((n,) + (1,) * (idx.ndim - d - 1))
    return pos


def _scatter_sum(pos: np.ndarray, values: np.ndarray, size: int, dtype) -> np.ndarray:
    """A flat array of ``size`` holding, at each position, the sum of the ``values`` sent
    there. One ``bincount`` (float64 accumulation), so repeated positions add up."""
    xp = get_array_module(pos, values)
    acc = xp.bincount(pos.ravel(), weights=values.ravel(), minlength=size)
    return acc.astype(dtype, copy=False)


def _sub_box(shape) -> tuple[slice, ...]:
    return tuple(builtins.slice(0, n) for n in shape)


# ---------------------------------------------------------------------------------- gather
class Gather(Function):
    """y[i] = x[i with i_dim -> idx[i]].  dL/dx = scatter-add of dL/dy at the same places."""

    def forward(self, x):
        self.in_shape = x.shape
        self.pos = _flat_positions(self.index, x.shape, self.dim)
        return x.reshape(-1)[self.pos]

    def backward(self, gy):
        size = int(np.prod(self.in_shape))
        return _scatter_sum(self.pos, gy, size, gy.dtype).reshape(self.in_shape)


@dim_alias
def gather(input, dim, index) -> Tensor:
    """Pick values along ``dim`` by an index tensor, as ``torch.gather``.

    For a 3-d input and ``dim=1``: ``out[i][j][k] = input[i][index[i][j][k]][k]``.

    Backward: the gradient is scatter-added back to the picked positions (an element picked
    ``k`` times receives the sum of its ``k`` gradients).

    Args:
        input: the source tensor.
        dim: the dim to index along (negative counts from the end; ``axis`` is an alias).
        index: an integer tensor with as many dims as ``input``, no larger than ``input`` in
            the other dims, values in ``[0, input.shape[dim])``.

    Shape:
        Output: ``index.shape``.

    Example:
        >>> import filterbank as fb
        >>> x = fb.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> fb.gather(x, 1, fb.tensor([[0, 0], [1, 0]])).tolist()
        [[1.0, 1.0], [4.0, 3.0]]
    """
    dim = _dim("gather", dim, input.ndim)
    idx = _index_array("gather", index, input.shape, dim)
    return Gather.apply(input, index=idx, dim=dim)


# ---------------------------------------------------------------------------------- scatter
class Scatter(Function):
    """y = x with y[i with i_dim -> idx[i]] = src[i].
    dL/dx = dL/dy with the written places zeroed;  dL/dsrc = gather(dL/dy, dim, idx)."""

    def forward(self, x, src):
        self.in_shape = x.shape
        self.src_shape = src.shape
        self.pos = _flat_positions(self.index, x.shape, self.dim)
        y = x.copy()
        y.reshape(-1)[self.pos.ravel()] = src[_sub_box(self.index.shape)].ravel()
        return y

    def backward(self, gy):
        nx, ns = self.needs_input_grad
        gx = gsrc = None
        flat = gy.reshape(-1)
        if nx:
            gx = gy.copy()
            gx.reshape(-1)[self.pos.ravel()] = 0
        if ns:
            gsrc = get_array_module(gy).zeros(self.src_shape, gy.dtype)
            gsrc[_sub_box(self.index.shape)] = flat[self.pos]
        return gx, gsrc


class ScatterValue(Function):
    """y = x with the indexed places set to a scalar.  dL/dx = dL/dy there zeroed."""

    def forward(self, x):
        self.pos = _flat_positions(self.index, x.shape, self.dim).ravel()
        y = x.copy()
        y.reshape(-1)[self.pos] = self.value
        return y

    def backward(self, gy):
        gx = gy.copy()
        gx.reshape(-1)[self.pos] = 0
        return gx


class ScatterAdd(Function):
    """y = x;  y[i with i_dim -> idx[i]] += src[i] (repeated places add up).
    dL/dx = dL/dy;  dL/dsrc = gather(dL/dy, dim, idx)."""

    def forward(self, x, src):
        self.src_shape = src.shape
        self.pos = _flat_positions(self.index, x.shape, self.dim)
        values = src[_sub_box(self.index.shape)]
        if x.dtype.kind == "f":
            add = _scatter_sum(self.pos, values, x.size, x.dtype)
        else:  # bincount sums in float64: round back to the integers, do not truncate
            add = np.rint(_scatter_sum(self.pos, values, x.size, np.float64)).astype(x.dtype)
        return x + add.reshape(x.shape)

    def backward(self, gy):
        nx, ns = self.needs_input_grad
        gsrc = None
        if ns:
            gsrc = get_array_module(gy).zeros(self.src_shape, gy.dtype)
            gsrc[_sub_box(self.index.shape)] = gy.reshape(-1)[self.pos]
        return (gy if nx else None), gsrc


def _check_src(name: str, input, src, idx, dim):
    if not isinstance(src, Tensor):
        src = Tensor._wrap(like(input.data, src, dtype=input.dtype))
    if src.dtype != input.dtype:
        raise TypeError(f"{name}: expected src to have the input's dtype {input.dtype}, got "
                        f"{src.dtype}")
    if src.ndim != input.ndim:
        raise ValueError(f"{name}: src must have as many dims as the input ({input.ndim}), "
                         f"got shape {src.shape}")
    for d, (si, ss) in enumerate(zip(idx.shape, src.shape)):
        if si > ss:
            raise ValueError(f"{name}: index has size {si} in dim {d} but src has only {ss} "
                             f"(shapes {idx.shape} and {src.shape})")
    return src


@dim_alias
def scatter(input, dim, index, src=None, *, value=None) -> Tensor:
    """Write ``src`` (or a scalar ``value``) into a copy of ``input`` at the places an index
    tensor names along ``dim``, as ``torch.scatter`` (the inverse of :func:`gather`).

    For a 3-d input and ``dim=1``: ``out[i][index[i][j][k]][k] = src[i][j][k]``; everything
    else is copied from ``input``. When an index repeats, which write wins is unspecified (as
    in PyTorch); use :func:`scatter_add` to sum instead.

    Backward: ``d input = d out`` with the written places zeroed;
    ``d src = gather(d out, dim, index)``.

    Args:
        input: the tensor to copy and write into.
        dim: the dim the index runs along (``axis`` is an alias).
        index: an integer tensor with as many dims as ``input``; its values are positions
            along ``dim``.
        src: a tensor at least as large as ``index`` in every dim, of ``input``'s dtype, or a
            Python number (then it acts as ``value``).
        value: a scalar to write instead of ``src``.

    Shape:
        Output: ``input.shape``.

    Example:
        >>> import filterbank as fb
        >>> fb.scatter(fb.zeros(2, 3), 1, fb.tensor([[2], [0]]), value=5.0).tolist()
        [[0.0, 0.0, 5.0], [5.0, 0.0, 0.0]]
    """
    dim = _dim("scatter", dim, input.ndim)
    idx = _index_array("scatter", index, input.shape, dim)
    if isinstance(src, numbers.Number) and value is None:
        src, value = None, src
    if (src is None) == (value is None):
        raise TypeError("scatter: expected exactly one of src (a tensor) and value (a scalar)")
    if value is not None:
        if not isinstance(value, numbers.Number):
            raise TypeError(f"scatter: expected value to be a number, got "
                            f"{type(value).__name__}")
        return ScatterValue.apply(input, index=idx, dim=dim, value=value)
    src = _check_src("scatter", input, src, idx, dim)
    return Scatter.apply(input, src, index=idx, dim=dim)


@dim_alias
def scatter_add(input, dim, index, src) -> Tensor:
    """Add ``src`` into a copy of ``input`` at the places an index tensor names along
    ``dim``, as ``torch.scatter_add``; repeated places receive the sum of their values.

    For a 3-d input and ``dim=1``: ``out[i][index[i][j][k]][k] += src[i][j][k]``.

    Backward: ``d input = d out``; ``d src = gather(d out, dim, index)``.

    Args:
        input: the tensor to copy and add into.
        dim: the dim the index runs along (``axis`` is an alias).
        index: an integer tensor with as many dims as ``input``; values along ``dim``.
        src: a tensor of ``input``'s dtype, at least as large as ``index`` in every dim.

    Shape:
        Output: ``input.shape``.

    Example:
        >>> import filterbank as fb
        >>> fb.scatter_add(fb.zeros(3), 0, fb.tensor([0, 2, 0]), fb.tensor([1.0, 2.0, 3.0])
        ...                ).tolist()
        [4.0, 0.0, 2.0]
    """
    dim = _dim("scatter_add", dim, input.ndim)
    idx = _index_array("scatter_add", index, input.shape, dim)
    if src is None:
        raise TypeError("scatter_add: missing the argument 'src'")
    src = _check_src("scatter_add", input, src, idx, dim)
    return ScatterAdd.apply(input, src, index=idx, dim=dim)


# ------------------------------------------------------------------------------ masked_fill
class MaskedFill(Function):
    """y = value where mask else x.  dL/dx = dL/dy where not mask;
    dL/dvalue = sum of dL/dy where mask."""

    keep_dtype = False  # the output has the input's dtype, whatever the value tensor's

    def forward(self, x, value):
        return get_array_module(x).where(self.mask, value.astype(x.dtype, copy=False), x)

    def backward(self, gy):
        nx, nv = self.needs_input_grad
        xp = get_array_module(gy)
        gx = xp.where(self.mask, gy.dtype.type(0), gy) if nx else None
        gv = xp.where(self.mask, gy, gy.dtype.type(0)).sum() if nv else None
        return gx, gv


def masked_fill(input, mask, value) -> Tensor:
    """``value`` where ``mask`` is True, ``input`` elsewhere (``torch.masked_fill``).

    ``mask`` is boolean and broadcasts with ``input`` (the output has the broadcast shape).

    Backward: ``d input = d out * ~mask``; a 0-d tensor ``value`` that requires grad gets
    ``sum(d out * mask)``.

    Args:
        input: the tensor to copy.
        mask: a boolean tensor or array, broadcastable with ``input``.
        value: a Python number or a 0-d tensor; cast to ``input``'s dtype.

    Example:
        >>> import filterbank as fb
        >>> x = fb.tensor([1.0, -2.0, 3.0])
        >>> x.masked_fill(x < 0, 0.0).tolist()
        [1.0, 0.0, 3.0]
    """
    m = mask.data if isinstance(mask, Tensor) else like(input.data, mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: expected a boolean mask, got dtype {m.dtype}")
    try:
        np.broadcast_shapes(m.shape, input.shape)
    except ValueError:
        raise ValueError(f"masked_fill: the mask of shape {m.shape} does not broadcast with "
                         f"the input of shape {input.shape}") from None
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: expected a 0-d value tensor, got shape "
                             f"{value.shape}")
    elif isinstance(value, numbers.Number):
        value = Tensor._wrap(like(input.data, value, dtype=input.dtype))
    else:
        raise TypeError(f"masked_fill: expected value to be a number or a 0-d tensor, got "
                        f"{type(value).__name__}")
    return MaskedFill.apply(input, value, mask=m)


# ---------------------------------------------------------------------------------- one_hot
def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """One-hot encoding of class indices (``torch.nn.functional.one_hot``): int64 output
    with ``out[..., c] = 1`` where ``tensor[...] == c``, else 0. Not differentiable.

    Args:
        tensor: an integer tensor of class indices, all in ``[0, num_classes)``.
        num_classes: the number of classes; -1 (default) takes ``max(tensor) + 1``.

    Shape:
        Input: ``(*)``. Output: ``(*, num_classes)``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.one_hot(fb.tensor([0, 2]), 3).tolist()
        [[1, 0, 0], [0, 0, 1]]
    """
    x = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if x.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor of class indices, got dtype "
                        f"{x.dtype}")
    if not isinstance(num_classes, int | np.integer) or isinstance(num_classes, bool):
        raise TypeError(f"one_hot: expected num_classes to be an int, got {num_classes!r}")
    if num_classes == -1:
        if x.size == 0:
            raise ValueError("one_hot: cannot infer the number of classes from an empty "
                             "tensor; pass num_classes")
        num_classes = int(x.max()) + 1
    elif num_classes < 1:
        raise ValueError(f"one_hot: expected num_classes >= 1 or -1, got {num_classes}")
    if x.size:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0:
            raise ValueError(f"one_hot: class values must be non-negative, got {lo}")
        if hi >= num_classes:
            raise ValueError(f"one_hot: class values must be smaller than num_classes "
                             f"({num_classes}), got {hi}")
    out = (x[..., None] == get_array_module(x).arange(int(num_classes))).astype(np.int64)
    return Tensor._wrap(out)
