"""Anomaly detection: find the op whose backward first produced NaN or Inf.

While it is on, the backward pass checks every gradient each op's ``backward`` returns and
raises a ``RuntimeError`` naming the op, e.g. ``Function 'Log' returned nan values in its 0th
output``. When it is off the backward pass reads one flag per call and nothing else.
"""

from __future__ import annotations

import sys

import numpy as np

from filterbank.autograd.grad_mode import _FlagSwitch, _SwitchNow

_enabled = False


def is_anomaly_enabled() -> bool:
    """Whether backward checks each op's gradients for NaN/Inf."""
    return _enabled


class detect_anomaly(_FlagSwitch):
    """Context manager (and decorator) turning anomaly detection on inside it.

    Example:
        >>> import numpy as np
        >>> import filterbank as fb
        >>> x = fb.tensor([0.0], requires_grad=True)
        >>> with fb.autograd.detect_anomaly(), np.errstate(divide="ignore"):
        ...     try:
        ...         x.sqrt().sum().backward()  # d sqrt(x)/dx = 1 / (2 sqrt(x)) = inf at 0
        ...     except RuntimeError as e:
        ...         print(e)
        Function 'Sqrt' returned inf values in its 0th output
    """

    _module = sys.modules[__name__]


class set_detect_anomaly(_SwitchNow, detect_anomaly):
    """Switch anomaly detection on or off at once (restored on exit when used with ``with``)."""


def check_gradients(fn, grads) -> None:
    """Raise if any gradient returned by ``fn.backward`` holds NaN or Inf."""
    for i, g in enumerate(grads):
        if g is None or g.dtype.kind not in "fc" or np.isfinite(g).all():
            continue
        kind = "nan" if np.isnan(g).any() else "inf"
        raise RuntimeError(
            f"Function '{type(fn).__name__}' returned {kind} values in its {i}th output"
        )
