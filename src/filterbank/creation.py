"""Tensor factories: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``randn``, ...

Floating results are float32 unless ``dtype`` says otherwise; random ones draw from
:func:`filterbank.random.resolve` (the global generator, or the ``generator`` passed).
"""

from __future__ import annotations

import functools

import numpy as np

from filterbank import backend as _backend
from filterbank import random as _random
from filterbank.backend import DEFAULT_DTYPE, xp
from filterbank.tensor import Tensor, _shape_args


def _on_device(fn=None, *, like: bool = False):
    """PyTorch's ``device=`` keyword on a factory: the tensor is made in host memory (random
    ones from the seeded NumPy generator, so a seed gives the same values on every device)
    and moved to ``device``; None keeps it on the CPU, or, for a ``*_like`` factory
    (``like=True``), on the device of the tensor it copies the shape of. ``"cuda"`` without
    CuPy or a GPU raises :class:`~filterbank.backend.DeviceError` before anything is made."""
    if fn is None:
        return functools.partial(_on_device, like=like)

    @functools.wraps(fn)
    def factory(*args, device=None, **kwargs):
        dev = None if device is None else _backend.usable_device(device)
        if dev is None and like and args and isinstance(args[0], Tensor):
            dev = args[0].device
        out = fn(*args, **kwargs)
        if dev is None or dev == out.device:
            return out
        return Tensor._wrap(_backend.to_device(out.data, dev), out.requires_grad)

    return factory


def _dtype(dtype):
    return DEFAULT_DTYPE if dtype is None else np.dtype(dtype)


@_on_device
def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (like ``torch.tensor``).

    Floating data defaults to float32 (float64 NumPy arrays included; pass ``dtype`` to keep
    them), integers to int64, booleans stay bool; a Tensor keeps its dtype.

    Args:
        data: nested lists, scalar, NumPy array or Tensor.
        dtype: NumPy dtype or its name (default: inferred as above).
        requires_grad: track operations for ``backward()`` (floating dtypes only).

    Example:
        >>> import filterbank as fb
        >>> fb.tensor([[1, 2], [3, 4]]).dtype
        dtype('int64')
        >>> fb.tensor([0.5, 1.5], requires_grad=True).dtype
        dtype('float32')
    """
    if isinstance(data, Tensor):
        data = data.data
        if dtype is None:
            dtype = data.dtype
    if _backend.is_device_array(data):  # a copy on the same GPU (``device=`` may move it)
        arr = data.astype(data.dtype if dtype is None else np.dtype(dtype), copy=True)
        return Tensor(arr, requires_grad=requires_grad, dtype=arr.dtype)
    arr = np.array(data, dtype=None if dtype is None else np.dtype(dtype), copy=True)
    return Tensor(arr, requires_grad=requires_grad, dtype=dtype)


def _new(arr, requires_grad: bool) -> Tensor:
    return Tensor(arr, requires_grad=requires_grad, dtype=arr.dtype)


@_on_device
def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros; ``shape`` as varargs or one tuple; float32 unless ``dtype``.

    Example:
        >>> import filterbank as fb
        >>> fb.zeros(2, 3).shape, fb.zeros((2,), dtype="int64").dtype
        ((2, 3), dtype('int64'))
    """
    return _new(xp.zeros(_shape_args(shape), _dtype(dtype)), requires_grad)


@_on_device
def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones; ``shape`` as varargs or one tuple; float32 unless ``dtype``.

    Example:
        >>> import filterbank as fb
        >>> fb.ones(2).tolist()
        [1.0, 1.0]
    """
    return _new(xp.ones(_shape_args(shape), _dtype(dtype)), requires_grad)


@_on_device
def empty(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (contents arbitrary); float32 unless ``dtype``."""
    return _new(xp.empty(_shape_args(shape), _dtype(dtype)), requires_grad)


@_on_device
def full(shape, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``. Without ``dtype``: bool for a bool, int64 for an
    int, float32 for a float (as ``torch.full``).

    Example:
        >>> import filterbank as fb
        >>> fb.full((2,), 7).dtype, fb.full(2, 0.5).tolist()
        (dtype('int64'), [0.5, 0.5])
    """
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    if dtype is None:
        if isinstance(fill_value, bool | np.bool_):
            dtype = np.bool_
        elif isinstance(fill_value, int | np.integer):
            dtype = np.int64
    return _new(xp.full(shape, fill_value, _dtype(dtype)), requires_grad)


@_on_device
def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` (default 0) up to, not including, ``end`` in steps of ``step``.

    int64 when every argument is an int, else float32 (as ``torch.arange``).

    Example:
        >>> import filterbank as fb
        >>> fb.arange(3).tolist(), fb.arange(0, 1, 0.25).tolist()
        ([0, 1, 2], [0.0, 0.25, 0.5, 0.75])
    """
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, int | np.integer) for v in (start, end, step))
        dtype = np.int64 if ints else DEFAULT_DTYPE
    return _new(xp.arange(start, end, step, dtype=np.dtype(dtype)), requires_grad)


def _float_dtype(name: str, dtype):
    dt = _dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{name}: expected a floating dtype, got {dt}")
    return dt


@_on_device
def randn(*shape, dtype=None, generator: np.random.Generator | None = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples drawn from ``generator`` (default: the global one, see
    :func:`filterbank.manual_seed`).

    Example:
        >>> import filterbank as fb
        >>> fb.randn(2, 3, generator=fb.default_generator()).shape
        (2, 3)
    """
    g = _random.resolve(generator)
    dt = _float_dtype("randn", dtype)
    native = dt if dt in (np.float32, np.float64) else np.dtype(np.float64)
    arr = g.standard_normal(_shape_args(shape), dtype=native).astype(dt, copy=False)
    return _new(arr, requires_grad)


@_on_device
def rand(*shape, dtype=None, generator: np.random.Generator | None = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) drawn from ``generator`` (default: the global one).

    Example:
        >>> import filterbank as fb
        >>> bool(((fb.rand(100) >= 0) & (fb.rand(100) < 1)).numpy().all())
        True
    """
    g = _random.resolve(generator)
    dt = _float_dtype("rand", dtype)
    native = dt if dt in (np.float32, np.float64) else np.dtype(np.float64)
    arr = g.random(_shape_args(shape), dtype=native).astype(dt, copy=False)
    return _new(arr, requires_grad)


def _like_dtype(t, dtype):
    return t.dtype if dtype is None else dtype


@_on_device(like=True)
def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``t``'s shape and (unless given) dtype."""
    return zeros(t.shape, dtype=_like_dtype(t, dtype), requires_grad=requires_grad)


@_on_device(like=True)
def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """Ones with ``t``'s shape and (unless given) dtype."""
    return ones(t.shape, dtype=_like_dtype(t, dtype), requires_grad=requires_grad)


@_on_device(like=True)
def empty_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uninitialised, with ``t``'s shape and (unless given) dtype."""
    return empty(t.shape, dtype=_like_dtype(t, dtype), requires_grad=requires_grad)


@_on_device(like=True)
def full_like(t: Tensor, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere, with ``t``'s shape and (unless given) dtype."""
    return full(t.shape, fill_value, dtype=_like_dtype(t, dtype), requires_grad=requires_grad)


@_on_device(like=True)
def randn_like(t: Tensor, dtype=None, generator=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples with ``t``'s shape and (unless given) dtype."""
    return randn(t.shape, dtype=_like_dtype(t, dtype), generator=generator,
                 requires_grad=requires_grad)


@_on_device(like=True)
def rand_like(t: Tensor, dtype=None, generator=None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples with ``t``'s shape and (unless given) dtype."""
    return rand(t.shape, dtype=_like_dtype(t, dtype), generator=generator,
                requires_grad=requires_grad)


# ------------------------------------------------------------------- NumPy interop, ranges
def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares ``array``'s memory and keeps its dtype (like ``torch.from_numpy``).

    Writing to one is seen by the other; float64 arrays stay float64 (unlike
    :func:`tensor`, which copies and defaults to float32).

    Args:
        array: a NumPy array of a numeric or boolean dtype.

    Example:
        >>> import numpy as np, filterbank as fb
        >>> a = np.zeros(3)
        >>> t = fb.from_numpy(a); a[0] = 5
        >>> t.tolist(), t.dtype
        ([5.0, 0.0, 0.0], dtype('float64'))
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "biufc":
        raise TypeError(f"from_numpy: can't convert an array of dtype {array.dtype}; expected "
                        f"a numeric or boolean dtype")
    return Tensor._wrap(array)


@_on_device
def as_tensor(data, dtype=None) -> Tensor:
    """``data`` as a tensor, without a copy when possible (like ``torch.as_tensor``).

    A Tensor of the requested dtype is returned as is; a NumPy array of the requested dtype
    (or any dtype when ``dtype`` is None) is shared as by :func:`from_numpy`; anything else is
    converted as by :func:`tensor` (floating Python data becomes float32).

    Args:
        data: Tensor, NumPy array, nested lists or scalar.
        dtype: the wanted dtype (default: kept, or inferred).

    Example:
        >>> import numpy as np, filterbank as fb
        >>> a = np.arange(3.0)
        >>> fb.as_tensor(a).data is a, fb.as_tensor([1.5]).dtype
        (True, dtype('float32'))
    """
    if isinstance(data, Tensor):
        if dtype is None or np.dtype(dtype) == data.dtype:
            return data
        return data.astype(dtype)
    if isinstance(data, np.ndarray):
        if dtype is None or np.dtype(dtype) == data.dtype:
            return from_numpy(data)
        return Tensor._wrap(data.astype(np.dtype(dtype)))
    return tensor(data, dtype=dtype)


@_on_device
def eye(n: int, m: int | None = None, dtype=None, requires_grad: bool = False) -> Tensor:
    """The ``n x m`` identity matrix (ones on the diagonal); ``m`` defaults to ``n``.

    Example:
        >>> import filterbank as fb
        >>> fb.eye(2, 3).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    m = n if m is None else m
    for what, v in (("n", n), ("m", m)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 0:
            raise ValueError(f"eye: expected {what} to be a non-negative int, got {v!r}")
    return _new(xp.eye(int(n), int(m), dtype=_dtype(dtype)), requires_grad)


@_on_device
def linspace(start, end, steps: int, dtype=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included.

    ``step = (end - start) / (steps - 1)``; PyTorch's rounding is kept: the first half is
    ``start + i * step`` and the second half ``end - (steps - 1 - i) * step`` (each with one
    rounding, as PyTorch's fused multiply-add), with ``step`` in the output dtype (float32
    unless ``dtype``), so both ends are exact. Integer dtypes truncate.

    Args:
        start: the first value.
        end: the last value.
        steps: the number of values (>= 0).
        dtype: output dtype (default float32).

    Example:
        >>> import filterbank as fb
        >>> fb.linspace(0, 1, 5).tolist()
        [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if not isinstance(steps, int | np.integer) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"linspace: expected steps to be a non-negative int, got {steps!r}")
    dt = _dtype(dtype)
    ct = dt if dt.kind == "f" else np.dtype(np.float64)  # the step's dtype
    steps = int(steps)
    if steps == 1:
        return _new(xp.full((1,), start, dt), requires_grad)
    start_c, end_c = ct.type(start), ct.type(end)
    step = (end_c - start_c) / ct.type(max(steps - 1, 1))
    # PyTorch's kernel uses fused multiply-adds (one rounding): for float32/16 the product is
    # exact in float64, so float64 arithmetic then one cast gives the same values
    wide = np.dtype(np.float64) if ct.itemsize < 8 else ct
    i = xp.arange(steps, dtype=wide)
    half = steps // 2
    out = xp.empty(steps, wide)
    out[:half] = wide.type(start_c) + wide.type(step) * i[:half]
    out[half:] = wide.type(end_c) - wide.type(step) * (wide.type(steps - 1) - i[half:])
    return _new(out.astype(dt, copy=False), requires_grad)


@_on_device
def randint(low, high=None, size=None, *, generator: np.random.Generator | None = None,
            dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform random integers in ``[low, high)``, drawn from ``generator`` (default: the
    global one). As ``torch.randint``: ``randint(high, size)`` or ``randint(low, high, size)``.

    Args:
        low: the smallest value (default 0).
        high: one past the largest value.
        size: the shape, a tuple (or an int).
        generator: a ``numpy.random.Generator``.
        dtype: the output dtype (default int64).

    Example:
        >>> import filterbank as fb
        >>> x = fb.randint(3, 5, (2, 2), generator=fb.manual_seed(0))
        >>> x.dtype, bool(((x >= 3) & (x < 5)).numpy().all())
        (dtype('int64'), True)
    """
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if size is None or high is None:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    shape = (size,) if isinstance(size, int | np.integer) else tuple(size)
    for what, v in (("low", low), ("high", high)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool):
            raise TypeError(f"randint: expected {what} to be an int, got {v!r}")
    if not low < high:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    g = _random.resolve(generator)
    dt = np.dtype(np.int64) if dtype is None else np.dtype(dtype)
    arr = g.integers(int(low), int(high), size=shape, dtype=np.int64).astype(dt, copy=False)
    return _new(arr, requires_grad)


@_on_device
def randperm(n: int, *, generator: np.random.Generator | None = None, dtype=None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64), drawn from ``generator``.

    Example:
        >>> import filterbank as fb
        >>> sorted(fb.randperm(4, generator=fb.manual_seed(0)).tolist())
        [0, 1, 2, 3]
    """
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 0:
        raise ValueError(f"randperm: expected n to be a non-negative int, got {n!r}")
    g = _random.resolve(generator)
    dt = np.dtype(np.int64) if dtype is None else np.dtype(dtype)
    return _new(g.permutation(int(n)).astype(dt, copy=False), requires_grad)


def allclose(input, other, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:
    """Whether ``|input - other| <= atol + rtol * |other|`` everywhere (broadcasting), as
    ``torch.allclose``. Returns a Python bool.

    Example:
        >>> import filterbank as fb
        >>> fb.allclose(fb.tensor([1.0, 2.0]), fb.tensor([1.0, 2.0 + 1e-7]))
        True
    """
    a = input.data if isinstance(input, Tensor) else xp.asarray(input)
    b = other.data if isinstance(other, Tensor) else xp.asarray(other)
    try:
        return bool(xp.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))
    except ValueError:
        raise ValueError(f"allclose: shapes {a.shape} and {b.shape} do not broadcast") from None
