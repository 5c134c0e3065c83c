"""functional.interpolate: nearest, linear, bilinear, trilinear and area resizing.

A registry over ranks, modes, sizes / scale factors (integer, fractional, downsampling,
recomputed) and align_corners runs through float64 gradcheck, PyTorch (float32 output and input
gradient) and float32 dtype preservation.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from harness import (
    HAS_TORCH,
    OpCase,
    assert_close,
    check_float32,
    check_gradcheck,
    check_torch,
    noncontiguous,
)

import filterbank as fb
import filterbank.functional as F

if HAS_TORCH:  # the oracle: without it only the tests marked needs_torch skip
    import torch

    TF = torch.nn.functional
else:
    torch = TF = None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")

SHAPES = {1: (2, 3, 5), 2: (2, 2, 4, 5), 3: (1, 2, 3, 4, 3)}
SPECS = [dict(size=7), dict(size=2), dict(scale_factor=2), dict(scale_factor=3),
         dict(scale_factor=1.7), dict(scale_factor=0.5), dict(scale_factor=2.5,
                                                              recompute_scale_factor=True),
         dict(size=1)]
MODES = [(1, "nearest"), (2, "nearest"), (3, "nearest"), (1, "linear"), (2, "bilinear"),
         (3, "trilinear"), (1, "area"), (2, "area")]


def _cases():
    cases = []
    rng = np.random.default_rng(0)
    for (nd, mode), spec in itertools.product(MODES, SPECS):
        linear = mode in ("linear", "bilinear", "trilinear")
        if nd == 3 and "size" in spec and spec["size"] == 7:
            continue  # keep the 3-D gradchecks small
        for ac in ((False, True) if linear else (None,)):
            kw = dict(spec, mode=mode)
            if ac is not None:
                kw["align_corners"] = ac
            x = rng.standard_normal(SHAPES[nd])
            nc = len(cases) % 3 == 1
            if nc:
                x = noncontiguous(x)
            name = "-".join(f"{k}={v}" for k, v in kw.items()) + f"-{nd}d" + ("-nc" if nc else "")
            cases.append(OpCase(name, lambda x, **kw: F.interpolate(x, **kw), [x], kw,
                                torch_fn=lambda x, **kw: TF.interpolate(x, **kw)))
    # tuple sizes / factors, a per-axis mix of up and down, the default align_corners
    for kw in [dict(size=(3, 8), mode="bilinear"), dict(scale_factor=(0.5, 2.0), mode="nearest"),
               dict(scale_factor=(1.5, 3), mode="bilinear", align_corners=True),
               dict(size=(5, 5), mode="bilinear"), dict(size=(6, 3), mode="area")]:
        x = rng.standard_normal((1, 3, 4, 5))
        cases.append(OpCase(f"{kw}", lambda x, **kw: F.interpolate(x, **kw), [x], kw,
                            torch_fn=lambda x, **kw: TF.interpolate(x, **kw)))
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=str)
def test_vs_torch(case):
    check_torch(case)


@pytest.mark.parametrize("case", CASES[::4], ids=str)
def test_float32_preserved(case):
    check_float32(case)


def test_nearest_2x_is_repetition_and_its_gradient_sums_blocks():
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    xt = fb.Tensor(x, requires_grad=True)
    y = F.interpolate(xt, scale_factor=2)
    np.testing.assert_array_equal(y.detach().numpy()[0, 0], x[0, 0].repeat(2, 0).repeat(2, 1))
    gy = np.arange(24, dtype=np.float32).reshape(1, 1, 4, 6)
    y.backward(gy)
    np.testing.assert_array_equal(xt.grad.numpy(), gy.reshape(1, 1, 2, 2, 3, 2).sum((3, 5)))


def test_bilinear_align_corners_keeps_the_corners():
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 4)).astype(np.float32)
    y = F.interpolate(fb.Tensor(x), size=(7, 9), mode="bilinear", align_corners=True).numpy()
    for r, c in itertools.product((0, -1), (0, -1)):
        assert_close(y[..., r, c], x[..., r, c])
    # a ramp is reproduced exactly by linear interpolation
    ramp = np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4).repeat(2, 2)
    y = F.interpolate(fb.Tensor(ramp), size=(2, 7), mode="bilinear", align_corners=True)
    assert_close(y.numpy()[0, 0, 0], np.linspace(0, 3, 7))


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_dtype_float64_preserved(mode):
    x = fb.Tensor(np.ones((1, 1, 3, 3)), dtype=np.float64, requires_grad=True)
    y = F.interpolate(x, scale_factor=2, mode=mode)
    y.sum().backward()
    assert y.dtype == np.float64 and x.grad.dtype == np.float64


def test_unchanged_axis_with_a_non_unit_scale_is_copied():
    """An axis whose size the scale factor leaves unchanged is copied (torch's 2-D rule;
    torch's 1-D/3-D nearest forward kernels would resample it, but their backward copies)."""
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 5)).astype(np.float32)
    y = F.interpolate(fb.Tensor(x), scale_factor=1.2)
    if HAS_TORCH:
        assert_close(y, TF.interpolate(torch.tensor(x), scale_factor=1.2))
    np.testing.assert_array_equal(y.numpy()[..., 0], x[..., 0])  # rows unchanged, in order
    x1 = fb.Tensor(x[:, :, 0, :3], requires_grad=True)  # 1-D, 3 -> 3 with scale 1.2
    y1 = F.interpolate(x1, scale_factor=1.2)
    np.testing.assert_array_equal(y1.detach().numpy(), x[:, :, 0, :3])
    gy = np.random.default_rng(3).standard_normal(y1.shape).astype(np.float32)
    y1.backward(gy)
    np.testing.assert_array_equal(x1.grad.numpy(), gy)
    if HAS_TORCH:
        tx = torch.tensor(x[:, :, 0, :3], requires_grad=True)
        TF.interpolate(tx, scale_factor=1.2).backward(torch.tensor(gy))
        assert_close(x1.grad, tx.grad)  # torch's backward copies here too


ERRORS = [
    (dict(size=2, mode="bicubic"), fb.zeros(1, 1, 4, 4), ValueError,
     r"interpolate: mode must be one of 'nearest', 'linear', 'bilinear', 'trilinear', 'area', "
     r"got 'bicubic'"),
    (dict(size=2, mode="linear"), fb.zeros(1, 1, 4, 4), ValueError,
     r"interpolate: mode 'linear' expects a 3-D \(N, C, \*spatial\) input, got a 4-D tensor of "
     r"shape \(1, 1, 4, 4\)"),
    (dict(size=2, mode="bilinear"), fb.zeros(1, 4, 4), ValueError,
     r"mode 'bilinear' expects a 4-D"),
    (dict(size=2), fb.zeros(4, 4), ValueError,
     r"mode 'nearest' expects a 3-D or 4-D or 5-D \(N, C, \*spatial\) input, got a 2-D"),
    (dict(size=2, align_corners=True), fb.zeros(1, 1, 4, 4), ValueError,
     r"interpolate: align_corners can only be set for the linear modes"),
    (dict(), fb.zeros(1, 1, 4, 4), ValueError,
     r"interpolate: give exactly one of size and scale_factor, got size=None, "
     r"scale_factor=None"),
    (dict(size=2, scale_factor=2), fb.zeros(1, 1, 4, 4), ValueError, r"exactly one of"),
    (dict(size=(2, 2, 2)), fb.zeros(1, 1, 4, 4), ValueError,
     r"interpolate: size must be an int or a tuple of 2 ints for an input with spatial size "
     r"\(4, 4\), got \(2, 2, 2\)"),
    (dict(scale_factor=0.1), fb.zeros(1, 1, 4, 4), ValueError,
     r"interpolate: output size must be positive, got \(0, 0\) for an input with spatial size "
     r"\(4, 4\)"),
    (dict(size=0), fb.zeros(1, 1, 4, 4), ValueError, r"output size must be positive"),
    (dict(size=3, recompute_scale_factor=True), fb.zeros(1, 1, 4, 4), ValueError,
     r"recompute_scale_factor is meaningless with an explicit size"),
    (dict(size=2), fb.zeros(1, 1, 4, 4, dtype=np.int64), TypeError,
     r"interpolate: expected a floating-point input, got dtype int64"),
]


@pytest.mark.parametrize("kw, x, exc, match", ERRORS, ids=[f"err{i}" for i in range(len(ERRORS))])
def test_errors(kw, x, exc, match):
    with pytest.raises(exc, match=match):
        F.interpolate(x, **kw)
