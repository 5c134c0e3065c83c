"""Shape ops: reshape, flatten, transpose/permute, squeeze/unsqueeze, expand, indexing,
concatenate/stack, split/chunk, pad."""

from __future__ import annotations

import builtins

import numpy as np

from filterbank.autograd.function import Function
from filterbank.backend import get_array_module, xp
from filterbank.functional._dims import dim_alias
from filterbank.tensor import Tensor


def _dim(d: int, ndim: int, name: str) -> int:
    n = builtins.max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    if not isinstance(d, int | np.integer) or not -n <= d < n:
        raise ValueError(f"{name}: dim {d!r} is out of range for a tensor with {ndim} dims")
    return int(d) % n


class Reshape(Function):
    def forward(self, x):
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                f"into {self.shape}"
            ) from None

    def backward(self, gy):
        return gy.reshape(self.in_shape)


class Permute(Function):
    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, gy):
        return gy.transpose(np.argsort(self.dims))


class Expand(Function):
    def forward(self, x):
        return xp.broadcast_to(x, self.shape)

    def backward(self, gy):
        return gy  # the engine sums it back to x's shape


class GetItem(Function):
    """x[index]. Basic and boolean-mask indexing pick each element at most once, so the
    gradient is written into place; integer-array indexing may pick an element twice, so the
    gradient is scatter-added (one ``bincount`` over flat positions), and each pick counts."""

    def forward(self, x):
        self.in_shape = x.shape
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        g = xp.zeros(self.in_shape, gy.dtype)
        if not self.scatter:
            g[self.index] = gy
            return g
        pos = xp.arange(g.size).reshape(self.in_shape)[self.index]
        acc = xp.bincount(pos.ravel(), weights=gy.ravel(), minlength=g.size)
        return acc.astype(gy.dtype, copy=False).reshape(self.in_shape)


class Concatenate(Function):
    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return xp.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        cuts = np.cumsum(self.sizes)[:-1].tolist()  # ints: a host array would not mix
        parts = xp.split(gy, cuts, axis=self.axis)
        return tuple(p if need else None for p, need in zip(parts, self.needs_input_grad))


class Stack(Function):
    def forward(self, *xs):
        return xp.stack(xs, axis=self.axis)

    def backward(self, gy):
        lead = (builtins.slice(None),) * self.axis
        return tuple(gy[lead + (i,)] if need else None
                     for i, need in enumerate(self.needs_input_grad))


class Pad(Function):
    def forward(self, x):
        self.slices = tuple(builtins.slice(lo, lo + s) for (lo, _), s in zip(self.width, x.shape))
        return xp.pad(x, self.width, mode="constant", constant_values=self.value)

    def backward(self, gy):
        return gy[self.slices]


def _shape_tuple(shape) -> tuple[int, ...]:
    if isinstance(shape, int | np.integer):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def reshape(x, shape) -> Tensor:
    """Same elements, new shape (``view`` is an alias; one dimension may be -1).

    Backward: the gradient is reshaped back to the input's shape.

    Args:
        x: input tensor.
        shape: the new shape, with the same number of elements.

    Shape:
        Output: ``shape`` (its -1 inferred).

    Example:
        >>> import filterbank as fb
        >>> fb.arange(6.0).reshape(2, -1).shape
        (2, 3)
    """
    return Reshape.apply(x, shape=_shape_tuple(shape))


view = reshape


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` (inclusive) into one, as ``torch.flatten``.

    Args:
        x: input tensor.
        start_dim: first dim to merge (default 0).
        end_dim: last dim to merge (default -1).

    Shape:
        ``(d_0, ..., d_s, ..., d_e, ...) -> (d_0, ..., d_s * ... * d_e, ...)``.

    Example:
        >>> import filterbank as fb
        >>> fb.zeros(2, 3, 4).flatten(1).shape
        (2, 12)
    """
    if x.ndim == 0:
        return reshape(x, (1,))
    s = _dim(start_dim, x.ndim, "flatten")
    e = _dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:s] + (-1,) + x.shape[e + 1:]
    if 0 in x.shape:
        shape = x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
    return reshape(x, shape)


def permute(x, dims) -> Tensor:
    """Reorder the dimensions: output dim ``i`` is input dim ``dims[i]``.

    Backward: the gradient is permuted by the inverse permutation.

    Args:
        x: input tensor.
        dims: a permutation of ``range(x.ndim)`` (negative dims allowed).

    Shape:
        Output: ``tuple(x.shape[d] for d in dims)``.

    Example:
        >>> import filterbank as fb
        >>> fb.zeros(2, 3, 4).permute(2, 0, 1).shape
        (4, 2, 3)
    """
    dims = tuple(_dim(d, x.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of {x.ndim} dims")
    return Permute.apply(x, dims=dims)


def transpose(x, dim0: int, dim1: int) -> Tensor:
    """Swap dims ``dim0`` and ``dim1``.

    Shape:
        Output: the input's shape with the two dims exchanged.

    Example:
        >>> import filterbank as fb
        >>> fb.zeros(2, 3).transpose(0, 1).shape
        (3, 2)
    """
    dims = list(range(x.ndim))
    a, b = _dim(dim0, x.ndim, "transpose"), _dim(dim1, x.ndim, "transpose")
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(x, dims=tuple(dims))


@dim_alias
def squeeze(x, dim=None) -> Tensor:
    """Remove size-1 dims: all of them, or only ``dim`` (an int or tuple) where it has size 1.

    Args:
        x: input tensor.
        dim: None (default), an int or a tuple of ints.

    Shape:
        Output: the input's shape without the squeezed size-1 dims.

    Example:
        >>> import filterbank as fb
        >>> fb.zeros(1, 3, 1).squeeze().shape
        (3,)
    """
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = {_dim(d, x.ndim, "squeeze") for d in dims}
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1))
    return reshape(x, shape)


@dim_alias
def unsqueeze(x, dim: int) -> Tensor:
    """Insert a size-1 dim at position ``dim`` (negative counts from the end of the result).

    Shape:
        Output: ``x.shape[:dim] + (1,) + x.shape[dim:]``.

    Example:
        >>> import filterbank as fb
        >>> fb.zeros(2, 3).unsqueeze(-1).shape
        (2, 3, 1)
    """
    d = _dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def expand(x, shape) -> Tensor:
    """Broadcast to ``shape`` without copying (``broadcast_to`` is an alias); -1 keeps a dim.

    Backward: the gradient is summed over the broadcast dims.

    Args:
        x: input tensor.
        shape: target shape; new dims may only be added in front.

    Shape:
        Output: ``shape``.

    Example:
        >>> import filterbank as fb
        >>> fb.zeros(3, 1).expand(2, 3, 4).shape
        (2, 3, 4)
    """
    shape = _shape_tuple(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {x.shape} to fewer dims {shape}")
    full = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    try:
        np.broadcast_shapes(x.shape, full)
    except ValueError:
        raise ValueError(f"expand: shape {x.shape} cannot be expanded to {shape}") from None
    return Expand.apply(x, shape=full)


broadcast_to = expand


def _convert_index(index):
    """Tensors and lists in an index become arrays. Returns the index and whether its backward
    must scatter-add (an integer array is present, so an element may be picked twice)."""
    items = index if isinstance(index, tuple) else (index,)
    out, scatter = [], False
    for it in items:
        if isinstance(it, Tensor):
            it = it.data
        if isinstance(it, list):
            it = np.asarray(it)
        if isinstance(it, np.ndarray):
            if it.dtype.kind not in "biu":
                raise TypeError(f"getitem: index arrays must be integer or bool, got dtype "
                                f"{it.dtype}")
            scatter = scatter or it.dtype.kind != "b"
        out.append(it)
    return (tuple(out) if isinstance(index, tuple) else out[0]), scatter


def getitem(x, index) -> Tensor:
    """``x[index]`` with NumPy semantics: ints, slices, None, Ellipsis, integer arrays
    (gather) and boolean masks.

    Backward: the gradient goes back to the picked positions; with integer arrays an element
    picked ``k`` times receives the sum of its ``k`` gradients (scatter-add).

    Args:
        x: input tensor.
        index: anything NumPy accepts; Tensors and lists inside it act as arrays.

    Example:
        >>> import filterbank as fb
        >>> x = fb.arange(6.0).reshape(2, 3)
        >>> x[1:, [0, 0, 2]].tolist()
        [[3.0, 3.0, 5.0]]
    """
    index, scatter = _convert_index(index)
    try:
        out = GetItem.apply(x, index=index, scatter=scatter)
    except IndexError as e:
        raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape "
                         f"{x.shape}: {e}") from None
    if out._view_of is True and isinstance(x, Tensor):
        out._view_of = (x, index)  # an in-place op on the slice updates x's graph too
    return out


class IndexPut(Function):
    """``y = x`` with ``y[index] = v`` (a copy); backward: ``dx = g`` with ``g[index] = 0``,
    ``dv = g[index]`` (summed back to ``v``'s shape by the broadcast rule)."""

    def forward(self, x, v):
        y = x.copy()
        y[self.index] = v
        return y

    def backward(self, gy):
        gx = gv = None
        if self.needs_input_grad[0]:
            gx = gy.copy()
            gx[self.index] = 0
        if self.needs_input_grad[1]:
            gv = gy[self.index]
        return gx, gv


def index_put(x, index, value) -> Tensor:
    """``x`` with ``x[index] = value``, out of place and differentiable in both (what
    ``x[index] = value`` records when gradients are on, as PyTorch's ``index_put``).

    Args:
        x: input tensor.
        index: anything :func:`getitem` accepts.
        value: a tensor or number broadcastable to ``x[index]``.

    Example:
        >>> import filterbank as fb
        >>> fb.functional.index_put(fb.zeros(3), 1, 5.0).tolist()
        [0.0, 5.0, 0.0]
    """
    index, _ = _convert_index(index)
    try:
        return IndexPut.apply(x, value, index=index)
    except (IndexError, ValueError) as e:
        raise IndexError(f"index_put: cannot set index {index!r} of a tensor of shape "
                         f"{x.shape}: {e}") from None


@dim_alias
def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing ``axis`` (``cat`` is an alias).

    Backward: each input receives its slice of the gradient.

    Args:
        tensors: non-empty sequence of tensors with equal shapes except along ``axis``.
        axis: the dim to join along (default 0).

    Shape:
        Output: the common shape with ``sum of sizes`` along ``axis``.

    Example:
        >>> import filterbank as fb
        >>> fb.cat([fb.zeros(2, 3), fb.zeros(2, 1)], axis=1).shape
        (2, 4)
    """
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: expected a non-empty sequence of tensors")
    nd = tensors[0].ndim
    ax = _dim(axis, nd, "concatenate")
    for t in tensors:
        if t.ndim != nd or any(s != r for i, (s, r) in enumerate(zip(t.shape, tensors[0].shape))
                               if i != ax):
            raise ValueError(
                f"concatenate: shapes must match except along axis {axis}, got "
                f"{[tuple(u.shape) for u in tensors]}"
            )
    return Concatenate.apply(*tensors, axis=ax)


cat = concatenate


@dim_alias
def stack(tensors, axis: int = 0) -> Tensor:
    """Join same-shape tensors along a new ``axis``.

    Shape:
        Output: the common shape with ``len(tensors)`` inserted at ``axis``.

    Example:
        >>> import filterbank as fb
        >>> fb.stack([fb.zeros(2), fb.zeros(2)], axis=1).shape
        (2, 2)
    """
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack: all shapes must be equal, got {[t.shape for t in tensors]}")
    return Stack.apply(*tensors, axis=_dim(axis, tensors[0].ndim + 1, "stack"))


@dim_alias
def split(x, split_size_or_sections, dim: int = 0) -> list[Tensor]:
    """Split along ``dim`` into pieces of ``split_size`` (the last may be smaller) or of the
    given sizes, as ``torch.split``.

    Args:
        x: input tensor.
        split_size_or_sections: an int, or a list of sizes adding up to ``x.shape[dim]``.
        dim: the dim to split (default 0).

    Shape:
        A list of tensors, equal to ``x`` except along ``dim``.

    Example:
        >>> import filterbank as fb
        >>> [t.shape for t in fb.zeros(5, 2).split(2)]
        [(2, 2), (2, 2), (1, 2)]
    """
    d = _dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, int | np.integer):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [builtins.min(size, n - i) for i in range(0, n, size)]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to dim {dim} of size {n}")
    out, start = [], 0
    for s in sizes:
        idx = (builtins.slice(None),) * d + (builtins.slice(start, start + s),)
        out.append(getitem(x, idx))
        start += s
    return out


@dim_alias
def chunk(x, chunks: int, dim: int = 0) -> list[Tensor]:
    """Split along ``dim`` into at most ``chunks`` pieces of ``ceil(n / chunks)`` (as
    ``torch.chunk``).

    Shape:
        A list of tensors, equal to ``x`` except along ``dim``.

    Example:
        >>> import filterbank as fb
        >>> [t.shape for t in fb.zeros(7).chunk(3)]
        [(3,), (3,), (1,)]
    """
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[_dim(dim, x.ndim, "chunk")]
    return split(x, builtins.max(1, -(-n // chunks)), dim)


def pad(x, pad, value: float = 0.0) -> Tensor:
    """Constant padding in PyTorch's order: ``pad=(left, right, top, bottom, ...)`` pads the
    last dim first, then the one before it, and so on.

    Backward: the gradient is the centre slice (the padding receives none).

    Args:
        x: input tensor.
        pad: an even number of non-negative ints, at most ``2 * x.ndim``.
        value: the fill value (default 0.0).

    Shape:
        Output: dim ``-1 - i`` grows by ``pad[2i] + pad[2i + 1]``.

    Example:
        >>> import filterbank as fb
        >>> fb.pad(fb.ones(1, 2), (1, 0, 0, 1)).tolist()
        [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: expected an even number of at most {2 * x.ndim} values, "
                         f"got {pad}")
    if builtins.min(pad, default=0) < 0:
        raise ValueError(f"pad: negative padding is not supported, got {pad}")
    width = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        width[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(x, width=tuple(width), value=value)


# ------------------------------------------------------------------------- flip, repeat
class Flip(Function):
    def forward(self, x):
        return xp.flip(x, self.dims)

    def backward(self, gy):
        return xp.flip(gy, self.dims)


class Repeat(Function):
    def forward(self, x):
        self.lead_shape = (1,) * (len(self.sizes) - x.ndim) + x.shape
        self.in_shape = x.shape
        return xp.tile(x.reshape(self.lead_shape), self.sizes)

    def backward(self, gy):
        # out dim d is (sizes[d] copies) x (lead_shape[d]): split it and sum over the copies
        split = []
        for r, n in zip(self.sizes, self.lead_shape):
            split += [r, n]
        g = gy.reshape(split).sum(axis=tuple(range(0, 2 * len(self.sizes), 2)))
        return g.reshape(self.in_shape)


def flip(x, dims=None, *, dim=None) -> Tensor:
    """Reverse the order of the elements along ``dims`` (``torch.flip``).

    Backward: the gradient is flipped back along the same dims.

    Args:
        x: input tensor.
        dims: an int or a sequence of distinct ints (negative count from the end); ``dim`` is
            an alias.

    Shape:
        Output: ``x.shape``.

    Example:
        >>> import filterbank as fb
        >>> fb.arange(4.0).reshape(2, 2).flip(1).tolist()
        [[1.0, 0.0], [3.0, 2.0]]
    """
    if dim is not None:
        if dims is not None:
            raise TypeError("flip: got both dims and its alias dim")
        dims = dim
    if dims is None:
        raise TypeError("flip: missing the argument 'dims'")
    seq = (dims,) if isinstance(dims, int | np.integer) else tuple(dims)
    norm = tuple(_dim(d, x.ndim, "flip") for d in seq)
    if len(set(norm)) != len(norm):
        raise ValueError(f"flip: dims {seq} name a dim more than once")
    if x.ndim == 0:
        norm = ()
    return Flip.apply(x, dims=norm)


def repeat(x, *sizes) -> Tensor:
    """Tile ``x``: repeat it ``sizes[d]`` times along dim ``d`` (``torch.Tensor.repeat``,
    NumPy's ``tile``). With more sizes than dims, ``x`` gets leading size-1 dims first.

    Backward: the gradient is summed over the copies.

    Args:
        x: input tensor.
        sizes: one non-negative int per dim (at least ``x.ndim`` of them), as varargs or one
            tuple.

    Shape:
        Output: ``sizes[d] * s[d]`` with ``s`` the shape of ``x`` padded in front with ones.

    Example:
        >>> import filterbank as fb
        >>> fb.tensor([1.0, 2.0]).repeat(2, 2).tolist()
        [[1.0, 2.0, 1.0, 2.0], [1.0, 2.0, 1.0, 2.0]]
    """
    if len(sizes) == 1 and isinstance(sizes[0], tuple | list):
        sizes = tuple(sizes[0])
    if not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in sizes):
        raise TypeError(f"repeat: expected ints, got {sizes!r}")
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: got {len(sizes)} sizes {sizes} for a tensor with {x.ndim} "
                         f"dims; give at least one per dim")
    if builtins.min(sizes, default=0) < 0:
        raise ValueError(f"repeat: sizes must be non-negative, got {sizes}")
    return Repeat.apply(x, sizes=sizes)
