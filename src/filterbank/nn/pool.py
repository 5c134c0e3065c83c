"""Pooling layers: ``MaxPool1d/2d/3d``, ``AvgPool1d/2d/3d``, ``AdaptiveAvgPool1d/2d``,
``AdaptiveMaxPool2d``, ``GlobalAvgPool2d``. Thin wrappers over :mod:`filterbank.functional.pool`
(see there for the formulas, the tie rule and the gradients); they own no parameters."""

from __future__ import annotations

from filterbank.functional import pool as _P
from filterbank.nn.module import Module
from filterbank.tensor import Tensor


def _norm(value, nd, where, what, minimum, keep_int: bool):
    """Validate now (so a bad layer fails at construction); store ints as given, like torch."""
    t = _P._int_tuple(value, nd, where, what, minimum)
    return value if keep_int and isinstance(value, int) else t


class _MaxPoolNd(Module):
    nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _norm(kernel_size, self.nd, name, "kernel_size", 1, True)
        self.stride = self.kernel_size if stride is None else \
            _norm(stride, self.nd, name, "stride", 1, True)
        self.padding = _norm(padding, self.nd, name, "padding", 0, True)
        self.dilation = _norm(dilation, self.nd, name, "dilation", 1, True)
        k = _P._int_tuple(self.kernel_size, self.nd, name, "kernel_size", 1)
        p = _P._int_tuple(self.padding, self.nd, name, "padding", 0)
        if any(pi > ki // 2 for ki, pi in zip(k, p)):
            raise ValueError(f"{name}: padding must be at most half of the kernel size, got "
                             f"padding={padding} for kernel_size={kernel_size}")
        self.return_indices = bool(return_indices)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, input: Tensor):
        return _P._max_pool(input, self.nd, self.kernel_size, self.stride, self.padding,
                            self.dilation, self.ceil_mode, self.return_indices, self)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling layer; see :func:`filterbank.functional.max_pool1d`.

    ``y[n, c, i] = max_m x_pad[n, c, S*i + D*m]`` (``-inf`` padding); the gradient goes to the
    first maximum of each window in scan order.

    Args:
        kernel_size: window size.
        stride: window step; default ``kernel_size``.
        padding: ``-inf`` padding on both sides, at most ``kernel_size // 2``. Default 0.
        dilation: spacing between window elements. Default 1.
        return_indices: also return the flat arg-max positions. Default False.
        ceil_mode: round the output length up. Default False.

    Shape:
        ``(N, C, L_in) -> (N, C, L_out)``, ``L_out = floor((L_in + 2P - D(K-1) - 1)/S) + 1``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.MaxPool1d(2)(fb.tensor([[[1.0, 3.0, 2.0, 0.0]]])).tolist()
        [[[3.0, 2.0]]]
    """

    nd = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling layer; see :func:`filterbank.functional.max_pool2d`.

    ``y[n, c, i, j] = max_{a, b} x_pad[n, c, S_h i + D_h a, S_w j + D_w b]`` (``-inf``
    padding); the gradient goes to the first maximum of each window in row-major scan order.

    Args:
        kernel_size: window size (int or (kH, kW)).
        stride: window step; default ``kernel_size``.
        padding: ``-inf`` padding on both sides, at most ``kernel_size // 2``. Default 0.
        dilation: spacing between window elements. Default 1.
        return_indices: also return the arg-max positions, flat in each plane. Default False.
        ceil_mode: round the output size up. Default False.

    Shape:
        ``(N, C, H_in, W_in) -> (N, C, H_out, W_out)``,
        ``H_out = floor((H_in + 2P - D(K-1) - 1)/S) + 1`` (same for W).

    Example:
        >>> import filterbank as fb
        >>> x = fb.tensor([[1., 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
        >>> fb.nn.MaxPool2d(2)(x.reshape(1, 1, 4, 4)).reshape(2, 2).tolist()
        [[6.0, 8.0], [3.0, 4.0]]
    """

    nd = 2


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling layer; see :func:`filterbank.functional.max_pool3d`.

    Args:
        kernel_size, stride, padding, dilation, return_indices, ceil_mode: as
            :class:`MaxPool2d`, with ints or 3-tuples.

    Shape:
        ``(N, C, D_in, H_in, W_in) -> (N, C, D_out, H_out, W_out)``, each
        ``floor((L_in + 2P - D(K-1) - 1)/S) + 1``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.MaxPool3d(2)(fb.ones(1, 2, 4, 4, 4)).shape
        (1, 2, 2, 2, 2)
    """

    nd = 3


class _AvgPoolNd(Module):
    nd = 2
    _tuples = False  # torch's AvgPool1d stores its arguments as 1-tuples

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        name = type(self).__name__
        keep = not self._tuples
        self.kernel_size = _norm(kernel_size, self.nd, name, "kernel_size", 1, keep)
        self.stride = self.kernel_size if stride is None else \
            _norm(stride, self.nd, name, "stride", 1, keep)
        self.padding = _norm(padding, self.nd, name, "padding", 0, keep)
        k = _P._int_tuple(self.kernel_size, self.nd, name, "kernel_size", 1)
        p = _P._int_tuple(self.padding, self.nd, name, "padding", 0)
        if any(pi > ki // 2 for ki, pi in zip(k, p)):
            raise ValueError(f"{name}: padding must be at most half of the kernel size, got "
                             f"padding={padding} for kernel_size={kernel_size}")
        if divisor_override is not None and (not isinstance(divisor_override, int)
                                             or divisor_override <= 0):
            raise ValueError(f"{name}: divisor_override must be a positive int or None, "
                             f"got {divisor_override!r}")
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return _P._avg_pool(input, self.nd, self.kernel_size, self.stride, self.padding,
                            self.ceil_mode, self.count_include_pad, self.divisor_override, self)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling layer; see :func:`filterbank.functional.avg_pool1d`.

    ``y[n, c, i] = (1/divisor) sum_m x_pad[n, c, S*i + m]`` (zero padding; the divisor counts
    the padding only with ``count_include_pad``).

    Args:
        kernel_size: window size.
        stride: window step; default ``kernel_size``.
        padding: zero padding on both sides, at most ``kernel_size // 2``. Default 0.
        ceil_mode: round the output length up. Default False.
        count_include_pad: count padding zeros in the divisor. Default True.

    Shape:
        ``(N, C, L_in) -> (N, C, L_out)``, ``L_out = floor((L_in + 2P - K)/S) + 1``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.AvgPool1d(2)(fb.tensor([[[1.0, 3.0, 2.0, 0.0]]])).tolist()
        [[[2.0, 1.0]]]
    """

    nd = 1
    _tuples = True

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling layer; see :func:`filterbank.functional.avg_pool2d`.

    ``y[n, c, i, j] = (1/divisor) sum_{a, b} x_pad[n, c, S_h i + a, S_w j + b]``.

    Args:
        kernel_size: window size (int or (kH, kW)).
        stride: window step; default ``kernel_size``.
        padding: zero padding on both sides, at most ``kernel_size // 2``. Default 0.
        ceil_mode: round the output size up. Default False.
        count_include_pad: count padding zeros in the divisor. Default True.
        divisor_override: divide every window by this int instead. Default None.

    Shape:
        ``(N, C, H_in, W_in) -> (N, C, H_out, W_out)``, ``H_out = floor((H_in + 2P - K)/S) + 1``.

    Example:
        >>> import filterbank as fb
        >>> x = fb.tensor([[1., 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
        >>> fb.nn.AvgPool2d(2)(x.reshape(1, 1, 4, 4)).reshape(2, 2).tolist()
        [[3.25, 5.25], [2.0, 2.0]]
    """

    nd = 2


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling layer; see :func:`filterbank.functional.avg_pool3d`.

    Args:
        kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: as
            :class:`AvgPool2d`, with ints or 3-tuples.

    Shape:
        ``(N, C, D_in, H_in, W_in) -> (N, C, D_out, H_out, W_out)``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.AvgPool3d(2)(fb.ones(1, 2, 4, 4, 4)).shape
        (1, 2, 2, 2, 2)
    """

    nd = 3


class _AdaptiveNd(Module):
    nd = 2

    def __init__(self, output_size):
        super().__init__()
        sizes = (output_size,) * self.nd if output_size is None or isinstance(
            output_size, int) else tuple(output_size)
        if len(sizes) != self.nd or not all(
                s is None or (isinstance(s, int) and not isinstance(s, bool) and s > 0)
                for s in sizes):
            raise ValueError(f"{type(self).__name__}: output_size must be a positive int or a "
                             f"tuple of {self.nd} (positive ints or None), got {output_size!r}")
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveNd):
    """1-D adaptive average pooling to ``output_size``; see
    :func:`filterbank.functional.adaptive_avg_pool1d`.

    Output ``i`` averages the bin ``[floor(i L_in / L_out), ceil((i+1) L_in / L_out))``.

    Args:
        output_size: the output length L_out.

    Shape:
        ``(N, C, L_in) -> (N, C, L_out)``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.AdaptiveAvgPool1d(2)(fb.tensor([[[1.0, 3.0, 2.0, 0.0]]])).tolist()
        [[[2.0, 1.0]]]
    """

    nd = 1

    def forward(self, input: Tensor) -> Tensor:
        return _P._adaptive_avg(input, 1, self.output_size, self)


class AdaptiveAvgPool2d(_AdaptiveNd):
    """2-D adaptive average pooling to ``output_size``; see
    :func:`filterbank.functional.adaptive_avg_pool2d`.

    Output ``(i, j)`` averages the bin ``[floor(i H_in/H_out), ceil((i+1) H_in/H_out))`` x
    ``[floor(j W_in/W_out), ceil((j+1) W_in/W_out))``.

    Args:
        output_size: int or (H_out, W_out); ``None`` keeps that input size.

    Shape:
        ``(N, C, H_in, W_in) -> (N, C, H_out, W_out)``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.AdaptiveAvgPool2d((1, 1))(fb.ones(8, 512, 7, 7)).shape
        (8, 512, 1, 1)
    """

    nd = 2

    def forward(self, input: Tensor) -> Tensor:
        return _P._adaptive_avg(input, 2, self.output_size, self)


class AdaptiveMaxPool2d(_AdaptiveNd):
    """2-D adaptive max pooling to ``output_size``; see
    :func:`filterbank.functional.adaptive_max_pool2d`.

    Output ``(i, j)`` is the max over the same bins as :class:`AdaptiveAvgPool2d`; the gradient
    goes to the first maximum of the bin in row-major order.

    Args:
        output_size: int or (H_out, W_out); ``None`` keeps that input size.
        return_indices: also return the arg-max positions, flat in each plane. Default False.

    Shape:
        ``(N, C, H_in, W_in) -> (N, C, H_out, W_out)``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.AdaptiveMaxPool2d(2)(fb.arange(25.0).reshape(1, 1, 5, 5)).tolist()
        [[[[12.0, 14.0], [22.0, 24.0]]]]
    """

    nd = 2

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = bool(return_indices)

    def forward(self, input: Tensor):
        return _P._adaptive_max(input, 2, self.output_size, self.return_indices, self)


class GlobalAvgPool2d(Module):
    """Global average pooling: each channel's mean over all positions; see
    :func:`filterbank.functional.global_avg_pool2d`.

    ``y[n, c] = (1/(H W)) sum_{h, w} x[n, c, h, w]``. The classifier head of ResNet-style
    networks (``AdaptiveAvgPool2d(1)`` + ``Flatten()`` in one layer).

    Args:
        keepdim: keep the spatial dims as size 1, giving (N, C, 1, 1). Default False: (N, C).

    Shape:
        ``(N, C, H, W) -> (N, C)`` (or ``(N, C, 1, 1)`` with ``keepdim``).

    Example:
        >>> import filterbank as fb
        >>> fb.nn.GlobalAvgPool2d()(fb.ones(8, 16, 7, 7)).shape
        (8, 16)
    """

    def __init__(self, keepdim: bool = False):
        super().__init__()
        self.keepdim = bool(keepdim)

    def forward(self, input: Tensor) -> Tensor:
        return _P._global_avg(input, self.keepdim, self)

    def extra_repr(self) -> str:
        return "keepdim=True" if self.keepdim else ""
