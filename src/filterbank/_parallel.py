"""Large elementwise passes split over a few threads.

NumPy releases the GIL inside ufunc loops, so the rows of a big array can be processed by
several threads at once: each thread runs the same whole-array NumPy calls on its own slice
along axis 0 (a handful of slices, never per-sample work). PyTorch does the same with OpenMP
for its pointwise kernels; without it, batch norm, ReLU, pooling and residual additions run on
one core while the convolutions use all of them.

Arrays under ``MIN_ELEMENTS`` run on the calling thread: below that, handing out the work costs
more than it saves. ``FILTERBANK_NUM_THREADS`` caps the thread count (default: the CPUs this
process may use; 1 turns the splitting off).

The work is cut into a few chunks per thread (never under ``CHUNK_ELEMENTS`` values) that the
threads take from a shared queue, the calling thread included; a helper thread that has not
started by the time the queue is empty is cancelled instead of waited for. On a busy machine,
where a helper may wait a whole scheduler time slice for a core, the calling thread simply
does all the chunks itself. Chunk boundaries depend only on the sizes and the thread count, and
per-chunk results are combined in chunk order, so results do not depend on which thread ran
what.

:func:`blas_single_threaded` runs small BLAS calls (the GEMMs of small linear layers, batch
norm's matrix-vector sums) on one thread: OpenBLAS threads even a 3 MFLOP GEMM, and its worker
thread then has to be scheduled before the call can return. On a busy machine that wait is a
whole scheduler time slice: a 64x400x120 GEMM took 12-16 ms with two OpenBLAS threads against
0.06 ms with one while other processes kept the second core busy.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext

#: Work below this many elements (per call) is not split: measured on 2 idle cores, a ReLU
#: of 0.4M float32 values got slower split (146 -> 185 us), 0.8M faster (350 -> 283 us), 4M
#: 1.8x faster.
MIN_ELEMENTS = 3 << 18
#: Smallest chunk handed to a thread, and chunks per thread.
CHUNK_ELEMENTS = 1 << 17
CHUNKS_PER_THREAD = 4

_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None


def num_threads() -> int:
    env = os.environ.get("FILTERBANK_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _executor(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid() or _pool._max_workers < n:
        # a forked child must not use its parent's (absent) threads
        _pool = ThreadPoolExecutor(n, thread_name_prefix="filterbank-ew")
        _pool_pid = os.getpid()
    return _pool


def parts(rows: int, elements: int) -> int:
    """How many threads share ``rows`` rows (``elements`` values in all): 1 means no split."""
    if elements < MIN_ELEMENTS or rows < 2:
        return 1
    return max(1, min(num_threads(), rows, elements // (MIN_ELEMENTS // 2)))


def split(rows: int, n: int, align: int = 1) -> list[tuple[int, int]]:
    """``n`` contiguous ``(start, stop)`` ranges covering ``range(rows)``, boundaries on
    multiples of ``align`` (except the end)."""
    units = -(-rows // align)
    bounds = [min(rows, (units * i // n) * align) for i in range(n + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def run(fn: Callable[[int, int], object], rows: int, elements: int, align: int = 1) -> list:
    """Call ``fn(start, stop)`` over chunks of ``range(rows)``, on several threads when the
    work is large enough; returns the results in chunk order. ``fn`` must only write its own
    rows."""
    n = parts(rows, elements)
    if n == 1:
        return [fn(0, rows)]
    k = max(n, min(rows, n * CHUNKS_PER_THREAD, elements // CHUNK_ELEMENTS))
    ranges = split(rows, k, align)
    results: list = [None] * len(ranges)
    queue = iter(range(len(ranges)))  # next() on a range iterator is atomic under the GIL

    def drain():
        for i in queue:
            results[i] = fn(*ranges[i])

    pool = _executor(n - 1)
    helpers = [pool.submit(drain) for _ in range(n - 1)]
    try:
        drain()
    finally:
        for f in helpers:
            if not f.cancel():  # started: it finishes the chunk it holds
                f.result()
    return results


# ----------------------------------------------------------------------------- BLAS threads
#: GEMMs below this many multiply-adds run with one BLAS thread (a thread hand-off costs more).
SMALL_GEMM = 1 << 24

_blas: tuple | None | bool = False  # False: not looked up yet; None: no OpenBLAS to control


def blas_control():
    """``(set_num_threads, get_num_threads)`` of the OpenBLAS NumPy uses, or None."""
    global _blas
    if _blas is False:
        _blas = None
        try:
            with open("/proc/self/maps") as maps:
                paths = {line.split(None, 5)[-1].strip() for line in maps
                         if "openblas" in line.lower()}
        except OSError:  # pragma: no cover - not on Linux
            paths = set()
        libs = []
        for path in sorted(paths, key=lambda p: ("numpy" not in p, p)):  # NumPy's first
            try:
                libs.append(ctypes.CDLL(path))
            except OSError:  # pragma: no cover
                continue
        # the wheel's scipy_openblas first: another OpenBLAS (not NumPy's) would not help
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "")):
            for lib in libs:
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    _blas = (setter, getter)
                    return _blas
    return _blas


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """BLAS on at most ``n`` threads inside the block (main thread only; restored after)."""
    ctl = blas_control()
    if ctl is None:
        yield
        return
    setter, getter = ctl
    previous = getter()
    if previous <= n:
        yield
        return
    setter(n)
    try:
        yield
    finally:
        setter(previous)


def blas_single_threaded(enabled: bool = True):
    """BLAS on one thread inside the block (main thread only; restored after); a no-op
    block when ``enabled`` is false."""
    return blas_threads(1) if enabled else nullcontext()
