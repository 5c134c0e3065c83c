"""nn.init.orthogonal_: (semi-)orthogonality, gain, shapes, seeding and PyTorch's statistics."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank.nn import init


@pytest.mark.parametrize("shape", [(4, 4), (3, 7), (7, 3), (6, 2, 3, 3), (1, 5), (5, 1)])
@pytest.mark.parametrize("gain", [1.0, 0.5, 2.0])
def test_rows_or_columns_are_orthonormal_times_gain(shape, gain):
    w = init.orthogonal_(fb.empty(*shape), gain=gain, generator=np.random.default_rng(0))
    assert w.dtype == np.float32 and w.shape == shape
    m = w.numpy().reshape(shape[0], -1).astype(np.float64)
    r, c = m.shape
    gram = m @ m.T if r <= c else m.T @ m
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(r, c)), atol=1e-5)


def test_in_place_float64_and_seeded():
    t = fb.empty(5, 3, dtype=fb.float64)
    arr = t.data
    assert init.orthogonal_(t, generator=np.random.default_rng(1)) is t and t.data is arr
    again = init.orthogonal_(fb.empty(5, 3, dtype=fb.float64), generator=np.random.default_rng(1))
    assert np.array_equal(t.data, again.data)
    other = init.orthogonal_(fb.empty(5, 3, dtype=fb.float64), generator=np.random.default_rng(2))
    assert not np.allclose(t.data, other.data)


def test_sign_correction_makes_the_distribution_haar():
    """Without Q <- Q diag(sign(diag R)), NumPy's QR makes diag(R) >= 0 pull the first column
    of Q towards the first column of A: E[Q00] = E|A00| / ||A_0|| > 0. With the correction
    every entry has mean 0 (as PyTorch's orthogonal_)."""
    g = np.random.default_rng(3)
    q00 = [init.orthogonal_(fb.empty(4, 4, dtype=fb.float64), generator=g).data[0, 0]
           for _ in range(2000)]
    assert abs(np.mean(q00)) < 0.05  # 0 +- 3 sigma (sigma = 0.5 / sqrt(2000) = 0.011)
    assert abs(np.mean(np.square(q00)) - 0.25) < 0.03  # each entry has variance 1/n


def test_matches_torch_statistics():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = np.stack([torch.nn.init.orthogonal_(torch.empty(3, 5)).numpy()
                       for _ in range(500)])
    g = np.random.default_rng(0)
    ours = np.stack([init.orthogonal_(fb.empty(3, 5), generator=g).numpy() for _ in range(500)])
    # per-entry second moment 1/5 for a 3x5 semi-orthogonal (Haar) matrix, mean 0
    for w in (ours, theirs):
        assert abs(w.mean()) < 0.02 and abs(np.mean(w**2) - 0.2) < 0.01


@pytest.mark.parametrize("tensor, exc, match", [
    (fb.empty(3), ValueError, r"orthogonal_: only tensors with 2 or more dimensions are "
                              r"supported, got shape \(3,\)"),
    (fb.zeros(2, 2, dtype=fb.int64), TypeError, r"orthogonal_: expected a floating-point"),
])
def test_errors(tensor, exc, match):
    with pytest.raises(exc, match=match):
        init.orthogonal_(tensor)


def test_empty_tensor_is_returned_untouched():
    t = fb.empty(0, 3)
    assert init.orthogonal_(t) is t
