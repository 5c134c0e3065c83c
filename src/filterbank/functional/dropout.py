"""Dropout: random zeroing during training (inverted dropout), identity at evaluation."""

from __future__ import annotations

import numbers

import numpy as np

from filterbank import random as _random
from filterbank.autograd.function import Function
from filterbank.backend import device_of, to_device
from filterbank.tensor import Tensor


def check_p(name: str, p) -> float:
    """Validate a drop probability (a real number in [0, 1]) and return it as a float."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{name}: expected p to be a float in [0, 1], got {type(p).__name__}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, got {p}")
    return float(p)


class _MaskMul(Function):
    """y = x * m with a fixed mask m (already scaled by 1/(1-p)); dx = gy * m."""

    def forward(self, x):
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def _mask(shape, p: float, dtype, generator, like) -> np.ndarray:
    """The scaled keep-mask, drawn on the host from ``generator`` (so a GPU run sees the
    numbers a CPU run sees) and moved to the device of ``like`` (a no-op on the host)."""
    g = _random.resolve(generator)
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
    keep = g.random(shape, dtype=draw_dtype) >= p
    if p == 1.0:
        mask = keep.astype(dtype)  # all zeros; 1/(1-p) would be inf
    else:  # scale in the input dtype so float32 stays float32
        mask = keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))
    return mask if type(like) is np.ndarray else to_device(mask, device_of(like))


def _as_tensor(name: str, x) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype}")
    return x


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            generator: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the survivors.

    ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` drawn independently per element, so
    ``E[y] = x`` and nothing needs rescaling at test time; ``dL/dx = dL/dy * m / (1 - p)``.
    With ``training=False`` (or ``p = 0``) the input is returned unchanged; ``p = 1`` gives
    zeros.

    Args:
        x: input of any shape.
        p: probability of zeroing an element, in [0, 1]. Default: 0.5.
        training: apply dropout (True) or act as the identity (False).
        inplace: accepted for PyTorch compatibility and ignored (a new tensor is returned).
        generator: ``np.random.Generator`` for the mask (default: the global one).

    Shape:
        - Input: ``(*)``. Output: ``(*)``, same shape and dtype; the mask has the input dtype.

    Example:
        >>> import numpy as np
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> y = F.dropout(fb.ones(1000), p=0.2, generator=np.random.default_rng(0))
        >>> sorted(set(y.tolist()))
        [0.0, 1.25]
    """
    p = check_p("dropout", p)
    x = _as_tensor("dropout", x)
    if not training or p == 0.0:
        return x
    return _MaskMul.apply(x, mask=_mask(x.shape, p, x.dtype, generator, x.data))


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator: np.random.Generator | None = None) -> Tensor:
    """Channel dropout: zero whole feature maps with probability ``p`` and scale the rest.

    One Bernoulli(1 - p) draw per (sample, channel): ``y[n, c] = x[n, c] * m[n, c] / (1 - p)``.
    Neighbouring pixels of a feature map are strongly correlated, so element-wise dropout
    barely regularises convolutions; dropping entire channels does.

    Args:
        x: input ``(N, C, H, W)``; a 3-d input is read as ``(N, C, L)`` (what PyTorch does
            today, without its warning).
        p: probability of zeroing a channel, in [0, 1]. Default: 0.5.
        training: apply dropout (True) or act as the identity (False).
        inplace: accepted for PyTorch compatibility and ignored.
        generator: ``np.random.Generator`` for the mask (default: the global one).

    Shape:
        - Input: ``(N, C, H, W)`` or ``(N, C, L)``. Output: same as the input.

    Example:
        >>> import numpy as np
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> y = F.dropout2d(fb.ones(2, 8, 4, 4), generator=np.random.default_rng(0))
        >>> bool((y.numpy().std(axis=(2, 3)) == 0).all())  # constant over each channel
        True
    """
    p = check_p("dropout2d", p)
    x = _as_tensor("dropout2d", x)
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 4-d input (N, C, H, W) or a 3-d input "
                         f"(N, C, L), got shape {tuple(x.shape)}")
    if not training or p == 0.0:
        return x
    shape = x.shape[:2] + (1,) * (x.ndim - 2)
    return _MaskMul.apply(x, mask=_mask(shape, p, x.dtype, generator, x.data))

