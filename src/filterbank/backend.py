"""The array-module seam, and where arrays live.

Every op works on raw arrays through ``xp``: NumPy for tensors on the CPU, CuPy for tensors on
a GPU. :func:`get_array_module` picks the module that owns an op's inputs, so an op written
against ``xp`` runs on either. CuPy is optional (``pip install filterbank[cuda12]`` or
``filterbank[cuda13]``) and imported only when a GPU is asked for or a CuPy array is passed.

Moving data between devices (:func:`to_device`), naming an array's device (:func:`device_of`)
and the clear errors for a missing CuPy or GPU (:func:`cupy_module`) live here too.
"""

from __future__ import annotations

import numpy as np

xp = np

DEFAULT_DTYPE = np.dtype(np.float32)

class DeviceError(ValueError, RuntimeError):
    """A device that cannot be used, or tensors on two devices in one op. Both a
    ``ValueError`` (filterbank's convention for a bad argument) and a ``RuntimeError``
    (what PyTorch raises in these cases), so either ``except`` catches it."""


_INSTALL = "install filterbank[cuda12] or filterbank[cuda13] (CuPy for CUDA 12 or 13)"


def get_array_module(a=None, *more):
    """Return the array module (``numpy`` or ``cupy``) that owns the arrays ``a, *more``.
    One NumPy array costs one type check (the hot ops call this once per op)."""
    if type(a) is np.ndarray and not more:
        return np
    for b in (a, *more):
        if type(b) is not np.ndarray and type(b).__module__.startswith("cupy"):
            import cupy  # noqa: PLC0415  (optional, only when CuPy arrays are passed)

            return cupy
    return np


def is_floating(dtype) -> bool:
    return np.issubdtype(dtype, np.floating)


# ------------------------------------------------------------------------------ CuPy
def _import_cupy():
    """CuPy, or None when it is not installed (or its import fails: a wheel for another
    CUDA version raises on import)."""
    try:
        import cupy  # noqa: PLC0415
    except ImportError:
        return None
    return cupy


def _gpu_count(cupy) -> tuple[int, str]:
    """(number of GPUs CuPy sees, why 0 when it sees none)."""
    try:
        n = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as e:  # noqa: BLE001 - CUDARuntimeError (no driver) and friends
        return 0, f"{type(e).__name__}: {e}"
    return n, "" if n else "the CUDA runtime reports 0 devices"


def cupy_module(device="cuda"):
    """CuPy, checked to be installed and to see the GPU ``device`` (a :class:`device`, or a
    name such as ``"cuda:1"``); the error says what is missing.

    Raises:
        DeviceError: CuPy is not installed, finds no GPU, or finds fewer than the index.
    """
    from filterbank.device import device as _device  # noqa: PLC0415

    dev = _device(device)
    name = str(dev)
    cupy = _import_cupy()
    if cupy is None:
        raise DeviceError(f"device {name!r} is not available: CuPy is not installed; "
                           f"{_INSTALL}, or use device 'cpu'")
    n, why = _gpu_count(cupy)
    if n == 0:
        raise DeviceError(f"device {name!r} is not available: CuPy is installed but finds no "
                           f"GPU ({why}); use device 'cpu'")
    if (dev.index or 0) >= n:
        raise DeviceError(f"device {name!r} is not available: CuPy sees {n} GPU(s) "
                           f"(cuda:0..cuda:{n - 1})")
    return cupy


def usable_device(device):
    """``device`` (a name or :class:`~filterbank.device`) as a :class:`~filterbank.device`,
    checked to be usable now: for a GPU, CuPy installed and seeing it (:func:`cupy_module`'s
    error otherwise). Callers check first, before any work."""
    from filterbank.device import device as _device  # noqa: PLC0415

    dev = _device(device)
    if dev.type == "cuda":
        cupy_module(dev)
    return dev


def cuda_available() -> bool:
    """Whether CuPy is installed and sees at least one GPU (never raises)."""
    return cuda_device_count() > 0


def cuda_device_count() -> int:
    """How many GPUs CuPy sees: 0 without CuPy or without a GPU (never raises)."""
    cupy = _import_cupy()
    return 0 if cupy is None else _gpu_count(cupy)[0]


# --------------------------------------------------------------------- device of arrays
def is_device_array(a) -> bool:
    """Whether ``a`` is a CuPy (GPU) array."""
    return type(a).__module__.startswith("cupy")


def device_of(a):
    """The :class:`~filterbank.device.device` that holds array ``a``: ``cpu`` for NumPy
    arrays (and anything not CuPy), ``cuda:N`` for a CuPy array on GPU N."""
    from filterbank.device import CPU, device  # noqa: PLC0415

    if not is_device_array(a):
        return CPU
    return device("cuda", int(a.device.id))


def _device_key(a):
    """``None`` for a host array, the GPU index for a CuPy array (cheap: no device object)."""
    if type(a) is np.ndarray or not type(a).__module__.startswith("cupy"):
        return None
    return int(a.device.id)


def _key_name(key) -> str:
    return "cpu" if key is None else f"cuda:{key}"


def check_same_device(name: str, *arrays) -> None:
    """Raise when ``arrays`` (None, Python scalars and NumPy scalars are ignored) live on
    more than one device: ``"add: expected all tensors on the same device, got cpu and
    cuda:0"``. Costs one type check per array when they are all NumPy arrays."""
    first = _UNSET = object()
    for a in arrays:
        if a is None or isinstance(a, bool | int | float | complex | np.generic):
            continue
        if type(a) is np.ndarray and first is _UNSET:
            first = None
            continue
        key = _device_key(a)
        if first is _UNSET:
            first = key
        elif key != first:
            raise DeviceError(f"{name}: expected all tensors on the same device, got "
                               f"{_key_name(first)} and {_key_name(key)}")


def to_numpy(a) -> np.ndarray:
    """``a`` as a NumPy array in host memory (a CuPy array is copied with ``.get()``)."""
    if is_device_array(a):
        out = a.get()
        return out.copy() if out.base is not None else out
    return np.asarray(a)


def to_device(a, device):
    """Array ``a`` on ``device`` (a :class:`~filterbank.device.device` or its name): ``a``
    itself when it is there already, else a copy (NumPy <-> CuPy, or GPU i -> GPU j).

    Raises:
        DeviceError: ``device`` is a GPU and CuPy or that GPU is missing
            (see :func:`cupy_module`).
    """
    from filterbank.device import device as _device  # noqa: PLC0415

    dev = _device(device)
    key = _device_key(a)
    if dev.type == "cpu":
        return a if key is None else to_numpy(a)
    index = dev.index or 0
    if key == index:
        return a
    cupy = cupy_module(dev)
    with cupy.cuda.Device(index):
        out = cupy.asarray(a) if key is None else cupy.array(a, copy=True)
    # a fresh array, never a view of the source (the autograd's "views share a version
    # counter" test compares memory, which cannot mix host and device arrays)
    return out.copy() if out.base is not None else out
