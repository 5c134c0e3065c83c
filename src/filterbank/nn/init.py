"""Parameter initialisation (``filterbank.nn.init``), PyTorch's functions and formulas.

Every function fills a tensor in place, keeps its dtype, draws from
``filterbank.random.resolve(generator)`` and returns the tensor. No graph is recorded.

Why the scales: for ``y = W x`` with i.i.d. zero-mean weights of variance ``s^2`` and ``fan_in``
inputs of variance ``v``, ``Var(y) = fan_in s^2 v``. Keeping ``Var(y) = v`` through the layers
(forward) gives ``s^2 = 1 / fan_in``; keeping the gradient variance (backward) gives
``s^2 = 1 / fan_out``. Glorot/Xavier averages both, ``s^2 = 2 / (fan_in + fan_out)``; He/Kaiming
takes one and multiplies by ``gain^2`` to undo what the nonlinearity removes (``gain^2 = 2``
for ReLU, which zeroes half of its inputs). A uniform ``U(-b, b)`` has variance ``b^2 / 3``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from filterbank import random as _random
from filterbank.tensor import Tensor

_LINEAR_GAINS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                 "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    ================= ====================================
    nonlinearity      gain
    ================= ====================================
    linear / conv*    1
    sigmoid           1
    tanh              5/3
    relu              sqrt(2)
    leaky_relu        sqrt(2 / (1 + negative_slope^2))
    selu              3/4
    ================= ====================================

    Args:
        nonlinearity: one of the names above.
        param: negative slope for ``leaky_relu`` (default 0.01).

    Example:
        >>> from filterbank.nn import init
        >>> round(init.calculate_gain("relu"), 4)
        1.4142
    """
    if nonlinearity in _LINEAR_GAINS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
        f"{', '.join(_LINEAR_GAINS + ('tanh', 'relu', 'leaky_relu', 'selu'))}"
    )


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """``fan_in = shape[1] * prod(shape[2:])``, ``fan_out = shape[0] * prod(shape[2:])``.

    A Linear weight ``(out, in)`` has fan_in ``in``; a Conv2d weight ``(C_out, C_in / groups,
    kH, kW)`` has fan_in ``C_in / groups * kH * kW`` (the inputs one output sums over).
    """
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError(
            f"_calculate_fan_in_and_fan_out: fan in and fan out can not be computed for a tensor "
            f"with fewer than 2 dimensions, got shape {shape}"
        )
    receptive = int(np.prod(shape[2:], dtype=np.int64))
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor, mode: str, name: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _array(tensor, name: str) -> np.ndarray:
    arr = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name}: expected a Tensor or Parameter, got {type(tensor).__name__}")
    if arr.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {arr.dtype}")
    return arr


def _draw_dtype(dtype):
    return dtype if dtype in (np.float32, np.float64) else np.float64


def uniform_(tensor, a: float = 0.0, b: float = 1.0,
             generator: np.random.Generator | None = None):
    """Fill with samples of ``U(a, b)``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import init
        >>> w = init.uniform_(fb.empty(3, 4), -1.0, 1.0)
        >>> bool((w.numpy() >= -1).all() and (w.numpy() <= 1).all())
        True
    """
    arr = _array(tensor, "uniform_")
    if arr.size == 0:
        return tensor
    g = _random.resolve(generator)
    u = g.random(arr.shape, dtype=_draw_dtype(arr.dtype))
    # a + (b - a) u computed in float64 then cast, so the bounds are not rounded past
    arr[...] = (float(a) + (float(b) - float(a)) * u.astype(np.float64)).astype(arr.dtype)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0,
            generator: np.random.Generator | None = None):
    """Fill with samples of ``N(mean, std^2)``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import init
        >>> init.normal_(fb.empty(2, 2), std=0.01).dtype
        dtype('float32')
    """
    arr = _array(tensor, "normal_")
    if std < 0:
        raise ValueError(f"normal_: expected std >= 0, got {std}")
    if arr.size == 0:
        return tensor
    g = _random.resolve(generator)
    z = g.standard_normal(arr.shape, dtype=_draw_dtype(arr.dtype))
    arr[...] = z * arr.dtype.type(std) + arr.dtype.type(mean)
    return tensor


def constant_(tensor, val: float):
    """Fill with the constant ``val``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import init
        >>> init.constant_(fb.empty(2), 0.5).tolist()
        [0.5, 0.5]
    """
    _array(tensor, "constant_")[...] = val
    return tensor


def zeros_(tensor):
    """Fill with 0.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import init
        >>> init.zeros_(fb.ones(2)).tolist()
        [0.0, 0.0]
    """
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill with 1.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import init
        >>> init.ones_(fb.zeros(2)).tolist()
        [1.0, 1.0]
    """
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain: float = 1.0, generator: np.random.Generator | None = None):
    """Glorot/Xavier uniform: ``U(-b, b)``, ``b = gain * sqrt(6 / (fan_in + fan_out))``.

    Gives ``Var(w) = 2 / (fan_in + fan_out)`` (times gain^2): the compromise between keeping
    activations (fan_in) and gradients (fan_out) at constant variance.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import init
        >>> w = init.xavier_uniform_(fb.empty(30, 20))
        >>> bool(abs(w.numpy()).max() <= (6 / 50) ** 0.5)
        True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_array(tensor, "xavier_uniform_"))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator: np.random.Generator | None = None):
    """Glorot/Xavier normal: ``N(0, std^2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import init
        >>> init.xavier_normal_(fb.empty(30, 20)).shape
        (30, 20)
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_array(tensor, "xavier_normal_"))
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: np.random.Generator | None = None):
    """He/Kaiming uniform: ``U(-b, b)``, ``b = gain * sqrt(3 / fan)``.

    ``gain = calculate_gain(nonlinearity, a)``, ``fan`` = fan_in (keeps the forward variance)
    or fan_out (keeps the backward variance). PyTorch's default Linear/Conv init is this with
    ``a = sqrt(5)``, which works out to ``b = 1 / sqrt(fan_in)``.

    Args:
        tensor: tensor with >= 2 dims to fill.
        a: negative slope of the leaky ReLU after this layer (0 for ReLU).
        mode: ``"fan_in"`` (default) or ``"fan_out"``.
        nonlinearity: ``"leaky_relu"`` (default) or ``"relu"``; see :func:`calculate_gain`.
        generator: ``np.random.Generator`` (default: the global one).

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import init
        >>> w = init.kaiming_uniform_(fb.empty(64, 32), nonlinearity="relu")
        >>> bool(abs(w.numpy()).max() <= (6 / 32) ** 0.5)
        True
    """
    fan = _calculate_correct_fan(_array(tensor, "kaiming_uniform_"), mode, "kaiming_uniform_")
    if fan == 0:
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: np.random.Generator | None = None):
    """He/Kaiming normal: ``N(0, std^2)``, ``std = gain / sqrt(fan)``.

    Args: as :func:`kaiming_uniform_`. torchvision's ResNet uses
    ``kaiming_normal_(w, mode="fan_out", nonlinearity="relu")``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import init
        >>> init.kaiming_normal_(fb.empty(16, 3, 3, 3), mode="fan_out").dtype
        dtype('float32')
    """
    fan = _calculate_correct_fan(_array(tensor, "kaiming_normal_"), mode, "kaiming_normal_")
    if fan == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


__all__ = [
    "calculate_gain", "constant_", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_",
    "orthogonal_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_",
]


def orthogonal_(tensor, gain: float = 1.0, generator: np.random.Generator | None = None):
    """Fill with a (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2013; PyTorch's
    algorithm).

    The tensor is viewed as ``rows x cols`` with ``rows = shape[0]`` and ``cols`` the rest.
    A standard normal matrix ``A`` (transposed when ``rows < cols``, so it is tall) is
    factored ``A = QR``; the signs of ``diag(R)`` are moved into ``Q`` (``Q <- Q diag(sign
    R_ii)``), which makes ``Q`` uniformly (Haar) distributed instead of biased by the QR
    convention. Then ``W W^T = gain^2 I`` when ``rows <= cols``, else ``W^T W = gain^2 I``:
    every singular value is ``gain``, so repeated products neither grow nor shrink signals.

    Args:
        tensor: a floating Tensor or Parameter with at least 2 dims (filled in place).
        gain: the scale (default 1).
        generator: a ``numpy.random.Generator`` (default: the global one).

    Example:
        >>> import numpy as np, filterbank as fb
        >>> from filterbank.nn import init
        >>> w = init.orthogonal_(fb.empty(3, 5)).numpy()
        >>> bool(np.allclose(w @ w.T, np.eye(3), atol=1e-5))
        True
    """
    arr = _array(tensor, "orthogonal_")
    if arr.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, "
                         f"got shape {arr.shape}")
    if arr.size == 0:
        return tensor
    rows = arr.shape[0]
    cols = arr.size // rows
    g = _random.resolve(generator)
    flat = g.standard_normal((rows, cols))  # float64: the QR is done in double precision
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    arr[...] = (float(gain) * q).reshape(arr.shape).astype(arr.dtype)
    return tensor
