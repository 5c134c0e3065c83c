"""The graph links Functions, not computed tensors: an activation that no op saved for backward
is freed as soon as the caller drops it, and gradients still reach every leaf."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import filterbank as fb
import filterbank.functional as F


def test_unsaved_intermediate_is_freed_before_backward():
    x = fb.tensor(np.linspace(-1, 1, 6, dtype=np.float32), requires_grad=True)
    a = x * 2.0          # Mul saves x (a leaf) for dy/dw... and only what its gradients need
    b = a.exp()          # Exp saves its output b, not its input a
    c = b.sum()
    ref = weakref.ref(a.data)
    del a
    gc.collect()
    assert ref() is None, "the graph kept an activation that no op needs"
    c.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(2 * x.detach().numpy()), rtol=1e-6)


def test_relu_output_freed_in_a_conv_relu_chain():
    rng = np.random.default_rng(0)
    x = fb.Tensor(rng.standard_normal((2, 3, 8, 8), dtype=np.float32))
    w = fb.Tensor(rng.standard_normal((4, 3, 3, 3), dtype=np.float32), requires_grad=True)
    h = F.relu(F.conv2d(x, w, padding=1))
    y = (h * h).sum()  # Mul saves h itself: h must stay alive
    kept = weakref.ref(h.data)
    conv_out = h.grad_fn.parents[0]  # the Function that made ReLU's input, not the tensor
    assert isinstance(conv_out, fb.Function) and conv_out.out_meta == ((2, 4, 8, 8),
                                                                       np.float32)
    del h
    gc.collect()
    assert kept() is not None
    y.backward()
    assert w.grad.shape == w.shape and np.isfinite(w.grad.numpy()).all()


def test_retain_grad_on_intermediates_and_root():
    x = fb.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    z = (y * y).sum()
    y.retain_grad()  # asked after y was used: still works
    w = z * 2.0
    w.retain_grad()
    w.backward()
    assert x.grad.tolist() == [36.0, 72.0]
    assert y.grad.tolist() == [12.0, 24.0]
    assert w.grad.item() == 1.0
    assert z.grad is None  # not asked for


def test_leaf_dropped_by_the_caller_still_gets_its_gradient():
    x = fb.tensor([1.0, 2.0], requires_grad=True)
    keep = weakref.ref(x)
    y = (x * x).sum()
    del x
    gc.collect()
    assert keep() is not None  # the graph holds leaves
    y.backward(retain_graph=True)  # (a freeing backward would drop the last reference)
    assert keep().grad.tolist() == [2.0, 4.0]


def test_shared_intermediate_gets_both_contributions_and_second_backward_fails():
    x = fb.tensor([1.0, -2.0], requires_grad=True)
    a = x * 2.0
    y = (a * a).sum() + a.sum()  # a feeds two consumers
    y.backward(retain_graph=True)
    assert x.grad.tolist() == [2 * (2 * 2.0 + 1), 2 * (2 * -4.0 + 1)]
    y.backward()
    assert x.grad.tolist() == [20.0, -28.0]
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_broadcast_and_dtype_of_a_computed_input():
    x = fb.tensor([[1.0, 2.0, 3.0]], requires_grad=True)  # (1, 3)
    a = x * 1.0                                           # computed (1, 3)
    y = (a + fb.ones(4, 3)).sum()                         # a is broadcast to (4, 3)
    y.backward()
    assert x.grad.shape == (1, 3) and x.grad.tolist() == [[4.0, 4.0, 4.0]]
    assert x.grad.dtype == np.float32
