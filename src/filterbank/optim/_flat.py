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
                 "xp", "moved")

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

    def gather_grads(self):
        """Copy the gradients into ``grad`` (one call) and return it."""
        self.xp.concatenate([p.grad.data.reshape(-1) for p in self.params], out=self.grad)
        return self.grad

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
