"""Fake ``cupy.linalg``: the functions CuPy has, NumPy's on device arrays."""

from __future__ import annotations

import numpy as _np
from cupy import _wrap

for _n in ("norm", "inv", "pinv", "solve", "det", "slogdet", "svd", "qr", "cholesky", "eigh",
           "eigvalsh", "matrix_power", "matrix_rank", "lstsq", "tensorsolve", "tensorinv"):
    globals()[_n] = _wrap(getattr(_np.linalg, _n))
LinAlgError = _np.linalg.LinAlgError
del _n
