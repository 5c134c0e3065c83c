"""Vector normalisation and cosine similarity along one dim, with PyTorch's ``eps`` rules."""

from __future__ import annotations

import math

import numpy as np

from filterbank.autograd.function import Function
from filterbank.backend import xp
from filterbank.functional._dims import dim_alias
from filterbank.functional.index import _dim
from filterbank.tensor import Tensor


def _norm(x, p: float, axis: int):
    """``||x||_p`` along ``axis`` (keepdims) and ``d||x||_p / dx`` as a function of it."""
    if p == 2:
        return xp.sqrt(xp.sum(x * x, axis=axis, keepdims=True))
    a = xp.abs(x)
    if p == 1:
        return xp.sum(a, axis=axis, keepdims=True)
    if math.isinf(p):
        return xp.max(a, axis=axis, keepdims=True)
    return xp.sum(a ** x.dtype.type(p), axis=axis, keepdims=True) ** x.dtype.type(1 / p)


def _norm_grad(x, n, p: float, axis: int):
    """``d||x||_p / dx`` given ``n = ||x||_p`` (keepdims), 0 where ``n == 0`` (PyTorch's
    convention for the non-differentiable point)."""
    zero = x.dtype.type(0)
    safe = xp.where(n == 0, x.dtype.type(1), n)
    if p == 2:
        return xp.where(n == 0, zero, x / safe)
    if p == 1:
        return xp.sign(x)
    if math.isinf(p):  # the largest |x_i| (ties share the gradient evenly)
        hit = (xp.abs(x) == n) & (n != 0)
        count = xp.maximum(hit.sum(axis=axis, keepdims=True), 1).astype(x.dtype)
        return xp.sign(x) * hit / count
    pm1 = x.dtype.type(p - 1)
    return xp.where(n == 0, zero, xp.sign(x) * (xp.abs(x) / safe) ** pm1)


class Normalize(Function):
    """y = x / max(||x||_p, eps).
    Where ||x|| >= eps: dL/dx = g/d - x * sum(g x) / d^2 * d||x||/dx  (d = ||x||, g = dL/dy);
    where ||x|| < eps the denominator is the constant eps: dL/dx = g / eps."""

    def forward(self, x):
        self.x = x
        self.n = _norm(x, self.p, self.axis)
        self.d = xp.maximum(self.n, x.dtype.type(self.eps))
        return x / self.d

    def backward(self, gy):
        x, n, d = self.x, self.n, self.d
        gx = gy / d
        live = n >= gy.dtype.type(self.eps)  # clamp_min passes the gradient where n >= eps
        dot = xp.sum(gy * x, axis=self.axis, keepdims=True) / (d * d)
        gx -= xp.where(live, dot, 0) * _norm_grad(x, n, self.p, self.axis)
        return gx


@dim_alias
def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """Scale vectors along ``dim`` to unit ``p``-norm (``torch.nn.functional.normalize``):

    ``y = x / max(||x||_p, eps)``, with ``||x||_p = (sum_i |x_i|^p)^(1/p)`` along ``dim``.
    ``eps`` keeps all-zero vectors finite (they stay zero).

    Backward: for ``||x|| >= eps``, ``dL/dx = g / ||x|| - x (g . x) / ||x||^2 *
    d||x||/dx`` (for p = 2, ``d||x||/dx = x / ||x||``: the radial part of ``g`` is removed);
    below ``eps`` the denominator is the constant ``eps``.

    Args:
        input: input tensor.
        p: the norm's exponent, > 0 (default 2); ``float('inf')`` for the max norm.
        dim: the dim of the vectors (default 1; ``axis`` is an alias).
        eps: the smallest denominator (default 1e-12).

    Shape:
        Output: ``input.shape``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.normalize(fb.tensor([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"normalize: expected a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"normalize: expected a floating-point tensor, got dtype {input.dtype}")
    p = float(p)
    if not p > 0:
        raise ValueError(f"normalize: expected p > 0, got {p}")
    eps = float(eps)
    if eps < 0:
        raise ValueError(f"normalize: expected eps >= 0, got {eps}")
    axis = _dim("normalize", dim, input.ndim)
    if input.ndim == 0:
        return Normalize.apply(input.reshape(1), p=p, axis=0, eps=eps).reshape(())
    return Normalize.apply(input, p=p, axis=axis, eps=eps)


class CosineSimilarity(Function):
    """y = sum(a * b) with a = x1 / max(||x1||, eps), b = x2 / max(||x2||, eps) (PyTorch).

    As in PyTorch, the clamp to ``eps`` changes the value only: the gradient goes through the
    norm as if unclamped, dL/dx1 = ga/d1 - x1 * sum(ga x1) / d1^2 * x1/||x1|| with
    ga = g * b, d1 = max(||x1||, eps) (and the same for x2)."""

    def forward(self, x1, x2):
        x1, x2 = xp.broadcast_arrays(x1, x2)
        ax, eps = self.axis, x1.dtype.type(self.eps)
        self.x1, self.x2 = x1, x2
        self.n1, self.n2 = _norm(x1, 2, ax), _norm(x2, 2, ax)
        self.d1, self.d2 = xp.maximum(self.n1, eps), xp.maximum(self.n2, eps)
        self.a, self.b = x1 / self.d1, x2 / self.d2
        return xp.sum(self.a * self.b, axis=ax)

    def backward(self, gy):
        g = xp.expand_dims(gy, self.axis)
        out = []
        for need, x, n, d, other in ((self.needs_input_grad[0], self.x1, self.n1, self.d1,
                                      self.b),
                                     (self.needs_input_grad[1], self.x2, self.n2, self.d2,
                                      self.a)):
            if not need:
                out.append(None)
                continue
            ga = g * other
            dot = xp.sum(ga * x, axis=self.axis, keepdims=True) / (d * d)
            out.append(ga / d - dot * _norm_grad(x, n, 2, self.axis))
        return tuple(out)


@dim_alias
def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between vectors along ``dim``
    (``torch.nn.functional.cosine_similarity``):

    ``y = sum(x1 / max(||x1||_2, eps) * x2 / max(||x2||_2, eps))`` along ``dim``.

    Each norm is clamped on its own (PyTorch >= 1.12; the older formula clamped the product
    of the norms), and the clamp affects the value only, not the gradient path (see
    :class:`CosineSimilarity`), matching PyTorch also for vectors shorter than ``eps``.

    Args:
        x1, x2: tensors that broadcast together.
        dim: the dim of the vectors (default 1; ``axis`` is an alias); negative counts from
            the end of the broadcast shape.
        eps: the smallest norm (default 1e-8).

    Shape:
        Output: the broadcast shape without ``dim``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.cosine_similarity(fb.tensor([[1.0, 0.0]]), fb.tensor([[1.0, 1.0]])).tolist()
        [0.7071067690849304]
    """
    for k, t in enumerate((x1, x2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"cosine_similarity: expected x{k + 1} to be a Tensor, got "
                            f"{type(t).__name__}")
        if t.dtype.kind != "f":
            raise TypeError(f"cosine_similarity: expected floating-point tensors, got dtype "
                            f"{t.dtype} for x{k + 1}")
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(f"cosine_similarity: shapes {x1.shape} and {x2.shape} do not "
                         f"broadcast") from None
    axis = _dim("cosine_similarity", dim, len(shape))
    if len(shape) == 0:
        raise ValueError("cosine_similarity: expected tensors with at least 1 dim")
    return CosineSimilarity.apply(x1, x2, axis=axis, eps=float(eps))
