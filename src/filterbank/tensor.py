"""``Tensor``: an n-d array that remembers how it was made, and backpropagation over that record.

Every op on tensors that require gradients records a :class:`~filterbank.autograd.Function`
node (define-by-run). ``backward()`` then does what the lecture describes: start from
dy/dy = 1, visit the nodes in reverse topological order, and for each node add
(dy/du)(du/dv) into the gradient of each of its inputs v. Gradients of leaves accumulate with
``+=`` into ``.grad``; a tensor used twice receives both contributions.
"""

from __future__ import annotations

import importlib
import weakref

import numpy as np

from filterbank import backend as _backend
from filterbank.autograd import grad_mode
from filterbank.backend import DEFAULT_DTYPE, xp

# The in-place version counter of one array, shared by every tensor that views it: a
# two-item list ``[version, weakref to the root array last written in place or None]`` (a list,
# not a class, because every recorded op creates one: 50 ns instead of 170 ns). Each recorded
# op notes the counters of its inputs and output (``Function.apply``); an in-place op bumps the
# counter; ``backward`` compares, and a changed counter whose array an op saved for backward is
# PyTorch's "modified by an inplace operation" error instead of a silently wrong gradient.


def _root(arr):
    while isinstance(arr.base, np.ndarray) or _backend.is_device_array(arr.base):
        arr = arr.base
    return arr


class _Size(int):
    """``t.size`` is the element count (NumPy style) and ``t.size()`` the shape (PyTorch style)."""

    def __new__(cls, n: int, shape: tuple[int, ...]):
        obj = super().__new__(cls, n)
        obj._shape = shape
        return obj

    def __call__(self, dim: int | None = None):
        return self._shape if dim is None else self._shape[dim]


def _to_array(data, dtype=None):
    """The array behind a new tensor: no copy when ``data`` is already a suitable array.

    Floating data without an explicit ``dtype`` becomes float32, float64 NumPy arrays included
    (NumPy's default float is float64, the library's is float32); another Tensor's array keeps
    its dtype; integers and booleans keep theirs.
    """
    if isinstance(data, Tensor):
        return data.data if dtype is None else data.data.astype(np.dtype(dtype), copy=False)
    if dtype is not None:
        return _backend.get_array_module(data).asarray(data, dtype=np.dtype(dtype))
    arr = _backend.get_array_module(data).asarray(data)
    if arr.dtype.kind == "f" and arr.dtype != DEFAULT_DTYPE:
        if not isinstance(data, np.ndarray) or arr.dtype == np.float64:
            arr = arr.astype(DEFAULT_DTYPE)
    return arr


class Tensor:
    """An n-d array with optional gradient tracking.

    Args:
        data: array-like (NumPy array, nested lists, scalar, or another Tensor). A NumPy array
            of the final dtype is shared, not copied (use :func:`filterbank.tensor` to copy).
        requires_grad: record operations on this tensor so ``backward()`` can reach it.
        dtype: NumPy dtype. Default: floating data becomes float32 (float64 NumPy arrays too;
            pass ``dtype="float64"`` to keep them), another Tensor keeps its dtype, integers
            and booleans keep theirs.

    Example:
        >>> import filterbank as fb
        >>> x = fb.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad.numpy().tolist()
        [2.0, 4.0, 6.0]
    """

    __slots__ = ("data", "_requires_grad", "grad", "_ctx", "_retain_grad", "_vc", "_hooks",
                 "_view_of", "__weakref__")
    __array_priority__ = 1000  # so ndarray OP tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad: Tensor | None = None
        self._ctx = None
        self._retain_grad = False
        self._requires_grad = False
        self._vc = None
        self._hooks = None
        self._view_of = None
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, array, requires_grad: bool = False):
        """Wrap an array as-is (no copy, no dtype change). Internal fast path."""
        t = object.__new__(cls)
        t.data = array
        t.grad = None
        t._ctx = None
        t._retain_grad = False
        t._requires_grad = requires_grad
        t._vc = None
        t._hooks = None
        t._view_of = None
        return t

    # ----------------------------------------------------------------- properties
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool):
        if value and self.data.dtype.kind not in "fc":
            raise RuntimeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype}"
            )
        if not value and self._ctx is not None:
            raise RuntimeError(
                "requires_grad can only be turned off on leaf tensors; use .detach() instead"
            )
        self._requires_grad = bool(value)

    def requires_grad_(self, value: bool = True) -> Tensor:
        self.requires_grad = value
        return self

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> _Size:
        """Element count as an int (``t.size``), shape when called (``t.size()``, ``t.size(0)``)."""
        return _Size(self.data.size, self.data.shape)

    def numel(self) -> int:
        return int(self.data.size)

    def dim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self) -> str:
        body = np.array2string(_backend.to_numpy(self.data), separator=", ", precision=4,
                               prefix="tensor(")
        extra = "" if not _backend.is_device_array(self.data) else f", device='{self.device}'"
        if self.data.dtype != DEFAULT_DTYPE:
            extra += f", dtype={self.data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.name}Backward>"
        elif self._requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous"
            )
        return bool(self.data)

    def __hash__(self):
        return id(self)

    def __array__(self, dtype=None, copy=None):
        if copy:
            return self.data.astype(dtype or self.data.dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    # ------------------------------------------------------------------ conversions
    def numpy(self) -> np.ndarray:
        """The underlying array (shared memory, like ``torch.Tensor.numpy``); a tensor on a
        GPU must be brought to the host first with ``.cpu()``."""
        if _backend.is_device_array(self.data):
            raise TypeError(f"numpy(): can't convert a {self.device} tensor to a NumPy array; "
                            f"use .cpu() first to copy it to host memory")
        if self._requires_grad:
            raise RuntimeError(
                "can't call numpy() on a tensor that requires grad; use .detach().numpy()"
            )
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(
                f"item(): only one-element tensors can be converted, got shape {self.shape}"
            )
        return self.data.reshape(()).item()  # CuPy's item() copies the one value to the host

    def tolist(self):
        return _backend.to_numpy(self.data).tolist()

    def detach(self) -> Tensor:
        """A tensor sharing the data (and its in-place version counter), cut off from the
        graph."""
        t = Tensor._wrap(self.data, False)
        t._vc = self._version_counter()
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor off from the graph, in place (it becomes a leaf)."""
        self._ctx = None
        self._requires_grad = False
        return self

    def clone(self) -> Tensor:
        from filterbank.functional.elementwise import clone

        return clone(self)

    def contiguous(self) -> Tensor:
        """``self`` when its array is C-contiguous, else a contiguous copy (in the graph)."""
        if self.data.flags.c_contiguous:
            return self
        return self.clone()

    def is_contiguous(self) -> bool:
        return bool(self.data.flags.c_contiguous)

    def astype(self, dtype) -> Tensor:
        from filterbank.functional.elementwise import cast

        return cast(self, np.dtype(dtype))

    # ---------------------------------------------------------------- devices, dtypes
    @property
    def device(self):
        """Where the data lives: ``fb.device("cpu")`` for a NumPy array, ``cuda:N`` for a CuPy
        array on GPU N."""
        return _backend.device_of(self.data)

    @property
    def is_cuda(self) -> bool:
        return _backend.is_device_array(self.data)

    def to(self, *args, **kwargs) -> Tensor:
        """PyTorch's ``to``: ``t.to("cuda")``, ``t.to(fb.float64)``, ``t.to(other)``,
        ``t.to("cpu", fb.float64)``, ``t.to(device=..., dtype=..., copy=False)``.

        Returns ``self`` when nothing changes (unless ``copy=True``). Both a device move and
        a dtype change stay in the graph: the gradient of the result flows back to this
        tensor on its own device, in its own dtype.

        Raises:
            filterbank.backend.DeviceError: ``"cuda"`` without CuPy or without a GPU.
        """
        from filterbank.device import parse_to_args

        copy = bool(kwargs.get("copy", False))
        dev, dtype = parse_to_args("Tensor.to", *args, **kwargs)
        out = self
        if dev is not None and dev != self.device:
            out = ToDevice.apply(out, device=dev)
        if dtype is not None:
            out = out.astype(dtype)
        return out.clone() if copy and out is self else out

    def cpu(self) -> Tensor:
        """This tensor in host memory (``self`` when it is there already)."""
        return self.to("cpu")

    def cuda(self, device=None) -> Tensor:
        """This tensor on a GPU: ``device`` is an index, a name such as ``"cuda:1"`` or a
        :class:`~filterbank.device` (default: GPU 0)."""
        return self.to(_cuda_device(device))

    def type(self, dtype=None):
        """Without an argument, the type name (``"filterbank.FloatTensor"``); with a dtype,
        the tensor converted to it."""
        if dtype is None:
            return f"filterbank.{_TYPE_NAMES.get(self.data.dtype.name, 'Tensor')}"
        return self.astype(dtype)

    def type_as(self, other) -> Tensor:
        return self.astype(other.dtype)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def half(self) -> Tensor:
        return self.astype(np.float16)

    def long(self) -> Tensor:
        return self.astype(np.int64)

    def int(self) -> Tensor:
        return self.astype(np.int32)

    def bool(self) -> Tensor:
        return self.astype(np.bool_)

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def element_size(self) -> int:
        return self.data.itemsize

    # --------------------------------------------------------------- gradient hooks
    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        self._retain_grad = True
        if self._ctx is not None:  # the graph links Functions, not tensors: ask the creator
            self._ctx._retained_ref = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._retain_grad and self._ctx is not None

    def register_hook(self, hook) -> _HookHandle:
        """Call ``hook(grad)`` whenever the gradient of this tensor is computed.

        The hook may return a new gradient (a Tensor or array of the same shape) that replaces
        the one passed on (to ``.grad`` for a leaf, to the inputs of the op that made a
        non-leaf), or None to leave it. Returns a handle whose ``remove()`` unregisters it.

        Example:
            >>> import filterbank as fb
            >>> x = fb.tensor([1.0, 2.0], requires_grad=True)
            >>> h = x.register_hook(lambda g: g * 2)
            >>> (x * 3).sum().backward()
            >>> x.grad.tolist()
            [6.0, 6.0]
        """
        if not self._requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        if not callable(hook):
            raise TypeError(f"register_hook: expected a callable, got {type(hook).__name__}")
        if self._ctx is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            hooks = self._ctx.__dict__.setdefault("_grad_hooks", [])
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    # ------------------------------------------------------------------ in-place ops
    def _version_counter(self) -> list:
        vc = self._vc
        if vc is None:
            vc = self._vc = [0, None]
        return vc

    @property
    def _version(self) -> int:
        """How many times this tensor's data was modified in place (PyTorch's ``_version``)."""
        return 0 if self._vc is None else self._vc[0]

    def _mark_modified(self) -> None:
        """Bump the version counter (shared with the views of this array) and remember the
        array written to, for backward's check."""
        vc = self._version_counter()
        vc[0] += 1
        vc[1] = weakref.ref(_root(self.data))

    def _write(self, arr, name: str) -> None:
        """Write ``arr`` (already computed) into this tensor's own array."""
        if arr.shape != self.data.shape:
            raise RuntimeError(f"{name}: output with shape {self.shape} doesn't match the "
                               f"broadcast shape {tuple(arr.shape)}")
        if arr.dtype != self.data.dtype and not np.can_cast(arr.dtype, self.data.dtype,
                                                            "same_kind"):
            raise RuntimeError(f"{name}: result type {arr.dtype} can't be cast to the desired "
                               f"output type {self.data.dtype}")
        self._begin_write(name)
        if arr is not self.data:
            _backend.get_array_module(self.data).copyto(self.data, arr, casting="unsafe")

    def _begin_write(self, name: str) -> None:
        """Every in-place write starts here: refuse a read-only array, bump the version."""
        if not self.data.flags.writeable:
            raise RuntimeError(f"{name}: this tensor's array is read-only (a broadcast view "
                               f"or a read-only NumPy array); clone() it first")
        self._mark_modified()

    def _inplace(self, name: str, fn, *args) -> Tensor:
        """``self <- fn(self, *args)`` in this tensor's own array.

        Without recording (``no_grad``, or nothing requires grad) the result is just written.
        When recording, the op runs on a copy of the old value (so what it saves for backward
        is not overwritten) and this tensor takes the result's place in the graph, as in
        PyTorch; a leaf that requires grad cannot be modified that way.
        """
        record = grad_mode._enabled and (self._requires_grad or any(
            [isinstance(a, Tensor) and a._requires_grad for a in args]))
        if not record:
            self._write(fn(self, *args).data, name)
            return self
        if self._ctx is None and self._requires_grad:
            raise RuntimeError(
                f"{name}: a leaf Variable that requires grad is being used in an in-place "
                f"operation. Wrap the update in `with fb.no_grad():` (as optimizers do)")
        view_of = self._view_of
        if view_of is True:
            # PyTorch rewrites the base's history here; filterbank tracks the bases of slices
            # only, so another view's base would keep a stale graph: refuse, not a wrong grad
            raise RuntimeError(
                f"{name}: in-place operation on a view made by reshape, view, transpose, "
                f"expand, ... while gradients are recorded is not supported; use out-of-place "
                f"ops, or modify a slice (x[index]) of the base, which is supported")
        old = Tensor._wrap(self.data.copy(), self._requires_grad)
        old._ctx = self._ctx
        out = fn(old, *args)
        if view_of is not None:
            # a slice x[index]: the new value goes into its base through x[index] = new (an
            # index_put on the base's graph, which also writes the shared array), as PyTorch
            base, index = view_of
            base[index] = out
        else:
            self._write(out.data, name)
        if self._retain_grad and self._ctx is not None:
            # .grad follows the tensor to its new value (PyTorch): the old creator must not
            # also write the old value's gradient into it
            self._ctx.__dict__.pop("_retained_ref", None)
        self._ctx = out._ctx
        self._requires_grad = out._requires_grad
        if self._retain_grad and self._ctx is not None:
            self._ctx._retained_ref = weakref.ref(self)
        return self

    def _inplace_ufunc(self, name: str, ufunc, other, fn) -> Tensor:
        """Arithmetic in place: straight into the array with ``ufunc(..., out=)`` when
        nothing is recorded, else through :meth:`_inplace` with the differentiable ``fn``."""
        if grad_mode._enabled and (self._requires_grad or (
                isinstance(other, Tensor) and other._requires_grad)):
            return self._inplace(name, fn, other)
        o = other.data if isinstance(other, Tensor) else other
        if type(o) is not type(self.data):
            _backend.check_same_device(name, self.data, o)
        if type(o) in (float, int, bool) and self.data.dtype.kind == "f":
            o = self.data.dtype.type(o)  # a Python scalar does not promote (PyTorch's rule)
        a = self.data
        shape = np.broadcast_shapes(a.shape, np.shape(o))
        if shape != a.shape:
            raise RuntimeError(f"{name}: output with shape {self.shape} doesn't match the "
                               f"broadcast shape {shape}")
        rt = np.result_type(a, o)
        if rt != a.dtype and not np.can_cast(rt, a.dtype, "same_kind"):
            raise RuntimeError(f"{name}: result type {rt} can't be cast to the desired "
                               f"output type {a.dtype}")
        self._begin_write(name)
        ufunc(a, o, out=a, casting="same_kind")  # no temporary of the tensor's size
        return self

    def add_(self, other, *, alpha=1) -> Tensor:
        """``self += alpha * other`` in place (see :meth:`_inplace` for the graph rules)."""
        if alpha != 1:
            other = other * alpha
        return self._inplace_ufunc("add_", np.add, other, _ew.add)

    def sub_(self, other, *, alpha=1) -> Tensor:
        if alpha != 1:
            other = other * alpha
        return self._inplace_ufunc("sub_", np.subtract, other, _ew.sub)

    def mul_(self, other) -> Tensor:
        return self._inplace_ufunc("mul_", np.multiply, other, _ew.mul)

    def div_(self, other) -> Tensor:
        return self._inplace_ufunc("div_", np.true_divide, other, _ew.div)

    def pow_(self, exponent) -> Tensor:
        return self._inplace_ufunc("pow_", np.power, exponent, _ew.pow)

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def neg_(self) -> Tensor:
        return self._inplace("neg_", _ew.neg)

    def exp_(self) -> Tensor:
        return self._inplace("exp_", _ew.exp)

    def sqrt_(self) -> Tensor:
        return self._inplace("sqrt_", _ew.sqrt)

    def relu_(self) -> Tensor:
        return self._inplace("relu_", _ew.relu)

    def sigmoid_(self) -> Tensor:
        return self._inplace("sigmoid_", _ew.sigmoid)

    def tanh_(self) -> Tensor:
        return self._inplace("tanh_", _ew.tanh)

    def clamp_(self, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
        return self._inplace("clamp_", lambda s: _ew.clip(s, min, max))

    clip_ = clamp_

    def zero_(self) -> Tensor:
        """Fill with zeros in place."""
        return self.fill_(0)

    def fill_(self, value) -> Tensor:
        """Fill with ``value`` (a number or a one-element tensor) in place."""
        # recorded as index_put over everything: the old value gets a zero gradient without
        # arithmetic on it (s * 0 would turn inf into nan)
        from filterbank.functional.shape import index_put

        if isinstance(value, Tensor) and value._requires_grad and grad_mode._enabled:
            return self._inplace("fill_", lambda s, v: index_put(s, ..., v.reshape(())), value)
        if grad_mode._enabled and self._requires_grad:
            return self._inplace("fill_", lambda s: index_put(s, ..., _scalar(value)))
        self._begin_write("fill_")
        self.data[...] = _scalar(value)
        return self

    def copy_(self, src) -> Tensor:
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor."""
        if isinstance(src, Tensor) and src._requires_grad and grad_mode._enabled or (
                grad_mode._enabled and self._requires_grad):
            from filterbank.functional.shape import index_put

            dt = self.data.dtype
            return self._inplace("copy_", lambda s, o: index_put(s, ..., _ew.cast(
                o if isinstance(o, Tensor) else Tensor(o), dt)), src)
        arr = src.data if isinstance(src, Tensor) else xp.asarray(src)
        arr = _backend.to_device(arr, self.device)  # copy_ copies across devices (PyTorch)
        mod = _backend.get_array_module(self.data)
        try:
            arr = mod.broadcast_to(arr, self.data.shape)
        except ValueError:
            raise RuntimeError(f"copy_: the source of shape {tuple(arr.shape)} can't be "
                               f"broadcast to the destination's shape {self.shape}") from None
        self._begin_write("copy_")
        mod.copyto(self.data, arr, casting="unsafe")
        return self

    def __setitem__(self, index, value):
        """``x[index] = value``. Recorded like PyTorch's ``index_put_`` when ``x`` or
        ``value`` requires grad (not on a leaf that requires grad: use ``fb.no_grad()``)."""
        from filterbank.functional.shape import index_put

        if grad_mode._enabled and (self._requires_grad or (
                isinstance(value, Tensor) and value._requires_grad)):
            self._inplace("__setitem__", lambda s, v: index_put(s, index, v), value)
            return
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple([i.data if isinstance(i, Tensor) else i for i in index])
        self._begin_write("__setitem__")
        self.data[index] = value.data if isinstance(value, Tensor) else value

    # --------------------------------------------------------------------- backward
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor into every leaf that requires grad.

        Args:
            grad: dL/dself; may be omitted only when this tensor holds one element (then 1).
            retain_graph: keep the saved buffers so backward can run through the graph again.
        """
        if not self._requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad and has no graph "
                "(did you forget requires_grad=True, or compute it under no_grad()?)"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward(): grad can be implicitly created only for scalar outputs; "
                    f"this tensor has shape {self.shape}, pass grad= of that shape"
                )
            seed = _backend.get_array_module(self.data).ones_like(self.data)
        else:
            seed = grad.data if isinstance(grad, Tensor) else \
                _backend.get_array_module(grad).asarray(grad)
            _backend.check_same_device("backward", self.data, seed)
            if seed.shape != self.data.shape:
                raise RuntimeError(
                    f"backward(): grad has shape {seed.shape} but the tensor has shape "
                    f"{self.shape}"
                )
            if seed.dtype != self.data.dtype:
                seed = seed.astype(self.data.dtype)
        _run_backward(self, seed, retain_graph)

    # --------------------------------------------------------------------- operators
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy ufuncs with a Tensor operand.

        With ``out=`` (``arr -= t``, the older tutorials' ``w.data -= lr * w.grad``) the ufunc
        runs on the arrays and writes into ``out``, so ``w.data`` stays an array. Without it,
        arithmetic and comparisons run the Tensor op (``arr * t`` is recorded, as ``t * arr``
        is); any other ufunc (``np.exp(t)``) gets the arrays, as through ``__array__``.
        """
        if method == "__call__" and not kwargs:
            op = _ufunc_ops().get(ufunc)
            if op is not None:
                return op(*inputs)
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple([o.data if isinstance(o, Tensor) else o for o in out])
        return getattr(ufunc, method)(*arrays, **kwargs)

    def __add__(self, other):
        return _ew.add(self, other)

    def __radd__(self, other):
        return _ew.add(other, self)

    def __sub__(self, other):
        return _ew.sub(self, other)

    def __rsub__(self, other):
        return _ew.sub(other, self)

    def __mul__(self, other):
        return _ew.mul(self, other)

    def __rmul__(self, other):
        return _ew.mul(other, self)

    def __truediv__(self, other):
        return _ew.div(self, other)

    def __rtruediv__(self, other):
        return _ew.div(other, self)

    def __pow__(self, other):
        return _ew.pow(self, other)

    def __rpow__(self, other):
        return _ew.pow(other, self)

    def __neg__(self):
        return _ew.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ew.abs(self)

    def __matmul__(self, other):
        return _mm.matmul(self, other)

    def __rmatmul__(self, other):
        return _mm.matmul(other, self)

    def __getitem__(self, index):
        return _shape.getitem(self, index)

    # comparisons return boolean tensors and carry no gradient
    def __lt__(self, other):
        return _ew.lt(self, other)

    def __le__(self, other):
        return _ew.le(self, other)

    def __gt__(self, other):
        return _ew.gt(self, other)

    def __ge__(self, other):
        return _ew.ge(self, other)

    def __eq__(self, other):  # elementwise, like NumPy and PyTorch
        return _ew.eq(self, other)

    def __ne__(self, other):
        return _ew.ne(self, other)

    # bitwise / logical operators on boolean and integer tensors (no gradient)
    def __and__(self, other):
        return _ew._compare(np.bitwise_and, self, other)

    def __rand__(self, other):
        return _ew._compare(np.bitwise_and, other, self)

    def __or__(self, other):
        return _ew._compare(np.bitwise_or, self, other)

    def __ror__(self, other):
        return _ew._compare(np.bitwise_or, other, self)

    def __xor__(self, other):
        return _ew._compare(np.bitwise_xor, self, other)

    def __rxor__(self, other):
        return _ew._compare(np.bitwise_xor, other, self)

    def __invert__(self):
        return Tensor._wrap(np.invert(self.data))

    # ---------------------------------------------------------------- method forms
    def exp(self):
        return _ew.exp(self)

    def log(self):
        return _ew.log(self)

    def sqrt(self):
        return _ew.sqrt(self)

    def abs(self):
        return _ew.abs(self)

    def sin(self):
        return _ew.sin(self)

    def cos(self):
        return _ew.cos(self)

    def tanh(self):
        return _ew.tanh(self)

    def sigmoid(self):
        return _ew.sigmoid(self)

    def relu(self):
        return _ew.relu(self)

    def clip(self, min=None, max=None):  # noqa: A002 - PyTorch's names
        return _ew.clip(self, min, max)

    clamp = clip

    def pow(self, exponent):
        return _ew.pow(self, exponent)

    def neg(self):
        return _ew.neg(self)

    def maximum(self, other):
        return _ew.maximum(self, other)

    def minimum(self, other):
        return _ew.minimum(self, other)

    def matmul(self, other):
        return _mm.matmul(self, other)

    # reductions: positional (dim, keepdim) as PyTorch; dim=/axis=, keepdim=/keepdims= both work
    def sum(self, *args, **kwargs):
        return _red.sum(self, *args, **kwargs)

    def mean(self, *args, **kwargs):
        return _red.mean(self, *args, **kwargs)

    def var(self, *args, **kwargs):
        return _red.var(self, *args, **kwargs)

    def std(self, *args, **kwargs):
        return _red.std(self, *args, **kwargs)

    def prod(self, *args, **kwargs):
        return _red.prod(self, *args, **kwargs)

    def norm(self, *args, **kwargs):
        return _red.norm(self, *args, **kwargs)

    def max(self, *args, **kwargs):
        """``max()``: the largest element; ``max(dim)``: ``(values, indices)``."""
        return _red.max(self, *args, **kwargs)

    def min(self, *args, **kwargs):
        return _red.min(self, *args, **kwargs)

    def amax(self, *args, **kwargs):
        return _red.amax(self, *args, **kwargs)

    def amin(self, *args, **kwargs):
        return _red.amin(self, *args, **kwargs)

    def argmax(self, *args, **kwargs):
        return _red.argmax(self, *args, **kwargs)

    def argmin(self, *args, **kwargs):
        return _red.argmin(self, *args, **kwargs)

    def topk(self, *args, **kwargs):
        return _red.topk(self, *args, **kwargs)

    def sort(self, *args, **kwargs):
        return _red.sort(self, *args, **kwargs)

    def argsort(self, *args, **kwargs):
        return _red.argsort(self, *args, **kwargs)

    def kthvalue(self, *args, **kwargs):
        return _red.kthvalue(self, *args, **kwargs)

    def median(self, *args, **kwargs):
        return _red.median(self, *args, **kwargs)

    def logsumexp(self, *args, **kwargs):
        return _red.logsumexp(self, *args, **kwargs)

    def softmax(self, *args, **kwargs):
        return _red.softmax(self, *args, **kwargs)

    def log_softmax(self, *args, **kwargs):
        return _red.log_softmax(self, *args, **kwargs)

    def all(self, dim=None, keepdim: bool = False):
        m = _backend.get_array_module(self.data)
        return Tensor._wrap(m.asarray(m.all(self.data, axis=dim, keepdims=keepdim)))

    def any(self, dim=None, keepdim: bool = False):
        m = _backend.get_array_module(self.data)
        return Tensor._wrap(m.asarray(m.any(self.data, axis=dim, keepdims=keepdim)))

    def reshape(self, *shape):
        return _shape.reshape(self, _shape_args(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        return _shape.flatten(self, start_dim, end_dim)

    def transpose(self, dim0, dim1):
        return _shape.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _shape.permute(self, _shape_args(dims))

    def squeeze(self, *args, **kwargs):
        return _shape.squeeze(self, *args, **kwargs)

    def unsqueeze(self, *args, **kwargs):
        return _shape.unsqueeze(self, *args, **kwargs)

    def expand(self, *shape):
        return _shape.expand(self, _shape_args(shape))

    def broadcast_to(self, shape):
        return _shape.expand(self, tuple(shape))

    def split(self, *args, **kwargs):
        return _shape.split(self, *args, **kwargs)

    def chunk(self, *args, **kwargs):
        return _shape.chunk(self, *args, **kwargs)

    # ---- indexing, shape and linear-algebra method forms (functional/index.py, shape.py,
    # matmul.py)
    def gather(self, dim, index):
        from filterbank.functional.index import gather

        return gather(self, dim, index)

    def scatter(self, dim, index, src=None, *, value=None):
        from filterbank.functional.index import scatter

        return scatter(self, dim, index, src, value=value)

    def scatter_add(self, dim, index, src):
        from filterbank.functional.index import scatter_add

        return scatter_add(self, dim, index, src)

    def masked_fill(self, mask, value):
        from filterbank.functional.index import masked_fill

        return masked_fill(self, mask, value)

    def masked_fill_(self, mask, value):
        """:meth:`masked_fill` in place (the in-place rules of :meth:`_inplace`)."""
        return self._inplace("masked_fill_", lambda s, v: s.masked_fill(mask, v), value)

    def scatter_(self, dim, index, src=None, *, value=None):
        return self._inplace("scatter_", lambda s, o: s.scatter(dim, index, o, value=value),
                             src)

    def scatter_add_(self, dim, index, src):
        return self._inplace("scatter_add_", lambda s, o: s.scatter_add(dim, index, o), src)

    def flip(self, *dims, **kwargs):
        if dims:
            return _shape.flip(self, _shape_args(dims), **kwargs)
        return _shape.flip(self, **kwargs)

    def repeat(self, *sizes):
        return _shape.repeat(self, *sizes)

    def view_as(self, other):
        return _shape.reshape(self, other.shape)

    def expand_as(self, other):
        return _shape.expand(self, other.shape)

    def t(self):
        """The transpose of a matrix (``torch.Tensor.t``); 0-d and 1-d tensors are returned
        as they are."""
        if self.ndim > 2:
            raise ValueError(f"t(): expected a tensor with at most 2 dims, got shape "
                             f"{self.shape} (use transpose(dim0, dim1) or permute)")
        return self if self.ndim < 2 else _shape.transpose(self, 0, 1)

    def mm(self, other):
        return _mm.mm(self, other)

    def bmm(self, other):
        return _mm.bmm(self, other)


_UFUNC_OPS: dict = {}


def _ufunc_ops() -> dict:
    """NumPy ufunc -> the Tensor op that ``ndarray OP tensor`` runs (see ``__array_ufunc__``)."""
    if not _UFUNC_OPS:
        _UFUNC_OPS.update({
            np.add: _ew.add, np.subtract: _ew.sub, np.multiply: _ew.mul,
            np.true_divide: _ew.div, np.power: _ew.pow, np.maximum: _ew.maximum,
            np.minimum: _ew.minimum, np.negative: _ew.neg, np.matmul: _mm.matmul,
            np.less: _ew.lt, np.less_equal: _ew.le, np.greater: _ew.gt,
            np.greater_equal: _ew.ge, np.equal: _ew.eq, np.not_equal: _ew.ne,
            np.bitwise_and: lambda a, b: _ew._compare(np.bitwise_and, a, b),
            np.bitwise_or: lambda a, b: _ew._compare(np.bitwise_or, a, b),
            np.bitwise_xor: lambda a, b: _ew._compare(np.bitwise_xor, a, b),
        })
    return _UFUNC_OPS


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
               "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


class _HookHandle:
    """What ``register_hook`` returns: ``remove()`` unregisters the hook."""

    __slots__ = ("_hooks", "_hook")

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _scalar(value):
    if isinstance(value, Tensor):
        if value.data.size != 1:
            raise RuntimeError(f"fill_: expected a number or a one-element tensor, got shape "
                               f"{value.shape}")
        return value.data.reshape(()).item()
    return value


def _saved_arrays(ctx):
    """The arrays an op saved for its backward (its attributes, one level into tuples)."""
    for k, v in ctx.__dict__.items():
        if k in ("parents", "out_meta", "needs_input_grad", "_saved_versions", "_grad_hooks",
                 "_retained_ref"):
            continue
        if isinstance(v, np.ndarray) or _backend.is_device_array(v):
            yield v
        elif isinstance(v, tuple | list):
            for u in v:
                if isinstance(u, np.ndarray) or _backend.is_device_array(u):
                    yield u


def _saved_array(ctx, root):
    """The first array ``ctx`` saved that shares memory with ``root``, or None."""
    for a in _saved_arrays(ctx):
        if type(a) is type(root) and np.may_share_memory(a, root):
            return a
    return None


def _check_versions(ctx) -> None:
    """Raise PyTorch's error when an array ``ctx`` saved for backward was modified in place
    after the op ran (an input, or its own output)."""
    for vc, v in ctx._saved_versions:
        if vc[0] == v:
            continue
        root = vc[1]() if vc[1] is not None else None
        if root is None:
            continue  # the modified array is gone, so this op did not save it
        a = _saved_array(ctx, root)
        if a is not None:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by "
                f"an inplace operation: [{a.dtype} {tuple(a.shape)}], saved by "
                f"{ctx.name}Backward, is at version {vc[0]}; expected version {v} instead. "
                f"Use out-of-place ops (or .clone()) before modifying it in place")


def _cuda_device(device):
    """``Tensor.cuda``/``Module.cuda``'s argument as a device: None (GPU 0), an index, a name
    or a device."""
    from filterbank.device import device as _device

    if device is None:
        return _device("cuda", 0)
    if isinstance(device, int) and not isinstance(device, bool):
        return _device("cuda", device)
    dev = _device(device)
    if dev.type != "cuda":
        raise ValueError(f"cuda(): expected a GPU index or a 'cuda' device, got {str(dev)!r}")
    return dev


def _shape_args(args):
    if len(args) == 1 and isinstance(args[0], tuple | list):
        return tuple(args[0])
    return tuple(args)


def _topological_order(root) -> list:
    """Graph nodes reachable from ``root`` (a Function, or a leaf Tensor), inputs before
    outputs. A node is the Function that computed a tensor, or a leaf tensor that requires
    grad (see ``Function.parents``).

    Iterative depth-first search (a recursive one would hit Python's recursion limit on long
    chains): a node is appended once all of its inputs have been.
    """
    order: list = []
    visited: set[int] = set()
    stack: list[tuple[object, bool]] = [(root, False)]
    push, pop, seen = stack.append, stack.pop, visited.add
    while stack:
        node, done = pop()
        if done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        seen(id(node))
        push((node, True))
        if isinstance(node, Tensor):
            continue  # a leaf
        parents = node.__dict__.get("parents")
        if parents is None:
            raise RuntimeError(
                f"backward(): trying to backward through the graph a second time (the "
                f"buffers of {node.__dict__.get('_released_name', 'an op')} were freed by "
                f"the first backward); call backward(retain_graph=True) the first time"
            )
        for p in parents:
            if p is not None and id(p) not in visited and (
                    not isinstance(p, Tensor) or p._requires_grad):
                push((p, False))
    return order


def _call_hooks(hooks, g):
    for hook in list(hooks):
        r = hook(Tensor._wrap(g))
        if r is not None:
            r = r.data if isinstance(r, Tensor) else _backend.get_array_module(g).asarray(r)
            if r.shape != g.shape:
                raise RuntimeError(f"a gradient hook returned shape {tuple(r.shape)}, expected "
                                   f"{tuple(g.shape)}")
            g = r.astype(g.dtype, copy=False)
    return g


def _accumulate(t: Tensor, g) -> None:
    if t.grad is None:
        t.grad = Tensor._wrap(g.copy())  # a copy: g may alias a buffer an op still holds
    else:
        t.grad.data += g


def _run_backward(root: Tensor, seed, retain_graph: bool) -> None:
    """Visit the graph in reverse topological order, summing each node's incoming gradients
    before its ``backward`` runs; gradients of broadcast inputs are summed back here."""
    start = root if root._ctx is None else root._ctx
    order = _topological_order(start)
    anomaly = _anomaly._enabled
    grads: dict[int, object] = {id(start): seed}
    pop_grad = grads.pop
    for node in reversed(order):
        g = pop_grad(id(node), None)  # popped: freed as soon as the node is done
        if g is None:
            continue
        if isinstance(node, Tensor):
            if node._hooks:
                g = _call_hooks(node._hooks, g)
            _accumulate(node, g)
            continue
        ctx = node
        d = ctx.__dict__
        hooks = d.get("_grad_hooks")
        if hooks:
            g = _call_hooks(hooks, g)
        for vc, v in ctx._saved_versions:
            if vc[0] != v:
                _check_versions(ctx)
                break
        retained = d.get("_retained_ref")
        if retained is not None and (t := retained()) is not None:
            _accumulate(t, g)
        in_grads = ctx.backward(g)
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        if anomaly:
            _anomaly.check_gradients(ctx, in_grads)
        for p, gp in zip(ctx.parents, in_grads):
            if gp is None or p is None:
                continue
            if isinstance(p, Tensor):
                if not p._requires_grad:
                    continue
                shape, dtype = p.data.shape, p.data.dtype
            else:
                shape, dtype = p.out_meta
            if gp.shape != shape:
                gp = _unbroadcast(gp, shape)
            if gp.dtype != dtype:
                gp = gp.astype(dtype)
            key = id(p)
            prev = grads.get(key)
            grads[key] = gp if prev is None else prev + gp
        if not retain_graph:
            ctx._release()


from filterbank.autograd import anomaly_mode as _anomaly  # noqa: E402
from filterbank.autograd.function import Function as _Function  # noqa: E402
from filterbank.autograd.function import unbroadcast as _unbroadcast  # noqa: E402
from filterbank.functional import elementwise as _ew  # noqa: E402
from filterbank.functional import reduce as _red  # noqa: E402
from filterbank.functional import shape as _shape  # noqa: E402

# the package re-exports the function ``matmul``, which shadows the module's attribute name
_mm = importlib.import_module("filterbank.functional.matmul")


class ToDevice(_Function):
    """``Tensor.to(device)``: a copy on another device; the gradient goes back to the source
    device."""

    keep_dtype = False

    def forward(self, x):
        self.source = _backend.device_of(x)
        return _backend.to_device(x, self.device)

    def backward(self, gy):
        return _backend.to_device(gy, self.source)
