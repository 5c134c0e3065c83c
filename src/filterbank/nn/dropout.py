"""Dropout layers: active in ``train()`` mode, the identity in ``eval()`` mode."""

from __future__ import annotations

import numpy as np

from filterbank.functional.dropout import check_p, dropout, dropout2d
from filterbank.nn.module import Module
from filterbank.tensor import Tensor


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False, *,
                 generator: np.random.Generator | None = None):
        super().__init__()
        self.p = check_p(type(self).__name__, p)
        self.inplace = bool(inplace)
        self.generator = generator

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the
    rest by ``1 / (1 - p)``; in evaluation, pass the input through.

    ``y = x * m / (1 - p)``, ``m ~ Bernoulli(1 - p)`` per element; the expected activation is
    unchanged, so the network needs no rescaling at test time.

    Args:
        p: probability of zeroing an element. Default: 0.5.
        inplace: accepted for PyTorch compatibility and ignored.
        generator: ``np.random.Generator`` for the masks (default: the global one).

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape.

    Example:
        >>> import filterbank as fb
        >>> drop = fb.nn.Dropout(0.5)
        >>> drop.eval()(fb.ones(3)).tolist()
        [1.0, 1.0, 1.0]
    """

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training, generator=self.generator)


class Dropout2d(_DropoutNd):
    """Channel dropout: in training, zero entire channels ``x[n, c]`` with probability ``p``
    and scale the rest by ``1 / (1 - p)``; in evaluation, pass the input through.

    Args:
        p: probability of zeroing a channel. Default: 0.5.
        inplace: accepted for PyTorch compatibility and ignored.
        generator: ``np.random.Generator`` for the masks (default: the global one).

    Shape:
        - Input: ``(N, C, H, W)`` (or ``(N, C, L)``). Output: same shape.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Dropout2d(0.2)(fb.ones(2, 3, 4, 4)).shape
        (2, 3, 4, 4)
    """

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim not in (3, 4):
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{self!r}: expected a 4-d input (N, C, H, W) or 3-d (N, C, L), "
                             f"got {shape}")
        return dropout2d(x, self.p, self.training, generator=self.generator)
