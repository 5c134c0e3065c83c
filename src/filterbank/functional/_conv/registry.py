"""The convolution algorithms and the rule that picks one per convolution.

``ALGORITHMS`` lists them in priority order. :func:`choose` returns the first whose measured
rule (``preferred``) holds for the convolution's :class:`~.geometry._Geometry`; im2col, last,
runs every convolution and is always preferred, so something is always picked. A forced name
(``functional.conv._FORCE_ALGO``, used by the tests and ``bench/conv_algos.py``) skips the
measured rule and only checks that the algorithm can compute the convolution at all
(``applies``).

Extending: an algorithm is a class with

* ``applies(g) -> bool``: whether it computes this convolution at all (shape, stride,
  dilation, groups), checked when it is forced;
* ``preferred(g, itemsize) -> bool``: the measured rule, true where ``bench/conv_algos.py``
  shows it faster than the algorithms after it in ``ALGORITHMS`` (cite the figures next to
  the rule); it must imply ``applies``;
* ``REQUIRES``: ``applies`` in words, for the error when it is forced where it does not apply;
* ``forward(fn, x, w, b, g) -> y`` and ``backward(fn, gy, g) -> (dx, dw, db)``, on raw
  arrays, saving what backward needs on ``fn`` (the ``ConvNd`` node) and honouring
  ``fn.needs_input_grad``;
* optionally ``BLAS_THREADS = True`` when it makes one big GEMM per direction for BLAS's own
  threads to share; otherwise it runs under single-threaded BLAS and may spread its chunks
  over :func:`filterbank._parallel.run_tasks`.

Add it as ``Algorithm("name", Class)`` to ``ALGORITHMS`` (in its own module under
``functional/_conv/``), before the entries it beats where its rule holds: the order is the
tie-break. ``bench/conv_algos.py`` times every registered algorithm that applies; add it to
``ALGOS`` and its grid in ``tests/functional/test_conv_algorithms.py`` (forced: gradcheck,
PyTorch, float64 im2col), and pin its picks in
``tests/functional/test_conv_registry.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from filterbank import _parallel
from filterbank.functional._conv.geometry import _Geometry
from filterbank.functional._conv.im2col import _Im2col
from filterbank.functional._conv.nhwc import Im2colNHWC
from filterbank.functional._conv.shifted import ShiftedGemm
from filterbank.functional._conv.toeplitz import _RowToeplitz
from filterbank.functional._conv.winograd import _Winograd
from filterbank.functional._conv.winograd43 import Winograd43


@dataclass(frozen=True)
class Algorithm:
    """One registry entry: a name (what ``_FORCE_ALGO`` and the benchmark call it) and the
    class that implements it (see the module docstring for what the class provides)."""

    name: str
    impl: type

    def applies(self, g: _Geometry) -> bool:
        return self.impl.applies(g)

    def preferred(self, g: _Geometry, itemsize: int = 4) -> bool:
        return self.impl.preferred(g, itemsize)

    def blas(self):
        """The BLAS threading the algorithm runs under: BLAS's own threads (capped at
        ``FILTERBANK_NUM_THREADS``) for one big GEMM per direction, else one thread (chunks
        on filterbank's pool; a single multi-threaded BLAS call, even a small einsum, would
        wake OpenBLAS's worker, which then spins for ~0.1 s on a core the pool needs)."""
        if getattr(self.impl, "BLAS_THREADS", False):
            return _parallel.blas_threads(_parallel.num_threads())
        return _parallel.blas_threads(1)


#: Priority order; the last entry must apply to every convolution.
ALGORITHMS: list[Algorithm] = [
    Algorithm("winograd43", Winograd43),  # 32-128 channels (Winograd43.preferred)
    Algorithm("winograd", _Winograd),
    Algorithm("nhwc", Im2colNHWC),  # small feature maps (Im2colNHWC.preferred)
    Algorithm("toeplitz", _RowToeplitz),
    Algorithm("shifted", ShiftedGemm),  # never preferred: forced only
    Algorithm("im2col", _Im2col),
]


def get(name: str) -> Algorithm:
    for algo in ALGORITHMS:
        if algo.name == name:
            return algo
    raise ValueError(f"conv: expected an algorithm in {[a.name for a in ALGORITHMS]}, got "
                     f"{name!r}")


def choose(g: _Geometry, itemsize: int = 4, force: str | None = None) -> Algorithm:
    """The algorithm for ``g``: ``force`` if given (it must apply), else the first in
    ``ALGORITHMS`` whose measured rule prefers it."""
    if force is not None:
        algo = get(force)
        if not algo.applies(g):
            raise ValueError(f"conv: algorithm {force!r} needs {algo.impl.REQUIRES}, got "
                             f"kernel {g.K}, stride {g.stride}, dilation {g.dilation}, "
                             f"groups {g.groups}")
        return algo
    return next(a for a in ALGORITHMS if a.preferred(g, itemsize))
