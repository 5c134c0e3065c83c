"""filterbank._workspace: large arrays are reused only once nothing else references them.

Reuse reads ``sys.getrefcount``; on an interpreter that counts differently (Python 3.14's
borrowed references, free-threaded builds) the import-time probe turns reuse off, so a live
array is never handed out twice. The tests simulate such an interpreter by patching
``sys.getrefcount`` and ``sys._is_gil_enabled``.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from filterbank import _workspace
from filterbank._workspace import Workspace


def test_reuses_only_free_arrays():
    ws = Workspace(min_bytes=0, reuse=True)
    a = ws.empty((4, 8), np.float32)
    view = a[1:]
    del a
    b = ws.empty((32,), np.float32)
    assert not np.shares_memory(view, b)  # a view keeps its base in use
    del view, b
    c = ws.empty((8, 4), np.float32)
    assert len(ws._arrays[(128, np.dtype(np.float32).str)]) == 2
    assert c.shape == (8, 4)


def test_a_freed_array_is_handed_out_again():
    ws = Workspace(min_bytes=0, reuse=True)
    a = ws.empty((16,), np.float32)
    address = a.__array_interface__["data"][0]
    del a
    assert ws.empty((4, 4), np.float32).__array_interface__["data"][0] == address


def test_drops_idle_arrays_beyond_its_limit():
    ws = Workspace(min_bytes=0, max_idle_bytes=1000, reuse=True)
    held = [ws.empty((100,), np.float32) for _ in range(3)]  # 3 x 400 bytes, all in use
    assert sum(len(p) for p in ws._arrays.values()) == 3
    del held
    ws.empty((10,), np.float32)  # a new size triggers the trim: 1200 idle bytes > 1000
    assert len(ws._arrays[(400, np.dtype(np.float32).str)]) == 2


def test_the_probe_holds_on_this_interpreter():
    assert _workspace._refcounts_as_assumed() is _workspace.REUSE
    assert _workspace.workspace.reuse is _workspace.REUSE
    if sys.implementation.name == "cpython" and sys.version_info < (3, 14) and not (
            hasattr(sys, "_is_gil_enabled") and not sys._is_gil_enabled()):
        assert _workspace.REUSE  # reuse (and its speed) is on where the counts are known


def _shift_refcounts(monkeypatch, by: int) -> None:
    """Make ``sys.getrefcount`` report ``by`` references more (or fewer) than CPython here
    (the wrapper's own reference to its argument is taken off)."""
    real = sys.getrefcount

    def wrapped(obj):
        return real(obj)

    probe = object()
    extra = wrapped(probe) - real(probe)
    monkeypatch.setattr(sys, "getrefcount", lambda obj: real(obj) - extra + by)


def _fewer_refs(monkeypatch):
    """An interpreter whose getrefcount reports one reference fewer (borrowed references):
    a live array held by one caller would look idle to the pool."""
    _shift_refcounts(monkeypatch, -1)


def _more_refs(monkeypatch):
    _shift_refcounts(monkeypatch, 1)


@pytest.mark.parametrize("patch", [_fewer_refs, _more_refs], ids=["fewer", "more"])
def test_other_reference_counts_turn_reuse_off(monkeypatch, patch):
    patch(monkeypatch)
    assert _workspace._refcounts_as_assumed() is False


def test_a_free_threaded_build_turns_reuse_off(monkeypatch):
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    assert _workspace._refcounts_as_assumed() is False


def test_with_reuse_off_a_live_array_is_never_handed_out_again(monkeypatch):
    _fewer_refs(monkeypatch)
    monkeypatch.setattr(_workspace, "REUSE", _workspace._refcounts_as_assumed())
    ws = Workspace(min_bytes=0)  # as the module-level workspace would be built there
    assert ws.reuse is False
    live = ws.empty((64,), np.float32)
    live[:] = 1
    others = [ws.empty((64,), np.float32) for _ in range(3)]
    for other in others:
        other[:] = 2
        assert not np.shares_memory(live, other)
    np.testing.assert_array_equal(live, 1)
    assert ws._arrays == {}  # nothing pooled: freed arrays go back to the allocator


def test_without_the_probe_the_simulated_interpreter_would_clobber_a_live_array(monkeypatch):
    """What the probe prevents: reuse forced on under the fewer-references interpreter hands
    out an array its caller still holds."""
    _fewer_refs(monkeypatch)
    ws = Workspace(min_bytes=0, reuse=True)
    live = ws.empty((64,), np.float32)
    assert np.shares_memory(live, ws.empty((64,), np.float32))
