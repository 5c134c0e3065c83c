"""functional.distance: normalize over a grid of p, dim and eps, cosine_similarity over dims
and broadcasting, both through the op registry, then PyTorch's eps semantics for vectors
shorter than eps (value and gradient), and errors."""

from __future__ import annotations

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
except ImportError:  # the torch checks skip themselves
    torch = None

rng = np.random.default_rng(11)


def _r(*shape):
    return rng.standard_normal(shape)


def _np_normalize(a, p=2.0, dim=1, eps=1e-12):
    n = np.sum(np.abs(a) ** p, axis=dim, keepdims=True) ** (1 / p) if np.isfinite(p) \
        else np.max(np.abs(a), axis=dim, keepdims=True)
    return a / np.maximum(n, eps)


def _np_cos(a, b, dim=1, eps=1e-8):
    a, b = np.broadcast_arrays(a, b)
    na = np.maximum(np.sqrt((a * a).sum(dim, keepdims=True)), eps)
    nb = np.maximum(np.sqrt((b * b).sum(dim, keepdims=True)), eps)
    return (a / na * b / nb).sum(dim)


CASES = []
for _p in (1.0, 2.0, 3.0, 0.5, float("inf")):
    for _dim, _shape in ((1, (3, 4)), (-1, (2, 3, 4)), (0, (5, 2))):
        _x = _r(*_shape)
        if _p == 0.5:
            _x = np.abs(_x) + 0.1  # the p < 1 norm is not differentiable near 0
        CASES.append(OpCase(
            f"normalize_p{_p}_dim{_dim}",
            lambda a, p=_p, d=_dim: F.normalize(a, p=p, dim=d), [_x],
            reference=lambda a, p=_p, d=_dim: _np_normalize(a, p, d),
            torch_fn=lambda a, p=_p, d=_dim: torch.nn.functional.normalize(a, p=p, dim=d)))
CASES += [
    OpCase("normalize_default_dim1_noncontiguous", F.normalize, [noncontiguous(_r(3, 4, 2))],
           reference=_np_normalize, torch_fn=lambda a: torch.nn.functional.normalize(a)),
    OpCase("normalize_eps_dominates", lambda a: F.normalize(a, eps=10.0), [_r(3, 4)],
           reference=lambda a: _np_normalize(a, eps=10.0),
           torch_fn=lambda a: torch.nn.functional.normalize(a, eps=10.0)),
    OpCase("normalize_zero_row", lambda a: F.normalize(a, dim=-1),
           [np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]])],
           reference=lambda a: _np_normalize(a, dim=-1),
           torch_fn=lambda a: torch.nn.functional.normalize(a, dim=-1)),
    # tied largest |x|: the max norm's gradient is shared evenly (as PyTorch)
    OpCase("normalize_inf_ties", lambda a: F.normalize(a, p=float("inf")),
           [np.array([[3.0, -3.0, 1.0], [2.0, 0.5, 2.0]])],
           reference=lambda a: _np_normalize(a, float("inf")),
           torch_fn=lambda a: torch.nn.functional.normalize(a, p=float("inf"))),
    OpCase("normalize_axis_alias", lambda a: F.normalize(a, axis=0), [_r(3, 2)],
           reference=lambda a: _np_normalize(a, dim=0),
           torch_fn=lambda a: torch.nn.functional.normalize(a, dim=0)),
]
for _dim, _sa, _sb in (((1, (3, 4), (3, 4))), (-1, (2, 3, 5), (2, 3, 5)), (0, (4, 3), (4, 1)),
                       (1, (2, 4, 3), (4, 3)), (-2, (1, 5, 2), (3, 5, 1))):
    CASES.append(OpCase(
        f"cosine_similarity_dim{_dim}_{'x'.join(map(str, _sa))}_{'x'.join(map(str, _sb))}",
        lambda a, b, d=_dim: F.cosine_similarity(a, b, dim=d), [_r(*_sa), _r(*_sb)],
        reference=lambda a, b, d=_dim: _np_cos(a, b, d),
        torch_fn=lambda a, b, d=_dim: torch.nn.functional.cosine_similarity(a, b, dim=d)))
CASES += [
    OpCase("cosine_similarity_noncontiguous", F.cosine_similarity,
           [noncontiguous(_r(3, 4)), noncontiguous(_r(3, 4))], reference=_np_cos,
           torch_fn=lambda a, b: torch.nn.functional.cosine_similarity(a, b)),
    OpCase("cosine_similarity_large_eps", lambda a, b: F.cosine_similarity(a, b, eps=5.0),
           [_r(3, 4), _r(3, 4)], reference=lambda a, b: _np_cos(a, b, eps=5.0),
           torch_fn=lambda a, b: torch.nn.functional.cosine_similarity(a, b, eps=5.0)),
    # one vector far below eps: PyTorch clamps each norm alone and still differentiates
    # through the unclamped norm; x2's second row is zero (its norm's gradient is 0)
    OpCase("cosine_similarity_tiny_and_zero_vectors",
           lambda a, b: F.cosine_similarity(a, b, eps=1e-3),
           [np.array([[1e-4, 2e-4, -1e-4], [1.0, 2.0, 3.0]]),
            np.array([[3.0, 1.0, 2.0], [0.0, 0.0, 0.0]])],
           reference=lambda a, b: _np_cos(a, b, eps=1e-3),
           torch_fn=lambda a, b: torch.nn.functional.cosine_similarity(a, b, eps=1e-3),
           eps=1e-8),
]


# Not the derivative of the value on purpose, so finite differences cannot check them (the
# PyTorch comparison does): at a zero vector and at tied maxima normalize is not
# differentiable (PyTorch picks a subgradient), and PyTorch's
# cosine_similarity differentiates through the norms as if they were not clamped to eps.
NOT_FD = {"normalize_zero_row", "normalize_inf_ties", "cosine_similarity_large_eps",
          "cosine_similarity_tiny_and_zero_vectors"}


@pytest.mark.parametrize("case", [c for c in CASES if c.name not in NOT_FD], ids=str)
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
def test_normalize_hand_computed_and_zero_vector_stays_zero():
    y = F.normalize(fb.tensor([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(y.data, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_normalize_below_eps_divides_by_eps_in_value_and_gradient():
    """PyTorch: ``x / norm.clamp_min(eps)``; below eps the gradient is ``g / eps``."""
    x = fb.tensor([[0.0, 0.0], [1e-13, 0.0]], dtype=fb.float64, requires_grad=True)
    F.normalize(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.full((2, 2), 1e12))


def test_cosine_similarity_tiny_vector_gradient_matches_torch_exactly():
    pytest.importorskip("torch")
    a = np.array([[1e-9, 2e-9, 0.0], [1.0, 2.0, 3.0]])
    b = np.array([[3.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    x1, x2 = (fb.tensor(v, dtype=fb.float64, requires_grad=True) for v in (a, b))
    t1, t2 = (torch.tensor(v, requires_grad=True) for v in (a, b))
    y = F.cosine_similarity(x1, x2)
    ty = torch.nn.functional.cosine_similarity(t1, t2)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x1.grad.data, t1.grad.numpy(), rtol=1e-10)  # ~7e7: not clamped
    np.testing.assert_allclose(x2.grad.data, t2.grad.numpy(), rtol=1e-10)


def test_cosine_similarity_of_parallel_vectors_is_one():
    x = fb.tensor([[1.0, 2.0, 2.0]])
    assert abs(F.cosine_similarity(x, 3 * x).item() - 1.0) < 1e-6


@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.normalize(fb.ones(2, 3), p=0), ValueError, r"normalize: expected p > 0, got 0"),
    (lambda: F.normalize(fb.ones(2, 3), dim=2), ValueError,
     r"normalize: dim 2 is out of range for a tensor with 2 dims"),
    (lambda: F.normalize(fb.ones(2, dtype=fb.int64), dim=0), TypeError,
     r"normalize: expected a floating-point tensor, got dtype int64"),
    (lambda: F.cosine_similarity(fb.ones(2, 3), fb.ones(2, 4)), ValueError,
     r"cosine_similarity: shapes \(2, 3\) and \(2, 4\) do not broadcast"),
    (lambda: F.cosine_similarity(fb.ones(3), np.ones(3), dim=0), TypeError,
     r"cosine_similarity: expected x2 to be a Tensor, got ndarray"),
    (lambda: F.cosine_similarity(fb.ones(2, 3), fb.ones(2, 3), dim=1, axis=1), TypeError,
     r"cosine_similarity\(\): got both dim= and axis="),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
