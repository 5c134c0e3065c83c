"""Tensor: attributes and conversions, the backward engine (order, accumulation, freeing,
errors), the float32 rule with NumPy float64 operands, and the lecture's worked examples."""

from __future__ import annotations

import math
import operator
import sys

import numpy as np
import pytest

import filterbank as fb

# --------------------------------------------------------------------------- attributes


def test_attributes_and_size_trick():
    t = fb.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.dim() == 3
    assert t.dtype == np.float32
    assert t.size == 24 and t.numel() == 24  # NumPy style
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4  # PyTorch style
    assert t.T.shape == (4, 3, 2)
    assert len(t) == 2


def test_dtype_defaults():
    assert fb.Tensor([1.0, 2.0]).dtype == np.float32
    assert fb.Tensor(np.zeros(2)).dtype == np.float32  # float64 arrays too
    assert fb.Tensor(np.zeros(2), dtype="float64").dtype == np.float64
    assert fb.Tensor(fb.zeros(2, dtype=np.float64)).dtype == np.float64  # a Tensor keeps its own
    assert fb.Tensor(np.float64(1.5)).dtype == np.float32
    assert fb.Tensor([1, 2]).dtype == np.int64
    assert fb.Tensor([True]).dtype == np.bool_


def test_tensor_shares_a_float32_array_and_tensor_copies():
    a = np.zeros(3, np.float32)
    shared, copied = fb.Tensor(a), fb.tensor(a)
    a[0] = 5.0
    assert shared.tolist()[0] == 5.0 and copied.tolist()[0] == 0.0


def test_conversions():
    t = fb.tensor([[2.5]])
    assert t.item() == 2.5 and float(t) == 2.5 and int(t) == 2
    assert isinstance(t.numpy(), np.ndarray) and np.asarray(t).dtype == np.float32
    c = np.array(t, copy=True)
    c[0, 0] = 0.0
    assert t.item() == 2.5
    with pytest.raises(ValueError, match=r"item\(\): only one-element tensors"):
        fb.ones(2).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(fb.ones(2))
    with pytest.raises(TypeError, match="len"):
        len(fb.tensor(1.0))


def test_requires_grad_rules():
    with pytest.raises(RuntimeError, match="only floating-point tensors can require gradients"):
        fb.tensor([1, 2], requires_grad=True)
    x = fb.ones(2, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="only be turned off on leaf tensors"):
        y.requires_grad = False
    with pytest.raises(RuntimeError, match="numpy\\(\\) on a tensor that requires grad"):
        x.numpy()
    assert x.detach().numpy() is x.data  # detach shares memory and leaves the graph
    assert not x.detach().requires_grad


def test_repr_shows_grad_fn_and_dtype():
    x = fb.ones(2, requires_grad=True)
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=<MulBackward>" in repr(x * 2)
    assert "dtype=int64" in repr(fb.tensor([1]))


def test_setitem_is_blocked_on_tensors_requiring_grad_outside_no_grad():
    w = fb.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w[0] = 1.0
    with fb.no_grad():
        w[0] = 1.0
    assert w.tolist() == [1.0, 0.0, 0.0]


# ------------------------------------------------------------------------------ backward
def test_backward_scalar_seed_and_leaf_grad_is_a_copy():
    x = fb.tensor([1.0, 2.0], requires_grad=True)
    g = np.array([1.0, 1.0], np.float32)
    x.backward(g)  # a leaf as the root
    g[0] = 100.0
    assert x.grad.tolist() == [1.0, 1.0]


def test_grads_accumulate_across_backward_calls():
    x = fb.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]


def test_tensor_used_twice_gets_both_contributions():
    x = fb.tensor([3.0], requires_grad=True)
    (x * x + x).sum().backward()
    assert x.grad.tolist() == [7.0]


def test_diamond_graph_sums_paths_in_topological_order():
    x = fb.tensor([1.0], requires_grad=True)
    a = x * 2
    b, c = a * 3, a.exp()
    (b + c).sum().backward()
    assert x.grad.item() == pytest.approx(6 + 2 * math.exp(2.0), rel=1e-6)


def test_retain_grad_on_intermediate():
    x = fb.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    assert y.grad.tolist() == [6.0, 12.0]
    assert x.grad.tolist() == [18.0, 36.0]


def test_10000_op_chain_does_not_hit_the_recursion_limit():
    limit = sys.getrecursionlimit()
    x = fb.tensor([1.0], dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    assert sys.getrecursionlimit() == limit
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-9)


def test_buffers_are_freed_after_backward_unless_retained():
    x = fb.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    z = y.sum()
    z.backward(retain_graph=True)
    assert y.grad_fn.y is not None  # Exp kept its output
    z.backward()
    assert x.grad.data == pytest.approx(2 * np.exp([1.0, 2.0]))
    assert not hasattr(y.grad_fn, "y")  # freed after the second (non-retaining) pass
    with pytest.raises(RuntimeError, match="backward through the graph a second time .*Sum"):
        z.backward()


def test_backward_errors():
    x = fb.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for scalar outputs; this tensor has shape "
                                           r"\(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad and has no graph"):
        fb.ones(2).sum().backward()
    with fb.no_grad():
        y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="no graph"):
        y.backward()
    with pytest.raises(RuntimeError, match=r"grad has shape \(3,\) but the tensor has shape "
                                           r"\(2, 3\)"):
        (x * 2).backward(np.ones(3))


def test_backward_with_explicit_grad_for_non_scalar():
    x = fb.tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(fb.tensor([1.0, 0.5]))
    assert x.grad.tolist() == [2.0, 2.0]


def test_frozen_inputs_get_no_grad():
    x = fb.ones(2, requires_grad=True)
    c = fb.ones(2)
    (x * c).sum().backward()
    assert c.grad is None and x.grad is not None


# ----------------------------------------------------------------------- float32 rule
BINARY_OPS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]
OTHERS = {
    "np.float64 scalar": lambda: np.float64(1.5),
    "np float64 array": lambda: np.full(3, 1.5),
    "python float": lambda: 1.5,
    "python int": lambda: 2,
    "np int array": lambda: np.array([1, 2, 3]),
    "int tensor": lambda: fb.tensor([1, 2, 3]),
}


@pytest.mark.parametrize("other", OTHERS, ids=str)
@pytest.mark.parametrize("op", BINARY_OPS, ids=lambda o: o.__name__)
@pytest.mark.parametrize("side", ["left", "right"])
def test_float32_graph_stays_float32_with_float64_and_integer_operands(op, other, side):
    x = fb.tensor([0.5, 1.0, 2.0], requires_grad=True)
    c = OTHERS[other]()
    y = op(x, c) if side == "left" else op(c, x)
    assert isinstance(y, fb.Tensor)
    assert y.dtype == np.float32, f"{op.__name__}({side}) with {other} gave {y.dtype}"
    y.sum().backward()
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("side", ["left", "right"])
def test_matmul_with_float64_array_stays_float32(side):
    x = fb.ones(3, 3, requires_grad=True)
    a = np.ones((3, 3))
    y = x @ a if side == "left" else a @ x
    assert isinstance(y, fb.Tensor) and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_float64_graph_stays_float64_and_mixing_tensors_promotes():
    x64 = fb.ones(2, dtype=np.float64, requires_grad=True)
    assert (x64 * 2.5).dtype == np.float64
    assert (fb.ones(2) * x64).dtype == np.float64  # two tensors: the wider dtype (as PyTorch)
    assert (fb.tensor([1, 2]) * 0.5).dtype == np.float32  # int tensor and a Python float


def test_reductions_and_getitem_return_arrays_not_numpy_scalars():
    x = fb.tensor([1.0, 2.0], requires_grad=True)
    for y in (x.sum(), x[0], x.max(), x.mean()):
        assert isinstance(y.data, np.ndarray) and y.dtype == np.float32


# ------------------------------------------------------------------- lecture examples
@pytest.mark.parametrize("x0", [-1.3, 0.2, 0.7, 2.0])
def test_lecture_example_cos_sin(x0):
    # J = cos(sin(x^2) + 3x^2);  dJ/dx = -sin(u) (cos(x^2) 2x + 6x),  u = sin(x^2) + 3x^2
    x = fb.tensor(x0, dtype=np.float64, requires_grad=True)
    J = fb.cos(fb.sin(x ** 2) + 3 * x ** 2)
    J.backward()
    u = math.sin(x0 ** 2) + 3 * x0 ** 2
    assert J.item() == pytest.approx(math.cos(u), abs=1e-12)
    assert x.grad.item() == pytest.approx(-math.sin(u) * (math.cos(x0 ** 2) * 2 * x0 + 6 * x0),
                                          abs=1e-6)


def test_lecture_example_two_variables():
    # y = exp(xz) + xz / log(x) + sin(log x) / exp(xz) at x = 2, z = 3
    x = fb.tensor(2.0, dtype=np.float64, requires_grad=True)
    z = fb.tensor(3.0, dtype=np.float64, requires_grad=True)
    xz = x * z
    y = fb.exp(xz) + xz / fb.log(x) + fb.sin(fb.log(x)) / fb.exp(xz)
    y.backward()
    a, b = 2.0, 3.0
    e, lg = math.exp(a * b), math.log(a)
    dydx = b * e + b / lg - b / lg ** 2 + (math.cos(lg) / a - b * math.sin(lg)) / e
    dydz = a * e + a / lg - a * math.sin(lg) / e
    assert x.grad.item() == pytest.approx(dydx, abs=1e-6)
    assert z.grad.item() == pytest.approx(dydz, abs=1e-6)


def test_logical_operators_on_boolean_tensors():
    a, b = fb.tensor([True, True, False]), fb.tensor([True, False, False])
    assert (a & b).tolist() == [True, False, False]
    assert (a | b).tolist() == [True, True, False]
    assert (a ^ b).tolist() == [False, True, False]
    assert (~a).tolist() == [False, False, True]
    x = fb.tensor([-1.0, 0.5, 2.0])
    assert ((x > 0) & (x < 1)).tolist() == [False, True, False]


# ------------------------------------------------------------------ docstring examples
CORE_MODULES = [
    "filterbank.tensor", "filterbank.creation", "filterbank.random",
    "filterbank.autograd.function", "filterbank.autograd.grad_mode",
    "filterbank.autograd.anomaly_mode", "filterbank.autograd.gradcheck",
    "filterbank.functional.elementwise", "filterbank.functional.reduce",
    "filterbank.functional.shape", "filterbank.functional.matmul",
    "filterbank.functional.activation",
]


@pytest.mark.parametrize("name", CORE_MODULES)
def test_docstring_examples_run(name):
    import doctest
    import importlib

    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if name.startswith("filterbank.functional") or name == "filterbank.creation":
        assert result.attempted > 0, f"{name} has no examples"
