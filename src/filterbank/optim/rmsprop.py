"""RMSprop: gradients divided by a running root-mean-square of their recent magnitudes."""

from __future__ import annotations

from collections.abc import Iterable

from filterbank.backend import get_array_module
from filterbank.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), PyTorch's update rule.

    For each parameter p with gradient g::

        g = -g                                       if maximize
        g = g + weight_decay * p                     if weight_decay != 0
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            a = a + (1 - alpha) * (g - a)            (running mean of g)
            d = sqrt(v - a * a) + eps
        else:
            d = sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / d
            p = p - lr * b
        else:
            p = p - lr * g / d

    Args:
        params: parameters, or dicts of parameter groups with their own options.
        lr: learning rate (>= 0).
        alpha: smoothing constant of the squared-gradient average (>= 0).
        eps: denominator term for numerical stability (>= 0).
        weight_decay: L2 penalty coefficient (>= 0).
        momentum: momentum factor (>= 0).
        centered: normalise by the estimated variance of the gradient instead of its
            second moment.
        maximize: ascend the objective instead of descending.

    State per parameter: ``step`` (int), ``square_avg`` (v), ``momentum_buffer`` (b, when
    momentum > 0) and ``grad_avg`` (a, when centered).

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import Parameter
        >>> from filterbank.optim import RMSprop
        >>> w = Parameter(fb.tensor([1.0]))
        >>> opt = RMSprop([w], lr=0.01, alpha=0.99)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> round(w.item(), 4)
        0.9
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered,
                                      maximize=maximize))

    def _validate(self, group):
        self._nonneg(group, "lr", "alpha", "eps", "weight_decay", "momentum")

    def _update(self, p, g, state, group):
        xp = get_array_module(p)  # the state lives where the parameter does
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        alpha, mu = float(group["alpha"]), float(group["momentum"])
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p)
            if mu > 0:
                state["momentum_buffer"] = xp.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(p)
        state["step"] += 1
        if group["maximize"]:
            g = -g
        if wd != 0:
            g = g + wd * p
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * g * g
        if group["centered"]:
            a = state["grad_avg"]
            a += (1 - alpha) * (g - a)
            d = xp.sqrt(v - a * a)
        else:
            d = xp.sqrt(v)
        d += eps
        if mu > 0:
            b = state["momentum_buffer"]
            b *= mu
            b += g / d
            p -= lr * b
        else:
            p -= lr * g / d
