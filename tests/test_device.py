"""fb.device, the dtype names and the .to(...) argument parsing; "cuda" where CuPy is absent
(hidden here, so these run the same on every machine). Moving data with a (fake) CuPy:
test_device_fake.py."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import filterbank as fb
from filterbank.device import parse_to_args


def test_cpu_device_forms_compare_and_print_like_torch():
    d = fb.device("cpu")
    assert str(d) == "cpu" and repr(d) == "device(type='cpu')" and d.type == "cpu"
    assert d == "cpu" and d == fb.device("cpu") and d == fb.device(d)
    assert fb.device("cpu:0") == "cpu" and str(fb.device("cpu", 0)) == "cpu:0"
    assert d != "cuda" and d != 3 and hash(d) == hash(fb.device("cpu:0"))
    assert fb.ones(2).device == "cpu"


def test_device_matches_torch_str_and_type():
    torch = pytest.importorskip("torch")
    for name in ("cpu", "cpu:0"):
        assert str(fb.device(name)) == str(torch.device(name))
        assert fb.device(name).type == torch.device(name).type
        assert fb.device(name).index == torch.device(name).index


def test_cuda_descriptors_need_no_gpu_and_match_torch():
    # like torch.device("cuda"): a descriptor is made anywhere; moving data needs the GPU
    torch = pytest.importorskip("torch")
    for name in ("cuda", "cuda:0", "cuda:3"):
        d, t = fb.device(name), torch.device(name)
        assert (str(d), d.type, d.index) == (str(t), t.type, t.index)
    assert fb.device("cuda", 1) == "cuda:1" and fb.device("cuda") == fb.device("cuda:0")
    assert fb.device("cuda") != "cpu" and hash(fb.device("cuda:1")) != hash(fb.device("cpu"))
    assert repr(fb.device("cuda:1")) == "device(type='cuda', index=1)"


@pytest.mark.parametrize("name, match", [
    ("mps", r"device: 'mps' is not available: filterbank's GPU backend is CUDA through CuPy"),
    ("xpu:0", r"device: 'xpu:0' is not available: filterbank's GPU backend is CUDA"),
    ("tpu", r"device: unknown device 'tpu'; expected 'cpu' or 'cuda'"),
    ("cpu:x", r"device: invalid device string 'cpu:x'"),
    ("cuda:-1", r"device: invalid device string 'cuda:-1'"),
    ("cpu:1", r"device: there is only one CPU device \(index 0\), got index 1"),
])
def test_other_devices_raise(name, match):
    with pytest.raises(ValueError, match=match):
        fb.device(name)


def test_device_rejects_non_strings():
    with pytest.raises(TypeError, match=r"device: expected a device name such as 'cpu', got int"):
        fb.device(0)


def test_dtype_names_are_numpy_types_and_work_everywhere():
    for name, want in [("float32", np.float32), ("float64", np.float64), ("float16", np.float16),
                       ("int64", np.int64), ("int32", np.int32), ("uint8", np.uint8),
                       ("bool", np.bool_), ("double", np.float64), ("long", np.int64),
                       ("half", np.float16)]:
        assert getattr(fb, name) is want
    assert fb.zeros(2, dtype=fb.int64).dtype == fb.int64
    assert fb.ones(2).to(fb.float64).dtype == np.float64
    assert fb.ones(2).dtype == fb.float32


def test_dtype_names_match_torch_names():
    torch = pytest.importorskip("torch")
    for name in ("float32", "float64", "float16", "int64", "int32", "uint8", "bool", "double",
                 "long", "half"):
        t = torch.zeros(1, dtype=getattr(torch, name))
        assert np.dtype(getattr(fb, name)) == t.numpy().dtype


@pytest.mark.parametrize("args, kwargs, want", [
    (("cpu",), {}, ("cpu", None)),
    ((fb.float64,), {}, (None, np.float64)),
    (("float64",), {}, (None, np.float64)),
    (("cpu", fb.float16), {}, ("cpu", np.float16)),
    ((), {"device": "cpu", "dtype": "int64", "non_blocking": True}, ("cpu", np.int64)),
    ((fb.zeros(1, dtype=fb.int32),), {}, ("cpu", np.int32)),
])
def test_parse_to_args(args, kwargs, want):
    dev, dtype = parse_to_args("x.to", *args, **kwargs)
    assert (None if dev is None else str(dev)) == want[0]
    assert dtype == (None if want[1] is None else np.dtype(want[1]))


@pytest.mark.parametrize("args, kwargs, exc, match", [
    (("mps",), {}, ValueError, r"GPU backend is CUDA through CuPy"),
    (("cpu", "cpu"), {}, TypeError, r"x.to: device given twice"),
    ((1, 2, 3), {}, TypeError, r"x.to: expected at most a device and a dtype"),
    ((), {"colour": 1}, TypeError, r"x.to: unexpected keyword argument\(s\) \['colour'\]"),
    ((object(),), {}, TypeError, r"x.to: expected a dtype or a device"),
])
def test_parse_to_args_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        parse_to_args("x.to", *args, **kwargs)


@pytest.fixture
def no_cupy(monkeypatch):
    """A machine without CuPy, wherever the test runs (``import cupy`` raises ImportError)."""
    monkeypatch.setitem(sys.modules, "cupy", None)


NO_CUPY = (r"device 'cuda(:0)?' is not available: CuPy is not installed; install "
           r"filterbank\[cuda12\] or filterbank\[cuda13\]")


def test_cuda_queries_answer_false_without_cupy(no_cupy):
    assert fb.cuda.is_available() is False and fb.cuda.device_count() == 0
    fb.cuda.synchronize()  # nothing to wait for


@pytest.mark.parametrize("call", [
    lambda: fb.ones(2).to("cuda"),
    lambda: fb.ones(2).cuda(),
    lambda: fb.ones(2, device="cuda"),
    lambda: fb.zeros_like(fb.ones(2), device="cuda:0"),
    lambda: fb.nn.Linear(2, 2).to("cuda"),
    lambda: fb.nn.Linear(2, 2).cuda(),
])
def test_using_cuda_without_cupy_says_what_to_install(no_cupy, call):
    # a ValueError (filterbank's convention) that is also PyTorch's RuntimeError
    with pytest.raises(ValueError, match=NO_CUPY) as info:
        call()
    assert isinstance(info.value, RuntimeError)


def test_a_failed_module_move_leaves_the_module_as_it_was(no_cupy):
    m = fb.nn.Linear(2, 2)
    before = m.weight.data
    with pytest.raises(ValueError, match=NO_CUPY):
        m.to("cuda", fb.float64)
    assert m.weight.data is before and m.weight.dtype == np.float32


def test_cpu_moves_are_no_ops_and_to_tensor_takes_its_device():
    x = fb.ones(2, requires_grad=True)
    assert x.to("cpu") is x and x.cpu() is x and x.to(fb.device("cpu:0")) is x
    assert not x.is_cuda and x.to("cpu", copy=True) is not x
    dev, dtype = parse_to_args("x.to", x)
    assert dev == "cpu" and dtype == np.float32
    with pytest.raises(ValueError, match=r"cuda\(\): expected a GPU index or a 'cuda' device, "
                                         r"got 'cpu'"):
        x.cuda("cpu")


def test_check_same_device_on_host_arrays_and_scalars():
    from filterbank.backend import check_same_device, device_of, to_device, to_numpy

    a = np.ones(2)
    check_same_device("add", a, 2.0, None, np.float32(1), a)
    assert device_of(a) == "cpu" and to_device(a, "cpu") is a and to_numpy(a) is a


def test_docstring_examples_run():
    import doctest
    import importlib

    # fb.device is the class, which hides the module of the same name: import it by path
    for name in ("filterbank.device", "filterbank.dtypes", "filterbank.functional.index",
                 "filterbank.functional.distance", "filterbank.functional.fold",
                 "filterbank.nn.init", "filterbank.nn.utils", "filterbank.nn.module"):
        module = importlib.import_module(name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0
