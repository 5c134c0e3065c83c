"""functional losses: a registry of cases + generic checks (float64 gradcheck, PyTorch values
and gradients in float32), extreme-value stability, and error messages."""

from __future__ import annotations

import numpy as np
import pytest
from harness import OpCase, as_tensors, assert_close, check_gradcheck, noncontiguous

import filterbank as fb
import filterbank.functional as F

rng = np.random.default_rng(0)


def _r(*shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def _probs(*shape, axis=1):
    z = rng.standard_normal(shape)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _uniform(*shape, lo=0.05, hi=0.95):
    return rng.uniform(lo, hi, shape)


def _labels(n_classes, *shape):
    return rng.integers(0, n_classes, shape).astype(np.int64)


def _tt(a):
    """A torch tensor for a NumPy constant (float32, ints as int64); None stays None."""
    import torch

    if a is None:
        return None
    a = np.asarray(a)
    return torch.tensor(a.astype(np.float32) if a.dtype.kind == "f" else a)


def _torch_loss(name, **kw):
    """torch.nn.functional.<name> with NumPy weights converted to torch tensors."""

    def fn(*xs):
        import torch.nn.functional as TF

        conv = {k: (_tt(v) if k in ("weight", "pos_weight") else v) for k, v in kw.items()}
        return getattr(TF, name)(*xs, **conv)

    return fn


def _case(name, fn_name, inputs, grad=None, fb_kw=None, **kw):
    """Register ``F.<fn_name>(*inputs, **kw)`` against ``torch...<fn_name>`` with the same
    keyword arguments (``fb_kw`` only for filterbank-only spellings)."""
    fb_fn = getattr(F, fn_name)
    kwargs = dict(kw, **(fb_kw or {}))
    return OpCase(name, lambda *xs: fb_fn(*xs, **kwargs), inputs,
                  torch_fn=_torch_loss(fn_name, **kw), grad=grad)


RED = ("mean", "sum", "none")
CASES: list[OpCase] = []

# ------------------------------------------------------------ regression losses
for red in RED:
    x, t = _r(3, 4), _r(3, 4)
    CASES += [
        _case(f"mse_{red}", "mse_loss", [x, t], reduction=red),
        _case(f"l1_{red}", "l1_loss", [x, t], reduction=red),
        _case(f"smooth_l1_{red}", "smooth_l1_loss", [x, t], reduction=red),
        _case(f"huber_{red}", "huber_loss", [x, t], reduction=red),
        _case(f"mse_weight_{red}", "mse_loss", [x, t], reduction=red,
              weight=_uniform(3, 4, lo=0.1, hi=2.0)),
        _case(f"l1_weight_{red}", "l1_loss", [x, t], reduction=red,
              weight=_uniform(3, 4, lo=0.1, hi=2.0)),
        _case(f"huber_weight_{red}", "huber_loss", [x, t], reduction=red, delta=0.7,
              weight=_uniform(3, 4, lo=0.1, hi=2.0)),
    ]
CASES += [
    _case("smooth_l1_beta_0.5", "smooth_l1_loss", [_r(2, 5), _r(2, 5)], beta=0.5),
    _case("smooth_l1_beta_0_is_l1", "smooth_l1_loss", [_r(2, 5), _r(2, 5)], beta=0.0),
    _case("smooth_l1_beta_3", "smooth_l1_loss", [_r(2, 5, scale=3), _r(2, 5)], beta=3.0,
          reduction="sum"),
    _case("huber_delta_0.3", "huber_loss", [_r(2, 5), _r(2, 5)], delta=0.3),
    _case("huber_delta_2", "huber_loss", [_r(2, 5, scale=3), _r(2, 5)], delta=2.0,
          reduction="none"),
    _case("mse_4d_noncontiguous", "mse_loss", [noncontiguous(_r(2, 3, 2, 2)), _r(2, 3, 2, 2)]),
    _case("mse_input_grad_only", "mse_loss", [_r(5), _r(5)], grad=[True, False]),
    _case("mse_0d", "mse_loss", [np.array(0.7), np.array(-0.2)]),
]

# --------------------------------------------------------------- binary losses
for red in RED:
    CASES += [
        _case(f"bce_{red}", "binary_cross_entropy", [_uniform(3, 4), _uniform(3, 4, lo=0, hi=1)],
              reduction=red),
        _case(f"bce_weight_{red}", "binary_cross_entropy",
              [_uniform(3, 4), rng.integers(0, 2, (3, 4)).astype(float)], reduction=red,
              weight=_uniform(4, lo=0.2, hi=2.0)),
        _case(f"bce_logits_{red}", "binary_cross_entropy_with_logits",
              [_r(3, 4, scale=3), _uniform(3, 4, lo=0, hi=1)], reduction=red),
        _case(f"bce_logits_pos_weight_{red}", "binary_cross_entropy_with_logits",
              [_r(3, 4, scale=3), rng.integers(0, 2, (3, 4)).astype(float)], reduction=red,
              pos_weight=_uniform(4, lo=0.5, hi=3.0)),
    ]
CASES += [
    _case("bce_logits_weight_and_pos_weight", "binary_cross_entropy_with_logits",
          [_r(2, 3, 2, 2), _uniform(2, 3, 2, 2, lo=0, hi=1)],
          weight=_uniform(3, 1, 1, lo=0.2, hi=2.0), pos_weight=_uniform(3, 1, 1, lo=0.5, hi=3)),
    _case("bce_logits_multilabel_input_grad_only", "binary_cross_entropy_with_logits",
          [_r(4, 5), (rng.random((4, 5)) < 0.4).astype(float)], grad=[True, False]),
    _case("bce_4d_noncontiguous", "binary_cross_entropy",
          [noncontiguous(_uniform(2, 2, 3, 3)), _uniform(2, 2, 3, 3, lo=0, hi=1)]),
]



def _masked_bce_case(name, x, t, grad=None, reduction="mean", **kw):
    """binary_cross_entropy_with_logits(ignore_index=-1) against torch's BCE-with-logits on
    the known entries only (targets -1 or NaN are unknown; torch has no such option)."""
    known = ~(np.isnan(t) | (t == -1))

    def torch_fn(x, t):
        import torch
        import torch.nn.functional as TF

        k = torch.from_numpy(known)
        conv = {n: _tt(np.broadcast_to(v, known.shape).copy()) for n, v in kw.items()}
        if reduction == "none":  # the full shape, 0 at unknown entries
            loss = TF.binary_cross_entropy_with_logits(x, torch.where(k, t, 0.0),
                                                       reduction="none", **conv)
            return torch.where(k, loss, 0.0)
        return TF.binary_cross_entropy_with_logits(
            x[k], t[k], reduction=reduction, **{n: v[k] for n, v in conv.items()})

    return OpCase(name, lambda *xs: F.binary_cross_entropy_with_logits(
        *xs, reduction=reduction, ignore_index=-1, **kw), [x, t], torch_fn=torch_fn, grad=grad)


def _with_unknown(t, fraction, value):
    t = t.copy()
    t[rng.random(t.shape) < fraction] = value
    return t


for red in RED:
    CASES += [
        # a target of exactly -1 moves off -1 under finite differences: input gradient only
        _masked_bce_case(f"bce_logits_ignore_minus1_{red}", _r(4, 5, scale=3),
                         _with_unknown((rng.random((4, 5)) < 0.5).astype(float), 0.3, -1.0),
                         grad=[True, False], reduction=red),
        _masked_bce_case(f"bce_logits_ignore_nan_{red}", _r(4, 5, scale=3),
                         _with_unknown(_uniform(4, 5, lo=0, hi=1), 0.3, np.nan), reduction=red),
    ]
CASES += [
    _masked_bce_case("bce_logits_ignore_weight_pos_weight", _r(3, 2, 4),
                     _with_unknown(_with_unknown(_uniform(3, 2, 4, lo=0, hi=1), 0.2, np.nan),
                                   0.2, -1.0),
                     grad=[True, False], weight=_uniform(4, lo=0.2, hi=2.0),
                     pos_weight=_uniform(4, lo=0.5, hi=3.0)),
]

# ------------------------------------------------------------ class-index losses
_W5 = _uniform(5, lo=0.2, hi=2.0)
_T_IGN = np.array([1, -100, 4, 0, -100, 2], dtype=np.int64)  # two ignored samples
_T_IGN2 = np.array([1, 2, 4, 2, 0, 3], dtype=np.int64)  # ignore_index=2 hits twice
for red in RED:
    CASES += [
        _case(f"ce_{red}", "cross_entropy", [_r(6, 5), _labels(5, 6)], reduction=red),
        _case(f"ce_weight_{red}", "cross_entropy", [_r(6, 5), _labels(5, 6)], reduction=red,
              weight=_W5),
        _case(f"ce_ignore_{red}", "cross_entropy", [_r(6, 5), _T_IGN], reduction=red),
        _case(f"ce_weight_ignore_smooth_{red}", "cross_entropy", [_r(6, 5), _T_IGN2],
              reduction=red, weight=_W5, ignore_index=2, label_smoothing=0.2),
        _case(f"ce_smooth_{red}", "cross_entropy", [_r(6, 5), _labels(5, 6)], reduction=red,
              label_smoothing=0.1),
        _case(f"ce_probs_{red}", "cross_entropy", [_r(4, 5), _probs(4, 5)], reduction=red),
        _case(f"ce_probs_weight_smooth_{red}", "cross_entropy", [_r(4, 5), _probs(4, 5)],
              reduction=red, weight=_W5, label_smoothing=0.3),
        _case(f"ce_nd_{red}", "cross_entropy", [_r(2, 3, 2, 3), _labels(3, 2, 2, 3)],
              reduction=red),
        _case(f"nll_{red}", "nll_loss", [_r(6, 5), _labels(5, 6)], reduction=red),
        _case(f"nll_weight_ignore_{red}", "nll_loss", [_r(6, 5), _T_IGN], reduction=red,
              weight=_W5),
    ]
_T_ND = _labels(3, 2, 2, 3)
_T_ND[0, 1, 2] = _T_ND[1, 0, 0] = -100
CASES += [
    _case("ce_nd_weight_ignore_smooth", "cross_entropy", [_r(2, 3, 2, 3), _T_ND],
          weight=_uniform(3, lo=0.2, hi=2), label_smoothing=0.15),
    _case("ce_nd_probs", "cross_entropy", [_r(2, 3, 2, 2), _probs(2, 3, 2, 2)]),
    _case("ce_3d_sequence", "cross_entropy", [_r(2, 4, 3), _labels(4, 2, 3)],
          reduction="none"),
    _case("ce_unbatched", "cross_entropy", [_r(5), np.array(3)]),
    _case("ce_unbatched_probs_smooth", "cross_entropy", [_r(5), _probs(5, axis=0)],
          label_smoothing=0.1),
    _case("ce_onehot_targets", "cross_entropy", [_r(4, 3), np.eye(3)[[0, 2, 1, 2]]],
          grad=[True, False]),
    _case("ce_noncontiguous", "cross_entropy", [noncontiguous(_r(4, 5)), _labels(5, 4)],
          weight=_W5),
    _case("ce_smoothing_1", "cross_entropy", [_r(4, 5), _labels(5, 4)], label_smoothing=1.0),
    _case("nll_nd_weight", "nll_loss", [_r(2, 3, 2, 2), _labels(3, 2, 2, 2)],
          weight=_uniform(3, lo=0.2, hi=2)),
    _case("nll_unbatched", "nll_loss", [_r(4), np.array(1)], reduction="sum"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vs_torch(case):
    torch = pytest.importorskip("torch")
    inputs = as_tensors(case, dtype=np.float32)
    tin = [_tt(a).requires_grad_(t.requires_grad) if t.requires_grad else _tt(a)
           for a, t in zip(case.inputs, inputs)]
    y = case.fn(*inputs)
    ty = case.torch_fn(*tin)
    assert y.dtype == np.float32, f"output dtype {y.dtype}"
    assert_close(y, ty, what="forward")
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    for i, (t, tt) in enumerate(zip(inputs, tin)):
        if t.requires_grad:
            assert t.grad.dtype == np.float32, f"grad {i} dtype {t.grad.dtype}"
            assert_close(t.grad, tt.grad, what=f"grad of input {i}")


# ---------------------------------------------------------------- hand-made answers
def test_lecture_squared_loss_convention():
    # E = 1/2 sum (y - t)^2 has dE/dy = y - t; torch-style MSE (no 1/2) has twice that
    y = fb.tensor([[1.0, 2.0], [0.5, -1.0]], requires_grad=True)
    t = fb.tensor([[0.0, 1.0], [1.5, 1.0]])
    e = 0.5 * F.mse_loss(y, t, reduction="sum")
    assert e.item() == pytest.approx(0.5 * (1 + 1 + 1 + 4))
    e.backward()
    assert y.grad.tolist() == (y.detach() - t).tolist()


def test_masked_bce_lecture_example_y_1_1_unknown_0():
    # y = [1 1 ? 0]: the loss is the mean of the three known terms, the "?" gets no gradient
    x = fb.tensor([[2.0, -1.0, 3.0, 0.5]], requires_grad=True)
    for unknown in (-1.0, np.nan):
        x.grad = None
        y = fb.tensor([[1.0, 1.0, unknown, 0.0]])
        loss = F.binary_cross_entropy_with_logits(x, y, ignore_index=-1)
        terms = [np.log1p(np.exp(-2.0)), np.log1p(np.exp(1.0)), np.log1p(np.exp(0.5))]
        assert loss.item() == pytest.approx(np.mean(terms), rel=1e-6)
        loss.backward()
        sig = 1 / (1 + np.exp(-x.data[0]))
        assert_close(x.grad, [[(sig[0] - 1) / 3, (sig[1] - 1) / 3, 0.0, sig[3] / 3]])
    # without ignore_index a NaN target poisons the loss, as in PyTorch
    assert np.isnan(F.binary_cross_entropy_with_logits(x, y).item())


def test_masked_bce_with_nothing_known_is_nan_without_warnings():
    with np.errstate(all="raise"):
        out = F.binary_cross_entropy_with_logits(fb.randn(2, 3), fb.full((2, 3), -1.0),
                                                 ignore_index=-1)
    assert np.isnan(out.item())


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    x = fb.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], requires_grad=True)
    F.cross_entropy(x, fb.tensor([1, 2]), reduction="sum").backward()
    p = np.exp(x.data) / np.exp(x.data).sum(1, keepdims=True)
    assert_close(x.grad, p - np.eye(3)[[1, 2]])


def test_cross_entropy_accepts_tensor_list_and_array_targets():
    x = fb.randn(3, 4)
    a = F.cross_entropy(x, fb.tensor([0, 3, 1])).item()
    assert F.cross_entropy(x, [0, 3, 1]).item() == a
    assert F.cross_entropy(x, np.array([0, 3, 1], dtype=np.int32)).item() == a


def test_all_targets_ignored_gives_nan_like_torch():
    with np.errstate(divide="raise", invalid="raise"):  # ...without a NumPy warning
        out = F.cross_entropy(fb.randn(2, 3), fb.tensor([-100, -100]))
    assert np.isnan(out.item())


def test_float32_graph_stays_float32_with_float64_constants():
    x = fb.randn(4, 3, requires_grad=True)
    losses = [
        F.mse_loss(x, np.zeros((4, 3))),
        F.cross_entropy(x, [0, 1, 2, 0], weight=np.array([1.0, 2.0, 3.0])),
        F.cross_entropy(x, np.full((4, 3), 1 / 3)),
        F.binary_cross_entropy_with_logits(x, np.ones((4, 3)), pos_weight=np.ones(3)),
        F.nll_loss(x, [0, 1, 2, 0], weight=np.ones(3)),
    ]
    for loss in losses:
        assert loss.dtype == np.float32
        x.grad = None
        loss.backward()
        assert x.grad.dtype == np.float32


# ------------------------------------------------------------------- extreme values
EXTREME = [  # (name, loss, input, target, kwargs)
    ("ce_logits_100", "cross_entropy",
     [[100.0, -100.0, 0.0], [-100.0, -100.0, 100.0], [1e4, -1e4, 0.0]], [1, 2, 2], {}),
    # the plain classifier path skips the max-shift only while every row max is in (-80, 80)
    ("ce_logits_all_below_minus_100", "cross_entropy",
     [[-200.0, -300.0, -250.0], [-120.0, -121.0, -500.0]], [0, 1], {}),
    ("ce_logits_near_79", "cross_entropy",
     [[79.0, -79.0, 0.0], [-79.0, -90.0, -79.5], [78.0, 79.5, -100.0]], [1, 2, 0], {}),
    ("ce_logits_100_smooth_weight", "cross_entropy",
     [[100.0, -100.0, 0.0], [-100.0, -100.0, 100.0]], [1, 0],
     {"label_smoothing": 0.1, "weight": np.array([0.5, 1.0, 2.0])}),
    ("ce_probs_logits_100", "cross_entropy",
     [[100.0, -100.0], [-100.0, 100.0]], [[0.0, 1.0], [0.5, 0.5]], {}),
    ("bce_logits_100", "binary_cross_entropy_with_logits",
     [100.0, -100.0, 100.0, -100.0, 0.0], [0.0, 1.0, 1.0, 0.0, 1.0], {}),
    ("bce_logits_100_pos_weight", "binary_cross_entropy_with_logits",
     [100.0, -100.0, 100.0, -100.0], [0.0, 1.0, 1.0, 0.0], {"pos_weight": np.full(4, 3.0)}),
    ("bce_probs_0_and_1", "binary_cross_entropy",
     [0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], {}),
    ("nll_logprob_minus_inf_unpicked", "nll_loss",
     [[0.0, -np.inf], [-np.inf, 0.0]], [0, 1], {}),
]


@pytest.mark.parametrize("name, fn_name, x, t, kw", EXTREME, ids=[e[0] for e in EXTREME])
def test_extreme_values_are_finite_and_match_torch(name, fn_name, x, t, kw):
    torch = pytest.importorskip("torch")
    x = np.array(x, dtype=np.float32)
    t = np.array(t)
    xt = fb.Tensor(x, requires_grad=True)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no NumPy warnings
        loss = getattr(F, fn_name)(xt, fb.tensor(t), **kw)
        loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(xt.grad.data))
    tx = torch.tensor(x, requires_grad=True)
    tl = _torch_loss(fn_name, **kw)(tx, _tt(t))
    tl.backward()
    assert_close(loss, tl, what="loss")
    assert_close(xt.grad, tx.grad, what="grad")


def test_bce_target_gradient_is_finite_at_saturated_probabilities():
    # PyTorch's d/dt = -logit(p) is +-inf at p in {0, 1}; ours differentiates the clamped loss
    p = fb.tensor([0.0, 1.0, 0.5])
    t = fb.tensor([0.0, 1.0, 0.3], requires_grad=True)
    F.binary_cross_entropy(p, t, reduction="sum").backward()
    assert t.grad.tolist() == [100.0, -100.0, 0.0]


# --------------------------------------------------------------------------- errors
ERRORS = [
    (lambda: F.mse_loss(fb.zeros(3, 1), fb.zeros(3)), ValueError,
     r"mse_loss: target shape \(3,\) does not match input shape \(3, 1\)"),
    (lambda: F.l1_loss(fb.zeros(3), fb.zeros(3), reduction="avg"), ValueError,
     r"l1_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: F.mse_loss(fb.zeros(3), fb.zeros(3), weight=np.ones(4)), ValueError,
     r"mse_loss: weight of shape \(4,\) does not broadcast to the input shape \(3,\)"),
    (lambda: F.smooth_l1_loss(fb.zeros(2), fb.zeros(2), beta=-1), ValueError,
     r"smooth_l1_loss: beta must be >= 0, got -1"),
    (lambda: F.huber_loss(fb.zeros(2), fb.zeros(2), delta=0), ValueError,
     r"huber_loss: delta must be > 0, got 0"),
    (lambda: F.cross_entropy(fb.zeros(4, 3), fb.tensor([0, 1, 2])), ValueError,
     r"cross_entropy: class-index target must have shape \(4,\) for input of shape \(4, 3\), "
     r"got \(3,\)"),
    (lambda: F.cross_entropy(fb.zeros(2, 3, 5, 5), fb.zeros(2, 4, 5, dtype="int64")),
     ValueError, r"must have shape \(2, 5, 5\) for input of shape \(2, 3, 5, 5\), got \(2, 4, 5\)"),
    (lambda: F.cross_entropy(fb.zeros(2, 3), fb.tensor([1, 3])), ValueError,
     r"cross_entropy: target class index 3 is out of range for 3 classes \(expected 0\.\.2, "
     r"or ignore_index=-100\)"),
    (lambda: F.cross_entropy(fb.zeros(2, 3), fb.tensor([-1, 0])), ValueError,
     r"target class index -1 is out of range"),
    (lambda: F.cross_entropy(fb.zeros(2, 3), fb.zeros(2, 4)), ValueError,
     r"cross_entropy: target shape \(2, 4\) does not match input shape \(2, 3\)"),
    # issue 15 item 13: float class labels, as read from a CSV, are probabilities
    (lambda: F.cross_entropy(fb.zeros(4, 10), fb.tensor([1.0, 2.0, 3.0, 4.0])), ValueError,
     r"cross_entropy: target shape \(4,\) does not match input shape \(4, 10\): float targets "
     r"\(dtype float32\) are read as class probabilities, which need the input's shape "
     r"\(4, 10\); class indices must be integers of shape \(4,\) \(e\.g\. y\.long\(\)"),
    (lambda: F.cross_entropy(fb.zeros(2, 3, 5, 5), fb.zeros(2, 5, 5)), ValueError,
     r"read as class probabilities, which need the input's shape \(2, 3, 5, 5\); class "
     r"indices must be integers of shape \(2, 5, 5\)"),
    (lambda: F.cross_entropy(fb.zeros(2, 3), fb.tensor([True, False])), TypeError,
     r"cross_entropy: target must hold int class indices or float probabilities, got dtype bool"),
    (lambda: F.cross_entropy(fb.zeros(2, 3), fb.zeros(2, 3), ignore_index=0), ValueError,
     r"ignore_index is only supported with class-index targets"),
    (lambda: F.cross_entropy(fb.zeros(2, 3), fb.tensor([0, 1]), weight=np.ones(4)), ValueError,
     r"cross_entropy: weight must have shape \(3,\) \(one per class\), got \(4,\)"),
    (lambda: F.cross_entropy(fb.zeros(2, 3), fb.tensor([0, 1]), label_smoothing=1.5),
     ValueError, r"cross_entropy: label_smoothing must be in \[0, 1\], got 1.5"),
    (lambda: F.cross_entropy(fb.tensor(1.0), fb.tensor(0)), ValueError,
     r"cross_entropy: input must have a class dimension"),
    (lambda: F.nll_loss(fb.zeros(2, 3), fb.zeros(2)), TypeError,
     r"nll_loss: target must hold int class indices, got dtype float32"),
    (lambda: F.nll_loss(fb.zeros(2, 3), fb.tensor([0, 7])), ValueError,
     r"nll_loss: target class index 7 is out of range for 3 classes"),
    (lambda: F.binary_cross_entropy(fb.tensor([0.5, 1.5]), fb.tensor([0.0, 1.0])), ValueError,
     r"binary_cross_entropy: input must hold probabilities in \[0, 1\], got 1.5"),
    (lambda: F.binary_cross_entropy(fb.zeros(2, 3), fb.zeros(3)), ValueError,
     r"binary_cross_entropy: target shape \(3,\) does not match input shape \(2, 3\)"),
    (lambda: F.binary_cross_entropy_with_logits(fb.zeros(2, 3), fb.zeros(2, 3),
                                                pos_weight=np.ones(2)), ValueError,
     r"binary_cross_entropy_with_logits: pos_weight of shape \(2,\) does not broadcast to the "
     r"input shape \(2, 3\)"),
    (lambda: F.binary_cross_entropy_with_logits(fb.zeros(2), fb.zeros(2), ignore_index="?"),
     TypeError, r"binary_cross_entropy_with_logits: ignore_index must be a number or None, "
     r"got str"),
    (lambda: F.binary_cross_entropy_with_logits(fb.zeros(2, 3), fb.zeros(3), ignore_index=-1),
     ValueError, r"binary_cross_entropy_with_logits: target shape \(3,\) does not match input "
     r"shape \(2, 3\)"),
]


@pytest.mark.parametrize("call, exc, match", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
