"""The array-module seam.

Every op works on raw arrays through ``xp`` (NumPy today). A CuPy array can stand in later by
making :func:`get_array_module` return ``cupy`` for CuPy inputs; nothing else in the library
imports NumPy's array constructors for tensor data directly.
"""

from __future__ import annotations

import numpy as np

xp = np

DEFAULT_DTYPE = np.dtype(np.float32)


def get_array_module(*arrays):
    """Return the array module (``numpy`` or ``cupy``) that owns ``arrays``."""
    for a in arrays:
        mod = type(a).__module__
        if mod.startswith("cupy"):
            import cupy  # noqa: PLC0415  (optional, only when CuPy arrays are passed)

            return cupy
    return np


def is_floating(dtype) -> bool:
    return np.issubdtype(dtype, np.floating)
