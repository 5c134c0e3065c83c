"""The fake CuPy (``tests/fakecupy/cupy``, ``cupyx``) and how tests switch it on.

    from fakecupy import fake_cupy_fixture  # noqa: F401  (registers the fixture "fake_cupy")

    def test_something(fake_cupy):
        x = fake_cupy.asarray(np.ones(3))          # a "device" array
        assert get_array_module(x) is fake_cupy

Or ``with fakecupy.installed() as cupy: ...`` for a wider scope (a module fixture). While on,
``import cupy`` / ``import cupyx`` find the fakes; afterwards ``sys.path`` and ``sys.modules``
are as before (a real CuPy imported earlier comes back). ``installed(device_count=0)`` plays a
machine with CuPy but no GPU.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
_NAMES = ("cupy", "cupyx")


def _ours(name: str) -> bool:
    return any(name == n or name.startswith(n + ".") for n in _NAMES)


@contextlib.contextmanager
def installed(device_count: int = 1):
    """The fake ``cupy`` importable (and imported) inside the block; yields the module."""
    saved = {k: v for k, v in sys.modules.items() if _ours(k)}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, HERE)
    try:
        import cupy  # noqa: PLC0415

        if not getattr(cupy, "_FAKE", False):
            raise RuntimeError(f"fakecupy: imported the real cupy from {cupy.__file__}")
        cupy.cuda.runtime._device_count = device_count
        yield cupy
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(HERE)
        for k in [k for k in sys.modules if _ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.fixture(name="fake_cupy")
def fake_cupy_fixture():
    """The fake ``cupy`` module, on ``sys.path`` for this test only."""
    with installed() as cupy:
        yield cupy


@pytest.fixture(name="fake_cupy_no_gpu")
def fake_cupy_no_gpu_fixture():
    """The fake ``cupy`` on a machine without a GPU (``getDeviceCount`` raises)."""
    with installed(device_count=0) as cupy:
        yield cupy
