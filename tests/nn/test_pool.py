"""nn pooling layers against their PyTorch twins: output and input gradient (float32) over a
grid of kernel sizes, strides, padding, dilation, ceil_mode and count_include_pad, plus repr,
float64 gradcheck on a sample, return_indices, construction and input errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from harness import (
    HAS_TORCH,
    ModuleCase,
    assert_close,
    check_module_gradcheck,
    check_module_vs_torch,
)

import filterbank as fb
from filterbank import nn

if HAS_TORCH:  # the oracle: without it only the tests marked needs_torch skip
    import torch

    tnn = torch.nn
else:
    torch = tnn = None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")


def _distinct(rng, shape):
    """A random permutation of values 0.25 apart: no ties inside a max-pool window."""
    n = int(np.prod(shape))
    return rng.permutation(n).reshape(shape) * 0.25 - n / 8


SHAPES = {1: [(2, 3, 7), (1, 2, 6)], 2: [(2, 2, 5, 6), (1, 3, 6, 5)], 3: [(1, 2, 4, 5, 3)]}


def _case(name, cls, *args, shapes, **kw):
    text = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kw.items())])
    return ModuleCase(f"{name}({text})", lambda: getattr(nn, cls)(*args, **kw),
                      lambda: getattr(tnn, cls)(*args, **kw), shapes, make_input=_distinct)


def _cases():
    cases = []
    for nd, kind in itertools.product((1, 2, 3), ("Max", "Avg")):
        cls = f"{kind}Pool{nd}d"
        ks = (1, 2, 3) if nd < 3 else (2, 3)
        strides = (None, 1, 2, 3) if nd < 3 else (None, 2)
        for k, s, p, ceil in itertools.product(ks, strides, (0, 1), (False, True)):
            if p > k // 2:
                continue
            kw = dict(stride=s, padding=p, ceil_mode=ceil)
            if kind == "Max":
                kw["dilation"] = 2 if (k + (s or 0)) % 2 and nd < 3 else 1
            else:
                kw["count_include_pad"] = bool((k + (s or 0) + p) % 2)
            cases.append(_case(cls, cls, k, shapes=SHAPES[nd], **kw))
    cases += [
        _case("MaxPool2d", "MaxPool2d", (3, 2), shapes=[(2, 1, 7, 6)], stride=(2, 1),
              padding=(1, 0), dilation=(1, 2)),
        _case("AvgPool2d", "AvgPool2d", 3, shapes=[(2, 2, 6, 7)], stride=2, padding=1,
              divisor_override=4),
        _case("AvgPool3d", "AvgPool3d", (1, 2, 2), shapes=[(1, 2, 3, 4, 5)],
              divisor_override=3),
        _case("MaxPool2d", "MaxPool2d", 2, shapes=[(3, 6, 4), (2, 4, 8, 8)]),
        _case("AdaptiveAvgPool1d", "AdaptiveAvgPool1d", 3, shapes=[(2, 3, 7), (2, 3, 9)]),
        _case("AdaptiveAvgPool2d", "AdaptiveAvgPool2d", (3, 4),
              shapes=[(2, 2, 7, 6), (1, 2, 6, 8), (1, 2, 2, 3)]),
        _case("AdaptiveAvgPool2d", "AdaptiveAvgPool2d", 1, shapes=[(2, 3, 5, 5)]),
        _case("AdaptiveAvgPool2d", "AdaptiveAvgPool2d", (None, 2), shapes=[(2, 3, 5, 5)]),
        _case("AdaptiveMaxPool2d", "AdaptiveMaxPool2d", (3, 4),
              shapes=[(2, 2, 7, 6), (1, 2, 6, 8), (1, 2, 2, 3)]),
        _case("AdaptiveMaxPool2d", "AdaptiveMaxPool2d", (2, None), shapes=[(3, 5, 4)]),
    ]
    return cases


CASES = _cases()
GRID = [(c, s) for c in CASES for s in c.shapes]


def _id(v):
    return str(v) if isinstance(v, ModuleCase) else "x".join(map(str, v))


@needs_torch
@pytest.mark.parametrize("case, shape", GRID, ids=_id)
def test_vs_torch(case, shape):
    check_module_vs_torch(case, shape)


@pytest.mark.parametrize("case, shape", GRID[::7], ids=_id)
def test_gradcheck(case, shape):
    check_module_gradcheck(case, shape)


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=str)
def test_repr_matches_torch(case):
    assert repr(case.make()) == repr(case.make_torch())


def test_no_parameters_and_empty_state_dict():
    for case in CASES:
        m = case.make()
        assert list(m.parameters()) == [] and len(m.state_dict()) == 0


@needs_torch
def test_global_avg_pool2d_layer():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    want = tnn.Sequential(tnn.AdaptiveAvgPool2d(1), tnn.Flatten())(tx)
    for keepdim, shape in ((False, (2, 3)), (True, (2, 3, 1, 1))):
        xt = fb.Tensor(x, requires_grad=True)
        y = nn.GlobalAvgPool2d(keepdim=keepdim)(xt)
        assert y.shape == shape and y.dtype == np.float32
        assert_close(y.reshape(2, 3), want)
        y.sum().backward()
        assert_close(xt.grad, np.full(x.shape, 1 / 20))
    assert repr(nn.GlobalAvgPool2d()) == "GlobalAvgPool2d()"
    assert repr(nn.GlobalAvgPool2d(keepdim=True)) == "GlobalAvgPool2d(keepdim=True)"


@needs_torch
@pytest.mark.parametrize("ours, theirs", [
    (lambda: nn.MaxPool2d(3, 2, 1, return_indices=True),
     lambda: tnn.MaxPool2d(3, 2, 1, return_indices=True)),
    (lambda: nn.AdaptiveMaxPool2d((3, 2), return_indices=True),
     lambda: tnn.AdaptiveMaxPool2d((3, 2), return_indices=True)),
    (lambda: nn.AdaptiveMaxPool2d(2, return_indices=True),
     lambda: tnn.AdaptiveMaxPool2d(2, return_indices=True)),
])
def test_return_indices(ours, theirs):
    x = _distinct(np.random.default_rng(4), (2, 3, 7, 6)).astype(np.float32)
    xt = fb.Tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    (y, idx), (ty, tidx) = ours()(xt), theirs()(tx)
    assert_close(y, ty)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    y.sum().backward()
    ty.sum().backward()
    assert_close(xt.grad, tx.grad)


def test_float64_module_keeps_float64():
    x = fb.Tensor(np.random.default_rng(0).standard_normal((1, 2, 6, 6)), dtype=np.float64,
                  requires_grad=True)
    for m in (nn.MaxPool2d(2), nn.AvgPool2d(3, 1, 1), nn.AdaptiveAvgPool2d(4),
              nn.AdaptiveMaxPool2d(4)):
        x.grad = None
        y = m(x)
        y.sum().backward()
        assert y.dtype == np.float64 and x.grad.dtype == np.float64


def test_lecture_example_through_layers():
    x = fb.Tensor(np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]],
                           np.float32).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(nn.MaxPool2d(2, stride=2)(x).numpy()[0, 0], [[6, 8], [3, 4]])
    np.testing.assert_array_equal(nn.AvgPool2d(2, stride=2)(x).numpy()[0, 0],
                                  [[3.25, 5.25], [2, 2]])


def test_forward_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=2, stride=2, padding=0, "
                       r"dilation=1, ceil_mode=False\): expected a 3-D \(C, H, W\) or 4-D "
                       r"\(N, C, H, W\) input, got a 2-D tensor of shape \(8, 8\)"):
        nn.MaxPool2d(2)(fb.zeros(8, 8))
    with pytest.raises(ValueError, match=r"AvgPool2d\(kernel_size=5, stride=5, padding=0\): "
                       r"the kernel \(size 5, dilation 1, so 5 wide\) is larger than the padded "
                       r"input along spatial dim 0 \(3 \+ 2\*0 = 3\)"):
        nn.AvgPool2d(5)(fb.zeros(1, 1, 3, 8))
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2d\(output_size=2\): expected a 3-D"):
        nn.AdaptiveAvgPool2d(2)(fb.zeros(4, 4))
    with pytest.raises(ValueError, match=r"GlobalAvgPool2d\(\): expected a 4-D \(N, C, H, W\) "
                       r"input, got a 3-D tensor of shape \(3, 4, 4\)"):
        nn.GlobalAvgPool2d()(fb.zeros(3, 4, 4))


@pytest.mark.parametrize("make, exc, match", [
    (lambda: nn.MaxPool2d(3, padding=2), ValueError,
     r"MaxPool2d: padding must be at most half of the kernel size, got padding=2 for "
     r"kernel_size=3"),
    (lambda: nn.AvgPool1d(2, padding=-1), ValueError, r"AvgPool1d: padding must be non-negative"),
    (lambda: nn.MaxPool1d(0), ValueError, r"MaxPool1d: kernel_size must be positive, got 0"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, r"MaxPool2d: stride must be positive"),
    (lambda: nn.MaxPool3d(2, dilation=0), ValueError, r"MaxPool3d: dilation must be positive"),
    (lambda: nn.MaxPool2d((2, 2, 2)), TypeError,
     r"MaxPool2d: kernel_size must be an int or a tuple of 2 ints, got \(2, 2, 2\)"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError,
     r"AvgPool2d: divisor_override must be a positive int or None"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, r"AdaptiveAvgPool2d: output_size must be"),
    (lambda: nn.AdaptiveMaxPool2d((2, 2, 2)), ValueError, r"AdaptiveMaxPool2d: output_size"),
])
def test_constructor_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
