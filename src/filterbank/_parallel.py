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
0.06 ms with one while other processes kept the second core busy. The BLAS thread count is
read and set through threadpoolctl (OpenBLAS, MKL, BLIS and FlexiBLAS alike), its library
lookup done once per process.

:func:`run_tasks` runs a convolution's chunks on the same pool, BLAS on one thread meanwhile:
worker threads that each take a fixed share of the batch chunks (transforms and GEMMs alike)
use every core, whereas BLAS's own threads would only parallelise the GEMMs (and, when another
process takes a core, busy-wait for it). There is one pool per process, shared by both users
(none of them submits from inside a pool thread), sized to ``FILTERBANK_NUM_THREADS``.
Not re-entrant across user threads: run filterbank's threaded ops from one thread at a time.
"""

from __future__ import annotations

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
    """The process's thread pool, with at least ``n`` (and ``num_threads()``) threads."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid() or _pool._max_workers < n:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=False)  # queued work still runs; its threads then exit
        # a forked child must not use its parent's (absent) threads
        _pool = ThreadPoolExecutor(max(n, num_threads()), thread_name_prefix="filterbank")
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


def workers(tasks: int) -> int:
    """How many threads :func:`run_tasks` should spread ``tasks`` independent tasks over: up to
    ``num_threads()``, and 1 without a BLAS whose threads can be switched off meanwhile (its
    own threads would then compete with ours)."""
    n = min(tasks, num_threads())
    return n if n > 1 and blas_control() is not None else 1


def run_tasks(task: Callable[[int], object], n: int) -> None:
    """``task(i)`` for i in range(n), each on a pool thread when n > 1 (BLAS on one thread
    meanwhile), else on the calling thread. ``n`` comes from :func:`workers`; the caller
    gives each task a fixed share of the work (results must not depend on thread timing)."""
    if n <= 1:
        task(0)
        return
    pool = _executor(n)
    with blas_threads(1):
        futures = [pool.submit(task, i) for i in range(n)]
        for f in futures:
            f.result()


# ----------------------------------------------------------------------------- BLAS threads
#: GEMMs below this many multiply-adds run with one BLAS thread (a thread hand-off costs more).
SMALL_GEMM = 1 << 24

_blas: tuple | None | bool = False  # False: not looked up yet; None: no BLAS to control
_release_control = None  # threadpoolctl >= 3.8: OpenBLASController.clear_controlling_thread


def blas_control() -> tuple | None:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (OpenBLAS,
    MKL, BLIS, FlexiBLAS; each has ``get_num_threads()`` / ``set_num_threads(n)``), or None
    when there is none whose thread count can be set.

    Looked up once and cached: scanning the loaded libraries takes milliseconds, the calls on
    a found library take a microsecond. A BLAS loaded later (after the first convolution) is
    not seen; NumPy's is loaded with NumPy.
    """
    global _blas, _release_control
    if _blas is False:
        import threadpoolctl

        libs = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
        _blas = tuple(lib for lib in libs if lib.get_num_threads() is not None) or None
        # threadpoolctl >= 3.8 lets one Python thread at a time set a pthreads OpenBLAS's
        # (process-wide) pool, and its own limit blocks hand that control back when they
        # end; ours do the same, so that limits set later from another thread still work
        _release_control = getattr(threadpoolctl.OpenBLASController,
                                   "clear_controlling_thread", None)
    return _blas


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """BLAS on at most ``n`` threads inside the block, restored after (a cap: a library on
    fewer threads is left alone). Set from the calling thread: run it from one thread at a
    time, as the rest of filterbank's threading.

    This is ``threadpoolctl.threadpool_limits(n, user_api="blas")`` without its cost on the
    hot path (a convolution or a small linear layer enters one such block per call): the
    controllers are looked up once (:func:`blas_control`) and only libraries above the cap
    are touched, 2-3 us per block instead of ~7 us.
    """
    libs = blas_control()
    if libs is None:
        yield
        return
    changed = []
    try:
        for lib in libs:
            previous = lib.get_num_threads()
            if previous > n:
                changed.append((lib, previous))
                lib.set_num_threads(n)
        yield
    finally:
        if changed:
            for lib, previous in reversed(changed):
                lib.set_num_threads(previous)
            if _release_control is not None:
                _release_control()


def blas_single_threaded(enabled: bool = True):
    """BLAS on one thread inside the block (restored after); a no-op block when ``enabled``
    is false."""
    return blas_threads(1) if enabled else nullcontext()
