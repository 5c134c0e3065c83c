"""``Upsample``: a layer around :func:`filterbank.functional.interpolate`."""

from __future__ import annotations

from filterbank.functional import upsample as _U
from filterbank.nn.module import Module
from filterbank.tensor import Tensor


class Upsample(Module):
    """Resize the spatial dims (upsampling or downsampling), as ``torch.nn.Upsample``.

    ``nearest`` copies ``x[floor(i / scale)]``; ``linear``/``bilinear``/``trilinear``
    interpolate between the two nearest input elements along each axis (see
    :func:`filterbank.functional.interpolate` for the coordinate maps and ``align_corners``).
    The gradient applies the transposed per-axis maps.

    Args:
        size: output spatial size (int or tuple); give exactly one of ``size`` and
            ``scale_factor``.
        scale_factor: multiplier for the spatial size (float or tuple).
        mode: ``'nearest'`` (default), ``'linear'``, ``'bilinear'``, ``'trilinear'``, ``'area'``.
        align_corners: linear modes only; default False.
        recompute_scale_factor: derive the coordinate map from the output size rather than
            from ``scale_factor``.

    Shape:
        ``(N, C, *L_in) -> (N, C, *L_out)`` with ``L_out = size`` or
        ``floor(L_in * scale_factor)``.

    Example:
        >>> import filterbank as fb
        >>> up = fb.nn.Upsample(scale_factor=2, mode="bilinear")
        >>> up(fb.ones(1, 3, 4, 4)).shape
        (1, 3, 8, 8)
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None):
        super().__init__()
        name = type(self).__name__
        if (size is None) == (scale_factor is None):
            raise ValueError(f"{name}: give exactly one of size and scale_factor, got "
                             f"size={size!r}, scale_factor={scale_factor!r}")
        if mode not in _U._MODES:
            raise ValueError(f"{name}: mode must be one of {', '.join(map(repr, _U._MODES))}, "
                             f"got {mode!r}")
        if align_corners is not None and mode not in ("linear", "bilinear", "trilinear"):
            raise ValueError(f"{name}: align_corners can only be set for the linear modes "
                             f"(linear, bilinear, trilinear), got mode {mode!r}")
        self.size = size
        if isinstance(scale_factor, tuple | list):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = None if scale_factor is None else float(scale_factor)
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return _U._interpolate(input, self.size, self.scale_factor, self.mode,
                               self.align_corners, self.recompute_scale_factor, self)

    def extra_repr(self) -> str:
        info = (f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None
                else f"size={self.size!r}")
        return f"{info}, mode={self.mode!r}"
