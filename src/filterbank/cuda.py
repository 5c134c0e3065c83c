"""``fb.cuda``: what tutorials ask before choosing a device.

``device = "cuda" if fb.cuda.is_available() else "cpu"`` runs as written: filterbank has no
GPU backend yet, so it picks the CPU. (The GPU backend will answer here.)
"""

from __future__ import annotations


def is_available() -> bool:
    """Whether a GPU backend can be used: False (there is none yet)."""
    return False


def device_count() -> int:
    """How many GPUs filterbank can use: 0."""
    return 0
