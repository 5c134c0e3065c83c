"""2-d convolution as one GEMM over whole input rows against a banded (Toeplitz) weight
matrix, for few output channels on narrow images (LeNet-5's layers); see
:class:`_RowToeplitz`."""

from __future__ import annotations

import numpy as np

from filterbank import _xp
from filterbank.backend import get_array_module
from filterbank.functional._conv import chunking
from filterbank.functional._conv.geometry import _Geometry


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

    REQUIRES = "a 2-d convolution without groups"

    @staticmethod
    def applies(g: _Geometry) -> bool:
        return g.nd == 2 and g.groups == 1

    @classmethod
    def preferred(cls, g: _Geometry, itemsize: int = 4) -> bool:
        if not cls.applies(g) or g.C * g.KK > cls.MAX_K:
            return False
        wp = cls._padded_width(g)
        if not any(g.O <= o and wp <= limit * g.K[1] for o, limit in cls.LIMITS.items()):
            return False
        t_bytes = g.C * g.K[0] * wp * g.O * g.So[1] * itemsize
        rows_bytes = g.N * g.So[0] * g.C * g.K[0] * wp * itemsize
        return t_bytes <= cls.MAX_T_BYTES and rows_bytes <= chunking.KEEP_BYTES

    @staticmethod
    def _padded_width(g: _Geometry) -> int:
        return g.S[1] + sum(g.pads[1])

    @staticmethod
    def _band(g: _Geometry, xp=np):
        """Index arrays (J, OW) of shape (kW, W_out): T's column ``(o, j)`` holds ``w[.., q]``
        at padded input column ``J[q, j] = s j + d q`` (made by ``xp``: on the device of the
        arrays they index)."""
        ow = xp.arange(g.So[1])
        return g.stride[1] * ow[None, :] + g.dilation[1] * xp.arange(g.K[1])[:, None], ow

    @classmethod
    def _toeplitz(cls, w, g: _Geometry, wp: int):
        xp = get_array_module(w)
        t = xp.zeros((g.C, g.K[0], wp, g.O, g.So[1]), w.dtype)
        j, ow = cls._band(g, xp)
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
            xpad = _xp.zeros((g.N, g.C, hp, wp), x.dtype, x)
            xpad[:, :, pt:pt + g.S[0], pl:pl + g.S[1]] = x
        else:
            xpad = x
        xp = get_array_module(x)
        rows = _xp.empty((g.N, g.So[0], g.C, g.K[0], wp), x.dtype, x)
        for p in range(g.K[0]):
            rows[:, :, :, p] = xpad[:, :, cls._row_slice(g, p)].transpose(0, 2, 1, 3)
        t = cls._toeplitz(w, g, wp)
        out = _xp.empty((g.N * g.So[0], g.O * g.So[1]), x.dtype, x)
        xp.matmul(rows.reshape(g.N * g.So[0], -1), t, out=out)
        y = _xp.empty((g.N, g.O) + g.So, x.dtype, x)
        src = out.reshape(g.N, g.So[0], g.O, g.So[1]).transpose(0, 2, 1, 3)
        if b is None:
            xp.copyto(y, src)
        else:
            xp.add(src, b.reshape(1, g.O, 1, 1), out=y)
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
        xp = get_array_module(gy)
        gr = _xp.empty((g.N, g.So[0], g.O, g.So[1]), gy.dtype, gy)
        xp.copyto(gr, gy.transpose(0, 2, 1, 3))
        gr = gr.reshape(g.N * g.So[0], g.O * g.So[1])
        dw = db = dx = None
        if need_w:
            dt = xp.matmul(fn.rows.reshape(g.N * g.So[0], -1).T, gr)
            j, ow = cls._band(g, xp)
            bands = dt.reshape(g.C, g.K[0], wp, g.O, g.So[1])[:, :, j, :, ow]
            dw = xp.ascontiguousarray(bands.sum(axis=1).transpose(3, 1, 2, 0))
        if need_b:
            db = gr.reshape(-1, g.O, g.So[1]).sum(axis=(0, 2))
        if need_x:
            (pt, pb), (pl, pr) = g.pads
            drows = _xp.empty((g.N, g.So[0], g.C, g.K[0], wp), gy.dtype, gy)
            xp.matmul(gr, fn.t.T, out=drows.reshape(g.N * g.So[0], -1))
            dxp = _xp.zeros((g.N, g.C, g.S[0] + pt + pb, wp), gy.dtype, gy)
            for p in range(g.K[0]):
                view = dxp[:, :, cls._row_slice(g, p)]
                view += drows[:, :, :, p].transpose(0, 2, 1, 3)
            dx = dxp
            if pt or pb or pl or pr:
                dx = xp.ascontiguousarray(dxp[:, :, pt:pt + g.S[0], pl:pl + g.S[1]])
        return dx, dw, db

