"""Array-module helpers for ops that run on NumPy and CuPy arrays alike.

An op finds its array module with ``xp = get_array_module(x)`` (:mod:`filterbank.backend`)
and creates arrays through it, so its outputs live where its inputs do. The few things NumPy
and CuPy spell differently, or that only make sense on the host, are here.
"""

from __future__ import annotations

import numpy as np

from filterbank._workspace import workspace as _workspace
from filterbank.backend import get_array_module


def on_host(*arrays) -> bool:
    """Whether ``arrays`` are NumPy arrays (the threaded CPU fast paths apply only then)."""
    return get_array_module(*arrays) is np


def like(x, value, dtype=None):
    """``value`` (a host array, list or scalar) as an array on the device of ``x``."""
    return get_array_module(x).asarray(value, dtype=dtype)


def empty(shape, dtype, like):
    """An uninitialised array on the device of ``like``: from the reusing workspace
    (:mod:`filterbank._workspace`, NumPy only: it reads CPython reference counts) on the
    host, a fresh ``cupy.empty`` on the GPU (CuPy's memory pool already reuses blocks)."""
    if type(like) is np.ndarray:
        return _workspace.empty(shape, dtype)
    return get_array_module(like).empty(shape, dtype)


def zeros(shape, dtype, like):
    """As :func:`empty`, filled with zeros."""
    a = empty(shape, dtype, like)
    a.fill(0)
    return a
