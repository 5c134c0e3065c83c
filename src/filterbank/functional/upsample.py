"""Resizing: ``interpolate`` (nearest, linear, bilinear, trilinear, area), PyTorch's semantics.

Nearest and (bi/tri)linear resizing are linear maps that act on each spatial axis separately:
``y = x ×_H A_H ×_W A_W`` with one small (L_out, L_in) matrix per axis. Bilinear is therefore
exact as two matrix products (along H, then along W), and its backward is the same with the
transposed matrices. Nearest gathers rows and columns by index; its backward sums the gradient
back, by a reshape-sum when each input element is repeated an integer number of times and by
the transposed one-hot matrix otherwise.

The index arrays and matrices are computed on the host (the same float arithmetic on every
device) and moved to the input's device once per call.
"""

from __future__ import annotations

import math

import numpy as np

from filterbank._xp import like
from filterbank.autograd.function import Function
from filterbank.backend import get_array_module
from filterbank.functional.pool import _adaptive_avg, matmul_along
from filterbank.tensor import Tensor

_MODES = {"nearest": (1, 2, 3), "linear": (1,), "bilinear": (2,), "trilinear": (3,),
          "area": (1, 2, 3)}


def _nearest_index(L_in: int, L_out: int, scale, dtype) -> np.ndarray:
    """``min(floor(i * ratio), L_in - 1)`` with ``ratio = 1/scale_factor`` (or L_in/L_out),
    in the input's float type, exactly as PyTorch computes it (rounding included)."""
    if L_in == L_out:
        # copied whatever the scale factor, as PyTorch's 2-D kernel and all its backward
        # kernels do (its 1-D and 3-D forward kernels would apply the ratio here)
        return np.arange(L_in)
    ft = np.dtype(dtype).type
    ratio = ft(1.0 / scale) if scale is not None and scale > 0 else ft(L_in) / ft(L_out)
    i = np.arange(L_out).astype(dtype)
    return np.minimum(np.floor(i * ratio).astype(np.int64), L_in - 1)


def _linear_matrix(L_in: int, L_out: int, align_corners: bool, scale, dtype) -> np.ndarray:
    """The (L_out, L_in) matrix of linear interpolation along one axis.

    Output ``i`` samples the input at ``src = i * (L_in - 1) / (L_out - 1)`` with
    ``align_corners`` (the corner pixels' centres line up), else at
    ``src = max((i + 0.5) * ratio - 0.5, 0)`` (pixel areas line up, ``ratio = 1/scale_factor``
    or ``L_in/L_out``); it mixes ``floor(src)`` and the next element with weights
    ``1 - frac`` and ``frac``.
    """
    ft = np.dtype(dtype).type
    i = np.arange(L_out).astype(dtype)
    if align_corners:
        ratio = ft(L_in - 1) / ft(L_out - 1) if L_out > 1 else ft(0)
        src = ratio * i
    else:
        ratio = ft(1.0 / scale) if scale is not None and scale > 0 else ft(L_in) / ft(L_out)
        src = np.maximum(ratio * (i + ft(0.5)) - ft(0.5), ft(0))
    i0 = np.minimum(src.astype(np.int64), L_in - 1)
    i1 = np.minimum(i0 + 1, L_in - 1)
    w1 = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    m = np.zeros((L_out, L_in), dtype)
    rows = np.arange(L_out)
    m[rows, i0] = 1 - w1
    m[rows, i1] += w1  # i1 == i0 at the last element: the weights add up to 1 there
    return m


class Resample(Function):
    """Nearest (``index``: per-axis gather indices, on the input's device; ``host_index``:
    the same on the host) or linear (``mats``: per-axis matrices, None where the axis is
    unchanged) resampling of the last ``len(sizes)`` axes."""

    def forward(self, x):
        self.in_shape = x.shape
        nd = len(self.sizes)
        if self.index is not None:
            return x[(Ellipsis,) + get_array_module(x).ix_(*self.index)]
        y = x
        for i, m in enumerate(self.mats):
            if m is not None:
                y = matmul_along(y, m, y.ndim - nd + i)
        return y if y is not x else x.copy()

    def backward(self, gy):
        nd = len(self.sizes)
        g = gy
        for i in reversed(range(nd)):
            axis = gy.ndim - nd + i
            L_in = self.in_shape[axis]
            if self.index is None:
                if self.mats[i] is not None:
                    g = matmul_along(g, self.mats[i].T, axis)
                continue
            idx = self.host_index[i]  # host copy: the checks below stay on the host
            L_out = idx.size
            if L_out == L_in and (idx == np.arange(L_in)).all():
                continue
            k = L_out // L_in
            if k * L_in == L_out and (idx == np.arange(L_out) // k).all():
                # each input element was repeated k times in a row: sum the k copies
                g = g.reshape(g.shape[:axis] + (L_in, k) + g.shape[axis + 1:]).sum(axis + 1)
            else:
                onehot = (idx[:, None] == np.arange(L_in)).astype(gy.dtype)
                g = matmul_along(g, onehot.T, axis)  # moves the host matrix to gy's device
        return g


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None) -> Tensor:
    """Resize the spatial dims of ``input`` (``torch.nn.functional.interpolate``).

    ``nearest``: ``y[i] = x[min(floor(i * r), L_in - 1)]`` with ``r = 1/scale_factor`` when a
    scale factor is given, else ``L_in / L_out``. ``linear``/``bilinear``/``trilinear``:
    per axis, ``y[i] = (1 - f) x[i0] + f x[i0 + 1]`` at the source coordinate
    ``src = i * (L_in - 1)/(L_out - 1)`` (``align_corners=True``) or
    ``src = max((i + 0.5) r - 0.5, 0)`` (``align_corners=False``, the default), ``i0 =
    floor(src)``, ``f = src - i0``. ``area``: adaptive average pooling to the output size.

    Backward: every mode is linear in ``x``, so ``dL/dx`` applies the transposed per-axis
    maps (for nearest, each input element collects the gradients of the outputs that copied it).

    Args:
        input: (N, C, L), (N, C, H, W) or (N, C, D, H, W) tensor.
        size: output spatial size (int or tuple); give exactly one of ``size`` and
            ``scale_factor``.
        scale_factor: multiplier for the spatial size (float or tuple);
            ``L_out = floor(L_in * scale_factor)``.
        mode: ``'nearest'`` (default), ``'linear'`` (3-D), ``'bilinear'`` (4-D),
            ``'trilinear'`` (5-D) or ``'area'``.
        align_corners: for the linear modes only; default False.
        recompute_scale_factor: compute the output size from ``scale_factor``, then
            interpolate as if that size had been given.

    Shape:
        ``(N, C, *L_in) -> (N, C, *L_out)``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> x = fb.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> F.interpolate(x, scale_factor=2).tolist()[0][0][0]
        [1.0, 1.0, 2.0, 2.0]
        >>> F.interpolate(x, size=3, mode="bilinear", align_corners=True).tolist()[0][0][1]
        [2.0, 2.5, 3.0]
    """
    return _interpolate(input, size, scale_factor, mode, align_corners, recompute_scale_factor,
                        "interpolate")


def _interpolate(input, size, scale_factor, mode, align_corners, recompute_scale_factor, where):
    if not isinstance(input, Tensor):
        raise TypeError(f"{where}: expected a Tensor input, got {type(input).__name__}")
    if mode not in _MODES:
        raise ValueError(f"{where}: mode must be one of {', '.join(map(repr, _MODES))}, "
                         f"got {mode!r}")
    nd = input.ndim - 2
    if nd not in _MODES[mode]:
        want = " or ".join(f"{n + 2}-D" for n in _MODES[mode])
        raise ValueError(f"{where}: mode {mode!r} expects a {want} (N, C, *spatial) input, got "
                         f"a {input.ndim}-D tensor of shape {tuple(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"{where}: expected a floating-point input, got dtype {input.dtype}")
    linear = mode in ("linear", "bilinear", "trilinear")
    if align_corners is not None and not linear:
        raise ValueError(f"{where}: align_corners can only be set for the linear modes "
                         f"(linear, bilinear, trilinear), got mode {mode!r}")
    spatial = input.shape[2:]
    sizes, scales = _sizes(where, spatial, size, scale_factor, recompute_scale_factor)
    if mode == "area":
        return _adaptive_avg(input, nd, sizes, where)
    if linear:
        # an axis whose size does not change is copied, whatever the scale factor (PyTorch)
        mats = tuple(None if L == n else like(input.data, _linear_matrix(L, n, bool(align_corners),
                                                                         s, input.dtype))
                     for L, n, s in zip(spatial, sizes, scales))
        return Resample.apply(input, sizes=sizes, index=None, host_index=None, mats=mats)
    index = tuple(_nearest_index(L, n, s, input.dtype) for L, n, s in zip(spatial, sizes, scales))
    return Resample.apply(input, sizes=sizes, index=tuple(like(input.data, i) for i in index),
                          host_index=index, mats=None)


def _sizes(where, spatial, size, scale_factor, recompute):
    """Output sizes and the scale factors used for the coordinate maps (None: from sizes)."""
    nd = len(spatial)
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{where}: give exactly one of size and scale_factor, got "
                         f"size={size!r}, scale_factor={scale_factor!r}")
    if size is not None:
        if recompute:
            raise ValueError(f"{where}: recompute_scale_factor is meaningless with an explicit "
                             f"size")
        sizes = (size,) * nd if isinstance(size, int | np.integer) else tuple(size)
        if len(sizes) != nd or not all(isinstance(s, int | np.integer) and not isinstance(s, bool)
                                       for s in sizes):
            raise ValueError(f"{where}: size must be an int or a tuple of {nd} ints for an "
                             f"input with spatial size {tuple(spatial)}, got {size!r}")
        scales = (None,) * nd
    else:
        scales = (scale_factor,) * nd if isinstance(scale_factor, int | float | np.number) \
            else tuple(scale_factor)
        if len(scales) != nd or not all(isinstance(s, int | float | np.number) for s in scales):
            raise ValueError(f"{where}: scale_factor must be a number or a tuple of {nd} "
                             f"numbers for an input with spatial size {tuple(spatial)}, got "
                             f"{scale_factor!r}")
        scales = tuple(float(s) for s in scales)
        sizes = tuple(math.floor(L * s) for L, s in zip(spatial, scales))
        if recompute:
            scales = (None,) * nd
    sizes = tuple(int(s) for s in sizes)
    if any(s <= 0 for s in sizes):
        raise ValueError(f"{where}: output size must be positive, got {sizes} for an input "
                         f"with spatial size {tuple(spatial)} (size={size!r}, "
                         f"scale_factor={scale_factor!r})")
    return sizes, scales
