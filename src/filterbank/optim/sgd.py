"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Iterable

from filterbank.optim.optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), PyTorch's update rule.

    For each parameter p with gradient g (mu = momentum, tau = dampening)::

        g = -g                                  if maximize
        g = g + weight_decay * p                if weight_decay != 0
        if mu != 0:
            b = g                               on the first step
            b = mu * b + (1 - tau) * g          afterwards
            g = g + mu * b                      if nesterov
            g = b                               otherwise
        p = p - lr * g

    Args:
        params: parameters, or dicts of parameter groups with their own options.
        lr: learning rate (>= 0).
        momentum: momentum factor mu (>= 0).
        dampening: dampening tau of the momentum.
        weight_decay: L2 penalty coefficient (>= 0).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: ascend the objective instead of descending.

    State per parameter: ``momentum_buffer`` (when momentum != 0).

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import Parameter
        >>> from filterbank.optim import SGD
        >>> w = Parameter(fb.tensor([1.0, 2.0]))
        >>> opt = SGD([w], lr=0.1, momentum=0.9)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w.detach().tolist()
        [0.800000011920929, 1.600000023841858]
    """

    #: per tensor by default: SGD's update is two or three passes without temporaries, so one
    #: flat buffer gains nothing measurable (0.81-1.13x at ResNet-18 size, 0.98-1.20x at
    #: LeNet-5's, ``bench/overhead.py --optim-only``); ``opt.flat = True`` turns it on
    flat = False

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _validate(self, group):
        self._nonneg(group, "lr", "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: Nesterov momentum requires momentum > 0 and dampening 0, "
                             f"got momentum {group['momentum']}, dampening "
                             f"{group['dampening']}")

    def _update(self, p, g, state, group):
        lr, mu = float(group["lr"]), float(group["momentum"])
        wd = float(group["weight_decay"])
        if group["maximize"]:
            g = -g
        if wd != 0:
            g = g + wd * p
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= mu
                damp = float(group["dampening"])
                buf += g if damp == 0 else (1 - damp) * g  # no temporary in the usual case
            g = g + mu * buf if group["nesterov"] else buf
        p -= lr * g
