"""functional.norm: batch/layer/group/instance/local-response normalisation.

A registry of cases (shapes, affine on/off, training/eval, batch 1, odd sizes, non-contiguous
inputs, gradient subsets) runs through the generic checks: float64 finite-difference
gradients, a NumPy reference and PyTorch (float32 forward and every gradient).
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import OpCase, as_tensors, assert_close, check_gradcheck, noncontiguous

import filterbank as fb
import filterbank.functional as F

rng = np.random.default_rng(0)


def _r(*shape):
    return rng.standard_normal(shape)


def _pos(*shape):
    """Parameters/variances away from zero (gamma in [0.5, 1.5])."""
    return rng.uniform(0.5, 1.5, shape)


# -------------------------------------------------------------------- NumPy references
def _np_norm(x, axes, eps=1e-5):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _cshape(ndim):
    return (1, -1) + (1,) * (ndim - 2)


def _chan(v, ndim):
    return v.reshape(_cshape(ndim))


def _affine(y, w, b, shape):
    if w is not None:
        y = y * w.reshape(shape)
    if b is not None:
        y = y + b.reshape(shape)
    return y


def _np_bn_train(x, w=None, b=None):
    return _affine(_np_norm(x, (0,) + tuple(range(2, x.ndim))), w, b, _cshape(x.ndim))


def _np_ln(x, w=None, b=None, *, shape):
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    return _affine(_np_norm(x, axes), w, b, shape)


def _np_gn(x, w=None, b=None, *, groups):
    n = x.shape[0]
    y = _np_norm(x.reshape(n, groups, -1), (2,)).reshape(x.shape)
    return _affine(y, w, b, _cshape(x.ndim))


def _np_lrn(x, *, size, alpha=1e-4, beta=0.75, k=1.0):
    # straight from the docstring formula: window [c - size//2, c + (size-1)//2], zeros outside
    c = x.shape[1]
    s = np.zeros_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - size // 2), min(c - 1, ch + (size - 1) // 2)
        s[:, ch] = (x[:, lo:hi + 1] ** 2).sum(axis=1)
    return x / (k + alpha / size * s) ** beta


# ------------------------------------------------------------------------- op wrappers
# Running statistics are fixed NumPy arrays here, handed to each call as fresh tensors so a
# training call's in-place update cannot leak between gradcheck evaluations or cases.
RM3, RV3 = _r(3), _pos(3)


def _fb_stats(rm, rv, like):
    if rm is None:
        return None, None
    return fb.Tensor(rm.astype(like.dtype)), fb.Tensor(rv.astype(like.dtype))


def _torch_stats(rm, rv, like):
    import torch

    if rm is None:
        return None, None
    return (torch.tensor(rm, dtype=like.dtype), torch.tensor(rv, dtype=like.dtype))


def bn(x, w=None, b=None, *, training, stats=None, momentum=0.1):
    rm, rv = _fb_stats(*(stats or (None, None)), x)
    return F.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum)


def torch_bn(x, w=None, b=None, *, training, stats=None, momentum=0.1):
    import torch

    rm, rv = _torch_stats(*(stats or (None, None)), x)
    return torch.nn.functional.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum)


def bn_bias_only(x, b, **kw):
    return bn(x, None, b, **kw)


def torch_bn_bias_only(x, b, **kw):
    return torch_bn(x, None, b, **kw)


def _np_bn_eval(x, w=None, b=None, *, training=False, stats, momentum=0.1):
    rm, rv = stats
    y = (x - _chan(rm, x.ndim)) / np.sqrt(_chan(rv, x.ndim) + 1e-5)
    return _affine(y, w, b, _cshape(x.ndim))


def _np_bn(x, w=None, b=None, *, training, stats=None, momentum=0.1):
    if training:
        return _np_bn_train(x, w, b)
    return _np_bn_eval(x, w, b, stats=stats)


def ln(x, w=None, b=None, *, shape):
    return F.layer_norm(x, shape, w, b)


def torch_ln(x, w=None, b=None, *, shape):
    import torch

    return torch.nn.functional.layer_norm(x, shape, w, b)


def gn(x, w=None, b=None, *, groups):
    return F.group_norm(x, groups, w, b)


def torch_gn(x, w=None, b=None, *, groups):
    import torch

    return torch.nn.functional.group_norm(x, groups, w, b)


def inorm(x, w=None, b=None, *, stats=None, use_input_stats=True):
    rm, rv = _fb_stats(*(stats or (None, None)), x)
    return F.instance_norm(x, rm, rv, w, b, use_input_stats=use_input_stats)


def torch_inorm(x, w=None, b=None, *, stats=None, use_input_stats=True):
    import torch

    rm, rv = _torch_stats(*(stats or (None, None)), x)
    return torch.nn.functional.instance_norm(x, rm, rv, w, b, use_input_stats=use_input_stats)


def _np_in(x, w=None, b=None, *, stats=None, use_input_stats=True):
    if not use_input_stats:
        return _np_bn_eval(x, w, b, stats=stats)
    return _np_gn(x, w, b, groups=x.shape[1])


def lrn(x, **kw):
    return F.local_response_norm(x, **kw)


def torch_lrn(x, **kw):
    import torch

    return torch.nn.functional.local_response_norm(x, **kw)


TRAIN = {"training": True}
EVAL = {"training": False, "stats": (RM3, RV3)}
LRN = {"alpha": 0.5, "beta": 0.75, "k": 2.0}  # large alpha: the window term matters

CASES = [
    # batch norm, training
    OpCase("bn_train_2d", bn, [_r(4, 3, 3, 2), _pos(3), _r(3)], TRAIN, _np_bn, torch_bn),
    OpCase("bn_train_no_affine", bn, [_r(3, 3, 2, 3)], TRAIN, _np_bn, torch_bn),
    OpCase("bn_train_bias_only", bn_bias_only, [_r(3, 3, 2, 2), _r(3)], TRAIN,
           lambda x, b, **kw: _np_bn(x, None, b, **kw), torch_bn_bias_only),
    OpCase("bn_train_1d_NC", bn, [_r(5, 3), _pos(3), _r(3)], TRAIN, _np_bn, torch_bn),
    OpCase("bn_train_1d_NCL", bn, [_r(2, 3, 5), _pos(3), _r(3)], TRAIN, _np_bn, torch_bn),
    OpCase("bn_train_3d", bn, [_r(2, 3, 2, 3, 2), _pos(3), _r(3)], TRAIN, _np_bn, torch_bn),
    OpCase("bn_train_batch1", bn, [_r(1, 3, 3, 3), _pos(3), _r(3)], TRAIN, _np_bn, torch_bn),
    OpCase("bn_train_running_stats", bn, [_r(4, 3, 2, 3), _pos(3), _r(3)],
           {"training": True, "stats": (RM3, RV3), "momentum": 0.3}, _np_bn, torch_bn),
    OpCase("bn_train_noncontiguous", bn, [noncontiguous(_r(3, 3, 3, 2)), _pos(3), _r(3)], TRAIN,
           _np_bn, torch_bn),
    OpCase("bn_train_input_grad_only", bn, [_r(3, 3, 2, 2), _pos(3), _r(3)], TRAIN, _np_bn,
           torch_bn, grad=[True, False, False]),
    OpCase("bn_train_param_grads_only", bn, [_r(3, 3, 2, 2), _pos(3), _r(3)], TRAIN, _np_bn,
           torch_bn, grad=[False, True, True]),
    # batch norm, evaluation (running statistics)
    OpCase("bn_eval_2d", bn, [_r(4, 3, 3, 2), _pos(3), _r(3)], EVAL, _np_bn, torch_bn),
    OpCase("bn_eval_batch1_no_affine", bn, [_r(1, 3, 2, 3)], EVAL, _np_bn, torch_bn),
    OpCase("bn_eval_1d_NC", bn, [_r(2, 3), _pos(3), _r(3)], EVAL, _np_bn, torch_bn),
    OpCase("bn_eval_noncontiguous_weight_grad_only", bn,
           [noncontiguous(_r(2, 3, 3, 2)), _pos(3), _r(3)], EVAL, _np_bn, torch_bn,
           grad=[False, True, False]),
    # layer norm
    OpCase("ln_last_dim", ln, [_r(4, 5), _pos(5), _r(5)], {"shape": (5,)}, _np_ln, torch_ln),
    OpCase("ln_two_dims", ln, [_r(2, 3, 4, 5), _pos(4, 5), _r(4, 5)], {"shape": (4, 5)},
           _np_ln, torch_ln),
    OpCase("ln_no_affine", ln, [_r(3, 7)], {"shape": (7,)}, _np_ln, torch_ln),
    OpCase("ln_batch1", ln, [_r(1, 3, 3), _pos(3, 3), _r(3, 3)], {"shape": (3, 3)}, _np_ln,
           torch_ln),
    OpCase("ln_whole_input", ln, [_r(2, 3), _pos(2, 3), _r(2, 3)], {"shape": (2, 3)}, _np_ln,
           torch_ln),
    OpCase("ln_noncontiguous", ln, [noncontiguous(_r(3, 2, 5)), _pos(5), _r(5)],
           {"shape": (5,)}, _np_ln, torch_ln),
    # group norm
    OpCase("gn_3_groups", gn, [_r(2, 6, 3, 3), _pos(6), _r(6)], {"groups": 3}, _np_gn, torch_gn),
    OpCase("gn_1_group", gn, [_r(2, 4, 3), _pos(4), _r(4)], {"groups": 1}, _np_gn, torch_gn),
    OpCase("gn_instance_groups", gn, [_r(2, 4, 5), _pos(4), _r(4)], {"groups": 4}, _np_gn,
           torch_gn),
    OpCase("gn_no_spatial", gn, [_r(3, 4), _pos(4), _r(4)], {"groups": 2}, _np_gn, torch_gn),
    OpCase("gn_batch1_no_affine", gn, [_r(1, 6, 2, 3)], {"groups": 2}, _np_gn, torch_gn),
    OpCase("gn_noncontiguous", gn, [noncontiguous(_r(2, 4, 3, 2)), _pos(4), _r(4)],
           {"groups": 2}, _np_gn, torch_gn),
    # instance norm
    OpCase("in_2d", inorm, [_r(2, 3, 3, 4)], {}, _np_in, torch_inorm),
    OpCase("in_2d_affine", inorm, [_r(2, 3, 3, 3), _pos(3), _r(3)], {}, _np_in, torch_inorm),
    OpCase("in_1d_batch1", inorm, [_r(1, 3, 5), _pos(3), _r(3)], {}, _np_in, torch_inorm),
    OpCase("in_3d", inorm, [_r(2, 3, 2, 2, 3)], {}, _np_in, torch_inorm),
    OpCase("in_running_stats", inorm, [_r(2, 3, 3, 3), _pos(3), _r(3)], {"stats": (RM3, RV3)},
           _np_in, torch_inorm),
    OpCase("in_eval_running_stats", inorm, [_r(2, 3, 3, 2), _pos(3), _r(3)],
           {"stats": (RM3, RV3), "use_input_stats": False}, _np_in, torch_inorm),
    OpCase("in_noncontiguous", inorm, [noncontiguous(_r(2, 3, 4, 3))], {}, _np_in, torch_inorm),
    # local response norm (sizes odd and even, larger than C, 3-d and 5-d inputs)
    OpCase("lrn_size1", lrn, [_r(2, 4, 3, 3)], {"size": 1, **LRN}, _np_lrn, torch_lrn),
    OpCase("lrn_size2", lrn, [_r(2, 5, 3, 2)], {"size": 2, **LRN}, _np_lrn, torch_lrn),
    OpCase("lrn_size3", lrn, [_r(1, 6, 3, 3)], {"size": 3, **LRN}, _np_lrn, torch_lrn),
    OpCase("lrn_size5_3d_input", lrn, [_r(2, 7, 4)], {"size": 5, **LRN}, _np_lrn, torch_lrn),
    OpCase("lrn_size4_5d_input", lrn, [_r(1, 5, 2, 2, 3)], {"size": 4, **LRN}, _np_lrn,
           torch_lrn),
    OpCase("lrn_size_above_channels", lrn, [_r(2, 3, 2, 2)], {"size": 7, **LRN}, _np_lrn,
           torch_lrn),
    OpCase("lrn_defaults", lrn, [_r(2, 6, 2, 3) * 20], {"size": 5}, _np_lrn, torch_lrn),
    OpCase("lrn_noncontiguous", lrn, [noncontiguous(_r(2, 5, 3, 3))], {"size": 3, **LRN},
           _np_lrn, torch_lrn),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_reference_float32(case):
    inputs = as_tensors(case, dtype=np.float32, requires_grad=False)
    y = case.fn(*inputs, **case.kwargs)
    assert y.dtype == np.float32
    assert_close(y, case.reference(*case.inputs, **case.kwargs), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vs_torch(case):
    torch = pytest.importorskip("torch")
    inputs = as_tensors(case, dtype=np.float32)
    tin = [torch.tensor(np.asarray(a, np.float32), requires_grad=t.requires_grad)
           for a, t in zip(case.inputs, inputs)]
    y = case.fn(*inputs, **case.kwargs)
    ty = case.torch_fn(*tin, **case.kwargs)
    assert y.dtype == np.float32
    assert_close(y, ty, what="forward")
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    for i, (t, tt) in enumerate(zip(inputs, tin)):
        if t.requires_grad:
            assert t.grad.dtype == np.float32
            assert_close(t.grad, tt.grad, what=f"grad of input {i}")
        else:
            assert t.grad is None


# ------------------------------------------------------------------- running statistics
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, 0.0])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 3, 4)])
def test_batch_norm_running_stats_vs_torch(momentum, shape):
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(2)
    rm, rv = fb.zeros(3), fb.ones(3)
    trm, trv = torch.zeros(3), torch.ones(3)
    for step in range(3):
        x = (g.standard_normal(shape) * 2 + step).astype(np.float32)
        F.batch_norm(fb.Tensor(x), rm, rv, training=True, momentum=momentum)
        torch.nn.functional.batch_norm(torch.from_numpy(x), trm, trv, training=True,
                                       momentum=momentum)
        assert rm.dtype == np.float32 and rv.dtype == np.float32
        assert_close(rm, trm, what=f"running_mean after step {step}")
        assert_close(rv, trv, what=f"running_var after step {step}")


@pytest.mark.parametrize("momentum", [0.1, 0.7])
def test_instance_norm_running_stats_vs_torch(momentum):
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(3)
    rm, rv = fb.zeros(3), fb.ones(3)
    trm, trv = torch.zeros(3), torch.ones(3)
    for step in range(3):
        x = (g.standard_normal((4, 3, 3, 2)) + step).astype(np.float32)
        F.instance_norm(fb.Tensor(x), rm, rv, momentum=momentum)
        torch.nn.functional.instance_norm(torch.from_numpy(x), trm, trv, momentum=momentum)
        assert_close(rm, trm, what=f"running_mean after step {step}")
        assert_close(rv, trv, what=f"running_var after step {step}")


def test_batch_norm_unbiased_running_var_by_hand():
    # channel values 1 and 3: batch mean 2, biased var 1, unbiased var 2
    x = fb.tensor([[1.0], [3.0]])
    rm, rv = fb.zeros(1), fb.ones(1)
    y = F.batch_norm(x, rm, rv, training=True, momentum=0.5, eps=1e-12)
    assert y.tolist() == [[-1.0], [1.0]]
    assert rm.tolist() == [1.0]  # 0.5 * 0 + 0.5 * 2
    assert rv.tolist() == [1.5]  # 0.5 * 1 + 0.5 * 2


def test_batch_norm_eval_does_not_touch_running_stats():
    rm, rv = fb.tensor([0.5, -1.0]), fb.tensor([2.0, 0.5])
    F.batch_norm(fb.randn(4, 2, 3), rm, rv, training=False)
    assert rm.tolist() == [0.5, -1.0] and rv.tolist() == [2.0, 0.5]


def test_batch_norm_large_offset_matches_torch():
    # inputs far from zero mean: the centred variance must not lose precision
    torch = pytest.importorskip("torch")
    x = (np.random.default_rng(4).standard_normal((8, 4, 6, 6)) + 300.0).astype(np.float32)
    y = F.batch_norm(fb.Tensor(x), None, None, training=True)
    ty = torch.nn.functional.batch_norm(torch.from_numpy(x), None, None, training=True)
    assert_close(y, ty, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("shape", [(6, 5, 7, 3), (32, 8, 64, 64)])
def test_batch_norm_mean_1000_matches_float64_torch(shape):
    # x = 1000 + N(0, 1) in float32: E[x^2] - E[x]^2 would cancel every digit of the variance;
    # the larger shape spans several cache blocks and thread chunks
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(5)
    c = shape[1]
    x = (1000.0 + g.standard_normal(shape)).astype(np.float32)
    dy = g.standard_normal(shape).astype(np.float32)
    w, b = g.uniform(0.5, 1.5, c).astype(np.float32), g.standard_normal(c).astype(np.float32)
    xt, wt, bt = (fb.Tensor(a, requires_grad=True) for a in (x, w, b))
    rm, rv = fb.zeros(c), fb.ones(c)
    y = F.batch_norm(xt, rm, rv, wt, bt, training=True, momentum=0.5)
    y.backward(fb.Tensor(dy))
    tx, tw, tb = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b))
    trm, trv = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.5)
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    assert y.dtype == np.float32 and xt.grad.dtype == np.float32
    assert_close(y, ty, atol=1e-4, rtol=1e-3, what="output")
    assert_close(rm, trm, atol=1e-6, rtol=1e-6, what="running_mean")
    assert_close(rv, trv, atol=1e-4, rtol=1e-4, what="running_var")
    assert_close(xt.grad, tx.grad, atol=1e-4, rtol=1e-3, what="grad x")
    assert_close(wt.grad, tw.grad, atol=1e-4, rtol=1e-3, what="grad weight")
    assert_close(bt.grad, tb.grad, atol=1e-4, rtol=1e-3, what="grad bias")


def test_float32_graph_with_float64_running_stats_stays_float32():
    x = fb.randn(4, 3, 2, 2)
    rm, rv = fb.Tensor(np.zeros(3), dtype=np.float64), fb.Tensor(np.ones(3), dtype=np.float64)
    assert F.batch_norm(x, rm, rv, training=False).dtype == np.float32
    assert F.batch_norm(x, rm, rv, training=True).dtype == np.float32
    assert rm.dtype == np.float64  # buffers keep their own dtype


def test_batch_norm_graph_holds_no_running_buffers():
    # backward needs xc and inv_std only; the (C,) buffers must not be kept by the graph
    x = fb.randn(4, 3, 2, 2, requires_grad=True)
    y = F.batch_norm(x, fb.zeros(3), fb.ones(3), training=True)
    assert y.grad_fn.running is None
    y.sum().backward()
    # sum of a normalised output is constant in x: its gradient is zero
    assert np.abs(x.grad.numpy()).max() < 1e-5


def test_layer_norm_accepts_int_shape():
    x = fb.randn(2, 4)
    assert_close(F.layer_norm(x, 4), F.layer_norm(x, (4,)))


def test_local_response_norm_by_hand():
    # size 2 window of channel c is {c-1, c}: S = [1, 1+4, 4+9] for x = [1, 2, 3]
    x = fb.tensor([[[1.0], [2.0], [3.0]]])
    y = F.local_response_norm(x, 2, alpha=2.0, beta=1.0, k=1.0)
    assert_close(y, [[[1 / 2.0], [2 / 6.0], [3 / 14.0]]])


# ------------------------------------------------------------------------------- errors
ERRORS = [
    (lambda: F.batch_norm(fb.zeros(4, 2, 3), fb.zeros(3), fb.ones(3)), ValueError,
     r"batch_norm: expected running_mean of shape \(2,\) for 2 channels, got shape \(3,\) "
     r"\(input shape \(4, 2, 3\)\)"),
    (lambda: F.batch_norm(fb.zeros(4, 2), None, None, fb.ones(3), training=True), ValueError,
     r"batch_norm: expected weight of shape \(2,\)"),
    (lambda: F.batch_norm(fb.zeros(4), None, None, training=True), ValueError,
     r"batch_norm: expected an input of shape \(N, C, \*\) with at least 2 dims, got shape "
     r"\(4,\)"),
    (lambda: F.batch_norm(fb.zeros(1, 3, 1, 1), None, None, training=True), ValueError,
     r"batch_norm: expected more than 1 value per channel when training, got input shape "
     r"\(1, 3, 1, 1\)"),
    (lambda: F.batch_norm(fb.zeros(4, 3), None, None, training=False), ValueError,
     r"batch_norm: running_mean and running_var are needed in evaluation mode"),
    (lambda: F.batch_norm(fb.zeros(4, 3), fb.zeros(3), None, training=True), ValueError,
     r"batch_norm: pass both running_mean and running_var"),
    (lambda: F.batch_norm(fb.zeros(4, 3), None, None, training=True, eps=0.0), ValueError,
     r"batch_norm: eps must be a positive number, got 0.0"),
    (lambda: F.batch_norm(fb.zeros(4, 3), fb.zeros(3), fb.ones(3), training=True,
                          momentum=None), TypeError, r"batch_norm: momentum must be a float"),
    (lambda: F.batch_norm([[1.0]], None, None), TypeError,
     r"batch_norm: expected a Tensor input, got list"),
    (lambda: F.layer_norm(fb.zeros(2, 3, 5), (4, 5)), ValueError,
     r"layer_norm: expected an input whose trailing dimensions are normalized_shape=\(4, 5\), "
     r"i.e. of shape \(\*, 4, 5\), got input shape \(2, 3, 5\)"),
    (lambda: F.layer_norm(fb.zeros(2, 5), 5, fb.ones(4)), ValueError,
     r"layer_norm: expected weight of shape normalized_shape=\(5,\), got shape \(4,\)"),
    (lambda: F.group_norm(fb.zeros(2, 6, 3), 4), ValueError,
     r"group_norm: expected the 6 input channels to be divisible by num_groups, got "
     r"num_groups=4 \(input shape \(2, 6, 3\)\)"),
    (lambda: F.group_norm(fb.zeros(2, 6, 3), 3, fb.ones(3)), ValueError,
     r"group_norm: expected weight of shape \(6,\)"),
    (lambda: F.group_norm(fb.zeros(6), 3), ValueError,
     r"group_norm: expected an input of shape \(N, C, \*\) with at least 2 dims"),
    (lambda: F.instance_norm(fb.zeros(2, 3)), ValueError,
     r"instance_norm: expected an input of shape \(N, C, \*\) with at least 3 dims, got shape "
     r"\(2, 3\)"),
    (lambda: F.instance_norm(fb.zeros(2, 3, 1)), ValueError,
     r"instance_norm: expected more than 1 spatial element"),
    (lambda: F.local_response_norm(fb.zeros(2, 3), 2), ValueError,
     r"local_response_norm: expected an input of shape \(N, C, \*\) with at least 3 dims, got "
     r"shape \(2, 3\)"),
    (lambda: F.local_response_norm(fb.zeros(2, 3, 4), 0), ValueError,
     r"local_response_norm: expected a positive integer size, got 0"),
]


@pytest.mark.parametrize("fn, exc, match", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_errors(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()
