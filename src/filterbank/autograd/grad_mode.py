"""Switching gradient recording on and off (``no_grad``, ``enable_grad``)."""

from __future__ import annotations

import functools

_enabled = True


def is_grad_enabled() -> bool:
    return _enabled


class set_grad_enabled:
    """Context manager (and decorator) that sets gradient recording to ``mode``."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)
        self._prev: list[bool] = []

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
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(set_grad_enabled):
    """Disable graph recording: ``with fb.no_grad(): ...``, ``@fb.no_grad()`` or ``@fb.no_grad``.

    Ops run inside it return tensors with ``requires_grad=False`` and keep nothing for backward,
    which is what inference and parameter updates want.
    """

    def __new__(cls, fn=None):
        obj = super().__new__(cls)
        if fn is not None and callable(fn):
            obj.__init__()
            return obj(fn)
        return obj

    def __init__(self, fn=None):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Re-enable graph recording inside a ``no_grad`` block."""

    def __init__(self):
        super().__init__(True)
