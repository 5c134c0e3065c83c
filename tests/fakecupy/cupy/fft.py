"""Fake ``cupy.fft`` (NumPy's on device arrays)."""

from __future__ import annotations

import numpy as _np
from cupy import _wrap

for _n in ("fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn",
           "rfftn", "irfftn", "fftshift", "ifftshift"):
    globals()[_n] = _wrap(getattr(_np.fft, _n))
del _n
