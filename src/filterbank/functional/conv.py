"""Convolution: ``conv1d/2d/3d`` and the transposed (up-)convolution ``conv_transpose1d/2d/3d``.

Forward and backward are written by hand, for any number of spatial dims, on one geometry:

* **im2col + GEMM** (every case). For each kernel offset ``k`` the strided slice of the input
  that offset sees is copied into ``cols[c, k, n, *out]`` (a loop over kernel offsets, never
  over pixels), then one GEMM per group does all the multiply-adds:
  ``Y[o, (n, l)] = sum_(c, k) W[o, (c, k)] cols[(c, k), (n, l)]``.
  Backward is two more GEMMs: ``dW = dY cols^T`` and ``dcols = W^T dY``; ``dcols`` is folded
  back onto the input by adding each offset's slice into ``dx`` (col2im).
* **Winograd** ``F(2x2, 3x3)`` for 2-d 3x3, stride-1, undilated convolutions (the bulk of VGG
  and ResNet). The output is cut into 2x2 tiles, each computed from a 4x4 input tile with 16
  multiplications per (input, output) channel pair instead of 36:
  ``Y = A^T [(G g G^T) * (B^T d B)] A``. Both transforms are small matrices applied as GEMMs,
  the 16 products ``U[k] V[k]`` are 16 GEMMs over the channels, so the GEMM work drops 2.25x.
  Backward differentiates the same bilinear form: ``dM = A dY A^T``, ``dU = dM V^T`` and
  ``dV = U^T dM`` (then ``B dV B^T`` folded back onto the input tiles).

Big scratch arrays come from a small workspace that reuses an array only once nothing else
references it (NumPy views keep their base alive), so buffers a graph saved for backward, or
outputs a caller still holds, are never overwritten; reuse avoids the page faults a fresh
allocation of tens of MiB costs.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Sequence

import numpy as np

from filterbank.autograd.function import Function
from filterbank.tensor import Tensor

# ---------------------------------------------------------------------------------- workspace


class _Workspace:
    """Reusable large arrays, keyed by byte size and dtype.

    ``empty(shape, dtype)`` hands out an array that no one else references (checked with the
    reference count of its owning base array: every NumPy view holds a reference to it), so
    reuse can never clobber data that a graph or a caller still holds. Arrays smaller than
    ``min_bytes`` are left to the allocator; idle arrays beyond ``max_idle_bytes`` are dropped,
    oldest first.
    """

    _FREE_REFS = 3  # the list slot, the local variable and getrefcount's own argument

    def __init__(self, min_bytes: int = 1 << 20, max_idle_bytes: int = 1 << 30):
        self.min_bytes = min_bytes
        self.max_idle_bytes = max_idle_bytes
        self._arrays: dict[tuple[int, str], list[np.ndarray]] = {}

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes < self.min_bytes:
            return np.empty(shape, dtype)
        key = (nbytes, dtype.str)
        pool = self._arrays.setdefault(key, [])
        for i in range(len(pool)):  # (enumerate's cached tuple would hold a reference)
            base = pool[i]
            if sys.getrefcount(base) == self._FREE_REFS:
                pool.append(pool.pop(i))  # most recently used last
                return base.reshape(shape)
            del base
        base = np.empty(count, dtype)
        pool.append(base)
        self._trim()
        return base.reshape(shape)

    def zeros(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        a = self.empty(shape, dtype)
        a.fill(0)
        return a

    def _trim(self) -> None:
        # getrefcount(pool[i]) == 2: the list slot and the call's argument, nothing else
        idle = [(key, id(pool[i]), pool[i].nbytes) for key, pool in self._arrays.items()
                for i in range(len(pool)) if sys.getrefcount(pool[i]) == 2]
        total = sum(n for _, _, n in idle)
        for key, ident, n in idle:  # least recently used first within each size
            if total <= self.max_idle_bytes:
                break
            pool = self._arrays[key]
            pool[:] = [a for a in pool if id(a) != ident]
            total -= n

    def clear(self) -> None:
        """Forget every array (those still in use stay alive with their users)."""
        self._arrays.clear()


_workspace = _Workspace()


# --------------------------------------------------------------------- argument normalisation


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _ntuple(value, n: int, what: str, name: str, minimum: int) -> tuple[int, ...]:
    if _is_int(value):
        out = (int(value),) * n
    elif isinstance(value, tuple | list) and len(value) == n and all(_is_int(v) for v in value):
        out = tuple(int(v) for v in value)
    else:
        raise ValueError(f"{name}: expected {what} to be an int or a tuple of {n} ints, "
                         f"got {value!r}")
    if min(out) < minimum:
        raise ValueError(f"{name}: expected {what} >= {minimum}, got {value!r}")
    return out


def _padding_pairs(padding, n: int, kernel, stride, dilation, name: str):
    """Per spatial dim ``(before, after)`` zero padding; 'same' pads ``d (k - 1)`` in total,
    the odd one after (as PyTorch)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions, got stride={stride}")
            pairs = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"{name}: padding must be an int, a tuple of {n} ints, 'valid' or "
                         f"'same', got {padding!r}")
    p = _ntuple(padding, n, "padding", name, 0)
    return tuple((v, v) for v in p)


def _as_tensor(x, name: str, what: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor._wrap(x)
    raise TypeError(f"{name}: expected {what} to be a Tensor, got {type(x).__name__}")


# ------------------------------------------------------------------------------- geometry


class _Geometry:
    """Shapes of one convolution ``x (N, C, *S) * w (O, C/groups, *K) -> y (N, O, *So)``."""

    def __init__(self, xshape, wshape, stride, pads, dilation, groups, out_spatial=None):
        self.N, self.C = int(xshape[0]), int(xshape[1])
        self.S = tuple(int(s) for s in xshape[2:])
        self.O = int(wshape[0])
        self.K = tuple(int(k) for k in wshape[2:])
        self.nd = len(self.S)
        self.stride, self.pads, self.dilation = tuple(stride), tuple(pads), tuple(dilation)
        self.groups = int(groups)
        self.Cg, self.Og = self.C // self.groups, self.O // self.groups
        self.So = tuple((s + lo + hi - d * (k - 1) - 1) // st + 1
                        for s, (lo, hi), k, st, d in zip(self.S, pads, self.K, stride, dilation))
        if out_spatial is not None:  # a transposed conv's input, when output_padding >= stride
            self.So = tuple(int(s) for s in out_spatial)
        self.KK = math.prod(self.K)
        self.Lo = math.prod(self.So)
        self._plans = None

    @property
    def plans(self):
        """Per kernel offset: (empty, input slices, output slices) of the in-bounds region."""
        if self._plans is None:
            plans = []
            for kidx in itertools.product(*(range(k) for k in self.K)):
                src, dst, empty = [], [], False
                for k, s, so, st, d, (lo, _) in zip(kidx, self.S, self.So, self.stride,
                                                    self.dilation, self.pads):
                    shift = k * d - lo  # input index of output 0
                    o_lo = max(0, -(shift // st))
                    o_hi = min(so, (s - 1 - shift) // st + 1)
                    if o_hi <= o_lo:
                        empty = True
                        break
                    i0 = o_lo * st + shift
                    src.append(slice(i0, i0 + (o_hi - o_lo - 1) * st + 1, st))
                    dst.append(slice(o_lo, o_hi))
                plans.append((empty, tuple(src), tuple(dst)))
            self._plans = plans
        return self._plans


_ALL2 = (slice(None), slice(None))


def _swap01(a: np.ndarray) -> np.ndarray:
    return a.swapaxes(0, 1)


def _zero_outside(a: np.ndarray, box: tuple[slice, ...], lead: int = 2) -> None:
    """Zero ``a`` outside ``box`` (slices of its trailing dims)."""
    for i, sl in enumerate(box):
        head = (slice(None),) * (lead + i)
        if sl.start > 0:
            a[head + (slice(0, sl.start),)] = 0
        if sl.stop < a.shape[lead + i]:
            a[head + (slice(sl.stop, None),)] = 0


# -------------------------------------------------------------------------- im2col kernels


def _im2col(x: np.ndarray, g: _Geometry) -> np.ndarray:
    """``cols[c, k, n, *o] = x_padded[n, c, o * stride + k * dilation]``, shape (C, KK, N, *So)."""
    cols = _workspace.empty((g.C, g.KK, g.N) + g.So, x.dtype)
    xt = _swap01(x)
    for kk, (empty, src, dst) in enumerate(g.plans):
        d = cols[:, kk]
        if empty:
            d.fill(0)
            continue
        d[_ALL2 + dst] = xt[_ALL2 + src]
        _zero_outside(d, dst)
    return cols


def _col2im(dcols: np.ndarray, g: _Geometry, dtype) -> np.ndarray:
    """The adjoint of :func:`_im2col`: add each offset's columns back onto ``dx``."""
    dx = _workspace.empty((g.N, g.C) + g.S, dtype)
    dxt = _swap01(dx)
    first = None  # an offset that covers all of x (stride 1) initialises dx with a copy
    for kk, (empty, src, _) in enumerate(g.plans):
        if not empty and all(sl.start == 0 and sl.step == 1 and sl.stop == s
                             for sl, s in zip(src, g.S)):
            first = kk
            break
    if first is None:
        dx.fill(0)
    else:
        dxt[...] = dcols[:, first][_ALL2 + g.plans[first][2]]
    for kk, (empty, src, dst) in enumerate(g.plans):
        if empty or kk == first:
            continue
        view = dxt[_ALL2 + src]
        np.add(view, dcols[:, kk][_ALL2 + dst], out=view)
    return dx


def _nchw_from_cnhw(a: np.ndarray, g: _Geometry, channels: int, bias, spatial) -> np.ndarray:
    """(channels, N, *spatial) -> a new (N, channels, *spatial) array, adding ``bias``."""
    out = _workspace.empty((g.N, channels) + spatial, a.dtype)
    src = _swap01(a.reshape((channels, g.N) + spatial))
    if bias is None:
        np.copyto(out, src)
    else:
        np.add(src, bias.reshape((1, channels) + (1,) * len(spatial)), out=out)
    return out


def _cnhw(a: np.ndarray) -> np.ndarray:
    """(N, C, *S) -> contiguous (C, N, *S) workspace copy."""
    out = _workspace.empty((a.shape[1], a.shape[0]) + a.shape[2:], a.dtype)
    np.copyto(out, _swap01(a))
    return out


def _bias_grad(gy: np.ndarray) -> np.ndarray:
    return gy.sum(axis=(0,) + tuple(range(2, gy.ndim)))


class _Im2col:
    """Direct convolution by im2col + one GEMM per group (any nd, stride, dilation, groups)."""

    @staticmethod
    def forward(fn, x, w, b, g: _Geometry):
        cols = _im2col(x, g)
        wm = w.reshape(g.groups, g.Og, g.Cg * g.KK)
        out = _workspace.empty((g.groups, g.Og, g.N * g.Lo), x.dtype)
        np.matmul(wm, cols.reshape(g.groups, g.Cg * g.KK, g.N * g.Lo), out=out)
        y = _nchw_from_cnhw(out, g, g.O, b, g.So)
        if fn.needs_input_grad[1]:
            fn.cols = cols
        if fn.needs_input_grad[0]:
            fn.w = w
        return y

    @staticmethod
    def backward(fn, gy, g: _Geometry):
        need_x, need_w = fn.needs_input_grad[:2]
        need_b = len(fn.needs_input_grad) > 2 and fn.needs_input_grad[2]
        gyt = _cnhw(gy).reshape(g.groups, g.Og, g.N * g.Lo)
        dx = dw = db = None
        if need_b:
            db = gyt.reshape(g.O, -1).sum(axis=1)
        if need_w:
            cols = fn.cols.reshape(g.groups, g.Cg * g.KK, g.N * g.Lo)
            dw = np.matmul(gyt, cols.transpose(0, 2, 1)).reshape((g.O, g.Cg) + g.K)
        if need_x:
            dx = _Im2col.input_grad(gyt, fn.w, g)
        return dx, dw, db

    @staticmethod
    def input_grad(gyt, w, g: _Geometry):
        """``dx`` from ``gyt`` (groups, Og, N * Lo): dcols = W^T dY, then col2im."""
        wt = np.ascontiguousarray(w.reshape(g.groups, g.Og, g.Cg * g.KK).transpose(0, 2, 1))
        dcols = _workspace.empty((g.C, g.KK, g.N) + g.So, gyt.dtype)
        np.matmul(wt, gyt, out=dcols.reshape(g.groups, g.Cg * g.KK, g.N * g.Lo))
        return _col2im(dcols, g, gyt.dtype)


# ------------------------------------------------------------------------- Winograd kernels

_WINOGRAD_MATS: dict = {}


class _Winograd:
    """2-d 3x3 stride-1 convolution by Winograd's minimal filtering F(m x m, 3 x 3).

    Tiles: output tile (ty, tx) covers ``y[m ty : m ty + m, m tx : m tx + m]`` and reads the
    ``alpha x alpha`` input tile at ``x_padded[m ty :, m tx :]`` (alpha = m + 2). The padded
    input is split into its m x m polyphase components ``P[p, q][i, j] = x_pad[m i + p,
    m j + q]``, stored flat over (c, n, i, j) on an ``(th + 1) x (tw + 1)`` grid. The tile
    element (a, b) of every tile is then ``P[a % m, b % m]`` shifted by ``(a // m, b // m)``
    grid steps: one contiguous copy per element, with one garbage tile column and row per
    image that the output never reads (and whose gradient is zero).
    """

    # Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016), F(2, 3).
    m, alpha = 2, 4
    BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
    G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
    AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)

    @classmethod
    def applies(cls, g: _Geometry) -> bool:
        return (g.nd == 2 and g.K == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1)
                and g.Cg >= 16 and g.Og >= 16 and min(g.So) >= 8)

    @classmethod
    def _mats(cls, dtype):
        """(B^T (x) B^T, its transpose, A^T (x) A^T, its transpose): the 2-d transforms of
        flattened alpha x alpha tiles, in ``dtype``."""
        key = (cls.m, np.dtype(dtype).str)
        if key not in _WINOGRAD_MATS:
            bb = np.kron(cls.BT, cls.BT)
            aa = np.kron(cls.AT, cls.AT)
            _WINOGRAD_MATS[key] = tuple(np.ascontiguousarray(a, dtype=dtype)
                                        for a in (bb, bb.T, aa, aa.T))
        return _WINOGRAD_MATS[key]

    @classmethod
    def _grid(cls, g: _Geometry):
        m = cls.m
        th, tw = -(-g.So[0] // m), -(-g.So[1] // m)
        hq, wq = th + 1, tw + 1
        return hq, wq, g.C * g.N * hq * wq

    @classmethod
    def _phase_range(cls, p, pad, size, nq):
        """Grid indices i with ``m i + p - pad`` inside [0, size), clipped to [0, nq)."""
        m = cls.m
        lo = max(0, -((p - pad) // m))
        hi = min(nq, (size - 1 + pad - p) // m + 1)
        return lo, max(lo, hi)

    @classmethod
    def forward(cls, fn, x, w, b, g: _Geometry):
        m, al = cls.m, cls.alpha
        bb, _, aa, _ = cls._mats(x.dtype)
        (pt, _), (pl, _) = g.pads
        hq, wq, L = cls._grid(g)
        nlp = g.N * hq * wq
        # polyphase components of the padded input, as the rows (a, b) = (p, q) of D
        d = _workspace.empty((al * al, L + wq + 1), x.dtype)
        xt = _swap01(x)
        for p in range(m):
            i0, i1 = cls._phase_range(p, pt, g.S[0], hq)
            for q in range(m):
                j0, j1 = cls._phase_range(q, pl, g.S[1], wq)
                row = d[p * al + q]
                row[L:] = 0
                ph = row[:L].reshape(g.C, g.N, hq, wq)
                box = (slice(i0, i1), slice(j0, j1))
                ph[_ALL2 + box] = xt[:, :, m * i0 + p - pt::m, m * j0 + q - pl::m][
                    :, :, :i1 - i0, :j1 - j0]
                _zero_outside(ph, box)
        for a, bcol in itertools.product(range(al), range(al)):
            if a < m and bcol < m:
                continue
            off = (a // m) * wq + bcol // m
            np.copyto(d[a * al + bcol, :L], d[(a % m) * al + bcol % m, off:off + L])
        v = _workspace.empty((al * al, L), x.dtype)
        np.matmul(bb, d[:, :L], out=v)
        u = np.einsum("ai,bj,ocij->aboc", cls.G, cls.G, w, dtype=np.float64, optimize=True)
        u = np.ascontiguousarray(u.reshape(al * al, g.groups, g.Og, g.Cg), dtype=x.dtype)
        mm = _workspace.empty((al * al, g.groups, g.Og, nlp), x.dtype)
        np.matmul(u, v.reshape(al * al, g.groups, g.Cg, nlp), out=mm)
        yt = _workspace.empty((m * m, g.O * nlp), x.dtype)
        np.matmul(aa, mm.reshape(al * al, -1), out=yt)
        y = _workspace.empty((g.N, g.O) + g.So, x.dtype)
        yt = yt.reshape(m, m, g.O, g.N, hq, wq)
        for i, j in itertools.product(range(m), range(m)):
            src = _swap01(yt[i, j, :, :, :-(-(g.So[0] - i) // m), :-(-(g.So[1] - j) // m)])
            dst = y[:, :, i::m, j::m]
            if b is None:
                np.copyto(dst, src)
            else:
                np.add(src, b.reshape(1, g.O, 1, 1), out=dst)
        if fn.needs_input_grad[1]:
            fn.v = v
        if fn.needs_input_grad[0]:
            fn.u = u
        return y

    @classmethod
    def backward(cls, fn, gy, g: _Geometry):
        m, al = cls.m, cls.alpha
        _, bbt, _, aat = cls._mats(gy.dtype)
        need_x, need_w = fn.needs_input_grad[:2]
        need_b = len(fn.needs_input_grad) > 2 and fn.needs_input_grad[2]
        (pt, _), (pl, _) = g.pads
        hq, wq, L = cls._grid(g)
        nlp = g.N * hq * wq
        dx = dw = db = None
        if need_b:
            db = _bias_grad(gy)
        # dY split into its m x m output phases on the tile grid, zero on garbage tiles
        gp = _workspace.empty((m * m, g.O, g.N, hq, wq), gy.dtype)
        gyt = _swap01(gy)
        for i, j in itertools.product(range(m), range(m)):
            box = (slice(0, -(-(g.So[0] - i) // m)), slice(0, -(-(g.So[1] - j) // m)))
            dst = gp[i * m + j]
            dst[_ALL2 + box] = gyt[:, :, i::m, j::m]
            _zero_outside(dst, box)
        dmm = _workspace.empty((al * al, g.groups, g.Og, nlp), gy.dtype)
        np.matmul(aat, gp.reshape(m * m, -1), out=dmm.reshape(al * al, -1))
        if need_w:
            v = fn.v.reshape(al * al, g.groups, g.Cg, nlp)
            du = np.matmul(dmm, v.transpose(0, 1, 3, 2)).reshape(al, al, g.O, g.Cg)
            dw = np.einsum("ai,bj,aboc->ocij", cls.G, cls.G, du, dtype=np.float64,
                           optimize=True).astype(gy.dtype)
        if need_x:
            dv = _workspace.empty((al * al, L), gy.dtype)
            np.matmul(fn.u.transpose(0, 1, 3, 2), dmm,
                      out=dv.reshape(al * al, g.groups, g.Cg, nlp))
            dd = _workspace.empty((al * al, L + wq + 1), gy.dtype)
            np.matmul(bbt, dv, out=dd[:, :L])
            for p, q in itertools.product(range(m), range(m)):
                dd[p * al + q, L:] = 0
            # tiles overlap: fold each shifted element back onto its polyphase component
            for a, bcol in itertools.product(range(al), range(al)):
                if a < m and bcol < m:
                    continue
                off = (a // m) * wq + bcol // m
                dst = dd[(a % m) * al + bcol % m, off:off + L]
                np.add(dst, dd[a * al + bcol, :L], out=dst)
            dx = _workspace.empty((g.N, g.C) + g.S, gy.dtype)
            dxt = _swap01(dx)
            for p in range(m):
                i0, i1 = cls._phase_range(p, pt, g.S[0], hq)
                for q in range(m):
                    j0, j1 = cls._phase_range(q, pl, g.S[1], wq)
                    ph = dd[p * al + q, :L].reshape(g.C, g.N, hq, wq)
                    dxt[:, :, m * i0 + p - pt::m, m * j0 + q - pl::m] = ph[:, :, i0:i1, j0:j1]
        return dx, dw, db


# ------------------------------------------------------------------------------- Functions

#: Force an algorithm ("im2col" or "winograd") for testing; None picks the fastest that applies.
_FORCE_ALGO: str | None = None


def _algorithm(g: _Geometry):
    if _FORCE_ALGO == "im2col":
        return _Im2col
    if _FORCE_ALGO == "winograd":
        if not (g.nd == 2 and g.K == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1)):
            raise ValueError("winograd needs a 2-d 3x3 stride-1 undilated convolution")
        return _Winograd
    if _Winograd.applies(g):
        return _Winograd
    return _Im2col


class ConvNd(Function):
    """``y = x * w + b`` (cross-correlation) over 1, 2 or 3 spatial dims.

    Hyperparameters: ``stride``, ``pads`` ((before, after) per dim), ``dilation``, ``groups``.
    """

    def forward(self, x, w, b=None):
        g = _Geometry(x.shape, w.shape, self.stride, self.pads, self.dilation, self.groups)
        if g.N == 0:
            return np.zeros((0, g.O) + g.So, x.dtype)
        algo = _algorithm(g)
        self.geometry, self.algo = g, algo
        return algo.forward(self, x, w, b, g)

    def backward(self, gy):
        g = self.geometry
        if g.N == 0:
            return (np.zeros((0, g.C) + g.S, gy.dtype), np.zeros((g.O, g.Cg) + g.K, gy.dtype),
                    np.zeros((g.O,), gy.dtype))
        return self.algo.backward(self, gy, g)


class ConvTransposeNd(Function):
    """``y = conv_transpose(x, w) + b``: the adjoint (input gradient) of ``ConvNd``.

    ``conv_geometry`` describes the convolution whose input gradient this is: its input is
    ``y`` and its output is ``x``.
    """

    def forward(self, x, w, b=None):
        g = self.conv_geometry
        if g.N == 0:
            return np.zeros((0, g.C) + g.S, x.dtype)
        xt = _cnhw(x).reshape(g.groups, g.Og, g.N * g.Lo)
        y = _Im2col.input_grad(xt, w, g)
        if b is not None:
            np.add(y, b.reshape((1, g.C) + (1,) * g.nd), out=y)
        if self.needs_input_grad[1]:
            self.xt = xt
        if self.needs_input_grad[0]:
            self.w = w
        return y

    def backward(self, gy):
        g = self.conv_geometry
        need_x, need_w = self.needs_input_grad[:2]
        need_b = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        if g.N == 0:
            return (np.zeros((0, g.O) + g.So, gy.dtype), np.zeros((g.O, g.Cg) + g.K, gy.dtype),
                    np.zeros((g.C,), gy.dtype))
        dx = dw = db = None
        if need_b:
            db = _bias_grad(gy)
        if need_x or need_w:
            cols = _im2col(gy, g)
            colsm = cols.reshape(g.groups, g.Cg * g.KK, g.N * g.Lo)
            if need_x:
                wm = self.w.reshape(g.groups, g.Og, g.Cg * g.KK)
                out = _workspace.empty((g.groups, g.Og, g.N * g.Lo), gy.dtype)
                np.matmul(wm, colsm, out=out)
                dx = _nchw_from_cnhw(out, g, g.O, None, g.So)
            if need_w:
                dw = np.matmul(self.xt, colsm.transpose(0, 2, 1)).reshape((g.O, g.Cg) + g.K)
        return dx, dw, db


_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class PadMode(Function):
    """Reflect / replicate / circular padding of the spatial dims (hyper: ``pads``, ``mode``).

    Backward folds the gradient of every padded border back onto the input cell it copied.
    """

    def forward(self, x):
        width = ((0, 0), (0, 0)) + tuple(self.pads)
        self.shape = x.shape
        return np.pad(x, width, mode=_PAD_MODES[self.mode])

    def backward(self, gy):
        g = gy
        for axis in range(2, gy.ndim):
            lo, hi = self.pads[axis - 2]
            size = self.shape[axis]
            inner = _take(g, axis, lo, lo + size).copy()
            left, right = _take(g, axis, 0, lo), _take(g, axis, lo + size, lo + size + hi)
            if self.mode == "circular":
                _add_into(inner, axis, size - lo, size, left)
                _add_into(inner, axis, 0, hi, right)
            elif self.mode == "replicate":
                _add_into(inner, axis, 0, 1, left.sum(axis=axis, keepdims=True))
                _add_into(inner, axis, size - 1, size, right.sum(axis=axis, keepdims=True))
            else:  # reflect: padded index lo - i mirrors x[i], x[size - 1 - i] likewise
                _add_into(inner, axis, 1, lo + 1, np.flip(left, axis))
                _add_into(inner, axis, size - 1 - hi, size - 1, np.flip(right, axis))
            g = inner
        return g


def _take(a, axis, start, stop):
    return a[(slice(None),) * axis + (slice(start, stop),)]


def _add_into(a, axis, start, stop, values):
    if stop > start:
        view = _take(a, axis, start, stop)
        np.add(view, values, out=view)


# ---------------------------------------------------------------------------- public API


def _check_common(name, x, weight, bias, nd, transposed):
    x = _as_tensor(x, name, "input")
    weight = _as_tensor(weight, name, "weight")
    if bias is not None:
        bias = _as_tensor(bias, name, "bias")
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype}")
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{name}: input and {what} must have the same dtype, got "
                            f"{x.dtype} and {t.dtype}")
    if weight.ndim != nd + 2:
        raise ValueError(f"{name}: expected a {nd + 2}-d weight "
                         f"({'C_in, C_out / groups' if transposed else 'C_out, C_in / groups'}"
                         f", *kernel), got shape {tuple(weight.shape)}")
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{name}: expected a {nd + 2}-d (batched) or {nd + 1}-d (unbatched) "
                         f"input, got shape {tuple(x.shape)}")
    return x, weight, bias


def _check_groups(name, groups, c_in, c_out, xshape):
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{name}: expected groups to be a positive int, got {groups!r}")
    if c_in % groups or c_out % groups:
        raise ValueError(f"{name}: groups={groups} must divide both the input channels "
                         f"({c_in}) and the output channels ({c_out}) (input shape {xshape})")


def _check_bias(name, bias, channels):
    if bias is not None and tuple(bias.shape) != (channels,):
        raise ValueError(f"{name}: expected a bias of shape ({channels},), got "
                         f"{tuple(bias.shape)}")


def _batched(x, nd):
    return (x, False) if x.ndim == nd + 2 else (x.reshape((1,) + tuple(x.shape)), True)


def _conv(x, weight, bias, stride, padding, dilation, groups, nd, name, padding_mode="zeros"):
    x, weight, bias = _check_common(name, x, weight, bias, nd, transposed=False)
    kernel = tuple(weight.shape[2:])
    stride = _ntuple(stride, nd, "stride", name, 1)
    dilation = _ntuple(dilation, nd, "dilation", name, 1)
    pads = _padding_pairs(padding, nd, kernel, stride, dilation, name)
    x, unbatched = _batched(x, nd)
    xshape = tuple(x.shape)
    c_out = weight.shape[0]
    _check_groups(name, groups, xshape[1], c_out, xshape)
    if weight.shape[1] * groups != xshape[1]:
        raise ValueError(f"{name}: expected {weight.shape[1] * groups} input channels "
                         f"(weight {tuple(weight.shape)}, groups={groups}), got {xshape[1]} "
                         f"(input shape {xshape})")
    _check_bias(name, bias, c_out)
    if padding_mode != "zeros":
        for (lo, hi), s in zip(pads, xshape[2:]):
            limit = s - 1 if padding_mode == "reflect" else s
            if max(lo, hi) > limit:
                raise ValueError(f"{name}: {padding_mode} padding {pads} needs at most "
                                 f"{limit} per side for input shape {xshape}")
        x = PadMode.apply(x, pads=pads, mode=padding_mode)
        pads = ((0, 0),) * nd
        xshape = tuple(x.shape)
    for i, (s, (lo, hi), k, d) in enumerate(zip(xshape[2:], pads, kernel, dilation)):
        span = d * (k - 1) + 1
        if s + lo + hi < span:
            raise ValueError(f"{name}: the (dilated) kernel size {span} is larger than the "
                             f"padded input size {s + lo + hi} in spatial dim {i} (input shape "
                             f"{xshape}, kernel {kernel}, padding {pads}, dilation {dilation})")
    y = ConvNd.apply(x, weight, bias, stride=stride, pads=pads, dilation=dilation,
                     groups=int(groups))
    return y.reshape(tuple(y.shape[1:])) if unbatched else y


def _conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation, nd,
                    name, output_size=None):
    x, weight, bias = _check_common(name, x, weight, bias, nd, transposed=True)
    kernel = tuple(weight.shape[2:])
    stride = _ntuple(stride, nd, "stride", name, 1)
    dilation = _ntuple(dilation, nd, "dilation", name, 1)
    if isinstance(padding, str):
        raise ValueError(f"{name}: padding must be an int or a tuple of {nd} ints, got "
                         f"{padding!r}")
    pad = _ntuple(padding, nd, "padding", name, 0)
    opad = _ntuple(output_padding, nd, "output_padding", name, 0)
    x, unbatched = _batched(x, nd)
    xshape = tuple(x.shape)
    if xshape[1] != weight.shape[0]:
        raise ValueError(f"{name}: expected {weight.shape[0]} input channels (weight "
                         f"{tuple(weight.shape)}), got {xshape[1]} (input shape {xshape})")
    c_out = weight.shape[1] * (groups if _is_int(groups) else 1)
    _check_groups(name, groups, xshape[1], c_out, xshape)
    _check_bias(name, bias, c_out)
    base = tuple((s - 1) * st - 2 * p + d * (k - 1) + 1
                 for s, st, p, d, k in zip(xshape[2:], stride, pad, dilation, kernel))
    if output_size is not None:
        size = tuple(int(v) for v in output_size)[-nd:]
        if len(size) != nd:
            raise ValueError(f"{name}: output_size needs {nd} spatial sizes, got {output_size}")
        opad = tuple(s - b for s, b in zip(size, base))
    for i, (o, st, d) in enumerate(zip(opad, stride, dilation)):
        if not 0 <= o < max(st, d):
            raise ValueError(f"{name}: output padding must be smaller than either stride or "
                             f"dilation and non-negative, got output_padding={opad} (stride "
                             f"{stride}, dilation {dilation}) in spatial dim {i}")
    out = tuple(b + o for b, o in zip(base, opad))
    if min(out) <= 0:
        raise ValueError(f"{name}: the output size {out} is not positive (input shape "
                         f"{xshape}, kernel {kernel}, stride {stride}, padding {pad}, "
                         f"dilation {dilation})")
    g = _Geometry((xshape[0], c_out) + out, (xshape[1],) + tuple(weight.shape[1:]), stride,
                  tuple((p, p) for p in pad), dilation, groups, out_spatial=xshape[2:])
    y = ConvTransposeNd.apply(x, weight, bias, conv_geometry=g)
    return y.reshape(tuple(y.shape[1:])) if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-d convolution (cross-correlation) over ``(N, C_in, L)`` inputs.

    ``y[n, o, l] = b[o] + sum_(c, k) w[o, c, k] x_pad[n, g(o) C_in/groups + c, s l + d k]``

    Args are those of :func:`conv2d` with one spatial dim.

    Shape:
        - Input ``(N, C_in, L_in)`` or ``(C_in, L_in)``; weight ``(C_out, C_in / groups, K)``.
        - Output ``(N, C_out, L_out)``, ``L_out = floor((L_in + 2P - D (K - 1) - 1) / S) + 1``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.conv1d(fb.ones(1, 1, 5), fb.ones(1, 1, 3)).tolist()
        [[[3.0, 3.0, 3.0]]]
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-d convolution (cross-correlation, as in every deep-learning library) of ``(N, C, H, W)``.

    ``y[n, o, i, j] = b[o] + sum_(c, p, q) w[o, c, p, q] x_pad[n, c', s i + d p, s j + d q]``
    with ``c' = (o // (C_out / groups)) (C_in / groups) + c``: each group of output channels sees
    its own slice of input channels (``groups = C_in`` is a depthwise convolution).

    Backward: ``dL/dw[o, c, p, q] = sum_(n, i, j) dL/dy[n, o, i, j] x_pad[n, c', s i + d p,
    s j + d q]``, ``dL/db[o] = sum dL/dy[n, o]`` and ``dL/dx`` is the transposed convolution of
    ``dL/dy`` with the same weight.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_out, C_in / groups, kH, kW)``.
        bias: ``(C_out,)`` or None. Default: None.
        stride: int or (sH, sW). Default: 1.
        padding: int, (pH, pW), ``'valid'`` (no padding) or ``'same'`` (output size = input
            size; stride 1 only; for even kernels the extra zero goes after). Default: 0.
        dilation: spacing between kernel taps, int or (dH, dW). Default: 1.
        groups: split the channels into this many independent convolutions. Default: 1.

    Shape:
        - Output ``(N, C_out, H_out, W_out)`` with
          ``H_out = floor((H_in + 2P - D (K - 1) - 1) / S) + 1`` (same for W).

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> x = fb.tensor([[[[1, .5, 1, 0], [0, .25, .5, 1], [1, .25, 0, 1], [.5, 0, 1, 1]]]])
        >>> F.conv2d(x, fb.tensor([[[[1., 0], [0, 2]]]])).tolist()
        [[[[1.5, 1.5, 3.0], [0.5, 0.25, 2.5], [1.0, 2.25, 2.0]]]]
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """3-d convolution (cross-correlation) over ``(N, C_in, D, H, W)`` inputs (video, volumes).

    ``y[n, o, t, i, j] = b[o] + sum_(c, r, p, q) w[o, c, r, p, q] x_pad[n, c', s t + d r, ...]``

    Args are those of :func:`conv2d` with three spatial dims.

    Shape:
        - Input ``(N, C_in, D_in, H_in, W_in)``; weight ``(C_out, C_in / groups, kD, kH, kW)``.
        - Output ``(N, C_out, D_out, H_out, W_out)``, each
          ``floor((size + 2P - D (K - 1) - 1) / S) + 1``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.conv3d(fb.ones(1, 2, 4, 4, 4), fb.ones(3, 2, 3, 3, 3), padding=1).shape
        (1, 3, 4, 4, 4)
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


_TRANSPOSE_DOC = """

    Args:
        input: ``(N, C_in, *S_in)`` or unbatched ``(C_in, *S_in)``.
        weight: ``(C_in, C_out / groups, *K)`` (note: input channels first).
        bias: ``(C_out,)`` or None. Default: None.
        stride: int or tuple; the upsampling factor. Default: 1.
        padding: int or tuple: the padding of the convolution this is the transpose of; crops
            ``P`` from both sides of the full output. Default: 0.
        output_padding: extra size added on one side of each dim (< stride or dilation), to
            pick among the input sizes a strided convolution maps to the same size. Default: 0.
        groups: as in the convolution. Default: 1.
        dilation: spacing between kernel taps. Default: 1.

    Shape:
        - Output ``(N, C_out, *S_out)`` with
          ``S_out = (S_in - 1) S - 2P + D (K - 1) + output_padding + 1``.
"""


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 3, "conv_transpose3d")


conv_transpose1d.__doc__ = """1-d transposed convolution ("up-convolution", fractionally
    strided convolution) of ``(N, C_in, L)`` inputs: the gradient of :func:`conv1d` with respect
    to its input, so each input value scatters ``value * w`` into a window of the output.

    ``y[n, o, s l + d k - P] += x[n, c, l] w[c, o, k]`` (summed over c in the group, k, l)
    """ + _TRANSPOSE_DOC + """
    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.conv_transpose1d(fb.ones(1, 1, 3), fb.ones(1, 1, 2), stride=2).tolist()
        [[[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]]
    """
conv_transpose2d.__doc__ = """2-d transposed convolution ("up-convolution", fractionally
    strided convolution, U-Net's decoder upsampling): the gradient of :func:`conv2d` with
    respect to its input. Each input pixel scatters ``pixel * w`` into a window of the output,
    so stride 2 doubles the spatial size.

    ``y[n, o, s i + d p - P, s j + d q - P] += x[n, c, i, j] w[c, o, p, q]``
    """ + _TRANSPOSE_DOC + """
    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.conv_transpose2d(fb.ones(1, 4, 8, 8), fb.ones(4, 2, 2, 2), stride=2).shape
        (1, 2, 16, 16)
    """
conv_transpose3d.__doc__ = """3-d transposed convolution (volumetric up-convolution): the
    gradient of :func:`conv3d` with respect to its input.

    ``y[n, o, s t + d r - P, s i + d p - P, s j + d q - P] += x[n, c, t, i, j] w[c, o, r, p, q]``
    """ + _TRANSPOSE_DOC + """
    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.conv_transpose3d(fb.ones(1, 2, 2, 2, 2), fb.ones(2, 3, 2, 2, 2), stride=2).shape
        (1, 3, 4, 4, 4)
    """


def pad_mode(x, pads: Sequence[tuple[int, int]], mode: str) -> Tensor:
    """Pad the spatial dims of ``(N, C, *S)`` with ``mode`` in {'reflect', 'replicate',
    'circular'}; ``pads`` holds (before, after) per spatial dim. Used by the conv layers'
    ``padding_mode``."""
    if mode not in _PAD_MODES:
        raise ValueError(f"pad_mode: expected mode in {sorted(_PAD_MODES)}, got {mode!r}")
    return PadMode.apply(x, pads=tuple(tuple(p) for p in pads), mode=mode)
