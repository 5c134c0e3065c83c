"""nn.init: formulas and distributions against PyTorch's, in place, dtype, generator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from harness import HAS_TORCH

import filterbank as fb
from filterbank import nn
from filterbank.nn import init

if HAS_TORCH:  # the oracle: without it only the tests marked needs_torch skip
    import torch

    tinit = torch.nn.init
else:
    torch = tinit = None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")

SHAPE = (300, 200, 3)  # fan_in 600, fan_out 900: 180,000 samples


def _uniform_checks(ours, theirs, bound):
    """Both samples look like U(-bound, bound): support, mean and std within sampling error."""
    n = ours.size
    std = bound / math.sqrt(3)
    for v in (ours, theirs):
        assert np.abs(v).max() <= bound * (1 + 1e-6)
        assert np.abs(v).max() > bound * (1 - 50 / n)
        assert abs(v.mean()) < 5 * std / math.sqrt(n)
        assert abs(v.std() - std) < 5 * 0.9 * std / math.sqrt(n)


def _normal_checks(ours, theirs, mean, std):
    n = ours.size
    for v in (ours, theirs):
        assert abs(v.mean() - mean) < 5 * std / math.sqrt(n)
        assert abs(v.std() - std) < 5 * std / math.sqrt(2 * n)
        # a normal, not a uniform: about 4.6% of the mass lies beyond 2 std
        assert abs(np.mean(np.abs(v - mean) > 2 * std) - 0.0455) < 0.005


def _pair(fn, tfn, *args, shape=SHAPE, **kwargs):
    t = fb.empty(*shape)
    arr = t.data
    out = fn(t, *args, generator=np.random.default_rng(0), **kwargs)
    assert out is t and t.data is arr and t.dtype == np.float32  # in place, dtype kept
    tt = torch.empty(shape)
    tfn(tt, *args, **kwargs)
    return t.numpy(), tt.numpy()


@needs_torch
@pytest.mark.parametrize("a, b", [(0.0, 1.0), (-3.0, -1.0)])
def test_uniform(a, b):
    ours, theirs = _pair(init.uniform_, tinit.uniform_, a, b)
    _uniform_checks(ours - (a + b) / 2, theirs - (a + b) / 2, (b - a) / 2)


@needs_torch
@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (2.0, 0.01)])
def test_normal(mean, std):
    ours, theirs = _pair(init.normal_, tinit.normal_, mean, std)
    _normal_checks(ours, theirs, mean, std)


@needs_torch
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier_uniform(gain):
    ours, theirs = _pair(init.xavier_uniform_, tinit.xavier_uniform_, gain)
    _uniform_checks(ours, theirs, gain * math.sqrt(6 / (600 + 900)))


@needs_torch
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_xavier_normal(gain):
    ours, theirs = _pair(init.xavier_normal_, tinit.xavier_normal_, gain)
    _normal_checks(ours, theirs, 0.0, gain * math.sqrt(2 / 1500))


KAIMING = [
    dict(),
    dict(a=math.sqrt(5)),
    dict(mode="fan_out", nonlinearity="relu"),
    dict(a=0.2, mode="fan_in", nonlinearity="leaky_relu"),
    dict(nonlinearity="tanh"),
]


def _kaiming_std(a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan = 600 if mode == "fan_in" else 900
    return tinit.calculate_gain(nonlinearity, a) / math.sqrt(fan)


@needs_torch
@pytest.mark.parametrize("kw", KAIMING, ids=str)
def test_kaiming_uniform(kw):
    ours, theirs = _pair(init.kaiming_uniform_, tinit.kaiming_uniform_, **kw)
    _uniform_checks(ours, theirs, math.sqrt(3) * _kaiming_std(**kw))


@needs_torch
@pytest.mark.parametrize("kw", KAIMING, ids=str)
def test_kaiming_normal(kw):
    ours, theirs = _pair(init.kaiming_normal_, tinit.kaiming_normal_, **kw)
    _normal_checks(ours, theirs, 0.0, _kaiming_std(**kw))


def test_constant_zeros_ones():
    t = fb.empty(3, 4)
    assert init.constant_(t, 0.25) is t and np.all(t.numpy() == 0.25)
    assert np.all(init.zeros_(t).numpy() == 0) and np.all(init.ones_(t).numpy() == 1)
    assert t.dtype == np.float32


@needs_torch
@pytest.mark.parametrize("nl, param", [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
    ("conv_transpose1d", None), ("conv_transpose2d", None), ("conv_transpose3d", None),
    ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
    ("leaky_relu", 0.2), ("leaky_relu", 1), ("selu", None),
])
def test_calculate_gain_matches_torch(nl, param):
    assert init.calculate_gain(nl, param) == pytest.approx(tinit.calculate_gain(nl, param),
                                                           rel=1e-12)


@needs_torch
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2), (8, 4, 3, 3), (2, 3, 2, 2, 2), (1, 0)])
def test_fan_in_and_fan_out_match_torch(shape):
    assert init._calculate_fan_in_and_fan_out(fb.empty(*shape)) == \
        tinit._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("fn", [init.uniform_, init.normal_, init.xavier_uniform_,
                                init.xavier_normal_, init.kaiming_uniform_,
                                init.kaiming_normal_])
def test_generator_reproducibility_float64_and_parameters(fn):
    a = fn(fb.Tensor(np.empty((20, 10)), dtype=np.float64), generator=np.random.default_rng(1))
    b = fn(fb.Tensor(np.empty((20, 10)), dtype=np.float64), generator=np.random.default_rng(1))
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    fb.manual_seed(3)
    c = fn(fb.empty(20, 10))
    fb.manual_seed(3)
    np.testing.assert_array_equal(c.numpy(), fn(fb.empty(20, 10)).numpy())
    # a Parameter is filled in place and stays a leaf that requires grad
    p = nn.Parameter(np.zeros((20, 10), np.float32))
    assert fn(p) is p and p.requires_grad and p.is_leaf and np.any(p.detach().numpy() != 0)


def test_errors():
    with pytest.raises(ValueError, match=r"fewer than 2 dimensions, got shape \(5,\)"):
        init.xavier_uniform_(fb.empty(5))
    with pytest.raises(ValueError, match="kaiming_normal_: mode must be 'fan_in' or 'fan_out', "
                                         "got 'fan_avg'"):
        init.kaiming_normal_(fb.empty(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="calculate_gain: unsupported nonlinearity 'gelu'"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="negative_slope True is not a valid number"):
        init.calculate_gain("leaky_relu", True)
    with pytest.raises(TypeError, match="uniform_: expected a floating-point tensor, got dtype"):
        init.uniform_(fb.tensor([1, 2]))
    with pytest.raises(TypeError, match="normal_: expected a Tensor or Parameter, got list"):
        init.normal_([1.0, 2.0])


def test_zero_element_tensor_is_a_no_op():
    t = fb.empty(0, 3)
    assert init.kaiming_uniform_(t) is t and init.normal_(t) is t and init.uniform_(t) is t
