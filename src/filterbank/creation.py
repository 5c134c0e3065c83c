"""Tensor factories: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``randn``, ..."""

from __future__ import annotations

import numpy as np

from filterbank import random as _random
from filterbank.backend import DEFAULT_DTYPE, xp
from filterbank.tensor import Tensor, _shape_args


def _dtype(dtype):
    return DEFAULT_DTYPE if dtype is None else np.dtype(dtype)


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor copying ``data``; floats default to float32, ints to int64."""
    if isinstance(data, Tensor):
        data = data.data
    arr = np.array(data, dtype=None if dtype is None else np.dtype(dtype), copy=True)
    return Tensor(arr, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(xp.zeros(_shape_args(shape), _dtype(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(xp.ones(_shape_args(shape), _dtype(dtype)), requires_grad=requires_grad)


def empty(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(xp.empty(_shape_args(shape), _dtype(dtype)), requires_grad=requires_grad)


def full(shape, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if dtype is None and isinstance(fill_value, bool | int) and not isinstance(fill_value, float):
        dtype = np.int64 if not isinstance(fill_value, bool) else np.bool_
    return Tensor(xp.full(shape, fill_value, _dtype(dtype)), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Like ``torch.arange``: int64 when every argument is an int, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, int | np.integer) for v in (start, end, step))
        dtype = np.int64 if ints else DEFAULT_DTYPE
    return Tensor(xp.arange(start, end, step, dtype=np.dtype(dtype)), requires_grad=requires_grad)


def randn(*shape, dtype=None, generator: np.random.Generator | None = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples drawn from ``generator`` (default: the global one)."""
    g = _random.resolve(generator)
    dt = _dtype(dtype)
    arr = g.standard_normal(_shape_args(shape), dtype=dt if dt in (np.float32, np.float64)
                            else np.float64).astype(dt, copy=False)
    return Tensor(arr, requires_grad=requires_grad)


def rand(*shape, dtype=None, generator: np.random.Generator | None = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) drawn from ``generator`` (default: the global one)."""
    g = _random.resolve(generator)
    dt = _dtype(dtype)
    arr = g.random(_shape_args(shape), dtype=dt if dt in (np.float32, np.float64)
                   else np.float64).astype(dt, copy=False)
    return Tensor(arr, requires_grad=requires_grad, dtype=dtype)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def empty_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return empty(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randn_like(t: Tensor, dtype=None, generator=None, requires_grad: bool = False) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, generator=generator,
                 requires_grad=requires_grad)


def rand_like(t: Tensor, dtype=None, generator=None, requires_grad: bool = False) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype, generator=generator, requires_grad=requires_grad)
