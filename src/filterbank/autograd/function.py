"""``Function``: one differentiable op, forward and backward on raw arrays.

A subclass implements ``forward(*arrays) -> array`` and ``backward(grad_out) -> grad | tuple``,
saving on ``self`` only what backward needs. ``Fn.apply(*inputs, **hyperparameters)`` wraps it:
it unwraps tensors, casts constants to the graph's dtype (so float32 stays float32), runs
forward, and, when gradients are being recorded, links the output to its inputs.

Broadcasting is undone in one place, :func:`unbroadcast`, which the backward pass applies to
every gradient a ``backward`` returns; ops never sum gradients back to shape themselves.
``backward`` must not modify ``grad_out`` in place: the same array may be handed to several
inputs (``Add`` returns it twice).
"""

from __future__ import annotations

import numpy as np

from filterbank.autograd import grad_mode
from filterbank.backend import (
    DEFAULT_DTYPE,
    check_same_device,
    get_array_module,
    is_device_array,
    xp,
)

_SCALARS = (bool, int, float, np.generic)
_PY_NUMBERS = (float, int, bool)


class Function:
    """Base class of every op. See the module docstring.

    Class attribute ``keep_dtype`` (default True): a floating output is cast back to the
    graph's floating dtype (the widest floating dtype among the tensor inputs), so NumPy's
    promotion by an integer or float64 operand cannot turn a float32 graph into float64. Ops
    that change the dtype on purpose (``Cast``) set it to False.
    """

    keep_dtype: bool = True
    #: Per input: the leaf Tensor, the Function that computed it, or None for a constant
    #: (set by ``apply``; cleared once backward has used them).
    parents: tuple
    #: ``(shape, dtype)`` of the output (its gradient must match them).
    out_meta: tuple
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
        """Run the op on ``inputs`` (Tensors, arrays, scalars or None) and record it.

        Keyword ``hyper`` parameters become attributes of the op instance. Returns a Tensor
        that requires grad when recording is on, some input requires grad, and the output is
        floating point.
        """
        fn = cls(**hyper)
        # The graph's dtype: floating tensors decide, constants follow (PyTorch's "Python
        # scalars do not promote" rule, extended to NumPy arrays so that a float64 array
        # mixed into a float32 graph does not silently promote it).
        dtype = None
        requires_grad = False
        has_constant = False
        device_array = None  # the first tensor array that is no NumPy array (CuPy's)
        for t in inputs:
            if isinstance(t, Tensor):
                a = t.data
                d = a.dtype
                if d.kind == "f" and (dtype is None or d.itemsize > dtype.itemsize):
                    dtype = d
                if t._requires_grad:
                    requires_grad = True
                if type(a) is not np.ndarray and device_array is None:
                    device_array = a
            elif t is not None:
                has_constant = True
        if has_constant:
            if dtype is None and any([_is_float_constant(t) for t in inputs]):
                dtype = DEFAULT_DTYPE
            # constants go where the tensors are (next to CuPy arrays: to their device)
            mod = np if device_array is None else get_array_module(device_array)
            arrays = [t.data if isinstance(t, Tensor) else _as_constant(t, dtype, mod)
                      for t in inputs]
        else:
            arrays = [None if t is None else t.data for t in inputs]
        if device_array is not None:
            # one device per op; integer host constants (indices) may stay on the host. On
            # NumPy arrays this costs the one type check per tensor above.
            check_same_device(cls.__name__, *[a for t, a in zip(inputs, arrays)
                                              if isinstance(t, Tensor)
                                              or type(a) is not np.ndarray])
        record = requires_grad and grad_mode._enabled
        if record:
            fn.needs_input_grad = tuple([isinstance(t, Tensor) and t._requires_grad
                                         for t in inputs])
        else:
            fn.needs_input_grad = (False,) * len(inputs)
        out = fn.forward(*arrays)
        if isinstance(out, np.generic):  # NumPy reductions and x[i] give scalars, not arrays
            out = xp.asarray(out)
        odt = out.dtype
        if odt is not dtype and dtype is not None and odt.kind == "f" and odt != dtype \
                and cls.keep_dtype:
            out = out.astype(dtype)
        elif odt.kind not in "fc":
            record = False  # integer and boolean results carry no gradient
        result = Tensor._wrap(out, record)
        if out.base is not None:
            # a view of an input's array shares that input's in-place version counter (CuPy
            # has its own may_share_memory; its arrays are no NumPy arrays)
            host = type(out) is np.ndarray or not is_device_array(out)
            share = np.may_share_memory if host else get_array_module(out).may_share_memory
            for t in inputs:
                if isinstance(t, Tensor) and (type(t.data) is np.ndarray and host
                                              or is_device_array(t.data) is not host) \
                        and share(out, t.data):
                    result._vc = t._version_counter()
                    result._view_of = True  # getitem records which base and index
                    break
        if record:
            # the in-place versions of the inputs and the output now, checked again by
            # backward (an op may have saved any of them)
            saved = []
            for t in inputs:
                if isinstance(t, Tensor):
                    vc = t._vc
                    if vc is None:
                        vc = t._vc = [0, None]  # see tensor.py: [version, written array]
                    saved.append((vc, vc[0]))
            vc = result._vc
            if vc is None:
                vc = result._vc = [0, None]
            saved.append((vc, vc[0]))
            fn._saved_versions = saved
            # A computed input is linked through the Function that made it, never the tensor:
            # the tensor would keep its array alive until backward, although the ops that
            # need an activation save it themselves (ResNet-18 at batch 64: 430 MiB of
            # outputs that nothing reads again). Leaves (parameters, inputs) are kept as
            # themselves; constants are None.
            fn.parents = tuple([(t if t._ctx is None else t._ctx) if isinstance(t, Tensor)
                                else None for t in inputs])
            fn.out_meta = (out.shape, out.dtype)  # for its consumers' gradients
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


def _is_float_constant(value) -> bool:
    if isinstance(value, float | np.floating):
        return True
    return isinstance(value, np.ndarray | list | tuple) and xp.asarray(value).dtype.kind == "f"


def _as_constant(value, dtype, mod=np):
    """Turn a scalar / NumPy array operand into an array of the graph's dtype, made by the
    tensors' array module ``mod`` (NumPy, or CuPy: on their device).

    Floating constants and Python/NumPy scalars take the graph's dtype. Integer and boolean
    arrays are left alone (an op may use them as indices, on the host too); if they promote
    a floating result, ``apply`` casts the output back.
    """
    if value is None:
        return None
    if dtype is not None and type(value) in _PY_NUMBERS:
        return mod.asarray(value, dtype)  # the common case (``2 * t``): one call
    scalar = isinstance(value, _SCALARS)
    arr = xp.asarray(value) if get_array_module(value) is np else value
    floating = arr.dtype.kind == "f"
    if dtype is not None and arr.dtype != dtype and (scalar or floating):
        arr = arr.astype(dtype)
    if mod is not np and (scalar or floating):
        arr = mod.asarray(arr)
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


from filterbank.tensor import Tensor  # noqa: E402  (tensor.py imports this module first)
