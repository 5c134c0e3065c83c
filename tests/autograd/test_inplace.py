"""In-place ops: gradients through them (registry: gradcheck + PyTorch), the version counter
that turns "an input saved for backward was overwritten" into PyTorch's error, the leaf rules,
and gradient hooks.

Each version-counter scenario runs in both libraries (``lib`` = "fb" / "torch"): the same
lines must raise in both or in neither. The filterbank half runs without PyTorch too.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import (
    HAS_TORCH,
    OpCase,
    check_float32,
    check_gradcheck,
    check_torch,
)

import filterbank as fb

rng = np.random.default_rng(7)


def _r(*shape):
    return rng.standard_normal(shape)


# --------------------------------------------------------- gradients through in-place ops
def _arith(a, b):
    y = a * 2
    y.add_(b)
    y.mul_(b)
    y.sub_(a, alpha=0.5)
    y.div_(b * b + 1)
    y += a
    y *= 1.5
    y -= b
    y /= 2.0
    return y


def _unary(a):
    y = a + 0
    y.clamp_(-0.5, 0.7)
    z = a * 1
    z.relu_()
    w = a * 1
    w.sigmoid_()
    v = a * 1
    v.tanh_()
    u = a * 1
    u.exp_()
    return y + z + w + v + u


def _setitem(a, b):
    y = a * 1
    y[0] = b[1] * 3          # value requires grad
    y[:, 1] = 0.5            # a constant
    y[y.detach() > 10] = -1  # a boolean mask matching nothing
    return y * y


def _copy_fill(a, b):
    y = a * 2
    y[1:] = b[1:] * 3
    y.copy_(y * 0.5)
    z = a * 3
    z.zero_()
    x = a + 1
    x.fill_(2.0)
    return y + z + x * a


def _leaf_pow(a):
    y = a * 1
    y.pow_(2)
    return y


def _slices(a, b):
    y = a * 2
    y[:, :2] -= y[:, 2:] / 2      # getitem, __isub__ on the slice, setitem: the box idiom
    y[1:] *= b[1:]
    y[0].add_(b[1] * 0.5)
    v = y[1:][0]                  # a slice of a slice
    v.mul_(2)
    y[:, 3].copy_(b[:, 0])
    return y * y


CASES = [
    OpCase("slices_in_place", _slices, [_r(3, 4), _r(3, 4)], torch_fn=_slices),
    OpCase("arith_chain", _arith, [_r(3, 4), _r(3, 4)], torch_fn=_arith),
    OpCase("arith_broadcast", _arith, [_r(3, 4), _r(4)], torch_fn=_arith),
    OpCase("unary_chain", _unary, [_r(3, 4)], torch_fn=_unary),
    OpCase("setitem", _setitem, [_r(3, 4), _r(3, 4)], torch_fn=_setitem),
    OpCase("copy_zero_fill", _copy_fill, [_r(3, 4), _r(3, 4)], torch_fn=_copy_fill),
    OpCase("pow_", _leaf_pow, [_r(3, 4)], torch_fn=_leaf_pow),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")
def test_vs_torch(case):
    check_torch(case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_float32(case):
    check_float32(case)


# ------------------------------------------------------------------ the version counter
def _lib(name):
    if name == "torch":
        if not HAS_TORCH:
            pytest.skip("PyTorch (the oracle) is not installed")
        import torch

        return torch
    return fb


LIBS = ["fb", "torch"]


def _saved_input(lib):          # pow saves its input
    a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = a * 2
    c = b ** 2
    b.add_(1)
    return c.sum()


def _saved_output(lib):         # exp saves its output
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    y = a.exp()
    y.mul_(2)
    return y.sum()


def _through_a_view(lib):       # a view shares the counter of what it views
    a = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = a * 1
    c = (b * b).sum()
    with lib.no_grad():
        b.view(-1)[0:2].add_(1)
    return c


def _through_detach(lib):       # detach() shares the data, and so the counter
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    b = a * 3
    c = b.sigmoid()
    c.detach().zero_()
    return c.sum()


def _optimizer_step_before_backward(lib):
    w = lib.tensor([1.0, -2.0], requires_grad=True)
    loss = (w * w).sum()
    opt = lib.optim.SGD([w], lr=0.1)
    (w * 3).sum().backward()
    opt.step()                  # w changed in place: loss's graph saved the old w
    return loss


def _no_grad_update_of_saved_leaf(lib):
    w = lib.tensor([1.0, -2.0], requires_grad=True)
    loss = (w * w).sum()
    with lib.no_grad():
        w -= 1
    return loss


RAISES = [_saved_input, _saved_output, _through_a_view, _through_detach,
          _optimizer_step_before_backward, _no_grad_update_of_saved_leaf]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("scenario", RAISES, ids=lambda f: f.__name__.strip("_"))
def test_modified_saved_tensor_raises_at_backward(scenario, lib):
    loss = scenario(_lib(lib))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def _add_saves_nothing(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    c = b + 1
    b.add_(1)
    c.sum().backward()
    return a.grad


def _modified_after_backward(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    (b * b).sum().backward()
    b.add_(1)                   # the graph is gone: nothing to protect
    return a.grad


def _inplace_on_unsaved_copy(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    c = b.clone()
    d = b * b
    c.mul_(10)                  # c is a copy: b's saved value is intact
    (d + c).sum().backward()
    return a.grad


FINE = [_add_saves_nothing, _modified_after_backward, _inplace_on_unsaved_copy]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("scenario", FINE, ids=lambda f: f.__name__.strip("_"))
def test_inplace_that_backward_does_not_need_is_fine(scenario, lib):
    got = scenario(_lib(lib))
    want = scenario(fb)
    np.testing.assert_allclose(np.asarray(got.detach()), want.numpy())


def test_version_counts_like_pytorch():
    a = fb.zeros(3)
    assert a._version == 0
    a.add_(1)
    a[0] = 5.0
    a.zero_()
    assert a._version == 3
    v = a.view(3)
    v.fill_(1.0)
    assert a._version == 4 and a.tolist() == [1.0, 1.0, 1.0]


# -------------------------------------------------------------------------- leaf rules
@pytest.mark.parametrize("lib", LIBS)
def test_leaf_that_requires_grad_cannot_change_in_place_outside_no_grad(lib):
    L = _lib(lib)
    w = L.ones(2, requires_grad=True)
    for op in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.zero_(),
               lambda: w.__isub__(1), lambda: w.__setitem__(0, 3.0)):
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            op()


def test_no_grad_update_keeps_the_same_leaf_and_array():
    w = fb.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    arr = w.data
    with fb.no_grad():
        w -= 0.5 * w.grad
        w.grad.zero_()
    assert w.data is arr and w.is_leaf and w.requires_grad
    assert w.tolist() == [0.0, 0.0] and w.grad.tolist() == [0.0, 0.0]
    assert w.dtype == np.float32


@pytest.mark.parametrize("lib", LIBS)
def test_inplace_result_must_fit_dtype_and_shape(lib):
    L = _lib(lib)
    i = L.tensor([1, 2])
    with pytest.raises(RuntimeError):
        i.add_(1.5)                     # float result into an int64 tensor
    f = L.ones(2)
    with pytest.raises(RuntimeError):
        f.add_(L.ones(3, 2))            # would broadcast to a larger shape
    assert f.tolist() == [1.0, 1.0]


def test_inplace_on_read_only_array_is_a_clear_error():
    arr = np.zeros(3, np.float32)
    arr.flags.writeable = False
    t = fb.Tensor(arr)
    with pytest.raises(RuntimeError, match="add_: .*read-only"):
        t.add_(1)


# ------------------------------------------------------------------------------- hooks
def _hooks(lib):
    a = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
    seen = []
    a.register_hook(lambda g: seen.append(g.tolist()))
    h = a.register_hook(lambda g: g * 10)
    b = a * a
    b.register_hook(lambda g: g + 1)
    b.retain_grad()
    b.sum().backward()
    first = (a.grad.tolist(), b.grad.tolist(), list(seen))
    h.remove()
    a.grad = None
    (a * a).sum().backward()
    return first, a.grad.tolist()


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")
def test_hooks_match_pytorch():
    import torch

    assert _hooks(fb) == _hooks(torch)


def test_hooks_change_the_gradient():
    (ga, gb, seen), after = _hooks(fb)
    assert seen == [[4.0, -8.0, 12.0]]           # b's hook (+1) ran before a's
    assert ga == [40.0, -80.0, 120.0] and after == [2.0, -4.0, 6.0]
    assert gb == [2.0, 2.0, 2.0]


def test_hook_on_a_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="register_hook"):
        fb.ones(2).register_hook(lambda g: g)


def test_inplace_on_a_reshaped_view_while_recording_is_refused_not_wrong():
    a = fb.ones(3, 2, requires_grad=True)
    y = a * 2
    with pytest.raises(RuntimeError, match=r"add_: in-place operation on a view made by "):
        y.view(-1).add_(1)
    with pytest.raises(RuntimeError, match=r"mul_: in-place operation on a view made by "):
        y.transpose(0, 1).mul_(2)
    y.sum().backward()
    assert a.grad.tolist() == [[2.0, 2.0]] * 3


@pytest.mark.parametrize("lib", LIBS)
def test_inplace_on_a_slice_of_a_leaf_that_requires_grad_raises(lib):
    L = _lib(lib)
    w = L.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w[1:].mul_(2)


@pytest.mark.parametrize("lib", LIBS)
def test_recorded_fill_copy_zero_overwrite_inf_and_nan(lib):
    """The old value is dropped, not multiplied by 0 (inf * 0 would be nan)."""
    L = _lib(lib)
    w = L.tensor([1.0, 2.0], requires_grad=True)
    v = L.tensor([3.0, 4.0], requires_grad=True)
    for op, want in ((lambda y: y.fill_(3.0), [3.0, 3.0]), (lambda y: y.zero_(), [0.0, 0.0]),
                     (lambda y: y.copy_(v * 1), [3.0, 4.0])):
        y = w + L.tensor([float("inf"), float("nan")])
        op(y)
        assert y.tolist() == want
        (y * 2).sum().backward()
        assert w.grad.tolist() == [0.0, 0.0]
        w.grad = None
    assert v.grad.tolist() == [2.0, 2.0]
