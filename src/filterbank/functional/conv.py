"""Convolution: ``conv1d/2d/3d`` and the transposed (up-)convolution ``conv_transpose1d/2d/3d``.

Forward and backward are written by hand, for any number of spatial dims, by two algorithms:

* **im2col + GEMM** (every case). For each kernel offset ``k`` the strided slice of the input
  that offset sees is copied into ``cols[c, k, n, *out]`` (a loop over kernel offsets, never
  over pixels), then one GEMM per group does all the multiply-adds:
  ``Y[o, (n, l)] = sum_(c, k) W[o, (c, k)] cols[(c, k), (n, l)]``.
  Backward is two more GEMMs: ``dW = dY cols^T`` and ``dcols = W^T dY``; ``dcols`` is folded
  back onto the input by adding each offset's slice into ``dx`` (col2im). A transposed
  convolution runs the same pieces the other way round (its forward is col2im).
* **Winograd** ``F(2x2, 3x3)`` for 2-d 3x3, stride-1, undilated convolutions with at least
  64 channels per group and 12x12 outputs, or 16 channels and 24x24 outputs (the bulk of VGG
  and ResNet). Each 2x2 output tile takes 16 multiplications per (input, output) channel pair
  instead of 36, as 16 GEMMs over the channels; see :class:`_Winograd`.
* **Row-Toeplitz** for 2-d convolutions with few output channels on narrow images (LeNet-5's
  layers): one GEMM of whole input rows against a banded weight matrix; see
  :class:`_RowToeplitz`.

im2col and Winograd work on chunks of a few samples at a time, so that the intermediates of a
chunk stay in cache, and run the chunks on a small thread pool with BLAS switched to one thread
meanwhile (NumPy releases the GIL in ufuncs, copies and BLAS calls, so the copies and transforms
run in parallel too, not just the GEMMs). The columns or Winograd tiles are kept for the weight
gradient when they fit ``_KEEP_BYTES``, else rebuilt in backward. Row-Toeplitz makes one GEMM
per direction for the whole batch, threaded by BLAS itself (up to ``FILTERBANK_NUM_THREADS``),
and is only picked while its row matrix fits ``_KEEP_BYTES``.

Big arrays come from a small workspace that reuses an array only once nothing else references
it (NumPy views keep their base alive), so buffers a graph saved for backward, or outputs a
caller still holds, are never overwritten; reuse avoids the page faults a fresh allocation of
tens of MiB costs.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from filterbank import _parallel
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


# ------------------------------------------------------------------------------ threading


class _Threads:
    """Chunks of a convolution run on a small thread pool, BLAS single-threaded meanwhile.

    NumPy releases the GIL inside ufuncs, copies and BLAS calls, so worker threads that each
    take a share of the batch chunks (transforms and GEMMs alike) use every core, whereas
    BLAS's own threads would only parallelise the GEMMs (and, when another process takes a
    core, busy-wait for it). BLAS is switched to one thread for the whole convolution call
    (through threadpoolctl, see :func:`filterbank._parallel.blas_threads`) and restored
    after. Without a BLAS to switch, chunks run one after another on the calling thread.
    ``FILTERBANK_NUM_THREADS`` caps the pool size (default: the CPUs this process may use).
    Not re-entrant across user threads: run convolutions from one thread at a time.
    """

    def __init__(self):
        self._pool = None
        self._pid = None

    @staticmethod
    def available_cpus() -> int:
        return _parallel.num_threads()

    def workers(self, tasks: int) -> int:
        n = min(tasks, self.available_cpus())
        return n if n > 1 and _parallel.blas_control() is not None else 1

    def single_threaded_blas(self):
        """BLAS on one thread inside the block. A whole convolution runs inside one: a single
        multi-threaded BLAS call (even a small einsum) would wake OpenBLAS's worker thread,
        which then spins for ~0.1 s on a core our workers need."""
        return _parallel.blas_threads(1)

    def blas_for(self, algo):
        """The BLAS threading ``algo`` runs under: BLAS's own threads, capped at
        ``FILTERBANK_NUM_THREADS``, for an algorithm that makes one big GEMM
        (``algo.BLAS_THREADS``), else one thread (chunks on the pool)."""
        if getattr(algo, "BLAS_THREADS", False):
            return _parallel.blas_threads(self.available_cpus())
        return self.single_threaded_blas()

    def run(self, task, n: int) -> None:
        """``task(i)`` for i in range(n), in parallel when n > 1 (see :meth:`workers`)."""
        if n <= 1:
            task(0)
            return
        if self._pool is None or self._pid != os.getpid() or self._pool._max_workers < n:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(max(n, self.available_cpus()),
                                            thread_name_prefix="filterbank-conv")
            self._pid = os.getpid()  # a forked child must not reuse its parent's threads
        with self.single_threaded_blas():
            futures = [self._pool.submit(task, i) for i in range(n)]
            for f in futures:
                f.result()


_threads = _Threads()

#: Intermediates (im2col columns, Winograd input tiles) up to this size are kept from forward
#: for the weight gradient; bigger ones are rebuilt in backward (they are 2-27x the input).
_KEEP_BYTES = 1 << 26


def _chunk_ranges(total: int, size: int, workers: int) -> tuple[list[tuple[int, int]], int]:
    """Split range(total) into near-equal chunks of at most about ``size``, their number a
    multiple of ``workers`` when there is enough to go round; returns (ranges, largest)."""
    count = -(-total // max(1, size))
    if total >= workers > 1:
        count = -(-count // workers) * workers
    count = max(1, min(count, total))
    bounds = [total * i // count for i in range(count + 1)]
    ranges = [(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return ranges, max((b - a for a, b in ranges), default=0)


def _queue(items: list, n: int) -> list:
    """Deal ``items`` to ``n`` workers round-robin, a fixed share each.

    A fixed assignment (not a shared queue) keeps gradients bit-reproducible: each worker sums
    dW/db over its own chunks, so which chunks a worker gets must not depend on thread timing
    (float32 addition is order-sensitive). The chunk count is a multiple of the worker count,
    so the shares are balanced anyway."""
    return [items[i::n] for i in range(n)]


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


def _im2col(x: np.ndarray, g: _Geometry, n0: int, n1: int, cols: np.ndarray) -> None:
    """``cols[c, k, n, *o] = x_pad[n0 + n, c, o * stride + k * dilation]`` for the samples
    n0..n1; ``cols`` has shape (C, KK, n1 - n0, *So)."""
    xt = _swap01(x[n0:n1])
    for kk, (empty, src, dst) in enumerate(g.plans):
        d = cols[:, kk]
        if empty:
            d.fill(0)
            continue
        d[_ALL2 + dst] = xt[_ALL2 + src]
        _zero_outside(d, dst)


def _col2im(dcols: np.ndarray, g: _Geometry, n0: int, n1: int, dx: np.ndarray) -> None:
    """The adjoint of :func:`_im2col`: add each offset's columns back onto ``dx[n0:n1]``."""
    dxt = _swap01(dx[n0:n1])
    first = None  # an offset that covers all of x (stride 1) initialises dx with a copy
    for kk, (empty, src, _) in enumerate(g.plans):
        if not empty and all(sl.start == 0 and sl.step == 1 and sl.stop == s
                             for sl, s in zip(src, g.S)):
            first = kk
            break
    if first is None:
        dxt.fill(0)
    else:
        dxt[...] = dcols[:, first][_ALL2 + g.plans[first][2]]
    for kk, (empty, src, dst) in enumerate(g.plans):
        if empty or kk == first:
            continue
        view = dxt[_ALL2 + src]
        np.add(view, dcols[:, kk][_ALL2 + dst], out=view)


def _bias_grad(gy: np.ndarray) -> np.ndarray:
    return gy.sum(axis=(0,) + tuple(range(2, gy.ndim)))


class _Im2col:
    """Direct convolution by im2col + one GEMM per group (any nd, stride, dilation, groups).

    One pass over chunks of the batch computes any of ``y = conv(x) + b`` (from ``x``),
    ``dx = conv^T(dy)`` (from ``dy``), ``dW = dy * x`` and ``db``; the columns of a chunk are
    built once and serve both ``y`` and ``dW`` (a transposed convolution's backward needs
    both). Columns are rebuilt in backward rather than stored: they are ``prod(kernel)``
    times the input's size.
    """

    CHUNK_BYTES = 1 << 22  # target size of one chunk's columns

    @classmethod
    def _chunks(cls, g: _Geometry, dtype, workers_hint: int):
        per_sample = max(1, g.C * g.KK * g.Lo * np.dtype(dtype).itemsize)
        nb = max(1, cls.CHUNK_BYTES // per_sample)
        nb = max(nb, -(-2 * g.Og // max(1, g.Lo)))  # keep dW's K dim >= 2 O: few accumulations
        nb = min(nb, -(-g.N // workers_hint))  # at least one chunk per worker
        return _chunk_ranges(g.N, nb, workers_hint)

    @classmethod
    def run(cls, g: _Geometry, w, *, x=None, y=None, bias=None, gy=None, dx=None,
            want_dw=False, want_db=False, keep=False, kept=None):
        """Fill ``y`` (needs x) and ``dx`` (needs gy) in place; return (dw, db, columns).

        ``keep``: return the columns built from x (when they fit the memory budget), to be
        passed back as ``kept`` instead of x for the weight gradient."""
        dtype = (x if x is not None else gy).dtype
        chunks, nb = cls._chunks(g, dtype, _threads.available_cpus())
        n = _threads.workers(len(chunks))
        parts = _queue(chunks, n)
        index = {c: i for i, c in enumerate(chunks)}
        size = len(chunks) * g.C * g.KK * nb * g.Lo * np.dtype(dtype).itemsize
        saved = None
        if keep and size <= _KEEP_BYTES:
            saved = _workspace.empty((len(chunks), g.C, g.KK, nb) + g.So, dtype)
        need_cols = (y is not None or want_dw) and kept is None
        need_gy = dx is not None or want_dw or want_db
        kdim, ncol = g.Cg * g.KK, nb * g.Lo
        shapes = {}
        if need_cols and saved is None:
            shapes["cols"] = (g.C, g.KK, nb) + g.So
        if y is not None:
            shapes["out"] = (g.groups, g.Og, ncol)
        if need_gy:
            shapes["gyt"] = (g.O, nb) + g.So
        if dx is not None:
            shapes["dcols"] = (g.C, g.KK, nb) + g.So
        bufs = [{k: _workspace.empty(s, dtype) for k, s in shapes.items()} for _ in range(n)]
        wm = w.reshape(g.groups, g.Og, kdim) if w is not None else None
        wt = wm.transpose(0, 2, 1) if dx is not None else None  # BLAS reads it transposed
        # dW^T = cols dY^T (K x O) runs faster in OpenBLAS than dY cols^T for small O; for
        # large O, dY cols^T gives dW in its own layout (a transposed copy of a 2-9 MiB dW
        # costs more than the GEMM gains)
        dw_t = g.Og < 64
        dw_shape = (g.groups, kdim, g.Og) if dw_t else (g.groups, g.Og, kdim)
        # every worker has a chunk (n <= chunks), whose dW product initialises its sum
        dws = [np.empty(dw_shape, dtype) if want_dw else None for _ in range(n)]
        dbs = [np.zeros(g.O, dtype) if want_db else None for _ in range(n)]
        bias_b = None if bias is None else bias.reshape((1, g.O) + (1,) * g.nd)

        def task(i):
            buf, dw, db = bufs[i], dws[i], dbs[i]
            for j, (n0, n1) in enumerate(parts[i]):
                first = j == 0
                k = n1 - n0
                cols = gyt = None
                if need_cols:
                    cols = (buf["cols"] if saved is None else saved[index[n0, n1]])[:, :, :k]
                    _im2col(x, g, n0, n1, cols)
                    cols = cols.reshape(g.groups, kdim, k * g.Lo)
                elif kept is not None and dw is not None:
                    cols = kept[index[n0, n1]][:, :, :k].reshape(g.groups, kdim, k * g.Lo)
                if y is not None:
                    out = buf["out"][:, :, :k * g.Lo]
                    np.matmul(wm, cols, out=out)
                    src = _swap01(out.reshape((g.O, k) + g.So))
                    if bias_b is None:
                        np.copyto(y[n0:n1], src)
                    else:
                        np.add(src, bias_b, out=y[n0:n1])
                if need_gy:
                    gyt = buf["gyt"][:, :k]
                    np.copyto(gyt, _swap01(gy[n0:n1]))
                    gyt = gyt.reshape(g.groups, g.Og, k * g.Lo)
                if db is not None:
                    db += gyt.reshape(g.O, -1).sum(axis=1)
                if dw is not None:
                    lhs, rhs = (cols, gyt) if dw_t else (gyt, cols)
                    if first:  # the worker's first chunk writes dW, later ones add
                        np.matmul(lhs, rhs.transpose(0, 2, 1), out=dw)
                    else:
                        dw += np.matmul(lhs, rhs.transpose(0, 2, 1))
                if dx is not None:
                    dcols = buf["dcols"][:, :, :k]
                    np.matmul(wt, gyt, out=dcols.reshape(g.groups, kdim, k * g.Lo))
                    _col2im(dcols, g, n0, n1, dx)

        _threads.run(task, n)
        dw = None
        if want_dw:
            dw = sum(dws[1:], dws[0])
            dw = np.ascontiguousarray(dw.transpose(0, 2, 1)) if dw_t else dw
            dw = dw.reshape((g.O, g.Cg) + g.K)
        db = sum(dbs[1:], dbs[0]) if want_db else None
        return dw, db, saved

    @classmethod
    def forward(cls, fn, x, w, b, g: _Geometry):
        y = _workspace.empty((g.N, g.O) + g.So, x.dtype)
        _, _, saved = cls.run(g, w, x=x, y=y, bias=b, keep=fn.needs_input_grad[1])
        if saved is not None:
            fn.cols = saved
        elif fn.needs_input_grad[1]:
            fn.x = x
        if fn.needs_input_grad[0]:
            fn.w = w
        return y

    @classmethod
    def backward(cls, fn, gy, g: _Geometry):
        need_x, need_w = fn.needs_input_grad[:2]
        need_b = len(fn.needs_input_grad) > 2 and fn.needs_input_grad[2]
        dx = _workspace.empty((g.N, g.C) + g.S, gy.dtype) if need_x else None
        kept = getattr(fn, "cols", None)
        x = fn.x if need_w and kept is None else None
        dw, db, _ = cls.run(g, fn.w if need_x else None, x=x, gy=gy, dx=dx, want_dw=need_w,
                            want_db=need_b, kept=kept if need_w else None)
        return dx, dw, db


# ------------------------------------------------------------------------- Winograd kernels

_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)
_AA = {np.dtype(t).str: np.kron(_AT, _AT).astype(t) for t in (np.float32, np.float64)}


class _Winograd:
    """2-d 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3).

    1-d, two outputs of a 3-tap filter g from four inputs d cost 4 multiplications, not 6:
    ``y = A^T [(G g) * (B^T d)]`` with

        B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
        A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

    and nested in 2-d, a 2x2 output tile costs 16 instead of 36: ``Y = A^T [U * V] A`` with
    ``U = G g G^T`` (per filter) and ``V = B^T d B`` (per 4x4 input tile). Summed over input
    channels, the 16 elementwise products become 16 GEMMs ``M[k] = U[k] V[k]`` (O x C by C x
    tiles). Backward differentiates the same bilinear form: ``dM = A dY A^T``,
    ``dU = dM V^T`` (then ``dW = G^T dU G``) and ``dV = U^T dM`` (then ``dx = B dV B^T``,
    adding the overlapping tiles).

    Layout: the padded input is split into its 2x2 polyphase components
    ``P[p, q][i, j] = x_pad[2i + p, 2j + q]`` on a (th + 1) x (tw + 1) grid, flattened over
    (channel, sample, i, j). Tile element (a, b) of every tile is then ``P[a % 2, b % 2]``
    read ``(a // 2) (tw + 1) + b // 2`` elements further on, so each transform step is one
    whole-array add or subtract on contiguous memory. Each image carries one spare tile row
    and column (never read by the output, zero gradient). Work is done on chunks of a few
    samples so that the transform intermediates stay in cache; ``V`` is recomputed in
    backward rather than stored (an input-sized saved tensor instead of 4x that).
    """

    G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
    #: sign of dM[k] = A dY A^T against the unsigned H[k] computed in backward (A's last row
    #: is [0, -1]: tile rows/columns 3 carry a minus sign)
    SIGN = np.array([[1, 1, 1, -1], [1, 1, 1, -1], [1, 1, 1, -1], [-1, -1, -1, 1]],
                    np.float64).reshape(16)
    CHUNK_BYTES = 1 << 18  # target size of one transform intermediate (per chunk)

    @classmethod
    def applies(cls, g: _Geometry) -> bool:
        # bench/conv_algos.py: faster than im2col with 64 channels on either side at 12x12+
        # outputs (64->32 @16 too), or from 16 channels at 24x24; slower or equal for 16-32
        # channels at 14-16 (16->16 @14, 32->32 @16)
        return (g.nd == 2 and g.K == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1)
                and min(g.Cg, g.Og) >= 16 and min(g.So) >= 12
                and (min(g.So) >= 24 or max(g.Cg, g.Og) >= 64))

    # ------------------------------------------------------------------ layout helpers
    @staticmethod
    def _grid(g: _Geometry):
        th, tw = -(-g.So[0] // 2), -(-g.So[1] // 2)
        return th, tw, th + 1, tw + 1

    @staticmethod
    def _phase_range(p, pad, size, nq):
        """Grid indices i with ``2 i + p - pad`` inside [0, size), clipped to [0, nq)."""
        lo = max(0, -((p - pad) // 2))
        hi = min(nq, (size - 1 + pad - p) // 2 + 1)
        return lo, max(lo, hi)

    @classmethod
    def _chunks(cls, g: _Geometry, dtype):
        _, _, hq, wq = cls._grid(g)
        per_sample = max(g.C, g.O) * hq * wq * np.dtype(dtype).itemsize
        nb = int(min(g.N, max(2, cls.CHUNK_BYTES // per_sample)))
        return _chunk_ranges(g.N, nb, _threads.available_cpus())

    @classmethod
    def _input_tiles(cls, x, g: _Geometry, n0, n1, bufs, out=None):
        """V (16, C * nb * hq * wq): the B^T d B transform of every input tile of x[n0:n1]
        (into ``out`` if given, else into the chunk buffer)."""
        _, _, hq, wq = cls._grid(g)
        nb = n1 - n0
        L = g.C * nb * hq * wq
        (pt, _), (pl, _) = g.pads
        p_arr = bufs["P"][:, :L + wq + 1]
        p_arr[:, L:] = 0
        xt = _swap01(x[n0:n1])
        for p, q in itertools.product(range(2), range(2)):
            i0, i1 = cls._phase_range(p, pt, g.S[0], hq)
            j0, j1 = cls._phase_range(q, pl, g.S[1], wq)
            ph = p_arr[2 * p + q, :L].reshape(g.C, nb, hq, wq)
            box = (slice(i0, i1), slice(j0, j1))
            ph[_ALL2 + box] = xt[:, :, 2 * i0 + p - pt::2, 2 * j0 + q - pl::2][
                :, :, :i1 - i0, :j1 - j0]
            _zero_outside(ph, box)
        # rows: R[a', q] = sum_a B^T[a', a] d_a, with d_a = P[a % 2, q] shifted a // 2 rows
        r = bufs["R"][:, :, :L + 1]
        for q in range(2):
            d0, d1 = p_arr[q, :L + 1], p_arr[2 + q, :L + 1]
            d2, d3 = p_arr[q, wq:wq + L + 1], p_arr[2 + q, wq:wq + L + 1]
            np.subtract(d0, d2, out=r[0, q])
            np.add(d1, d2, out=r[1, q])
            np.subtract(d2, d1, out=r[2, q])
            np.subtract(d1, d3, out=r[3, q])
        # columns, likewise with a shift of one element
        v = bufs["V"][:, :L] if out is None else out
        for a in range(4):
            e0, e1, e2, e3 = r[a, 0, :L], r[a, 1, :L], r[a, 0, 1:], r[a, 1, 1:]
            np.subtract(e0, e2, out=v[4 * a])
            np.add(e1, e2, out=v[4 * a + 1])
            np.subtract(e2, e1, out=v[4 * a + 2])
            np.subtract(e1, e3, out=v[4 * a + 3])
        return v

    @staticmethod
    def _buffers(shapes: dict, dtype) -> dict:
        return {k: _workspace.empty(s, dtype) for k, s in shapes.items()}

    # ------------------------------------------------------------------------ forward
    @classmethod
    def forward(cls, fn, x, w, b, g: _Geometry):
        _, _, hq, wq = cls._grid(g)
        chunks, nb = cls._chunks(g, x.dtype)
        n = _threads.workers(len(chunks))
        Lc, Lo = g.C * nb * hq * wq, g.O * nb * hq * wq
        shapes = {"P": (4, Lc + wq + 1), "R": (4, 2, Lc + 1), "V": (16, Lc), "M": (16, Lo),
                  "Y": (4, Lo)}
        # the tiles are kept for dW when they fit the budget, else rebuilt in backward
        keep = fn.needs_input_grad[1] and 16 * len(chunks) * Lc * x.itemsize <= _KEEP_BYTES
        if keep:
            del shapes["V"]
            saved = _workspace.empty((len(chunks), 16, Lc), x.dtype)
        bufs = [cls._buffers(shapes, x.dtype) for _ in range(n)]
        u = np.einsum("ai,bj,ocij->aboc", cls.G, cls.G, w, dtype=np.float64, optimize=True)
        u = np.ascontiguousarray(u.reshape(16, g.groups, g.Og, g.Cg), dtype=x.dtype)
        y = _workspace.empty((g.N, g.O) + g.So, x.dtype)
        index = {c: i for i, c in enumerate(chunks)}
        parts = _queue(chunks, n)

        def task(i):
            for n0, n1 in parts[i]:
                out = None
                if keep:
                    out = saved[index[n0, n1], :, :g.C * (n1 - n0) * hq * wq]
                cls._forward_chunk(x, u, b, g, n0, n1, bufs[i], y, out)

        _threads.run(task, n)
        if keep:
            fn.v = saved
        elif fn.needs_input_grad[1]:
            fn.x = x
        fn.u = u
        return y

    @classmethod
    def _forward_chunk(cls, x, u, b, g: _Geometry, n0, n1, bufs, y, out=None):
        _, _, hq, wq = cls._grid(g)
        k = n1 - n0
        lc, lo = g.C * k * hq * wq, g.O * k * hq * wq
        v = cls._input_tiles(x, g, n0, n1, bufs, out)
        m = bufs["M"][:, :lo]
        np.matmul(u, v.reshape(16, g.groups, g.Cg, lc // g.C),
                  out=m.reshape(16, g.groups, g.Og, lo // g.O))
        if b is not None:  # A^T E A = ones(2, 2) for E = the unit at tile element (1, 1)
            m5 = m[5].reshape(g.O, -1)
            np.add(m5, b.reshape(g.O, 1), out=m5)
        # Y = A^T M A, as one small GEMM (A^T (x) A^T) M, then scattered into y's 2x2 phases
        yt = bufs["Y"][:, :lo]
        np.matmul(_AA[x.dtype.str], m, out=yt)
        yc = y[n0:n1]
        for i, j in itertools.product(range(2), range(2)):
            rows, cols = -(-(g.So[0] - i) // 2), -(-(g.So[1] - j) // 2)
            src = yt[2 * i + j].reshape(g.O, k, hq, wq)[:, :, :rows, :cols]
            _swap01(yc[:, :, i::2, j::2])[...] = src

    # ----------------------------------------------------------------------- backward
    @classmethod
    def backward(cls, fn, gy, g: _Geometry):
        need_x, need_w = fn.needs_input_grad[:2]
        need_b = len(fn.needs_input_grad) > 2 and fn.needs_input_grad[2]
        _, _, hq, wq = cls._grid(g)
        chunks, nb = cls._chunks(g, gy.dtype)
        n = _threads.workers(len(chunks))
        Lc, Lo = g.C * nb * hq * wq, g.O * nb * hq * wq
        shapes = {"H": (16, Lo)}
        saved = getattr(fn, "v", None)
        if need_w and saved is None:
            shapes.update({"P": (4, Lc + wq + 1), "R": (4, 2, Lc + 1), "V": (16, Lc)})
        if need_x:
            shapes.update({"dV": (16, Lc), "dR": (4, 2, Lc), "dP": (4, Lc), "T": (Lc,)})
        bufs = [cls._buffers(shapes, gy.dtype) for _ in range(n)]
        sign = cls.SIGN.astype(gy.dtype)
        us = (fn.u * sign.reshape(16, 1, 1, 1)).transpose(0, 1, 3, 2) if need_x else None
        du = [np.zeros((16, g.groups, g.Og, g.Cg), gy.dtype) if need_w else None
              for _ in range(n)]
        db = [np.zeros(g.O, gy.dtype) if need_b else None for _ in range(n)]
        dx = _workspace.empty((g.N, g.C) + g.S, gy.dtype) if need_x else None
        x = fn.x if need_w and saved is None else None
        index = {c: i for i, c in enumerate(chunks)}
        parts = _queue(chunks, n)

        def task(i):
            for n0, n1 in parts[i]:
                v = None
                if need_w and saved is not None:
                    v = saved[index[n0, n1], :, :g.C * (n1 - n0) * hq * wq]
                cls._backward_chunk(gy, x, us, g, n0, n1, bufs[i], du[i], db[i], dx, v)

        _threads.run(task, n)
        dw = None
        if need_w:
            total = sum(du[1:], du[0]) * sign.reshape(16, 1, 1, 1)
            dw = np.einsum("ai,bj,aboc->ocij", cls.G, cls.G,
                           total.reshape(4, 4, g.O, g.Cg), dtype=np.float64,
                           optimize=True).astype(gy.dtype)
        return dx, dw, (sum(db[1:], db[0]) if need_b else None)

    @classmethod
    def _backward_chunk(cls, gy, x, us, g: _Geometry, n0, n1, bufs, du, db, dx, v=None):
        _, _, hq, wq = cls._grid(g)
        k = n1 - n0
        lc, lo = g.C * k * hq * wq, g.O * k * hq * wq
        # H = |A dY A^T| per tile (signs folded into U and dU): the 2x2 output phases of dY
        # land in the corners (0,0), (0,3), (3,0), (3,3) of the 4x4 tile grid
        h = bufs["H"][:, :lo]
        gyt = _swap01(gy[n0:n1])
        for i, j in itertools.product(range(2), range(2)):
            box = (slice(0, -(-(g.So[0] - i) // 2)), slice(0, -(-(g.So[1] - j) // 2)))
            dst = h[12 * i + 3 * j].reshape(g.O, k, hq, wq)
            dst[_ALL2 + box] = gyt[:, :, i::2, j::2]
            _zero_outside(dst, box)
        for col in (0, 3):
            np.add(h[col], h[12 + col], out=h[4 + col])
            np.subtract(h[col], h[12 + col], out=h[8 + col])
        for a in range(4):
            np.add(h[4 * a], h[4 * a + 3], out=h[4 * a + 1])
            np.subtract(h[4 * a], h[4 * a + 3], out=h[4 * a + 2])
        if db is not None:  # H[1, 1] is the sum of the four phases: every dY exactly once
            db += h[5].reshape(g.O, -1).sum(axis=1)
        h4 = h.reshape(16, g.groups, g.Og, lo // g.O)
        if du is not None:
            if v is None:
                v = cls._input_tiles(x, g, n0, n1, bufs)
            du += np.matmul(h4, v.reshape(16, g.groups, g.Cg, lc // g.C).transpose(0, 1, 3, 2))
        if dx is not None:
            dv = bufs["dV"][:, :lc]
            np.matmul(us, h4, out=dv.reshape(16, g.groups, g.Cg, lc // g.C))
            cls._fold_input_tiles(dv, g, n0, n1, bufs, dx)

    @classmethod
    def _fold_input_tiles(cls, dv, g: _Geometry, n0, n1, bufs, dx):
        """The adjoint of :meth:`_input_tiles`: ``B dV B^T`` with the overlapping tiles added
        back onto the polyphase grid, then scattered into ``dx[n0:n1]``."""
        _, _, hq, wq = cls._grid(g)
        k = n1 - n0
        L = g.C * k * hq * wq
        (pt, _), (pl, _) = g.pads
        t = bufs["T"][:L]
        dr = bufs["dR"][:, :, :L]
        # columns: e0 -> V0; e1 -> V1 - V2 + V3; e2 (one element on) -> -V0 + V1 + V2;
        # e3 (one element on) -> -V3, with dR[a', 0] = de0 + de2 shifted back, etc.
        for a in range(4):
            v0, v1, v2, v3 = dv[4 * a], dv[4 * a + 1], dv[4 * a + 2], dv[4 * a + 3]
            r0, r1 = dr[a, 0], dr[a, 1]
            np.add(v1, v2, out=t)
            np.subtract(t, v0, out=t)
            r0[0] = v0[0]
            np.add(v0[1:], t[:-1], out=r0[1:])
            np.subtract(v1, v2, out=t)
            np.add(t, v3, out=r1)
            np.subtract(r1[1:], v3[:-1], out=r1[1:])
        # rows, likewise with a shift of one grid row (wq elements)
        dp = bufs["dP"][:, :L]
        for q in range(2):
            d0, d1, d2, d3 = dr[0, q], dr[1, q], dr[2, q], dr[3, q]
            p0, p1 = dp[q], dp[2 + q]
            np.add(d1, d2, out=t)
            np.subtract(t, d0, out=t)
            p0[:wq] = d0[:wq]
            np.add(d0[wq:], t[:-wq], out=p0[wq:])
            np.subtract(d1, d2, out=t)
            np.add(t, d3, out=p1)
            np.subtract(p1[wq:], d3[:-wq], out=p1[wq:])
        dxt = _swap01(dx[n0:n1])
        for p, q in itertools.product(range(2), range(2)):
            i0, i1 = cls._phase_range(p, pt, g.S[0], hq)
            j0, j1 = cls._phase_range(q, pl, g.S[1], wq)
            ph = dp[2 * p + q].reshape(g.C, k, hq, wq)
            dxt[:, :, 2 * i0 + p - pt::2, 2 * j0 + q - pl::2] = ph[:, :, i0:i1, j0:j1]


# ------------------------------------------------------------------------ row-Toeplitz kernels


class _RowToeplitz:
    """2-d convolution as one GEMM over whole input rows, for few channels and narrow images.

    For an output row ``i``, the inputs it needs are the ``kH`` padded input rows
    ``s i + d p`` of every channel, each whole (``W_pad`` values): a row of
    ``rows (N * H_out, C * kH * W_pad)``, filled by ``kH`` copies of contiguous input rows (not
    ``kH * kW`` offset copies as im2col). The weight becomes a banded (Toeplitz) matrix
    ``T (C * kH * W_pad, O * W_out)`` with ``T[(c, p, s j + d q), (o, j)] = w[o, c, p, q]``, and
    ``y = rows T`` is one well-shaped GEMM. It does ``W_pad / kW`` times the multiply-adds of
    a direct convolution, but im2col's GEMM for LeNet-5's layers (6 or 16 output rows, a
    K of 25 or 150) runs at a fifth of the machine's GEMM speed and its column matrix is
    25x the input; this one runs near full speed on a matrix ``kH`` times the input.
    Backward: ``dT = rows^T dY`` (then ``dW`` gathered from T's bands), ``drows = dY T^T``
    added back onto the input rows, ``kH`` slice additions.
    """

    #: ``{max output channels: max W_pad / kW}`` (W_pad / kW is the factor of extra
    #: multiply-adds), for im2col GEMMs with K = C kH kW up to MAX_K (beyond, im2col's GEMM
    #: runs well even for few output channels). ``bench/conv_algos.py`` (fwd+bwd, batch 64)
    #: against im2col: 1.7-1.8x faster on LeNet-5's layers (6 channels x 6.4, 16 x 2.8; 1.2x
    #: at batch 256), 1.55x on 3->6 5x5 @32; slower for 16->16 3x3 @14 (x 5.3: 0.7x) and
    #: 1->32 5x5 @28 (0.7x).
    LIMITS = {8: 8, 16: 4}
    MAX_K = 160
    #: the banded weight matrix (and its gradient) stays small; the row matrix, saved for dW,
    #: must fit the budget for kept intermediates
    MAX_T_BYTES = 1 << 22
    BLAS_THREADS = True  # one big GEMM per direction: BLAS's own threads share it

    @classmethod
    def applies(cls, g: _Geometry, itemsize: int = 4) -> bool:
        if g.nd != 2 or g.groups != 1 or g.C * g.KK > cls.MAX_K:
            return False
        wp = cls._padded_width(g)
        if not any(g.O <= o and wp <= limit * g.K[1] for o, limit in cls.LIMITS.items()):
            return False
        t_bytes = g.C * g.K[0] * wp * g.O * g.So[1] * itemsize
        rows_bytes = g.N * g.So[0] * g.C * g.K[0] * wp * itemsize
        return t_bytes <= cls.MAX_T_BYTES and rows_bytes <= _KEEP_BYTES

    @staticmethod
    def _padded_width(g: _Geometry) -> int:
        return g.S[1] + sum(g.pads[1])

    @staticmethod
    def _band(g: _Geometry):
        """Index arrays (J, OW) of shape (kW, W_out): T's column ``(o, j)`` holds ``w[.., q]``
        at padded input column ``J[q, j] = s j + d q``."""
        ow = np.arange(g.So[1])
        return g.stride[1] * ow[None, :] + g.dilation[1] * np.arange(g.K[1])[:, None], ow

    @classmethod
    def _toeplitz(cls, w, g: _Geometry, wp: int):
        t = np.zeros((g.C, g.K[0], wp, g.O, g.So[1]), w.dtype)
        j, ow = cls._band(g)
        # advanced indices at axes 2 and 4 come first: the target is (kW, W_out, C, kH, O)
        t[:, :, j, :, ow] = w.transpose(3, 1, 2, 0)[:, None]
        return t.reshape(g.C * g.K[0] * wp, g.O * g.So[1])

    @staticmethod
    def _row_slice(g: _Geometry, p: int) -> slice:
        start = g.dilation[0] * p
        return slice(start, start + g.stride[0] * (g.So[0] - 1) + 1, g.stride[0])

    @classmethod
    def forward(cls, fn, x, w, b, g: _Geometry):
        (pt, pb), (pl, pr) = g.pads
        hp, wp = g.S[0] + pt + pb, cls._padded_width(g)
        if pt or pb or pl or pr:
            xp = _workspace.zeros((g.N, g.C, hp, wp), x.dtype)
            xp[:, :, pt:pt + g.S[0], pl:pl + g.S[1]] = x
        else:
            xp = x
        rows = _workspace.empty((g.N, g.So[0], g.C, g.K[0], wp), x.dtype)
        for p in range(g.K[0]):
            rows[:, :, :, p] = xp[:, :, cls._row_slice(g, p)].transpose(0, 2, 1, 3)
        t = cls._toeplitz(w, g, wp)
        out = _workspace.empty((g.N * g.So[0], g.O * g.So[1]), x.dtype)
        np.matmul(rows.reshape(g.N * g.So[0], -1), t, out=out)
        y = _workspace.empty((g.N, g.O) + g.So, x.dtype)
        src = out.reshape(g.N, g.So[0], g.O, g.So[1]).transpose(0, 2, 1, 3)
        if b is None:
            np.copyto(y, src)
        else:
            np.add(src, b.reshape(1, g.O, 1, 1), out=y)
        if fn.needs_input_grad[1]:
            fn.rows = rows
        if fn.needs_input_grad[0]:
            fn.t = t
        return y

    @classmethod
    def backward(cls, fn, gy, g: _Geometry):
        need_x, need_w = fn.needs_input_grad[:2]
        need_b = len(fn.needs_input_grad) > 2 and fn.needs_input_grad[2]
        wp = cls._padded_width(g)
        gr = _workspace.empty((g.N, g.So[0], g.O, g.So[1]), gy.dtype)
        np.copyto(gr, gy.transpose(0, 2, 1, 3))
        gr = gr.reshape(g.N * g.So[0], g.O * g.So[1])
        dw = db = dx = None
        if need_w:
            dt = np.matmul(fn.rows.reshape(g.N * g.So[0], -1).T, gr)
            j, ow = cls._band(g)
            bands = dt.reshape(g.C, g.K[0], wp, g.O, g.So[1])[:, :, j, :, ow]
            dw = np.ascontiguousarray(bands.sum(axis=1).transpose(3, 1, 2, 0))
        if need_b:
            db = gr.reshape(-1, g.O, g.So[1]).sum(axis=(0, 2))
        if need_x:
            (pt, pb), (pl, pr) = g.pads
            drows = _workspace.empty((g.N, g.So[0], g.C, g.K[0], wp), gy.dtype)
            np.matmul(gr, fn.t.T, out=drows.reshape(g.N * g.So[0], -1))
            dxp = _workspace.zeros((g.N, g.C, g.S[0] + pt + pb, wp), gy.dtype)
            for p in range(g.K[0]):
                view = dxp[:, :, cls._row_slice(g, p)]
                np.add(view, drows[:, :, :, p].transpose(0, 2, 1, 3), out=view)
            dx = dxp
            if pt or pb or pl or pr:
                dx = np.ascontiguousarray(dxp[:, :, pt:pt + g.S[0], pl:pl + g.S[1]])
        return dx, dw, db


# ------------------------------------------------------------------------------- Functions

#: Force an algorithm ("im2col", "winograd" or "toeplitz") for testing; None picks the
#: fastest that applies.
_FORCE_ALGO: str | None = None


def _algorithm(g: _Geometry, itemsize: int = 4):
    if _FORCE_ALGO == "im2col":
        return _Im2col
    if _FORCE_ALGO == "winograd":
        if not (g.nd == 2 and g.K == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1)):
            raise ValueError("winograd needs a 2-d 3x3 stride-1 undilated convolution")
        return _Winograd
    if _FORCE_ALGO == "toeplitz":
        if g.nd != 2 or g.groups != 1:
            raise ValueError("toeplitz needs a 2-d convolution without groups")
        return _RowToeplitz
    if _Winograd.applies(g):
        return _Winograd
    if _RowToeplitz.applies(g, itemsize):
        return _RowToeplitz
    return _Im2col


class ConvNd(Function):
    """``y = x * w + b`` (cross-correlation) over 1, 2 or 3 spatial dims.

    Hyperparameters: ``stride``, ``pads`` ((before, after) per dim), ``dilation``, ``groups``.
    """

    def forward(self, x, w, b=None):
        g = _Geometry(x.shape, w.shape, self.stride, self.pads, self.dilation, self.groups)
        self.geometry = g
        if g.N == 0:
            return np.zeros((0, g.O) + g.So, x.dtype)
        algo = _algorithm(g, x.itemsize)
        self.algo = algo
        with _threads.blas_for(algo):
            return algo.forward(self, x, w, b, g)

    def backward(self, gy):
        g = self.geometry
        if g.N == 0:
            return (np.zeros((0, g.C) + g.S, gy.dtype), np.zeros((g.O, g.Cg) + g.K, gy.dtype),
                    np.zeros((g.O,), gy.dtype))
        with _threads.blas_for(self.algo):
            return self.algo.backward(self, gy, g)


class ConvTransposeNd(Function):
    """``y = conv_transpose(x, w) + b``: the adjoint (input gradient) of ``ConvNd``.

    ``conv_geometry`` describes the convolution whose input gradient this is: its input is
    ``y`` and its output is ``x``. Backward is that convolution itself (``dx = conv(dy)``)
    and its weight gradient with the roles of input and output gradient swapped.
    """

    def forward(self, x, w, b=None):
        g = self.conv_geometry
        y = _workspace.empty((g.N, g.C) + g.S, x.dtype)
        if g.N:
            with _threads.single_threaded_blas():
                _Im2col.run(g, w, gy=x, dx=y)
        if b is not None:
            np.add(y, b.reshape((1, g.C) + (1,) * g.nd), out=y)
        if self.needs_input_grad[1]:
            self.x = x
        if self.needs_input_grad[0]:
            self.w = w
        return y

    def backward(self, gy):
        g = self.conv_geometry
        need_x, need_w = self.needs_input_grad[:2]
        need_b = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        dx = _workspace.empty((g.N, g.O) + g.So, gy.dtype) if need_x else None
        dw = None
        if g.N == 0:
            dw = np.zeros((g.O, g.Cg) + g.K, gy.dtype) if need_w else None
        elif need_x or need_w:
            with _threads.single_threaded_blas():
                dw, _, _ = _Im2col.run(g, self.w if need_x else None, x=gy, y=dx,
                                       gy=self.x if need_w else None, want_dw=need_w)
        return dx, dw, (_bias_grad(gy) if need_b else None)


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
            limit = {"reflect": s - 1, "circular": s}.get(padding_mode, max(lo, hi))
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
