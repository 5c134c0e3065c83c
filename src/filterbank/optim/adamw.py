"""AdamW: Adam with decoupled weight decay (Loshchilov and Hutter, 2019)."""

from __future__ import annotations

from collections.abc import Iterable

from filterbank.optim.adam import Adam


class AdamW(Adam):
    """Adam with decoupled weight decay, PyTorch's update rule.

    The decay shrinks the parameter directly instead of entering the gradient (so it is not
    rescaled by the adaptive denominator)::

        p = p * (1 - lr * weight_decay)
        (then the Adam update of :class:`Adam` with the raw gradient g)

    Args:
        params: parameters, or dicts of parameter groups with their own options.
        lr: learning rate (>= 0).
        betas: (beta1, beta2) in [0, 1).
        eps: denominator term for numerical stability (>= 0).
        weight_decay: decoupled decay coefficient (>= 0; default 1e-2).
        amsgrad: use the running maximum of the second moment.
        maximize: ascend the objective instead of descending.

    State per parameter: as :class:`Adam`.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn import Parameter
        >>> from filterbank.optim import AdamW
        >>> w = Parameter(fb.tensor([1.0]))
        >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> round(w.item(), 4)
        0.85
    """

    _decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)
