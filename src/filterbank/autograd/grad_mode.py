"""Switching gradient recording on and off (``no_grad``, ``enable_grad``, ``set_grad_enabled``)."""

from __future__ import annotations

import functools
import sys
from types import ModuleType

_enabled = True


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph for backward."""
    return _enabled


class _FlagSwitch:
    """Context manager and decorator that sets the flag ``_enabled`` of the module ``_module``
    to ``mode`` inside it. Shared by the grad modes here and by anomaly detection."""

    _module: ModuleType

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)
        self._prev: list[bool] = []  # a stack, so one instance can be re-entered

    def __enter__(self):
        self._prev.append(self._module._enabled)
        self._module._enabled = self.mode
        return self

    def __exit__(self, *exc):
        self._module._enabled = self._prev.pop()
        return False

    def __call__(self, fn):
        module, mode = self._module, self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev, module._enabled = module._enabled, mode
            try:
                return fn(*args, **kwargs)
            finally:
                module._enabled = prev

        return wrapper


class _SwitchNow(_FlagSwitch):
    """The ``set_*`` form: switches at once when called; as a context manager it restores the
    previous value on exit; as a decorator it undoes the switch and applies it per call."""

    def __init__(self, mode: bool = True):
        super().__init__(mode)
        self._prev.append(self._module._enabled)
        self._module._enabled = self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._prev:
            self._module._enabled = self._prev.pop()
        return False

    def __call__(self, fn):
        if self._prev:
            self._module._enabled = self._prev.pop()
        return super().__call__(fn)


class _GradMode(_FlagSwitch):
    _module = sys.modules[__name__]


class no_grad(_GradMode):
    """Disable graph recording: ``with fb.no_grad(): ...``, ``@fb.no_grad()`` or ``@fb.no_grad``.

    Ops run inside it return tensors with ``requires_grad=False`` and keep nothing for backward,
    which is what inference and parameter updates want.

    Example:
        >>> import filterbank as fb
        >>> w = fb.ones(2, requires_grad=True)
        >>> with fb.no_grad():
        ...     y = w * 2
        >>> y.requires_grad
        False
    """

    def __new__(cls, fn=None):
        obj = super().__new__(cls)
        if fn is not None and callable(fn):  # used as a bare decorator: @no_grad
            obj.__init__()
            return obj(fn)
        return obj

    def __init__(self, fn=None):
        super().__init__(False)


class enable_grad(_GradMode):
    """Re-enable graph recording inside a ``no_grad`` block (context manager or decorator)."""

    def __init__(self):
        super().__init__(True)


class set_grad_enabled(_SwitchNow, _GradMode):
    """Set gradient recording on or off, like ``torch.set_grad_enabled``.

    Called on its own it switches the mode at once; used as a context manager
    (``with fb.set_grad_enabled(training): ...``) it restores the previous mode on exit.
    """



class inference_mode(_GradMode):
    """Inference mode, like ``torch.inference_mode``: no graph is recorded inside it.

    Here it is :class:`no_grad` under PyTorch's name, usable as ``with fb.inference_mode():``,
    ``@fb.inference_mode()`` or ``@fb.inference_mode``; ``inference_mode(False)`` changes
    nothing. PyTorch also marks the tensors made inside as unusable in autograd later;
    filterbank does not (it has no dispatcher overhead for that to save).

    Args:
        mode: True (default) switches recording off; False leaves the current mode.

    Example:
        >>> import filterbank as fb
        >>> w = fb.ones(2, requires_grad=True)
        >>> with fb.inference_mode():
        ...     y = w * 2
        >>> y.requires_grad
        False
    """

    def __new__(cls, mode=True):
        obj = super().__new__(cls)
        if callable(mode):  # used as a bare decorator: @inference_mode
            obj.__init__()
            return obj(mode)
        return obj

    def __init__(self, mode=True):
        if not isinstance(mode, bool | int):
            raise TypeError(f"inference_mode: expected mode to be a bool, got "
                            f"{type(mode).__name__}")
        super().__init__(False)
        self.inference = bool(mode)

    def __enter__(self):
        if not self.inference:
            self.mode = self._module._enabled  # re-entering the current mode: a no-op
        return super().__enter__()

    def __call__(self, fn):
        return super().__call__(fn) if self.inference else fn
