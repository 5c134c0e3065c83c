"""nn.Linear and the shape plumbing layers (Identity, Flatten, Unflatten) against PyTorch."""

from __future__ import annotations

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

CASES = [
    ModuleCase("Linear(4,3)", lambda: nn.Linear(4, 3), lambda: tnn.Linear(4, 3),
               [(5, 4), (2, 3, 4), (4,)]),
    ModuleCase("Linear(4,3,bias=False)", lambda: nn.Linear(4, 3, bias=False),
               lambda: tnn.Linear(4, 3, bias=False), [(5, 4)]),
    ModuleCase("Linear(1,1)", lambda: nn.Linear(1, 1), lambda: tnn.Linear(1, 1), [(3, 1)]),
    ModuleCase("Identity", lambda: nn.Identity(3, foo=1), lambda: tnn.Identity(3, foo=1),
               [(2, 3)]),
    ModuleCase("Flatten()", lambda: nn.Flatten(), lambda: tnn.Flatten(), [(2, 3, 2, 2)]),
    ModuleCase("Flatten(0,2)", lambda: nn.Flatten(0, 2), lambda: tnn.Flatten(0, 2),
               [(2, 3, 2, 2)]),
    ModuleCase("Flatten(-2)", lambda: nn.Flatten(-2), lambda: tnn.Flatten(-2), [(2, 3, 2, 2)]),
    ModuleCase("Unflatten(1,(2,6))", lambda: nn.Unflatten(1, (2, 6)),
               lambda: tnn.Unflatten(1, (2, 6)), [(3, 12)]),
    ModuleCase("Unflatten(-1,(-1,2))", lambda: nn.Unflatten(-1, (-1, 2)),
               lambda: tnn.Unflatten(-1, (-1, 2)), [(3, 2, 4)]),
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


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=str)
def test_repr_and_state_dict_keys_match_torch(case):
    m, tm = case.make(), case.make_torch()
    assert repr(m) == repr(tm)
    assert list(m.state_dict()) == list(tm.state_dict())
    for k, v in m.state_dict().items():
        assert v.shape == tuple(tm.state_dict()[k].shape) and v.dtype == np.float32


def test_linear_parameters_and_attributes():
    fc = nn.Linear(5, 2)
    assert [n for n, _ in fc.named_parameters()] == ["weight", "bias"]
    assert fc.weight.shape == (2, 5) and fc.bias.shape == (2,)
    assert fc.weight.requires_grad and fc.weight.dtype == np.float32
    nb = nn.Linear(5, 2, bias=False)
    assert nb.bias is None and [n for n, _ in nb.named_parameters()] == ["weight"]


def test_linear_generator_makes_init_reproducible():
    a = nn.Linear(6, 4, generator=np.random.default_rng(3))
    b = nn.Linear(6, 4, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    fb.manual_seed(7)
    c = nn.Linear(6, 4)
    fb.manual_seed(7)
    d = nn.Linear(6, 4)
    np.testing.assert_array_equal(c.bias.detach().numpy(), d.bias.detach().numpy())


@needs_torch
@pytest.mark.parametrize("fan_in, fan_out", [(1000, 600), (50, 3000)])
def test_linear_default_init_matches_torch_distribution(fan_in, fan_out):
    ours = nn.Linear(fan_in, fan_out, generator=np.random.default_rng(0))
    theirs = tnn.Linear(fan_in, fan_out)
    bound = 1 / np.sqrt(fan_in)
    for name in ("weight", "bias"):
        w = getattr(ours, name).detach().numpy()
        tw = getattr(theirs, name).detach().numpy()
        n = w.size
        for v in (w, tw):  # the same law for both: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            assert np.abs(v).max() <= bound * (1 + 1e-6)
            assert abs(v.mean()) < 5 * bound / np.sqrt(3 * n)
        # std of U(-b, b) is b / sqrt(3); its sampling error is about 0.9 * std / sqrt(n)
        se = bound / np.sqrt(3) / np.sqrt(n)
        assert abs(w.std() - tw.std()) < 6 * se
        assert abs(w.std() - bound / np.sqrt(3)) < 5 * se
        assert np.abs(w).max() > bound * (1 - 20 / n)  # the support is filled up to the bound


def test_linear_input_errors_name_the_layer():
    fc = nn.Linear(784, 10)
    with pytest.raises(ValueError, match=r"Linear\(in_features=784, out_features=10, bias=True\)"
                       r": expected the input's last dim to be 784, got 100 "
                       r"\(input shape \(8, 100\)\)"):
        fc(fb.zeros(8, 100))
    with pytest.raises(TypeError, match="expected a Tensor input, got ndarray"):
        fc(np.zeros((8, 784)))


@pytest.mark.parametrize("args", [(-1, 3), (3, 2.5), (True, 3), ("3", 2)])
def test_linear_constructor_errors(args):
    with pytest.raises(ValueError, match="Linear: expected .* to be a non-negative int"):
        nn.Linear(*args)


def test_flatten_unflatten_errors():
    with pytest.raises(ValueError, match=r"Flatten\(start_dim=3, end_dim=-1\): cannot flatten "
                       r"dims 3..-1 of an input of shape \(2, 3\)"):
        nn.Flatten(3)(fb.zeros(2, 3))
    with pytest.raises(ValueError, match=r"Unflatten\(dim=1, unflattened_size=\(4, 4\)\): "
                       r"cannot unflatten dim 1 of size 12 into \(4, 4\)"):
        nn.Unflatten(1, (4, 4))(fb.zeros(2, 12))
    with pytest.raises(TypeError, match="Unflatten: expected unflattened_size to be a tuple"):
        nn.Unflatten(1, 12)
    with pytest.raises(TypeError, match="Flatten: expected start_dim to be an int"):
        nn.Flatten(1.0)


def test_linear_float64_after_double():
    fc = nn.Linear(3, 2).double()
    y = fc(fb.Tensor(np.ones((4, 3)), dtype=np.float64))
    assert y.dtype == np.float64
    assert_close(y, np.ones((4, 3)) @ fc.weight.detach().numpy().T + fc.bias.detach().numpy())
