"""``fb.cuda``: what tutorials ask before choosing a device.

``device = "cuda" if fb.cuda.is_available() else "cpu"`` runs as written: the answers come from
CuPy (the optional extra ``filterbank[cuda12]`` / ``filterbank[cuda13]``), and are False / 0,
never an error, where CuPy or a GPU is missing.
"""

from __future__ import annotations

from filterbank import backend as _backend


def is_available() -> bool:
    """Whether CuPy is installed and sees at least one GPU."""
    return _backend.cuda_available()


def device_count() -> int:
    """How many GPUs CuPy sees (0 without CuPy or without a GPU)."""
    return _backend.cuda_device_count()


def synchronize(device=None) -> None:
    """Wait until the GPU has finished its queued work (for timing); nothing to do without
    a GPU."""
    if not _backend.cuda_available():
        return
    import cupy  # noqa: PLC0415

    from filterbank.device import device as _device  # noqa: PLC0415

    index = 0 if device is None else (_device(device).index or 0)
    cupy.cuda.Device(index).synchronize()
