"""Adam: adaptive moment estimation (Kingma and Ba, 2015), with optional AMSGrad."""

from __future__ import annotations

from collections.abc import Iterable

from filterbank.backend import get_array_module
from filterbank.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam, PyTorch's update rule (L2 weight decay added to the gradient).

    For each parameter p with gradient g, at step t = 1, 2, ...::

        g = -g                                       if maximize
        g = g + weight_decay * p                     if weight_decay != 0
        m = m + (1 - beta1) * (g - m)                (= beta1 m + (1 - beta1) g)
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v); v_hat = v_max         if amsgrad, else v_hat = v
        p = p - lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)

    Args:
        params: parameters, or dicts of parameter groups with their own options.
        lr: learning rate (>= 0).
        betas: (beta1, beta2), the decay rates of the first and second moments, in [0, 1).
        eps: added to the denominator for numerical stability (>= 0).
        weight_decay: L2 penalty coefficient (>= 0). See :class:`AdamW` for decoupled decay.
        amsgrad: use the running maximum of v (AMSGrad).
        maximize: ascend the objective instead of descending.

    State per parameter: ``step`` (int), ``exp_avg`` (m), ``exp_avg_sq`` (v) and
    ``max_exp_avg_sq`` (with amsgrad).

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import Parameter
        >>> from filterbank.optim import Adam
        >>> w = Parameter(fb.tensor([1.0, -2.0]))
        >>> opt = Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> [round(v, 4) for v in w.detach().tolist()]
        [0.9, -1.9]
    """

    _decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _validate(self, group):
        self._nonneg(group, "lr", "eps", "weight_decay")
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{self._name}: invalid betas {tuple(betas)} (two values in "
                             f"[0, 1) expected)")

    def _update(self, p, g, state, group):
        xp = get_array_module(p)  # the state lives where the parameter does
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p)
            state["exp_avg_sq"] = xp.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        if group["maximize"]:
            g = -g
        if wd != 0:
            if self._decoupled:
                p *= 1 - lr * wd
            else:
                g = g + wd * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * g * g
        if group["amsgrad"]:
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        step_size = lr / (1 - beta1**t)
        denom = xp.sqrt(v)
        denom /= (1 - beta2**t) ** 0.5
        denom += eps
        p -= step_size * m / denom
