"""functional.reduce: a registry of reductions over axes (None, int, negative, tuple,
keepdims, 0-d) + the generic checks, then stability, ties and errors."""

from __future__ import annotations

import numpy as np
import pytest
from harness import (
    HAS_TORCH,
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

rng = np.random.default_rng(1)


def _r(*shape):
    return rng.standard_normal(shape)


def _np_lse(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis) if axis is not None else y.reshape(())


def _np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _tdim(axis):
    return () if axis is None else axis


# axis, keepdims combinations shared by the plain reductions
AXES = [(None, False), (1, False), (-1, True), ((0, 2), False), ((0, -1), True)]


def _axis_tag(axis, keep):
    a = "all" if axis is None else str(axis).replace(" ", "").replace(",", "_")
    return f"{a}{'_keep' if keep else ''}"


CASES = []
for _axis, _keep in AXES:
    _tag = _axis_tag(_axis, _keep)

    def _mk(fb_fn, np_fn, t_fn, axis=_axis, keep=_keep):
        return (lambda a: fb_fn(a, axis, keep),
                lambda a: np_fn(a, axis=axis, keepdims=keep),
                lambda a: t_fn(a, axis, keep))

    for _name, _fb, _np, _t in [
        ("sum", F.sum, np.sum, lambda a, ax, k: a.sum(dim=_tdim(ax), keepdim=k)),
        ("mean", F.mean, np.mean, lambda a, ax, k: a.mean(dim=_tdim(ax), keepdim=k)),
        ("var", F.var, lambda a, axis, keepdims: np.var(a, axis=axis, keepdims=keepdims, ddof=1),
         lambda a, ax, k: torch.var(a, dim=ax, keepdim=k)),
        ("amax", F.amax, np.max,
         lambda a, ax, k: a.amax(dim=_tdim(ax), keepdim=k) if ax is not None else a.max()),
        ("amin", F.amin, np.min,
         lambda a, ax, k: a.amin(dim=_tdim(ax), keepdim=k) if ax is not None else a.min()),
        ("logsumexp", F.logsumexp, _np_lse,
         lambda a, ax, k: torch.logsumexp(a, dim=_tdim(ax) if ax is not None
                                          else tuple(range(a.ndim)), keepdim=k)),
    ]:
        _f, _ref, _tf = _mk(_fb, _np, _t)
        CASES.append(OpCase(f"{_name}_{_tag}", _f, [_r(2, 3, 4)], reference=_ref, torch_fn=_tf))

CASES += [
    OpCase("sum_noncontiguous", lambda a: F.sum(a, 0), [noncontiguous(_r(3, 4))],
           reference=lambda a: a.sum(0), torch_fn=lambda a: a.sum(0)),
    OpCase("mean_0d", lambda a: F.mean(a), [_r()], reference=np.mean, torch_fn=torch and
           torch.mean),
    OpCase("sum_0d_axis0", lambda a: F.sum(a, 0), [_r()], reference=lambda a: a,
           torch_fn=lambda a: a.sum(0)),
    OpCase("var_population", lambda a: F.var(a, 1, correction=0), [_r(3, 4)],
           reference=lambda a: np.var(a, axis=1),
           torch_fn=lambda a: torch.var(a, dim=1, correction=0)),
    OpCase("amax_method_dim_keepdim", lambda a: a.amax(dim=0, keepdim=True), [_r(3, 4)],
           reference=lambda a: a.max(0, keepdims=True),
           torch_fn=lambda a: a.amax(dim=0, keepdim=True)),
    # softmax / log_softmax along each axis, plus logits of +-1000 (must not overflow)
    OpCase("softmax_last", F.softmax, [_r(3, 4)], reference=_np_softmax,
           torch_fn=lambda a: torch.softmax(a, -1)),
    OpCase("softmax_axis0", lambda a: F.softmax(a, 0), [_r(3, 4)],
           reference=lambda a: _np_softmax(a, 0), torch_fn=lambda a: torch.softmax(a, 0)),
    OpCase("softmax_3d_axis1", lambda a: a.softmax(dim=1), [_r(2, 3, 4)],
           reference=lambda a: _np_softmax(a, 1), torch_fn=lambda a: torch.softmax(a, 1)),
    OpCase("softmax_huge_logits", F.softmax, [np.array([[1000.0, 999.0, -1000.0]])],
           reference=_np_softmax, torch_fn=lambda a: torch.softmax(a, -1)),
    OpCase("softmax_noncontiguous", F.softmax, [noncontiguous(_r(3, 4))],
           reference=_np_softmax, torch_fn=lambda a: torch.softmax(a, -1)),
    OpCase("log_softmax_last", F.log_softmax, [_r(3, 4)], reference=_np_log_softmax,
           torch_fn=lambda a: torch.log_softmax(a, -1)),
    OpCase("log_softmax_axis0", lambda a: F.log_softmax(a, 0), [_r(3, 4)],
           reference=lambda a: _np_log_softmax(a, 0),
           torch_fn=lambda a: torch.log_softmax(a, 0)),
    OpCase("log_softmax_huge_logits", F.log_softmax, [np.array([[1000.0, -1000.0, 0.0]])],
           reference=_np_log_softmax, torch_fn=lambda a: torch.log_softmax(a, -1)),
    OpCase("logsumexp_huge", lambda a: F.logsumexp(a, 1), [np.array([[1000.0, 999.0],
                                                                     [-1000.0, -1001.0]])],
           reference=lambda a: _np_lse(a, 1), torch_fn=lambda a: torch.logsumexp(a, 1)),
    # reductions with indices: (values, indices) named tuples, compared output by output
    OpCase("max_dim1", lambda a: F.max(a, 1), [_r(3, 4)], torch_fn=lambda a: torch.max(a, 1)),
    OpCase("max_dim0_keepdim", lambda a: a.max(dim=0, keepdim=True), [_r(3, 4)],
           torch_fn=lambda a: a.max(dim=0, keepdim=True)),
    OpCase("min_dim_neg", lambda a: F.min(a, axis=-1), [_r(2, 3, 4)],
           torch_fn=lambda a: torch.min(a, -1)),
    OpCase("max_all", lambda a: a.max(), [_r(3, 4)], reference=np.max,
           torch_fn=lambda a: a.max()),
    OpCase("max_two_tensors", lambda a, b: F.max(a, b), [_r(3, 4), _r(3, 4)],
           reference=np.maximum, torch_fn=lambda a, b: torch.max(a, b)),
    OpCase("topk2_dim1", lambda a: F.topk(a, 2, dim=1), [_r(3, 5)],
           torch_fn=lambda a: torch.topk(a, 2, dim=1)),
    OpCase("topk3_smallest_dim0", lambda a: a.topk(3, 0, largest=False), [_r(4, 2, 3)],
           torch_fn=lambda a: a.topk(3, 0, largest=False)),
    OpCase("topk0", lambda a: F.topk(a, 0), [_r(3, 4)], torch_fn=lambda a: torch.topk(a, 0),
           grad=[False]),
    OpCase("sort_last", lambda a: F.sort(a), [_r(3, 5)], reference=None,
           torch_fn=lambda a: torch.sort(a)),
    OpCase("sort_desc_dim0", lambda a: a.sort(dim=0, descending=True), [_r(4, 3)],
           torch_fn=lambda a: a.sort(dim=0, descending=True)),
    OpCase("argsort_desc", lambda a: F.argsort(a, dim=1, descending=True), [_r(3, 5)],
           reference=lambda a: np.argsort(-a, axis=1, kind="stable"),
           torch_fn=lambda a: torch.argsort(a, dim=1, descending=True), grad=[False]),
    OpCase("kthvalue2_dim1", lambda a: F.kthvalue(a, 2, 1), [_r(3, 5)],
           torch_fn=lambda a: torch.kthvalue(a, 2, 1)),
    OpCase("kthvalue_keepdim", lambda a: a.kthvalue(3, dim=0, keepdim=True), [_r(4, 3)],
           torch_fn=lambda a: a.kthvalue(3, dim=0, keepdim=True)),
    OpCase("median_all_even", lambda a: F.median(a), [_r(3, 4)],
           torch_fn=lambda a: torch.median(a)),
    OpCase("median_all_odd", lambda a: a.median(), [_r(5)], reference=np.median,
           torch_fn=lambda a: a.median()),
    OpCase("median_dim1_even", lambda a: F.median(a, dim=1), [_r(3, 4)],
           torch_fn=lambda a: torch.median(a, dim=1)),
    OpCase("median_dim0_keepdim", lambda a: a.median(0, keepdim=True), [_r(5, 2)],
           torch_fn=lambda a: a.median(0, keepdim=True)),
    # std, prod, norm
    OpCase("std_all", lambda a: F.std(a), [_r(3, 4)], reference=lambda a: np.std(a, ddof=1),
           torch_fn=lambda a: torch.std(a)),
    OpCase("std_dim1_keepdim", lambda a: a.std(dim=1, keepdim=True), [_r(3, 4)],
           reference=lambda a: np.std(a, axis=1, ddof=1, keepdims=True),
           torch_fn=lambda a: a.std(dim=1, keepdim=True)),
    OpCase("std_population_dims", lambda a: F.std(a, (0, 2), correction=0), [_r(2, 3, 4)],
           reference=lambda a: np.std(a, axis=(0, 2)),
           torch_fn=lambda a: torch.std(a, dim=(0, 2), correction=0)),
    OpCase("std_unbiased_false", lambda a: F.std(a, 0, unbiased=False), [_r(3, 4)],
           reference=lambda a: np.std(a, axis=0),
           torch_fn=lambda a: torch.std(a, dim=0, correction=0)),
    OpCase("prod_all", lambda a: F.prod(a), [_r(2, 3)], reference=np.prod,
           torch_fn=lambda a: torch.prod(a)),
    OpCase("prod_dim1", lambda a: a.prod(1), [_r(3, 4)], reference=lambda a: a.prod(1),
           torch_fn=lambda a: a.prod(1)),
    OpCase("prod_dim0_keepdim", lambda a: F.prod(a, dim=0, keepdim=True), [_r(3, 4)],
           reference=lambda a: a.prod(0, keepdims=True),
           torch_fn=lambda a: torch.prod(a, 0, keepdim=True)),
    OpCase("prod_with_zeros", lambda a: F.prod(a, -1),
           [np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.5, -2.0, 0.5]])],
           reference=lambda a: a.prod(-1), torch_fn=lambda a: torch.prod(a, -1)),
    OpCase("norm_all", lambda a: fb.norm(a), [_r(3, 4)], reference=np.linalg.norm,
           torch_fn=lambda a: torch.norm(a)),
    OpCase("norm_p1_dim1", lambda a: a.norm(1, dim=1), [_r(3, 4)],
           reference=lambda a: np.abs(a).sum(1), torch_fn=lambda a: a.norm(1, dim=1)),
    OpCase("norm_p3_dims_keepdim", lambda a: fb.norm(a, 3, (0, 2), keepdim=True),
           [_r(2, 3, 4)],
           reference=lambda a: (np.abs(a) ** 3).sum((0, 2), keepdims=True) ** (1 / 3),
           torch_fn=lambda a: torch.norm(a, 3, (0, 2), keepdim=True)),
    OpCase("norm_inf_dim1", lambda a: fb.norm(a, float("inf"), 1), [_r(3, 4)],
           reference=lambda a: np.abs(a).max(1),
           torch_fn=lambda a: torch.norm(a, float("inf"), 1)),
    # argmax / argmin: int64, no gradient
    OpCase("argmax_axis1", lambda a: F.argmax(a, 1), [_r(3, 4)],
           reference=lambda a: np.argmax(a, 1), torch_fn=lambda a: torch.argmax(a, 1),
           grad=[False]),
    OpCase("argmax_flat", F.argmax, [_r(3, 4)], reference=np.argmax,
           torch_fn=lambda a: torch.argmax(a), grad=[False]),
    OpCase("argmin_neg_axis_keep", lambda a: F.argmin(a, -1, keepdims=True), [_r(3, 4)],
           reference=lambda a: np.argmin(a, -1, keepdims=True),
           torch_fn=lambda a: torch.argmin(a, -1, keepdim=True), grad=[False]),
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
def test_max_ties_share_the_gradient():
    x = fb.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], requires_grad=True)
    F.amax(x, 1).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]


def test_max_over_dim_gives_its_gradient_to_the_first_maximum_only():
    """PyTorch's max(dim): the gradient goes to the returned index (amax shares it)."""
    x = fb.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], requires_grad=True)
    values, indices = F.max(x, 1)
    assert indices.tolist() == [1, 0]
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


def test_argmax_is_int64_without_gradient_and_first_on_ties():
    x = fb.tensor([[1.0, 3.0, 3.0]], requires_grad=True)
    i = x.argmax(dim=1)
    assert i.dtype == np.int64 and not i.requires_grad
    assert i.tolist() == [1]


def test_softmax_and_log_softmax_at_1000_are_finite_and_consistent():
    x = fb.tensor([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]], requires_grad=True)
    p = F.softmax(x)
    lp = F.log_softmax(x)
    assert np.isfinite(p.data).all() and np.isfinite(lp.data).all()
    np.testing.assert_allclose(p.data.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.exp(lp.data), p.data, atol=1e-7)
    (lp * fb.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])).sum().backward()
    assert np.isfinite(x.grad.data).all()


def test_logsumexp_of_all_minus_inf_is_minus_inf_without_warning():
    y = F.logsumexp(fb.tensor([-np.inf, -np.inf]))
    assert y.item() == -np.inf


def test_var_of_one_element_is_nan_without_warning():
    assert np.isnan(F.var(fb.tensor([1.0])).item())


@pytest.mark.parametrize("fn", [F.sum, F.mean, F.amax, F.max, F.logsumexp, F.var, F.std])
def test_axis_out_of_range_names_the_function(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: axis 2 is out of range for a "
                                         rf"tensor with 2 dims"):
        fn(fb.ones(2, 3), 2)


def test_repeated_axis_is_an_error():
    with pytest.raises(ValueError, match=r"sum: repeated axis"):
        F.sum(fb.ones(2, 3), (1, -1))


def test_max_of_empty_tensor_is_an_error():
    with pytest.raises(ValueError, match=r"max: expected a non-empty tensor, got shape \(0,\)"):
        F.max(fb.zeros(0))


def test_dim_and_axis_spellings_reach_the_same_argument():
    x = fb.tensor(_r(2, 3, 4).astype(np.float32))
    for fn in (F.sum, F.mean, F.var, F.std, F.amax, F.logsumexp):
        a = fn(x, dim=1, keepdim=True)
        b = fn(x, axis=1, keepdims=True)
        assert a.shape == (2, 1, 4) and np.array_equal(a.data, b.data), fn.__name__
    assert np.array_equal(F.softmax(x, dim=1).data, F.softmax(x, axis=1).data)
    assert fb.cat([x, x], dim=2).shape == (2, 3, 8) == fb.cat([x, x], axis=2).shape
    assert fb.stack([x, x], dim=1).shape == (2, 2, 3, 4)
    assert x.split(2, axis=2)[0].shape == (2, 3, 2)
    with pytest.raises(TypeError, match=r"sum\(\): got both axis= and dim="):
        F.sum(x, axis=1, dim=1)


def test_zero_norm_has_zero_gradient_like_pytorch():
    x = fb.zeros(3, requires_grad=True)
    fb.norm(x).backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]


def test_reductions_with_indices_errors_name_the_function():
    x = fb.ones(2, 3)
    with pytest.raises(ValueError, match=r"topk: k must be an int in \[0, 3\]"):
        F.topk(x, 4)
    with pytest.raises(ValueError, match=r"kthvalue: k must be an int in \[1, 3\]"):
        F.kthvalue(x, 0)
    with pytest.raises(TypeError, match=r"max\(\): dim must be an int"):
        F.max(x, (0, 1))
    with pytest.raises(ValueError, match=r"norm: p must be"):
        fb.norm(x, 0.5)


def test_std_of_a_constant_slice_has_zero_gradient_like_pytorch():
    # d std / dx = (x - mean) / ((N - c) std) is 0/0 there; PyTorch masks it to 0
    x = fb.tensor([[1.0, 5.0, 5.0], [2.0, 2.0, 2.0]], requires_grad=True)
    x.std(dim=1).sum().backward()
    assert np.allclose(x.grad.data, [[-(3**-0.5), 3**-0.5 / 2, 3**-0.5 / 2], [0.0, 0.0, 0.0]])
    x.grad = None
    F.std(x[1], correction=0).backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]



MEDIAN_TIES = [([2.0, 2.0, 2.0], 2.0, [1 / 3] * 3),
               ([[1.0, 5.0], [5.0, 5.0]], 5.0, [[0.0, 1 / 3], [1 / 3, 1 / 3]]),
               ([1.0, np.nan, np.nan], np.nan, [0.0, 0.5, 0.5])]


def _median_all(lib, a):
    x = lib.tensor(a, requires_grad=True)
    m = x.median()
    m.backward()
    return m.item(), x.grad.tolist()


@pytest.mark.parametrize(("a", "value", "grad"), MEDIAN_TIES, ids=["all", "three", "nan"])
def test_median_of_all_shares_the_gradient_among_ties_and_propagates_nan(a, value, grad):
    got_value, got_grad = _median_all(fb, a)
    np.testing.assert_allclose(got_value, value)
    np.testing.assert_allclose(got_grad, grad, rtol=1e-6)


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")
@pytest.mark.parametrize(("a", "value", "grad"), MEDIAN_TIES, ids=["all", "three", "nan"])
def test_median_of_all_ties_and_nan_match_pytorch(a, value, grad):
    import torch

    (v, g), (tv, tg) = _median_all(fb, a), _median_all(torch, a)
    np.testing.assert_allclose(v, tv)
    np.testing.assert_allclose(g, tg, rtol=1e-6)


@pytest.mark.skipif(torch is None, reason="PyTorch (the oracle) is not installed")
def test_median_over_a_dim_propagates_nan_like_pytorch():
    a = np.array([[3.0, np.nan, 1.0, np.nan], [4.0, 2.0, 1.0, 3.0]], np.float32)
    got = F.median(fb.tensor(a), dim=1)
    want = torch.median(torch.from_numpy(a), dim=1)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    assert got.indices.tolist() == want.indices.tolist() == [1, 1]


def test_median_over_a_dim_nan_row_gets_the_gradient_at_its_nan():
    x = fb.tensor([[3.0, np.nan, 1.0], [4.0, 2.0, 1.0]], requires_grad=True)
    values, indices = F.median(x, dim=1)
    assert np.isnan(values.data[0]) and values.data[1] == 2.0
    values[1:].sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
