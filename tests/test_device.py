"""fb.device ("cpu" only for now), the dtype names and the .to(...) argument parsing."""

from __future__ import annotations

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


@pytest.mark.parametrize("name, match", [
    ("cuda", r"device: 'cuda' is not available: filterbank has no GPU backend yet"),
    ("cuda:1", r"device: 'cuda:1' is not available: filterbank has no GPU backend yet"),
    ("mps", r"no GPU backend yet"),
    ("tpu", r"device: unknown device 'tpu'; expected 'cpu'"),
    ("cpu:x", r"device: invalid device string 'cpu:x'"),
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
    (("cuda",), {}, ValueError, r"no GPU backend yet"),
    (("cpu", "cpu"), {}, TypeError, r"x.to: device given twice"),
    ((1, 2, 3), {}, TypeError, r"x.to: expected at most a device and a dtype"),
    ((), {"colour": 1}, TypeError, r"x.to: unexpected keyword argument\(s\) \['colour'\]"),
    ((object(),), {}, TypeError, r"x.to: expected a dtype or a device"),
])
def test_parse_to_args_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        parse_to_args("x.to", *args, **kwargs)


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
