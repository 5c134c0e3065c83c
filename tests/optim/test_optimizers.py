"""Optimizers: a registry of configurations, each checked against ``torch.optim`` over 25
steps on identical gradients, for float32 preservation over 100 steps, and for a state_dict
round trip through safetensors-style arrays + JSON; plus the API and validation errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from harness import assert_close

import filterbank as fb
from filterbank import optim
from filterbank.nn import Parameter

SHAPES = [(3, 4), (5,), (2,)]
#: which parameters get a gradient: "last never" (the last one never does: its group steps per
#: tensor), "all" (every step: the flat path), "intermittent" (parameter 1 misses every third
#: step: the group alternates between the paths and its states' step counts drift apart)
GRAD_MODES = ["last never", "all", "intermittent"]


@dataclass
class OptCase:
    """``optim.<name>`` built with ``kwargs``; ``groups`` (optional) gives per-group options
    for the parameters, listed by index: ``[({"lr": 0.1}, [0]), ({}, [1, 2])]``."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    groups: list[tuple[dict[str, Any], list[int]]] | None = None

    def __str__(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.name}({opts}){'-groups' if self.groups else ''}"

    def build(self, module, params):
        if self.groups is None:
            return getattr(module, self.name)(params, **self.kwargs)
        groups = [dict(opts, params=[params[i] for i in idx]) for opts, idx in self.groups]
        return getattr(module, self.name)(groups, **self.kwargs)


CASES = [
    OptCase("SGD", {"lr": 0.1}),
    OptCase("SGD", {"lr": 0.05, "momentum": 0.9}),
    OptCase("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    OptCase("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    OptCase("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    OptCase("SGD", {"lr": 0.05}, groups=[({"lr": 0.2, "momentum": 0.9}, [0]),
                                         ({"nesterov": True, "momentum": 0.5}, [1, 2])]),
    OptCase("Adam", {"lr": 0.01}),
    OptCase("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    OptCase("Adam", {"lr": 0.01, "amsgrad": True}),
    OptCase("Adam", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}),
    OptCase("Adam", {"lr": 0.01}, groups=[({"amsgrad": True, "betas": (0.5, 0.9)}, [1]),
                                          ({"lr": 0.03, "weight_decay": 0.2}, [0, 2])]),
    OptCase("AdamW", {"lr": 0.01}),
    OptCase("AdamW", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}),
    OptCase("AdamW", {"lr": 0.01}, groups=[({"weight_decay": 0.0}, [0]), ({}, [1, 2])]),
    OptCase("Adagrad", {"lr": 0.1}),
    OptCase("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1,
                        "initial_accumulator_value": 0.2, "eps": 1e-6}),
    OptCase("Adagrad", {"lr": 0.1, "maximize": True}),
    OptCase("Adagrad", {"lr": 0.1}, groups=[({"lr_decay": 0.1}, [0, 2]), ({"lr": 0.3}, [1])]),
    OptCase("RMSprop", {"lr": 0.01}),
    OptCase("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True}),
    OptCase("RMSprop", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1}),
    OptCase("RMSprop", {"lr": 0.005, "momentum": 0.5, "centered": True, "maximize": True,
                        "eps": 1e-5}),
    OptCase("RMSprop", {"lr": 0.01}, groups=[({"centered": True}, [0]),
                                             ({"momentum": 0.7, "lr": 0.02}, [1, 2])]),
]


def _initial_params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]


def _grads(step: int, params_np, mode: str = "last never"):
    """Gradient of 0.25 |p|^2 plus a fixed noise: depends on the trajectory, identical
    for both libraries given identical parameters. None where ``mode`` gives no gradient."""
    rng = np.random.default_rng(1000 + step)
    grads = [(0.5 * p + rng.standard_normal(p.shape)).astype(np.float32) for p in params_np]
    if mode == "last never":
        grads[-1] = None
    elif mode == "intermittent" and step % 3 == 2:
        grads[1] = None
    return grads


def _run_fb(opt, params, steps, start=0, mode="last never"):
    for k in range(start, start + steps):
        for p, g in zip(params, _grads(k, [p.data for p in params], mode)):
            p.grad = None if g is None else fb.Tensor(g)
        opt.step()


@pytest.mark.parametrize("mode", GRAD_MODES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_torch_over_25_steps(case, mode):
    torch = pytest.importorskip("torch")
    init = _initial_params()
    params = [Parameter(a.copy()) for a in init]
    tparams = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    opt, topt = case.build(optim, params), case.build(torch.optim, tparams)
    opt.flat = True  # SGD steps per tensor by default
    for k in range(25):
        grads = _grads(k, [p.detach().numpy() for p in tparams], mode)
        for p, tp, g in zip(params, tparams, grads):
            p.grad = None if g is None else fb.Tensor(g.copy())
            tp.grad = None if g is None else torch.tensor(g)
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(params, tparams)):
            assert_close(p.data, tp.detach(), what=f"step {k} param {i}")
    if mode == "all":  # every group stepped over its flat buffer
        assert len(opt._flat_groups) == len(opt.param_groups)
        assert all(_in_flat_buffer(p, opt) for p in params)
    if mode == "last never":
        assert np.array_equal(params[-1].data, init[-1]), "a parameter without grad moved"
    # same state names and values as torch (torch keeps None for unused buffers, and
    # Adagrad builds its state eagerly: compare the parameters that had gradients)
    tstate = topt.state_dict()["state"]
    state = opt.state_dict()["state"]
    order = [next(j for j, q in enumerate(params) if q is p)
             for g in opt.param_groups for p in g["params"]]  # state index -> parameter
    for i, j in enumerate(order):
        s = state.get(i, {})
        if j == len(SHAPES) - 1 and mode == "last never":
            assert not s, "state for a parameter that never had a gradient"
            continue
        tkeys = {k for k, v in tstate.get(i, {}).items() if v is not None}
        assert set(s) == tkeys, f"param {i}: state keys {sorted(s)} vs torch {sorted(tkeys)}"
        for k, v in s.items():
            want = tstate[i][k]
            if k == "step":
                assert v == int(want)
            else:
                assert_close(v, want, what=f"state {i} {k}")


@pytest.mark.parametrize("mode", GRAD_MODES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_float32_after_100_steps(case, mode):
    params = [Parameter(a) for a in _initial_params()]
    opt = case.build(optim, params)
    opt.flat = True
    for group in opt.param_groups:  # NumPy float64 hyperparameters must not promote
        group["lr"] = np.float64(group["lr"])
    _run_fb(opt, params, 100, mode=mode)
    for p in params:
        assert p.dtype == np.float32 and np.all(np.isfinite(p.data))
        assert p.grad is None or p.grad.dtype == np.float32
    for s in opt.state.values():
        for k, v in s.items():
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float32, f"state {k} dtype {v.dtype}"


def _in_flat_buffer(p, opt) -> bool:
    """Whether ``p.data`` is the view of a flat buffer of ``opt``."""
    return any(any(p.data is v for v in fg.views) for fg in opt._flat_groups.values())


def _to_checkpoint(sd):
    """Split a state_dict as a checkpoint would: arrays (safetensors-like) + JSON."""
    arrays = {f"{i}.{k}": v for i, s in sd["state"].items() for k, v in s.items()
              if isinstance(v, np.ndarray)}
    meta = {"state": {i: {k: v for k, v in s.items() if not isinstance(v, np.ndarray)}
                      for i, s in sd["state"].items()},
            "param_groups": sd["param_groups"]}
    return arrays, json.dumps(meta)


def _from_checkpoint(arrays, text):
    meta = json.loads(text)
    for key, arr in arrays.items():
        i, k = key.split(".", 1)
        meta["state"][i][k] = arr
    return meta


@pytest.mark.parametrize("mode", GRAD_MODES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_state_dict_round_trip_continues_identically(case, mode):
    params = [Parameter(a) for a in _initial_params()]
    opt = case.build(optim, params)
    opt.flat = True
    _run_fb(opt, params, 10, mode=mode)
    arrays, text = _to_checkpoint(opt.state_dict())
    arrays = {k: v.copy() for k, v in arrays.items()}
    # a fresh optimizer on copies of the parameters, built with different defaults
    params2 = [Parameter(p.data.copy()) for p in params]
    opt2 = case.build(optim, params2)
    opt2.flat = True
    for group in opt2.param_groups:
        group["lr"] = 123.0
    opt2.load_state_dict(_from_checkpoint(arrays, text))
    _run_fb(opt, params, 10, start=10, mode=mode)
    _run_fb(opt2, params2, 10, start=10, mode=mode)
    for p, p2 in zip(params, params2):
        assert np.array_equal(p.data, p2.data)
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] == \
        [{k: v for k, v in g.items() if k != "params"} for g in opt2.param_groups]


def test_state_dict_is_a_snapshot():
    p = Parameter(fb.ones(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = fb.ones(3)
    opt.step()
    sd = opt.state_dict()
    opt.step()
    assert sd["state"][0]["momentum_buffer"].tolist() == [1.0, 1.0, 1.0]
    assert sd["param_groups"][0]["params"] == [0]


# ------------------------------------------------------------------------ the API
def test_zero_grad():
    p = Parameter(fb.ones(2))
    p.grad = fb.ones(2)
    opt = optim.SGD([p], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None


def test_step_with_closure_records_the_graph_and_returns_the_loss():
    p = Parameter(fb.tensor([3.0]))
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with fb.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert loss.item() == 9.0
    assert p.item() == 1.5  # 3 - 0.25 * 6


def test_add_param_group_takes_defaults_and_overrides():
    a, b = Parameter(fb.ones(2)), Parameter(fb.ones(3))
    opt = optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "betas": (0.5, 0.6)})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.5, 0.6)
    assert opt.param_groups[1]["params"] == [b]
    with pytest.raises(ValueError, match="Adam: some parameters appear in more than one"):
        opt.add_param_group({"params": [a]})


def test_params_from_a_generator_of_module_parameters():
    class M(fb.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(fb.ones(2, 2))
            self.b = Parameter(fb.zeros(2))

    m = M()
    opt = optim.SGD(m.parameters(), lr=1.0)
    assert len(opt.param_groups[0]["params"]) == 2


ERRORS = [
    (lambda p: optim.SGD([p], lr=-1), ValueError, r"SGD: invalid lr -1"),
    (lambda p: optim.SGD([p], lr=0.1, momentum=-0.5), ValueError, r"SGD: invalid momentum -0.5"),
    (lambda p: optim.SGD([p], lr=0.1, nesterov=True), ValueError,
     r"SGD: Nesterov momentum requires momentum > 0 and dampening 0"),
    (lambda p: optim.SGD([{"params": [p], "lr": -0.5}], lr=0.1), ValueError,
     r"SGD: invalid lr -0.5"),
    (lambda p: optim.SGD([p], lr="fast"), TypeError, r"SGD: lr must be a real number, got str"),
    (lambda p: optim.Adam([p], betas=(0.9, 1.0)), ValueError,
     r"Adam: invalid betas \(0.9, 1.0\)"),
    (lambda p: optim.Adam([p], eps=-1e-8), ValueError, r"Adam: invalid eps -1e-08"),
    (lambda p: optim.AdamW([p], weight_decay=-0.01), ValueError,
     r"AdamW: invalid weight_decay -0.01"),
    (lambda p: optim.Adagrad([p], lr_decay=-1.0), ValueError, r"Adagrad: invalid lr_decay -1.0"),
    (lambda p: optim.RMSprop([p], alpha=-0.1), ValueError, r"RMSprop: invalid alpha -0.1"),
    (lambda p: optim.SGD(p, lr=0.1), TypeError,
     r"SGD: params must be an iterable of Tensors or of dicts, got a single Tensor"),
    (lambda p: optim.SGD([], lr=0.1), ValueError, r"SGD: got an empty parameter list"),
    (lambda p: optim.SGD({p}, lr=0.1), TypeError, r"SGD: parameters must be in an ordered"),
    (lambda p: optim.SGD([p, p], lr=0.1), ValueError, r"the same parameter twice"),
    (lambda p: optim.SGD([np.ones(2)], lr=0.1), TypeError,
     r"SGD: can only optimize Tensors, got ndarray"),
    (lambda p: optim.SGD([p * 2], lr=0.1), ValueError, r"SGD: can't optimize a non-leaf tensor"),
    (lambda p: optim.SGD([fb.tensor([1, 2])], lr=0.1), TypeError,
     r"SGD: can only optimize floating-point tensors, got dtype int64"),
]


@pytest.mark.parametrize("make, exc, match", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make(Parameter(fb.ones(2)))


def test_load_state_dict_errors_leave_the_optimizer_unchanged():
    a, b = Parameter(fb.ones(2)), Parameter(fb.ones(3))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad, b.grad = fb.ones(2), fb.ones(3)
    opt.step()
    sd = opt.state_dict()
    other = optim.Adam([Parameter(fb.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: group 0 has 2 parameters in "
                                         r"the state, 1 in this optimizer"):
        other.load_state_dict(sd)
    swapped = optim.Adam([Parameter(fb.ones(3)), Parameter(fb.ones(2))], lr=0.5)
    with pytest.raises(ValueError, match=r"state 'exp_avg' has shape \(2,\), its parameter has "
                                         r"shape \(3,\)"):
        swapped.load_state_dict(sd)
    assert swapped.state == {} and swapped.param_groups[0]["lr"] == 0.5
    with pytest.raises(ValueError, match=r"the state has 1 parameter groups, this optimizer "
                                         r"has 2"):
        two = optim.Adam([{"params": [Parameter(fb.ones(2))]},
                          {"params": [Parameter(fb.ones(3))]}])
        two.load_state_dict(sd)


def test_repr_lists_groups():
    opt = optim.SGD([Parameter(fb.ones(2))], lr=0.1, momentum=0.9)
    text = repr(opt)
    assert text.startswith("SGD (\nParameter Group 0") and "momentum: 0.9" in text
