"""Normalisation layers: BatchNorm1d/2d/3d, LayerNorm, GroupNorm, InstanceNorm1d/2d/3d,
LocalResponseNorm.

Names, defaults, parameters (``weight``, ``bias``) and buffers (``running_mean``,
``running_var``, ``num_batches_tracked``) follow PyTorch, so state_dicts map one to one.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from filterbank.functional import norm as _F
from filterbank.nn.module import Module, Parameter
from filterbank.tensor import Tensor


def _check_positive_int(value, what: str, where: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{where}: expected a positive integer {what}, got {value!r}")
    return int(value)


def _check_eps(eps, where: str) -> float:
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or eps < 0:
        raise ValueError(f"{where}: expected a non-negative eps, got {eps!r}")
    return float(eps)


def _input(x, where: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    raise TypeError(f"{where}: expected a Tensor input, got {type(x).__name__}")


class _NormBase(Module):
    """Shared by batch and instance norm: per-channel affine parameters and running stats."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, bias: bool = True):
        super().__init__()
        where = f"{type(self).__name__}({num_features!r})"
        self.num_features = _check_positive_int(num_features, "num_features", where)
        self.eps = _check_eps(eps, where)
        if momentum is not None and (not isinstance(momentum, numbers.Real)
                                     or isinstance(momentum, bool)):
            raise ValueError(f"{where}: expected a float momentum or None, got {momentum!r}")
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        c = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(c, np.float32))
            if bias:
                self.bias = Parameter(np.zeros(c, np.float32))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(c, np.float32)))
            self.register_buffer("running_var", Tensor(np.ones(c, np.float32)))
            self.register_buffer("num_batches_tracked",
                                 Tensor(np.array(0, np.int64), dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def _label(self) -> str:
        return f"{type(self).__name__}({self.num_features})"

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, batch counter 0."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        """Running statistics reset; weight 1 and bias 0 (PyTorch's initialisation)."""
        self.reset_running_stats()
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _ranks: tuple[int, ...] = ()
    _layout: str = ""

    def forward(self, x: Tensor) -> Tensor:
        where = self._label()
        x = _input(x, where)
        if x.ndim not in self._ranks:
            dims = " or ".join(f"{r}D" for r in self._ranks)
            raise ValueError(
                f"{where}: expected {dims} input {self._layout}, got {x.ndim}D input of shape "
                f"{tuple(x.shape)}"
            )
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{where}: expected {self.num_features} channels, got {x.shape[1]} "
                f"(input shape {tuple(x.shape)})"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        count = None
        if self.training and self.track_running_stats:
            count = int(self.num_batches_tracked.data) + 1
            # momentum=None: cumulative moving average, the k-th batch weighs 1/k
            factor = 1.0 / count if self.momentum is None else self.momentum
        use_batch_stats = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats
        y = _F._batch_norm(x, self.running_mean if keep else None,
                           self.running_var if keep else None, self.weight, self.bias,
                           use_batch_stats, factor, self.eps, where)
        if count is not None:
            self.num_batches_tracked.data[...] = count
        return y


_BN_DOC = """Batch normalisation over {over} (Ioffe & Szegedy, 2015).

    .. math::
        y = \\frac{{x - \\mathrm{{E}}[x]}}{{\\sqrt{{\\mathrm{{Var}}[x] + \\epsilon}}}}
            \\gamma + \\beta

    In training, mean and biased variance are those of the batch, per channel over
    {axes}, and the running statistics are updated:
    ``running = (1 - momentum) * running + momentum * batch`` (running_var with the unbiased
    batch variance; ``momentum=None`` gives the cumulative average, weight
    ``1 / num_batches_tracked``). In evaluation the running statistics normalise instead,
    unless ``track_running_stats=False`` (then batch statistics are always used). Backward is
    one fused pass: ``dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat mean(dy xhat))``.

    Args:
        num_features: C, the number of channels.
        eps: added to the variance. Default: 1e-5.
        momentum: running-average factor, or None for a cumulative average. Default: 0.1.
        affine: learn ``weight`` (gamma, init 1) and ``bias`` (beta, init 0). Default: True.
        track_running_stats: keep ``running_mean``, ``running_var`` and
            ``num_batches_tracked`` buffers. Default: True.
        bias: learn beta (with ``affine``), keyword-only. Default: True.

    Shape:
        - Input: {shape}
        - Output: same shape as the input.

    Example:
        >>> import filterbank as fb
        >>> bn = fb.nn.{name}(3)
        >>> bn(fb.randn({example})).shape
        {example}
    """


class BatchNorm1d(_BatchNorm):
    __doc__ = _BN_DOC.format(over="a batch of vectors or sequences", axes="(N,) or (N, L)",
                             shape="(N, C) or (N, C, L)", name="BatchNorm1d",
                             example="(4, 3, 5)")
    _ranks = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    __doc__ = _BN_DOC.format(over="a batch of images", axes="(N, H, W)", shape="(N, C, H, W)",
                             name="BatchNorm2d", example="(2, 3, 4, 4)")
    _ranks = (4,)
    _layout = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    __doc__ = _BN_DOC.format(over="a batch of volumes", axes="(N, D, H, W)",
                             shape="(N, C, D, H, W)", name="BatchNorm3d",
                             example="(2, 3, 2, 4, 4)")
    _ranks = (5,)
    _layout = "(N, C, D, H, W)"


class _InstanceNorm(_NormBase):
    _no_batch_dim: int = 0
    _layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        where = self._label()
        x = _input(x, where)
        d = self._no_batch_dim
        if x.ndim not in (d, d + 1):
            raise ValueError(
                f"{where}: expected {d}D or {d + 1}D input {self._layout}, got {x.ndim}D input "
                f"of shape {tuple(x.shape)}"
            )
        c = x.shape[x.ndim - d]
        if c != self.num_features:
            msg = (f"{where}: expected {self.num_features} channels, got {c} (input shape "
                   f"{tuple(x.shape)})")
            if self.affine or self.track_running_stats:
                raise ValueError(msg)
            # PyTorch only warns here: without parameters or buffers num_features is unused
            warnings.warn(msg + "; num_features is unused with affine=False and "
                          "track_running_stats=False", UserWarning, stacklevel=2)
        unbatched = x.ndim == d
        if unbatched:
            x = x.reshape((1,) + tuple(x.shape))
        y = _F._instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              0.0 if self.momentum is None else self.momentum, self.eps,
                              where)
        return y.reshape(tuple(y.shape[1:])) if unbatched else y


_IN_DOC = """Instance normalisation: each channel of each sample over its {spatial} positions.

    .. math::
        y = \\frac{{x - \\mathrm{{E}}[x]}}{{\\sqrt{{\\mathrm{{Var}}[x] + \\epsilon}}}}
            \\gamma + \\beta

    Statistics per (sample, channel), biased variance, in training and evaluation alike unless
    ``track_running_stats=True`` (then running averages of the instance statistics are kept in
    training and used in evaluation). Unlike batch norm, ``affine`` and
    ``track_running_stats`` default to False.

    Args:
        num_features: C, the number of channels.
        eps: added to the variance. Default: 1e-5.
        momentum: running-average factor (None behaves as 0). Default: 0.1.
        affine: learn per-channel ``weight`` (init 1) and ``bias`` (init 0). Default: False.
        track_running_stats: keep running statistics for evaluation. Default: False.
        bias: learn the bias (with ``affine``), keyword-only. Default: True.

    Shape:
        - Input: {shape}
        - Output: same shape as the input.

    Example:
        >>> import filterbank as fb
        >>> norm = fb.nn.{name}(3)
        >>> norm(fb.randn({example})).shape
        {example}
    """


class InstanceNorm1d(_InstanceNorm):
    __doc__ = _IN_DOC.format(spatial="L", shape="(N, C, L) or (C, L)", name="InstanceNorm1d",
                             example="(2, 3, 5)")
    _no_batch_dim = 2
    _layout = "(N, C, L) or (C, L)"


class InstanceNorm2d(_InstanceNorm):
    __doc__ = _IN_DOC.format(spatial="H x W", shape="(N, C, H, W) or (C, H, W)",
                             name="InstanceNorm2d", example="(2, 3, 4, 4)")
    _no_batch_dim = 3
    _layout = "(N, C, H, W) or (C, H, W)"


class InstanceNorm3d(_InstanceNorm):
    __doc__ = _IN_DOC.format(spatial="D x H x W", shape="(N, C, D, H, W) or (C, D, H, W)",
                             name="InstanceNorm3d", example="(2, 3, 2, 4, 4)")
    _no_batch_dim = 4
    _layout = "(N, C, D, H, W) or (C, D, H, W)"


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` dims (Ba et al., 2016).

    .. math::
        y = \\frac{x - \\mathrm{E}[x]}{\\sqrt{\\mathrm{Var}[x] + \\epsilon}} \\gamma + \\beta

    Mean and biased variance per sample over the last ``len(normalized_shape)`` dims, the
    same in training and evaluation; gamma and beta are elementwise, of shape
    ``normalized_shape``.

    Args:
        normalized_shape: int or tuple, the trailing shape of the input.
        eps: added to the variance. Default: 1e-5.
        elementwise_affine: learn ``weight`` (init 1) and ``bias`` (init 0). Default: True.
        bias: learn the bias (with ``elementwise_affine``). Default: True.

    Shape:
        - Input: (N, *, *normalized_shape)
        - Output: same shape as the input.

    Example:
        >>> import filterbank as fb
        >>> ln = fb.nn.LayerNorm(8)
        >>> ln(fb.randn(2, 5, 8)).shape
        (2, 5, 8)
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        where = f"LayerNorm({normalized_shape!r})"
        try:
            shape = tuple(normalized_shape)
        except TypeError:
            raise ValueError(
                f"{where}: expected an int or a tuple of ints as normalized_shape, got "
                f"{type(normalized_shape).__name__}"
            ) from None
        if not shape or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                                and s > 0 for s in shape):
            raise ValueError(
                f"{where}: expected normalized_shape to be a non-empty tuple of positive ints, "
                f"got {shape!r}"
            )
        self.normalized_shape = tuple(int(s) for s in shape)
        self.eps = _check_eps(eps, where)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, np.float32))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, np.float32))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        where = f"LayerNorm({self.normalized_shape})"
        return _F._layer_norm(_input(x, where), self.normalized_shape, self.weight, self.bias,
                              self.eps, where)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalisation: per sample over groups of ``C / num_groups`` channels (Wu & He,
    2018).

    .. math::
        y = \\frac{x - \\mathrm{E}[x]}{\\sqrt{\\mathrm{Var}[x] + \\epsilon}} \\gamma + \\beta

    Mean and biased variance per (sample, group) over the group's channels and positions, the
    same in training and evaluation; gamma and beta are per channel. ``num_groups=1`` is a
    layer norm over (C, *); ``num_groups=num_channels`` is an instance norm.

    Args:
        num_groups: number of groups; must divide ``num_channels``.
        num_channels: C, the number of channels.
        eps: added to the variance. Default: 1e-5.
        affine: learn per-channel ``weight`` (init 1) and ``bias`` (init 0). Default: True.
        bias: learn the bias (with ``affine``), keyword-only. Default: True.

    Shape:
        - Input: (N, C, *)
        - Output: same shape as the input.

    Example:
        >>> import filterbank as fb
        >>> gn = fb.nn.GroupNorm(2, 6)
        >>> gn(fb.randn(4, 6, 5, 5)).shape
        (4, 6, 5, 5)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, *, bias: bool = True):
        super().__init__()
        where = f"GroupNorm({num_groups!r}, {num_channels!r})"
        self.num_groups = _check_positive_int(num_groups, "num_groups", where)
        self.num_channels = _check_positive_int(num_channels, "num_channels", where)
        if num_channels % num_groups:
            raise ValueError(
                f"{where}: num_channels ({num_channels}) must be divisible by num_groups "
                f"({num_groups})"
            )
        self.eps = _check_eps(eps, where)
        self.affine = bool(affine)
        if self.affine:
            self.weight = Parameter(np.ones(num_channels, np.float32))
            if bias:
                self.bias = Parameter(np.zeros(num_channels, np.float32))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        where = f"GroupNorm({self.num_groups}, {self.num_channels})"
        x = _input(x, where)
        if x.ndim < 2:
            raise ValueError(
                f"{where}: expected an input of shape (N, C, *) with at least 2 dims, got "
                f"{x.ndim}D input of shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.num_channels:
            raise ValueError(
                f"{where}: expected {self.num_channels} channels, got {x.shape[1]} (input "
                f"shape {tuple(x.shape)})"
            )
        return _F._group_norm(x, self.num_groups, self.weight, self.bias, self.eps, where)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Local response normalisation across neighbouring channels (AlexNet).

    .. math::
        b_c = a_c \\left(k + \\frac{\\alpha}{n} \\sum_{c'=c-\\lfloor n/2 \\rfloor}
        ^{c+\\lfloor (n-1)/2 \\rfloor} a_{c'}^2\\right)^{-\\beta}

    with zeros beyond the first and last channel, n = ``size`` (PyTorch's convention).

    Args:
        size: number of neighbouring channels in the window.
        alpha: multiplicative factor. Default: 1e-4.
        beta: exponent. Default: 0.75.
        k: additive factor. Default: 1.0.

    Shape:
        - Input: (N, C, *)
        - Output: same shape as the input.

    Example:
        >>> import filterbank as fb
        >>> lrn = fb.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        >>> lrn(fb.randn(2, 8, 6, 6)).shape
        (2, 8, 6, 6)
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = _check_positive_int(size, "size", f"LocalResponseNorm({size!r})")
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        where = f"LocalResponseNorm({self.size})"
        return _F._local_response_norm(_input(x, where), self.size, self.alpha, self.beta,
                                       self.k, where)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
