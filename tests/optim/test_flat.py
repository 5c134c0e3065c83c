"""The optimizers' flat-buffer path (``Optimizer.flat``): the same trajectory as the
per-tensor path when parameters are replaced, cast or reloaded between steps, and no false
"modified by an inplace operation" error from sharing one buffer. The comparison with
``torch.optim`` over the registry (every gradient mode) is in test_optimizers.py."""

from __future__ import annotations

import numpy as np
import pytest
from fakecupy import fake_cupy_fixture  # noqa: F401  (the fixture fake_cupy)

import filterbank as fb
from filterbank import nn, optim
from filterbank.backend import to_device
from filterbank.nn import Parameter

# SGD steps per tensor by default (optim/sgd.py): every test here sets ``flat`` explicitly

SHAPES = [(3, 4), (7,), (2, 2, 3)]
KINDS = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
]


@pytest.fixture(params=[None, 5], ids=["one chunk", "chunks of 5"])
def chunk(request, monkeypatch):
    """The buffer updated in one piece, or in chunks of 5 values (chunks inside a parameter
    and chunks across several)."""
    if request.param is not None:
        monkeypatch.setattr("filterbank.optim._flat.CHUNK", request.param)
    return request.param


def _model(seed=0):
    fb.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))


def _batch(k):
    rng = np.random.default_rng(k)
    return (fb.Tensor(rng.standard_normal((5, 4), dtype=np.float32)),
            fb.Tensor(rng.integers(0, 3, 5)))


def _train(model, opt, steps, start=0):
    losses = []
    for k in range(start, start + steps):
        x, y = _batch(k)
        opt.zero_grad()
        loss = fb.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _pair(kind, kw, groups=False):
    """The same model and optimizer twice: flat, and per tensor (``flat = False``)."""
    out = []
    for flat in (True, False):
        m = _model()
        if groups:  # the second layer learns ten times slower
            params = [{"params": m[0].parameters()}, {"params": m[2].parameters(),
                                                      "lr": kw["lr"] / 10}]
        else:
            params = m.parameters()
        opt = getattr(optim, kind)(params, **kw)
        opt.flat = flat
        out.append((m, opt))
    return out


def _same(a, b):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


@pytest.mark.parametrize("kind, kw", KINDS, ids=[k for k, _ in KINDS])
@pytest.mark.parametrize("groups", [False, True], ids=["one group", "two groups"])
def test_flat_is_the_per_tensor_trajectory(kind, kw, groups, chunk):
    (m, opt), (m2, opt2) = _pair(kind, kw, groups)
    assert _train(m, opt, 8) == _train(m2, opt2, 8)
    _same(m, m2)
    assert len(opt._flat_groups) == len(opt.param_groups) and not opt2._flat_groups
    if chunk:
        assert all(len(fg.chunks) > 1 for fg in opt._flat_groups.values())
    for p in m.parameters():  # views of the buffer, as far as numpy can tell
        assert any(p.data is v for fg in opt._flat_groups.values() for v in fg.views)


@pytest.mark.parametrize("kind, kw", KINDS, ids=[k for k, _ in KINDS])
def test_parameters_replaced_after_the_optimizer_was_built(kind, kw, chunk):
    (m, opt), (m2, opt2) = _pair(kind, kw)
    _train(m, opt, 3)
    _train(m2, opt2, 3)
    rng = np.random.default_rng(5)
    for model in (m, m2):  # p.data = new array (PyTorch's idiom for loading weights)
        model[0].weight.data = np.full((6, 4), 0.3, np.float32)
        model[2].bias.data = rng.standard_normal(3).astype(np.float32)
        rng = np.random.default_rng(5)
    assert _train(m, opt, 3, start=3) == _train(m2, opt2, 3, start=3)
    _same(m, m2)
    assert m[0].weight.data[0, 0] != np.float32(0.3)  # the step did update the new values
    state = {k: v.copy() for k, v in m.state_dict().items()}
    for model in (m, m2):  # load_state_dict (copies in place) then a cast to float64
        model.load_state_dict(state)
        model.double()
    # the flat path gathers the state again in the parameters' new dtype; load_state_dict
    # casts the per-tensor twin's state the same way (otherwise it stays float32)
    opt2.load_state_dict(opt2.state_dict())
    assert _train(m, opt, 3, start=6) == _train(m2, opt2, 3, start=6)
    _same(m, m2)
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert all(v.dtype == np.float64 for fg in opt._flat_groups.values() for v in fg.views)


@pytest.mark.parametrize("kind, kw", KINDS, ids=[k for k, _ in KINDS])
def test_load_state_dict_then_flat_steps_match_per_tensor(kind, kw, chunk):
    (m, opt), (m2, opt2) = _pair(kind, kw)
    _train(m, opt, 4)
    _train(m2, opt2, 4)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2, 3]  # PyTorch's layout: one entry per parameter
    assert [tuple(sd["state"][i].get("exp_avg", np.empty(p.shape)).shape)
            for i, p in enumerate(m.parameters())] == [p.shape for p in m.parameters()]
    opt.load_state_dict(sd)
    opt2.load_state_dict(opt2.state_dict())
    assert _train(m, opt, 4, start=4) == _train(m2, opt2, 4, start=4)
    _same(m, m2)


def test_a_parameter_without_grad_keeps_its_value_and_gets_no_state():
    (m, opt), _ = _pair("Adam", {"lr": 0.1})
    _train(m, opt, 2)  # flat
    frozen = m[2].bias
    before = frozen.data.copy()
    x, y = _batch(9)
    opt.zero_grad()
    fb.functional.cross_entropy(m(x), y).backward()
    frozen.grad = None
    opt.step()  # per tensor, on the views
    np.testing.assert_array_equal(frozen.data, before)
    assert opt.state[frozen]["step"] == 2 and opt.state[m[0].weight]["step"] == 3


def test_updating_one_parameter_does_not_invalidate_graphs_that_saved_another():
    """A graph saved ``w``; the step updates only ``b`` (per tensor: ``w`` has no gradient),
    which lives in the same flat buffer. PyTorch allows the backward; so must we."""
    w, b = Parameter(fb.ones(2, 3)), Parameter(fb.zeros(2))
    opt = optim.SGD([w, b], lr=0.1)
    opt.flat = True  # SGD steps per tensor by default
    w.grad, b.grad = fb.ones(2, 3), fb.ones(2)
    opt.step()  # both: the flat buffer is made
    x = fb.ones(4, 3, requires_grad=True)
    loss = fb.functional.linear(x, w, b).sum()  # one op on (x, w, b); it saves w, not b
    w.grad, b.grad = None, fb.ones(2)
    opt.step()
    loss.backward()
    np.testing.assert_allclose(x.grad.data, np.full((4, 3), 1.8, np.float32))
    # ... while updating w itself still raises, as in PyTorch
    loss = fb.functional.linear(x, w, b).sum()
    w.grad = fb.ones(2, 3)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_mixed_dtypes_step_per_tensor():
    a = Parameter(fb.ones(2))
    c = Parameter(fb.tensor([1.0, 2.0], dtype="float64"))
    opt = optim.SGD([a, c], lr=0.5)
    opt.flat = True
    a.grad, c.grad = fb.ones(2), fb.tensor([1.0, 1.0], dtype="float64")
    opt.step()
    assert not opt._flat_groups
    assert a.tolist() == [0.5, 0.5] and c.tolist() == [0.5, 1.5] and c.dtype == np.float64


def test_graphs_recorded_before_a_step_raise_at_backward():
    """Both arrays the flat path writes count as modified in place: the parameter's array
    when the step moves it into the buffer, and the view when ``p.data`` was replaced and
    its new values are copied into the view."""
    w = Parameter(fb.tensor([1.0, -2.0]))
    opt = optim.SGD([w], lr=0.1)
    opt.flat = True
    loss = (w * w).sum()  # saved w's own array, before the buffer existed
    w.grad = fb.ones(2)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    loss = (w * w).sum()  # saved the view
    w.data = np.array([5.0, 5.0], np.float32)
    w.grad = fb.ones(2)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    assert w.tolist() == [4.900000095367432, 4.900000095367432]


@pytest.mark.parametrize("kind, kw", KINDS, ids=[k for k, _ in KINDS])
def test_flat_buffer_on_the_device(fake_cupy, chunk, kind, kw):
    """Parameters moved to the (fake) GPU after the optimizer was built: the buffer, the
    views, the gathered gradients and the state are device arrays, and the numbers are the
    CPU's per-tensor path's (a flat-path bug common to both devices must not cancel out)."""
    def run(device, flat):
        rng = np.random.default_rng(0)
        params = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in SHAPES]
        opt = getattr(optim, kind)(params, **kw)
        opt.flat = flat
        for p in params:
            p.data = to_device(p.data, device)
        _seeded_steps(opt, params, device, 4)
        return params, opt

    cpu, _ = run("cpu", flat=False)
    gpu, opt = run("cuda", flat=True)
    (fg,) = opt._flat_groups.values()
    assert fg.xp is fake_cupy and all(p.data is v for p, v in zip(gpu, fg.views))
    for p in gpu:
        assert type(p.data).__module__ == "cupy"
        assert all(type(v).__module__ == "cupy" for v in opt.state[p].values()
                   if hasattr(v, "shape"))
    for p, q in zip(cpu, gpu):
        np.testing.assert_allclose(to_device(q.data, "cpu"), p.data, rtol=1e-6)


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "per tensor"])
def test_a_gradient_of_another_shape_is_refused(flat):
    a, b = Parameter(fb.ones(2, 3)), Parameter(fb.ones(3))
    opt = optim.Adam([a, b], lr=0.1)
    opt.flat = flat
    a.grad, b.grad = fb.ones(2, 3), fb.ones(1)  # would broadcast in the per-tensor update
    with pytest.raises(ValueError, match=r"Adam.step: a parameter of shape \(3,\) has a "
                                         r"gradient of shape \(1,\) \(the same shape expected\)"):
        opt.step()
    assert a.tolist() == [[1.0] * 3] * 2 and b.tolist() == [1.0] * 3 and not opt.state.get(b)


def _device_run(kind, kw, flat, device, steps=3, state=None):
    """``steps`` steps of optimizer ``kind`` over parameters on ``device``; ``state``: a
    state_dict loaded first. Returns (params, optimizer)."""
    rng = np.random.default_rng(0)
    params = [Parameter(to_device(rng.standard_normal(s).astype(np.float32), device))
              for s in SHAPES]
    opt = getattr(optim, kind)(params, **kw)
    opt.flat = flat
    if state is not None:
        opt.load_state_dict(state)
    _seeded_steps(opt, params, device, steps)
    return params, opt


def _seeded_steps(opt, params, device, steps):
    """``steps`` optimizer steps, step k with gradients drawn from seed k on ``device``."""
    for k in range(steps):
        grng = np.random.default_rng(k)
        for p in params:
            p.grad = fb.Tensor(to_device(grng.standard_normal(p.shape).astype(np.float32),
                                         device))
        opt.step()


def _state_arrays(opt):
    return [v for s in opt.state.values() for v in s.values() if hasattr(v, "shape")]


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "per tensor"])
@pytest.mark.parametrize("kind, kw", KINDS, ids=[k for k, _ in KINDS])
def test_state_dict_of_a_device_optimizer_is_on_the_host_and_loads_back(fake_cupy, kind, kw,
                                                                       flat):
    """state_dict() of an optimizer on the (fake) GPU holds host copies, equal to the CPU
    run's; loaded into a device optimizer (its own, or a host state dict from the CPU run)
    the state goes to each parameter's device and the next steps match the CPU's (the CPU
    reference steps per tensor, whatever ``flat`` the device run uses)."""
    cpu_params, cpu_opt = _device_run(kind, kw, False, "cpu")
    gpu_params, gpu_opt = _device_run(kind, kw, flat, "cuda")
    assert _state_arrays(gpu_opt) and all(type(v).__module__ == "cupy"
                                          for v in _state_arrays(gpu_opt))
    sd, ref = gpu_opt.state_dict(), cpu_opt.state_dict()
    assert sd["param_groups"] == ref["param_groups"] and sd["state"].keys() == ref["state"].keys()
    for i, s in sd["state"].items():
        assert s.keys() == ref["state"][i].keys()
        for k, v in s.items():
            if k == "step":
                assert v == ref["state"][i][k]
                continue
            assert type(v) is np.ndarray and v.base is None
            np.testing.assert_allclose(v, ref["state"][i][k], rtol=1e-6, err_msg=f"{i}.{k}")
            v += 1.0  # a copy: the optimizer's state is untouched
    assert all(not np.any(to_device(v, "cpu") == sd_v)
               for v, sd_v in zip(_state_arrays(gpu_opt),
                                  [v for s in sd["state"].values() for k, v in s.items()
                                   if k != "step"]))
    ref_after, _ = _device_run(kind, kw, False, "cpu", steps=2, state=cpu_opt.state_dict())
    for state in (gpu_opt.state_dict(), cpu_opt.state_dict()):  # device's own, and a host one
        params, opt = _device_run(kind, kw, flat, "cuda", steps=0, state=state)
        assert all(type(v).__module__ == "cupy" for v in _state_arrays(opt))
        params, opt = _device_run(kind, kw, flat, "cuda", steps=2, state=state)
        assert all(type(p.data).__module__ == "cupy" for p in params)
        assert all(type(v).__module__ == "cupy" for v in _state_arrays(opt))
        for p, q in zip(ref_after, params):
            np.testing.assert_allclose(to_device(q.data, "cpu"), p.data, rtol=1e-6)


def test_a_device_state_dict_loads_into_a_host_optimizer(fake_cupy):
    """Device state values (a state dict built by hand from device arrays) go to the CPU
    parameters' host, cast to their dtype."""
    p = Parameter(fb.ones(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    buf = to_device(np.full(3, 2.0), "cuda")  # float64 on the device
    opt.load_state_dict({"state": {0: {"momentum_buffer": buf}},
                         "param_groups": opt.state_dict()["param_groups"]})
    got = opt.state[p]["momentum_buffer"]
    assert type(got) is np.ndarray and got.dtype == np.float32 and got.tolist() == [2.0] * 3
