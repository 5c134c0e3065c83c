"""Fake ``cupy.random``: a seeded generator whose numbers are NumPy's, on the device.

(CuPy's own streams differ from NumPy's; filterbank draws on the host and moves the numbers,
so that CPU and GPU runs see the same ones.)
"""

from __future__ import annotations

import numpy as _np


class Generator:
    def __init__(self, seed=None):
        self._rng = _np.random.default_rng(seed)

    def __getattr__(self, name):
        draw = getattr(self._rng, name)

        def f(*args, **kwargs):
            from cupy import _to_device

            return _to_device(_np.asarray(draw(*args, **kwargs)))

        return f


def default_rng(seed=None) -> Generator:
    return Generator(seed)
