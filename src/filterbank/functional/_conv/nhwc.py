"""Channels-last im2col: a 2-d convolution's columns gathered from an NHWC copy of the input,
for small images (the late stages of a ResNet, small networks on 28x28 inputs).

The NCHW im2col (:mod:`.im2col`) copies, per kernel offset, a strided slice whose contiguous
runs are one output row: 4-8 values on a 4x4-8x8 feature map, where NumPy's copy loop
spends its time on loop overhead rather than moving data. Here the padded input of a chunk of
samples is first copied channels-last, ``X (k, H_pad, W_pad, C)``; the receptive field of
output pixel ``(n, i, j)`` is then the window ``X[n, s i + d p, s j + d q, :]``, whose
innermost runs are ``C`` values (a whole ``kW C`` for stride-1, dilation-1 rows), so the
columns

    ``cols[(n, i, j), (p, q, c)] = X[n, s_h i + d_h p, s_w j + d_w q, c]``

are one strided-view copy, and

    ``Y = cols W_m``, ``W_m[(p, q, c), o] = w[o, c, p, q]``, ``(k H_out W_out, O)``

is one GEMM whose result is the output channels-last. Backward: ``dY`` channels-last
``G (k L, O)``, ``dW_m = cols^T G``, ``db = sum G``. The input gradient of a stride-1
convolution is itself a convolution, of ``G`` zero-padded by ``d (k - 1) - pad`` on each side
with the flipped kernel,

    ``dX[n, h, w, c] = sum_(p, q, o) G_pad[n, h + d_h p, w + d_w q, o] w[o, c, kH-1-p, kW-1-q]``,

so it is the same gather and one GEMM ``(k H W, kH kW O) @ (kH kW O, C)``. Otherwise
(stride > 1, or a padding beyond ``d (k - 1)``) ``dcols = G W_m^T`` is added back onto the
padded input window by window (``kH kW`` slice additions with ``C``-long runs).

Any stride, dilation and padding; groups 1.
"""

from __future__ import annotations

import numpy as np

from filterbank import _parallel, _xp
from filterbank.backend import get_array_module
from filterbank.functional._conv import chunking
from filterbank.functional._conv.chunking import _chunk_ranges, _run_chunks, _worker_buffers
from filterbank.functional._conv.geometry import _Geometry, _zero_outside


class Im2colNHWC:
    """2-d convolution (groups 1) by channels-last im2col + one GEMM per direction."""

    CHUNK_BYTES = 1 << 22  # target size of one chunk's columns
    REQUIRES = "a 2-d convolution without groups"
    #: below this many multiply-adds per direction the chunks run on the calling thread: the
    #: pool's hand-off costs about what it saves (batch 64, fwd / fwd+bwd ms, pool vs one
    #: thread: 16->16 @8 0.58-0.82 / 2.1-3.5 vs 0.66 / 2.4-2.6, 32->32 @7 1.2 / 5.1-5.6 vs
    #: 1.0 / 4.7-4.9, 64->64 @4 1.2-1.4 / 4.1-4.4 vs 1.2-1.4 / 3.7-3.8; from 2e8
    #: multiply-adds the pool wins: 256->256 @8 35-44 / 114 vs 64 / 200)
    POOL_MACS = 32_000_000

    @staticmethod
    def applies(g: _Geometry) -> bool:
        return g.nd == 2 and g.groups == 1

    #: preferred for outputs up to MAX_SIDE on a side, MIN_C to MAX_C input and output
    #: channels
    MAX_SIDE, MIN_C, MAX_C = 8, 16, 256

    @classmethod
    def preferred(cls, g: _Geometry, itemsize: int = 4) -> bool:
        # bench/conv_algos.py --rounds 3 --filter "@8,@7,@4,..." (batch 64 unless noted;
        # bench/results/conv_algos_small.json), fwd+bwd speed vs PyTorch, this vs the next
        # best: 32->32 @7 0.47x vs 0.32x (shifted), 64->64 @7 0.55x vs 0.47x (im2col),
        # 64->64 @4 0.45x vs 0.38x, 16->16 @8 0.33x vs 0.30x (row-Toeplitz 0.26x),
        # 32->16 @8 0.43x vs 0.34x, 256->256 @8 0.75x vs 0.69x, stride 2: 16->32 @14 0.48x vs
        # 0.43x, 32->64 @7 0.50x vs 0.38x. Slower: 512 channels (512->512 @7 b32 0.79x vs
        # im2col 0.99x, @4 0.67x vs 0.78x, 256->512 s2 @8 0.87x vs 0.89x), and outputs of 14
        # (16->16 @14 0.26x vs 0.28x, 16->16 s2 @28 0.48x vs 0.56x)
        return (cls.applies(g) and max(g.So) <= cls.MAX_SIDE
                and cls.MIN_C <= g.C <= cls.MAX_C and g.O <= cls.MAX_C)

    @staticmethod
    def _padded(g: _Geometry) -> tuple[int, int]:
        return g.S[0] + sum(g.pads[0]), g.S[1] + sum(g.pads[1])

    @classmethod
    def _chunks(cls, g: _Geometry, dtype, host: bool = True):
        if not host:  # a GPU: the whole batch at once, on one thread
            return [(0, g.N)], g.N
        per_sample = max(1, g.Lo * g.KK * g.C * np.dtype(dtype).itemsize)
        nb = int(min(g.N, max(1, cls.CHUNK_BYTES // per_sample)))
        return _chunk_ranges(g.N, nb, cls._workers(g))

    @classmethod
    def _workers(cls, g: _Geometry) -> int:
        macs = g.N * g.Lo * g.O * g.C * g.KK
        return _parallel.num_threads() if macs >= cls.POOL_MACS else 1

    @classmethod
    def _pad_nhwc(cls, x, g: _Geometry, n0: int, n1: int, buf):
        """``x[n0:n1]`` channels-last, zero-padded: ``buf[:k]`` of shape (k, H_pad, W_pad, C)."""
        (pt, _), (pl, _) = g.pads
        xp4 = buf[:n1 - n0]
        box = (slice(pt, pt + g.S[0]), slice(pl, pl + g.S[1]))
        xp4[(slice(None),) + box] = x[n0:n1].transpose(0, 2, 3, 1)
        _zero_outside(xp4, box, lead=1)
        return xp4

    @staticmethod
    def _windows(xp4, g: _Geometry):
        """The (k, H_out, W_out, kH, kW, C) view of every output pixel's receptive field."""
        xp = get_array_module(xp4)
        sn, sh, sw, sc = xp4.strides
        shape = (xp4.shape[0],) + g.So + g.K + (g.C,)
        strides = (sn, sh * g.stride[0], sw * g.stride[1], sh * g.dilation[0],
                   sw * g.dilation[1], sc)
        return xp.lib.stride_tricks.as_strided(xp4, shape, strides)

    @classmethod
    def _cols(cls, x, g: _Geometry, n0: int, n1: int, pad_buf, cols_buf):
        """The chunk's columns ``(k L, kH kW C)`` in ``cols_buf``."""
        k = n1 - n0
        xp4 = cls._pad_nhwc(x, g, n0, n1, pad_buf)
        cols = cols_buf[:k]
        get_array_module(x).copyto(cols, cls._windows(xp4, g))
        return cols.reshape(k * g.Lo, g.KK * g.C)

    @staticmethod
    def _wm_t(w, g: _Geometry):
        """``W_m^T (O, kH kW C)``, contiguous: ``W_m[(p, q, c), o] = w[o, c, p, q]``. The GEMMs
        read ``W_m`` as its transpose (``cols @ W_m^T.T``): OpenBLAS runs that (its "NT" form)
        up to 1.5x faster than a contiguous ``W_m`` when O is 16-32 (bench/conv_algos.py)."""
        xp = get_array_module(w)
        return xp.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(g.O, g.KK * g.C)

    @staticmethod
    def _grad_pads(g: _Geometry):
        """The padding of dY whose stride-1 convolution with the flipped kernel is dX."""
        return tuple((d * (k - 1) - lo, d * (k - 1) - hi)
                     for d, k, (lo, hi) in zip(g.dilation, g.K, g.pads))

    @classmethod
    def _gather_dx(cls, g: _Geometry) -> bool:
        return g.stride == (1, 1) and all(p >= 0 for pair in cls._grad_pads(g) for p in pair)

    @staticmethod
    def _flipped_t(wm_t, g: _Geometry):
        """The flipped kernel's ``(C, kH kW O)``, contiguous, from ``W_m^T``:
        ``[c, (p, q, o)] = w[o, c, kH-1-p, kW-1-q]`` (read transposed, as ``W_m^T``)."""
        xp = get_array_module(wm_t)
        w4 = wm_t.reshape((g.O,) + g.K + (g.C,))[:, ::-1, ::-1]
        return xp.ascontiguousarray(w4.transpose(3, 1, 2, 0)).reshape(g.C, g.KK * g.O)

    @classmethod
    def forward(cls, fn, x, w, b, g: _Geometry):
        xp = get_array_module(x)
        chunks, nb = cls._chunks(g, x.dtype, xp is np)
        n = _parallel.workers(len(chunks)) if cls._workers(g) > 1 else 1
        hp, wp = cls._padded(g)
        col_shape = g.So + g.K + (g.C,)
        keep = fn.needs_input_grad[1]
        saved = None
        if keep and len(chunks) * nb * g.Lo * g.KK * g.C * x.itemsize <= chunking.KEEP_BYTES:
            saved = _xp.empty((len(chunks), nb) + col_shape, x.dtype, x)
        shapes = {"X": (nb, hp, wp, g.C), "Y": (nb * g.Lo, g.O)}
        if saved is None:
            shapes["cols"] = (nb,) + col_shape
        bufs = _worker_buffers(shapes, x.dtype, x, n)
        wm_t = cls._wm_t(w, g)
        y = _xp.empty((g.N, g.O) + g.So, x.dtype, x)
        bias = None if b is None else b.reshape(1, g.O, 1, 1)

        def body(i, slot, n0, n1):
            buf, k = bufs[i], n1 - n0
            cols = cls._cols(x, g, n0, n1, buf["X"],
                             buf["cols"] if saved is None else saved[slot])
            out = buf["Y"][:k * g.Lo]
            xp.matmul(cols, wm_t.T, out=out)
            src = out.reshape((k,) + g.So + (g.O,)).transpose(0, 3, 1, 2)
            if bias is None:
                xp.copyto(y[n0:n1], src)
            else:
                xp.add(src, bias, out=y[n0:n1])

        _run_chunks(chunks, n, body)
        if saved is not None:
            fn.cols = saved
        elif keep:
            fn.x = x
        if fn.needs_input_grad[0]:
            fn.wm_t = wm_t
        return y

    @classmethod
    def backward(cls, fn, gy, g: _Geometry):
        need_x, need_w = fn.needs_input_grad[:2]
        need_b = len(fn.needs_input_grad) > 2 and fn.needs_input_grad[2]
        xp = get_array_module(gy)
        chunks, nb = cls._chunks(g, gy.dtype, xp is np)
        n = _parallel.workers(len(chunks)) if cls._workers(g) > 1 else 1
        hp, wp = cls._padded(g)
        (pt, _), (pl, _) = g.pads
        kept = getattr(fn, "cols", None)
        shapes = {"G": (nb, g.So[0], g.So[1], g.O)}
        if need_w and kept is None:
            shapes.update({"X": (nb, hp, wp, g.C), "cols": (nb,) + g.So + g.K + (g.C,)})
        flip = need_x and cls._gather_dx(g)
        if flip:  # dX as the convolution of the padded dY with the flipped kernel
            (gt, gb), (gl, gr) = cls._grad_pads(g)
            shapes.update({"Gp": (nb, g.So[0] + gt + gb, g.So[1] + gl + gr, g.O),
                           "dcols": (nb,) + g.S + g.K + (g.O,), "dX": (nb * g.S[0] * g.S[1], g.C)})
        elif need_x:
            shapes.update({"dX": (nb, hp, wp, g.C), "dcols": (nb * g.Lo, g.KK * g.C)})
        bufs = _worker_buffers(shapes, gy.dtype, gy, n)
        # every worker has a chunk (n <= chunks), whose product initialises its sums
        dws = [xp.empty((g.KK * g.C, g.O), gy.dtype) if need_w else None for _ in range(n)]
        dbs = [xp.zeros(g.O, gy.dtype) if need_b else None for _ in range(n)]
        dx = _xp.empty((g.N, g.C) + g.S, gy.dtype, gy) if need_x else None
        wm_t = fn.wm_t if need_x and not flip else None
        wflip_t = cls._flipped_t(fn.wm_t, g) if flip else None
        gflip = None
        if flip:  # the convolution dX = conv(G_pad, flipped w), channels-last
            gflip = _Geometry((nb, g.O, g.So[0] + gt + gb, g.So[1] + gl + gr), (g.C, g.O) + g.K,
                              (1, 1), ((0, 0), (0, 0)), g.dilation, 1)
        first = [True] * n

        def body(i, slot, n0, n1):
            buf, k = bufs[i], n1 - n0
            g4 = buf["G"][:k]
            xp.copyto(g4, gy[n0:n1].transpose(0, 2, 3, 1))
            gm = g4.reshape(k * g.Lo, g.O)
            if need_b:
                dbs[i] += gm.sum(axis=0)
            if need_w:
                if kept is not None:
                    cols = kept[slot][:k].reshape(k * g.Lo, g.KK * g.C)
                else:
                    cols = cls._cols(fn.x, g, n0, n1, buf["X"], buf["cols"])
                if first[i]:
                    xp.matmul(cols.T, gm, out=dws[i])
                else:
                    dws[i] += xp.matmul(cols.T, gm)
            first[i] = False
            if flip:
                gp = buf["Gp"][:k]
                box = (slice(gt, gt + g.So[0]), slice(gl, gl + g.So[1]))
                gp[(slice(None),) + box] = g4
                _zero_outside(gp, box, lead=1)
                dcols = buf["dcols"][:k]
                xp.copyto(dcols, cls._windows(gp, gflip))
                dxm = buf["dX"][:k * g.S[0] * g.S[1]]
                xp.matmul(dcols.reshape(dxm.shape[0], g.KK * g.O), wflip_t.T, out=dxm)
                xp.copyto(dx[n0:n1], dxm.reshape((k,) + g.S + (g.C,)).transpose(0, 3, 1, 2))
            elif need_x:
                dcols = buf["dcols"][:k * g.Lo]
                xp.matmul(gm, wm_t, out=dcols)
                dc = dcols.reshape((k,) + g.So + g.K + (g.C,))
                dxp = buf["dX"][:k]
                dxp.fill(0)
                for p in range(g.K[0]):
                    h0 = p * g.dilation[0]
                    rows = slice(h0, h0 + (g.So[0] - 1) * g.stride[0] + 1, g.stride[0])
                    for q in range(g.K[1]):
                        w0 = q * g.dilation[1]
                        cols_ = slice(w0, w0 + (g.So[1] - 1) * g.stride[1] + 1, g.stride[1])
                        view = dxp[:, rows, cols_]
                        view += dc[:, :, :, p, q]
                xp.copyto(dx[n0:n1], dxp[:, pt:pt + g.S[0], pl:pl + g.S[1]].transpose(0, 3, 1, 2))

        _run_chunks(chunks, n, body)
        dw = None
        if need_w:
            total = sum(dws[1:], dws[0])
            dw = xp.ascontiguousarray(total.reshape(g.K + (g.C, g.O)).transpose(3, 2, 0, 1))
        db = sum(dbs[1:], dbs[0]) if need_b else None
        return dx, dw, db
