"""A fake ``cupy`` for CPU-only tests: device arrays that are NumPy arrays in disguise.

Put on ``sys.path`` only by the tests that ask for it (``fakecupy.fake_cupy`` /
``fakecupy.installed()``); never imported by the library itself. It mirrors what matters of
CuPy for filterbank's device code, strictly:

- ``cupy.ndarray`` is a NumPy subclass whose ``__module__`` is ``"cupy"``, so
  ``filterbank.backend.get_array_module`` routes to this module;
- mixing a host array (a plain ``numpy.ndarray``, 0-d ones included) into a ufunc or a NumPy
  function raises ``TypeError``, as CuPy does ("Unsupported type <class 'numpy.ndarray'>");
  Python and NumPy scalars are fine;
- ``numpy.f(device_array)`` works only when CuPy has ``f`` (dispatch by name through
  ``__array_function__``, as CuPy's own), else ``TypeError`` ("no implementation found");
- reductions and ``a[i]`` give 0-d device arrays, never host scalars (CuPy has no scalars);
- ``ufunc.at`` is refused (``np.add.at``): filterbank scatters without it (``bincount``,
  as functional/index.py), and CuPy's own spelling is ``cupyx.scatter_add``;
- conversions are explicit: ``cupy.asarray(host)``, ``cupy.asnumpy(dev)``, ``dev.get()``.

What it cannot catch: ``numpy.asarray(device_array)`` quietly returns a host array (NumPy never
asks a subclass), where CuPy raises. The result is a plain ``numpy.ndarray``, which then fails
the first time it meets a device array, or an "is the output on the device" check.
"""

from __future__ import annotations

import numpy as _np

__version__ = "13.0.0+fake"
_FAKE = True


class ndarray(_np.ndarray):  # noqa: N801 - CuPy's name
    """A device array (really host memory). See the module docstring."""

    __module__ = "cupy"

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = getattr(ufunc, "__name__", str(ufunc))
        if name not in _UFUNCS:
            raise TypeError(f"fake cupy: CuPy has no ufunc {name!r}")
        if method == "at":
            raise TypeError(f"fake cupy: {name}.at is not used on the device: scatter with "
                            f"cupyx.scatter_add")
        _check_no_host(name, inputs)
        out = kwargs.get("out")
        if out is not None:
            _check_no_host(name, out)
        return _to_device(super().__array_ufunc__(ufunc, method, *_host(inputs),
                                                  **_host_kwargs(kwargs)))

    def __array_function__(self, func, types, args, kwargs):
        if _cupy_has(func) is None:
            return NotImplemented  # NumPy raises TypeError: no implementation found
        _check_no_host(func.__name__, args)
        _check_no_host(func.__name__, tuple(kwargs.values()))
        return _to_device(func._implementation(*_host(args), **_host_kwargs(kwargs)))

    def __getitem__(self, index):
        return _to_device(super().__getitem__(_host_index(index)))

    def __setitem__(self, index, value):
        if isinstance(value, _np.ndarray) and not isinstance(value, ndarray):
            _check_no_host("__setitem__", (value,))
        super().__setitem__(_host_index(index), _host_one(value))

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        return _to_device(arr)

    def get(self, stream=None, order="C", out=None, blocking=True):  # noqa: ARG002
        """Copy to the host: a plain ``numpy.ndarray``."""
        host = _np.array(self.view(_np.ndarray), order=order, copy=True)
        if out is not None:
            out[...] = host
            return out
        return host

    @property
    def device(self):
        return cuda.Device(cuda.runtime._current)

    def __repr__(self) -> str:
        return repr(self.view(_np.ndarray)).replace("array(", "array(", 1)

    def __reduce__(self):
        raise TypeError("fake cupy: device arrays are not pickled by filterbank")


# ------------------------------------------------------------------------------ helpers
def _is_host(a) -> bool:
    return isinstance(a, _np.ndarray) and not isinstance(a, ndarray)


def _check_no_host(name: str, args) -> None:
    stack = list(args) if isinstance(args, list | tuple) else [args]
    while stack:
        a = stack.pop()
        if _is_host(a):
            raise TypeError(f"fake cupy: {name} got a host numpy.ndarray of shape {a.shape} "
                            f"mixed with device arrays (CuPy: Unsupported type "
                            f"<class 'numpy.ndarray'>); move it with cupy.asarray first")
        if isinstance(a, list | tuple):
            stack.extend(a)


def _host_one(a):
    return a.view(_np.ndarray) if isinstance(a, ndarray) else a


def _host(args):
    out = []
    for a in args:
        if isinstance(a, list | tuple):
            a = type(a)(_host(a)) if isinstance(a, list) else tuple(_host(a))
        out.append(_host_one(a))
    return tuple(out)


def _host_kwargs(kwargs):
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, tuple | list):
            v = type(v)(_host(v)) if isinstance(v, list) else tuple(_host(v))
        out[k] = _host_one(v)
    return out


def _host_index(index):
    if isinstance(index, tuple):
        return tuple(_host_one(i) for i in index)
    return _host_one(index)


def _to_device(x):
    """Results back on the device: arrays as device arrays, scalars as 0-d device arrays."""
    if isinstance(x, ndarray):
        return x
    if isinstance(x, _np.ndarray):
        return x.view(ndarray)
    if isinstance(x, _np.generic):
        return _np.asarray(x).view(ndarray)
    if isinstance(x, tuple):
        return tuple(_to_device(v) for v in x)
    if isinstance(x, list):
        return [_to_device(v) for v in x]
    return x


def _cupy_has(func):
    """This module's counterpart of NumPy's ``func`` (same submodule, same name), or None."""
    import sys

    ns = sys.modules[__name__]
    for part in (func.__module__ or "numpy").split(".")[1:]:
        ns = getattr(ns, part, None)
        if ns is None:
            return None
    return getattr(ns, func.__name__, None)


def _wrap(np_func, creation: bool = False):
    def f(*args, **kwargs):
        if not creation:
            _check_no_host(np_func.__name__, args)
            _check_no_host(np_func.__name__, tuple(kwargs.values()))
        else:
            args, kwargs = _host(args), _host_kwargs(kwargs)
        return _to_device(np_func(*args, **kwargs))

    f.__name__ = np_func.__name__
    f.__qualname__ = np_func.__name__
    f.__doc__ = f"Fake cupy.{np_func.__name__} (NumPy's, on device arrays)."
    return f


# ------------------------------------------------------------------- conversions
def asarray(a, dtype=None, order=None, *, blocking=False):  # noqa: ARG001
    """Host or device data as a device array (no copy when already one of that dtype)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == _np.dtype(dtype) else a.astype(dtype)
    return _np.array(_host_one(a) if not isinstance(a, list | tuple) else _host_list(a),
                     dtype=dtype, order=order or "K", copy=True).view(ndarray)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *,  # noqa: ARG001
          blocking=False):  # noqa: ARG001
    if isinstance(obj, ndarray) and not copy:
        return asarray(obj, dtype)
    host = _host_one(obj) if not isinstance(obj, list | tuple) else _host_list(obj)
    return _np.array(host, dtype=dtype, copy=True, order=order, ndmin=ndmin).view(ndarray)


def _host_list(obj):
    return [(_host_list(v) if isinstance(v, list | tuple) else _host_one(v)) for v in obj]


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):  # noqa: ARG001
    """A device array copied to the host; host data as a host array."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    res = _np.asarray(a, order=order)
    if out is not None:
        out[...] = res
        return out
    return res


def get_array_module(*args):
    import sys

    for a in args:
        if isinstance(a, ndarray):
            return sys.modules[__name__]
    return _np


def ascontiguousarray(a, dtype=None):
    _check_no_host("ascontiguousarray", (a,))
    return _to_device(_np.ascontiguousarray(_host_one(a), dtype=dtype))


# --------------------------------------------------------------- dtypes and constants
dtype = _np.dtype
finfo = _np.finfo
iinfo = _np.iinfo
issubdtype = _np.issubdtype
result_type = _np.result_type
can_cast = _np.can_cast
promote_types = _np.promote_types
isscalar = _np.isscalar
newaxis = None
pi, e, inf, nan, euler_gamma = _np.pi, _np.e, _np.inf, _np.nan, _np.euler_gamma
for _t in ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64", "complex64", "complex128", "intp", "uintp",
           "integer", "floating", "number", "generic", "signedinteger", "unsignedinteger",
           "inexact", "complexfloating", "byte", "ubyte", "short", "ushort", "intc", "uintc",
           "longlong", "ulonglong", "half", "single", "double"):
    globals()[_t] = getattr(_np, _t)
bool = _np.bool_  # noqa: A001 - CuPy exports it too

# ----------------------------------------------------------------------- ufuncs
#: NumPy ufuncs that CuPy implements (docs.cupy.dev, "Universal functions").
_UFUNCS = frozenset("""
add subtract multiply divide true_divide floor_divide negative positive power float_power
remainder mod fmod divmod absolute fabs rint sign heaviside conj conjugate exp exp2 log log2
log10 expm1 log1p sqrt square cbrt reciprocal gcd lcm logaddexp logaddexp2
sin cos tan arcsin arccos arctan arctan2 hypot sinh cosh tanh arcsinh arccosh arctanh
deg2rad rad2deg degrees radians
bitwise_and bitwise_or bitwise_xor invert left_shift right_shift
greater greater_equal less less_equal not_equal equal logical_and logical_or logical_xor
logical_not maximum minimum fmax fmin
isfinite isinf isnan signbit copysign nextafter spacing modf ldexp frexp floor ceil trunc
matmul
""".split())
for _n in _UFUNCS:
    globals()[_n] = getattr(_np, _n)  # calling it on device arrays dispatches back here
abs = _np.absolute  # noqa: A001
bitwise_not = _np.invert

# ------------------------------------------------------------------- functions
_CREATION = """empty zeros ones full arange linspace logspace eye identity tri indices
tril_indices triu_indices diag_indices""".split()
for _n in _CREATION:
    globals()[_n] = _wrap(getattr(_np, _n), creation=True)

#: NumPy functions with a CuPy counterpart of the same name (docs.cupy.dev, "API reference").
_FUNCTIONS = """
empty_like zeros_like ones_like full_like copy copyto tril triu diag diagonal diagflat
meshgrid reshape ravel transpose moveaxis swapaxes rollaxis expand_dims squeeze broadcast_to
broadcast_arrays atleast_1d atleast_2d atleast_3d concatenate stack vstack hstack dstack
column_stack split array_split hsplit vsplit tile repeat flip fliplr flipud roll rot90 pad
where nonzero flatnonzero argwhere take take_along_axis put choose compress extract select
place clip searchsorted sort argsort lexsort partition argpartition unique bincount
histogram digitize cumsum cumprod diff einsum dot vdot inner outer kron tensordot trace sum
prod mean var std max min amax amin argmax argmin all any count_nonzero median nanmax nanmin
nansum nanprod nanmean nanvar nanstd nanargmax nanargmin percentile quantile average isclose
allclose array_equal nan_to_num real imag around round fix ravel_multi_index unravel_index
ix_ may_share_memory shares_memory ndim asfortranarray cov corrcoef convolve interp put_along_axis
""".split()
for _n in _FUNCTIONS:
    globals()[_n] = _wrap(getattr(_np, _n))

del _n, _t

from . import cuda, fft, lib, linalg, random  # noqa: E402  (they use the helpers above)
