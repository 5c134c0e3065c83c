"""Module hooks: ``RemovableHandle`` and the machinery behind full backward hooks.

A module backward hook needs the gradients with respect to *all* of a module's inputs at once,
and those with respect to all of its outputs. The autograd graph links single-output
Functions, so (like PyTorch's ``BackwardHookFunction``) the tensors are routed through
identity nodes whose backward sees every gradient together:

    x_1 .. x_n --Gather--> p --Scatter_i--> x_i'  (the module runs on x_1' .. x_n')

``Gather`` packs the tensors into one array and each ``Scatter_i`` views its part back, so the
gradients of all inputs meet in ``Gather.backward``. With one tensor both are a single view.
The same wrapping on the outputs captures ``grad_output``; the output side always runs first
in backward because the input side is upstream of everything the module computed.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from filterbank.autograd import grad_mode
from filterbank.autograd.function import Function
from filterbank.tensor import Tensor

_ids = itertools.count()


class RemovableHandle:
    """What the ``register_*_hook`` methods return: ``remove()`` unregisters the hook.

    The handle holds the hook dictionaries weakly (as PyTorch's), so a handle kept around
    does not keep the module alive. It is also a context manager that removes the hook on
    exit::

        with model.fc.register_forward_hook(hook):
            model(x)          # the hook runs here only
    """

    __slots__ = ("id", "_refs")

    def __init__(self, hooks_dict: dict, *, extra_dict: dict | None = None):
        self.id = next(_ids)
        self._refs = tuple(weakref.ref(d) for d in (hooks_dict, extra_dict) if d is not None)

    def remove(self) -> None:
        for ref in self._refs:
            d = ref()
            if d is not None:
                d.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"RemovableHandle(id={self.id})"


class _Gather(Function):
    """Pack several tensors into one flat array (one tensor: a view of it). Backward splits
    the gradient and hands the pieces to ``on_grad``, which may replace them."""

    def forward(self, *xs):
        self.metas = [(x.shape, x.dtype, x.size) for x in xs]
        if len(xs) == 1:
            return xs[0].view()
        dtype = np.result_type(*[x.dtype for x in xs])
        return np.concatenate([x.ravel().astype(dtype, copy=False) for x in xs])

    def backward(self, g):
        if len(self.metas) == 1:
            grads = [g]
        else:
            bounds = np.cumsum([0] + [n for _, _, n in self.metas])
            grads = [g[a:b].reshape(shape)
                     for (shape, _, _), a, b in zip(self.metas, bounds[:-1], bounds[1:])]
        return tuple(self.on_grad(grads))


class _Scatter(Function):
    """Part ``[start, stop)`` of a ``_Gather``ed array, reshaped and cast back."""

    keep_dtype = False

    def forward(self, p):
        self.size, self.p_dtype = p.size, p.dtype
        return p[self.start:self.stop].reshape(self.shape).astype(self.dtype, copy=False)

    def backward(self, g):
        full = np.zeros(self.size, self.p_dtype)
        full[self.start:self.stop] = g.ravel()
        return full


def _wrap(tensors: list[Tensor], on_grad: Callable) -> list[Tensor]:
    """``tensors`` routed through one ``_Gather`` whose backward calls ``on_grad``."""
    packed = _Gather.apply(*tensors, on_grad=on_grad)
    if len(tensors) == 1:
        return [packed]
    out, start = [], 0
    for t in tensors:
        stop = start + t.data.size
        out.append(_Scatter.apply(packed, start=start, stop=stop, shape=t.shape, dtype=t.dtype))
        start = stop
    return out


def _as_grad(value, like: np.ndarray, what: str, i: int):
    if value is None:
        return None
    arr = value.data if isinstance(value, Tensor) else np.asarray(value)
    if arr.shape != like.shape:
        raise RuntimeError(f"backward hook: {what}[{i}] has shape {tuple(arr.shape)}, expected "
                           f"{tuple(like.shape)}")
    return arr.astype(like.dtype, copy=False)


class BackwardHook:
    """One module call's full backward hooks (the hooks as they were at forward time)."""

    def __init__(self, module, hooks: list[Callable]):
        self.module = module
        self.hooks = hooks
        self.grad_outputs: tuple | None = None
        self.n_inputs = 0
        self.input_index: list[int] | None = None
        self.n_outputs = 0
        self.output_index: list[int] | None = None

    @staticmethod
    def _tensors(args) -> list[int]:
        return [i for i, a in enumerate(args)
                if isinstance(a, Tensor) and a._requires_grad]

    @staticmethod
    def _pack(index, values, n) -> tuple:
        res: list = [None] * n
        for i, v in zip(index, values):
            res[i] = None if v is None else Tensor._wrap(v)
        return tuple(res)

    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        index = self._tensors(args)
        if not index or not grad_mode._enabled:
            return args
        self.input_index = index
        wrapped = _wrap([args[i] for i in index], self._on_input_grad)
        args = list(args)
        for i, t in zip(index, wrapped):
            args[i] = t
        return tuple(args)

    def setup_output_hook(self, result):
        is_tuple = isinstance(result, tuple)
        outs = result if is_tuple else (result,)
        self.n_outputs = len(outs)
        index = self._tensors(outs)
        if not index or not grad_mode._enabled:
            return result
        self.output_index = index
        wrapped = _wrap([outs[i] for i in index], self._on_output_grad)
        outs = list(outs)
        for i, t in zip(index, wrapped):
            outs[i] = t
        return tuple(outs) if is_tuple else outs[0]

    def _on_output_grad(self, grads):
        self.grad_outputs = self._pack(self.output_index, grads, self.n_outputs)
        if self.input_index is None:
            # no input requires grad: the hooks fire now, with grad_input all None (PyTorch)
            grad_inputs = (None,) * self.n_inputs
            for hook in self.hooks:
                res = hook(self.module, grad_inputs, self.grad_outputs)
                if res is not None and not all(r is None for r in res):
                    raise RuntimeError(
                        f"backward hook of {type(self.module).__name__}: no input of this "
                        f"module requires grad, so the hook must return None (or all None), "
                        f"got {type(res).__name__}")
            self.grad_outputs = None
        return grads

    def _on_input_grad(self, grads):
        if self.grad_outputs is None:
            # the gradient reached the inputs without passing through the outputs
            return grads
        res = self._pack(self.input_index, grads, self.n_inputs)
        for hook in self.hooks:
            out = hook(self.module, res, self.grad_outputs)
            if out is None:
                continue
            if not isinstance(out, tuple | list) or len(out) != len(res):
                got = len(out) if isinstance(out, tuple | list) else type(out).__name__
                raise RuntimeError(f"backward hook of {type(self.module).__name__} returned an "
                                   f"invalid number of grad_input, got {got}, but expected "
                                   f"{len(res)}")
            res = tuple(out)
        self.grad_outputs = None
        new = []
        for i, g in zip(self.input_index, grads):
            r = _as_grad(res[i], g, "grad_input", i)
            new.append(r)
        return new
