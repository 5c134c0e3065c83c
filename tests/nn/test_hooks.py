"""Module hooks: forward pre-hooks, forward hooks and full backward hooks (PyTorch's API).

The backward hooks are compared with ``torch.nn.Module.register_full_backward_hook`` on the
same weights; the identity nodes they add to the graph go through a float64 gradcheck.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from harness import assert_close

import filterbank as fb
from filterbank import nn


def _x(*shape, seed=0, requires_grad=False):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return fb.Tensor(a, requires_grad=requires_grad)


def _net():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3),
                         nn.Flatten(), nn.Linear(4 * 3 * 3, 5))


def _torch_net(net):
    torch = pytest.importorskip("torch")
    tn = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(),
                             torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                             torch.nn.Linear(4 * 3 * 3, 5))
    tn.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    return tn


class Mix(nn.Module):
    """Two tensor inputs and a non-tensor one; a tuple output."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x, scale, y):
        h = self.fc(x) * y
        return h * scale, (h * x).sum(axis=1)


# ----------------------------------------------------------------------------- forward
def test_forward_hook_sees_args_and_output_and_replaces():
    fc = nn.Linear(3, 2)
    seen = []
    h = fc.register_forward_hook(lambda m, args, out: seen.append((m, args[0].shape, out)))
    x = _x(4, 3)
    y = fc(x)
    assert seen[0][0] is fc and seen[0][1] == (4, 3) and seen[0][2] is y
    h.remove()
    fc(x)
    assert len(seen) == 1
    h.remove()  # a second remove is harmless
    with fc.register_forward_hook(lambda m, args, out: out * 0 + 7):
        assert np.all(fc(x).detach().numpy() == 7)
    assert not np.all(fc(x).detach().numpy() == 7)  # the with block removed it
    assert not fc._forward_hooks


def test_forward_hooks_order_prepend_and_kwargs():
    class Scaled(nn.Module):
        def forward(self, x, k=1.0):
            return x * k

    m, order = Scaled(), []
    m.register_forward_hook(lambda mod, a, o: order.append("a"))
    m.register_forward_hook(lambda mod, a, o: order.append("b"))
    m.register_forward_hook(lambda mod, a, o: order.append("first"), prepend=True)
    m.register_forward_hook(lambda mod, a, kw, o: order.append(("kw", kw["k"])),
                            with_kwargs=True)
    m(fb.ones(2), k=3.0)
    assert order == ["first", "a", "b", ("kw", 3.0)]


def test_forward_pre_hook_replaces_args():
    m = nn.ReLU()
    x = fb.tensor([1.0, -2.0])
    with m.register_forward_pre_hook(lambda mod, args: -args[0]):  # a non-tuple: wrapped
        assert m(x).tolist() == [0.0, 2.0]
    with m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,)):
        assert m(x).tolist() == [2.0, 0.0]
    seen = []
    with m.register_forward_pre_hook(lambda mod, args: seen.append(args)):  # None: unchanged
        assert m(x).tolist() == [1.0, 0.0]
    assert seen[0][0] is x
    assert m(x).tolist() == [1.0, 0.0]

    class Scaled(nn.Module):
        def forward(self, x, k=1.0):
            return x * k

    s = Scaled()
    s.register_forward_pre_hook(lambda mod, a, kw: (a, {"k": 10.0}), with_kwargs=True)
    assert s(x, k=2.0).tolist() == [10.0, -20.0]
    s2 = Scaled()
    s2.register_forward_pre_hook(lambda mod, a, kw: a, with_kwargs=True)
    with pytest.raises(RuntimeError, match=r"\(new_args, new_kwargs\)"):
        s2(x)


def test_hook_must_be_callable():
    with pytest.raises(TypeError, match="register_forward_hook: expected a callable hook, "
                                        "got int"):
        nn.ReLU().register_forward_hook(3)


def test_hooks_survive_state_dict_round_trip():
    net = _net()
    seen = []
    net[2].register_forward_hook(lambda m, a, o: seen.append("f"))
    net[2].register_full_backward_hook(lambda m, gi, go: seen.append("b"))
    net.load_state_dict(_net().state_dict())
    net.train().eval()
    net(_x(1, 2, 5, 5)).sum().backward()
    assert seen == ["f", "b"]


# ---------------------------------------------------------------------------- no leaks
def test_removed_hooks_and_deleted_modules_are_freed():
    class Recorder:
        def __init__(self):
            self.n = 0

        def __call__(self, m, *rest):
            self.n += 1

    fc = nn.Linear(3, 2)
    hooks = [Recorder() for _ in range(3)]
    handles = [fc.register_forward_pre_hook(hooks[0]), fc.register_forward_hook(hooks[1]),
               fc.register_full_backward_hook(hooks[2])]
    fc(_x(2, 3, requires_grad=True)).sum().backward()
    assert [h.n for h in hooks] == [1, 1, 1]
    refs = [weakref.ref(h) for h in hooks]
    for handle in handles:
        handle.remove()
    del hooks
    gc.collect()
    assert all(r() is None for r in refs), "a removed hook is still referenced"
    # a module with live hooks is freed with them; the handles do not keep it alive
    handle = fc.register_forward_hook(Recorder())
    bw = fc.register_full_backward_hook(Recorder())
    out = fc(_x(2, 3, requires_grad=True))
    out.sum().backward()
    mref, href = weakref.ref(fc), weakref.ref(fc._forward_hooks[handle.id])
    del fc, out
    gc.collect()
    assert mref() is None and href() is None
    handle.remove()  # on a dead module: a no-op
    bw.remove()


def test_graph_kept_without_backward_is_freed_with_the_output():
    fc = nn.Linear(3, 2)
    fc.register_full_backward_hook(lambda m, gi, go: None)
    out = fc(_x(2, 3, requires_grad=True))
    mref = weakref.ref(fc)
    del fc
    gc.collect()
    assert mref() is not None  # the graph of out still needs it (as in PyTorch)
    del out
    gc.collect()
    assert mref() is None


# ---------------------------------------------------------------------------- backward
def _record(store):
    def hook(m, grad_input, grad_output):
        store.append(([None if g is None else np.array(g.detach().numpy()) for g in grad_input],
                      [None if g is None else np.array(g.detach().numpy()) for g in grad_output]))
    return hook


@pytest.mark.parametrize("layer", [0, 2, 4])
def test_full_backward_hook_matches_torch(layer):
    torch = pytest.importorskip("torch")
    net = _net()
    tn = _torch_net(net)
    ours, theirs = [], []
    net[layer].register_full_backward_hook(_record(ours))
    tn[layer].register_full_backward_hook(_record(theirs))
    xa = np.random.default_rng(1).standard_normal((2, 2, 5, 5)).astype(np.float32)
    net(fb.Tensor(xa)).sum().backward()
    if layer == 0:  # no input requires grad: PyTorch fires at the outputs (and warns)
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            tn(torch.from_numpy(xa)).sum().backward()
    else:
        tn(torch.from_numpy(xa)).sum().backward()
    assert len(ours) == len(theirs) == 1
    (gi, go), (tgi, tgo) = ours[0], theirs[0]
    assert len(gi) == len(tgi) and len(go) == len(tgo) == 1
    for a, b in zip(gi + go, tgi + tgo):
        assert (a is None) == (b is None)
        if a is not None:
            assert_close(a, b, what=f"layer {layer}")


def test_full_backward_hook_replaces_grad_input_like_torch():
    torch = pytest.importorskip("torch")
    net = _net()
    tn = _torch_net(net)
    net[2].register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
    tn[2].register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
    xa = np.random.default_rng(2).standard_normal((2, 2, 5, 5)).astype(np.float32)
    x, tx = fb.Tensor(xa, requires_grad=True), torch.from_numpy(xa).requires_grad_()
    net(x).sum().backward()
    tn(tx).sum().backward()
    assert_close(x.grad, tx.grad, what="input grad")
    assert_close(net[0].weight.grad, tn[0].weight.grad, what="first conv weight grad")
    assert_close(net[2].weight.grad, tn[2].weight.grad, what="hooked conv weight grad")
    # and the multiplier really acted: without the hook the gradient is a third
    ref = _net()
    ref.load_state_dict(net.state_dict())
    x2 = fb.Tensor(xa, requires_grad=True)
    ref(x2).sum().backward()
    assert_close(x.grad, x2.grad.numpy() * 3)


def test_full_backward_hook_several_inputs_and_tuple_output_match_torch():
    torch = pytest.importorskip("torch")

    class TMix(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x, scale, y):
            h = self.fc(x) * y
            return h * scale, (h * x).sum(dim=1)

    m, tm = Mix(), TMix()
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    rng = np.random.default_rng(3)
    xa, ya = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(2))
    w0, w1 = rng.standard_normal((4, 3)), rng.standard_normal(4)
    ours, theirs = [], []

    def run(mod, tensor, store, replace):
        def hook(mm, gi, go):
            store.append(([None if g is None else np.array(g.detach().numpy()) for g in gi],
                          [np.array(g.detach().numpy()) for g in go]))
            return (gi[0] * -1, None, gi[2] * 2) if replace else None
        mod.register_full_backward_hook(hook)
        x, y = tensor(xa), tensor(ya)
        a, b = mod(x, 2.0, y)
        ((a * tensor(w0.astype(np.float32))).sum() + (b * tensor(w1.astype(np.float32))).sum()
         ).backward()
        return x.grad, y.grad

    gx, gy = run(m, lambda a: fb.Tensor(a, requires_grad=True), ours, True)
    tgx, tgy = run(tm, lambda a: torch.from_numpy(a).requires_grad_(), theirs, True)
    (gi, go), (tgi, tgo) = ours[0], theirs[0]
    assert gi[1] is None and tgi[1] is None and len(gi) == 3 and len(go) == 2
    for a, b in zip([gi[0], gi[2], *go], [tgi[0], tgi[2], *tgo]):
        assert_close(a, b)
    assert_close(gx, tgx, what="x.grad after replacement")
    assert_close(gy, tgy, what="y.grad after replacement")


def test_backward_hook_only_one_input_requires_grad():
    m, seen = Mix(), []
    m.register_full_backward_hook(lambda mm, gi, go: seen.append(gi))
    x, y = _x(4, 3, requires_grad=True), _x(4, 3, seed=1)
    a, b = m(x, 1.0, y)
    (a.sum() + b.sum()).backward()
    assert seen[0][0] is not None and seen[0][1] is None and seen[0][2] is None
    assert y.grad is None and x.grad.shape == (4, 3)


def test_backward_hook_bad_return_and_first_layer_return():
    fc = nn.Linear(3, 2)
    fc.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but "
                                           "expected 1"):
        fc(_x(2, 3, requires_grad=True)).sum().backward()
    fc2 = nn.Linear(3, 2)
    fc2.register_full_backward_hook(lambda m, gi, go: (go[0],))
    with pytest.raises(RuntimeError, match="no input of this module requires grad"):
        fc2(_x(2, 3)).sum().backward()
    fc3 = nn.Linear(3, 2)
    fc3.register_full_backward_hook(lambda m, gi, go: (fb.zeros(5),))
    with pytest.raises(RuntimeError, match=r"grad_input\[0\] has shape \(5,\), expected "
                                           r"\(2, 3\)"):
        fc3(_x(2, 3, requires_grad=True)).sum().backward()


def test_backward_hook_not_installed_under_no_grad_and_removed_before_forward():
    fc, seen = nn.Linear(3, 2), []
    h = fc.register_full_backward_hook(lambda m, gi, go: seen.append(1))
    with fb.no_grad():
        out = fc(_x(2, 3, requires_grad=True))
    assert not out.requires_grad
    h.remove()
    fc(_x(2, 3, requires_grad=True)).sum().backward()
    assert seen == []


def test_backward_hook_identity_nodes_gradcheck():
    m = Mix().double()
    m.register_full_backward_hook(lambda mm, gi, go: None)
    rng = np.random.default_rng(4)
    x = fb.Tensor(rng.standard_normal((2, 3)), dtype=np.float64, requires_grad=True)
    y = fb.Tensor(rng.standard_normal((2, 3)), dtype=np.float64, requires_grad=True)
    assert fb.gradcheck(lambda a, b: m(a, 1.5, b), [x, y])


def test_backward_hook_grad_output_is_that_of_the_forward_hooked_output():
    fc, got = nn.Linear(3, 2), []
    fc.register_forward_hook(lambda m, a, out: out * 5)
    fc.register_full_backward_hook(lambda m, gi, go: got.append(go[0].numpy().copy()))
    x = _x(2, 3, requires_grad=True)
    fc(x).sum().backward()
    assert np.all(got[0] == 1.0)  # d(sum)/d(out * 5) = 1, taken after the replacement
    assert_close(x.grad, np.ones((2, 2), np.float32) @ fc.weight.detach().numpy() * 5)


def test_docstring_examples_run():
    import doctest

    import filterbank.nn.module as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
