"""Winograd ``F(4x4, 3x3)``: 2-d 3x3 stride-1 convolution on 6x6 input / 4x4 output tiles.

1-d, four outputs of a 3-tap filter ``g`` from six inputs ``d`` cost 6 multiplications, not 12
(Lavin & Gray 2016, interpolation points 0, 1, -1, 2, -2 and infinity):
``y = A^T [(G g) * (B^T d)]`` with

    B^T = [[4,  0, -5,  0, 1, 0],      G = [[ 1/4,     0,    0],
           [0, -4, -4,  1, 1, 0],           [-1/6,  -1/6, -1/6],
           [0,  4, -4, -1, 1, 0],           [-1/6,   1/6, -1/6],
           [0, -2, -1,  2, 1, 0],           [1/24,  1/12,  1/6],
           [0,  2, -1, -2, 1, 0],           [1/24, -1/12,  1/6],
           [0,  4,  0, -5, 0, 1]]           [   0,     0,    1]]

    A^T = [[1, 1,  1, 1,  1, 0],
           [0, 1, -1, 2, -2, 0],
           [0, 1,  1, 4,  4, 0],
           [0, 1, -1, 8, -8, 1]]

Nested in 2-d, a 4x4 output tile costs 36 multiplications per (input, output) channel pair
instead of 144 (F(2x2, 3x3): 16 for a 2x2 tile, i.e. 64 per 16 outputs): ``Y = A^T [U * V] A``
with ``U = G g G^T`` per filter and ``V = B^T d B`` per 6x6 input tile (tiles overlap by two).
Summed over input channels, the 36 elementwise products are 36 GEMMs ``M[k] = U[k] V[k]``.
Backward differentiates the bilinear form: ``dM = A dY A^T``, ``dU = dM V^T`` (then
``dW = G^T dU G``) and ``dV = U^T dM`` (then ``dx = B dV B^T``, the overlapping tiles added).

Each transform is two small GEMMs on whole chunks (``B^T`` over the tile rows, then over the
tile columns, one matmul each); the tiles are gathered from a zero-padded copy of the chunk
by one strided copy and folded back by 16 + 20 slice assignments/additions (one per tile
element, never per pixel).

Accuracy: float32 against float64 direct convolution, max |error| / max |reference| for y /
dx / dW, standard normal x, w and dY, 4x16x16 images, C_in = C_out = C
(``python bench/conv_algos.py --accuracy``): C = 16: 3.2e-6 / 1.6e-6 / 1.5e-6; C = 64:
6.0e-6 / 3.4e-6 / 3.1e-6; C = 128: 8.6e-6 / 6.7e-6 / 2.9e-6; C = 256: 1.3e-5 / 7.0e-6 /
3.5e-6 (F(2x2, 3x3) and im2col: 1.0e-7 to 6.7e-7 throughout). The larger interpolation
points (2 and -2: entries up to 8 in A^T, 1/24 in G) cost 10-25x F(2x2, 3x3)'s error; from
256 channels it exceeds the 1e-5 (of the largest value) float32 tolerance of the conv tests.

Speed and where it is picked: see :meth:`Winograd43.preferred`.
"""

from __future__ import annotations

import numpy as np

from filterbank import _parallel, _xp
from filterbank.backend import get_array_module
from filterbank.functional._conv import chunking
from filterbank.functional._conv.chunking import _chunk_ranges, _run_chunks, _worker_buffers
from filterbank.functional._conv.geometry import _zero_outside
from filterbank.functional._conv.winograd import _einsum

BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
               [0, 1, -1, 8, -8, 1]], np.float64)



def _mats(like):
    """The transform matrices in ``like``'s dtype, where ``like`` lives."""
    xp = get_array_module(like)
    return {k: xp.ascontiguousarray(xp.asarray(m, dtype=like.dtype))
            for k, m in (("BT", BT), ("B", BT.T), ("AT", AT), ("A", AT.T))}


def _as_strided(a, shape, strides):
    if type(a) is np.ndarray:
        return np.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)
    return get_array_module(a).lib.stride_tricks.as_strided(a, shape, strides)


class Winograd43:
    """2-d 3x3 stride-1 undilated convolution by Winograd's F(4x4, 3x3); any groups."""

    CHUNK_BYTES = 1 << 20  # target size of one chunk's input tiles V (36 x input / 16)
    #: but at least this many tiles per chunk: the 36 GEMMs are (O x C) @ (C x tiles), and
    #: a 14x14 image has only 16 tiles (skinny GEMMs run far below BLAS's speed)
    MIN_TILES = 128

    REQUIRES = "a 2-d 3x3 stride-1 undilated convolution"

    @staticmethod
    def applies(g) -> bool:
        return g.nd == 2 and g.K == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1)

    #: Whether :meth:`preferred` may pick it at all (tests switch it off to compare).
    AUTO = True

    @classmethod
    def preferred(cls, g, itemsize: int = 4) -> bool:
        # bench/conv_algos.py --rounds 3, FILTERBANK_NUM_THREADS=2 (fwd+bwd speed vs PyTorch,
        # this vs F(2x2, 3x3)): ResNet-18 b32 64->64 @32 2.91x vs 2.01x, 64->64 @56 2.04x vs
        # 1.45x, 128->128 @28 1.68x vs 1.26x; b64 64->64 @32 0.88x vs 0.55x, 128->128 @16
        # 0.85x vs 0.56x, 64->32 @16 3.38x vs 3.12x, 32->32 @28 2.36x vs 2.10x. Slower:
        # 32->32 @16 (1.66x vs 1.93x), 256->256 @14 (1.20x vs 1.22x), @8 (0.55x vs 0.69x),
        # 512->512 @7 (0.51x; im2col 1.22x). 256+ channels also exceed the float32 tolerance.
        return (cls.AUTO and cls.applies(g) and 32 <= min(g.Cg, g.Og)
                and max(g.Cg, g.Og) <= 128 and min(g.So) >= 16
                and (min(g.So) >= 24 or max(g.Cg, g.Og) >= 64))

    # ------------------------------------------------------------------ layout helpers
    @staticmethod
    def _grid(g):
        th, tw = -(-g.So[0] // 4), -(-g.So[1] // 4)
        return th, tw

    @classmethod
    def _chunks(cls, g, dtype, host=True):
        if not host:  # a GPU: the whole batch at once, on one thread
            return [(0, g.N)], g.N
        th, tw = cls._grid(g)
        per_sample = 36 * max(g.C, g.O) * th * tw * np.dtype(dtype).itemsize
        nb = max(1, cls.CHUNK_BYTES // per_sample, -(-cls.MIN_TILES // (th * tw)))
        return _chunk_ranges(g.N, int(min(g.N, nb)), _parallel.num_threads())

    @classmethod
    def _input_tiles(cls, x, g, n0, n1, bufs, mats, out=None):
        """V (36, C * k * th * tw): ``B^T d B`` of every 6x6 input tile of x[n0:n1]."""
        th, tw = cls._grid(g)
        k = n1 - n0
        L = g.C * k * th * tw
        (pt, _), (pl, _) = g.pads
        xp = get_array_module(x)
        xpad = bufs["xp"][:k]
        box = (slice(pt, pt + g.S[0]), slice(pl, pl + g.S[1]))
        xpad[(slice(None),) * 2 + box] = x[n0:n1]
        _zero_outside(xpad, box)
        s = xpad.strides
        tiles = _as_strided(xpad, (6, 6, g.C, k, th, tw),
                            (s[2], s[3], s[1], s[0], 4 * s[2], 4 * s[3]))
        d = bufs["D"][:, :L]
        xp.copyto(d.reshape(6, 6, g.C, k, th, tw), tiles)
        r = bufs["R"][:, :6 * L]
        xp.matmul(mats["BT"], d.reshape(6, 6 * L), out=r)  # over the tile rows
        v = d if out is None else out
        xp.matmul(mats["BT"], r.reshape(6, 6, L), out=v.reshape(6, 6, L))  # columns
        return v

    @classmethod
    def _tile_shapes(cls, g, nb):
        th, tw = cls._grid(g)
        Lc = g.C * nb * th * tw
        return {"xp": (nb, g.C, 4 * th + 2, 4 * tw + 2), "D": (36, Lc), "R": (6, 6 * Lc)}

    # ------------------------------------------------------------------------ forward
    @classmethod
    def forward(cls, fn, x, w, b, g):
        xp = get_array_module(x)
        th, tw = cls._grid(g)
        chunks, nb = cls._chunks(g, x.dtype, xp is np)
        n = _parallel.workers(len(chunks))
        Lc, Lo = g.C * nb * th * tw, g.O * nb * th * tw
        shapes = cls._tile_shapes(g, nb)
        shapes.update({"M": (36, Lo), "Z": (4, 6 * Lo)})
        if (g.So[0], g.So[1]) != (4 * th, 4 * tw):
            shapes["Yp"] = (nb, g.O, 4 * th, 4 * tw)
        keep = (fn.needs_input_grad[1]
                and 36 * len(chunks) * Lc * x.itemsize <= chunking.KEEP_BYTES)
        saved = _xp.empty((len(chunks), 36, Lc), x.dtype, x) if keep else None
        bufs = _worker_buffers(shapes, x.dtype, x, n)
        mats = _mats(x)
        u = _einsum("ai,bj,ocij->aboc", G, w)
        u = xp.ascontiguousarray(u.reshape(36, g.groups, g.Og, g.Cg).astype(x.dtype))
        y = _xp.empty((g.N, g.O) + g.So, x.dtype, x)

        def body(i, slot, n0, n1):
            out = saved[slot, :, :g.C * (n1 - n0) * th * tw] if keep else None
            cls._forward_chunk(x, u, b, g, n0, n1, bufs[i], mats, y, out)

        _run_chunks(chunks, n, body)
        if keep:
            fn.v = saved
        elif fn.needs_input_grad[1]:
            fn.x = x
        fn.u = u
        return y

    @classmethod
    def _forward_chunk(cls, x, u, b, g, n0, n1, bufs, mats, y, out=None):
        xp = get_array_module(x)
        th, tw = cls._grid(g)
        k = n1 - n0
        lc, lo = g.C * k * th * tw, g.O * k * th * tw
        v = cls._input_tiles(x, g, n0, n1, bufs, mats, out)
        m = bufs["M"][:, :lo]
        xp.matmul(u, v.reshape(36, g.groups, g.Cg, lc // g.C),
                  out=m.reshape(36, g.groups, g.Og, lo // g.O))
        # Y = A^T M A: over the tile rows into Z, then the columns back into M's buffer
        z = bufs["Z"][:, :6 * lo]
        xp.matmul(mats["AT"], m.reshape(6, 6 * lo), out=z)
        yt = m[:16]
        xp.matmul(mats["AT"], z.reshape(4, 6, lo), out=yt.reshape(4, 4, lo))
        src = yt.reshape(4, 4, g.O, k, th, tw).transpose(3, 2, 4, 0, 5, 1)
        if "Yp" in bufs:
            yp = bufs["Yp"][:k]
            xp.copyto(yp.reshape(k, g.O, th, 4, tw, 4), src)
            src = yp[:, :, :g.So[0], :g.So[1]]
            dst = y[n0:n1]
        else:
            dst = y[n0:n1].reshape(k, g.O, th, 4, tw, 4)
        if b is None:
            xp.copyto(dst, src)
        else:
            xp.add(src, b.reshape((1, g.O) + (1,) * (src.ndim - 2)), out=dst)

    # ----------------------------------------------------------------------- backward
    @classmethod
    def backward(cls, fn, gy, g):
        need_x, need_w = fn.needs_input_grad[:2]
        need_b = len(fn.needs_input_grad) > 2 and fn.needs_input_grad[2]
        xp = get_array_module(gy)
        th, tw = cls._grid(g)
        chunks, nb = cls._chunks(g, gy.dtype, xp is np)
        n = _parallel.workers(len(chunks))
        Lc, Lo = g.C * nb * th * tw, g.O * nb * th * tw
        shapes = {"H": (16, Lo), "Z": (6, 4 * Lo), "dM": (36, Lo)}
        if (g.So[0], g.So[1]) != (4 * th, 4 * tw):
            shapes["Gp"] = (nb, g.O, 4 * th, 4 * tw)
        saved = getattr(fn, "v", None)
        if need_w and saved is None:
            shapes.update(cls._tile_shapes(g, nb))
        if need_x:
            shapes.update({"dV": (36, Lc), "dR": (6, 6 * Lc),
                           "dxp": (nb, g.C, 4 * th + 2, 4 * tw + 2)})
        bufs = _worker_buffers(shapes, gy.dtype, gy, n)
        mats = _mats(gy)
        ut = fn.u.transpose(0, 1, 3, 2) if need_x else None
        du = [xp.zeros((36, g.groups, g.Og, g.Cg), gy.dtype) if need_w else None
              for _ in range(n)]
        db = [xp.zeros(g.O, gy.dtype) if need_b else None for _ in range(n)]
        dx = _xp.empty((g.N, g.C) + g.S, gy.dtype, gy) if need_x else None
        x = fn.x if need_w and saved is None else None

        def body(i, slot, n0, n1):
            v = None
            if need_w and saved is not None:
                v = saved[slot, :, :g.C * (n1 - n0) * th * tw]
            cls._backward_chunk(gy, x, ut, g, n0, n1, bufs[i], mats, du[i], db[i], dx, v)

        _run_chunks(chunks, n, body)
        dw = None
        if need_w:
            total = sum(du[1:], du[0])
            dw = _einsum("ai,bj,aboc->ocij", G, total.reshape(6, 6, g.O, g.Cg)).astype(gy.dtype)
        return dx, dw, (sum(db[1:], db[0]) if need_b else None)

    @classmethod
    def _backward_chunk(cls, gy, x, ut, g, n0, n1, bufs, mats, du, db, dx, v=None):
        xp = get_array_module(gy)
        th, tw = cls._grid(g)
        k = n1 - n0
        lc, lo = g.C * k * th * tw, g.O * k * th * tw
        # dY in tile order (4, 4, O, k, th, tw); the part past the output is zero
        gc = gy[n0:n1]
        if "Gp" in bufs:
            gp = bufs["Gp"][:k]
            box = (slice(0, g.So[0]), slice(0, g.So[1]))
            gp[(slice(None),) * 2 + box] = gc
            _zero_outside(gp, box)
            gc = gp
        h = bufs["H"][:, :lo]
        xp.copyto(h.reshape(4, 4, g.O, k, th, tw),
                  gc.reshape(k, g.O, th, 4, tw, 4).transpose(3, 5, 1, 0, 2, 4))
        if db is not None:
            db += h.reshape(16, g.O, -1).sum(axis=(0, 2))
        # dM = A dY A^T
        z = bufs["Z"][:, :4 * lo]
        xp.matmul(mats["A"], h.reshape(4, 4 * lo), out=z)
        dm = bufs["dM"][:, :lo]
        xp.matmul(mats["A"], z.reshape(6, 4, lo), out=dm.reshape(6, 6, lo))
        dm4 = dm.reshape(36, g.groups, g.Og, lo // g.O)
        if du is not None:
            if v is None:
                v = cls._input_tiles(x, g, n0, n1, bufs, mats)
            du += xp.matmul(dm4, v.reshape(36, g.groups, g.Cg, lc // g.C).transpose(0, 1, 3, 2))
        if dx is not None:
            dv = bufs["dV"][:, :lc]
            xp.matmul(ut, dm4, out=dv.reshape(36, g.groups, g.Cg, lc // g.C))
            cls._fold_input_tiles(dv, g, n0, n1, bufs, mats, dx)

    @classmethod
    def _fold_input_tiles(cls, dv, g, n0, n1, bufs, mats, dx):
        """The adjoint of :meth:`_input_tiles`: ``B dV B^T``, the overlapping tiles added."""
        xp = get_array_module(dv)
        th, tw = cls._grid(g)
        k = n1 - n0
        L = g.C * k * th * tw
        (pt, _), (pl, _) = g.pads
        dr = bufs["dR"][:, :6 * L]
        xp.matmul(mats["B"], dv.reshape(6, 6 * L), out=dr)
        dd = dv  # dV is no longer needed: dd = (B dR^T)^T per tile row, into its buffer
        xp.matmul(mats["B"], dr.reshape(6, 6, L), out=dd.reshape(6, 6, L))
        dd = dd.reshape(6, 6, g.C, k, th, tw)
        dxp = bufs["dxp"][:k]
        # tile elements 0-3 of each tile cover the grid exactly once; 4-5 overlap the next tile
        core = dxp[:, :, :4 * th, :4 * tw].reshape(k, g.C, th, 4, tw, 4)
        xp.copyto(core, dd[:4, :4].transpose(3, 2, 4, 0, 5, 1))
        dxp[:, :, 4 * th:] = 0
        dxp[:, :, :4 * th, 4 * tw:] = 0
        for a in range(6):
            for c in range(6):
                if a < 4 and c < 4:
                    continue
                view = dxp[:, :, a:a + 4 * th:4, c:c + 4 * tw:4]
                xp.add(view, dd[a, c].transpose(1, 0, 2, 3), out=view)
        dx[n0:n1] = dxp[:, :, pt:pt + g.S[0], pl:pl + g.S[1]]
