"""LR schedulers: a registry of schedules, each compared with ``torch.optim.lr_scheduler``
step by step (learning rates, and momentum / betas for OneCycleLR), and resumed from a
JSON round trip of its state_dict; plus validation errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import filterbank as fb
from filterbank import optim
from filterbank.nn import Parameter
from filterbank.optim import lr_scheduler as fbs


@dataclass
class SchedCase:
    """``make(optim_module, sched_module, opt)`` builds the scheduler; ``opt`` is built by
    ``optimizer`` with two parameter groups of different learning rates."""

    name: str
    make: Any
    steps: int = 30
    optimizer: str = "SGD"
    metrics: Any = None  # ReduceLROnPlateau: step(metrics[k])

    def __str__(self) -> str:
        return self.name

    def build(self, om, sm, lrs=(0.1, 0.02)):
        p, q = _param(om), _param(om)
        kw = {"momentum": 0.9} if self.optimizer == "SGD" else {}
        opt = getattr(om, self.optimizer)([{"params": [p], "lr": lrs[0]},
                                           {"params": [q], "lr": lrs[1]}], **kw)
        return opt, self.make(sm, opt)


def _param(om):
    if om is optim:
        return Parameter(fb.zeros(2))
    import torch

    return torch.nn.Parameter(torch.zeros(2))


_PLATEAU = [1.0, 0.9, 0.89995, 0.9, 0.95, 0.9, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.5, 0.6, 0.6,
            0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
_RISING = [0.1, 0.2, 0.201, 0.25, 0.2, 0.21, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.402, 0.4, 0.4]

CASES = [
    SchedCase("StepLR", lambda s, o: s.StepLR(o, step_size=3, gamma=0.5)),
    SchedCase("MultiStepLR", lambda s, o: s.MultiStepLR(o, milestones=[9, 2, 5, 5], gamma=0.3)),
    SchedCase("ExponentialLR", lambda s, o: s.ExponentialLR(o, gamma=0.9)),
    SchedCase("CosineAnnealingLR", lambda s, o: s.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
              steps=45),
    SchedCase("LinearLR_warmup", lambda s, o: s.LinearLR(o, start_factor=0.25, total_iters=4)),
    SchedCase("LinearLR_decay", lambda s, o: s.LinearLR(o, start_factor=1.0, end_factor=0.1,
                                                        total_iters=7)),
    SchedCase("OneCycleLR_cos", lambda s, o: s.OneCycleLR(o, max_lr=1.0, total_steps=30),
              steps=30),
    SchedCase("OneCycleLR_linear_per_group",
              lambda s, o: s.OneCycleLR(o, max_lr=[1.0, 0.5], epochs=4, steps_per_epoch=5,
                                        pct_start=0.25, anneal_strategy="linear",
                                        div_factor=10.0, final_div_factor=100.0,
                                        base_momentum=[0.8, 0.7], max_momentum=0.9),
              steps=20),
    SchedCase("OneCycleLR_three_phase",
              lambda s, o: s.OneCycleLR(o, max_lr=0.5, total_steps=25, three_phase=True),
              steps=25),
    SchedCase("OneCycleLR_adam_beta1",
              lambda s, o: s.OneCycleLR(o, max_lr=0.01, total_steps=20, pct_start=0.4),
              steps=20, optimizer="Adam"),
    SchedCase("OneCycleLR_no_momentum_cycle",
              lambda s, o: s.OneCycleLR(o, max_lr=0.3, total_steps=15, cycle_momentum=False),
              steps=15, optimizer="Adagrad"),
    SchedCase("ReduceLROnPlateau_min_rel",
              lambda s, o: s.ReduceLROnPlateau(o, patience=2, factor=0.5),
              steps=len(_PLATEAU), metrics=_PLATEAU),
    SchedCase("ReduceLROnPlateau_min_abs_cooldown_minlr",
              lambda s, o: s.ReduceLROnPlateau(o, patience=1, factor=0.3, threshold=0.05,
                                               threshold_mode="abs", cooldown=2,
                                               min_lr=[0.01, 0.005]),
              steps=len(_PLATEAU), metrics=_PLATEAU),
    SchedCase("ReduceLROnPlateau_max",
              lambda s, o: s.ReduceLROnPlateau(o, mode="max", patience=0, factor=0.5,
                                               threshold=0.01, min_lr=0.002, eps=0.015),
              steps=len(_RISING), metrics=_RISING),
    SchedCase("ReduceLROnPlateau_min_abs",
              lambda s, o: s.ReduceLROnPlateau(o, patience=0, threshold=0.02,
                                               threshold_mode="abs"),
              steps=len(_PLATEAU), metrics=_PLATEAU),
    SchedCase("ReduceLROnPlateau_max_abs",
              lambda s, o: s.ReduceLROnPlateau(o, mode="max", patience=1, threshold=0.05,
                                               threshold_mode="abs"),
              steps=len(_RISING), metrics=_RISING),
    SchedCase("SequentialLR_warmup_cosine",
              lambda s, o: s.SequentialLR(o, [s.LinearLR(o, start_factor=0.1, total_iters=5),
                                              s.CosineAnnealingLR(o, T_max=20)],
                                          milestones=[5])),
    SchedCase("SequentialLR_three",
              lambda s, o: s.SequentialLR(o, [s.ExponentialLR(o, gamma=0.8),
                                              s.StepLR(o, step_size=2, gamma=0.5),
                                              s.MultiStepLR(o, milestones=[3, 6])],
                                          milestones=[4, 12])),
    SchedCase("ChainedScheduler",
              lambda s, o: s.ChainedScheduler([s.ExponentialLR(o, gamma=0.95),
                                               s.StepLR(o, step_size=4, gamma=0.5)])),
    SchedCase("ChainedScheduler_warmup_then_decay",
              lambda s, o: s.ChainedScheduler([s.LinearLR(o, start_factor=0.2, total_iters=6),
                                               s.ExponentialLR(o, gamma=0.9)], optimizer=o)),
]


def _trace(case, opt, sched, start, stop):
    """LRs (and momentum terms) after each of the steps start..stop-1."""
    rows = []
    for k in range(start, stop):
        opt.step()
        if case.metrics is not None:
            sched.step(case.metrics[k])
        else:
            sched.step()
        rows.append(_snapshot(opt, sched))
    return rows


def _snapshot(opt, sched):
    groups = opt.param_groups
    return (list(sched.get_last_lr()), [g["lr"] for g in groups],
            [g.get("momentum") for g in groups], [tuple(g["betas"]) if "betas" in g else None
                                                  for g in groups])


def _assert_rows_close(got, want):
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        for what, x, y in zip(("get_last_lr", "lr", "momentum", "betas"), a, b):
            x = [np.nan if v is None else v for v in x]
            y = [np.nan if v is None else v for v in y]
            np.testing.assert_allclose(np.array(x, float), np.array(y, float), rtol=1e-12,
                                       atol=1e-15, equal_nan=True, err_msg=f"step {k} {what}")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    opt, sched = case.build(optim, fbs)
    topt, tsched = case.build(torch.optim, torch.optim.lr_scheduler)
    _assert_rows_close([_snapshot(opt, sched)], [_snapshot(topt, tsched)])
    _assert_rows_close(_trace(case, opt, sched, 0, case.steps),
                       _trace(case, topt, tsched, 0, case.steps))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_state_dict_json_round_trip_resumes(case):
    opt, sched = case.build(optim, fbs)
    half = case.steps // 2
    _trace(case, opt, sched, 0, half)
    opt_text, sched_text = (json.dumps(_jsonable(opt.state_dict())),
                            json.dumps(sched.state_dict(), allow_nan=False))
    # resume: fresh optimizer and scheduler (different lrs), then the saved states
    opt2, sched2 = case.build(optim, fbs, lrs=(5.0, 7.0))
    opt2.load_state_dict(json.loads(opt_text))
    sched2.load_state_dict(json.loads(sched_text))
    assert sched2.get_last_lr() == sched.get_last_lr()
    _assert_rows_close(_trace(case, opt2, sched2, half, case.steps),
                       _trace(case, opt, sched, half, case.steps))


def _jsonable(sd):
    return {"state": {i: {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                          for k, v in s.items()} for i, s in sd["state"].items()},
            "param_groups": sd["param_groups"]}


def test_plateau_state_dict_is_strict_json_before_any_metric():
    sched = fbs.ReduceLROnPlateau(_sgd(), mode="max")
    text = json.dumps(sched.state_dict(), allow_nan=False)
    sched.best = 0.0
    sched.load_state_dict(json.loads(text))
    assert sched.best == -np.inf


def test_onecycle_raises_past_total_steps():
    opt = optim.SGD([Parameter(fb.zeros(1))], lr=0.1, momentum=0.9)
    sched = fbs.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="OneCycleLR: tried to step 4 times, but total_steps is 3"):
        sched.step()


def _sgd():
    return optim.SGD([Parameter(fb.zeros(1))], lr=0.1)


ERRORS = [
    (lambda: fbs.StepLR(object(), 2), TypeError, r"StepLR: expected an Optimizer, got object"),
    (lambda: fbs.StepLR(_sgd(), 0), ValueError, r"StepLR: step_size must be a positive int"),
    (lambda: fbs.LinearLR(_sgd(), start_factor=0.0), ValueError,
     r"LinearLR: start_factor must be in \(0, 1\], got 0.0"),
    (lambda: fbs.CosineAnnealingLR(_sgd(), T_max=0), ValueError,
     r"CosineAnnealingLR: T_max must be > 0"),
    (lambda: fbs.OneCycleLR(_sgd(), max_lr=1.0), ValueError,
     r"OneCycleLR: give total_steps, or epochs and steps_per_epoch"),
    (lambda: fbs.OneCycleLR(optim.Adagrad([Parameter(fb.zeros(1))]), 1.0, total_steps=5),
     ValueError, r"OneCycleLR: cycle_momentum needs an optimizer with momentum or betas"),
    (lambda: fbs.OneCycleLR(_sgd(), [1.0, 2.0], total_steps=5), ValueError,
     r"OneCycleLR: max_lr has 2 values, the optimizer has 1 parameter groups"),
    (lambda: fbs.OneCycleLR(_sgd(), 1.0, total_steps=5, anneal_strategy="exp"), ValueError,
     r"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    (lambda: fbs.ReduceLROnPlateau(_sgd(), factor=1.0), ValueError,
     r"ReduceLROnPlateau: factor must be < 1, got 1.0"),
    (lambda: fbs.ReduceLROnPlateau(_sgd(), mode="up"), ValueError,
     r"ReduceLROnPlateau: mode must be 'min' or 'max', got 'up'"),
    (lambda: fbs.SequentialLR(o := _sgd(), [fbs.StepLR(o, 2)], milestones=[3]), ValueError,
     r"SequentialLR: expected 0 milestones for 1 schedulers, got 1"),
    (lambda: fbs.SequentialLR(_sgd(), [fbs.StepLR(_sgd(), 2)], milestones=[]), ValueError,
     r"SequentialLR: schedulers\[0\] \(StepLR\) belongs to another optimizer"),
    (lambda: fbs.ChainedScheduler([fbs.ReduceLROnPlateau(_sgd())]), ValueError,
     r"ChainedScheduler: schedulers\[0\] is a ReduceLROnPlateau"),
    (lambda: fbs.ChainedScheduler([]), ValueError, r"ChainedScheduler: expected at least one"),
    (lambda: fbs.StepLR(_sgd(), 2, last_epoch=3), KeyError, r"has no 'initial_lr'"),
]


@pytest.mark.parametrize("make, exc, match", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_one_cycle_with_a_one_step_warm_up_starts_at_the_peak():
    """pct_start * total_steps == 1: the warm-up phase has no length (0/0 in PyTorch's
    formula); its end, the peak, is the first learning rate, then the annealing follows."""
    w = fb.zeros(1, requires_grad=True)
    opt = fb.optim.SGD([w], lr=0.1)
    sched = fb.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.1,
                                             cycle_momentum=False)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(1.0 / 25 / 1e4)
