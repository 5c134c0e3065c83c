"""filterbank._allocator: the glibc malloc tuning is an explicit call, never an import side effect.

Each case runs in a fresh interpreter (the settings are process-wide and cannot be undone) and
looks at what malloc does, not only at the module's flag: glibc's ``mallinfo2().hblkhd`` counts
the bytes of blocks served by their own ``mmap``. With glibc's defaults a fresh 8 MiB array is
such a block; once tuned (mmap threshold 32 MiB) it comes from the heap instead.
"""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc"
    or not hasattr(ctypes.CDLL(None), "mallinfo2"),
    reason="the allocator settings are glibc's (mallinfo2 needs glibc >= 2.33)")

PROBE = """
import ctypes, sys
import numpy as np
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                "usmblks", "fsmblks", "uordblks", "fordblks",
                                                "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
import filterbank
from filterbank import _allocator
{call}
before = mallinfo2().hblkhd
a = np.ones(8 << 20, np.uint8)
print(_allocator.tuned, mallinfo2().hblkhd - before >= 8 << 20)
"""


def probe(call: str = "", **env) -> tuple[str, str]:
    """(flag, whether an 8 MiB array was mmapped) in a fresh interpreter."""
    environ = {k: v for k, v in os.environ.items() if k != "FILTERBANK_MALLOC_TUNING"}
    out = subprocess.run([sys.executable, "-c", PROBE.format(call=call)], capture_output=True,
                         text=True, env={**environ, **env}, check=True)
    return tuple(out.stdout.split())


@glibc
def test_import_does_not_tune():
    assert probe() == ("False", "True")


@glibc
def test_tune_keeps_big_arrays_in_the_heap():
    assert probe("print(_allocator.tune(), _allocator.tune())") == (
        "True", "True", "True", "False")


@glibc
@pytest.mark.parametrize("value", ["0", "off", " false "])
def test_env_opt_out(value):
    assert probe("print(_allocator.tune())", FILTERBANK_MALLOC_TUNING=value) == (
        "False", "False", "True")



def test_public_as_filterbank_tune_allocator():
    import filterbank as fb
    from filterbank import _allocator

    assert fb.tune_allocator is _allocator.tune
