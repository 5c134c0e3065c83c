"""Pooling: max and average pooling over 1-3 spatial dims, adaptive pooling, global average.

Every pool here reads its windows as strided slices of the (padded) input, one slice per kernel
offset: for offset ``a`` along an axis, the slice ``a*D :: S`` holds that element of every
window at once. A pool is then a loop over the ``prod(kernel_size)`` offsets of whole-array
NumPy operations (never over pixels or samples), and its backward is the same loop writing
gradient slices back. When windows do not overlap (``stride == kernel_size``, ``dilation == 1``)
each input element is written once, so the backward assigns instead of accumulating.

Inputs are ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``: the ops only look at the last
``nd`` axes, so any leading shape works.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from filterbank import _parallel
from filterbank.autograd.function import Function
from filterbank.backend import get_array_module
from filterbank.tensor import Tensor

_LAYOUTS = {1: ("(C, L)", "(N, C, L)"), 2: ("(C, H, W)", "(N, C, H, W)"),
            3: ("(C, D, H, W)", "(N, C, D, H, W)")}


# ------------------------------------------------------------------------ validation
def _int_tuple(value, nd: int, where, what: str, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of ``nd`` ints, each >= ``minimum``, as a tuple."""
    items = (value,) * nd if isinstance(value, int | np.integer) else value
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{where}: {what} must be an int or a tuple of {nd} ints, "
                        f"got {value!r}") from None
    if len(items) == 1 and nd > 1:
        items = items * nd
    if len(items) != nd or not all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                                   for v in items):
        raise TypeError(f"{where}: {what} must be an int or a tuple of {nd} ints, got {value!r}")
    if any(v < minimum for v in items):
        rule = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{where}: {what} must be {rule}, got {value!r}")
    return tuple(int(v) for v in items)


def _check_input(x, nd: int, where) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected a Tensor input, got {type(x).__name__}")
    unbatched, batched = _LAYOUTS[nd]
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{where}: expected a {nd + 1}-D {unbatched} or {nd + 2}-D {batched} "
                         f"input, got a {x.ndim}-D tensor of shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{where}: expected a floating-point input, got dtype {x.dtype}")
    if 0 in x.shape[-nd - 1:]:
        raise ValueError(f"{where}: expected non-empty channel and spatial dims, got input "
                         f"shape {tuple(x.shape)}")


def _output_size(L: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's ``pooling_output_shape``: with ``ceil_mode`` the last window may hang over
    the end, but it must start inside the input or the left padding."""
    span = L + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= L + p:
            out -= 1
    else:
        out = span // s + 1
    return out


def _geometry(where, shape, kernel, stride, padding, dilation, ceil_mode):
    """Output sizes and the right padding needed so that every window lies in the buffer."""
    nd = len(kernel)
    spatial = shape[-nd:]
    for k, p in zip(kernel, padding):
        if p > k // 2:
            raise ValueError(f"{where}: padding must be at most half of the kernel size, got "
                             f"padding={padding} for kernel_size={kernel}")
    out, pad_hi = [], []
    for i, (L, k, s, p, d) in enumerate(zip(spatial, kernel, stride, padding, dilation)):
        o = _output_size(L, k, s, p, d, ceil_mode)
        if o <= 0:
            raise ValueError(
                f"{where}: the kernel (size {k}, dilation {d}, so {d * (k - 1) + 1} wide) is "
                f"larger than the padded input along spatial dim {i} ({L} + 2*{p} = "
                f"{L + 2 * p}); the output size would be {o} (input shape {tuple(shape)})")
        out.append(o)
        needed = (o - 1) * s + d * (k - 1) + 1  # ceil_mode windows may need extra room
        pad_hi.append(max(needed - L - p, p))
    return tuple(out), tuple(pad_hi)


# ------------------------------------------------------------------------- windows
def _run(xp, fn, rows: int, elements: int) -> None:
    """``fn`` over slices of the first axis: threads on the host (:mod:`filterbank._parallel`),
    one call over everything on a GPU (its kernels are the parallelism)."""
    if xp is np:
        _parallel.run(fn, rows, elements)
    else:
        fn(0, rows)


def _padded(x, pad_lo, pad_hi, fill):
    if not any(pad_lo) and not any(pad_hi):
        return x
    nd = len(pad_lo)
    spatial = x.shape[-nd:]
    buf = get_array_module(x).full(x.shape[:-nd] + tuple(L + lo + hi for L, lo, hi in
                                        zip(spatial, pad_lo, pad_hi)), fill, x.dtype)
    buf[(Ellipsis,) + tuple(slice(lo, lo + L) for L, lo in zip(spatial, pad_lo))] = x
    return buf


def _crop(buf, pad_lo, spatial):
    if buf.shape[-len(spatial):] == tuple(spatial):
        return buf
    return buf[(Ellipsis,) + tuple(slice(lo, lo + L) for L, lo in zip(spatial, pad_lo))]


def _offsets(kernel, stride, dilation, out):
    """For each kernel offset in row-major scan order: the slice of the padded input that holds
    that element of every window."""
    for pos in itertools.product(*(range(k) for k in kernel)):
        yield (Ellipsis,) + tuple(slice(a * d, a * d + (n - 1) * s + 1, s)
                                  for a, d, s, n in zip(pos, dilation, stride, out))


def _scatter_plan(padded_spatial, kernel, stride, dilation, out):
    """(disjoint, covers_all): whether windows never share an input element, and whether they
    also tile the whole buffer, so the backward can assign into an uninitialised array."""
    disjoint = all(d == 1 and s >= k for k, s, d in zip(kernel, stride, dilation))
    covers = disjoint and all(s == k and n * k == L for L, k, s, n in
                              zip(padded_spatial, kernel, stride, out))
    return disjoint, covers


def _index_dtype(n: int):
    return np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int32


class _Pool(Function):
    """Shared geometry; hyperparameters: kernel, stride, padding, dilation, out, pad_hi."""

    def _grad_buffer(self, gy):
        """Backward's padded gradient buffer, whether windows are disjoint (assign instead of
        accumulate), and the window slices in kernel scan order."""
        nd = len(self.kernel)
        spatial = self.in_shape[-nd:]
        padded = tuple(L + lo + hi for L, lo, hi in zip(spatial, self.padding, self.pad_hi))
        disjoint, covers = _scatter_plan(padded, self.kernel, self.stride, self.dilation,
                                         self.out)
        shape = self.in_shape[:-nd] + padded
        xp = get_array_module(gy)
        buf = xp.empty(shape, self.dtype) if covers else xp.zeros(shape, self.dtype)
        return buf, disjoint, _offsets(self.kernel, self.stride, self.dilation, self.out)

    def _unpad(self, buf):
        return _crop(buf, self.padding, self.in_shape[-len(self.kernel):])


class MaxPool(_Pool):
    """Max over each window; the gradient goes to the first maximum in window scan order.

    Large inputs are cut along their first axis into a few slices that threads process side
    by side (:mod:`filterbank._parallel`); each slice runs the same offset loop."""

    def forward(self, x):
        xp = get_array_module(x)  # NumPy, or CuPy for device arrays
        self.in_shape, self.dtype = x.shape, x.dtype
        nd = len(self.kernel)
        self.pairs = (self.sink is None and self.kernel == (2, 2) and self.stride == (2, 2)
                      and not any(self.padding) and self.dilation == (1, 1)
                      and tuple(self.out) == (x.shape[-2] // 2, x.shape[-1] // 2)
                      and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0)
        if self.pairs:
            return self._forward_pairs(x)
        buf = _padded(x, self.padding, self.pad_hi, -np.inf)
        out_shape = x.shape[:-nd] + tuple(self.out)
        y = xp.empty(out_shape, x.dtype)
        track = self.needs_input_grad[0] or self.sink is not None
        idx = xp.zeros(out_shape, _index_dtype(math.prod(self.kernel))) if track else None

        def part(s, e):
            b, ys = buf[s:e], y[s:e]
            windows = _offsets(self.kernel, self.stride, self.dilation, self.out)
            xp.copyto(ys, b[next(windows)])
            if track:
                ids = idx[s:e]
                larger = xp.empty(ys.shape, bool)
                step = xp.empty(ys.shape, ids.dtype)
            for o, sl in enumerate(windows, start=1):
                v = b[sl]
                if track:
                    # strictly greater: an equal later value does not take over, so the first
                    # maximum in scan order wins. idx = where(larger, o, idx), written as
                    # idx += larger * (o - idx) because masked writes are ~30x slower in NumPy.
                    xp.greater(v, ys, out=larger)
                    xp.subtract(ids.dtype.type(o), ids, out=step)
                    xp.multiply(step, larger, out=step)
                    ids += step
                xp.maximum(ys, v, out=ys)

        _run(xp, part, x.shape[0], x.size)
        if track:
            self.idx = idx
            if self.sink is not None:
                self.sink["idx"] = idx
        return y

    # 2x2 windows with stride 2 (the common case) as a two-round tournament: the max of each
    # horizontal pair, then of each vertical pair of those. Two maximum calls instead of
    # three, the second on contiguous rows, and two "right/bottom beats left/top" bits
    # instead of a window-offset index; the strict comparisons keep PyTorch's rule (the first
    # maximum in row-major scan order wins a tie). Backward splits each gradient by the bits:
    # no index compare, no scatter.
    def _forward_pairs(self, x):
        xp = get_array_module(x)
        y = xp.empty(x.shape[:-1] + (x.shape[-1] // 2,), x.dtype)  # row maxima, then y
        out = xp.empty(x.shape[:-2] + tuple(self.out), x.dtype)
        track = self.needs_input_grad[0]
        right = xp.empty(y.shape, bool) if track else None
        bottom = xp.empty(out.shape, bool) if track else None

        def part(s, e):
            xs, rows = x[s:e], y[s:e]
            left, rt = xs[..., 0::2], xs[..., 1::2]
            xp.maximum(left, rt, out=rows)
            top, bot = rows[..., 0::2, :], rows[..., 1::2, :]
            xp.maximum(top, bot, out=out[s:e])
            if track:
                xp.greater(rt, left, out=right[s:e])
                xp.greater(bot, top, out=bottom[s:e])

        _run(xp, part, x.shape[0], x.size)
        self.right, self.bottom = right, bottom
        return out

    def _backward_pairs(self, gy):
        xp = get_array_module(gy)
        gx = xp.empty(self.in_shape, gy.dtype)
        grow = xp.empty(self.in_shape[:-1] + (self.in_shape[-1] // 2,), gy.dtype)

        def part(s, e):
            g, gr, gxs = gy[s:e], grow[s:e], gx[s:e]
            bot = gr[..., 1::2, :]
            xp.multiply(g, self.bottom[s:e], out=bot)
            xp.subtract(g, bot, out=gr[..., 0::2, :])
            rt = gxs[..., 1::2]
            xp.multiply(gr, self.right[s:e], out=rt)
            xp.subtract(gr, rt, out=gxs[..., 0::2])

        _run(xp, part, gy.shape[0], gx.size)
        return gx

    def backward(self, gy):
        if self.pairs:
            return self._backward_pairs(gy)
        xp = get_array_module(gy)
        buf, disjoint, _ = self._grad_buffer(gy)

        def part(s, e):
            b, g, ids = buf[s:e], gy[s:e], self.idx[s:e]
            for o, sl in enumerate(_offsets(self.kernel, self.stride, self.dilation,
                                            self.out)):
                if disjoint:
                    xp.multiply(g, ids == o, out=b[sl])
                else:
                    view = b[sl]
                    view += g * (ids == o)

        _run(xp, part, gy.shape[0], buf.size)
        return self._unpad(buf)


class AvgPool(_Pool):
    """Mean over each window, divided by the window count PyTorch uses."""

    def forward(self, x):
        self.in_shape, self.dtype = x.shape, x.dtype
        buf = _padded(x, self.padding, self.pad_hi, 0)
        windows = _offsets(self.kernel, self.stride, self.dilation, self.out)
        xp = get_array_module(x)
        y = xp.array(buf[next(windows)], copy=True)
        for sl in windows:
            y += buf[sl]
        self.divisor = _avg_divisor(x.shape[-len(self.kernel):], self.kernel, self.stride,
                                    self.padding, self.out, self.count_include_pad,
                                    self.divisor_override, x.dtype)
        if xp is not np and not isinstance(self.divisor, float):
            self.divisor = xp.asarray(self.divisor)  # per-window counts, made on the host
        y /= self.divisor
        return y

    def backward(self, gy):
        g = gy / self.divisor
        buf, disjoint, windows = self._grad_buffer(gy)
        for sl in windows:
            if disjoint:
                buf[sl] = g
            else:
                view = buf[sl]
                view += g
        return self._unpad(buf)


def _avg_divisor(spatial, kernel, stride, padding, out, count_include_pad, override, dtype):
    """The per-window divisor: a Python number when it is the same everywhere, else an array
    that broadcasts over the output's spatial dims."""
    if override is not None:
        return float(override)
    nd = len(kernel)
    counts = []
    for i, (L, k, s, p, n) in enumerate(zip(spatial, kernel, stride, padding, out)):
        start = np.arange(n) * s - p
        end = np.minimum(start + k, L + p)  # windows are cut at the end of the padding
        c = end - start if count_include_pad else (np.minimum(end, L) - np.maximum(start, 0))
        counts.append(c.reshape((n,) + (1,) * (nd - 1 - i)))
    if all((c == k).all() for c, k in zip(counts, kernel)):
        return float(math.prod(kernel))
    total = counts[0]
    for c in counts[1:]:
        total = total * c
    return total.astype(dtype)


# ----------------------------------------------------------------------- front ends
def _max_pool(x, nd, kernel_size, stride, padding, dilation, ceil_mode, return_indices, where):
    _check_input(x, nd, where)
    kernel = _int_tuple(kernel_size, nd, where, "kernel_size", 1)
    stride = kernel if stride is None or stride == () or stride == [] else \
        _int_tuple(stride, nd, where, "stride", 1)
    padding = _int_tuple(padding, nd, where, "padding", 0)
    dilation = _int_tuple(dilation, nd, where, "dilation", 1)
    out, pad_hi = _geometry(where, x.shape, kernel, stride, padding, dilation, ceil_mode)
    sink = {} if return_indices else None
    y = MaxPool.apply(x, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                      out=out, pad_hi=pad_hi, sink=sink)
    if not return_indices:
        return y
    return y, Tensor._wrap(_flat_indices(sink["idx"], x.shape[-nd:], kernel, stride, padding,
                                         dilation))


def _flat_indices(idx, spatial, kernel, stride, padding, dilation):
    """Window offsets -> flat positions in each input plane (PyTorch's ``return_indices``)."""
    nd = len(kernel)
    xp = get_array_module(idx)
    pos = xp.unravel_index(idx, kernel)
    flat = xp.zeros(idx.shape, np.int64)
    for i in range(nd):
        n = idx.shape[-nd + i]
        base = (xp.arange(n) * stride[i] - padding[i]).reshape((n,) + (1,) * (nd - 1 - i))
        coord = base + pos[i].astype(np.int64) * dilation[i]
        flat = flat * spatial[i] + coord
    return flat


def _avg_pool(x, nd, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override, where):
    _check_input(x, nd, where)
    kernel = _int_tuple(kernel_size, nd, where, "kernel_size", 1)
    stride = kernel if stride is None or stride == () or stride == [] else \
        _int_tuple(stride, nd, where, "stride", 1)
    padding = _int_tuple(padding, nd, where, "padding", 0)
    if divisor_override is not None and (not isinstance(divisor_override, int | np.integer)
                                         or divisor_override <= 0):
        raise ValueError(f"{where}: divisor_override must be a positive int or None, "
                         f"got {divisor_override!r}")
    dilation = (1,) * nd
    out, pad_hi = _geometry(where, x.shape, kernel, stride, padding, dilation, ceil_mode)
    return AvgPool.apply(x, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                         out=out, pad_hi=pad_hi, count_include_pad=bool(count_include_pad),
                         divisor_override=divisor_override)


_MAX_DOC = """{nd}-D max pooling: the largest value in each window.

    ``y[n, c, i] = max_{{m}} x_pad[n, c, S*i + D*m]`` over the kernel offsets ``m``, where
    ``x_pad`` is padded with ``-inf`` (so padding never wins).

    Backward routes each output gradient to the arg-max of its window (the subgradient of
    max); all other elements of the window get 0. Ties: the first maximum in window scan order
    (row-major over the kernel offsets) receives the gradient, as in PyTorch. With overlapping
    windows an element collects the gradients of every window it wins.

    Args:
        input: {layout} tensor.
        kernel_size: window size (int or tuple of {nd}).
        stride: window step; default ``kernel_size``.
        padding: implicit ``-inf`` padding on both sides, at most ``kernel_size // 2``.
        dilation: spacing between window elements. Default 1.
        ceil_mode: round the output size up (a last, partial window) instead of down.
        return_indices: also return the arg-max positions, flat within each input plane
            (int64, as ``torch``).

    Shape:
        ``L_out = floor((L_in + 2P - D(K-1) - 1) / S) + 1`` per spatial dim (``ceil`` with
        ``ceil_mode``, dropping a last window that would start in the right padding).

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> x = fb.tensor([[1., 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
        >>> F.max_pool2d(x.reshape(1, 1, 4, 4), 2).reshape(2, 2).tolist()
        [[6.0, 8.0], [3.0, 4.0]]
    """


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    return _max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    return _max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, "max_pool2d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    return _max_pool(input, 3, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, "max_pool3d")


max_pool1d.__doc__ = _MAX_DOC.format(nd=1, layout="(N, C, L) or (C, L)")
max_pool2d.__doc__ = _MAX_DOC.format(nd=2, layout="(N, C, H, W) or (C, H, W)")
max_pool3d.__doc__ = _MAX_DOC.format(nd=3, layout="(N, C, D, H, W) or (C, D, H, W)")

_AVG_DOC = """{nd}-D average pooling: the mean of each window.

    ``y[n, c, i] = (1 / divisor) * sum_{{m}} x_pad[n, c, S*i + m]`` with ``x_pad`` zero-padded.
    The divisor is the window size counted up to the end of the padding
    (``count_include_pad=True``), or only the real input elements in the window
    (``count_include_pad=False``){override}. Backward spreads ``dL/dy / divisor`` evenly over
    the window.

    Args:
        input: {layout} tensor.
        kernel_size: window size (int or tuple of {nd}).
        stride: window step; default ``kernel_size``.
        padding: implicit zero padding on both sides, at most ``kernel_size // 2``.
        ceil_mode: round the output size up instead of down.
        count_include_pad: count padding zeros in the divisor. Default True.{override_arg}

    Shape:
        ``L_out = floor((L_in + 2P - K) / S) + 1`` per spatial dim (``ceil`` with ``ceil_mode``).

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> x = fb.tensor([[1., 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
        >>> F.avg_pool2d(x.reshape(1, 1, 4, 4), 2).reshape(2, 2).tolist()
        [[3.25, 5.25], [2.0, 2.0]]
    """
_OVERRIDE = ", or ``divisor_override`` when given"
_OVERRIDE_ARG = "\n        divisor_override: divide every window by this int instead."


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    return _avg_pool(input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     None, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    return _avg_pool(input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, "avg_pool2d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    return _avg_pool(input, 3, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, "avg_pool3d")


avg_pool1d.__doc__ = _AVG_DOC.format(nd=1, layout="(N, C, L) or (C, L)", override="",
                                     override_arg="")
avg_pool2d.__doc__ = _AVG_DOC.format(nd=2, layout="(N, C, H, W) or (C, H, W)",
                                     override=_OVERRIDE, override_arg=_OVERRIDE_ARG)
avg_pool3d.__doc__ = _AVG_DOC.format(nd=3, layout="(N, C, D, H, W) or (C, D, H, W)",
                                     override=_OVERRIDE, override_arg=_OVERRIDE_ARG)


# ------------------------------------------------------------------------- adaptive
def adaptive_bins(L: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin ``i`` of ``n`` over a length ``L`` is ``[floor(i*L/n), ceil((i+1)*L/n))``."""
    i = np.arange(n)
    return (i * L) // n, -((-(i + 1) * L) // n)


def matmul_along(a, m, axis: int):
    """Contract axis ``axis`` of ``a`` (length L) with the matrix ``m`` of shape (n, L)."""
    axis %= a.ndim
    if type(a) is not np.ndarray:
        m = get_array_module(a).asarray(m)  # the matrix is built on the host
    if axis == a.ndim - 1:
        return a @ m.T
    lead, rest = a.shape[:axis], a.shape[axis + 1:]
    a3 = a.reshape(math.prod(lead), a.shape[axis], math.prod(rest))
    return (m @ a3).reshape(lead + (m.shape[0],) + rest)


def _adaptive_avg_matrix(L: int, n: int, dtype):
    start, end = adaptive_bins(L, n)
    cols = np.arange(L)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


class AdaptiveAvgPool(Function):
    """Separable: averaging along each spatial axis in turn is linear, so each axis is either
    untouched (L == n), a reshape-mean (L divisible by n), or a product with an (n, L)
    averaging matrix (overlapping bins); backward applies the transposes in reverse."""

    def forward(self, x):
        nd = len(self.out)
        self.in_shape, self.dtype = x.shape, x.dtype
        y = x
        for i, n in enumerate(self.out):
            axis = x.ndim - nd + i
            L = y.shape[axis]
            if L == n:
                continue
            if L % n == 0:
                y = y.reshape(y.shape[:axis] + (n, L // n) + y.shape[axis + 1:]).mean(axis + 1)
            else:
                y = matmul_along(y, _adaptive_avg_matrix(L, n, x.dtype), axis)
        return y if y is not x else x.copy()  # never alias the input

    def backward(self, gy):
        nd = len(self.out)
        g = gy
        for i in reversed(range(nd)):
            axis = gy.ndim - nd + i
            L, n = self.in_shape[axis], self.out[i]
            if L == n:
                continue
            if L % n == 0:
                k = L // n
                g = get_array_module(g).repeat(g / g.dtype.type(k), k, axis=axis)
            else:
                g = matmul_along(g, _adaptive_avg_matrix(L, n, self.dtype).T, axis)
        return g


class AdaptiveMaxPool(Function):
    """Overlapping-bin adaptive max. Reduced one axis at a time from the last spatial axis to
    the first, with ``argmax`` (first occurrence) at each step: the first row holding the max,
    then the first column in it, i.e. the first maximum in row-major scan order (PyTorch's tie
    rule). Backward scatters by flat index with ``bincount``, which sums duplicates (bins of
    neighbouring outputs can share an element)."""

    def forward(self, x):
        nd = len(self.out)
        self.in_shape, self.dtype = x.shape, x.dtype
        xp = get_array_module(x)
        vals, found = x, {}
        for i in reversed(range(nd)):
            axis = x.ndim - nd + i
            start, end = adaptive_bins(x.shape[axis], self.out[i])
            parts_v, parts_i = [], []
            for s, e in zip(start, end):
                seg = vals[(slice(None),) * axis + (slice(int(s), int(e)),)]
                a = seg.argmax(axis=axis, keepdims=True)
                parts_v.append(xp.take_along_axis(seg, a, axis))
                parts_i.append(a + s)
            vals = xp.concatenate(parts_v, axis=axis)
            where = xp.concatenate(parts_i, axis=axis)
            for j in found:  # earlier (inner) axes: follow the rows that were picked
                found[j] = xp.take_along_axis(found[j], where, axis)
            found[i] = where
        flat = xp.zeros(vals.shape, np.int64)
        for i in range(nd):
            flat = flat * x.shape[x.ndim - nd + i] + found[i]
        self.flat = flat
        if self.sink is not None:
            self.sink["flat"] = flat
        return vals

    def backward(self, gy):
        nd = len(self.out)
        plane = math.prod(self.in_shape[-nd:])
        lead = math.prod(self.in_shape[:-nd])
        xp = get_array_module(gy)
        pos = self.flat.reshape(lead, -1) + (xp.arange(lead) * plane)[:, None]
        g = xp.bincount(pos.ravel(), weights=gy.reshape(-1), minlength=lead * plane)
        return g.astype(self.dtype).reshape(self.in_shape)


def _output_tuple(output_size, x, nd: int, where) -> tuple[int, ...]:
    sizes = (output_size,) * nd if output_size is None or isinstance(
        output_size, int | np.integer) else tuple(output_size)
    if len(sizes) != nd or not all(
            s is None or (isinstance(s, int | np.integer) and not isinstance(s, bool))
            for s in sizes):
        raise TypeError(f"{where}: output_size must be an int or a tuple of {nd} ints (None "
                        f"keeps the input size), got {output_size!r}")
    sizes = tuple(int(L if s is None else s) for s, L in zip(sizes, x.shape[-nd:]))
    if any(s <= 0 for s in sizes):
        raise ValueError(f"{where}: output_size must be positive, got {output_size!r}")
    return sizes


def _adaptive_avg(x, nd, output_size, where) -> Tensor:
    _check_input(x, nd, where)
    out = _output_tuple(output_size, x, nd, where)
    return AdaptiveAvgPool.apply(x, out=out)


def _adaptive_max(x, nd, output_size, return_indices, where):
    _check_input(x, nd, where)
    out = _output_tuple(output_size, x, nd, where)
    spatial = x.shape[-nd:]
    if all(L % n == 0 for L, n in zip(spatial, out)):
        k = tuple(L // n for L, n in zip(spatial, out))  # disjoint bins: a plain max pool
        return _max_pool(x, nd, k, k, 0, 1, False, return_indices, where)
    sink = {} if return_indices else None
    y = AdaptiveMaxPool.apply(x, out=out, sink=sink)
    return (y, Tensor._wrap(sink["flat"])) if return_indices else y


_ADAPTIVE_AVG_DOC = """{nd}-D adaptive average pooling to a fixed output size.

    Output element ``i`` (per spatial dim) averages the bin
    ``[floor(i * L_in / L_out), ceil((i + 1) * L_in / L_out))``; the bins tile the input
    exactly when ``L_in % L_out == 0`` (a plain average pool) and overlap by one otherwise.
    The op is linear and separable, so it is computed one axis at a time and backward applies
    the transposed averaging along each axis.

    Args:
        input: {layout} tensor.
        output_size: int or tuple of {nd}; ``None`` entries keep the input size.

    Shape:
        ``(*, {shape_in}) -> (*, {shape_out})``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.{name}(fb.ones({ones}), {size}).shape
        {result}
    """


def adaptive_avg_pool1d(input, output_size) -> Tensor:
    return _adaptive_avg(input, 1, output_size, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    return _adaptive_avg(input, 2, output_size, "adaptive_avg_pool2d")


adaptive_avg_pool1d.__doc__ = _ADAPTIVE_AVG_DOC.format(
    nd=1, layout="(N, C, L) or (C, L)", shape_in="L_in", shape_out="L_out",
    name="adaptive_avg_pool1d", ones="2, 3, 10", size="4", result="(2, 3, 4)")
adaptive_avg_pool2d.__doc__ = _ADAPTIVE_AVG_DOC.format(
    nd=2, layout="(N, C, H, W) or (C, H, W)", shape_in="H_in, W_in", shape_out="H_out, W_out",
    name="adaptive_avg_pool2d", ones="2, 3, 10, 10", size="(4, 5)", result="(2, 3, 4, 5)")


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """2-D adaptive max pooling to a fixed output size.

    Output ``(i, j)`` is the max over the bin ``[floor(i*H_in/H_out), ceil((i+1)*H_in/H_out))``
    x ``[floor(j*W_in/W_out), ceil((j+1)*W_in/W_out))``. When the sizes divide this is a plain
    max pool with ``kernel_size = stride = H_in / H_out`` (and is computed as one); otherwise
    the bins overlap and each axis is reduced with one ``argmax`` per output position. The
    gradient goes to the arg-max; ties go to the first maximum in row-major scan order of the
    bin (as PyTorch).

    Args:
        input: (N, C, H, W) or (C, H, W) tensor.
        output_size: int or (H_out, W_out); ``None`` entries keep the input size.
        return_indices: also return the arg-max positions, flat within each input plane.

    Shape:
        ``(*, H_in, W_in) -> (*, H_out, W_out)``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.adaptive_max_pool2d(fb.arange(25.0).reshape(1, 1, 5, 5), 2).tolist()
        [[[[12.0, 14.0], [22.0, 24.0]]]]
    """
    return _adaptive_max(input, 2, output_size, return_indices, "adaptive_max_pool2d")


def global_avg_pool2d(input, keepdim: bool = False) -> Tensor:
    """Global average pooling: the mean of each channel over all spatial positions.

    ``y[n, c] = (1 / (H W)) * sum_{h, w} x[n, c, h, w]``; backward spreads ``dL/dy / (H W)``
    evenly over the plane. Equivalent to ``adaptive_avg_pool2d(x, 1)`` followed by flattening,
    the usual classifier head of ResNet-style networks.

    Args:
        input: (N, C, H, W) tensor.
        keepdim: keep the spatial dims as size 1, giving (N, C, 1, 1). Default False: (N, C).

    Shape:
        ``(N, C, H, W) -> (N, C)`` (or ``(N, C, 1, 1)`` with ``keepdim``).

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.global_avg_pool2d(fb.ones(8, 16, 7, 7)).shape
        (8, 16)
    """
    return _global_avg(input, keepdim, "global_avg_pool2d")


def _global_avg(input, keepdim, where) -> Tensor:
    if not isinstance(input, Tensor):
        raise TypeError(f"{where}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim != 4:
        raise ValueError(f"{where}: expected a 4-D (N, C, H, W) input, got a {input.ndim}-D "
                         f"tensor of shape {tuple(input.shape)}")
    _check_input(input, 2, where)
    return input.mean(axis=(2, 3), keepdims=keepdim)
