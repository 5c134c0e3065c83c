"""A pool of large reusable arrays (convolution columns, tiles, outputs and gradients).

Big arrays come from a small workspace that reuses an array only once nothing else references
it (NumPy views keep their base alive), so buffers a graph saved for backward, or outputs a
caller still holds, are never overwritten; reuse avoids the page faults a fresh allocation of
tens of MiB costs.

"Nothing else references it" is read from ``sys.getrefcount``: an idle array is held by the
pool's list slot alone. That count is an implementation detail of CPython; an interpreter
that counts differently (borrowed references on the stack, deferred or biased counts in
free-threaded builds) could make a live array look idle and hand it out twice. So at import
:func:`_refcounts_as_assumed` checks that an array held by a list slot alone, and then by one
more reference, gives exactly the counts the pool relies on; on a free-threaded build
(``sys._is_gil_enabled()`` false; other threads could take a reference between the check and
the reuse) or when the check fails, reuse is off and every ``empty`` allocates.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from filterbank.backend import xp

#: ``sys.getrefcount(pool[i])`` of an idle array: the list slot and getrefcount's argument.
_IDLE_REFS = 2


def _refs(pool: list, i: int) -> int:
    return sys.getrefcount(pool[i])


def _refcounts_as_assumed() -> bool:
    """Whether reference counts tell an idle pooled array from a live one here."""
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_gil_enabled is not None and not is_gil_enabled():
        return False
    pool = [np.empty(1)]
    idle = _refs(pool, 0)
    held = pool[0]
    live = _refs(pool, 0)
    del held
    return idle == _IDLE_REFS and live == _IDLE_REFS + 1 and _refs(pool, 0) == _IDLE_REFS


#: Whether workspaces reuse arrays (decided once, at import).
REUSE = _refcounts_as_assumed()


class Workspace:
    """Reusable large arrays, keyed by byte size and dtype.

    ``empty(shape, dtype)`` hands out an array that no one else references (checked with the
    reference count of its owning base array: every NumPy view holds a reference to it), so
    reuse can never clobber data that a graph or a caller still holds. Arrays smaller than
    ``min_bytes`` are left to the allocator; idle arrays beyond ``max_idle_bytes`` are dropped,
    oldest first. ``reuse=False`` (default: :data:`REUSE`) makes every call allocate.
    """

    def __init__(self, min_bytes: int = 1 << 20, max_idle_bytes: int = 1 << 30,
                 reuse: bool | None = None):
        self.min_bytes = min_bytes
        self.max_idle_bytes = max_idle_bytes
        self.reuse = REUSE if reuse is None else bool(reuse)
        self._arrays: dict[tuple[int, str], list[np.ndarray]] = {}

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes < self.min_bytes or not self.reuse:
            return xp.empty(shape, dtype)
        key = (nbytes, dtype.str)
        pool = self._arrays.setdefault(key, [])
        for i in range(len(pool)):  # (enumerate's cached tuple would hold a reference)
            if _refs(pool, i) == _IDLE_REFS:
                base = pool.pop(i)
                pool.append(base)  # most recently used last
                return base.reshape(shape)
        base = xp.empty(count, dtype)
        pool.append(base)
        self._trim()
        return base.reshape(shape)

    def _trim(self) -> None:
        idle = [(key, id(pool[i]), pool[i].nbytes) for key, pool in self._arrays.items()
                for i in range(len(pool)) if _refs(pool, i) == _IDLE_REFS]
        total = sum(n for _, _, n in idle)
        for key, ident, n in idle:  # least recently used first within each size
            if total <= self.max_idle_bytes:
                break
            pool = self._arrays[key]
            pool[:] = [a for a in pool if id(a) != ident]
            total -= n

    def clear(self) -> None:
        """Forget every array (those still in use stay alive with their users)."""
        self._arrays.clear()


#: The process-wide workspace the convolutions draw from.
workspace = Workspace()
