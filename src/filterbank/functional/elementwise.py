"""Elementwise ops: arithmetic, unary maths, activations that act pointwise, comparisons.

Gradients of broadcast operands are summed back to shape by the backward engine
(``autograd.function.unbroadcast``), so each backward here returns full-shape gradients.
"""

from __future__ import annotations

import numpy as np

from filterbank import _parallel
from filterbank._xp import on_host
from filterbank.autograd.function import Function
from filterbank.backend import get_array_module, xp
from filterbank.tensor import Tensor


def _check_broadcast(name, a, b):
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together"
        ) from None


def _threaded(ufunc, out_dtype, *arrays):
    """``ufunc(*arrays)`` for same-shape arrays, split over threads when large (see
    :mod:`filterbank._parallel`); None when the work is too small to split."""
    x = arrays[0]
    if not x.ndim or _parallel.parts(x.shape[0], x.size) == 1 or not on_host(*arrays):
        return None
    out = np.empty(x.shape, out_dtype)
    _parallel.run(lambda s, e: ufunc(*(a[s:e] for a in arrays), out=out[s:e]), x.shape[0],
                  x.size)
    return out


# --------------------------------------------------------------------------- binary
class Add(Function):
    def forward(self, a, b):
        if a.shape != b.shape:
            if a.ndim and b.ndim:  # a 0-d operand always broadcasts
                _check_broadcast("add", a, b)
        elif a.dtype == b.dtype and a.dtype.kind == "f":  # a residual connection
            out = _threaded(np.add, a.dtype, a, b)
            if out is not None:
                return out
        return a + b

    def backward(self, gy):
        return gy, gy


class Sub(Function):
    def forward(self, a, b):
        if a.shape != b.shape and a.ndim and b.ndim:  # a 0-d operand always broadcasts
            _check_broadcast("sub", a, b)
        return a - b

    def backward(self, gy):
        return gy, (-gy if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        if a.shape != b.shape and a.ndim and b.ndim:  # a 0-d operand always broadcasts
            _check_broadcast("mul", a, b)
        na, nb = self.needs_input_grad
        self.a = a if nb else None  # keep only what the wanted gradients read
        self.b = b if na else None
        return a * b

    def backward(self, gy):
        na, nb = self.needs_input_grad
        return (gy * self.b if na else None), (gy * self.a if nb else None)


class Div(Function):
    def forward(self, a, b):
        if a.shape != b.shape and a.ndim and b.ndim:  # a 0-d operand always broadcasts
            _check_broadcast("div", a, b)
        # keep only what the wanted gradients read (an in-place change of an array that is
        # not kept is then no error at backward, as in PyTorch)
        self.a, self.b = (a if self.needs_input_grad[1] else None), b
        return a / b

    def backward(self, gy):
        na, nb = self.needs_input_grad
        ga = gy / self.b if na else None
        gb = -gy * self.a / (self.b * self.b) if nb else None
        return ga, gb


class Pow(Function):
    """a ** b. d/da = b a^(b-1); d/db = a^b log(a) (defined where a > 0, 0 elsewhere)."""

    def forward(self, a, b):
        if a.shape != b.shape and a.ndim and b.ndim:  # a 0-d operand always broadcasts
            _check_broadcast("pow", a, b)
        self.a, self.b = a, b
        y = a**b
        self.y = y if self.needs_input_grad[1] else None  # only d/db reads the output
        return y

    def backward(self, gy):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        ga = gy * b * a ** (b - 1) if na else None
        gb = None
        if nb:
            safe = xp.where(a > 0, a, 1)
            gb = gy * self.y * xp.log(safe)
        return ga, gb


class Maximum(Function):
    """Elementwise max. Subgradient at a tie: the first argument ``a`` receives the gradient."""

    def forward(self, a, b):
        if a.shape != b.shape and a.ndim and b.ndim:  # a 0-d operand always broadcasts
            _check_broadcast("maximum", a, b)
        self.mask = a >= b
        return xp.maximum(a, b)

    def backward(self, gy):
        z = gy.dtype.type(0)  # a scalar: mixes with host and device arrays alike
        return xp.where(self.mask, gy, z), xp.where(self.mask, z, gy)


class Minimum(Function):
    """Elementwise min. Subgradient at a tie: the first argument ``a`` receives the gradient."""

    def forward(self, a, b):
        if a.shape != b.shape and a.ndim and b.ndim:  # a 0-d operand always broadcasts
            _check_broadcast("minimum", a, b)
        self.mask = a <= b
        return xp.minimum(a, b)

    def backward(self, gy):
        z = gy.dtype.type(0)  # a scalar: mixes with host and device arrays alike
        return xp.where(self.mask, gy, z), xp.where(self.mask, z, gy)


class Where(Function):
    def forward(self, a, b):
        try:
            np.broadcast_shapes(self.cond.shape, a.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"where: condition {self.cond.shape}, a {a.shape} and b {b.shape} cannot be "
                f"broadcast together"
            ) from None
        return xp.where(self.cond, a, b)

    def backward(self, gy):
        z = gy.dtype.type(0)  # a scalar: mixes with host and device arrays alike
        na, nb = self.needs_input_grad
        return (xp.where(self.cond, gy, z) if na else None,
                xp.where(self.cond, z, gy) if nb else None)


def add(a, b) -> Tensor:
    """Elementwise sum with NumPy broadcasting (the ``+`` operator).

    ``y = a + b``; backward: ``dL/da = dL/dy``, ``dL/db = dL/dy``.

    Args:
        a, b: Tensors, NumPy arrays or Python numbers (constants take the tensors' dtype).

    Shape:
        Output: ``broadcast(a.shape, b.shape)``; the gradient of a broadcast operand is summed
        back to its shape.

    Example:
        >>> import filterbank as fb
        >>> fb.add(fb.ones(2, 3), fb.tensor([0.0, 1.0, 2.0]))[0].tolist()
        [1.0, 2.0, 3.0]
    """
    return Add.apply(a, b)


def sub(a, b) -> Tensor:
    """Elementwise difference with NumPy broadcasting (the ``-`` operator).

    ``y = a - b``; backward: ``dL/da = dL/dy``, ``dL/db = -dL/dy``.

    Args:
        a, b: Tensors, NumPy arrays or Python numbers (constants take the tensors' dtype).

    Shape:
        Output: ``broadcast(a.shape, b.shape)``; the gradient of a broadcast operand is summed
        back to its shape.

    Example:
        >>> import filterbank as fb
        >>> fb.sub(1.0, fb.tensor([0.5, 2.0])).tolist()
        [0.5, -1.0]
    """
    return Sub.apply(a, b)


def mul(a, b) -> Tensor:
    """Elementwise product with NumPy broadcasting (the ``*`` operator).

    ``y = a b``; backward: ``dL/da = dL/dy * b``, ``dL/db = dL/dy * a``.

    Args:
        a, b: Tensors, NumPy arrays or Python numbers (constants take the tensors' dtype).

    Shape:
        Output: ``broadcast(a.shape, b.shape)``; the gradient of a broadcast operand is summed
        back to its shape.

    Example:
        >>> import filterbank as fb
        >>> (2 * fb.tensor([1.0, 2.0])).tolist()
        [2.0, 4.0]
    """
    return Mul.apply(a, b)


def div(a, b) -> Tensor:
    """Elementwise quotient with NumPy broadcasting (the ``/`` operator).

    ``y = a / b``; backward: ``dL/da = dL/dy / b``, ``dL/db = -dL/dy * a / b^2``.

    Args:
        a, b: Tensors, NumPy arrays or Python numbers (constants take the tensors' dtype).

    Shape:
        Output: ``broadcast(a.shape, b.shape)``; the gradient of a broadcast operand is summed
        back to its shape.

    Example:
        >>> import filterbank as fb
        >>> fb.div(fb.tensor([1.0, 3.0]), 2).tolist()
        [0.5, 1.5]
    """
    return Div.apply(a, b)


def pow(a, b) -> Tensor:  # noqa: A001 - mirrors torch.pow
    """Elementwise power with NumPy broadcasting (the ``**`` operator).

    ``y = a^b``; backward: ``dL/da = dL/dy * b a^(b-1)``, ``dL/db = dL/dy * a^b log(a)``
    (taken as 0 where ``a <= 0``).

    Args:
        a, b: Tensors, NumPy arrays or Python numbers (constants take the tensors' dtype).

    Shape:
        Output: ``broadcast(a.shape, b.shape)``; the gradient of a broadcast operand is summed
        back to its shape.

    Example:
        >>> import filterbank as fb
        >>> (fb.tensor([2.0, 3.0]) ** 2).tolist()
        [4.0, 9.0]
    """
    return Pow.apply(a, b)


def maximum(a, b) -> Tensor:
    """Elementwise maximum with NumPy broadcasting.

    ``y = max(a, b)``; backward: ``dL/dy`` goes to the larger operand. On a tie (``a == b``)
    the whole gradient goes to ``a``, the first argument (PyTorch splits it in halves).

    Args:
        a, b: Tensors, NumPy arrays or Python numbers (constants take the tensors' dtype).

    Shape:
        Output: ``broadcast(a.shape, b.shape)``; the gradient of a broadcast operand is summed
        back to its shape.

    Example:
        >>> import filterbank as fb
        >>> fb.maximum(fb.tensor([1.0, 5.0]), 3.0).tolist()
        [3.0, 5.0]
    """
    return Maximum.apply(a, b)


def minimum(a, b) -> Tensor:
    """Elementwise minimum with NumPy broadcasting.

    ``y = min(a, b)``; backward: ``dL/dy`` goes to the smaller operand. On a tie the whole
    gradient goes to ``a``, the first argument (PyTorch splits it in halves).

    Args:
        a, b: Tensors, NumPy arrays or Python numbers (constants take the tensors' dtype).

    Shape:
        Output: ``broadcast(a.shape, b.shape)``; the gradient of a broadcast operand is summed
        back to its shape.

    Example:
        >>> import filterbank as fb
        >>> fb.minimum(fb.tensor([1.0, 5.0]), 3.0).tolist()
        [1.0, 3.0]
    """
    return Minimum.apply(a, b)


def where(condition, a, b) -> Tensor:
    """Pick from ``a`` where ``condition`` holds, else from ``b``.

    ``y = a if condition else b``; backward: ``dL/dy`` flows to the chosen side only.

    Args:
        condition: boolean Tensor or array (no gradient).
        a, b: Tensors, arrays or numbers.

    Shape:
        Output: ``broadcast(condition.shape, a.shape, b.shape)``.

    Example:
        >>> import filterbank as fb
        >>> x = fb.tensor([-1.0, 2.0])
        >>> fb.where(x > 0, x, 0.0).tolist()
        [0.0, 2.0]
    """
    if isinstance(condition, Tensor):
        cond = condition.data
    else:  # a host mask or list: where the tensors are
        arrays = [t.data for t in (a, b) if isinstance(t, Tensor)]
        cond = get_array_module(*arrays).asarray(condition)
    return Where.apply(a, b, cond=cond.astype(bool, copy=False))


# ---------------------------------------------------------------------------- unary
class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Exp(Function):
    def forward(self, x):
        self.y = xp.exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, x):
        self.x = x
        return xp.log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Function):
    def forward(self, x):
        self.y = xp.sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Abs(Function):
    """|x|; the subgradient at 0 is 0 (sign(0) = 0), as in PyTorch."""

    def forward(self, x):
        self.x = x
        return xp.abs(x)

    def backward(self, gy):
        return gy * xp.sign(self.x)


class Sin(Function):
    def forward(self, x):
        self.x = x
        return xp.sin(x)

    def backward(self, gy):
        return gy * xp.cos(self.x)


class Cos(Function):
    def forward(self, x):
        self.x = x
        return xp.cos(x)

    def backward(self, gy):
        return -gy * xp.sin(self.x)


class Tanh(Function):
    def forward(self, x):
        self.y = xp.tanh(x)
        return self.y

    def backward(self, gy):
        y = self.y
        return gy * (1 - y * y)


def _stable_sigmoid(x):
    # 1/(1+exp(-x)) overflows for very negative x; this form never does.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Sigmoid(Function):
    def forward(self, x):
        self.y = _stable_sigmoid(x)
        return self.y

    def backward(self, gy):
        y = self.y
        return gy * y * (1 - y)


#: ``np.maximum(x, 0)`` with a scalar 0 misses NumPy's SIMD loop (2.4 on x86-64: 2.6-2.7x slower
#: than against a contiguous array of zeros, ``bench/overhead.py --relu-zero``), so ReLU takes
#: max against slices of this buffer
_RELU_CHUNK = 1 << 18
_relu_zeros: dict = {}


def _relu_host(x, y, mask) -> None:
    """``y = max(x, 0)`` (NaN stays NaN) and ``mask = x > 0`` for contiguous host arrays, in
    chunks of :data:`_RELU_CHUNK` elements against a zero buffer."""
    zeros = _relu_zeros.get(x.dtype)
    if zeros is None:
        zeros = _relu_zeros[x.dtype] = np.zeros(_RELU_CHUNK, x.dtype)
    xf, yf = x.reshape(-1), y.reshape(-1)
    mf = None if mask is None else mask.reshape(-1)
    n = xf.size
    for s in range(0, n, _RELU_CHUNK):
        e = min(s + _RELU_CHUNK, n)
        np.maximum(xf[s:e], zeros[:e - s], out=yf[s:e])
        if mf is not None:
            np.greater(xf[s:e], 0, out=mf[s:e])


class ReLU(Function):
    def forward(self, x):
        need = self.needs_input_grad[0]
        if (x.dtype.kind == "f" and x.flags.c_contiguous and x.size
                and type(x) is np.ndarray and _parallel.parts(x.shape[0] if x.ndim else 1,
                                                              x.size) == 1):
            y = np.empty(x.shape, x.dtype)
            mask = np.empty(x.shape, bool) if need else None
            _relu_host(x, y, mask)
            self.mask = mask
            return y
        if x.ndim and _parallel.parts(x.shape[0], x.size) > 1 and on_host(x):
            y = np.empty(x.shape, x.dtype)
            mask = np.empty(x.shape, bool) if need else None

            def part(s, e):
                if need:
                    np.greater(x[s:e], 0, out=mask[s:e])
                np.maximum(x[s:e], 0, out=y[s:e])

            _parallel.run(part, x.shape[0], x.size)
        else:
            mask = x > 0 if need else None
            y = xp.maximum(x, 0)
        # a 1-byte mask, not the 4-byte output: the output is often freed by the next op
        # (a convolution or pooling keeps its own copy), the mask is all backward needs
        self.mask = mask
        return y

    def backward(self, gy):
        out = _threaded(np.multiply, gy.dtype, gy, self.mask)
        return gy * self.mask if out is None else out


class Clip(Function):
    """Clamp to [lo, hi]; the gradient is 1 inside the interval (ends included), 0 outside."""

    def forward(self, x):
        lo, hi = self.lo, self.hi
        self.mask = get_array_module(x).ones(x.shape, bool)
        if lo is not None:
            self.mask &= x >= lo
        if hi is not None:
            self.mask &= x <= hi
        return xp.clip(x, lo, hi).astype(x.dtype, copy=False)

    def backward(self, gy):
        return gy * self.mask


class Cast(Function):
    keep_dtype = False  # changing the dtype is the point

    def forward(self, x):
        self.src = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.src)


class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


def neg(x) -> Tensor:
    """Elementwise negation (unary ``-``).

    ``y = -x``; backward: ``dL/dx = -dL/dy``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> (-fb.tensor([1.0, -2.0])).tolist()
        [-1.0, 2.0]
    """
    return Neg.apply(x)


def exp(x) -> Tensor:
    """Elementwise exponential.

    ``y = e^x``; backward: ``dL/dx = dL/dy * y``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.exp(fb.tensor([0.0])).tolist()
        [1.0]
    """
    return Exp.apply(x)


def log(x) -> Tensor:
    """Elementwise natural logarithm.

    ``y = ln x``; backward: ``dL/dx = dL/dy / x``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.log(fb.tensor([1.0])).tolist()
        [0.0]
    """
    return Log.apply(x)


def sqrt(x) -> Tensor:
    """Elementwise square root.

    ``y = sqrt(x)``; backward: ``dL/dx = dL/dy / (2 y)``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.sqrt(fb.tensor([4.0])).tolist()
        [2.0]
    """
    return Sqrt.apply(x)


def abs(x) -> Tensor:  # noqa: A001 - mirrors torch.abs
    """Elementwise absolute value.

    ``y = |x|``; backward: ``dL/dx = dL/dy * sign(x)`` (0 at ``x = 0``, as PyTorch).

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.abs(fb.tensor([-2.0, 3.0])).tolist()
        [2.0, 3.0]
    """
    return Abs.apply(x)


def sin(x) -> Tensor:
    """Elementwise sine.

    ``y = sin x``; backward: ``dL/dx = dL/dy * cos x``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.sin(fb.tensor([0.0])).tolist()
        [0.0]
    """
    return Sin.apply(x)


def cos(x) -> Tensor:
    """Elementwise cosine.

    ``y = cos x``; backward: ``dL/dx = -dL/dy * sin x``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.cos(fb.tensor([0.0])).tolist()
        [1.0]
    """
    return Cos.apply(x)


def tanh(x) -> Tensor:
    """Elementwise hyperbolic tangent.

    ``y = tanh x``; backward: ``dL/dx = dL/dy * (1 - y^2)``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.tanh(fb.tensor([0.0])).tolist()
        [0.0]
    """
    return Tanh.apply(x)


def sigmoid(x) -> Tensor:
    """Logistic sigmoid, computed without overflow for any ``x``.

    ``y = 1 / (1 + e^-x)``; backward: ``dL/dx = dL/dy * y (1 - y)``.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.sigmoid(fb.tensor([0.0, 1000.0])).tolist()
        [0.5, 1.0]
    """
    return Sigmoid.apply(x)


def relu(x) -> Tensor:
    """Rectified linear unit.

    ``y = max(x, 0)``; backward: ``dL/dx = dL/dy`` where ``x > 0``, else 0 (also at 0,
    as PyTorch).

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.relu(fb.tensor([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    return ReLU.apply(x)


def clip(x, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Clamp into ``[min, max]`` (``clamp`` is an alias; either bound may be None).

    ``y = min(max(x, min), max)``; backward: ``dL/dx = dL/dy`` where ``min <= x <= max``
    (the bounds included, as ``torch.clamp``), else 0.

    Args:
        x: input tensor.
        min, max: bounds (numbers); at least one must be given.

    Shape:
        Output has the input's shape.

    Example:
        >>> import filterbank as fb
        >>> fb.clip(fb.tensor([-2.0, 0.5, 2.0]), -1.0, 1.0).tolist()
        [-1.0, 0.5, 1.0]
    """
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    return Clip.apply(x, lo=min, hi=max)


clamp = clip


def cast(x, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (the gradient is converted back); ``x`` itself when it
    already has that dtype."""
    dtype = np.dtype(dtype)
    if isinstance(x, Tensor) and x.dtype == dtype:
        return x
    return Cast.apply(x, dtype=dtype)


def clone(x) -> Tensor:
    """A copy of ``x`` that stays in the graph (the gradient passes through unchanged)."""
    return Clone.apply(x)


# ----------------------------------------------------------------------- comparisons
def _compare(op, a, b) -> Tensor:
    """Comparisons give boolean tensors and carry no gradient (they are not differentiable)."""
    av = a.data if isinstance(a, Tensor) else a
    bv = b.data if isinstance(b, Tensor) else b
    out = op(av, bv)
    return Tensor._wrap(get_array_module(out).asarray(out))  # a 0-d array, not a scalar


def lt(a, b) -> Tensor:
    return _compare(np.less, a, b)


def le(a, b) -> Tensor:
    return _compare(np.less_equal, a, b)


def gt(a, b) -> Tensor:
    return _compare(np.greater, a, b)


def ge(a, b) -> Tensor:
    return _compare(np.greater_equal, a, b)


def eq(a, b) -> Tensor:
    return _compare(np.equal, a, b)


def ne(a, b) -> Tensor:
    return _compare(np.not_equal, a, b)
