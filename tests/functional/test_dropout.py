"""functional.dropout / dropout2d: statistics, scaling, masks in backward, eval identity."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
import filterbank.functional as F

FNS = {"dropout": F.dropout, "dropout2d": F.dropout2d}


def _gen(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics_and_scale(p):
    n = 200_000
    y = F.dropout(fb.ones(n), p, generator=_gen()).numpy()
    kept = y != 0
    # fraction dropped within 5 standard errors of p
    assert abs((1 - kept.mean()) - p) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[kept], np.float32(1 / (1 - p)), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)  # inverted dropout: E[y] = x


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_dropout2d_drops_whole_channels(p):
    x = fb.ones(64, 32, 3, 3)
    y = F.dropout2d(x, p, generator=_gen()).numpy()
    per_channel = y.reshape(64, 32, -1)
    assert (per_channel == per_channel[..., :1]).all()  # constant over each feature map
    dropped = (per_channel[..., 0] == 0).mean()
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / (64 * 32))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / (1 - p))}


def test_dropout2d_3d_input_is_n_c_l():
    y = F.dropout2d(fb.ones(8, 16, 5), 0.5, generator=_gen()).numpy()
    assert (y == y[..., :1]).all()
    assert 0 < (y[..., 0] == 0).mean() < 1


@pytest.mark.parametrize("name", list(FNS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_uses_the_forward_mask_and_keeps_dtype(name, dtype):
    x = fb.Tensor(np.random.default_rng(1).uniform(1, 2, (4, 6, 2, 2)), dtype=dtype,
                  requires_grad=True)
    y = FNS[name](x, 0.4, generator=_gen())
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype
    # dy/dx is the scaled mask, which is y / x
    np.testing.assert_allclose(x.grad.numpy(), y.detach().numpy() / x.detach().numpy(),
                               rtol=1e-6)
    assert (x.grad.numpy() == 0).any() and (x.grad.numpy() != 0).any()


@pytest.mark.parametrize("name", list(FNS))
def test_gradcheck_with_fixed_generator(name):
    x = fb.Tensor(np.random.default_rng(2).standard_normal((2, 3, 2, 2)), dtype=np.float64,
                  requires_grad=True)
    # a fresh generator with the same seed on every call: the same mask for every evaluation
    assert fb.gradcheck(lambda t: FNS[name](t, 0.3, generator=_gen(5)), (x,))


@pytest.mark.parametrize("name", list(FNS))
def test_eval_and_p0_are_identity(name):
    x = fb.randn(2, 3, 4, 4, requires_grad=True)
    assert FNS[name](x, 0.5, training=False) is x
    assert FNS[name](x, 0.0) is x


@pytest.mark.parametrize("name", list(FNS))
def test_p1_gives_zeros_and_zero_grads(name):
    x = fb.randn(2, 3, 4, 4, requires_grad=True)
    y = FNS[name](x, 1.0, generator=_gen())
    assert np.all(y.detach().numpy() == 0) and np.isfinite(y.detach().numpy()).all()
    y.sum().backward()
    assert np.all(x.grad.numpy() == 0)


@pytest.mark.parametrize("name", list(FNS))
def test_reproducible_from_generator_and_global_seed(name):
    x = fb.ones(4, 8, 2, 2)
    a = FNS[name](x, 0.5, generator=_gen(3)).numpy()
    b = FNS[name](x, 0.5, generator=_gen(3)).numpy()
    np.testing.assert_array_equal(a, b)
    fb.manual_seed(11)
    c = FNS[name](x, 0.5).numpy()
    d = FNS[name](x, 0.5).numpy()
    fb.manual_seed(11)
    np.testing.assert_array_equal(c, FNS[name](x, 0.5).numpy())
    assert not np.array_equal(c, d)  # the global generator advances between calls


def test_matches_torch_semantics_on_kept_values():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal(10_000).astype(np.float32)
    ours = F.dropout(fb.tensor(x), 0.3, generator=_gen()).numpy()
    theirs = torch.nn.functional.dropout(torch.from_numpy(x), 0.3).numpy()
    for y in (ours, theirs):
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] / np.float32(0.7), rtol=1e-6)
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.03


@pytest.mark.parametrize("name", list(FNS))
@pytest.mark.parametrize("p, exc, match", [
    (-0.1, ValueError, r"has to be between 0 and 1, got -0.1"),
    (1.5, ValueError, r"has to be between 0 and 1, got 1.5"),
    ("0.5", TypeError, r"expected p to be a float in \[0, 1\], got str"),
    (True, TypeError, r"got bool"),
])
def test_invalid_p(name, p, exc, match):
    with pytest.raises(exc, match=f"{name}: .*{match}"):
        FNS[name](fb.ones(2, 2, 2, 2), p)


def test_dropout2d_rejects_wrong_rank_and_ints():
    with pytest.raises(ValueError, match=r"dropout2d: expected a 4-d input .* got shape \(4, 5\)"):
        F.dropout2d(fb.ones(4, 5))
    with pytest.raises(TypeError, match="dropout: expected a floating-point input, got dtype"):
        F.dropout(fb.tensor([1, 2, 3]))
