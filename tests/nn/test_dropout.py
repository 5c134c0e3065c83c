"""nn.Dropout / nn.Dropout2d: train vs eval, validation, reproducibility, PyTorch parity."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn

LAYERS = {"Dropout": nn.Dropout, "Dropout2d": nn.Dropout2d}


@pytest.mark.parametrize("name", list(LAYERS))
def test_train_drops_eval_is_identity(name):
    layer = LAYERS[name](0.5, generator=np.random.default_rng(0))
    x = fb.ones(8, 16, 4, 4)
    y = layer(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}
    layer.eval()
    assert layer(x) is x
    layer.train()
    assert (layer(x).numpy() == 0).any()


@pytest.mark.parametrize("name", list(LAYERS))
def test_mode_follows_parent_train_eval(name):
    net = nn.Sequential(nn.Identity(), LAYERS[name](0.9))
    x = fb.ones(2, 4, 3, 3)
    net.eval()
    np.testing.assert_array_equal(net(x).numpy(), x.numpy())
    net.train()
    assert (net(x).numpy() == 0).any()


@pytest.mark.parametrize("name", list(LAYERS))
def test_generator_reproducible_and_gradient_masked(name):
    x = fb.randn(4, 6, 3, 3, requires_grad=True)
    a = LAYERS[name](0.3, generator=np.random.default_rng(9))(x)
    b = LAYERS[name](0.3, generator=np.random.default_rng(9))(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    a.sum().backward()
    assert x.grad.dtype == np.float32
    zero = a.detach().numpy() == 0
    assert np.all(x.grad.numpy()[zero] == 0)
    np.testing.assert_allclose(x.grad.numpy()[~zero], np.float32(1 / 0.7), rtol=1e-6)


def test_dropout2d_whole_channels():
    y = nn.Dropout2d(0.5, generator=np.random.default_rng(1))(fb.ones(16, 8, 5, 5)).numpy()
    assert (y.reshape(16, 8, -1).std(axis=-1) == 0).all()


def test_gradcheck_dropout_layers_with_fixed_generator():
    x = fb.Tensor(np.random.default_rng(0).standard_normal((2, 3, 2, 2)), dtype=np.float64,
                  requires_grad=True)
    for cls in LAYERS.values():
        assert fb.gradcheck(lambda t, c=cls: c(0.4, generator=np.random.default_rng(2))(t), (x,))


@pytest.mark.parametrize("name", list(LAYERS))
def test_repr_state_and_parameters_match_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = LAYERS[name](0.2), getattr(torch.nn, name)(0.2)
    assert repr(ours) == repr(theirs)
    assert list(ours.parameters()) == [] and len(ours.state_dict()) == 0
    assert repr(LAYERS[name](0.5, inplace=True)) == repr(getattr(torch.nn, name)(0.5, True))


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("p, exc", [(-0.5, ValueError), (1.01, ValueError), (None, TypeError)])
def test_p_is_validated(name, p, exc):
    with pytest.raises(exc, match=f"{name}: "):
        LAYERS[name](p)


def test_dropout2d_input_rank_error_names_layer():
    with pytest.raises(ValueError, match=r"Dropout2d\(p=0.5, inplace=False\): expected a 4-d "
                                         r"input .* got \(3, 4\)"):
        nn.Dropout2d()(fb.ones(3, 4))


def test_p_one_zeroes_everything_and_p_zero_passes_through():
    x = fb.randn(3, 4, 2, 2)
    assert np.all(nn.Dropout(1.0)(x).numpy() == 0)
    assert nn.Dropout(0.0)(x) is x
