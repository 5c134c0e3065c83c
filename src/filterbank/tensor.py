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

from filterbank import _allocator
from filterbank.autograd import grad_mode
from filterbank.backend import DEFAULT_DTYPE, xp

_allocator.tune()  # reuse freed array memory between steps instead of re-faulting it in


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
        return xp.asarray(data, dtype=np.dtype(dtype))
    arr = xp.asarray(data)
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

    __slots__ = ("data", "_requires_grad", "grad", "_ctx", "_retain_grad", "__weakref__")
    __array_priority__ = 1000  # so ndarray OP tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad: Tensor | None = None
        self._ctx = None
        self._retain_grad = False
        self._requires_grad = False
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
        body = np.array2string(np.asarray(self.data), separator=", ", precision=4,
                               prefix="tensor(")
        extra = ""
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
        """The underlying array (shared memory, like ``torch.Tensor.numpy``)."""
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
        return self.data.reshape(()).item()

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A tensor sharing the data, cut off from the graph."""
        return Tensor._wrap(self.data, False)

    def clone(self) -> Tensor:
        from filterbank.functional.elementwise import clone

        return clone(self)

    def astype(self, dtype) -> Tensor:
        from filterbank.functional.elementwise import cast

        return cast(self, np.dtype(dtype))

    to = astype

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def long(self) -> Tensor:
        return self.astype(np.int64)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        self._retain_grad = True
        if self._ctx is not None:  # the graph links Functions, not tensors: ask the creator
            self._ctx._retained_ref = weakref.ref(self)

    # in-place helpers (no graph): used by optimizers and initialisers
    def zero_(self) -> Tensor:
        self.data[...] = 0
        return self

    def fill_(self, value) -> Tensor:
        self.data[...] = value
        return self

    def copy_(self, other) -> Tensor:
        src = other.data if isinstance(other, Tensor) else xp.asarray(other)
        if src.shape != self.data.shape:
            src = np.broadcast_to(src, self.data.shape)
        self.data[...] = src
        return self

    def __setitem__(self, index, value):
        if self._requires_grad and grad_mode._enabled:
            raise RuntimeError(
                "in-place assignment to a tensor that requires grad; wrap it in fb.no_grad()"
            )
        if isinstance(index, Tensor):
            index = index.data
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
            seed = xp.ones_like(self.data)
        else:
            seed = grad.data if isinstance(grad, Tensor) else xp.asarray(grad)
            if seed.shape != self.data.shape:
                raise RuntimeError(
                    f"backward(): grad has shape {seed.shape} but the tensor has shape "
                    f"{self.shape}"
                )
            if seed.dtype != self.data.dtype:
                seed = seed.astype(self.data.dtype)
        _run_backward(self, seed, retain_graph)

    # --------------------------------------------------------------------- operators
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

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _red.sum(self, dim if dim is not None else axis, keepdim or keepdims)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _red.mean(self, dim if dim is not None else axis, keepdim or keepdims)

    def var(self, axis=None, keepdims=False, *, dim=None, keepdim=None, correction=1):
        return _red.var(self, dim if dim is not None else axis, keepdim or keepdims,
                        correction=correction)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _red.max(self, dim if dim is not None else axis, keepdim or keepdims)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _red.min(self, dim if dim is not None else axis, keepdim or keepdims)

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _red.argmax(self, dim if dim is not None else axis, keepdim or keepdims)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _red.argmin(self, dim if dim is not None else axis, keepdim or keepdims)

    def logsumexp(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _red.logsumexp(self, dim if dim is not None else axis, keepdim or keepdims)

    def softmax(self, axis=-1, *, dim=None):
        return _red.softmax(self, dim if dim is not None else axis)

    def log_softmax(self, axis=-1, *, dim=None):
        return _red.log_softmax(self, dim if dim is not None else axis)

    def reshape(self, *shape):
        return _shape.reshape(self, _shape_args(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        return _shape.flatten(self, start_dim, end_dim)

    def transpose(self, dim0, dim1):
        return _shape.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _shape.permute(self, _shape_args(dims))

    def squeeze(self, dim=None):
        return _shape.squeeze(self, dim)

    def unsqueeze(self, dim):
        return _shape.unsqueeze(self, dim)

    def expand(self, *shape):
        return _shape.expand(self, _shape_args(shape))

    def broadcast_to(self, shape):
        return _shape.expand(self, tuple(shape))

    def split(self, split_size_or_sections, dim=0):
        return _shape.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return _shape.chunk(self, chunks, dim)


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


def _accumulate(t: Tensor, g) -> None:
    if t.grad is None:
        t.grad = Tensor._wrap(xp.array(g))  # a copy: g may alias a buffer an op still holds
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
            _accumulate(node, g)
            continue
        ctx = node
        retained = ctx.__dict__.get("_retained_ref")
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
from filterbank.autograd.function import unbroadcast as _unbroadcast  # noqa: E402
from filterbank.functional import elementwise as _ew  # noqa: E402
from filterbank.functional import reduce as _red  # noqa: E402
from filterbank.functional import shape as _shape  # noqa: E402

# the package re-exports the function ``matmul``, which shadows the module's attribute name
_mm = importlib.import_module("filterbank.functional.matmul")
