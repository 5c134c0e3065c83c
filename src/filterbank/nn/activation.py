"""Activation layers: thin modules over ``filterbank.functional``, plus ``Maxout``.

``inplace=`` arguments are accepted for PyTorch compatibility and ignored: every layer returns
a new tensor (overwriting an input that backward may still need would corrupt gradients).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from filterbank.backend import DEFAULT_DTYPE, xp
from filterbank.functional import activation as FA
from filterbank.functional.elementwise import relu, sigmoid, tanh
from filterbank.functional.linear import maxout
from filterbank.functional.reduce import log_softmax, softmax
from filterbank.nn import init
from filterbank.nn.linear import check_features, check_last_dim
from filterbank.nn.module import Module, Parameter
from filterbank.tensor import Tensor


def _real(layer: str, name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{layer}: expected {name} to be a real number, got {v!r}")
    return float(v)


class ReLU(Module):
    """Rectified linear unit: ``y = max(0, x)``; ``dy/dx = 1`` for ``x > 0`` else 0.

    Args:
        inplace: accepted for PyTorch compatibility and ignored.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.ReLU()(fb.tensor([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """Leaky ReLU: ``y = x`` for ``x >= 0``, ``negative_slope * x`` otherwise.

    A small slope keeps a gradient for negative inputs, so units cannot "die".

    Args:
        negative_slope: slope for ``x < 0``. Default: 0.01.
        inplace: accepted for PyTorch compatibility and ignored.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.LeakyReLU(0.5)(fb.tensor([-1.0, 2.0])).tolist()
        [-0.5, 2.0]
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = _real("LeakyReLU", "negative_slope", negative_slope)
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return FA.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """Exponential linear unit: ``y = x`` for ``x > 0``, ``alpha (e^x - 1)`` otherwise.

    Args:
        alpha: the negative saturation value is ``-alpha``. Default: 1.0.
        inplace: accepted for PyTorch compatibility and ignored.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> round(fb.nn.ELU()(fb.tensor([-100.0])).item(), 4)
        -1.0
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = _real("ELU", "alpha", alpha)
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return FA.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class SELU(Module):
    """Scaled ELU: ``y = scale * (x if x > 0 else alpha (e^x - 1))`` with
    ``alpha ~ 1.6733`` and ``scale ~ 1.0507`` (self-normalising networks).

    Args:
        inplace: accepted for PyTorch compatibility and ignored.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> round(fb.nn.SELU()(fb.tensor([1.0])).item(), 4)
        1.0507
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return FA.selu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class PReLU(Module):
    """Parametric ReLU: ``y = x`` for ``x > 0``, ``a_c x`` otherwise, with learned slopes.

    ``num_parameters = 1`` shares one slope; ``num_parameters = C`` learns one per channel
    (dim 1). ``dL/da_c`` sums ``dL/dy * x`` over the non-positive inputs of channel c.

    Args:
        num_parameters: 1 or the number of input channels. Default: 1.
        init: initial slope. Default: 0.25.

    Attributes:
        weight: ``(num_parameters,)``, filled with ``init``.

    Shape:
        - Input: ``(N, C, *)`` (any shape when ``num_parameters = 1``). Output: same shape.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.PReLU()(fb.tensor([-2.0, 2.0])).tolist()
        [-0.5, 2.0]
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25):
        super().__init__()
        check_features("PReLU", num_parameters=num_parameters)
        self.num_parameters = int(num_parameters)
        self.init = _real("PReLU", "init", init)
        self.weight = Parameter(xp.full((self.num_parameters,), self.init, DEFAULT_DTYPE))

    def forward(self, x: Tensor) -> Tensor:
        return FA.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Hardtanh(Module):
    """Clamp to ``[min_val, max_val]``; gradient 1 strictly inside, 0 outside.

    Args:
        min_val: lower end. Default: -1.0.
        max_val: upper end. Default: 1.0.
        inplace: accepted for PyTorch compatibility and ignored.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Hardtanh()(fb.tensor([-3.0, 0.5])).tolist()
        [-1.0, 0.5]
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        self.min_val = min_val
        self.max_val = max_val
        if _real("Hardtanh", "min_val", min_val) > _real("Hardtanh", "max_val", max_val):
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return FA.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return (f"min_val={self.min_val}, max_val={self.max_val}"
                + (", inplace=True" if self.inplace else ""))


class ReLU6(Module):
    """``y = min(max(0, x), 6)`` (MobileNet's bounded ReLU).

    Args:
        inplace: accepted for PyTorch compatibility and ignored.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.ReLU6()(fb.tensor([-1.0, 9.0])).tolist()
        [0.0, 6.0]
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return FA.relu6(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """Logistic sigmoid: ``y = 1 / (1 + e^-x)``; ``dy/dx = y (1 - y)``.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Sigmoid()(fb.zeros(1)).tolist()
        [0.5]
    """

    def forward(self, x: Tensor) -> Tensor:
        return sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent: ``y = tanh(x)``; ``dy/dx = 1 - y^2``.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Tanh()(fb.zeros(1)).tolist()
        [0.0]
    """

    def forward(self, x: Tensor) -> Tensor:
        return tanh(x)


class Softplus(Module):
    """Smooth ReLU: ``y = log(1 + e^(beta x)) / beta``; linear where ``beta x > threshold``.

    Args:
        beta: sharpness. Default: 1.0.
        threshold: above ``beta x > threshold`` the output is ``x`` (numerical stability).
            Default: 20.0.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> round(fb.nn.Softplus()(fb.zeros(1)).item(), 4)
        0.6931
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = _real("Softplus", "beta", beta)
        self.threshold = _real("Softplus", "threshold", threshold)

    def forward(self, x: Tensor) -> Tensor:
        return FA.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class SiLU(Module):
    """Sigmoid linear unit: ``y = x * sigmoid(x)`` (Swish with ``beta = 1``).

    Args:
        inplace: accepted for PyTorch compatibility and ignored.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.SiLU()(fb.zeros(2)).tolist()
        [0.0, 0.0]
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return FA.silu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Swish(Module):
    """Swish: ``y = x * sigmoid(beta x)``; ``beta = 1`` is SiLU, ``beta -> inf`` tends to ReLU.

    With ``learnable=True``, ``beta`` is a 0-d :class:`Parameter` trained with the network
    (``dy/dbeta = x^2 s (1 - s)``, ``s = sigmoid(beta x)``); otherwise it is a fixed float.

    Args:
        beta: initial / fixed value of beta. Default: 1.0.
        learnable: make beta a parameter. Default: False.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> act = fb.nn.Swish(beta=1.0, learnable=True)
        >>> [name for name, _ in act.named_parameters()]
        ['beta']
    """

    def __init__(self, beta: float = 1.0, learnable: bool = False):
        super().__init__()
        beta = _real("Swish", "beta", beta)
        self.learnable = bool(learnable)
        if self.learnable:
            self.beta = Parameter(xp.asarray(beta, dtype=DEFAULT_DTYPE))
        else:
            self.beta = beta

    def forward(self, x: Tensor) -> Tensor:
        return FA.swish(x, self.beta)

    def extra_repr(self) -> str:
        beta = float(self.beta.data) if self.learnable else self.beta
        return f"beta={beta}, learnable={self.learnable}"


class GELU(Module):
    """Gaussian error linear unit: ``y = x * Phi(x)`` with ``Phi`` the standard normal CDF.

    ``approximate="tanh"`` uses ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    Args:
        approximate: ``"none"`` (exact, erf) or ``"tanh"``. Default: ``"none"``.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.GELU()(fb.zeros(1)).tolist()
        [0.0]
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: expected approximate to be 'none' or 'tanh', got "
                             f"{approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return FA.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


def _softmax_dim(layer: Module, dim, x: Tensor) -> int:
    if dim is None:
        # PyTorch's legacy implicit choice (it warns; we document it instead)
        return 0 if x.ndim in (0, 1, 3) else 1
    if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
        raise ValueError(f"{layer!r}: dim {dim} is out of range for an input of shape "
                         f"{tuple(x.shape)}")
    return dim


class Softmax(Module):
    """Softmax along ``dim``: ``y_i = e^(x_i) / sum_j e^(x_j)`` (computed stably).

    Backward: ``dx = y * (gy - sum(gy * y))``.

    Args:
        dim: the dimension that sums to 1. Pass it explicitly: ``None`` follows PyTorch's
            legacy rule (dim 0 for 0-, 1- and 3-d inputs, else dim 1).

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape, values in [0, 1].

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Softmax(dim=1)(fb.zeros(1, 4)).tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return softmax(x, _softmax_dim(self, self.dim, x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``log(softmax(x))`` along ``dim``, computed as ``x - logsumexp(x)`` (stable).

    Args:
        dim: the dimension to normalise; ``None`` as for :class:`Softmax`.

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape, values <= 0.

    Example:
        >>> import filterbank as fb
        >>> round(fb.nn.LogSoftmax(dim=1)(fb.zeros(1, 2))[0, 0].item(), 4)
        -0.6931
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return log_softmax(x, _softmax_dim(self, self.dim, x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Maxout(Module):
    """Maxout layer: ``y_j = max_k (w_jk . x + b_jk)``, k = 1..pieces.

    The lecture's ``max(w1.x + b1, w2.x + b2)`` generalised to ``pieces`` affine maps per
    output unit, each with its own weights: a learned, piecewise-linear convex activation
    (ReLU is the special case ``max(w.x + b, 0)``). Computed as one Linear to
    ``out_features * pieces`` followed by a max over the pieces; the gradient of each output
    flows only into its winning piece.

    Args:
        in_features: size of each input sample.
        out_features: number of maxout units.
        pieces: affine pieces per unit (k). Default: 2.
        bias: learn biases. Default: True.
        generator: ``np.random.Generator`` for the initialisation.

    Attributes:
        weight: ``(out_features * pieces, in_features)``; row ``j * pieces + k`` is piece k
            of unit j. Initialised like ``Linear(in_features, out_features * pieces)``:
            ``U(-1/sqrt(in_features), 1/sqrt(in_features))``.
        bias: ``(out_features * pieces,)``, same distribution.

    Shape:
        - Input: ``(*, in_features)``. Output: ``(*, out_features)``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Maxout(10, 4, pieces=3)(fb.zeros(8, 10)).shape
        (8, 4)
    """

    def __init__(self, in_features: int, out_features: int, pieces: int = 2, bias: bool = True,
                 *, generator: np.random.Generator | None = None):
        super().__init__()
        check_features("Maxout", in_features=in_features, out_features=out_features)
        if isinstance(pieces, bool) or not isinstance(pieces, int | np.integer) or pieces < 1:
            raise ValueError(f"Maxout: expected pieces to be a positive int, got {pieces!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.pieces = int(pieces)
        rows = self.out_features * self.pieces
        self.weight = Parameter(xp.empty((rows, self.in_features), DEFAULT_DTYPE))
        if bias:
            self.bias = Parameter(xp.empty((rows,), DEFAULT_DTYPE))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, generator)

    def forward(self, x: Tensor) -> Tensor:
        check_last_dim(self, x, self.in_features)
        return maxout(x, self.weight, self.bias, self.pieces)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"pieces={self.pieces}, bias={self.bias is not None}")
