"""Finite-difference gradient checking in float64 (Chainer's ``check_backward``)."""

from __future__ import annotations

import numpy as np

from filterbank.autograd import grad_mode
from filterbank.tensor import Tensor


class GradcheckError(RuntimeError):
    """Analytic and numerical gradients disagree."""


def _outputs(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, tuple | list):
        return [o for o in out if isinstance(o, Tensor)]
    raise TypeError(f"gradcheck: fn must return a Tensor or a sequence of them, got {type(out)}")


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0, raise_exception: bool = True) -> bool:
    """Compare backprop gradients of ``fn`` with central finite differences.

    Every output is contracted with a fixed random weight tensor ``v`` so one backward pass
    gives the gradient of the scalar ``L = sum(v * fn(*inputs))``; each input element is then
    nudged by +-eps and ``(L(x+eps) - L(x-eps)) / (2 eps)`` compared with it:
    ``|analytic - numeric| <= atol + rtol * |numeric|``.

    Args:
        fn: function of the inputs returning a Tensor (or a sequence of Tensors).
        inputs: Tensors (float64 recommended; others are passed through unchanged). Those with
            ``requires_grad=True`` are checked.
        eps, atol, rtol: step and tolerances.
        raise_exception: raise :class:`GradcheckError` on a mismatch (else return False).

    Returns:
        True when every checked element agrees.

    Example:
        >>> import filterbank as fb
        >>> x = fb.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
        >>> fb.gradcheck(lambda t: (t * t).sin(), (x,))
        True
    """
    inputs = tuple(inputs) if isinstance(inputs, tuple | list) else (inputs,)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences need "
                f"float64 inputs"
            )
    rng = np.random.default_rng(seed)
    outs = _outputs(fn(*inputs))
    weights = [rng.standard_normal(o.shape) for o in outs]

    def scalar() -> float:
        with grad_mode.no_grad():  # finite differences need no graph
            outs_ = _outputs(fn(*inputs))
        return float(sum(np.sum(o.data.astype(np.float64) * w) for o, w in zip(outs_, weights)))

    for i in checked:
        inputs[i].grad = None
    total = None
    for o, w in zip(outs, weights):
        if o.requires_grad:
            term = (o * Tensor(w, dtype=o.dtype)).sum()
            total = term if total is None else total + term
    if total is None:
        raise GradcheckError("gradcheck: no output depends on an input that requires grad")
    total.backward()

    for i in checked:
        t = inputs[i]
        if t.grad is not None and (t.grad.shape != t.shape or t.grad.dtype != t.dtype):
            raise GradcheckError(
                f"gradcheck: the gradient of input {i} has shape {t.grad.shape} and dtype "
                f"{t.grad.dtype}; expected {t.shape} and {t.dtype}"
            )
        analytic = np.zeros(t.shape) if t.grad is None else t.grad.data.astype(np.float64)
        flat_index = np.ndindex(t.shape) if t.ndim else [()]
        for idx in flat_index:
            orig = t.data[idx].copy()
            t.data[idx] = orig + eps
            plus = scalar()
            t.data[idx] = orig - eps
            minus = scalar()
            t.data[idx] = orig
            numeric = (plus - minus) / (2 * eps)
            a = analytic[idx]
            if not abs(a - numeric) <= atol + rtol * abs(numeric):
                msg = (f"gradcheck: gradient mismatch for input {i} (shape {t.shape}) at index "
                       f"{idx}: analytic {a:.8g}, numeric {numeric:.8g}")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True
