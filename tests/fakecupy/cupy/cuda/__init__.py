"""Fake ``cupy.cuda``: one device unless a test sets ``runtime._device_count`` to 0."""

from __future__ import annotations

from . import runtime


class Device:
    """``cupy.cuda.Device(i)``: ``.id``, a context manager making ``i`` current."""

    def __init__(self, device=None):
        self.id = runtime._current if device is None else int(device)
        self._prev: list[int] = []

    def __enter__(self):
        runtime._check(self.id)
        self._prev.append(runtime._current)
        runtime._current = self.id
        return self

    def __exit__(self, *exc):
        runtime._current = self._prev.pop()
        return False

    def use(self):
        runtime._check(self.id)
        runtime._current = self.id

    def synchronize(self):
        runtime._check(self.id)

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


def is_available() -> bool:
    return runtime._device_count > 0


def get_device_id() -> int:
    return runtime._current
