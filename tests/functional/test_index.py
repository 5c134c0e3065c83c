"""functional.index: gather / scatter / scatter_add / masked_fill / one_hot through the op
registry (dims, negative dims, index smaller than the input, duplicate indices) + the generic
checks, then hand-computed cases and errors."""

from __future__ import annotations

import numpy as np
import pytest
from harness import (
    OpCase,
    check_float32,
    check_gradcheck,
    check_reference,
    check_torch,
    differentiable,
    noncontiguous,
)

import filterbank as fb
import filterbank.functional as F

try:
    import torch
except ImportError:  # the torch checks skip themselves
    torch = None

rng = np.random.default_rng(10)


def _r(*shape):
    return rng.standard_normal(shape)


def _np_gather(a, dim, idx):
    box = tuple(slice(0, n) if d != dim % a.ndim else slice(None)
                for d, n in enumerate(idx.shape))
    return np.take_along_axis(a[box], idx, axis=dim)


def _np_scatter_add(a, dim, idx, src):
    """Loop reference (tests only): out[i with i_dim -> idx[i]] += src[i]."""
    out = a.copy()
    d = dim % a.ndim
    for pos in np.ndindex(idx.shape):
        tgt = list(pos)
        tgt[d] = idx[pos]
        out[tuple(tgt)] += src[pos]
    return out


def _np_scatter(a, dim, idx, src):
    out = a.copy()
    d = dim % a.ndim
    for pos in np.ndindex(idx.shape):
        tgt = list(pos)
        tgt[d] = idx[pos]
        out[tuple(tgt)] = src[pos] if isinstance(src, np.ndarray) else src
    return out


def _tidx(idx):
    return torch.from_numpy(idx)


def _fit(src, idx):
    """``src`` cut to ``idx``'s shape: torch's scatter backward fails on a larger src
    ("invalid gradient ... expected shape compatible"); the cut gives the same gradient."""
    return src[tuple(slice(0, n) for n in idx.shape)]


def _unique_rows_index(shape, dim, size, seed):
    """An index of ``shape`` whose values along ``dim`` are distinct (a permutation prefix),
    so that scatter's result does not depend on which duplicate write wins."""
    g = np.random.default_rng(seed)
    d = dim % len(shape)
    keys = g.random(shape[:d] + (size,) + shape[d + 1:])
    perm = np.argsort(keys, axis=d)
    box = tuple(slice(0, n) for n in shape)
    return perm[box].astype(np.int64)


CASES = []
# gather over dims (negative too), with an index smaller than the input in other dims and
# repeated picks (whose gradients must add up)
for _dim, _xs, _ishape in [(0, (4, 3), (5, 3)), (1, (3, 4), (3, 6)), (-1, (2, 3, 4), (2, 2, 5)),
                           (1, (2, 3, 4), (1, 7, 2)), (-3, (3, 2, 2), (4, 2, 1))]:
    _idx = rng.integers(0, _xs[_dim], _ishape)
    CASES.append(OpCase(
        f"gather_dim{_dim}_{'x'.join(map(str, _ishape))}",
        lambda a, d=_dim, i=_idx: F.gather(a, d, fb.tensor(i)), [_r(*_xs)],
        reference=lambda a, d=_dim, i=_idx: _np_gather(a, d, i),
        torch_fn=lambda a, d=_dim, i=_idx: torch.gather(a, d, _tidx(i))))
_IDX = np.array([[0, 0, 2], [1, 0, 0]])
CASES += [
    OpCase("gather_method_noncontiguous", lambda a: a.gather(1, fb.tensor(_IDX)),
           [noncontiguous(_r(2, 3))], reference=lambda a: _np_gather(a, 1, _IDX),
           torch_fn=lambda a: a.gather(1, _tidx(_IDX))),
    OpCase("gather_axis_alias", lambda a: F.gather(a, axis=0, index=fb.tensor(_IDX)),
           [_r(3, 3)], reference=lambda a: _np_gather(a, 0, _IDX),
           torch_fn=lambda a: torch.gather(a, 0, _tidx(_IDX))),
]
# scatter_add: duplicate indices (must add up), index smaller than src, negative dims
for _dim, _xs, _ishape, _ss in [(0, (3, 4), (6, 4), (6, 4)), (1, (2, 5), (2, 9), (3, 9)),
                                (-1, (2, 3, 4), (2, 2, 6), (2, 3, 7)),
                                (-2, (2, 3, 2), (1, 5, 2), (2, 5, 2))]:
    _idx = rng.integers(0, _xs[_dim], _ishape)
    CASES.append(OpCase(
        f"scatter_add_dim{_dim}_{'x'.join(map(str, _ishape))}",
        lambda a, s, d=_dim, i=_idx: F.scatter_add(a, d, fb.tensor(i), s),
        [_r(*_xs), _r(*_ss)],
        reference=lambda a, s, d=_dim, i=_idx: _np_scatter_add(a, d, i, s),
        torch_fn=lambda a, s, d=_dim, i=_idx: torch.scatter_add(a, d, _tidx(i), _fit(s, i))))
CASES.append(OpCase(
    "scatter_add_all_to_one_place", lambda a, s: a.scatter_add(0, fb.tensor([[0, 0, 0]] * 4),
                                                               s),
    [_r(2, 3), _r(4, 3)],
    reference=lambda a, s: _np_scatter_add(a, 0, np.zeros((4, 3), np.int64), s),
    torch_fn=lambda a, s: a.scatter_add(0, torch.zeros(4, 3, dtype=torch.int64), s)))
# scatter: distinct targets per line (duplicates are unspecified in PyTorch too)
for _dim, _xs, _ishape, _ss in [(0, (5, 3), (3, 3), (4, 3)), (1, (3, 6), (2, 4), (3, 5)),
                                (-1, (2, 3, 5), (2, 3, 5), (2, 3, 5))]:
    _idx = _unique_rows_index(_ishape, _dim, _xs[_dim], seed=len(CASES))
    CASES.append(OpCase(
        f"scatter_src_dim{_dim}_{'x'.join(map(str, _ishape))}",
        lambda a, s, d=_dim, i=_idx: F.scatter(a, d, fb.tensor(i), s), [_r(*_xs), _r(*_ss)],
        reference=lambda a, s, d=_dim, i=_idx: _np_scatter(a, d, i, s),
        torch_fn=lambda a, s, d=_dim, i=_idx: torch.scatter(a, d, _tidx(i), _fit(s, i))))
_SIDX = _unique_rows_index((2, 2), 1, 4, seed=3)
CASES += [
    OpCase("scatter_value_method", lambda a: a.scatter(1, fb.tensor(_SIDX), value=-2.5),
           [_r(2, 4)], reference=lambda a: _np_scatter(a, 1, _SIDX, -2.5),
           torch_fn=lambda a: a.scatter(1, _tidx(_SIDX), value=-2.5)),
    OpCase("scatter_number_positional", lambda a: F.scatter(a, -1, fb.tensor(_SIDX), 7.0),
           [noncontiguous(_r(2, 4))], reference=lambda a: _np_scatter(a, -1, _SIDX, 7.0),
           torch_fn=lambda a: torch.scatter(a, -1, _tidx(_SIDX), 7.0)),
]
# masked_fill: scalar value, broadcast mask, 0-d tensor value with a gradient
_M = rng.random((3, 4)) > 0.5
_MROW = np.array([True, False, False, True])
CASES += [
    OpCase("masked_fill_scalar", lambda a: a.masked_fill(fb.tensor(_M), -1.5), [_r(3, 4)],
           reference=lambda a: np.where(_M, -1.5, a),
           torch_fn=lambda a: a.masked_fill(torch.from_numpy(_M), -1.5)),
    OpCase("masked_fill_broadcast_mask", lambda a: F.masked_fill(a, _MROW, 0.0),
           [noncontiguous(_r(2, 3, 4))], reference=lambda a: np.where(_MROW, 0.0, a),
           torch_fn=lambda a: a.masked_fill(torch.from_numpy(_MROW), 0.0)),
    OpCase("masked_fill_mask_broadcasts_input", lambda a: F.masked_fill(a, _M, 2.0), [_r(4)],
           reference=lambda a: np.where(_M, 2.0, a),
           torch_fn=lambda a: a.masked_fill(torch.from_numpy(_M), 2.0)),
    OpCase("masked_fill_tensor_value", lambda a, v: F.masked_fill(a, _M, v), [_r(3, 4), _r()],
           reference=lambda a, v: np.where(_M, v, a),
           torch_fn=lambda a, v: a.masked_fill(torch.from_numpy(_M), v)),
]
# one_hot: integer in, int64 out, no gradient
_LAB = np.array([[0, 3, 1], [2, 2, 0]])
CASES += [
    OpCase("one_hot_infer", F.one_hot, [_LAB], reference=lambda a: np.eye(4, dtype=np.int64)[a],
           torch_fn=lambda a: torch.nn.functional.one_hot(a)),
    OpCase("one_hot_num_classes", lambda a: F.one_hot(a, num_classes=6), [_LAB[0]],
           reference=lambda a: np.eye(6, dtype=np.int64)[a],
           torch_fn=lambda a: torch.nn.functional.one_hot(a, num_classes=6)),
]


@pytest.mark.parametrize("case", [c for c in CASES if differentiable(c)], ids=str)
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
def test_gather_hand_computed_and_its_gradient_adds_repeated_picks():
    x = fb.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = fb.gather(x, 1, fb.tensor([[0, 0], [1, 0]]))
    assert y.tolist() == [[1.0, 1.0], [4.0, 3.0]]
    y.sum().backward()
    assert x.grad.tolist() == [[2.0, 0.0], [1.0, 1.0]]


def test_scatter_add_sums_duplicates_and_gathers_the_src_gradient():
    x = fb.zeros(3, requires_grad=True)
    src = fb.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = fb.scatter_add(x, 0, fb.tensor([0, 2, 0]), src)
    assert y.tolist() == [4.0, 0.0, 2.0]
    (y * fb.tensor([10.0, 20.0, 30.0])).sum().backward()
    assert x.grad.tolist() == [10.0, 20.0, 30.0]
    assert src.grad.tolist() == [10.0, 30.0, 10.0]


def test_scatter_add_on_integers_is_exact():
    y = fb.zeros(2, dtype=fb.int64).scatter_add(0, fb.tensor([1, 1, 1]),
                                                fb.tensor([2**40 + 1, 1, 1]))
    assert y.dtype == np.int64 and y.tolist() == [0, 2**40 + 3]


def test_scatter_zeroes_the_overwritten_input_gradient():
    x = fb.ones(2, 3, requires_grad=True)
    y = x.scatter(1, fb.tensor([[2], [0]]), value=5.0)
    assert y.tolist() == [[1.0, 1.0, 5.0], [5.0, 1.0, 1.0]]
    y.sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]


def test_masked_fill_value_tensor_receives_the_masked_gradient_and_keeps_input_dtype():
    x = fb.ones(2, 2, requires_grad=True)
    v = fb.tensor(3.0, dtype=fb.float64, requires_grad=True)
    y = x.masked_fill(fb.tensor([[True, False], [True, True]]), v)
    assert y.dtype == np.float32
    y.sum().backward()
    assert v.grad.item() == 3.0 and x.grad.tolist() == [[0.0, 1.0], [0.0, 0.0]]


def test_one_hot_is_int64_and_matches_torch_semantics():
    y = F.one_hot(fb.tensor([0, 2]), 3)
    assert y.dtype == np.int64 and y.tolist() == [[1, 0, 0], [0, 0, 1]]
    assert not y.requires_grad


@pytest.mark.parametrize("call, exc, match", [
    (lambda: fb.gather(fb.ones(2, 3), 1, fb.tensor([[0.5]])), TypeError,
     r"gather: expected an integer index tensor, got dtype float32"),
    (lambda: fb.gather(fb.ones(2, 3), 1, fb.tensor([0, 1])), ValueError,
     r"gather: index must have as many dims as the input \(2\), got index of shape \(2,\)"),
    (lambda: fb.gather(fb.ones(2, 3), 1, fb.tensor([[0], [1], [2]])), ValueError,
     r"gather: index has size 3 in dim 0 but the input has only 2"),
    (lambda: fb.gather(fb.ones(2, 3), 1, fb.tensor([[3]])), IndexError,
     r"gather: index 3 is out of bounds for dim 1 with size 3"),
    (lambda: fb.gather(fb.ones(2, 3), 1, fb.tensor([[-1]])), IndexError,
     r"gather: index -1 is out of bounds"),
    (lambda: fb.gather(fb.ones(2, 3), 2, fb.tensor([[0]])), ValueError,
     r"gather: dim 2 is out of range for a tensor with 2 dims"),
    (lambda: fb.gather(fb.ones(2, 3), 1, fb.tensor([[0]]), axis=1), TypeError,
     r"gather\(\) got multiple values for argument 'dim'"),
    (lambda: fb.scatter_add(fb.ones(2, 3), 1, fb.tensor([[0, 1]]), fb.ones(1, 1)), ValueError,
     r"scatter_add: index has size 2 in dim 1 but src has only 1"),
    (lambda: fb.scatter_add(fb.ones(2), 0, fb.tensor([0]), fb.ones(1, dtype=fb.float64)),
     TypeError, r"scatter_add: expected src to have the input's dtype float32, got float64"),
    (lambda: fb.scatter(fb.ones(2), 0, fb.tensor([0])), TypeError,
     r"scatter: expected exactly one of src \(a tensor\) and value \(a scalar\)"),
    (lambda: fb.masked_fill(fb.ones(2), fb.tensor([1, 0]), 0.0), TypeError,
     r"masked_fill: expected a boolean mask, got dtype int64"),
    (lambda: fb.masked_fill(fb.ones(2), fb.tensor([True, False, True]), 0.0), ValueError,
     r"masked_fill: the mask of shape \(3,\) does not broadcast with the input of shape "
     r"\(2,\)"),
    (lambda: fb.masked_fill(fb.ones(2), fb.tensor([True, False]), fb.ones(2)), ValueError,
     r"masked_fill: expected a 0-d value tensor, got shape \(2,\)"),
    (lambda: F.one_hot(fb.tensor([0.0, 1.0])), TypeError,
     r"one_hot: expected an integer tensor of class indices, got dtype float32"),
    (lambda: F.one_hot(fb.tensor([0, 3]), 3), ValueError,
     r"one_hot: class values must be smaller than num_classes \(3\), got 3"),
    (lambda: F.one_hot(fb.tensor([-1, 0])), ValueError,
     r"one_hot: class values must be non-negative, got -1"),
    (lambda: F.one_hot(fb.zeros(0, dtype=fb.int64)), ValueError,
     r"one_hot: cannot infer the number of classes from an empty tensor"),
])
def test_errors_name_the_function_and_the_values(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
