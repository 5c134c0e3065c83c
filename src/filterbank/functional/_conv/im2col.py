"""Direct convolution by im2col + GEMM: every nd, stride, dilation and group count.

For each kernel offset ``k`` the strided slice of the input that offset sees is copied into
``cols[c, k, n, *out]`` (a loop over kernel offsets, never over pixels), then one GEMM per
group does all the multiply-adds: ``Y[o, (n, l)] = sum_(c, k) W[o, (c, k)] cols[(c, k), (n, l)]``.
Backward is two more GEMMs: ``dW = dY cols^T`` and ``dcols = W^T dY``; ``dcols`` is folded back
onto the input by adding each offset's slice into ``dx`` (col2im). A transposed convolution
runs the same pieces the other way round (its forward is col2im).
"""

from __future__ import annotations

import numpy as np

from filterbank import _parallel, _xp
from filterbank.backend import get_array_module
from filterbank.functional._conv import chunking
from filterbank.functional._conv.chunking import _chunk_ranges, _queue, _worker_buffers
from filterbank.functional._conv.geometry import _ALL2, _Geometry, _swap01, _zero_outside


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
        view += dcols[:, kk][_ALL2 + dst]


def _bias_grad(gy: np.ndarray) -> np.ndarray:
    return gy.sum(axis=(0,) + tuple(range(2, gy.ndim)))


class _Im2col:
    """Direct convolution by im2col + one GEMM per group (any nd, stride, dilation, groups).

    One pass over chunks of the batch computes any of ``y = conv(x) + b`` (from ``x``),
    ``dx = conv^T(dy)`` (from ``dy``), ``dW = dy * x`` and ``db``; the columns of a chunk are
    built once and serve both ``y`` and ``dW`` (a transposed convolution's backward needs
    both). Columns are kept for backward when they fit ``chunking.KEEP_BYTES``, else rebuilt:
    they are ``prod(kernel)`` times the input's size.

    On a GPU (CuPy arrays) the whole batch is one chunk: one im2col, one batched GEMM per
    direction (cuBLAS), no thread pool, arrays from CuPy's own memory pool.
    """

    CHUNK_BYTES = 1 << 22  # target size of one chunk's columns
    REQUIRES = "any convolution"

    @staticmethod
    def applies(g: _Geometry) -> bool:
        return True

    @staticmethod
    def preferred(g: _Geometry, itemsize: int = 4) -> bool:
        return True

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
        ref = x if x is not None else gy
        dtype = ref.dtype
        host = type(ref) is np.ndarray
        xp = np if host else get_array_module(ref)
        if host:
            chunks, nb = cls._chunks(g, dtype, _parallel.num_threads())
            n = _parallel.workers(len(chunks))
        else:
            chunks, nb, n = [(0, g.N)], g.N, 1
        parts = _queue(chunks, n)
        index = {c: i for i, c in enumerate(chunks)}
        size = len(chunks) * g.C * g.KK * nb * g.Lo * np.dtype(dtype).itemsize
        saved = None
        if keep and size <= chunking.KEEP_BYTES:
            saved = _xp.empty((len(chunks), g.C, g.KK, nb) + g.So, dtype, ref)
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
        bufs = _worker_buffers(shapes, dtype, ref, n)
        wm = w.reshape(g.groups, g.Og, kdim) if w is not None else None
        wt = wm.transpose(0, 2, 1) if dx is not None else None  # BLAS reads it transposed
        # dW^T = cols dY^T (K x O) runs faster in OpenBLAS than dY cols^T for small O; for
        # large O, dY cols^T gives dW in its own layout (a transposed copy of a 2-9 MiB dW
        # costs more than the GEMM gains)
        dw_t = g.Og < 64
        dw_shape = (g.groups, kdim, g.Og) if dw_t else (g.groups, g.Og, kdim)
        # every worker has a chunk (n <= chunks), whose dW product initialises its sum
        dws = [xp.empty(dw_shape, dtype) if want_dw else None for _ in range(n)]
        dbs = [xp.zeros(g.O, dtype) if want_db else None for _ in range(n)]
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
                    xp.matmul(wm, cols, out=out)
                    src = _swap01(out.reshape((g.O, k) + g.So))
                    if bias_b is None:
                        xp.copyto(y[n0:n1], src)
                    else:
                        xp.add(src, bias_b, out=y[n0:n1])
                if need_gy:
                    gyt = buf["gyt"][:, :k]
                    xp.copyto(gyt, _swap01(gy[n0:n1]))
                    gyt = gyt.reshape(g.groups, g.Og, k * g.Lo)
                if db is not None:
                    db += gyt.reshape(g.O, -1).sum(axis=1)
                if dw is not None:
                    lhs, rhs = (cols, gyt) if dw_t else (gyt, cols)
                    if first:  # the worker's first chunk writes dW, later ones add
                        xp.matmul(lhs, rhs.transpose(0, 2, 1), out=dw)
                    else:
                        dw += xp.matmul(lhs, rhs.transpose(0, 2, 1))
                if dx is not None:
                    dcols = buf["dcols"][:, :, :k]
                    xp.matmul(wt, gyt, out=dcols.reshape(g.groups, kdim, k * g.Lo))
                    _col2im(dcols, g, n0, n1, dx)

        _parallel.run_tasks(task, n)  # n = 1 on a GPU: inline
        dw = None
        if want_dw:
            dw = sum(dws[1:], dws[0])
            dw = xp.ascontiguousarray(dw.transpose(0, 2, 1)) if dw_t else dw
            dw = dw.reshape((g.O, g.Cg) + g.K)
        db = sum(dbs[1:], dbs[0]) if want_db else None
        return dw, db, saved

    @classmethod
    def forward(cls, fn, x, w, b, g: _Geometry):
        y = _xp.empty((g.N, g.O) + g.So, x.dtype, x)
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
        dx = _xp.empty((g.N, g.C) + g.S, gy.dtype, gy) if need_x else None
        kept = getattr(fn, "cols", None)
        x = fn.x if need_w and kept is None else None
        dw, db, _ = cls.run(g, fn.w if need_x else None, x=x, gy=gy, dx=dx, want_dw=need_w,
                            want_db=need_b, kept=kept if need_w else None)
        return dx, dw, db

