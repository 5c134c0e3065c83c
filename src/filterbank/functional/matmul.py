"""Matrix product with NumPy's ``matmul`` semantics (batched, broadcast, 1-d cases)."""

from __future__ import annotations

from filterbank.autograd.function import Function, unbroadcast
from filterbank.backend import xp
from filterbank.tensor import Tensor


class MatMul(Function):
    """y = a @ b.  dL/da = dL/dy @ b^T,  dL/db = a^T @ dL/dy (batch dims summed back)."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need >= 1 dim, got {a.shape} and {b.shape}")
        ka = a.shape[-1]
        kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if ka != kb:
            raise ValueError(
                f"matmul: inner dimensions differ: {a.shape} @ {b.shape} ({ka} != {kb})"
            )
        self.a, self.b = a, b
        return xp.matmul(a, b)

    def backward(self, gy):
        a, b = self.a, self.b
        na, nb = self.needs_input_grad
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # put back the dims that 1-d operands dropped: (..., m, n) with m or n = 1
        if b.ndim == 1:
            gy = gy[..., None]
        if a.ndim == 1:
            gy = xp.expand_dims(gy, -2)
        ga = gb = None
        if na:
            ga = xp.matmul(gy, xp.swapaxes(b2, -1, -2))
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if nb:
            if b2.ndim == 2 and a2.ndim > 2:
                # shared weight: fold the batch into one large GEMM instead of a batched one
                k, n = b2.shape
                gb = a2.reshape(-1, k).T @ gy.reshape(-1, n)
            else:
                gb = xp.matmul(xp.swapaxes(a2, -1, -2), gy)
                gb = unbroadcast(gb, b2.shape)
            gb = gb.reshape(b.shape)
        return ga, gb


def matmul(a, b) -> Tensor:
    """Matrix product ``a @ b`` following ``numpy.matmul``.

    1-d operands are promoted to a row (left) or column (right) vector and the added dimension
    is removed from the result; leading dimensions broadcast as batch dimensions.

    Example:
        >>> import filterbank as fb
        >>> (fb.ones(2, 3) @ fb.ones(3)).tolist()
        [3.0, 3.0]
    """
    return MatMul.apply(a, b)
