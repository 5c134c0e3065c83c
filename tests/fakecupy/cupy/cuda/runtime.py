"""Fake ``cupy.cuda.runtime``. ``_device_count = 0`` plays a machine without a GPU: then
``getDeviceCount()`` raises as CuPy's does (cudaErrorNoDevice)."""

from __future__ import annotations

_device_count = 1
_current = 0


class CUDARuntimeError(RuntimeError):
    def __init__(self, status: int, msg: str = ""):
        self.status = status
        super().__init__(msg or f"CUDA runtime error {status}")


def getDeviceCount() -> int:  # noqa: N802 - CuPy's name
    if _device_count <= 0:
        raise CUDARuntimeError(100, "cudaErrorNoDevice: no CUDA-capable device is detected")
    return _device_count


def getDevice() -> int:  # noqa: N802
    return _current


def _check(i: int) -> None:
    n = getDeviceCount()
    if not 0 <= i < n:
        raise CUDARuntimeError(101, "cudaErrorInvalidDevice: invalid device ordinal")


def deviceSynchronize() -> None:  # noqa: N802
    getDeviceCount()
