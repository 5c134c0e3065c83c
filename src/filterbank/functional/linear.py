"""Fully connected layers as ops: ``linear`` (y = x W^T + b) and ``maxout``.

Both fold every leading dimension of ``x`` into one matrix so the work is a single GEMM,
whatever the batch layout (``(N, in)``, ``(N, L, in)``, ...).
"""

from __future__ import annotations

from filterbank import _parallel
from filterbank.autograd.function import Function
from filterbank.backend import get_array_module
from filterbank.tensor import Tensor


def _check_linear(name: str, x, weight, bias) -> None:
    if weight.ndim != 2:
        raise ValueError(f"{name}: expected a 2-d weight (out_features, in_features), got shape "
                         f"{tuple(weight.shape)}")
    if x.ndim == 0:
        raise ValueError(f"{name}: expected an input with at least 1 dim (..., in_features), "
                         f"got a 0-d tensor")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"{name}: expected the input's last dim to be in_features={weight.shape[1]}, got "
            f"{x.shape[-1]} (input shape {tuple(x.shape)}, weight shape {tuple(weight.shape)})"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"{name}: expected bias of shape ({weight.shape[0]},), got "
                         f"{tuple(bias.shape)}")


class Linear(Function):
    """y = x W^T + b.  dx = gy W,  dW = gy^T x,  db = sum over rows of gy.

    Small GEMMs (under ``_parallel.SMALL_GEMM`` multiply-adds, e.g. every layer of LeNet-5)
    run with one BLAS thread; see :func:`filterbank._parallel.blas_single_threaded`."""

    def forward(self, x, weight, bias=None):
        xp = get_array_module(x)  # NumPy, or CuPy for device arrays
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        self.x_shape = x.shape
        x2 = x.reshape(-1, x.shape[-1])
        self.small = x2.shape[0] * weight.shape[0] * weight.shape[1] < _parallel.SMALL_GEMM
        with _parallel.blas_single_threaded(self.small):
            if weight.shape[0] >= x2.shape[0]:
                # y^T = W x^T: OpenBLAS runs this orientation faster when the layer is at
                # least as wide as the batch (bench/layers.py --filter linear: forward 0.87
                # -> 1.01-1.04 of torch, --clock cpu); the transpose back to C order is one
                # pass over the small output, fused with the bias add
                yt = xp.matmul(weight, x2.T).T
                if bias is None:
                    y = xp.ascontiguousarray(yt)
                elif bias.dtype == yt.dtype:
                    y = xp.add(yt, bias, out=xp.empty(yt.shape, yt.dtype))
                else:
                    y = yt + bias
                bias = None
            else:
                y = xp.matmul(x2, weight.T)
        if bias is not None:
            if bias.dtype == y.dtype:
                y += bias
            else:
                y = y + bias
        # save only what the wanted gradients read: dx needs W, dW needs x
        self.weight = weight if need_x else None
        self.x2 = x2 if need_w else None
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, gy):
        xp = get_array_module(gy)
        need_x, need_w, need_b = (self.needs_input_grad + (False,))[:3]
        gy2 = gy.reshape(-1, gy.shape[-1])
        with _parallel.blas_single_threaded(self.small):
            gx = xp.matmul(gy2, self.weight).reshape(self.x_shape) if need_x else None
            gw = xp.matmul(gy2.T, self.x2) if need_w else None
        gb = gy2.sum(axis=0) if need_b else None
        return gx, gw, gb


class _MaxPieces(Function):
    """max over the last axis; the whole gradient goes to the winning (first maximal) entry."""

    def forward(self, z):
        xp = get_array_module(z)
        idx = xp.argmax(z, axis=-1)[..., None]
        self.idx, self.shape = idx, z.shape
        return xp.take_along_axis(z, idx, axis=-1)[..., 0]

    def backward(self, gy):
        xp = get_array_module(gy)
        g = xp.zeros(self.shape, gy.dtype)
        xp.put_along_axis(g, self.idx, gy[..., None], axis=-1)
        return g


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map of the last dimension: ``y = x W^T + b``.

    Backward (with ``X`` the input folded to ``(M, in_features)``):
    ``dL/dX = dL/dY W``, ``dL/dW = (dL/dY)^T X``, ``dL/db = sum_rows dL/dY``.

    Args:
        x: input ``(*, in_features)``.
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or None.

    Shape:
        - Input: ``(*, H_in)`` with ``H_in = in_features``; any number of leading dims.
        - Output: ``(*, H_out)`` with ``H_out = out_features``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.linear(fb.ones(2, 3), fb.ones(4, 3), fb.zeros(4)).shape
        (2, 4)
    """
    _check_linear("linear", x, weight, bias)
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


def maxout(x: Tensor, weight: Tensor, bias: Tensor | None, pieces: int) -> Tensor:
    """Maxout unit: the maximum of ``pieces`` affine maps, ``y_j = max_k (w_jk . x + b_jk)``.

    One GEMM computes all ``out_features * pieces`` affine outputs (row ``j * pieces + k`` of
    ``weight`` is piece ``k`` of unit ``j``); the gradient of each output flows only into its
    winning piece (the first one on a tie), as for max pooling.

    Args:
        x: input ``(*, in_features)``.
        weight: ``(out_features * pieces, in_features)``.
        bias: ``(out_features * pieces,)`` or None.
        pieces: number of affine pieces per output unit (k >= 1).

    Shape:
        - Input: ``(*, in_features)``. Output: ``(*, out_features)``,
          ``out_features = weight.shape[0] // pieces``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.maxout(fb.ones(2, 3), fb.ones(8, 3), None, pieces=2).shape
        (2, 4)
    """
    if not isinstance(pieces, int) or pieces < 1:
        raise ValueError(f"maxout: expected pieces to be a positive int, got {pieces!r}")
    _check_linear("maxout", x, weight, bias)
    if weight.shape[0] % pieces:
        raise ValueError(f"maxout: weight has {weight.shape[0]} rows, not a multiple of "
                         f"pieces={pieces}")
    z = linear(x, weight, bias)
    z = z.reshape(z.shape[:-1] + (weight.shape[0] // pieces, pieces))
    return _MaxPieces.apply(z)
