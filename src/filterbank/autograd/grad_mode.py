"""Switching gradient recording on and off (``no_grad``, ``enable_grad``, ``set_grad_enabled``)."""

from __future__ import annotations

import functools

_enabled = True


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph for backward."""
    return _enabled


class _GradMode:
    """Context manager and decorator that sets gradient recording to ``mode`` inside it."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev: list[bool] = []  # a stack, so one instance can be re-entered

    def __enter__(self):
        global _enabled
        self._prev.append(_enabled)
        _enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _enabled
        _enabled = self._prev.pop()
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(mode):
                return fn(*args, **kwargs)

        return wrapper


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


class set_grad_enabled(_GradMode):
    """Set gradient recording on or off, like ``torch.set_grad_enabled``.

    Called on its own it switches the mode at once; used as a context manager
    (``with fb.set_grad_enabled(training): ...``) it restores the previous mode on exit.
    """

    def __init__(self, mode: bool = True):
        global _enabled
        super().__init__(mode)
        self._prev.append(_enabled)
        _enabled = self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _enabled
        if self._prev:
            _enabled = self._prev.pop()
        return False

    def __call__(self, fn):
        global _enabled
        if self._prev:  # as a decorator: undo the switch made by __init__
            _enabled = self._prev.pop()
        return super().__call__(fn)
