"""Fake ``cupy.lib.stride_tricks``: CuPy has ``as_strided`` (no ``sliding_window_view``)."""

from __future__ import annotations

import numpy as _np


def as_strided(x, shape=None, strides=None):
    from cupy import _check_no_host, _to_device

    _check_no_host("as_strided", (x,))
    return _to_device(_np.lib.stride_tricks.as_strided(x.view(_np.ndarray), shape, strides))
