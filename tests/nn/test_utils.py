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


# ------------------------------------- parameters_to_vector / vector_to_parameters (issue 10)
def test_parameters_to_vector_order_and_round_trip():
    from filterbank import nn
    from filterbank.nn.utils import parameters_to_vector, vector_to_parameters

    m = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    vec = parameters_to_vector(m.parameters())
    want = np.concatenate([p.data.ravel() for p in m.parameters()])
    assert vec.shape == (11,) and vec.dtype == np.float32
    np.testing.assert_array_equal(vec.data, want)
    params = list(m.parameters())
    ids = [id(p) for p in params]
    new = fb.arange(11.0)
    vector_to_parameters(new, m.parameters())
    assert [id(p) for p in m.parameters()] == ids  # the same Parameter objects
    np.testing.assert_array_equal(parameters_to_vector(m.parameters()).data, new.data)
    assert m[0].weight.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert m[2].bias.tolist() == [10.0]
    new.data[0] = 100.0  # as in PyTorch, the parameters are views of vec
    assert m[0].weight.data[0, 0] == 100.0


def test_parameters_to_vector_is_differentiable():
    from filterbank.nn.utils import parameters_to_vector

    a = fb.ones(2, 2, requires_grad=True)
    b = fb.ones(3, requires_grad=True)
    (parameters_to_vector([a, b]) * fb.arange(7.0)).sum().backward()
    assert a.grad.tolist() == [[0.0, 1.0], [2.0, 3.0]] and b.grad.tolist() == [4.0, 5.0, 6.0]


def test_parameters_to_vector_matches_torch():
    torch = pytest.importorskip("torch")
    from filterbank.nn.utils import parameters_to_vector, vector_to_parameters

    arrays = [np.random.default_rng(i).standard_normal(s).astype(np.float32)
              for i, s in enumerate(SHAPES)]
    ours = parameters_to_vector([fb.tensor(a) for a in arrays])
    theirs = torch.nn.utils.parameters_to_vector([torch.tensor(a) for a in arrays])
    np.testing.assert_array_equal(ours.data, theirs.numpy())
    vec = np.random.default_rng(9).standard_normal(ours.shape).astype(np.float32)
    ps = [fb.zeros(*s) for s in SHAPES]
    tps = [torch.zeros(s) for s in SHAPES]
    vector_to_parameters(fb.tensor(vec), ps)
    torch.nn.utils.vector_to_parameters(torch.tensor(vec), tps)
    for p, tp in zip(ps, tps):
        np.testing.assert_array_equal(p.data, tp.numpy())


@pytest.mark.parametrize("call, exc, match", [
    (lambda f, t: f(fb.ones(2)), TypeError,
     r"parameters_to_vector: expected an iterable of tensors, got a Tensor"),
    (lambda f, t: f([]), ValueError, r"parameters_to_vector: expected at least one parameter"),
    (lambda f, t: f([np.ones(2)]), TypeError, r"parameters_to_vector: expected tensors, got "
                                              r"ndarray"),
    (lambda f, t: t(np.ones(3), [fb.ones(3)]), TypeError,
     r"vector_to_parameters: expected vec to be a Tensor, got ndarray"),
    (lambda f, t: t(fb.ones(4), [fb.ones(3)]), ValueError,
     r"vector_to_parameters: vec has 4 elements but the parameters have 3"),
    (lambda f, t: t(fb.ones(2, 2), [fb.ones(4)]), ValueError,
     r"vector_to_parameters: expected a 1-d vec, got shape \(2, 2\)"),
])
def test_vector_errors(call, exc, match):
    from filterbank.nn.utils import parameters_to_vector, vector_to_parameters

    with pytest.raises(exc, match=match):
        call(parameters_to_vector, vector_to_parameters)
