"""2-d 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3); see
:class:`_Winograd`."""

from __future__ import annotations

import itertools

import numpy as np

from filterbank import _parallel, _xp
from filterbank.backend import get_array_module
from filterbank.functional._conv import chunking
from filterbank.functional._conv.chunking import _chunk_ranges, _run_chunks, _worker_buffers
from filterbank.functional._conv.geometry import _ALL2, _Geometry, _swap01, _zero_outside

_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)
_AA = {np.dtype(t).str: np.kron(_AT, _AT).astype(t) for t in (np.float32, np.float64)}


def _const(a, like):
    """The host constant ``a`` where ``like`` lives (itself on the host)."""
    return a if type(like) is np.ndarray else get_array_module(like).asarray(a)


def _einsum(spec, g, w):
    """``einsum(spec, g, g, w)`` in float64, where ``w`` lives (``g``: a host filter transform,
    :attr:`_Winograd.G` or ``winograd43.G``)."""
    if type(w) is np.ndarray:
        return np.einsum(spec, g, g, w, dtype=np.float64, optimize=True)
    gd = _const(g, w)
    return get_array_module(w).einsum(spec, gd, gd, w.astype(np.float64))


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
    backward rather than stored (an input-sized saved tensor instead of 4x that). On a GPU
    (CuPy arrays; only when forced, see ``conv.py``) the batch is one chunk, on one thread.
    """

    G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
    #: sign of dM[k] = A dY A^T against the unsigned H[k] computed in backward (A's last row
    #: is [0, -1]: tile rows/columns 3 carry a minus sign)
    SIGN = np.array([[1, 1, 1, -1], [1, 1, 1, -1], [1, 1, 1, -1], [-1, -1, -1, 1]],
                    np.float64).reshape(16)
    CHUNK_BYTES = 1 << 18  # target size of one transform intermediate (per chunk)

    REQUIRES = "a 2-d 3x3 stride-1 undilated convolution"

    @staticmethod
    def applies(g: _Geometry) -> bool:
        return g.nd == 2 and g.K == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1)

    @classmethod
    def preferred(cls, g: _Geometry, itemsize: int = 4) -> bool:
        # bench/conv_algos.py: faster than im2col with 64 channels on either side at 12x12+
        # outputs (64->32 @16 too), or from 16 channels at 24x24; slower or equal for 16-32
        # channels at 14-16 (16->16 @14, 32->32 @16)
        return (cls.applies(g) and min(g.Cg, g.Og) >= 16 and min(g.So) >= 12
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
    def _chunks(cls, g: _Geometry, dtype, host: bool = True):
        if not host:
            return [(0, g.N)], g.N
        _, _, hq, wq = cls._grid(g)
        per_sample = max(g.C, g.O) * hq * wq * np.dtype(dtype).itemsize
        nb = int(min(g.N, max(2, cls.CHUNK_BYTES // per_sample)))
        return _chunk_ranges(g.N, nb, _parallel.num_threads())

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

    # ------------------------------------------------------------------------ forward
    @classmethod
    def forward(cls, fn, x, w, b, g: _Geometry):
        _, _, hq, wq = cls._grid(g)
        host = type(x) is np.ndarray
        chunks, nb = cls._chunks(g, x.dtype, host)
        n = _parallel.workers(len(chunks))
        Lc, Lo = g.C * nb * hq * wq, g.O * nb * hq * wq
        shapes = {"P": (4, Lc + wq + 1), "R": (4, 2, Lc + 1), "V": (16, Lc), "M": (16, Lo),
                  "Y": (4, Lo)}
        # the tiles are kept for dW when they fit the budget, else rebuilt in backward
        keep = (fn.needs_input_grad[1]
                and 16 * len(chunks) * Lc * x.itemsize <= chunking.KEEP_BYTES)
        if keep:
            del shapes["V"]
            saved = _xp.empty((len(chunks), 16, Lc), x.dtype, x)
        bufs = _worker_buffers(shapes, x.dtype, x, n)
        u = _einsum("ai,bj,ocij->aboc", cls.G, w)
        u = get_array_module(x).ascontiguousarray(u.reshape(16, g.groups, g.Og, g.Cg),
                                                   dtype=x.dtype)
        y = _xp.empty((g.N, g.O) + g.So, x.dtype, x)

        def body(i, slot, n0, n1):
            out = saved[slot, :, :g.C * (n1 - n0) * hq * wq] if keep else None
            cls._forward_chunk(x, u, b, g, n0, n1, bufs[i], y, out)

        _run_chunks(chunks, n, body)
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
        xp = get_array_module(x)
        v = cls._input_tiles(x, g, n0, n1, bufs, out)
        m = bufs["M"][:, :lo]
        xp.matmul(u, v.reshape(16, g.groups, g.Cg, lc // g.C),
                  out=m.reshape(16, g.groups, g.Og, lo // g.O))
        if b is not None:  # A^T E A = ones(2, 2) for E = the unit at tile element (1, 1)
            m5 = m[5].reshape(g.O, -1)
            m5 += b.reshape(g.O, 1)
        # Y = A^T M A, as one small GEMM (A^T (x) A^T) M, then scattered into y's 2x2 phases
        yt = bufs["Y"][:, :lo]
        xp.matmul(_const(_AA[x.dtype.str], x), m, out=yt)
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
        host = type(gy) is np.ndarray
        xp = get_array_module(gy)
        chunks, nb = cls._chunks(g, gy.dtype, host)
        n = _parallel.workers(len(chunks))
        Lc, Lo = g.C * nb * hq * wq, g.O * nb * hq * wq
        shapes = {"H": (16, Lo)}
        saved = getattr(fn, "v", None)
        if need_w and saved is None:
            shapes.update({"P": (4, Lc + wq + 1), "R": (4, 2, Lc + 1), "V": (16, Lc)})
        if need_x:
            shapes.update({"dV": (16, Lc), "dR": (4, 2, Lc), "dP": (4, Lc), "T": (Lc,)})
        bufs = _worker_buffers(shapes, gy.dtype, gy, n)
        sign = _const(cls.SIGN.astype(gy.dtype), gy)
        us = (fn.u * sign.reshape(16, 1, 1, 1)).transpose(0, 1, 3, 2) if need_x else None
        du = [xp.zeros((16, g.groups, g.Og, g.Cg), gy.dtype) if need_w else None
              for _ in range(n)]
        db = [xp.zeros(g.O, gy.dtype) if need_b else None for _ in range(n)]
        dx = _xp.empty((g.N, g.C) + g.S, gy.dtype, gy) if need_x else None
        x = fn.x if need_w and saved is None else None

        def body(i, slot, n0, n1):
            v = None
            if need_w and saved is not None:
                v = saved[slot, :, :g.C * (n1 - n0) * hq * wq]
            cls._backward_chunk(gy, x, us, g, n0, n1, bufs[i], du[i], db[i], dx, v)

        _run_chunks(chunks, n, body)
        dw = None
        if need_w:
            total = sum(du[1:], du[0]) * sign.reshape(16, 1, 1, 1)
            dw = _einsum("ai,bj,aboc->ocij", cls.G,
                         total.reshape(4, 4, g.O, g.Cg)).astype(gy.dtype)
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
        xp = get_array_module(h4)
        if du is not None:
            if v is None:
                v = cls._input_tiles(x, g, n0, n1, bufs)
            du += xp.matmul(h4, v.reshape(16, g.groups, g.Cg, lc // g.C).transpose(0, 1, 3, 2))
        if dx is not None:
            dv = bufs["dV"][:, :lc]
            xp.matmul(us, h4, out=dv.reshape(16, g.groups, g.Cg, lc // g.C))
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

