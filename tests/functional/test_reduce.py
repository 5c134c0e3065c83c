"""functional.reduce: a registry of reductions over axes (None, int, negative, tuple,
keepdims, 0-d) + the generic checks, then stability, ties and errors."""

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
        ("max", F.max, np.max,
         lambda a, ax, k: a.amax(dim=_tdim(ax), keepdim=k) if ax is not None else a.max()),
        ("min", F.min, np.min,
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
    OpCase("max_method_dim_keepdim", lambda a: a.max(dim=0, keepdim=True), [_r(3, 4)],
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
    F.max(x, 1).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]


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


@pytest.mark.parametrize("fn", [F.sum, F.mean, F.max, F.logsumexp, F.var])
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
