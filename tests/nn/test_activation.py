"""Activation layers (and Maxout, Swish) against PyTorch: registry + generic checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from harness import HAS_TORCH, ModuleCase, check_module_gradcheck, check_module_vs_torch

import filterbank as fb
from filterbank import nn

if HAS_TORCH:  # the oracle: without it only the tests marked needs_torch skip
    import torch

    tnn = torch.nn
else:
    torch = tnn = None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")


if HAS_TORCH:  # the reference layers PyTorch lacks

    class TorchSwish(tnn.Module):
        def __init__(self, beta=1.0, learnable=False):
            super().__init__()
            self.beta = tnn.Parameter(torch.tensor(float(beta))) if learnable else beta

        def forward(self, x):
            return x * torch.sigmoid(self.beta * x)

    class TorchMaxout(tnn.Module):
        def __init__(self, i, o, pieces=2, bias=True):
            super().__init__()
            self.o, self.k = o, pieces
            self.weight = tnn.Parameter(torch.empty(o * pieces, i))
            self.bias = tnn.Parameter(torch.empty(o * pieces)) if bias else None

        def forward(self, x):
            z = torch.nn.functional.linear(x, self.weight, self.bias)
            return z.reshape(z.shape[:-1] + (self.o, self.k)).max(-1).values


def _away_from_kinks(rng, shape):
    # keep |x| >= 0.1 so finite differences never straddle the kink of ReLU-like functions
    x = rng.uniform(0.1, 2.0, shape)
    return x * rng.choice([-1.0, 1.0], shape)


S = [(3, 4), (2, 3, 2, 2)]
CASES = [
    ModuleCase("ReLU", lambda: nn.ReLU(), lambda: tnn.ReLU(), S, _away_from_kinks),
    ModuleCase("ReLU(inplace)", lambda: nn.ReLU(inplace=True), lambda: tnn.ReLU(inplace=False),
               S[:1], _away_from_kinks),
    ModuleCase("LeakyReLU", lambda: nn.LeakyReLU(), lambda: tnn.LeakyReLU(), S,
               _away_from_kinks),
    ModuleCase("LeakyReLU(0.2)", lambda: nn.LeakyReLU(0.2), lambda: tnn.LeakyReLU(0.2), S[:1],
               _away_from_kinks),
    ModuleCase("ELU", lambda: nn.ELU(), lambda: tnn.ELU(), S, _away_from_kinks),
    ModuleCase("ELU(0.5)", lambda: nn.ELU(0.5), lambda: tnn.ELU(0.5), S[:1], _away_from_kinks),
    ModuleCase("SELU", lambda: nn.SELU(), lambda: tnn.SELU(), S, _away_from_kinks),
    ModuleCase("PReLU", lambda: nn.PReLU(), lambda: tnn.PReLU(), S, _away_from_kinks),
    ModuleCase("PReLU(3,0.1)", lambda: nn.PReLU(3, 0.1), lambda: tnn.PReLU(3, 0.1),
               [(2, 3, 2, 2), (4, 3)], _away_from_kinks),
    ModuleCase("Hardtanh", lambda: nn.Hardtanh(), lambda: tnn.Hardtanh(), S, _away_from_kinks),
    ModuleCase("Hardtanh(-2,3)", lambda: nn.Hardtanh(-2, 3), lambda: tnn.Hardtanh(-2, 3),
               S[:1], lambda rng, s: rng.uniform(-4, 4, s)),
    ModuleCase("ReLU6", lambda: nn.ReLU6(), lambda: tnn.ReLU6(), S,
               lambda rng, s: rng.choice([-1.0, 1.0, 3.0, 7.0], s) + rng.uniform(-0.5, 0.5, s)),
    ModuleCase("Sigmoid", lambda: nn.Sigmoid(), lambda: tnn.Sigmoid(), S),
    ModuleCase("Tanh", lambda: nn.Tanh(), lambda: tnn.Tanh(), S),
    ModuleCase("Softplus", lambda: nn.Softplus(), lambda: tnn.Softplus(), S),
    ModuleCase("Softplus(2,1)", lambda: nn.Softplus(2.0, 1.0), lambda: tnn.Softplus(2.0, 1.0),
               S[:1], _away_from_kinks),
    ModuleCase("SiLU", lambda: nn.SiLU(), lambda: tnn.SiLU(), S),
    ModuleCase("GELU", lambda: nn.GELU(), lambda: tnn.GELU(), S),
    ModuleCase("GELU(tanh)", lambda: nn.GELU("tanh"), lambda: tnn.GELU("tanh"), S),
    ModuleCase("Softmax(1)", lambda: nn.Softmax(1), lambda: tnn.Softmax(1), S),
    ModuleCase("Softmax(-1)", lambda: nn.Softmax(-1), lambda: tnn.Softmax(-1), S),
    ModuleCase("LogSoftmax(1)", lambda: nn.LogSoftmax(1), lambda: tnn.LogSoftmax(1), S),
    ModuleCase("Swish(2)", lambda: nn.Swish(2.0), lambda: TorchSwish(2.0), S[:1]),
    ModuleCase("Swish(learnable)", lambda: nn.Swish(0.7, learnable=True),
               lambda: TorchSwish(0.7, True), S),
    ModuleCase("Maxout(4,3,2)", lambda: nn.Maxout(4, 3), lambda: TorchMaxout(4, 3), [(5, 4)]),
    ModuleCase("Maxout(4,2,3)", lambda: nn.Maxout(4, 2, pieces=3),
               lambda: TorchMaxout(4, 2, 3), [(2, 3, 4)]),
    ModuleCase("Maxout(3,2,bias=False)", lambda: nn.Maxout(3, 2, bias=False),
               lambda: TorchMaxout(3, 2, bias=False), [(4, 3)]),
]
GRID = [(c, s) for c in CASES for s in c.shapes]


def _id(v):
    return str(v) if isinstance(v, ModuleCase) else "x".join(map(str, v))


@needs_torch
@pytest.mark.parametrize("case, shape", GRID, ids=_id)
def test_vs_torch(case, shape):
    check_module_vs_torch(case, shape)


@pytest.mark.parametrize("case, shape", GRID, ids=_id)
def test_gradcheck(case, shape):
    check_module_gradcheck(case, shape)


# Swish and Maxout have no PyTorch class; ReLU(inplace) is compared with inplace=False
@needs_torch
@pytest.mark.parametrize(
    "case", [c for c in CASES if not c.name.startswith(("Swish", "Maxout", "ReLU(inplace)"))],
    ids=str)
def test_repr_matches_torch(case):
    assert repr(case.make()) == repr(case.make_torch())


def test_inplace_is_accepted_and_input_left_untouched():
    x = fb.tensor([-1.0, 2.0])
    for m in (nn.ReLU(True), nn.LeakyReLU(0.1, True), nn.ELU(1.0, True), nn.SELU(True),
              nn.SiLU(True)):
        m(x)
        assert x.tolist() == [-1.0, 2.0]
    assert repr(nn.ReLU(True)) == "ReLU(inplace=True)"


def test_swish_learnable_beta_is_a_trained_parameter():
    act = nn.Swish(1.5, learnable=True)
    assert [n for n, _ in act.named_parameters()] == ["beta"]
    assert act.beta.shape == () and act.beta.dtype == np.float32
    x = fb.tensor([0.5, -1.0, 2.0])
    act(x).sum().backward()
    xs = x.numpy().astype(np.float64)
    s = 1 / (1 + np.exp(-1.5 * xs))
    np.testing.assert_allclose(act.beta.grad.item(), np.sum(xs**2 * s * (1 - s)), rtol=1e-5)
    assert list(nn.Swish(2.0).parameters()) == []
    assert repr(act) == "Swish(beta=1.5, learnable=True)"


def test_silu_equals_swish_beta_1():
    x = fb.randn(4, 5)
    np.testing.assert_allclose(nn.SiLU()(x).numpy(), nn.Swish()(x).numpy(), rtol=1e-6)


def test_maxout_lecture_example_and_winner_gradient():
    # max(w1.x + b1, w2.x + b2) with w = (1, -1), b = 0 is |x|; each unit's gradient goes to
    # its winning piece only
    m = nn.Maxout(1, 1, pieces=2, bias=False)
    with fb.no_grad():
        m.weight.copy_(np.array([[1.0], [-1.0]], np.float32))
    x = fb.tensor([[-2.0], [3.0], [0.5]])
    y = m(x)
    assert y.tolist() == [[2.0], [3.0], [0.5]]
    y.sum().backward()
    # pieces win for x = 3 and 0.5 (piece 0: dW = 3.5) and x = -2 (piece 1: dW = -2)
    assert m.weight.grad.tolist() == [[3.5], [-2.0]]


@needs_torch
def test_maxout_default_init_matches_torch_linear():
    m = nn.Maxout(400, 300, pieces=3, generator=np.random.default_rng(0))
    torch.manual_seed(0)
    t = tnn.Linear(400, 900)
    for ours, theirs in ((m.weight, t.weight), (m.bias, t.bias)):
        a, b = ours.detach().numpy(), theirs.detach().numpy()
        assert a.shape == b.shape
        bound = 1 / np.sqrt(400)
        # float32 samples of U(-bound, bound) may round to the float32 bound, a hair above
        # the float64 one (torch drew exactly that once)
        assert np.abs(a).max() <= np.float32(bound) and np.abs(b).max() <= np.float32(bound)
        se = bound / np.sqrt(3 * a.size)
        assert abs(a.std() - b.std()) < 6 * se


@needs_torch
@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
def test_softmax_implicit_dim_follows_torch_legacy_rule(ndim):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)[:ndim]).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about the implicit dim
        want = tnn.Softmax()(torch.from_numpy(x)).numpy()
        want_log = tnn.LogSoftmax()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(nn.Softmax()(fb.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nn.LogSoftmax()(fb.tensor(x)).numpy(), want_log, rtol=1e-5,
                               atol=1e-6)


def test_softmax_is_stable_for_huge_logits():
    y = nn.Softmax(dim=1)(fb.tensor([[1000.0, 0.0, -1000.0]]))
    assert np.isfinite(y.numpy()).all() and y.numpy()[0, 0] == 1.0


def test_constructor_and_input_errors():
    with pytest.raises(ValueError, match="GELU: expected approximate to be 'none' or 'tanh', "
                                         "got 'fast'"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="Maxout: expected pieces to be a positive int, got 0"):
        nn.Maxout(3, 2, pieces=0)
    with pytest.raises(ValueError, match=r"Maxout\(in_features=3, out_features=2, pieces=2, "
                                         r"bias=True\): expected the input's last dim to be 3, "
                                         r"got 4"):
        nn.Maxout(3, 2)(fb.zeros(5, 4))
    with pytest.raises(TypeError, match="LeakyReLU: expected negative_slope to be a real number"):
        nn.LeakyReLU("0.1")
    with pytest.raises(ValueError, match=r"Softmax\(dim=2\): dim 2 is out of range for an input "
                                         r"of shape \(3, 4\)"):
        nn.Softmax(2)(fb.zeros(3, 4))


@pytest.mark.parametrize(
    "case", [c for c in CASES if not c.name.startswith(("Maxout", "PReLU(3"))], ids=str)
def test_float32_preserved_and_float64_supported(case):
    m = case.make()
    assert m(fb.randn(2, 3)).dtype == np.float32
    m.double()
    x64 = fb.Tensor(np.random.default_rng(0).standard_normal((2, 3)), dtype=np.float64)
    assert m(x64).dtype == np.float64
