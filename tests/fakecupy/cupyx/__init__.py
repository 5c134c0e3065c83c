"""Fake ``cupyx``: ``scatter_add`` / ``scatter_max`` / ``scatter_min`` (``numpy.ufunc.at`` on
device arrays; CuPy does them with atomics)."""

from __future__ import annotations

import numpy as _np


def _scatter(ufunc, a, slices, value):
    import cupy

    if not isinstance(a, cupy.ndarray):
        raise TypeError(f"fake cupyx: scatter into a device array, got {type(a).__name__}")
    cupy._check_no_host("scatter", (value,))
    idx = slices
    if isinstance(idx, tuple):
        idx = tuple(cupy._host_one(i) for i in idx)
    else:
        idx = cupy._host_one(idx)
    ufunc.at(a.view(_np.ndarray), idx, cupy._host_one(value))


def scatter_add(a, slices, value) -> None:
    """``a[slices] += value`` with repeated indices accumulated (``numpy.add.at``)."""
    _scatter(_np.add, a, slices, value)


def scatter_max(a, slices, value) -> None:
    _scatter(_np.maximum, a, slices, value)


def scatter_min(a, slices, value) -> None:
    _scatter(_np.minimum, a, slices, value)
