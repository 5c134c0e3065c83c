"""Convolution layers: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d`` (PyTorch's names, argument
order, parameter names, shapes and default initialisation)."""

from __future__ import annotations

import math

import numpy as np

from filterbank.backend import DEFAULT_DTYPE, xp
from filterbank.functional import conv as _F
from filterbank.nn import init
from filterbank.nn.module import Module, Parameter
from filterbank.tensor import Tensor

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _positive_ints(layer: str, what: str, value, n: int, minimum: int = 1) -> tuple[int, ...]:
    return _F._ntuple(value, n, what, layer, minimum)


class _ConvNd(Module):
    """Shared constructor, initialisation, checks and repr of the convolution layers."""

    _nd = 0
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding,
                 dilation, groups: int, bias: bool, padding_mode: str, output_padding=0, *,
                 generator: np.random.Generator | None = None):
        super().__init__()
        n, name = self._nd, type(self).__name__
        for what, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not _F._is_int(v) or v <= 0:
                raise ValueError(f"{name}: expected {what} to be a positive int, got {v!r}")
        if not _F._is_int(groups) or groups <= 0:
            raise ValueError(f"{name}: expected groups to be a positive int, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _positive_ints(name, "kernel_size", kernel_size, n)
        self.stride = _positive_ints(name, "stride", stride, n)
        self.dilation = _positive_ints(name, "dilation", dilation, n)
        self.output_padding = _positive_ints(name, "output_padding", output_padding, n, 0)
        if isinstance(padding, str):
            if self._transposed:
                raise ValueError(f"{name}: padding must be an int or a tuple of {n} ints, got "
                                 f"{padding!r}")
            # validates 'same'/'valid' (and 'same' with stride > 1) now, not at the first call
            _F._padding_pairs(padding, n, self.kernel_size, self.stride, self.dilation, name)
            self.padding = padding
        else:
            self.padding = _positive_ints(name, "padding", padding, n, 0)
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")
        self.groups = int(groups)
        self.padding_mode = padding_mode
        self.transposed = self._transposed
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(xp.empty(shape, DEFAULT_DTYPE))
        if bias:
            self.bias = Parameter(xp.empty((self.out_channels,), DEFAULT_DTYPE))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """PyTorch's default: ``kaiming_uniform_(a=sqrt(5))``, i.e. ``W ~ U(-1/sqrt(fan_in),
        1/sqrt(fan_in))``, and the bias from the same range. ``fan_in = weight.shape[1] *
        prod(kernel_size)``."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, generator)

    def _name(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def _check_input(self, x) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{self._name()}: expected a Tensor input, got {type(x).__name__}")
        n = self._nd
        if x.ndim not in (n + 1, n + 2):
            raise ValueError(f"{self._name()}: expected a {n + 2}-d (batched) or {n + 1}-d "
                             f"(unbatched) input, got shape {tuple(x.shape)}")
        c = x.shape[1] if x.ndim == n + 2 else x.shape[0]
        if c != self.in_channels:
            raise ValueError(f"{self._name()}: expected {self.in_channels} input channels, got "
                             f"{c} (input shape {tuple(x.shape)})")

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if isinstance(self.padding, str) or any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *,
                 generator: np.random.Generator | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return _F._conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups, self._nd, self._name(), self.padding_mode)


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", *, generator: np.random.Generator | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, generator=generator)

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        self._check_input(x)
        return _F._conv_transpose(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation, self._nd,
                                  self._name(), output_size)


_CONV_ARGS = """
    Args:
        in_channels: channels of the input.
        out_channels: channels produced (number of filters).
        kernel_size: int or tuple, the filter's spatial size.
        stride: int or tuple. Default: 1.
        padding: int, tuple, ``'valid'`` or ``'same'`` (stride 1 only). Default: 0.
        dilation: spacing between kernel taps. Default: 1.
        groups: independent channel groups (``groups = in_channels``: depthwise). Default: 1.
        bias: learn an additive bias per output channel. Default: True.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
            Default: ``'zeros'``.
        generator: ``np.random.Generator`` for the initialisation (default: the global one).

    Attributes:
        weight: ``(out_channels, in_channels / groups, *kernel_size)``, initialised
            ``U(-k, k)`` with ``k = 1 / sqrt(in_channels / groups * prod(kernel_size))``.
        bias: ``(out_channels,)``, ``U(-k, k)``.
"""

_TRANSPOSE_ARGS = """
    Args:
        in_channels: channels of the input.
        out_channels: channels produced.
        kernel_size: int or tuple.
        stride: int or tuple, the upsampling factor. Default: 1.
        padding: int or tuple: the padding of the convolution this layer is the transpose
            of; ``padding`` is cropped from both sides of the full output. Default: 0.
        output_padding: extra size on one side of each output dim (< stride or dilation).
            Default: 0.
        groups: independent channel groups. Default: 1.
        bias: learn an additive bias per output channel. Default: True.
        dilation: spacing between kernel taps. Default: 1.
        padding_mode: only ``'zeros'``.
        generator: ``np.random.Generator`` for the initialisation (default: the global one).

    Attributes:
        weight: ``(in_channels, out_channels / groups, *kernel_size)``, initialised
            ``U(-k, k)`` with ``k = 1 / sqrt(out_channels / groups * prod(kernel_size))``.
        bias: ``(out_channels,)``, ``U(-k, k)``.

    ``forward(x, output_size=None)``: ``output_size`` (the wanted output spatial size) picks
    the output padding.
"""


class Conv1d(_Conv):
    __doc__ = """1-d convolution layer over ``(N, C_in, L)`` signals (audio, sequences).

    ``y[n, o] = b[o] + sum_c w[o, c] * x[n, c]`` where ``*`` is the 1-d cross-correlation.
    """ + _CONV_ARGS + """
    Shape:
        - Input ``(N, C_in, L_in)`` or ``(C_in, L_in)``; output ``(N, C_out, L_out)`` with
          ``L_out = floor((L_in + 2P - D (K - 1) - 1) / S) + 1``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Conv1d(2, 4, 3, padding=1)(fb.zeros(8, 2, 50)).shape
        (8, 4, 50)
    """
    _nd = 1


class Conv2d(_Conv):
    __doc__ = """2-d convolution layer over ``(N, C_in, H, W)`` images: a bank of learned
    filters, each slid over the image, giving one feature map per output channel.

    ``y[n, o] = b[o] + sum_c w[o, c] * x[n, c]`` where ``*`` is the 2-d cross-correlation
    ``(w * x)[i, j] = sum_(p, q) w[p, q] x_pad[s i + d p, s j + d q]``. Backward:
    ``dL/dw[o, c] = sum_n dL/dy[n, o] * x[n, c]`` and ``dL/dx`` is the transposed convolution of
    ``dL/dy`` with ``w`` (see :func:`filterbank.functional.conv2d`).
    """ + _CONV_ARGS + """
    Shape:
        - Input ``(N, C_in, H_in, W_in)`` or ``(C_in, H_in, W_in)``; output
          ``(N, C_out, H_out, W_out)`` with ``H_out = floor((H_in + 2P - D (K - 1) - 1) / S) + 1``
          (same for W).

    Example:
        >>> import filterbank as fb
        >>> conv = fb.nn.Conv2d(3, 16, 3, padding=1)
        >>> conv(fb.zeros(8, 3, 32, 32)).shape
        (8, 16, 32, 32)
    """
    _nd = 2


class Conv3d(_Conv):
    __doc__ = """3-d convolution layer over ``(N, C_in, D, H, W)`` volumes or clips.

    ``y[n, o] = b[o] + sum_c w[o, c] * x[n, c]`` where ``*`` is the 3-d cross-correlation.
    """ + _CONV_ARGS + """
    Shape:
        - Input ``(N, C_in, D_in, H_in, W_in)``; output ``(N, C_out, D_out, H_out, W_out)``,
          each ``floor((size + 2P - D (K - 1) - 1) / S) + 1``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Conv3d(1, 2, 3)(fb.zeros(1, 1, 5, 5, 5)).shape
        (1, 2, 3, 3, 3)
    """
    _nd = 3


class ConvTranspose1d(_ConvTranspose):
    __doc__ = """1-d transposed convolution ("up-convolution"): the gradient of
    :class:`Conv1d` with respect to its input, used to upsample learned features.

    ``y[n, o, s l + d k - P] += x[n, c, l] w[c, o, k]``
    """ + _TRANSPOSE_ARGS + """
    Shape:
        - Output length ``(L_in - 1) S - 2P + D (K - 1) + output_padding + 1``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.ConvTranspose1d(4, 2, 2, stride=2)(fb.zeros(1, 4, 10)).shape
        (1, 2, 20)
    """
    _nd = 1


class ConvTranspose2d(_ConvTranspose):
    __doc__ = """2-d transposed convolution ("up-convolution", U-Net's learned upsampling):
    the gradient of :class:`Conv2d` with respect to its input. Each input pixel scatters
    ``pixel * w`` into an output window, so ``kernel_size=2, stride=2`` doubles H and W.

    ``y[n, o, s i + d p - P, s j + d q - P] += x[n, c, i, j] w[c, o, p, q]``
    """ + _TRANSPOSE_ARGS + """
    Shape:
        - Output ``H_out = (H_in - 1) S - 2P + D (K - 1) + output_padding + 1`` (same for W).

    Example:
        >>> import filterbank as fb
        >>> up = fb.nn.ConvTranspose2d(64, 32, 2, stride=2)
        >>> up(fb.zeros(1, 64, 16, 16)).shape
        (1, 32, 32, 32)
    """
    _nd = 2


class ConvTranspose3d(_ConvTranspose):
    __doc__ = """3-d transposed convolution (volumetric up-convolution): the gradient of
    :class:`Conv3d` with respect to its input.

    ``y[n, o, s t + d r - P, s i + d p - P, s j + d q - P] += x[n, c, t, i, j] w[c, o, r, p, q]``
    """ + _TRANSPOSE_ARGS + """
    Shape:
        - Output, each spatial dim: ``(size - 1) S - 2P + D (K - 1) + output_padding + 1``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.ConvTranspose3d(2, 1, 2, stride=2)(fb.zeros(1, 2, 3, 3, 3)).shape
        (1, 1, 6, 6, 6)
    """
    _nd = 3
