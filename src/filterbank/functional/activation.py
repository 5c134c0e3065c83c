"""Pointwise activations beyond ``relu``/``sigmoid``/``tanh`` (which live in elementwise.py):
leaky_relu, elu, selu, softplus, silu, swish, gelu, hardtanh, relu6, prelu.

Each has a hand-written backward; every hyperparameter follows ``torch.nn.functional``.
"""

from __future__ import annotations

import math

import numpy as np

from filterbank.autograd.function import Function
from filterbank.backend import xp
from filterbank.functional.elementwise import _stable_sigmoid
from filterbank.tensor import Tensor

# SELU's constants (Klambauer et al., 2017), as in PyTorch.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _erf(x):
    """erf(x) to ~1e-15 with array ops only (NumPy has no erf and SciPy is no dependency).

    |x| < 2.5: erf(x) = 2/sqrt(pi) e^{-x^2} sum_n (2x^2)^n x / (1*3*...*(2n+1)), a series of
    positive terms (no cancellation; 40 terms suffice). |x| >= 2.5: erfc(x) from its continued
    fraction e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), 30 levels.
    Computed in float64 and returned in ``x``'s dtype.
    """
    z = np.abs(x.astype(np.float64))
    out = np.empty_like(z)
    small = z < 2.5
    a = z[small]
    term, total, two_a2 = a.copy(), a.copy(), 2.0 * a * a
    for n in range(1, 40):
        term *= two_a2 / (2 * n + 1)
        total += term
    out[small] = _TWO_OVER_SQRT_PI * np.exp(-a * a) * total
    b = z[~small]
    b = np.minimum(b, 30.0)  # erf(30) == 1 in float64; keeps inf out of the fraction
    f = b.copy()
    for k in range(30, 0, -1):
        f = b + (k / 2) / f
    out[~small] = 1.0 - np.exp(-b * b) / (math.sqrt(math.pi) * f)
    return (np.sign(x) * out).astype(x.dtype, copy=False)


class LeakyReLU(Function):
    def forward(self, x):
        self.mask = x > 0
        return xp.where(self.mask, x, x * self.slope)

    def backward(self, gy):
        return xp.where(self.mask, gy, gy * self.slope)


class ELU(Function):
    """alpha (e^x - 1) for x <= 0; d/dx = alpha e^x there (1 for x > 0), all times ``scale``."""

    def forward(self, x):
        self.mask = x > 0
        # expm1 only of the non-positive part: large positive x must not overflow
        self.neg = self.alpha * xp.expm1(xp.minimum(x, 0))  # alpha (e^x - 1) where x <= 0
        y = xp.where(self.mask, x, self.neg)
        return y if self.scale == 1.0 else y * self.scale

    def backward(self, gy):
        g = xp.where(self.mask, gy, gy * (self.neg + self.alpha))
        return g if self.scale == 1.0 else g * self.scale


class Softplus(Function):
    def forward(self, x):
        z = x * self.beta if self.beta != 1.0 else x
        self.z = z
        self.linear = z > self.threshold
        soft = xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))  # log(1 + e^z), no overflow
        if self.beta != 1.0:
            soft = soft / self.beta
        return xp.where(self.linear, x, soft)

    def backward(self, gy):
        return xp.where(self.linear, gy, gy * _stable_sigmoid(self.z))


class SiLU(Function):
    def forward(self, x):
        self.x = x
        self.s = _stable_sigmoid(x)
        return x * self.s

    def backward(self, gy):
        s = self.s
        return gy * (s * (1 + self.x * (1 - s)))


class Swish(Function):
    """y = x sigmoid(beta x); dy/dx = s + beta x s (1 - s), dy/dbeta = x^2 s (1 - s)."""

    def forward(self, x, beta):
        s = _stable_sigmoid(beta * x)
        self.x, self.beta, self.s = x, beta, s
        return x * s

    def backward(self, gy):
        x, beta, s = self.x, self.beta, self.s
        ds = s * (1 - s)
        need_x, need_beta = self.needs_input_grad
        gx = gy * (s + beta * x * ds) if need_x else None
        gb = gy * (x * x * ds) if need_beta else None
        return gx, gb


class GELU(Function):
    def forward(self, x):
        self.x = x
        if self.approximate == "tanh":
            self.t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + _erf(x / _SQRT_2))
        return x * self.cdf

    def backward(self, gy):
        x = self.x
        if self.approximate == "tanh":
            t = self.t
            dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return gy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner)
        pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
        return gy * (self.cdf + x * pdf)


class Hardtanh(Function):
    """Clamp to [lo, hi]; gradient 1 strictly inside, 0 at and beyond the ends (as PyTorch)."""

    def forward(self, x):
        self.mask = (x > self.lo) & (x < self.hi)
        return xp.clip(x, self.lo, self.hi)

    def backward(self, gy):
        return gy * self.mask


class PReLU(Function):
    """y = x for x > 0 else w x;  dy/dx = 1 or w,  dy/dw = x where x <= 0 (else 0)."""

    def forward(self, x, w):
        self.mask = x > 0
        self.x, self.w = x, w
        return xp.where(self.mask, x, w * x)

    def backward(self, gy):
        need_x, need_w = self.needs_input_grad
        z = gy.dtype.type(0)  # a scalar: mixes with host and device arrays alike
        gx = xp.where(self.mask, gy, gy * self.w) if need_x else None
        gw = xp.where(self.mask, z, gy * self.x) if need_w else None
        return gx, gw


def _check_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    return float(value)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """Leaky ReLU: ``y = x`` for ``x > 0``, ``y = negative_slope * x`` otherwise.

    Backward: ``dy/dx = 1`` for ``x > 0``, ``negative_slope`` otherwise (also at 0, as
    PyTorch).

    Args:
        x: input tensor.
        negative_slope: slope for negative inputs (default 0.01).

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.leaky_relu(fb.tensor([-2.0, 3.0]), 0.5).tolist()
        [-1.0, 3.0]
    """
    return LeakyReLU.apply(x, slope=_check_float("leaky_relu: negative_slope", negative_slope))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """Exponential linear unit: ``y = x`` for ``x > 0``, ``alpha (e^x - 1)`` otherwise.

    Backward: ``dy/dx = 1`` for ``x > 0``, ``alpha e^x = y + alpha`` otherwise.

    Args:
        x: input tensor.
        alpha: the value ``y`` tends to as ``x -> -inf`` is ``-alpha`` (default 1.0).

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.elu(fb.tensor([0.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    return ELU.apply(x, alpha=_check_float("elu: alpha", alpha), scale=1.0)


def selu(x: Tensor) -> Tensor:
    """Scaled ELU: ``y = scale * elu(x, alpha)`` with PyTorch's self-normalising constants
    ``alpha = 1.6732632...``, ``scale = 1.0507009...``.

    Backward: ``dy/dx = scale`` for ``x > 0``, ``scale * alpha e^x`` otherwise.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> round(F.selu(fb.tensor([1.0])).item(), 4)
        1.0507
    """
    return ELU.apply(x, alpha=SELU_ALPHA, scale=SELU_SCALE)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """Smooth ReLU: ``y = log(1 + e^(beta x)) / beta``, and ``y = x`` where
    ``beta x > threshold`` (as PyTorch, for numerical stability).

    Backward: ``dy/dx = sigmoid(beta x)`` (1 in the linear region).

    Args:
        x: input tensor.
        beta: sharpness (default 1.0).
        threshold: above ``beta x > threshold`` the function is the identity (default 20.0).

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> round(F.softplus(fb.tensor([0.0])).item(), 4)
        0.6931
    """
    beta = _check_float("softplus: beta", beta)
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero, got 0")
    return Softplus.apply(x, beta=beta, threshold=_check_float("softplus: threshold", threshold))


def silu(x: Tensor) -> Tensor:
    """Sigmoid linear unit (swish with beta = 1): ``y = x sigmoid(x)``.

    Backward: ``dy/dx = s (1 + x (1 - s))`` with ``s = sigmoid(x)``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.silu(fb.tensor([0.0])).tolist()
        [0.0]
    """
    return SiLU.apply(x)


def swish(x: Tensor, beta: float | Tensor = 1.0) -> Tensor:
    """Swish: ``y = x sigmoid(beta x)``; ``beta`` may be a learnable Tensor.

    Backward: ``dy/dx = s + beta x s (1 - s)`` and ``dy/dbeta = x^2 s (1 - s)``
    with ``s = sigmoid(beta x)``; a ``beta`` tensor that broadcasts (a scalar, or one value per
    channel shaped e.g. ``(C, 1, 1)``) gets its gradient summed back to its shape.

    Args:
        x: input tensor.
        beta: a number or a Tensor broadcastable against ``x`` (default 1.0).

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> beta = fb.tensor(1.0, requires_grad=True)
        >>> F.swish(fb.tensor([1.0, 2.0]), beta).sum().backward()
        >>> beta.grad is not None
        True
    """
    if isinstance(beta, Tensor):
        try:
            np.broadcast_shapes(x.shape, beta.shape)
        except ValueError:
            raise ValueError(f"swish: beta of shape {beta.shape} does not broadcast against "
                             f"the input of shape {x.shape}") from None
    else:
        beta = _check_float("swish: beta", beta)
    return Swish.apply(x, beta)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: ``y = x Phi(x)`` with ``Phi`` the standard normal CDF.

    ``approximate="none"``: ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``, backward
    ``dy/dx = Phi(x) + x phi(x)``. ``approximate="tanh"``:
    ``y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, as PyTorch.

    Args:
        x: input tensor.
        approximate: ``"none"`` (default, exact) or ``"tanh"``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> round(F.gelu(fb.tensor([1.0])).item(), 4)
        0.8413
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(x, approximate=approximate)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """Clamp to ``[min_val, max_val]``; gradient 1 strictly inside, 0 elsewhere (as PyTorch).

    Args:
        x: input tensor.
        min_val: lower end (default -1.0).
        max_val: upper end (default 1.0).

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.hardtanh(fb.tensor([-3.0, 0.5, 3.0])).tolist()
        [-1.0, 0.5, 1.0]
    """
    lo = _check_float("hardtanh: min_val", min_val)
    hi = _check_float("hardtanh: max_val", max_val)
    if lo > hi:
        raise ValueError(f"hardtanh: min_val ({lo}) must not exceed max_val ({hi})")
    return Hardtanh.apply(x, lo=lo, hi=hi)


def relu6(x: Tensor) -> Tensor:
    """``min(max(x, 0), 6)``; gradient 1 for ``0 < x < 6``, else 0.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.relu6(fb.tensor([-1.0, 3.0, 9.0])).tolist()
        [0.0, 3.0, 6.0]
    """
    return Hardtanh.apply(x, lo=0.0, hi=6.0)


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """Parametric ReLU: ``y = x`` for ``x > 0``, ``y = w_c x`` otherwise, one learnable slope
    per channel (dim 1) or a single shared one.

    Backward: ``dy/dx = 1`` or ``w_c``; ``dL/dw_c = sum of dL/dy * x`` over the non-positive
    inputs of channel ``c``.

    Args:
        x: input ``(N, C, *)`` (or any shape when ``weight`` has one element).
        weight: ``(C,)`` or ``(1,)``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.prelu(fb.tensor([[-2.0, 2.0]]), fb.tensor([0.25])).tolist()
        [[-0.5, 2.0]]
    """
    if not isinstance(weight, Tensor):
        raise TypeError(f"prelu: expected weight to be a Tensor, got {type(weight).__name__}")
    n = weight.data.size
    if weight.ndim > 1:
        raise ValueError(f"prelu: expected a 1-d weight, got shape {weight.shape}")
    if n == 1:
        weight = weight.reshape(())
    else:
        channels = x.shape[1] if x.ndim >= 2 else 1
        if n != channels:
            raise ValueError(f"prelu: weight has {n} slopes but the input (shape {x.shape}) "
                             f"has {channels} channels in dim 1")
        weight = weight.reshape((1, n) + (1,) * (x.ndim - 2))
    return PReLU.apply(x, weight)
