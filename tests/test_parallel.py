"""filterbank._parallel: large elementwise passes split over threads give the serial results.

Each registered op runs on an input above ``MIN_ELEMENTS`` twice, with 1 thread (serial path)
and with 3 threads (split path; 3 so that uneven slices are exercised), forward and backward;
outputs and input gradients must agree (exactly for pure elementwise ops, to float32 rounding
where a reduction's partial sums are added in a different order).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import threadpoolctl
from harness import assert_close

import filterbank as fb
import filterbank.functional as F
from filterbank import _parallel


@pytest.mark.parametrize("rows,n,align", [(10, 3, 1), (7, 7, 1), (64, 2, 16), (5, 8, 1),
                                          (100, 3, 32)])
def test_split_covers_rows_in_order(rows, n, align):
    ranges = _parallel.split(rows, n, align)
    assert ranges[0][0] == 0 and ranges[-1][1] == rows
    assert all(a < b for a, b in ranges)
    assert all(b == c for (_, b), (c, _) in zip(ranges, ranges[1:]))
    assert all(a % align == 0 for a, _ in ranges)
    assert len(ranges) <= n


def test_run_returns_results_in_chunk_order(monkeypatch):
    monkeypatch.setenv("FILTERBANK_NUM_THREADS", "4")
    for rows in (8, 100, 1000):
        out = _parallel.run(lambda s, e: (s, e), rows, _parallel.MIN_ELEMENTS * 8)
        assert len(out) > 4  # several chunks per thread
        assert out[0][0] == 0 and out[-1][1] == rows
        assert all(b == c for (_, b), (c, _) in zip(out, out[1:]))
    assert _parallel.run(lambda s, e: (s, e), 8, 10) == [(0, 8)]  # small work: not split


def test_run_propagates_errors_and_finishes_other_chunks(monkeypatch):
    monkeypatch.setenv("FILTERBANK_NUM_THREADS", "2")
    done = []

    def fn(s, e):
        if s == 0:
            raise ValueError("chunk 0")
        done.append(s)

    with pytest.raises(ValueError, match="chunk 0"):
        _parallel.run(fn, 16, _parallel.MIN_ELEMENTS * 4)


def test_num_threads_env(monkeypatch):
    monkeypatch.setenv("FILTERBANK_NUM_THREADS", "1")
    assert _parallel.parts(64, 10 ** 8) == 1
    monkeypatch.setenv("FILTERBANK_NUM_THREADS", "2")
    assert _parallel.parts(64, 10 ** 8) == 2


@dataclass
class ParCase:
    name: str
    fn: Callable  # (inputs...) -> Tensor
    shapes: list
    exact: bool = True


def _bn_train(x, w, b):
    return F.batch_norm(x, None, None, w, b, training=True)


def _bn_eval(x, w, b):
    c = x.shape[1]
    rm = fb.Tensor(np.linspace(-0.5, 0.5, c, dtype=np.float32))
    rv = fb.Tensor(np.linspace(0.5, 2.0, c, dtype=np.float32))
    return F.batch_norm(x, rm, rv, w, b, training=False)


BIG = (8, 16, 96, 72)  # 884,736 elements, above MIN_ELEMENTS (786,432)
CASES = [
    ParCase("relu", F.relu, [BIG]),
    ParCase("add", F.add, [BIG, BIG]),
    ParCase("max_pool2d k2", lambda x: F.max_pool2d(x, 2), [(8, 16, 128, 72)]),
    ParCase("max_pool2d k3 s2 p1", lambda x: F.max_pool2d(x, 3, 2, 1), [(8, 16, 128, 72)]),
    ParCase("batch_norm train", _bn_train, [(8, 16, 128, 72), (16,), (16,)], exact=False),
    ParCase("batch_norm eval", _bn_eval, [(8, 16, 128, 72), (16,), (16,)], exact=False),
]


def _run(case: ParCase, threads: int, monkeypatch):
    monkeypatch.setenv("FILTERBANK_NUM_THREADS", str(threads))
    rng = np.random.default_rng(0)
    inputs = [fb.Tensor(rng.standard_normal(s, dtype=np.float32), requires_grad=True)
              for s in case.shapes]
    y = case.fn(*inputs)
    gy = rng.standard_normal(y.shape, dtype=np.float32)
    y.backward(fb.Tensor(gy))
    return y.detach().numpy(), [t.grad.numpy() for t in inputs]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_threaded_equals_serial(case, monkeypatch):
    calls = []
    real = _parallel.run

    def counting(fn, rows, elements, align=1):
        calls.append(_parallel.parts(rows, elements))
        return real(fn, rows, elements, align)

    monkeypatch.setattr(_parallel, "run", counting)
    y1, g1 = _run(case, 1, monkeypatch)
    assert max(calls, default=1) == 1
    calls.clear()
    y3, g3 = _run(case, 3, monkeypatch)
    assert max(calls) > 1, "the threaded path was not taken"
    assert y1.dtype == y3.dtype == np.float32
    for a, b in zip([y1, *g1], [y3, *g3]):
        if case.exact:
            np.testing.assert_array_equal(a, b)
        else:
            assert_close(b, a, rtol=1e-5, atol=1e-5)


def _blas_libs():
    libs = _parallel.blas_control()
    if libs is None:
        pytest.skip("no BLAS whose thread count can be set")
    return libs


def _blas_info() -> list[int]:
    """Thread counts as threadpoolctl's own public API reports them (an independent read)."""
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
            if lib["user_api"] == "blas"]


def test_blas_single_threaded_sets_and_restores():
    libs = _blas_libs()
    before = [lib.get_num_threads() for lib in libs]
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        with _parallel.blas_single_threaded():
            assert _blas_info() == [1] * len(libs)
        assert _blas_info() == [2] * len(libs)
        with _parallel.blas_single_threaded(enabled=False):
            assert _blas_info() == [2] * len(libs)
        with pytest.raises(RuntimeError), _parallel.blas_single_threaded():
            raise RuntimeError("restored on errors too")
        assert _blas_info() == [2] * len(libs)
        with _parallel.blas_threads(4):  # a cap, never a raise
            assert _blas_info() == [2] * len(libs)
        with _parallel.blas_threads(1):
            assert _blas_info() == [1] * len(libs)
            with _parallel.blas_threads(2):  # nested (conv's pool inside its BLAS block)
                assert _blas_info() == [1] * len(libs)
            assert _blas_info() == [1] * len(libs)
        assert _blas_info() == [2] * len(libs)
    assert [lib.get_num_threads() for lib in libs] == before


def test_blas_threads_work_from_another_thread_afterwards():
    # threadpoolctl >= 3.8 lets one Python thread at a time set a pthreads OpenBLAS; a block
    # must hand that control back, or a later block on another thread would do nothing
    libs = _blas_libs()
    seen = []

    def other():
        with _parallel.blas_threads(1):
            seen.append([lib.get_num_threads() for lib in libs])

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        with _parallel.blas_threads(1):
            pass
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert _blas_info() == [2] * len(libs)
    assert seen == [[1] * len(libs)]


def test_blas_lookup_is_done_once(monkeypatch):
    made = []

    class Counting(threadpoolctl.ThreadpoolController):
        def __init__(self):
            made.append(1)
            super().__init__()

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Counting)
    monkeypatch.setattr(_parallel, "_blas", False)
    for _ in range(3):
        with _parallel.blas_single_threaded():
            pass
    assert _parallel.blas_control() is _parallel.blas_control()
    assert len(made) == 1


def test_without_a_controllable_blas_blocks_do_nothing_and_conv_runs_serially(monkeypatch):
    monkeypatch.setattr(_parallel, "_blas", None)
    with _parallel.blas_threads(1), _parallel.blas_single_threaded():
        pass
    assert _parallel.workers(8) == 1
