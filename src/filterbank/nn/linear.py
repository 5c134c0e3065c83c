"""Fully connected layer ``Linear`` and the pass-through ``Identity``."""

from __future__ import annotations

import math

import numpy as np

from filterbank.backend import DEFAULT_DTYPE, xp
from filterbank.functional.linear import linear
from filterbank.nn import init
from filterbank.nn.module import Module, Parameter
from filterbank.tensor import Tensor


def check_features(layer: str, **sizes: int) -> None:
    """Every size must be a non-negative int (what PyTorch accepts)."""
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{layer}: expected {name} to be a non-negative int, got {v!r}")


def check_last_dim(layer: Module, x: Tensor, expected: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer!r}: expected a Tensor input, got {type(x).__name__}")
    if x.ndim == 0 or x.shape[-1] != expected:
        got = "a 0-d tensor" if x.ndim == 0 else f"{x.shape[-1]}"
        raise ValueError(f"{layer!r}: expected the input's last dim to be {expected}, got {got} "
                         f"(input shape {tuple(x.shape)})")


class Linear(Module):
    """Fully connected layer: ``y = x W^T + b``.

    Each output unit is a weighted sum of all inputs plus a bias (the lecture's neuron);
    backward: ``dL/dx = dL/dy W``, ``dL/dW = (dL/dy)^T x``, ``dL/db = sum dL/dy``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive bias. Default: True.
        generator: ``np.random.Generator`` for the initialisation (default: the global one).

    Attributes:
        weight: ``(out_features, in_features)``, initialised ``U(-k, k)`` with
            ``k = 1 / sqrt(in_features)`` (PyTorch's ``kaiming_uniform_(a=sqrt(5))``).
        bias: ``(out_features,)``, ``U(-k, k)``.

    Shape:
        - Input: ``(*, H_in)``, ``H_in = in_features``. Output: ``(*, H_out)``,
          ``H_out = out_features``.

    Example:
        >>> import filterbank as fb
        >>> fc = fb.nn.Linear(784, 10)
        >>> fc(fb.zeros(32, 784)).shape
        (32, 10)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 generator: np.random.Generator | None = None):
        super().__init__()
        check_features("Linear", in_features=in_features, out_features=out_features)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(xp.empty((self.out_features, self.in_features), DEFAULT_DTYPE))
        if bias:
            self.bias = Parameter(xp.empty((self.out_features,), DEFAULT_DTYPE))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """PyTorch's default: ``W, b ~ U(-1/sqrt(in_features), 1/sqrt(in_features))``."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, generator)

    def forward(self, x: Tensor) -> Tensor:
        check_last_dim(self, x, self.in_features)
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input unchanged; arguments are accepted and ignored (a placeholder layer).

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Identity(54, unused="x")(fb.ones(2)).tolist()
        [1.0, 1.0]
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
