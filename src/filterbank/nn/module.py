"""``Module`` and ``Parameter``: layers that own parameters, buffers and sub-modules.

Assigning a :class:`Parameter` or a :class:`Module` to an attribute registers it (PyTorch's
rule), so ``named_parameters()``, ``state_dict()`` and ``repr`` follow the attribute names and a
PyTorch state_dict maps one to one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from filterbank.autograd import grad_mode
from filterbank.device import device as _device_cls
from filterbank.device import parse_to_args
from filterbank.tensor import Tensor


class Parameter(Tensor):
    """A tensor that is a learnable parameter of a module (``requires_grad=True``)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        arr = data.data if isinstance(data, Tensor) else np.asarray(data)
        if arr.dtype.kind == "f" and not isinstance(data, Tensor | np.ndarray):
            arr = arr.astype(np.float32)
        super().__init__(arr, requires_grad=requires_grad, dtype=arr.dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class StateDictError(ValueError):
    """A state_dict does not fit the module (missing/unexpected keys or wrong shapes)."""


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model.

    Subclasses set parameters / sub-modules as attributes in ``__init__`` and implement
    ``forward``. Calling the module runs forward hooks around ``forward``.
    """

    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        params, modules = self._parameters, self._modules
        if isinstance(value, Parameter):
            self._buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            self._buffers.pop(name, None)
            params.pop(name, None)
            modules[name] = value
        elif name in params or name in modules:
            # replacing a registered parameter by a plain value would silently drop it from
            # parameters() and the state_dict (PyTorch raises here too)
            kind, want = (("parameter", "Parameter") if name in params
                          else ("child module", "Module"))
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} as {kind} "
                    f"{name!r} ({want} or None expected)"
                )
            (params if name in params else modules)[name] = None
        elif name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for reg in (self._parameters, self._buffers, self._modules):
            reg.pop(name, None)
        object.__delattr__(self, name)

    def _check_new_name(self, name: str, kind: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{type(self).__name__}: {kind} name must be a non-empty string "
                           f"without '.', got {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_new_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}: cannot register {type(param).__name__} as "
                            f"parameter {name!r} (Parameter or None expected)")
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """A non-learnable tensor saved in the state_dict (e.g. BatchNorm's running mean)."""
        self._check_new_name(name, "buffer")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists as a "
                           f"parameter or module; cannot register it as a buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(np.asarray(tensor), dtype=np.asarray(tensor).dtype)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)
        names = self.__dict__.setdefault("_buffer_names", set())
        names.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._check_new_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: cannot add {type(module).__name__} as "
                            f"child module {name!r} (Module or None expected)")
        if module is None:
            self._modules[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, module)

    register_module = add_module

    def register_forward_hook(self, hook):
        """``hook(module, inputs, output)`` runs after every forward; returns a handle."""
        key = object()
        self._forward_hooks[key] = hook

        class _Handle:
            def remove(_self):
                self._forward_hooks.pop(key, None)

        return _Handle()

    # ------------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                r = hook(self, args, out)
                if r is not None:
                    out = r
        return out

    # ---------------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "", memo: set | None = None
                      ) -> Iterator[tuple[str, Module]]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{name}" if mname else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True
                      ) -> Iterator[tuple[str, Tensor]]:
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{name}" if mname else name), b

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -------------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def apply(self, fn) -> Module:
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args, **kwargs) -> Module:
        """Move and/or cast in place, as ``torch.nn.Module.to``; returns ``self``.

        ``to(dtype)`` casts the floating parameters and buffers (and their gradients) to a
        floating ``dtype`` (e.g. float64 for gradient checks); ``to("cpu")``,
        ``to(fb.device("cpu"))``, ``to(device, dtype)``, ``to(tensor)`` and the keywords
        ``device=``/``dtype=`` are accepted too. The only device is the CPU: ``"cuda"`` raises
        ``ValueError`` (no GPU backend yet).

        Example:
            >>> import filterbank as fb
            >>> m = fb.nn.Linear(2, 3).to("cpu").to(fb.float64)
            >>> m.weight.dtype
            dtype('float64')
        """
        _device, dtype = parse_to_args(f"{type(self).__name__}.to", *args, **kwargs)
        if dtype is not None:
            if dtype.kind not in "fc":
                raise TypeError(f"{type(self).__name__}.to: only floating-point dtypes are "
                                f"accepted, got {dtype}")
            self._cast(dtype, floating_only=True)
        return self

    def _cast(self, dtype, floating_only: bool) -> None:
        for t in list(self.parameters()) + list(self.buffers()):
            if (t.data.dtype.kind == "f" or not floating_only) and t.data.dtype != dtype:
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad = Tensor._wrap(t.grad.data.astype(dtype))

    def cpu(self) -> Module:
        """The module itself: its arrays already live in CPU memory."""
        return self

    def cuda(self, device=None) -> Module:
        """Raises ``ValueError``: filterbank has no GPU backend yet."""
        _device_cls("cuda" if device is None else f"cuda:{device}")
        return self  # pragma: no cover - _device_cls raised

    def type(self, dst_type) -> Module:
        """Cast every parameter and buffer (integer ones too, as PyTorch) to ``dst_type``."""
        try:
            dtype = np.dtype(dst_type)
        except TypeError:
            raise TypeError(f"{type(self).__name__}.type: expected a dtype, got "
                            f"{dst_type!r}") from None
        self._cast(dtype, floating_only=False)
        return self

    def double(self) -> Module:
        """Floating parameters and buffers to float64."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Floating parameters and buffers to float32."""
        return self.to(np.float32)

    def half(self) -> Module:
        """Floating parameters and buffers to float16."""
        return self.to(np.float16)

    def get_submodule(self, target: str) -> Module:
        """The sub-module at the dotted path ``target`` (``""`` is the module itself), e.g.
        ``model.get_submodule("features.0")``.

        Raises:
            AttributeError: with PyTorch's message when a step of the path does not exist
                (``"Sequential has no attribute `5`"``) or is not a module
                (``"`weight` is not an nn.Module"``).

        Example:
            >>> import filterbank as fb
            >>> net = fb.nn.Sequential(fb.nn.Linear(2, 2), fb.nn.ReLU())
            >>> net.get_submodule("1")
            ReLU()
        """
        if not isinstance(target, str):
            raise TypeError(f"get_submodule: expected a dotted path string, got "
                            f"{type(target).__name__}")
        if target == "":
            return self
        mod: Module = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(f"{type(mod).__name__} has no attribute `{item}`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return mod

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.data.size for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    # -------------------------------------------------------------------- state dict
    def _state_items(self) -> Iterator[tuple[str, Tensor]]:
        for mname, m in self.named_modules():
            for name, p in m._parameters.items():
                if p is not None:
                    yield (f"{mname}.{name}" if mname else name), p
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    yield (f"{mname}.{name}" if mname else name), b

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and persistent buffers by dotted name, as copies of their arrays."""
        return OrderedDict((k, np.array(v.data, copy=True)) for k, v in self._state_items())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into the parameters and buffers. Everything is checked first: on any
        missing/unexpected key (with ``strict``) or shape mismatch, :class:`StateDictError`
        lists them all and the module is left unchanged."""
        own = OrderedDict(self._state_items())
        incoming = {k: (v.data if isinstance(v, Tensor) else np.asarray(v))
                    for k, v in state_dict.items()}
        missing = [k for k in own if k not in incoming]
        unexpected = [k for k in incoming if k not in own]
        mismatched = [f"{k}: expected {own[k].shape}, got {tuple(v.shape)}"
                      for k, v in incoming.items() if k in own and own[k].shape != v.shape]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatches: " + "; ".join(mismatched))
        if problems:
            raise StateDictError(
                f"load_state_dict({type(self).__name__}): " + " | ".join(problems)
            )
        with grad_mode.no_grad():
            for k, v in incoming.items():
                if k in own:
                    own[k].data[...] = v.astype(own[k].data.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------------- display
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    def summary(self, input_shape, **kwargs):
        """Print (and return) a Keras-style table of layers; see :func:`nn.summary.summary`."""
        from filterbank.nn.summary import summary

        return summary(self, input_shape, **kwargs)
