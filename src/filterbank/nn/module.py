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

from filterbank import backend as _backend
from filterbank.autograd import grad_mode
from filterbank.device import parse_to_args
from filterbank.nn.hooks import BackwardHook, RemovableHandle
from filterbank.tensor import Tensor, _cuda_device


class Parameter(Tensor):
    """A tensor that is a learnable parameter of a module (``requires_grad=True``)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        arr = data.data if isinstance(data, Tensor) else \
            _backend.get_array_module(data).asarray(data)
        if arr.dtype.kind == "f" and not isinstance(data, Tensor) and arr is not data:
            arr = arr.astype(np.float32)
        super().__init__(arr, requires_grad=requires_grad, dtype=arr.dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _host_copy(a) -> np.ndarray:
    out = _backend.to_numpy(a)
    return np.array(out, copy=True) if out is a else out


class StateDictError(ValueError):
    """A state_dict does not fit the module (missing/unexpected keys or wrong shapes)."""


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model.

    Subclasses set parameters / sub-modules as attributes in ``__init__`` and implement
    ``forward``. Calling the module runs the forward pre-hooks, ``forward``, the forward
    hooks, and sets up the full backward hooks (see ``register_*_hook``).
    """

    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks_with_kwargs", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks_with_kwargs", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())
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
            arr = _backend.get_array_module(tensor).asarray(tensor)
            tensor = Tensor(arr, dtype=arr.dtype)
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

    # -------------------------------------------------------------------------- hooks
    def _add_hook(self, hooks: OrderedDict, hook, what: str, prepend: bool = False,
                  kwargs_dict: OrderedDict | None = None, with_kwargs: bool = False
                  ) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.{what}: expected a callable hook, got "
                            f"{type(hook).__name__}")
        handle = RemovableHandle(hooks, extra_dict=kwargs_dict)
        hooks[handle.id] = hook
        if with_kwargs:
            kwargs_dict[handle.id] = True
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before every ``forward``.

        A non-None return replaces the positional arguments (a non-tuple is wrapped into a
        1-tuple). With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs)`` and
        returns None or a new ``(args, kwargs)`` pair.

        Args:
            hook: the callable.
            prepend: run it before the hooks already registered (default: after them).
            with_kwargs: pass (and let the hook replace) the keyword arguments too.

        Returns:
            A :class:`~filterbank.nn.hooks.RemovableHandle`; ``handle.remove()`` (or leaving
            a ``with handle:`` block) unregisters the hook.

        Example:
            >>> import filterbank as fb
            >>> relu = fb.nn.ReLU()
            >>> with relu.register_forward_pre_hook(lambda m, args: -args[0]):
            ...     relu(fb.tensor([1.0, -2.0])).tolist()
            [0.0, 2.0]
        """
        return self._add_hook(self._forward_pre_hooks, hook, "register_forward_pre_hook",
                              prepend, self._forward_pre_hooks_with_kwargs, with_kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every ``forward``.

        A non-None return replaces the output (for the later hooks and the caller). With
        ``with_kwargs=True`` the hook is ``hook(module, args, kwargs, output)``.

        Args:
            hook: the callable.
            prepend: run it before the hooks already registered (default: after them).
            with_kwargs: pass the keyword arguments too.

        Returns:
            A :class:`~filterbank.nn.hooks.RemovableHandle` (also a context manager).

        Example:
            >>> import filterbank as fb
            >>> fc, seen = fb.nn.Linear(3, 2), []
            >>> h = fc.register_forward_hook(lambda m, args, out: seen.append(out.shape))
            >>> _ = fc(fb.zeros(4, 3)); h.remove(); _ = fc(fb.zeros(1, 3))
            >>> seen
            [(4, 2)]
        """
        return self._add_hook(self._forward_hooks, hook, "register_forward_hook", prepend,
                              self._forward_hooks_with_kwargs, with_kwargs)

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to
        the module's inputs have been computed.

        ``grad_input[i] = dL/d args[i]`` for every positional argument (None where it is not
        a Tensor that requires grad); ``grad_output[j] = dL/d out[j]`` for the output (a
        1-tuple) or each element of a tuple output. A non-None return (a sequence as long as
        ``grad_input``) replaces ``grad_input``: it is what flows on to the layers below. If
        no input requires grad (the first layer), the hook fires when the output gradients
        are known, with ``grad_input`` all None, and must return None.

        The inputs and outputs are routed through identity nodes of the graph (PyTorch's
        ``BackwardHookFunction``), so they are views: modifying them in place while
        gradients are recorded raises, as in PyTorch.

        Args:
            hook: the callable.
            prepend: run it before the hooks already registered.

        Returns:
            A :class:`~filterbank.nn.hooks.RemovableHandle` (also a context manager).

        Example:
            >>> import filterbank as fb
            >>> fc = fb.nn.Linear(3, 2)
            >>> h = fc.register_full_backward_hook(lambda m, gi, go: (fb.zeros_like(gi[0]),))
            >>> x = fb.ones(1, 3, requires_grad=True)
            >>> fc(x).sum().backward()
            >>> x.grad.tolist()
            [[0.0, 0.0, 0.0]]
        """
        return self._add_hook(self._backward_hooks, hook, "register_full_backward_hook",
                              prepend)

    # ------------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        if not (self._forward_hooks or self._forward_pre_hooks or self._backward_hooks):
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        """PyTorch's order: pre-hooks, inputs wrapped for the backward hooks, forward,
        forward hooks, outputs wrapped (so ``grad_output`` is that of the final output)."""
        for hid, hook in list(self._forward_pre_hooks.items()):
            if hid in self._forward_pre_hooks_with_kwargs:
                r = hook(self, args, kwargs)
                if r is not None:
                    if not (isinstance(r, tuple) and len(r) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {r!r}")
                    args, kwargs = r
                    args = args if isinstance(args, tuple) else (args,)
            else:
                r = hook(self, args)
                if r is not None:
                    args = r if isinstance(r, tuple) else (r,)
        bw = None
        if self._backward_hooks:
            bw = BackwardHook(self, list(self._backward_hooks.values()))
            args = bw.setup_input_hook(args)
        out = self.forward(*args, **kwargs)
        for hid, hook in list(self._forward_hooks.items()):
            if hid in self._forward_hooks_with_kwargs:
                r = hook(self, args, kwargs, out)
            else:
                r = hook(self, args, out)
            if r is not None:
                out = r
        if bw is not None:
            out = bw.setup_output_hook(out)
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

        ``to(device)`` moves every parameter and buffer (and their gradients) to ``device``
        (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a :class:`~filterbank.device`); the Parameter
        objects stay the same, only their arrays move, so an optimizer made before the move
        keeps updating them. ``to(dtype)`` casts the floating parameters and buffers (and
        their gradients) to a floating ``dtype`` (e.g. float64 for gradient checks);
        ``to(device, dtype)``, ``to(tensor)`` and the keywords ``device=``/``dtype=`` are
        accepted too. ``"cuda"`` without CuPy or a GPU raises
        :class:`~filterbank.backend.DeviceError` (a ``ValueError`` and a ``RuntimeError``)
        naming what is missing, before anything moves.

        Example:
            >>> import filterbank as fb
            >>> m = fb.nn.Linear(2, 3).to("cpu").to(fb.float64)
            >>> m.weight.dtype
            dtype('float64')
        """
        device, dtype = parse_to_args(f"{type(self).__name__}.to", *args, **kwargs)
        if dtype is not None and dtype.kind not in "fc":
            raise TypeError(f"{type(self).__name__}.to: only floating-point dtypes are "
                            f"accepted, got {dtype}")
        if device is not None:
            self._move(device)
        if dtype is not None:
            self._cast(dtype, floating_only=True)
        return self

    def _move(self, device) -> None:
        """Every parameter's and buffer's array (and gradient) to ``device``, in place."""
        _backend.usable_device(device)  # the clear error before anything moves
        for t in list(self.parameters()) + list(self.buffers()):
            t.data = _backend.to_device(t.data, device)
            if t.grad is not None:
                t.grad = Tensor._wrap(_backend.to_device(t.grad.data, device))

    def _cast(self, dtype, floating_only: bool) -> None:
        for t in list(self.parameters()) + list(self.buffers()):
            if (t.data.dtype.kind == "f" or not floating_only) and t.data.dtype != dtype:
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad = Tensor._wrap(t.grad.data.astype(dtype))

    def cpu(self) -> Module:
        """Move every parameter and buffer to host memory, in place; returns ``self``."""
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        """Move every parameter and buffer to a GPU (an index, ``"cuda:N"`` or a device;
        default GPU 0), in place; returns ``self``. Needs CuPy (``filterbank[cuda12]`` or
        ``filterbank[cuda13]``) and a GPU."""
        return self.to(_cuda_device(device))

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
        """Parameters and persistent buffers by dotted name, as NumPy copies of their arrays
        (copied to host memory from a module on a GPU, so it saves and loads anywhere)."""
        return OrderedDict((k, _host_copy(v.data)) for k, v in self._state_items())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into the parameters and buffers. Everything is checked first: on any
        missing/unexpected key (with ``strict``) or shape mismatch, :class:`StateDictError`
        lists them all and the module is left unchanged."""
        own = OrderedDict(self._state_items())
        incoming = {k: (v.data if isinstance(v, Tensor) else
                        _backend.get_array_module(v).asarray(v))
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
                    dst = own[k].data  # the values go to where the module is (any device)
                    dst[...] = _backend.to_device(v, own[k].device).astype(dst.dtype,
                                                                           copy=False)
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
