"""Tensor factories: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``randn``, ...

Floating results are float32 unless ``dtype`` says otherwise; random ones draw from
:func:`filterbank.random.resolve` (the global generator, or the ``generator`` passed).
"""

from __future__ import annotations

import numpy as np

from filterbank import random as _random
from filterbank.backend import DEFAULT_DTYPE, xp
from filterbank.tensor import Tensor, _shape_args


def _dtype(dtype):
    return DEFAULT_DTYPE if dtype is None else np.dtype(dtype)


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (like ``torch.tensor``).

    Floating data defaults to float32 (float64 NumPy arrays included; pass ``dtype`` to keep
    them), integers to int64, booleans stay bool; a Tensor keeps its dtype.

    Args:
        data: nested lists, scalar, NumPy array or Tensor.
        dtype: NumPy dtype or its name (default: inferred as above).
        requires_grad: track operations for ``backward()`` (floating dtypes only).

    Example:
        >>> import filterbank as fb
        >>> fb.tensor([[1, 2], [3, 4]]).dtype
        dtype('int64')
        >>> fb.tensor([0.5, 1.5], requires_grad=True).dtype
        dtype('float32')
    """
    if isinstance(data, Tensor):
        data = data.data
        if dtype is None:
            dtype = data.dtype
    arr = np.array(data, dtype=None if dtype is None else np.dtype(dtype), copy=True)
    return Tensor(arr, requires_grad=requires_grad, dtype=dtype)


def _new(arr, requires_grad: bool) -> Tensor:
    return Tensor(arr, requires_grad=requires_grad, dtype=arr.dtype)


def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros; ``shape`` as varargs or one tuple; float32 unless ``dtype``.

    Example:
        >>> import filterbank as fb
        >>> fb.zeros(2, 3).shape, fb.zeros((2,), dtype="int64").dtype
        ((2, 3), dtype('int64'))
    """
    return _new(xp.zeros(_shape_args(shape), _dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones; ``shape`` as varargs or one tuple; float32 unless ``dtype``.

    Example:
        >>> import filterbank as fb
        >>> fb.ones(2).tolist()
        [1.0, 1.0]
    """
    return _new(xp.ones(_shape_args(shape), _dtype(dtype)), requires_grad)


def empty(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (contents arbitrary); float32 unless ``dtype``."""
    return _new(xp.empty(_shape_args(shape), _dtype(dtype)), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``. Without ``dtype``: bool for a bool, int64 for an
    int, float32 for a float (as ``torch.full``).

    Example:
        >>> import filterbank as fb
        >>> fb.full((2,), 7).dtype, fb.full(2, 0.5).tolist()
        (dtype('int64'), [0.5, 0.5])
    """
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    if dtype is None:
        if isinstance(fill_value, bool | np.bool_):
            dtype = np.bool_
        elif isinstance(fill_value, int | np.integer):
            dtype = np.int64
    return _new(xp.full(shape, fill_value, _dtype(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` (default 0) up to, not including, ``end`` in steps of ``step``.

    int64 when every argument is an int, else float32 (as ``torch.arange``).

    Example:
        >>> import filterbank as fb
        >>> fb.arange(3).tolist(), fb.arange(0, 1, 0.25).tolist()
        ([0, 1, 2], [0.0, 0.25, 0.5, 0.75])
    """
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, int | np.integer) for v in (start, end, step))
        dtype = np.int64 if ints else DEFAULT_DTYPE
    return _new(xp.arange(start, end, step, dtype=np.dtype(dtype)), requires_grad)


def _float_dtype(name: str, dtype):
    dt = _dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{name}: expected a floating dtype, got {dt}")
    return dt


def randn(*shape, dtype=None, generator: np.random.Generator | None = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples drawn from ``generator`` (default: the global one, see
    :func:`filterbank.manual_seed`).

    Example:
        >>> import filterbank as fb
        >>> fb.randn(2, 3, generator=fb.default_generator()).shape
        (2, 3)
    """
    g = _random.resolve(generator)
    dt = _float_dtype("randn", dtype)
    native = dt if dt in (np.float32, np.float64) else np.dtype(np.float64)
    arr = g.standard_normal(_shape_args(shape), dtype=native).astype(dt, copy=False)
    return _new(arr, requires_grad)


def rand(*shape, dtype=None, generator: np.random.Generator | None = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) drawn from ``generator`` (default: the global one).

    Example:
        >>> import filterbank as fb
        >>> bool(((fb.rand(100) >= 0) & (fb.rand(100) < 1)).numpy().all())
        True
    """
    g = _random.resolve(generator)
    dt = _float_dtype("rand", dtype)
    native = dt if dt in (np.float32, np.float64) else np.dtype(np.float64)
    arr = g.random(_shape_args(shape), dtype=native).astype(dt, copy=False)
    return _new(arr, requires_grad)


def _like_dtype(t, dtype):
    return t.dtype if dtype is None else dtype


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``t``'s shape and (unless given) dtype."""
    return zeros(t.shape, dtype=_like_dtype(t, dtype), requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """Ones with ``t``'s shape and (unless given) dtype."""
    return ones(t.shape, dtype=_like_dtype(t, dtype), requires_grad=requires_grad)


def empty_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uninitialised, with ``t``'s shape and (unless given) dtype."""
    return empty(t.shape, dtype=_like_dtype(t, dtype), requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere, with ``t``'s shape and (unless given) dtype."""
    return full(t.shape, fill_value, dtype=_like_dtype(t, dtype), requires_grad=requires_grad)


def randn_like(t: Tensor, dtype=None, generator=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples with ``t``'s shape and (unless given) dtype."""
    return randn(t.shape, dtype=_like_dtype(t, dtype), generator=generator,
                 requires_grad=requires_grad)


def rand_like(t: Tensor, dtype=None, generator=None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples with ``t``'s shape and (unless given) dtype."""
    return rand(t.shape, dtype=_like_dtype(t, dtype), generator=generator,
                requires_grad=requires_grad)
