"""nn.utils.clip_grad_norm_ / clip_grad_value_ against torch.nn.utils."""

from __future__ import annotations

import numpy as np
import pytest
from harness import assert_close

import filterbank as fb
from filterbank.nn.utils import clip_grad_norm_, clip_grad_value_

SHAPES = [(3, 4), (5,), (2, 3, 2), ()]


def grads(scale, seed=0):
    g = np.random.default_rng(seed)
    return [np.asarray(g.standard_normal(s) * scale, dtype=np.float32) for s in SHAPES]


def params_with(gs):
    ps = []
    for g in gs:
        p = fb.Tensor(np.zeros(g.shape, np.float32), requires_grad=True)
        p.grad = fb.Tensor(g.copy())
        ps.append(p)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm, scale", [(1.0, 3.0), (100.0, 1.0), (0.5, 1e-3)])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, scale):
    torch = pytest.importorskip("torch")
    gs = grads(scale)
    ours = params_with(gs)
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in gs]
    for t, g in zip(theirs, gs):
        t.grad = torch.from_numpy(g.copy())
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ref = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, fb.Tensor) and total.dtype == np.float32
    assert_close(total, ref, what="total norm")
    for p, t in zip(ours, theirs):
        assert p.grad.dtype == np.float32
        assert_close(p.grad, t.grad, what="clipped grad")


def test_clip_grad_norm_skips_missing_grads_and_checks_nonfinite():
    p = fb.Tensor(np.zeros(2, np.float32), requires_grad=True)
    q = fb.Tensor(np.zeros(2, np.float32), requires_grad=True)
    q.grad = fb.Tensor(np.array([3.0, 4.0], np.float32))
    assert float(clip_grad_norm_([p, q], 1.0)) == pytest.approx(5.0)
    assert p.grad is None
    np.testing.assert_allclose(q.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    assert float(clip_grad_norm_(q, 10.0)) == pytest.approx(1.0, rel=1e-5)  # single tensor
    assert float(clip_grad_norm_([p], 1.0)) == 0.0
    q.grad.data[0] = np.nan
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is nan"):
        clip_grad_norm_([q], 1.0, error_if_nonfinite=True)


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    gs = grads(2.0)
    ours = params_with(gs)
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in gs]
    for t, g in zip(theirs, gs):
        t.grad = torch.from_numpy(g.copy())
    clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, t in zip(ours, theirs):
        assert p.grad.dtype == np.float32
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
    with pytest.raises(ValueError, match="clip_value must be positive, got -1.0"):
        clip_grad_value_(ours, -1)
