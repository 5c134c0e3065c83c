"""The fake CuPy is strict where CuPy is: a host array mixed into device arithmetic raises,
NumPy functions CuPy lacks raise, conversions are explicit, and the switch leaves no trace."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fakecupy import (  # noqa: F401  (the fixtures fake_cupy and fake_cupy_no_gpu)
    fake_cupy_fixture,
    fake_cupy_no_gpu_fixture,
    installed,
)


def test_device_arrays_route_to_the_fake(fake_cupy):
    from filterbank.backend import get_array_module

    a = fake_cupy.asarray(np.arange(6.0).reshape(2, 3))
    assert type(a).__module__ == "cupy"
    assert get_array_module(a) is fake_cupy
    assert get_array_module(a.get()) is np


@pytest.mark.parametrize("mix", [
    lambda a: a + np.ones(3),
    lambda a: np.ones(3) * a,
    lambda a: a - np.array(1.0),  # 0-d host arrays too (CuPy: Unsupported type)
    lambda a: np.maximum(a, np.zeros((2, 3))),
    lambda a: np.concatenate([a, np.ones((2, 3))]),
    lambda a: np.where(a > 1, a, np.zeros(3)),
    lambda a: np.exp(a, out=np.empty((2, 3))),
], ids=["add", "radd", "0-d", "maximum", "concatenate", "where", "out"])
def test_mixing_a_host_array_raises(fake_cupy, mix):
    a = fake_cupy.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        mix(a)


def test_scalars_mix_and_results_stay_on_the_device(fake_cupy):
    a = fake_cupy.asarray(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    for r in (a + 1, a * np.float32(2), np.exp(a), a.sum(), a[0, 0], np.sum(a, axis=0),
              np.concatenate([a, a]), a.astype(np.float64), a.max(), a > 0, a[[0, 1]]):
        assert isinstance(r, fake_cupy.ndarray), type(r)
    assert a.sum().shape == ()  # CuPy has no scalars: reductions give 0-d device arrays


def test_what_cupy_lacks_raises(fake_cupy):
    a = fake_cupy.asarray(np.zeros(4))
    with pytest.raises(TypeError, match="scatter_add"):
        np.add.at(a, fake_cupy.asarray([0, 0]), 1.0)
    with pytest.raises(TypeError, match="no implementation found"):
        np.lib.stride_tricks.sliding_window_view(a, 2)


def test_conversions_are_explicit(fake_cupy):
    host = np.arange(4.0, dtype=np.float32)
    a = fake_cupy.asarray(host)
    assert isinstance(a, fake_cupy.ndarray)
    back = a.get()
    assert type(back) is np.ndarray and back.dtype == np.float32
    np.testing.assert_array_equal(back, host)
    assert type(fake_cupy.asnumpy(a)) is np.ndarray
    back[0] = 99  # a copy, not a view of the device array
    assert float(a[0]) == 0.0


def test_scatter_add_accumulates_repeats(fake_cupy):
    import cupyx

    z = fake_cupy.zeros(4, dtype=np.float32)
    cupyx.scatter_add(z, fake_cupy.asarray([1, 1, 2]), fake_cupy.asarray([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(z.get(), [0, 3, 3, 0])


def test_cuda_runtime(fake_cupy):
    assert fake_cupy.cuda.is_available()
    assert fake_cupy.cuda.runtime.getDeviceCount() == 1
    with fake_cupy.cuda.Device(0) as d:
        assert d.id == 0
    with pytest.raises(fake_cupy.cuda.runtime.CUDARuntimeError):
        fake_cupy.cuda.Device(1).use()


def test_no_gpu(fake_cupy_no_gpu):
    assert not fake_cupy_no_gpu.cuda.is_available()
    with pytest.raises(fake_cupy_no_gpu.cuda.runtime.CUDARuntimeError, match="no CUDA"):
        fake_cupy_no_gpu.cuda.runtime.getDeviceCount()


def test_switching_off_leaves_no_trace():
    before_path = list(sys.path)
    before = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("cupy", "cupyx")}
    with installed() as cupy:
        assert sys.modules["cupy"] is cupy
    assert sys.path == before_path
    after = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("cupy", "cupyx")}
    assert after == before
