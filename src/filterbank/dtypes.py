"""Dtype names as in PyTorch (``fb.float32``, ``fb.int64``, ...).

They are NumPy's own scalar types, so ``fb.zeros(2, dtype=fb.int64)``, ``t.to(fb.float64)``,
``t.dtype == fb.float32`` and ``np.zeros(2, fb.float32)`` all work; a tensor's ``dtype`` is the
matching :class:`numpy.dtype`.

Example:
    >>> import filterbank as fb
    >>> fb.zeros(2, dtype=fb.int64).dtype == fb.int64
    True
"""

from __future__ import annotations

import numpy as np

float16 = np.float16
float32 = np.float32
float64 = np.float64
int8 = np.int8
int16 = np.int16
int32 = np.int32
int64 = np.int64
uint8 = np.uint8
bool = np.bool_  # noqa: A001 - PyTorch's name (torch.bool)

# PyTorch's other names for the same types
half = float16
double = float64
long = int64

__all__ = ["bool", "double", "float16", "float32", "float64", "half", "int8", "int16", "int32",
           "int64", "long", "uint8"]
