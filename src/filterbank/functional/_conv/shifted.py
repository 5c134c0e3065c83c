"""Channels-last shifted GEMM: a stride-1 2-d convolution as ``kH kW`` GEMMs, no im2col copy.

The padded input of a chunk of samples is stored channels-last and flattened to
``X (rows, C)``, one row per padded pixel ``(n, h, w)``, ``rows = k H_pad W_pad``. Kernel tap
``(i, j)`` reads, for the output computed at padded-grid position ``r``, input row
``r + d_h i W_pad + d_w j``: a contiguous row-offset slice of ``X``. So

    ``Y[r] = sum_(i, j) X[r + off(i, j)] W[:, :, i, j]^T``

is ``kH kW`` GEMMs ``(rows, C) @ (C, O)`` accumulated into one output buffer. Outputs are
computed on the whole padded grid (``H_pad W_pad / (H_out W_out)`` times the work: 1.13x at
32x32, 1.65x at 7x7) and cropped. Backward uses the same slices: ``dW[:, :, i, j]^T =
X[off:off + rows]^T dY`` and ``dX[off:off + rows] += dY W[:, :, i, j]`` with ``dY`` zero off
the valid outputs.

Stride 1, any kernel size and dilation, groups 1.
"""

from __future__ import annotations

import numpy as np

from filterbank import _parallel, _xp
from filterbank.backend import get_array_module
from filterbank.functional._conv.chunking import _chunk_ranges, _queue, _worker_buffers
from filterbank.functional._conv.geometry import _zero_outside


class ShiftedGemm:
    """Stride-1 2-d convolution (groups 1) by ``kH kW`` row-offset GEMMs on channels-last
    rows."""

    CHUNK_BYTES = 1 << 19  # target size of one chunk's output rows (rows x O)

    REQUIRES = "a 2-d stride-1 convolution without groups"

    @staticmethod
    def applies(g) -> bool:
        return g.nd == 2 and g.stride == (1, 1) and g.groups == 1

    @classmethod
    def preferred(cls, g, itemsize: int = 4) -> bool:
        # bench/conv_algos.py --rounds 3 (fwd+bwd vs PyTorch): ResNet-18's 3x3 layers 0.50-1.42x
        # against F(4x4, 3x3)'s 0.51-2.91x and im2col's 0.85-1.78x; fastest only on a few
        # small-channel shapes (LeNet c2 at batch 64 5.5x, not at batch 256: 2.9x vs im2col
        # 4.0x; 3->16 @32; 16->16 @14), not consistently enough for a rule: forced only
        return False

    @staticmethod
    def _layout(g):
        (pt, pb), (pl, pr) = g.pads
        hp, wp = g.S[0] + pt + pb, g.S[1] + pl + pr
        offs = [i * g.dilation[0] * wp + j * g.dilation[1]
                for i in range(g.K[0]) for j in range(g.K[1])]
        return hp, wp, offs

    @classmethod
    def _chunks(cls, g, dtype, host=True):
        if not host:  # a GPU: the whole batch at once, on one thread
            return [(0, g.N)], g.N
        hp, wp, _ = cls._layout(g)
        per_sample = hp * wp * max(g.C, g.O) * np.dtype(dtype).itemsize
        nb = int(min(g.N, max(1, cls.CHUNK_BYTES // per_sample)))
        return _chunk_ranges(g.N, nb, _parallel.num_threads())

    @classmethod
    def _rows(cls, x, g, n0, n1, buf):
        """The channels-last padded rows of x[n0:n1] (plus zero tail rows for the offsets)."""
        hp, wp, offs = cls._layout(g)
        k = n1 - n0
        R = k * hp * wp
        (pt, _), (pl, _) = g.pads
        xs = buf[:R + offs[-1]]
        x4 = xs[:R].reshape(k, hp, wp, g.C)
        box = (slice(pt, pt + g.S[0]), slice(pl, pl + g.S[1]))
        x4[(slice(None),) + box] = x[n0:n1].transpose(0, 2, 3, 1)
        _zero_outside(x4, box, lead=1)
        xs[R:] = 0
        return xs

    @staticmethod
    def _taps(w, g):
        """(kH kW, C, O): W[:, :, i, j]^T per tap, contiguous."""
        xp = get_array_module(w)
        return xp.ascontiguousarray(w.reshape(g.O, g.C, g.KK).transpose(2, 1, 0))

    @classmethod
    def forward(cls, fn, x, w, b, g):
        xp = get_array_module(x)
        hp, wp, offs = cls._layout(g)
        chunks, nb = cls._chunks(g, x.dtype, xp is np)
        n = _parallel.workers(len(chunks))
        R = nb * hp * wp
        bufs = _worker_buffers({"X": (R + offs[-1], g.C), "Y": (R, g.O), "T": (R, g.O)},
                               x.dtype, x, n)
        taps = cls._taps(w, g)
        y = _xp.empty((g.N, g.O) + g.So, x.dtype, x)
        parts = _queue(chunks, n)

        def task(i):
            buf = bufs[i]
            for n0, n1 in parts[i]:
                k = n1 - n0
                r = k * hp * wp
                xs = cls._rows(x, g, n0, n1, buf["X"])
                out, tmp = buf["Y"][:r], buf["T"][:r]
                for t, off in enumerate(offs):
                    if t == 0:
                        xp.matmul(xs[off:off + r], taps[t], out=out)
                    else:
                        xp.matmul(xs[off:off + r], taps[t], out=tmp)
                        out += tmp
                src = out.reshape(k, hp, wp, g.O)[:, :g.So[0], :g.So[1]].transpose(0, 3, 1, 2)
                if b is None:
                    xp.copyto(y[n0:n1], src)
                else:
                    xp.add(src, b.reshape(1, g.O, 1, 1), out=y[n0:n1])

        _parallel.run_tasks(task, n)
        if fn.needs_input_grad[1]:
            fn.x = x
        if fn.needs_input_grad[0]:
            fn.taps = taps
        return y

    @classmethod
    def backward(cls, fn, gy, g):
        need_x, need_w = fn.needs_input_grad[:2]
        need_b = len(fn.needs_input_grad) > 2 and fn.needs_input_grad[2]
        xp = get_array_module(gy)
        hp, wp, offs = cls._layout(g)
        chunks, nb = cls._chunks(g, gy.dtype, xp is np)
        n = _parallel.workers(len(chunks))
        R = nb * hp * wp
        (pt, _), (pl, _) = g.pads
        shapes = {"G": (R, g.O)}
        if need_w:
            shapes["X"] = (R + offs[-1], g.C)
        if need_x:
            shapes.update({"dX": (R + offs[-1], g.C), "T": (R, g.C)})
        bufs = _worker_buffers(shapes, gy.dtype, gy, n)
        dws = [xp.empty((g.KK, g.C, g.O), gy.dtype) if need_w else None for _ in range(n)]
        dbs = [xp.zeros(g.O, gy.dtype) if need_b else None for _ in range(n)]
        dx = _xp.empty((g.N, g.C) + g.S, gy.dtype, gy) if need_x else None
        taps_t = fn.taps.transpose(0, 2, 1) if need_x else None
        parts = _queue(chunks, n)

        def task(i):
            buf, dw, db = bufs[i], dws[i], dbs[i]
            for j, (n0, n1) in enumerate(parts[i]):
                k = n1 - n0
                r = k * hp * wp
                gp = buf["G"][:r]
                g4 = gp.reshape(k, hp, wp, g.O)
                box = (slice(0, g.So[0]), slice(0, g.So[1]))
                g4[(slice(None),) + box] = gy[n0:n1].transpose(0, 2, 3, 1)
                _zero_outside(g4, box, lead=1)
                if db is not None:
                    db += gp.sum(axis=0)
                if dw is not None:
                    xs = cls._rows(fn.x, g, n0, n1, buf["X"])
                    for t, off in enumerate(offs):
                        if j == 0:
                            xp.matmul(xs[off:off + r].T, gp, out=dw[t])
                        else:
                            dw[t] += xp.matmul(xs[off:off + r].T, gp)
                if dx is not None:
                    dxs, tmp = buf["dX"][:r + offs[-1]], buf["T"][:r]
                    xp.matmul(gp, taps_t[0], out=dxs[:r])  # offs[0] == 0
                    dxs[r:] = 0
                    for t in range(1, len(offs)):
                        xp.matmul(gp, taps_t[t], out=tmp)
                        view = dxs[offs[t]:offs[t] + r]
                        view += tmp
                    d4 = dxs[:r].reshape(k, hp, wp, g.C)
                    dx[n0:n1] = d4[:, pt:pt + g.S[0], pl:pl + g.S[1]].transpose(0, 3, 1, 2)

        _parallel.run_tasks(task, n)
        dw = None
        if need_w:
            total = sum(dws[1:], dws[0])
            dw = xp.ascontiguousarray(total.transpose(2, 1, 0)).reshape((g.O, g.C) + g.K)
        db = sum(dbs[1:], dbs[0]) if need_b else None
        return dx, dw, db
