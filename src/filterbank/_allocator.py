"""Keep freed array memory in the C heap between training steps (Linux / glibc only).

A training step allocates and frees the same large arrays (activations, gradients, im2col
buffers) on every iteration. With glibc's defaults, blocks above a dynamic threshold come from
fresh ``mmap`` calls and the top of the heap is handed back to the kernel after large frees, so
every step touches newly mapped pages again: on LeNet-5 at batch 64 about 1,500 page faults per
step, 15-20 % of the step spent in the kernel zeroing pages. PyTorch avoids this with its own
allocator; NumPy has none, so we set two ``mallopt`` options instead:

* ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's maximum): smaller arrays come from the heap, where a
  freed block is reused by the next allocation of that size without new page faults;
* ``M_TRIM_THRESHOLD`` = 256 MiB: free memory at the top of the heap is returned to the kernel
  only beyond that amount.

Peak memory is unchanged (the arrays are all live at the peak of every step anyway); what
changes is that up to 256 MiB of freed memory stays with the process after the last step.

Importing filterbank changes nothing: the settings are process-wide, so they are applied by an
explicit call, :func:`tune` (public as ``filterbank.tune_allocator()``), which the
:class:`~filterbank.train.Trainer` makes when it is created (``Trainer(tune_allocator=False)``
skips it) and the command line's training commands make on start. A program with its own
training loop may call it once itself. Opt out everywhere with the environment variable
``FILTERBANK_MALLOC_TUNING=0``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20

#: Whether :func:`tune` changed the allocator settings (for tests and diagnostics).
tuned = False


def tune() -> bool:
    """Keep freed array memory in the heap between training steps (glibc ``mallopt``).

    Sets ``M_MMAP_THRESHOLD`` = 32 MiB and ``M_TRIM_THRESHOLD`` = 256 MiB for the whole
    process, once; later calls only report. Nothing happens (and False is returned) outside
    Linux/glibc or when the environment variable ``FILTERBANK_MALLOC_TUNING`` is ``0``,
    ``false``, ``no`` or ``off``.

    Returns:
        whether the settings are in effect.

    Example:
        >>> import filterbank as fb
        >>> fb.tune_allocator()  # doctest: +SKIP
        True
    """
    global tuned
    if tuned:
        return True
    if os.environ.get("FILTERBANK_MALLOC_TUNING", "1").strip() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - exotic builds
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return tuned
