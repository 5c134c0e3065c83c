"""im2col and col2im as public ops: ``unfold`` and ``fold`` (PyTorch's ``F.unfold``/``F.fold``).

``unfold`` copies every ``kH x kW`` patch that a convolution would see into a column, so that
a convolution becomes one matrix product (the lecture's im2col)::

    cols = F.unfold(x, k, padding=p, stride=s)          # (N, C*kH*kW, L)
    y = (w.reshape(O, -1) @ cols).reshape(N, O, H_out, W_out)   # == F.conv2d(x, w, ...)

``fold`` is its adjoint (col2im): it adds each column back onto its patch, summing where
patches overlap, so the gradient of one is the other. Both reuse the convolution's own
im2col/col2im kernels (``functional/conv.py``): one strided slice copy or add per kernel
offset, ``kH * kW`` vectorised steps in all, no per-element loop and no ``np.add.at``.
"""

from __future__ import annotations

import math

import numpy as np

from filterbank.autograd.function import Function
from filterbank.backend import get_array_module
from filterbank.functional._conv.geometry import _Geometry, _ntuple
from filterbank.functional._conv.im2col import _col2im, _im2col
from filterbank.tensor import Tensor


def _geometry(name, spatial, channels, kernel_size, dilation, padding, stride):
    k = _ntuple(kernel_size, 2, "kernel_size", name, 1)
    d = _ntuple(dilation, 2, "dilation", name, 1)
    p = _ntuple(padding, 2, "padding", name, 0)
    s = _ntuple(stride, 2, "stride", name, 1)
    g = _Geometry((1, channels) + tuple(spatial), (1, channels) + k, s, tuple((v, v) for v in p),
                  d, 1)
    if min(g.So) < 1:
        raise ValueError(
            f"{name}: with spatial size {tuple(spatial)}, kernel_size={k}, dilation={d}, "
            f"padding={p}, stride={s} the grid of sliding blocks would be {g.So}; each side "
            f"must be at least 1 (H_out = floor((H + 2P - D(K-1) - 1) / S) + 1)")
    return g


def _cols_view(cols: np.ndarray, g: _Geometry, n: int) -> np.ndarray:
    """``cols`` (N, C*KK, L) seen in conv.py's im2col layout (C, KK, N, *So), no copy."""
    return cols.reshape((n, g.C, g.KK) + g.So).transpose(1, 2, 0, 3, 4)


def _unfold(x: np.ndarray, g: _Geometry) -> np.ndarray:
    n = x.shape[0]
    cols = get_array_module(x).empty((n, g.C * g.KK, g.Lo), x.dtype)
    _im2col(x, g, 0, n, _cols_view(cols, g, n))
    return cols


def _fold(cols: np.ndarray, g: _Geometry) -> np.ndarray:
    n = cols.shape[0]
    out = get_array_module(cols).empty((n, g.C) + g.S, cols.dtype)
    _col2im(_cols_view(cols, g, n), g, 0, n, out)
    return out


class Unfold(Function):
    """cols[n, c*KK + k, l] = x_pad[n, c, patch l shifted by kernel offset k].
    dL/dx = fold(dL/dcols): each column's gradient goes back onto its patch (overlaps add)."""

    def forward(self, x):
        return _unfold(x, self.g)

    def backward(self, gy):
        return _fold(gy, self.g)


class Fold(Function):
    """y = col2im(cols): each column added onto its patch.  dL/dcols = unfold(dL/dy)."""

    def forward(self, cols):
        return _fold(cols, self.g)

    def backward(self, gy):
        return _unfold(gy, self.g)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Extract sliding patches as columns (im2col), as ``torch.nn.functional.unfold``.

    ``out[n, (c * kH + i) * kW + j, l] = x_pad[n, c, h_l * S_h + i * D_h, w_l * S_w + j * D_w]``
    where ``l = h_l * W_out + w_l`` runs over the output positions in row-major order and
    ``x_pad`` is ``x`` zero-padded by ``P`` on each side.

    Backward: :func:`fold` of the gradient (patches that overlap add their gradients).

    Args:
        input: ``(N, C, H, W)`` or unbatched ``(C, H, W)``.
        kernel_size: int or ``(kH, kW)``.
        dilation: spacing between kernel taps, int or pair (default 1).
        padding: zero padding on each side, int or pair (default 0).
        stride: step between patches, int or pair (default 1).

    Shape:
        Output: ``(N, C * kH * kW, L)`` with ``L = H_out * W_out``,
        ``H_out = floor((H + 2P - D(kH - 1) - 1) / S) + 1`` (the same for W).

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.unfold(fb.arange(9.0).reshape(1, 1, 3, 3), 2)[0].tolist()
        [[0.0, 1.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0], [3.0, 4.0, 6.0, 7.0], [4.0, 5.0, 7.0, 8.0]]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"unfold: expected a Tensor, got {type(input).__name__}")
    if input.ndim not in (3, 4):
        raise ValueError(f"unfold: expected a 4-d (N, C, H, W) or 3-d (C, H, W) input, got "
                         f"shape {input.shape}")
    if input.ndim == 3:
        return _unbatched(unfold, input, kernel_size, dilation, padding, stride)
    g = _geometry("unfold", input.shape[2:], input.shape[1], kernel_size, dilation, padding,
                  stride)
    return Unfold.apply(input, g=g)


def _unbatched(fn, input, *args):
    out = fn(input.reshape((1,) + input.shape), *args)
    return out.reshape(out.shape[1:])


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Add columns back onto the patches they came from (col2im), as
    ``torch.nn.functional.fold``: the adjoint of :func:`unfold`.

    ``out[n, c, h, w] = sum of input[n, (c * kH + i) * kW + j, l]`` over every (patch ``l``,
    kernel offset ``(i, j)``) that lands on ``(h, w)``; positions in the padding are dropped.
    ``fold(unfold(x))`` is therefore ``x`` times the number of patches covering each pixel.

    Backward: :func:`unfold` of the gradient.

    Args:
        input: ``(N, C * kH * kW, L)`` or unbatched ``(C * kH * kW, L)``.
        output_size: the spatial size ``(H, W)`` of the result (int or pair).
        kernel_size: int or ``(kH, kW)``.
        dilation, padding, stride: as for :func:`unfold`.

    Shape:
        Output: ``(N, C, H, W)``; ``L`` must equal ``H_out * W_out`` computed from ``(H, W)``
        as for :func:`unfold`.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> x = fb.ones(1, 1, 3, 3)
        >>> F.fold(F.unfold(x, 2), (3, 3), 2)[0, 0].tolist()
        [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"fold: expected a Tensor, got {type(input).__name__}")
    if input.ndim not in (2, 3):
        raise ValueError(f"fold: expected a 3-d (N, C*kH*kW, L) or 2-d (C*kH*kW, L) input, "
                         f"got shape {input.shape}")
    if input.ndim == 2:
        return _unbatched(fold, input, output_size, kernel_size, dilation, padding, stride)
    size = _ntuple(output_size, 2, "output_size", "fold", 1)
    k = _ntuple(kernel_size, 2, "kernel_size", "fold", 1)
    kk = math.prod(k)
    if input.shape[1] % kk:
        raise ValueError(f"fold: input.shape[1] = {input.shape[1]} is not divisible by the "
                         f"kernel size kH * kW = {kk} (kernel_size={k})")
    g = _geometry("fold", size, input.shape[1] // kk, k, dilation, padding, stride)
    if input.shape[2] != g.Lo:
        raise ValueError(f"fold: output_size={size} with kernel_size={k}, dilation="
                         f"{dilation}, padding={padding}, stride={stride} gives "
                         f"{g.So[0]} * {g.So[1]} = {g.Lo} sliding blocks, but input.shape[2] "
                         f"= {input.shape[2]}")
    return Fold.apply(input, g=g)
