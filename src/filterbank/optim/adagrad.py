"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""

from __future__ import annotations

from collections.abc import Iterable

from filterbank.backend import get_array_module
from filterbank.optim.optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), PyTorch's update rule.

    For each parameter p with gradient g, at step t = 1, 2, ...::

        g = -g                                       if maximize
        g = g + weight_decay * p                     if weight_decay != 0
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                                (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)

    Args:
        params: parameters, or dicts of parameter groups with their own options.
        lr: learning rate (>= 0).
        lr_decay: learning-rate decay per step (>= 0).
        weight_decay: L2 penalty coefficient (>= 0).
        initial_accumulator_value: starting value of the sum s (>= 0).
        eps: denominator term for numerical stability (>= 0).
        maximize: ascend the objective instead of descending.

    State per parameter: ``step`` (int) and ``sum`` (s).

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import Parameter
        >>> from filterbank.optim import Adagrad
        >>> w = Parameter(fb.tensor([1.0, -2.0]))
        >>> opt = Adagrad([w], lr=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> [round(v, 4) for v in w.detach().tolist()]
        [0.5, -1.5]
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def _validate(self, group):
        self._nonneg(group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value",
                     "eps")

    def _update(self, p, g, state, group):
        xp = get_array_module(p)  # the state lives where the parameter does
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        if not state:
            state["step"] = 0
            state["sum"] = xp.full_like(p, float(group["initial_accumulator_value"]))
        state["step"] += 1
        if group["maximize"]:
            g = -g
        if wd != 0:
            g = g + wd * p
        clr = lr / (1 + (state["step"] - 1) * float(group["lr_decay"]))
        s = state["sum"]
        s += g * g
        std = xp.sqrt(s)
        std += eps
        p -= clr * g / std
