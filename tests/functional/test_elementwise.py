"""functional.elementwise: a registry of op cases + the generic checks, then the special cases
(ties, kinks, stability, errors, comparisons)."""

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

rng = np.random.default_rng(0)


def _r(*shape):
    return rng.standard_normal(shape)


def _pos(*shape):
    return rng.uniform(0.5, 2.0, shape)


def _away(*shape, lo=0.2):
    """Values with |x| >= lo: keeps finite differences off kinks at 0."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(lo, 2.0, shape)


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


# (name, filterbank fn, NumPy reference, torch fn, input maker for a, input maker for b)
BINARY = [
    ("add", F.add, np.add, lambda a, b: a + b, _r, _r),
    ("sub", F.sub, np.subtract, lambda a, b: a - b, _r, _r),
    ("mul", F.mul, np.multiply, lambda a, b: a * b, _r, _r),
    ("div", F.div, np.divide, lambda a, b: a / b, _r, _pos),
    ("pow", F.pow, np.power, lambda a, b: a ** b, _pos, _r),
    ("maximum", F.maximum, np.maximum, lambda a, b: torch.maximum(a, b), _r, _r),
    ("minimum", F.minimum, np.minimum, lambda a, b: torch.minimum(a, b), _r, _r),
]
# shapes of a and b: equal, broadcast one side, broadcast both sides, 0-d against n-d
SHAPES = [("same", (2, 3), (2, 3)), ("row", (2, 3), (3,)), ("both", (2, 1, 3), (4, 1)),
          ("scalar", (), (2, 3))]

CASES = []
for _name, _fn, _ref, _tfn, _ma, _mb in BINARY:
    for _tag, _sa, _sb in SHAPES:
        CASES.append(OpCase(f"{_name}_{_tag}", _fn, [_ma(*_sa), _mb(*_sb)], reference=_ref,
                            torch_fn=_tfn))
    CASES.append(OpCase(f"{_name}_noncontiguous", _fn,
                        [noncontiguous(_ma(3, 4)), noncontiguous(_mb(3, 4))],
                        reference=_ref, torch_fn=_tfn))
    CASES.append(OpCase(f"{_name}_only_b_grad", _fn, [_ma(2, 3), _mb(3)], reference=_ref,
                        torch_fn=_tfn, grad=[False, True]))

UNARY = [
    ("neg", F.neg, np.negative, lambda a: -a, _r),
    ("exp", F.exp, np.exp, torch and torch.exp, _r),
    ("log", F.log, np.log, torch and torch.log, _pos),
    ("sqrt", F.sqrt, np.sqrt, torch and torch.sqrt, _pos),
    ("abs", F.abs, np.abs, torch and torch.abs, _away),
    ("sin", F.sin, np.sin, torch and torch.sin, _r),
    ("cos", F.cos, np.cos, torch and torch.cos, _r),
    ("tanh", F.tanh, np.tanh, torch and torch.tanh, _r),
    ("sigmoid", F.sigmoid, _np_sigmoid, torch and torch.sigmoid, _r),
    ("relu", F.relu, lambda a: np.maximum(a, 0), torch and torch.relu, _away),
]
for _name, _fn, _ref, _tfn, _m in UNARY:
    CASES.append(OpCase(f"{_name}", _fn, [_m(2, 3)], reference=_ref, torch_fn=_tfn))
    CASES.append(OpCase(f"{_name}_0d", _fn, [_m()], reference=_ref, torch_fn=_tfn))
    CASES.append(OpCase(f"{_name}_noncontiguous", _fn, [noncontiguous(_m(3, 4))],
                        reference=_ref, torch_fn=_tfn))

_C = _r(3)  # a float64 NumPy constant mixed into the graph
CASES += [
    # Python operators, reflected ones with Python scalars and NumPy arrays included
    OpCase("op_radd", lambda a: 2 + a, [_r(2, 3)], reference=lambda a: 2 + a,
           torch_fn=lambda a: 2 + a),
    OpCase("op_rsub", lambda a: 1 - a, [_r(2, 3)], reference=lambda a: 1 - a,
           torch_fn=lambda a: 1 - a),
    OpCase("op_rmul", lambda a: 2 * a, [_r(2, 3)], reference=lambda a: 2 * a,
           torch_fn=lambda a: 2 * a),
    OpCase("op_rdiv", lambda a: 2 / a, [_pos(2, 3)], reference=lambda a: 2 / a,
           torch_fn=lambda a: 2 / a),
    OpCase("op_square", lambda a: a ** 2, [_r(2, 3)], reference=lambda a: a ** 2,
           torch_fn=lambda a: a ** 2),
    OpCase("op_pow_half", lambda a: a ** 0.5, [_pos(2, 3)], reference=np.sqrt,
           torch_fn=lambda a: a ** 0.5),
    OpCase("op_rpow", lambda a: 2.0 ** a, [_r(2, 3)], reference=lambda a: 2.0 ** a,
           torch_fn=lambda a: 2.0 ** a),
    OpCase("op_neg", lambda a: -a, [_r(2, 3)], reference=np.negative, torch_fn=lambda a: -a),
    OpCase("op_abs", abs, [_away(2, 3)], reference=np.abs, torch_fn=abs),
    OpCase("op_array_rmul", lambda a: _C * a, [_r(2, 3)], reference=lambda a: _C * a),
    OpCase("op_array_sub", lambda a: a - _C, [_r(2, 3)], reference=lambda a: a - _C),
    OpCase("op_array_rdiv", lambda a: _C / a, [_pos(2, 3)], reference=lambda a: _C / a),
    OpCase("op_used_twice", lambda a: a * a + a, [_r(2, 3)], reference=lambda a: a * a + a,
           torch_fn=lambda a: a * a + a),
    # clip: gradient 1 inside [min, max], 0 outside (inputs kept off the bounds)
    OpCase("clip_both", lambda a: F.clip(a, -0.5, 0.5),
           [np.array([[-1.2, -0.3, 0.1], [0.45, 0.8, -0.7]])],
           reference=lambda a: np.clip(a, -0.5, 0.5), torch_fn=lambda a: a.clamp(-0.5, 0.5)),
    OpCase("clip_min_only", lambda a: a.clamp(min=0.1), [_away(2, 3)],
           reference=lambda a: np.maximum(a, 0.1), torch_fn=lambda a: a.clamp(min=0.1)),
    OpCase("clip_max_only", lambda a: F.clip(a, max=0.1), [_away(2, 3)],
           reference=lambda a: np.minimum(a, 0.1), torch_fn=lambda a: a.clamp(max=0.1)),
    # where: the gradient flows to the chosen side only; a, b and condition broadcast
    OpCase("where", F.where, [rng.random((2, 3)) > 0.5, _r(2, 3), _r(3)],
           reference=np.where, torch_fn=lambda c, a, b: torch.where(c, a, b)),
    OpCase("where_scalar_other", lambda c, a: F.where(c, a, 0.0),
           [rng.random((2, 3)) > 0.5, _r(2, 3)], reference=lambda c, a: np.where(c, a, 0.0),
           torch_fn=lambda c, a: torch.where(c, a, 0.0)),
]


@pytest.mark.parametrize("case", [c for c in CASES if differentiable(c)], ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", [c for c in CASES if c.reference], ids=str)
def test_reference(case):
    check_reference(case)


@pytest.mark.parametrize("case", [c for c in CASES if c.torch_fn], ids=str)
def test_vs_torch(case):
    pytest.importorskip("torch")
    check_torch(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_float32(case):
    check_float32(case)


# ------------------------------------------------------------------------ special cases
@pytest.mark.parametrize("fn, a_wins", [(F.maximum, True), (F.minimum, True)])
def test_maximum_minimum_tie_gradient_goes_to_first_argument(fn, a_wins):
    a = fb.tensor([1.0, 2.0], requires_grad=True)
    b = fb.tensor([1.0, 2.0], requires_grad=True)
    fn(a, b).sum().backward()
    assert a.grad.tolist() == [1.0, 1.0]
    assert b.grad.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("fn", [F.abs, F.relu])
def test_subgradient_at_zero_is_zero(fn):
    x = fb.tensor([0.0], requires_grad=True)
    fn(x).sum().backward()
    assert x.grad.tolist() == [0.0]


def test_clip_gradient_at_the_bounds_is_one():
    x = fb.tensor([-1.0, 1.0], requires_grad=True)
    F.clip(x, -1.0, 1.0).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_sigmoid_is_stable_for_huge_inputs():
    x = fb.tensor([-1000.0, 0.0, 1000.0], requires_grad=True)
    y = F.sigmoid(x)  # filterwarnings=error: an overflow warning would fail here
    y.sum().backward()
    assert y.tolist() == [0.0, 0.5, 1.0]
    assert x.grad.tolist() == [0.0, 0.25, 0.0]


def test_pow_exponent_gradient_is_zero_where_base_is_not_positive():
    a = fb.tensor([0.0, -2.0, 2.0])
    b = fb.tensor([2.0, 2.0, 2.0], requires_grad=True)
    F.pow(a, b).sum().backward()
    assert b.grad.tolist() == pytest.approx([0.0, 0.0, 4 * np.log(2.0)])


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_shape_mismatch_names_op_and_both_shapes(name):
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) cannot be "
                                         rf"broadcast together"):
        getattr(F, name)(fb.ones(2, 3), fb.ones(4))


def test_where_shape_mismatch_names_all_shapes():
    with pytest.raises(ValueError, match=r"where: condition \(2,\), a \(3,\) and b \(3,\)"):
        F.where(np.array([True, False]), fb.ones(3), fb.ones(3))


def test_clip_without_bounds_raises():
    with pytest.raises(ValueError, match="clip: at least one of min and max"):
        F.clip(fb.ones(2))


@pytest.mark.parametrize("op, ref", [
    (lambda a, b: a < b, np.less), (lambda a, b: a <= b, np.less_equal),
    (lambda a, b: a > b, np.greater), (lambda a, b: a >= b, np.greater_equal),
    (lambda a, b: a == b, np.equal), (lambda a, b: a != b, np.not_equal),
])
def test_comparisons_are_boolean_and_carry_no_gradient(op, ref):
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([2.0, 2.0, 2.0])
    x = fb.tensor(a, requires_grad=True)
    for got in (op(x, fb.tensor(b)), op(x, b), op(x, 2.0)):
        assert got.dtype == np.bool_
        assert not got.requires_grad
        assert got.tolist() == ref(a, b).tolist()


def test_cast_changes_dtype_and_casts_the_gradient_back():
    x = fb.tensor([1.5, 2.5], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    assert x.grad.tolist() == [3.0, 5.0]
    assert x.float() is x  # same dtype: no new node
    assert not x.long().requires_grad  # integer results carry no gradient


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("n", [1, 6, 7, 8, 20])
def test_relu_in_chunks_against_a_zero_buffer(n, rows, monkeypatch):
    """ReLU's host path (max against slices of a zero buffer, chunk by chunk; with 3 rows
    split over threads) on sizes around the chunk: every element, NaN and infinities
    included, and its mask."""
    from filterbank.functional import elementwise as ew

    monkeypatch.setattr(ew, "_RELU_CHUNK", 7)
    monkeypatch.setattr(ew, "_relu_zeros", {})
    if rows > 1:
        monkeypatch.setattr(ew._parallel, "parts", lambda r, e: min(r, 2))
    a = np.random.default_rng(n).standard_normal((rows, n)).astype(np.float32)
    a[:, ::5] = -np.inf
    a[:, 1::6] = np.nan
    x = fb.tensor(a, requires_grad=True)
    y = fb.functional.relu(x)
    np.testing.assert_array_equal(y.data, np.where(np.isnan(a), np.nan, np.maximum(a, 0)))
    y.backward(fb.ones_like(y))
    np.testing.assert_array_equal(x.grad.data, (a > 0).astype(np.float32))
