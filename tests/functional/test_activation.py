"""functional.activation: every activation (and its hyperparameters) through the registry +
the generic checks; then kinks, stability, learnable swish beta and argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from harness import (
    OpCase,
    check_float32,
    check_gradcheck,
    check_reference,
    check_torch,
    noncontiguous,
)

import filterbank as fb
import filterbank.functional as F

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the torch checks skip themselves
    torch = TF = None

rng = np.random.default_rng(4)


def _away(*shape, lo=0.1, hi=3.0):
    """|x| in [lo, hi]: finite differences stay off the kink at 0."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(lo, hi, shape)


def _sig(x):
    return 1 / (1 + np.exp(-x))


_ERF = np.vectorize(math.erf)
SA, SS = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _np_softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)


def _np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


_BETA_C = rng.uniform(0.5, 2.0, (3, 1, 1))  # one swish beta per channel
_W_C = rng.uniform(0.05, 0.5, 3)  # one PReLU slope per channel

CASES = [
    OpCase("leaky_relu", F.leaky_relu, [_away(2, 3)],
           reference=lambda x: np.where(x > 0, x, 0.01 * x), torch_fn=lambda x: TF.leaky_relu(x)),
    OpCase("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), [_away(2, 3)],
           reference=lambda x: np.where(x > 0, x, 0.2 * x),
           torch_fn=lambda x: TF.leaky_relu(x, 0.2)),
    OpCase("elu", F.elu, [_away(2, 3)], reference=_np_elu, torch_fn=lambda x: TF.elu(x)),
    OpCase("elu_alpha", lambda x: F.elu(x, 0.5), [_away(2, 3)],
           reference=lambda x: _np_elu(x, 0.5), torch_fn=lambda x: TF.elu(x, 0.5)),
    OpCase("elu_large_positive", F.elu, [np.array([100.0, 800.0, -50.0])],
           reference=_np_elu, torch_fn=lambda x: TF.elu(x)),
    OpCase("selu", F.selu, [_away(2, 3)], reference=lambda x: SS * _np_elu(x, SA),
           torch_fn=lambda x: TF.selu(x)),
    OpCase("softplus", F.softplus, [rng.standard_normal((2, 3)) * 3],
           reference=_np_softplus, torch_fn=lambda x: TF.softplus(x)),
    OpCase("softplus_beta_threshold", lambda x: F.softplus(x, beta=2.0, threshold=3.0),
           [np.array([[-2.0, 0.3, 1.2], [1.7, 2.5, -0.4]])],  # beta x on both sides of 3
           reference=lambda x: _np_softplus(x, 2.0, 3.0),
           torch_fn=lambda x: TF.softplus(x, beta=2.0, threshold=3.0)),
    OpCase("softplus_huge", F.softplus, [np.array([-1000.0, 0.0, 1000.0])],
           reference=lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))),
           torch_fn=lambda x: TF.softplus(x)),
    OpCase("silu", F.silu, [rng.standard_normal((2, 3))], reference=lambda x: x * _sig(x),
           torch_fn=lambda x: TF.silu(x)),
    OpCase("silu_noncontiguous", F.silu, [noncontiguous(rng.standard_normal((3, 4)))],
           reference=lambda x: x * _sig(x), torch_fn=lambda x: TF.silu(x)),
    OpCase("swish_float_beta", lambda x: F.swish(x, 1.5), [rng.standard_normal((2, 3))],
           reference=lambda x: x * _sig(1.5 * x), torch_fn=lambda x: x * torch.sigmoid(1.5 * x)),
    OpCase("swish_tensor_beta", F.swish, [rng.standard_normal((2, 3)), np.array(0.7)],
           reference=lambda x, b: x * _sig(b * x), torch_fn=lambda x, b: x * torch.sigmoid(b * x)),
    OpCase("swish_channel_beta", F.swish, [rng.standard_normal((2, 3, 2, 2)), _BETA_C],
           reference=lambda x, b: x * _sig(b * x), torch_fn=lambda x, b: x * torch.sigmoid(b * x)),
    OpCase("gelu", F.gelu, [rng.standard_normal((2, 3)) * 2],
           reference=lambda x: 0.5 * x * (1 + _ERF(x / math.sqrt(2))),
           torch_fn=lambda x: TF.gelu(x)),
    OpCase("gelu_wide_range", F.gelu, [np.linspace(-9.0, 9.0, 13)],
           reference=lambda x: 0.5 * x * (1 + _ERF(x / math.sqrt(2))),
           torch_fn=lambda x: TF.gelu(x)),
    OpCase("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [rng.standard_normal((2, 3))],
           reference=_np_gelu_tanh, torch_fn=lambda x: TF.gelu(x, approximate="tanh")),
    OpCase("hardtanh", F.hardtanh, [_away(2, 4, lo=0.05) * np.array([0.5, 0.5, 2.0, 2.0])],
           reference=lambda x: np.clip(x, -1, 1), torch_fn=lambda x: TF.hardtanh(x)),
    OpCase("hardtanh_range", lambda x: F.hardtanh(x, -0.5, 2.0),
           [np.array([-1.0, -0.2, 0.7, 2.5])], reference=lambda x: np.clip(x, -0.5, 2.0),
           torch_fn=lambda x: TF.hardtanh(x, -0.5, 2.0)),
    OpCase("relu6", F.relu6, [np.array([-1.0, 0.5, 3.0, 5.9, 7.0])],
           reference=lambda x: np.clip(x, 0, 6), torch_fn=lambda x: TF.relu6(x)),
    OpCase("prelu_channels", F.prelu, [_away(2, 3, 2), _W_C],
           reference=lambda x, w: np.where(x > 0, x, w[None, :, None] * x),
           torch_fn=lambda x, w: TF.prelu(x, w)),
    OpCase("prelu_shared", F.prelu, [_away(2, 3), np.array([0.25])],
           reference=lambda x, w: np.where(x > 0, x, w * x), torch_fn=lambda x, w: TF.prelu(x, w)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_reference(case):
    check_reference(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vs_torch(case):
    pytest.importorskip("torch")
    check_torch(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_float32(case):
    check_float32(case)


# ------------------------------------------------------------------------ special cases
@pytest.mark.parametrize("fn, grad_at_0", [
    (F.leaky_relu, 0.01), (F.elu, 1.0), (lambda x: F.hardtanh(x, 0.0, 1.0), 0.0),
    (F.relu6, 0.0), (F.silu, 0.5), (F.gelu, 0.5), (F.softplus, 0.5),
])
def test_gradient_at_zero_matches_pytorch(fn, grad_at_0):
    x = fb.tensor([0.0], requires_grad=True)
    fn(x).sum().backward()
    assert x.grad.tolist() == pytest.approx([grad_at_0])


def test_swish_learnable_beta_gets_a_gradient_summed_to_its_shape():
    x = fb.randn(4, 3, 2, 2, generator=np.random.default_rng(0))
    beta = fb.ones(3, 1, 1, requires_grad=True)
    F.swish(x, beta).sum().backward()
    assert beta.grad.shape == (3, 1, 1) and beta.grad.dtype == np.float32
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(beta.grad.data.ravel(),
                               (x.data ** 2 * s * (1 - s)).sum(axis=(0, 2, 3)), rtol=1e-5)


def test_erf_is_accurate_in_float64():
    x = np.concatenate([np.linspace(-7, 7, 2001), [0.0, 2.4999999, 2.5, -30.0, 40.0]])
    got = F.gelu(fb.tensor(x, dtype=np.float64)).data
    want = 0.5 * x * (1 + _ERF(x / math.sqrt(2)))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.gelu(fb.ones(2), approximate="fast"), ValueError,
     r"gelu: approximate must be 'none' or 'tanh', got 'fast'"),
    (lambda: F.leaky_relu(fb.ones(2), "0.1"), TypeError,
     r"leaky_relu: negative_slope: expected a number, got '0.1'"),
    (lambda: F.softplus(fb.ones(2), beta=0), ValueError, r"softplus: beta must be non-zero"),
    (lambda: F.hardtanh(fb.ones(2), 1.0, -1.0), ValueError,
     r"hardtanh: min_val \(1.0\) must not exceed max_val \(-1.0\)"),
    (lambda: F.prelu(fb.ones(2, 3), fb.ones(2)), ValueError,
     r"prelu: weight has 2 slopes but the input \(shape \(2, 3\)\) has 3 channels"),
    (lambda: F.swish(fb.ones(2, 3), fb.ones(4)), ValueError,
     r"swish: beta of shape \(4,\) does not broadcast against the input of shape \(2, 3\)"),
])
def test_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
