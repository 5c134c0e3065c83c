"""``Function``: one differentiable op, forward and backward on raw arrays.

A subclass implements ``forward(*arrays) -> array`` and ``backward(grad_out) -> grad | tuple``,
saving on ``self`` only what backward needs. ``Fn.apply(*inputs, **hyperparameters)`` wraps it:
it unwraps tensors, casts constants to the graph's dtype (so float32 stays float32), runs
forward, and, when gradients are being recorded, links the output to its inputs.

Broadcasting is undone in one place, :func:`unbroadcast`, which the backward pass applies to
every gradient a ``backward`` returns; ops never sum gradients back to shape themselves.
"""

from __future__ import annotations

import numpy as np

from filterbank.autograd import grad_mode
from filterbank.backend import xp


class Function:
    """Base class of every op. See the module docstring."""

    #: Tensors the output depends on (set by ``apply``; cleared once backward has used them).
    parents: tuple
    #: For each input, whether a gradient is wanted (ops may skip computing the others).
    needs_input_grad: tuple

    def __init__(self, **hyper):
        self.__dict__.update(hyper)

    def forward(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad_out):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **hyper):
        from filterbank.tensor import Tensor

        fn = cls(**hyper)
        # The graph's dtype: floating tensors decide, constants follow (like PyTorch's
        # "Python scalars do not promote" rule, extended to NumPy arrays so that a float64
        # array mixed into a float32 graph does not silently promote it).
        dtype = None
        for t in inputs:
            if type(t) is Tensor or isinstance(t, Tensor):
                d = t.data.dtype
                if d.kind == "f" and (dtype is None or d.itemsize > dtype.itemsize):
                    dtype = d
        arrays = []
        tensors = []
        requires_grad = False
        for t in inputs:
            if isinstance(t, Tensor):
                arrays.append(t.data)
                tensors.append(t)
                requires_grad = requires_grad or t.requires_grad
            elif t is None:
                arrays.append(None)
                tensors.append(None)
            else:
                arrays.append(_as_constant(t, dtype))
                tensors.append(None)
        record = requires_grad and grad_mode._enabled
        if record:
            fn.needs_input_grad = tuple(t is not None and t.requires_grad for t in tensors)
        else:
            fn.needs_input_grad = (False,) * len(tensors)
        out = fn.forward(*arrays)
        result = Tensor._wrap(out, record)
        if record:
            fn.parents = tuple(tensors)
            result._ctx = fn
        return result

    def _release(self):
        """Drop everything saved for backward (called after backward unless retain_graph)."""
        name = type(self).__name__
        self.__dict__.clear()
        self.__dict__["_released_name"] = name

    @property
    def name(self) -> str:
        return type(self).__name__


def _as_constant(value, dtype):
    """Turn a Python scalar / NumPy array operand into an array of the graph's dtype."""
    arr = xp.asarray(value)
    if dtype is not None and arr.dtype != dtype and arr.dtype.kind in "fiub":
        arr = arr.astype(dtype)
    elif dtype is None and arr.dtype == np.float64 and not isinstance(value, np.ndarray):
        arr = arr.astype(np.float32)
    return arr


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting expanded, so it has ``shape``."""
    if grad.shape == shape:
        return grad
    ndim_extra = grad.ndim - len(shape)
    if ndim_extra > 0:
        grad = grad.sum(axis=tuple(range(ndim_extra)))
    axes = tuple(i for i, (g, s) in enumerate(zip(grad.shape, shape)) if s == 1 and g != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:
        grad = grad.reshape(shape)
    return grad
