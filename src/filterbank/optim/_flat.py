"""One flat buffer per parameter group: the parameters' arrays become views into it, so an
optimizer step is a few vectorised calls over the whole group instead of a dozen per tensor.

``FlatGroup`` owns the buffer (``flat``), the gradient buffer the step gathers into (``grad``)
and the group's state as flat arrays (``state``: ``{"exp_avg": flat array, "step": 3}``); the
per-parameter state dicts the optimizer shows (and saves in PyTorch's layout) hold views of
those flat arrays, so the per-tensor path and ``state_dict()`` see the same numbers.

Each parameter's view is made through a ``memoryview`` of its slot (NumPy), so the view's root
array is the parameter's own slot, not the whole buffer: the in-place version check of
``backward`` (tensor.py ``_check_versions``) compares against that root, and an update of one
parameter must not look like a write to every array saved from the others.

Nothing here is trusted across steps: ``matches`` checks that every parameter's ``data`` is
still its view (``p.data = new_array``, ``Module.to`` and ``load_state_dict`` with assignment
replace it: the new values are copied into the slot and the view put back, or the layout is
rebuilt when the shape, dtype or device changed), and ``attached`` that the per-parameter
state dicts still hold the views (``load_state_dict`` and a per-tensor step replace them:
the state is then gathered again).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from filterbank.backend import get_array_module


def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, np.generic)


#: values per chunk of an update (float32: 1 MiB, about one core's L2 cache)
CHUNK = 1 << 18


def _chunks(offsets: list[int], size: int) -> list[tuple[int, int, list]]:
    """Split ``[0, offsets[-1])`` into chunks of ``size`` values (the last one shorter),
    each with its pieces ``(parameter index, start, stop)`` in that parameter's raveled
    coordinates."""
    total = offsets[-1]
    out = []
    i = 0
    for a in range(0, max(total, 1), size):
        b = min(a + size, total)
        pieces = []
        while i < len(offsets) - 1 and offsets[i + 1] <= a:
            i += 1
        j = i
        while j < len(offsets) - 1 and offsets[j] < b:
            lo, hi = max(a, offsets[j]), min(b, offsets[j + 1])
            if hi > lo:
                pieces.append((j, lo - offsets[j], hi - offsets[j]))
            j += 1
        out.append((a, b, pieces))
    return out


def _move(p, view) -> None:
    """Make ``view`` (holding ``p``'s values) ``p``'s array. The version counter is bumped
    and pointed at the old array first: a graph that saved the old array was recorded before
    this step, so its backward must raise as if the array had been updated in place (as it
    would have been without the flat buffer, and in PyTorch)."""
    p._mark_modified()
    p.data = view


class FlatGroup:
    """The flat layout of one parameter group (all parameters: one dtype, one device)."""

    __slots__ = ("params", "shapes", "offsets", "flat", "grad", "views", "state", "state_views",
                 "xp", "moved", "chunks")

    def __init__(self, params: list):
        self.params = list(params)
        first = params[0].data
        self.xp = xp = get_array_module(first)
        self.shapes = [p.data.shape for p in params]
        sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        self.flat = xp.empty(self.offsets[-1], dtype=first.dtype)
        for p, a, b in zip(params, self.offsets, self.offsets[1:]):
            self.flat[a:b] = p.data.reshape(-1)
        self.views = self._views(self.flat)
        for p, v in zip(params, self.views):
            _move(p, v)
        self.moved = set(range(len(params)))
        self.grad = xp.zeros_like(self.flat)
        self.chunks = _chunks(self.offsets, CHUNK)
        self.state: dict[str, Any] = {}
        self.state_views: dict[str, tuple] = {}  # key -> (flat array, its per-param views)

    @staticmethod
    def supports(params: list) -> bool:
        """One dtype and one array module (NumPy or CuPy) for every parameter."""
        first = params[0].data
        xp = get_array_module(first)
        return all(p.data.dtype == first.dtype and get_array_module(p.data) is xp
                   for p in params)

    def _views(self, flat) -> list:
        if self.xp is np:  # a root per parameter: see the module docstring
            mv = memoryview(flat)
            return [np.frombuffer(mv[a:b], dtype=flat.dtype).reshape(s)
                    for a, b, s in zip(self.offsets, self.offsets[1:], self.shapes)]
        return [flat[a:b].reshape(s)
                for a, b, s in zip(self.offsets, self.offsets[1:], self.shapes)]

    def same_params(self, params: list) -> bool:
        return len(params) == len(self.params) and all(
            p is q for p, q in zip(params, self.params))

    def matches(self) -> bool:
        """Put back every view whose parameter's array was replaced by one of the same shape,
        dtype and device (copying the new values in); False if the layout must be rebuilt.

        The step then marks the view modified (not the new array, which keeps its values):
        a graph that saved the view before ``p.data`` was replaced would otherwise read the
        new values silently."""
        for p, v in zip(self.params, self.views):
            d = p.data
            if d is v:
                continue
            if d.shape != v.shape or d.dtype != v.dtype or get_array_module(d) is not self.xp:
                return False
            v[...] = d
            p.data = v
        return True

    def update(self, update, group: dict[str, Any]) -> None:
        """Run ``update(p, g, state, group)`` over the whole buffer, one chunk at a time.

        Chunks of about ``CHUNK`` values keep the update's temporaries in cache (one pass
        over a 44 MB buffer per NumPy call is slower than a dozen calls per tensor). A chunk
        inside one parameter reads that parameter's gradient directly; a chunk of several
        small parameters gathers theirs into ``grad`` first (one call). State arrays are
        handed to each chunk as views; arrays an update creates (its first step) or
        replaces are put together afterwards."""
        flat, state, params = self.flat, self.state, self.params
        if len(self.chunks) == 1:
            g = self.grad
            self.xp.concatenate([p.grad.data.reshape(-1) for p in params], out=g)
            update(flat, g, state, group)
            return
        parts = []
        for a, b, pieces in self.chunks:
            if len(pieces) == 1:
                i, pa, pb = pieces[0]
                g = params[i].grad.data.reshape(-1)[pa:pb]
            else:
                g = self.grad[a:b]
                self.xp.concatenate([params[i].grad.data.reshape(-1)[pa:pb]
                                     for i, pa, pb in pieces], out=g)
            cs = {k: (v[a:b] if _is_array(v) else v) for k, v in state.items()}
            given = {k: v for k, v in cs.items() if _is_array(v)}
            update(flat[a:b], g, cs, group)
            parts.append((cs, given))
        last = parts[-1][0]
        for k, v in last.items():
            if not _is_array(v):
                state[k] = v  # the step count: the same in every chunk
            elif any(cs[k] is not given.get(k) for cs, given in parts):  # made or replaced
                state[k] = self.xp.concatenate([cs[k] for cs, _ in parts])

    def mark_modified(self) -> None:
        """Bump the version counters after a step (the parameters moved into a new buffer
        were bumped when they moved, pointing at their old array)."""
        moved = self.moved
        for i, p in enumerate(self.params):
            if i not in moved:
                p._mark_modified()
        self.moved = ()

    # ------------------------------------------------------------------------- state
    @staticmethod
    def compatible(params: list, states: list) -> bool:
        """Whether the per-parameter states can share one flat state: none yet, or the same
        keys everywhere, equal scalars (step counts) and arrays of their parameter's shape."""
        if all(not s for s in states):
            return True
        keys = set(states[0])
        if any(set(s) != keys for s in states):
            return False
        for k in keys:
            vals = [s[k] for s in states]
            if all(_is_array(v) for v in vals):
                if any(tuple(v.shape) != p.shape for v, p in zip(vals, params)):
                    return False
            elif any(_is_array(v) for v in vals) or any(v != vals[0] for v in vals):
                return False
        return True

    def attached(self, states: list) -> bool:
        """Whether the per-parameter state dicts are exactly the flat state's views."""
        flat_state = self.state
        for i, s in enumerate(states):
            if s is None or len(s) != len(flat_state):
                return False
            for k, v in flat_state.items():
                if k not in s:
                    return False
                if k in self.state_views:
                    if s[k] is not self.state_views[k][1][i]:
                        return False
                elif s[k] != v:
                    return False
        return True

    def attach(self, states: list) -> bool:
        """Rebuild the flat state from per-parameter states (after load_state_dict or a
        per-tensor step). False when they cannot share one flat state (different keys, or
        different step counts); the caller then steps per tensor."""
        self.state, self.state_views = {}, {}
        if not self.compatible(self.params, states):
            return False
        new = {}
        for k in (states[0] if states else ()):
            vals = [s[k] for s in states]
            if _is_array(vals[0]):
                arr = self.xp.empty_like(self.flat)
                self.xp.concatenate([self.xp.asarray(v).reshape(-1) for v in vals], out=arr,
                                    casting="same_kind")
                new[k] = arr
            else:
                new[k] = vals[0]
        self.state = new
        self.publish(states)
        return True

    def publish(self, states: list) -> None:
        """Write the flat state into the per-parameter dicts: views of the flat arrays (made
        again only when an array was replaced), the scalars (``step``) as they are."""
        for k, v in self.state.items():
            if _is_array(v):
                made = self.state_views.get(k)
                if made is None or made[0] is not v:
                    made = self.state_views[k] = (v, self._views(v))
                for s, view in zip(states, made[1]):
                    s[k] = view
            else:
                for s in states:
                    s[k] = v
        for k in [k for k in self.state_views if k not in self.state]:
            del self.state_views[k]
