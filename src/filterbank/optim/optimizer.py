"""``Optimizer``: parameter groups, per-parameter state, ``step``, and a portable state_dict.

Parameters are updated in place on their arrays (``p.data``), in the parameter's dtype: every
hyperparameter is read as a Python float, which NumPy treats as "weak", so a float32 model
stays float32 (a NumPy float64 scalar would silently promote the update).

State dict layout (the same as PyTorch's, with NumPy arrays and JSON-able scalars, so a
checkpoint can put the arrays in a safetensors file and the rest in JSON)::

    {
      "state": {                                  # only parameters that have state yet
        0: {"step": 3, "exp_avg": ndarray, ...},   # key: the parameter's index, counted
        ...                                        # over the groups in order
      },
      "param_groups": [
        {"lr": 0.01, "betas": (0.9, 0.999), ..., "params": [0, 1, 2]},
        ...
      ],
    }

``state_dict()`` returns host (NumPy) copies of the arrays, wherever the parameters live.
``load_state_dict`` copies each array onto its parameter's device, accepts the parameter
indices as ints or strings (JSON object keys are strings) and lists where tuples were saved.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from filterbank.autograd.grad_mode import enable_grad
from filterbank.backend import device_of, is_device_array, to_device, to_numpy
from filterbank.optim._flat import FlatGroup
from filterbank.tensor import Tensor


class Optimizer:
    """Base class of the optimizers.

    Args:
        params: an iterable of parameters (Tensors), or of dicts, each with ``"params"`` and
            options that override ``defaults`` for that group, e.g.
            ``[{"params": backbone.parameters(), "lr": 1e-4}, {"params": head.parameters()}]``.
        defaults: the default value of every option.

    A subclass implements ``_update(p, g, state, group)`` (one parameter's array, its
    gradient's array, its state dict, its group) and may override ``_validate(group)``.
    Parameters whose ``grad`` is None are skipped.

    Flat buffers (``flat = True``, the default): on its first step, each parameter group's
    arrays are moved into one flat buffer and every ``p.data`` becomes a view of it; a step
    then gathers the gradients into one flat array and runs ``_update`` once over the whole
    group (the same arithmetic, elementwise, so the same numbers), instead of once per
    tensor. The per-parameter state (``optimizer.state[p]``, ``state_dict()``) holds views of
    the group's flat state, in PyTorch's layout. A group steps per tensor when a parameter
    has no gradient, its dtypes or devices differ, or its parameters' states differ (e.g.
    step counts after some steps without a gradient). Replacing ``p.data`` (``Module.to``,
    assignment) is safe: the new values are copied into the buffer and the view put back (or
    the buffer rebuilt for a new shape, dtype or device). Set ``optimizer.flat = False`` to
    step per tensor and leave ``p.data`` alone.
    """

    #: step each parameter group over one flat buffer (see the class docstring)
    flat: bool = True

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self._flat_groups: dict[int, FlatGroup] = {}  # group index -> its flat layout
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{self._name}: params must be an iterable of Tensors or of dicts, got a single "
                f"Tensor of shape {params.shape} (wrap it in a list)"
            )
        if isinstance(params, set):
            raise TypeError(f"{self._name}: parameters must be in an ordered collection (a "
                            f"list), not a set: the order fixes the state_dict indices")
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"

    # ---------------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (missing ones take the defaults),
        e.g. to unfreeze layers while fine-tuning."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: a parameter group must be a dict, got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}: a parameter group needs a 'params' entry, got "
                             f"keys {sorted(param_group)}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, set):
            raise TypeError(f"{self._name}: parameters must be in an ordered collection (a "
                            f"list), not a set: the order fixes the state_dict indices")
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: can only optimize Tensors, got "
                                f"{type(p).__name__}")
            if p.dtype.kind != "f":
                raise TypeError(f"{self._name}: can only optimize floating-point tensors, got "
                                f"dtype {p.dtype} (shape {p.shape})")
            if not p.is_leaf:
                raise ValueError(f"{self._name}: can't optimize a non-leaf tensor (shape "
                                 f"{p.shape}); optimize the leaf it was computed from")
        ids = [id(p) for p in group["params"]]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self._name}: a parameter group contains the same parameter "
                             f"twice")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken.intersection(ids):
            raise ValueError(f"{self._name}: some parameters appear in more than one "
                             f"parameter group")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group: dict[str, Any]) -> None:
        """Raise ValueError on an invalid option in ``group`` (subclasses)."""

    def _check(self, ok: bool, what: str, value) -> None:
        if not ok:
            raise ValueError(f"{self._name}: invalid {what} {value}")

    def _nonneg(self, group: dict[str, Any], *keys: str) -> None:
        for key in keys:
            value = group[key]
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise TypeError(f"{self._name}: {key} must be a real number, got "
                                f"{type(value).__name__}")
            self._check(value >= 0, key, value)

    # ---------------------------------------------------------------------- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: drop them (``None``, the default) or fill them with 0."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient, in place.

        Args:
            closure: optional function that re-evaluates the model and returns the loss
                (called with gradients enabled before the update); its result is returned.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:  # checked before anything changes
            for p in group["params"]:
                g = p.grad
                if g is not None and g.data.shape != p.data.shape:
                    self._bad_grad(p)
        for i, group in enumerate(self.param_groups):
            if self.flat and self._step_flat(i, group):
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                self._update(p.data, p.grad.data, self.state.setdefault(p, {}), group)
                p._mark_modified()  # graphs that saved the old value now raise at backward
        return loss

    def _step_flat(self, i: int, group: dict[str, Any]) -> bool:
        """Update the whole group with one ``_update`` over its flat buffer; False (nothing
        done) when the per-tensor path must run: a parameter without a gradient, mixed
        dtypes or devices, or per-parameter states that differ (step counts, keys)."""
        params = group["params"]
        for p in params:
            if p.grad is None:
                return False
        states = [self.state.setdefault(p, {}) for p in params]
        fg = self._flat_groups.get(i)
        if fg is None or not fg.same_params(params) or not fg.matches():
            # checked before anything moves, so that a group that cannot step flat is left
            # exactly as it was
            if not FlatGroup.supports(params) or not FlatGroup.compatible(params, states):
                return False
            fg = self._flat_groups[i] = FlatGroup(params)
        if not fg.attached(states) and not fg.attach(states):
            return False
        fg.update(self._update, group)
        fg.publish(states)
        fg.mark_modified()  # graphs that saved the old values now raise at backward
        return True

    def _bad_grad(self, p: Tensor) -> None:
        raise ValueError(f"{self._name}.step: a parameter of shape {tuple(p.data.shape)} has "
                         f"a gradient of shape {tuple(p.grad.data.shape)} (the same shape "
                         f"expected)")

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -------------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state and options; see the module docstring for the layout."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for p, s in self.state.items():
            if id(p) in index:
                state[index[id(p)]] = {k: _host_copy(v) for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and state saved by :meth:`state_dict` (of an optimizer built over
        parameters of the same shapes, in the same order). Arrays are copied and cast to
        each parameter's dtype; everything is checked before anything changes."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{self._name}.load_state_dict: the state has "
                             f"{len(saved_groups)} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        by_index: dict[int, Tensor] = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{self._name}.load_state_dict: group {i} has "
                                 f"{len(saved['params'])} parameters in the state, "
                                 f"{len(group['params'])} in this optimizer")
            by_index.update(zip((int(k) for k in saved["params"]), group["params"]))
        state: dict[Tensor, dict[str, Any]] = {}
        for key, s in state_dict["state"].items():
            if int(key) not in by_index:
                raise ValueError(f"{self._name}.load_state_dict: state for parameter index "
                                 f"{key}, which no group lists")
            p = by_index[int(key)]
            state[p] = {name: self._restore(name, value, p) for name, value in s.items()}
        self.state = state
        groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            new = {k: (tuple(v) if isinstance(v, list) and isinstance(self.defaults.get(k),
                                                                        tuple) else v)
                   for k, v in saved.items() if k != "params"}
            new["params"] = group["params"]
            groups.append(new)
        self.param_groups = groups

    def _restore(self, name: str, value, p: Tensor):
        """One saved state value for parameter ``p``: arrays copied onto ``p``'s device (host
        state into a GPU optimizer and back), floating ones cast to ``p``'s dtype."""
        if isinstance(value, Tensor):
            value = value.data
        if name == "step":  # may come back from a checkpoint as a 0-d array
            return int(to_numpy(value))
        if isinstance(value, list) or is_device_array(value) or isinstance(value, np.ndarray):
            arr = value if hasattr(value, "shape") else np.asarray(value)
            if tuple(arr.shape) != p.shape:
                raise ValueError(f"{self._name}.load_state_dict: state {name!r} has shape "
                                 f"{tuple(arr.shape)}, its parameter has shape {p.shape}")
            out = to_device(arr, device_of(p.data))
            dtype = p.dtype if arr.dtype.kind == "f" else arr.dtype
            return out.astype(dtype, copy=out is arr)  # never the caller's array
        return value


def _host_copy(v):
    """A state value for ``state_dict``: arrays as fresh NumPy copies (device state comes to
    the host, as the module's state_dict does), scalars as they are."""
    if is_device_array(v):
        return to_numpy(v)
    if isinstance(v, np.ndarray):
        return np.array(v, copy=True)
    return v
