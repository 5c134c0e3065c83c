"""functional.linear and functional.maxout: registry of cases + generic checks."""

from __future__ import annotations

import numpy as np
import pytest
from harness import OpCase, as_tensors, assert_close, check_gradcheck, noncontiguous

import filterbank as fb
import filterbank.functional as F

rng = np.random.default_rng(0)


def _r(*shape):
    return rng.standard_normal(shape)


def _np_linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def _np_maxout(x, w, b, pieces):
    z = _np_linear(x, w, b)
    return z.reshape(z.shape[:-1] + (w.shape[0] // pieces, pieces)).max(-1)


def _torch_maxout(x, w, b, pieces):
    import torch

    z = torch.nn.functional.linear(x, w, b)
    return z.reshape(z.shape[:-1] + (w.shape[0] // pieces, pieces)).max(-1).values


def _torch_linear(x, w, b=None):
    import torch

    return torch.nn.functional.linear(x, w, b)


CASES = [
    OpCase("linear_2d", F.linear, [_r(4, 3), _r(5, 3), _r(5)], reference=_np_linear,
           torch_fn=_torch_linear),
    OpCase("linear_no_bias", F.linear, [_r(4, 3), _r(2, 3)], reference=_np_linear,
           torch_fn=_torch_linear),
    OpCase("linear_leading_dims", F.linear, [_r(2, 3, 4), _r(5, 4), _r(5)],
           reference=_np_linear, torch_fn=_torch_linear),
    OpCase("linear_1d_input", F.linear, [_r(3), _r(2, 3), _r(2)], reference=_np_linear,
           torch_fn=_torch_linear),
    OpCase("linear_noncontiguous", F.linear,
           [noncontiguous(_r(3, 4)), noncontiguous(_r(2, 4)), _r(2)],
           reference=_np_linear, torch_fn=_torch_linear),
    OpCase("linear_weight_only_grad", F.linear, [_r(3, 4), _r(2, 4), _r(2)],
           reference=_np_linear, torch_fn=_torch_linear, grad=[False, True, True]),
    OpCase("linear_input_only_grad", F.linear, [_r(3, 4), _r(2, 4), _r(2)],
           reference=_np_linear, torch_fn=_torch_linear, grad=[True, False, False]),
    OpCase("maxout_k2", F.maxout, [_r(4, 3), _r(6, 3), _r(6)], kwargs={"pieces": 2},
           reference=_np_maxout, torch_fn=_torch_maxout),
    OpCase("maxout_k3_leading", F.maxout, [_r(2, 3, 4), _r(6, 4), _r(6)], kwargs={"pieces": 3},
           reference=_np_maxout, torch_fn=_torch_maxout),
    OpCase("maxout_k1_is_linear", F.maxout, [_r(4, 3), _r(2, 3), _r(2)], kwargs={"pieces": 1},
           reference=_np_maxout, torch_fn=_torch_maxout),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_reference_float32(case):
    inputs = as_tensors(case, dtype=np.float32, requires_grad=False)
    y = case.fn(*inputs, **case.kwargs)
    assert y.dtype == np.float32
    assert_close(y, case.reference(*case.inputs, **case.kwargs))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vs_torch(case):
    torch = pytest.importorskip("torch")
    inputs = as_tensors(case, dtype=np.float32)
    tin = [torch.tensor(np.asarray(a, np.float32), requires_grad=t.requires_grad)
           for a, t in zip(case.inputs, inputs)]
    y = case.fn(*inputs, **case.kwargs)
    ty = case.torch_fn(*tin, **case.kwargs)
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


def test_linear_skips_unneeded_saves():
    # dX needs W and dW needs X: a frozen input must not be kept alive by the graph
    x = fb.randn(4, 3)
    w = fb.randn(2, 3, requires_grad=True)
    y = F.linear(x, w)
    assert y.grad_fn.x2 is not None and y.grad_fn.weight is None
    x2 = fb.randn(4, 3, requires_grad=True)
    y2 = F.linear(x2, fb.randn(2, 3))
    assert y2.grad_fn.x2 is None and y2.grad_fn.weight is not None
    y2.sum().backward()
    assert x2.grad.shape == (4, 3)


def test_maxout_gradient_goes_to_the_winning_piece_only():
    # two identical pieces tie everywhere: the whole gradient goes to the first one
    x = fb.tensor([[1.0, 2.0]])
    w = fb.tensor([[1.0, 1.0], [1.0, 1.0]], requires_grad=True)
    F.maxout(x, w, None, pieces=2).sum().backward()
    assert w.grad.tolist() == [[1.0, 2.0], [0.0, 0.0]]


def test_maxout_of_x_and_minus_x_is_abs():
    # the lecture's example: max(w1 x, w2 x) with w1 = 1, w2 = -1 gives |x|
    x = fb.tensor([[-2.0], [0.5], [3.0]])
    w = fb.tensor([[1.0], [-1.0]])
    assert F.maxout(x, w, None, 2).tolist() == [[2.0], [0.5], [3.0]]


@pytest.mark.parametrize("args, match", [
    (((4, 3), (2, 5), None), r"linear: expected the input's last dim to be in_features=5, got 3"),
    (((4, 3), (2, 3), (3,)), r"linear: expected bias of shape \(2,\), got \(3,\)"),
    (((4, 3), (2, 3, 1), None), r"linear: expected a 2-d weight"),
    (((), (2, 3), None), r"linear: expected an input with at least 1 dim"),
])
def test_linear_errors(args, match):
    xs, ws, bs = args
    with pytest.raises(ValueError, match=match):
        F.linear(fb.zeros(xs), fb.zeros(ws), None if bs is None else fb.zeros(bs))


def test_maxout_errors():
    with pytest.raises(ValueError, match="maxout: weight has 5 rows, not a multiple of pieces=2"):
        F.maxout(fb.zeros(2, 3), fb.zeros(5, 3), None, 2)
    with pytest.raises(ValueError, match="maxout: expected pieces to be a positive int, got 0"):
        F.maxout(fb.zeros(2, 3), fb.zeros(4, 3), None, 0)


def test_float32_graph_with_float64_bias_constant_stays_float32():
    x = fb.randn(3, 4)
    w = fb.randn(2, 4)
    y = F.linear(x, w, np.zeros(2))  # a NumPy float64 constant must not promote the graph
    assert y.dtype == np.float32
