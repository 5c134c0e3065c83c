"""The op contract: ``Function.apply``, ``needs_input_grad``, constants, dtypes, and
gradients of broadcast inputs summed back in one place (``unbroadcast``)."""

from __future__ import annotations

import numpy as np
import pytest
from fakecupy import fake_cupy_fixture  # noqa: F401  (the fixture fake_cupy)

import filterbank as fb
from filterbank.autograd import Function, unbroadcast


class Scale(Function):
    """y = k * x + b (k a hyperparameter); records which gradients were asked for."""

    calls: list = []

    def forward(self, x, b):
        Scale.calls.append(self.needs_input_grad)
        return self.k * x + (0 if b is None else b)

    def backward(self, gy):
        gx = gy * self.k if self.needs_input_grad[0] else None
        gb = gy if self.needs_input_grad[1] else None
        return gx, gb


def test_hyperparameters_become_attributes_and_needs_input_grad_is_set():
    Scale.calls.clear()
    x = fb.ones(2, 3, requires_grad=True)
    b = fb.zeros(3)
    y = Scale.apply(x, b, k=2.0)
    assert Scale.calls[-1] == (True, False)
    assert y.grad_fn.k == 2.0 and y.grad_fn.parents == (x, b)
    y.sum().backward()
    assert x.grad.tolist() == [[2.0] * 3] * 2 and b.grad is None


def test_broadcast_input_gradient_is_summed_back_by_the_engine():
    x = fb.ones(2, 3, requires_grad=True)
    b = fb.zeros(1, 3, requires_grad=True)
    Scale.apply(x, b, k=1.0).sum().backward()
    assert b.grad.shape == (1, 3) and b.grad.tolist() == [[2.0, 2.0, 2.0]]


def test_none_inputs_and_constants():
    x = fb.ones(2, requires_grad=True)
    y = Scale.apply(x, None, k=3.0)
    assert y.tolist() == [3.0, 3.0] and y.grad_fn.parents == (x, None)
    z = Scale.apply(x, np.array([1.0, 2.0]), k=1.0)  # float64 constant follows the graph
    assert z.dtype == np.float32


def test_nothing_is_recorded_without_grad_or_under_no_grad():
    Scale.calls.clear()
    y = Scale.apply(fb.ones(2), None, k=1.0)
    assert not y.requires_grad and y.grad_fn is None and Scale.calls[-1] == (False, False)
    with fb.no_grad():
        y = Scale.apply(fb.ones(2, requires_grad=True), None, k=1.0)
    assert not y.requires_grad and y.grad_fn is None


class Promote(Function):
    """An op whose NumPy maths promotes float32 to float64."""

    def forward(self, x):
        return x * np.float64(2.0)

    def backward(self, gy):
        return gy * np.float64(2.0)


class ToFloat64(Promote):
    keep_dtype = False


def test_float_outputs_keep_the_graph_dtype_unless_the_op_opts_out():
    x = fb.ones(2, requires_grad=True)
    y = Promote.apply(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32  # the engine casts gradients to the input's dtype
    assert ToFloat64.apply(x).dtype == np.float64


class ArgMaxOp(Function):
    def forward(self, x):
        return np.argmax(x, axis=-1)


def test_integer_outputs_never_require_grad():
    y = ArgMaxOp.apply(fb.ones(2, 3, requires_grad=True))
    assert y.dtype == np.int64 and not y.requires_grad


@pytest.mark.parametrize("gshape, shape, want", [
    ((2, 3), (2, 3), np.ones((2, 3))),
    ((2, 3), (3,), np.full(3, 2.0)),
    ((2, 3), (1, 3), np.full((1, 3), 2.0)),
    ((4, 2, 3), (2, 1), np.full((2, 1), 12.0)),
    ((2, 3), (), np.array(6.0)),
])
def test_unbroadcast(gshape, shape, want):
    got = unbroadcast(np.ones(gshape), shape)
    assert got.shape == shape
    np.testing.assert_array_equal(got, want)


class _Types(Function):
    """Records the array types its forward receives."""

    seen: list = []

    def forward(self, *arrays):
        _Types.seen[:] = [type(a).__module__.split(".")[0] for a in arrays]
        return arrays[0] * 1

    def backward(self, gy):
        return (gy,) + (None,) * (len(_Types.seen) - 1)


def test_constants_are_made_where_the_tensors_are(fake_cupy):
    """A scalar or floating NumPy constant next to a device tensor becomes a device array
    of the graph's dtype (the fake refuses host arrays mixed into device work); integer
    arrays (indices) stay on the host."""
    x = fb.ones(3, requires_grad=True).to("cuda")
    idx = np.array([0, 2])
    y = _Types.apply(x, 2.0, 3, np.float64(0.5), np.ones(3), idx)
    assert _Types.seen == ["cupy"] * 5 + ["numpy"]
    assert type(y.data).__module__.startswith("cupy") and y.dtype == np.float32
    _Types.apply(fb.ones(3), 2.0, np.ones(3))
    assert _Types.seen == ["numpy"] * 3
    assert float((x * 2.0 + 1).sum()) == 9.0


def test_a_device_view_shares_its_base_version_counter(fake_cupy):
    """``apply`` links a view to its input's in-place version counter on the device too
    (CuPy's own may_share_memory: NumPy's does not take device arrays), so writing the base
    after the view was saved for backward is caught as on the CPU."""
    x = fb.ones(2, 3, requires_grad=True).to("cuda")
    v = x.reshape(3, 2)
    assert type(v.data).__module__ == "cupy" and v._vc is x._vc and v._view_of
    y = (v * v).sum()
    with fb.no_grad():
        x.add_(1.0)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation"):
        y.backward()
    w = fb.ones(2, 3).to("cuda").exp()  # a fresh result: no view, its own counter
    assert w.reshape(6)._vc is w._vc and fb.ones(3).cuda()._vc is None
