"""Normalisation: batch, layer, group, instance and local response normalisation.

Every "normalise over some axes" op here is the same maths (Ioffe & Szegedy 2015):

    xhat = (x - mean) / sqrt(var + eps)          (biased variance over the normalised axes)
    y    = weight * xhat + bias
    dx   = inv_std * (g - mean(g) - xhat * mean(g * xhat)),   g = weight * dy

with the means taken over the same axes. Two canonical views make every variant one reshape
away, so no op transposes or copies its input:

* statistics: batch norm views ``x`` as ``(N, C, L)`` and reduces over axes (0, 2); layer,
  group and instance norm view it as ``(R, L)`` rows (one row per sample, group or instance)
  and reduce over axis 1;
* affine parameters: ``x`` viewed as ``(A, W, B)`` with the parameter along ``W``
  (``(N, C, L)`` for per-channel parameters, ``(M, K, 1)`` for layer norm's trailing-shape ones),
  so ``dweight`` and ``dbias`` are reductions over axes (0, 2).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from filterbank import _parallel
from filterbank.autograd.function import Function
from filterbank.backend import get_array_module, is_device_array, xp
from filterbank.tensor import Tensor

__all__ = [
    "batch_norm", "group_norm", "instance_norm", "layer_norm", "local_response_norm",
]


# ----------------------------------------------------------------------- reductions
def _sum02(a):
    """Sum of a ``(P, Q, L)`` array over axes 0 and 2 -> ``(Q,)``."""
    if type(a) is not np.ndarray:  # a device array: the GPU library's reduction
        return a.sum(axis=(0, 2))
    if a.shape[2] == 1:
        return a[:, :, 0].sum(axis=0)
    # a matrix-vector product with ones runs at memory speed (BLAS), ~2x numpy's sum; our
    # threads split it, so BLAS's own must not (see filterbank._parallel)
    ones = xp.ones(a.shape[2], a.dtype)
    with _parallel.blas_single_threaded():
        parts = _parallel.run(lambda s, e: (a[s:e] @ ones).sum(axis=0), a.shape[0], a.size)
    return parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])


def _dot02(a, b):
    """``sum(a * b)`` over axes 0 and 2 of ``(P, Q, L)`` arrays -> ``(Q,)``, no temporary."""
    if type(a) is not np.ndarray:
        return get_array_module(a).einsum("pql,pql->q", a, b)
    parts = _parallel.run(lambda s, e: xp.einsum("pql,pql->q", a[s:e], b[s:e]), a.shape[0],
                          a.size)
    return parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])


# Batch norm's elementwise passes run in cache-sized blocks of samples of the (P, Q*L) view
# (one row per sample, channels and pixels along it): NumPy has no fused multiply-add, so
# `a*k + b*m + c` written plainly streams full-size temporaries through memory, while a block
# (~64K values, one vectorised ufunc call per step) stays in L2 between the chained calls.
# Per-channel vectors are repeated along a row (Q*L values, 1/P of the data) so that every
# ufunc call runs one long contiguous loop; broadcasting a (P*Q, 1) column instead runs one
# short loop per channel row, 1.5-2x slower when L is small (late ResNet stages, L = 16).
# Each input is read once and the output written once. The loop is cache blocking, not
# per-sample work; large arrays are also split into a few ranges of samples that threads
# process side by side.
_BLOCK = 1 << 16
#: batch norm centres x explicitly when some channel has mean^2 > _FAR_MEAN * var (|mean| >
#: std): the folded forms then lose at most as much as they would for a unit-scale signal
_FAR_MEAN = 1.0


def _blocks(start: int, stop: int, width: int):
    step = max(1, _BLOCK // max(width, 1))
    for s in range(start, stop, step):
        yield s, min(stop, s + step)


def _rows(a):
    """``(P, Q, L)`` -> the ``(P, Q*L)`` view (a copy only if ``a`` is not contiguous)."""
    return a.reshape(a.shape[0], -1)


def _moments(x3):
    """Per-channel mean and biased variance of a ``(P, Q, L)`` array over axes 0 and 2, reading
    ``x`` once.

    Each cache-sized block is shifted by a per-channel estimate ``K`` of the mean (the first
    sample's mean) before ``sum(x - K)`` and ``sum((x - K)^2)`` are taken, and the block sums
    are accumulated in float64: ``var = E[(x-K)^2] - E[x-K]^2`` then only cancels as much as
    ``K`` misses the mean, whereas ``E[x^2] - E[x]^2`` in float32 loses every digit of the
    variance when the mean is large (x = 1000 + N(0, 1))."""
    if type(x3) is not np.ndarray:  # a device array: two plain passes (no host blocks)
        dev = get_array_module(x3)
        mean = x3.mean(axis=(0, 2), dtype=dev.float64)
        xc = x3 - mean.astype(x3.dtype)[:, None]
        d = xc.mean(axis=(0, 2), dtype=dev.float64)
        var = dev.maximum((xc * xc).mean(axis=(0, 2), dtype=dev.float64) - d * d, 0.0)
        return (mean + d).astype(x3.dtype), var.astype(x3.dtype)
    p, q, length = x3.shape
    x2 = _rows(x3)
    width = q * length
    shift = x3[0].mean(axis=1, dtype=xp.float64)
    k = xp.repeat(shift.astype(x3.dtype), length)

    def part(start, stop):
        s1, s2 = xp.zeros(q, xp.float64), xp.zeros(q, xp.float64)
        buf = xp.empty((min(max(1, _BLOCK // max(width, 1)), stop - start), width), x3.dtype)
        for s, e in _blocks(start, stop, width):
            b = buf[:e - s]
            xp.subtract(x2[s:e], k, out=b)
            b3 = b.reshape(e - s, q, length)
            s1 += xp.einsum("pql->q", b3)
            s2 += xp.einsum("pql,pql->q", b3, b3)
        return s1, s2

    (s1, s2), *rest = _parallel.run(part, p, x3.size)
    for a, b in rest:
        s1, s2 = s1 + a, s2 + b
    n = p * length
    d = s1 / n
    # the shift was applied in x's dtype: add back exactly what was subtracted
    mean = k[::length].astype(xp.float64) + d
    var = xp.maximum(s2 / n - d * d, 0.0)
    return mean.astype(x3.dtype), var.astype(x3.dtype)


def _affine_centered(x3, mean, scale, shift):
    """``(x - mean) * scale + shift`` per channel, blockwise, x read once; ``mean`` None skips
    the centring (``shift`` then holds ``-mean * scale``) and ``shift`` may be None."""
    if type(x3) is not np.ndarray:
        dev, dt = get_array_module(x3), x3.dtype
        y = x3 if mean is None else x3 - dev.asarray(mean, dt)[:, None]
        y = y * dev.asarray(scale, dt)[:, None]
        if shift is not None:
            y += dev.asarray(shift, dt)[:, None]
        return y
    p, q, length = x3.shape
    out = xp.empty(x3.shape, x3.dtype)
    x2, o2 = _rows(x3), _rows(out)
    m = None if mean is None else xp.repeat(xp.asarray(mean, x3.dtype), length)
    k = xp.repeat(xp.asarray(scale, x3.dtype), length)
    c = None if shift is None else xp.repeat(xp.asarray(shift, x3.dtype), length)

    def part(start, stop):
        for s, e in _blocks(start, stop, q * length):
            o = o2[s:e]
            if m is None:
                xp.multiply(x2[s:e], k, out=o)
            else:
                xp.subtract(x2[s:e], m, out=o)
                o *= k
            if c is not None:
                o += c

    _parallel.run(part, p, out.size)
    return out


def _sum_dot_centered(g3, x3, mean):
    """``(sum(g), sum(g * (x - mean)))`` over axes 0 and 2 of ``(P, Q, L)`` arrays, in one
    pass over ``g`` and ``x`` (``x - mean`` is formed per block, in cache); ``mean`` None:
    ``(sum(g), sum(g * x))``."""
    if type(g3) is not np.ndarray:
        dev = get_array_module(g3)
        xc = x3 if mean is None else x3 - dev.asarray(mean, x3.dtype)[:, None]
        return g3.sum(axis=(0, 2)), dev.einsum("pql,pql->q", g3, xc)
    p, q, length = g3.shape
    width = q * length
    g2, x2 = _rows(g3), _rows(x3)
    m = None if mean is None else xp.repeat(xp.asarray(mean, x3.dtype), length)

    def part(start, stop):
        sg, sgx = xp.zeros(q, g3.dtype), xp.zeros(q, g3.dtype)
        if m is not None:
            buf = xp.empty((min(max(1, _BLOCK // max(width, 1)), stop - start), width),
                           x3.dtype)
        for s, e in _blocks(start, stop, width):
            if m is None:
                b = x2[s:e]
            else:
                b = buf[:e - s]
                xp.subtract(x2[s:e], m, out=b)
            gb = g2[s:e].reshape(e - s, q, length)
            sg += xp.einsum("pql->q", gb)
            sgx += xp.einsum("pql,pql->q", gb, b.reshape(e - s, q, length))
        return sg, sgx

    (sg, sgx), *rest = _parallel.run(part, p, g3.size)
    for a, b in rest:
        sg, sgx = sg + a, sgx + b
    return sg, sgx


def _dx_centered(g3, x3, mean, k, kc, c):
    """``g * k - (x - mean) * kc + c`` per channel, blockwise: g and x read once, dx written
    once; ``mean`` None skips the centring (``c`` then holds ``mean * kc`` too)."""
    if type(g3) is not np.ndarray:
        dev, dt = get_array_module(g3), g3.dtype
        k, kc, c = (dev.asarray(v, dt)[:, None] for v in (k, kc, c))
        xc = x3 if mean is None else x3 - dev.asarray(mean, dt)[:, None]
        return g3 * k - xc * kc + c
    p, q, length = g3.shape
    width = q * length
    dtype = g3.dtype
    out = xp.empty(g3.shape, dtype)
    g2, x2, o2 = _rows(g3), _rows(x3), _rows(out)
    m = None if mean is None else xp.repeat(xp.asarray(mean, dtype), length)
    k, kc, c = (xp.repeat(xp.asarray(v, dtype), length) for v in (k, kc, c))

    def part(start, stop):
        buf = xp.empty((min(max(1, _BLOCK // max(width, 1)), stop - start), width), dtype)
        for s, e in _blocks(start, stop, width):
            o, b = o2[s:e], buf[:e - s]
            xp.multiply(g2[s:e], k, out=o)
            if m is None:
                xp.multiply(x2[s:e], kc, out=b)
            else:
                xp.subtract(x2[s:e], m, out=b)
                b *= kc
            o -= b
            o += c

    _parallel.run(part, p, out.size)
    return out


def _col(v):
    """A parameter shaped to broadcast along axis 1 of a ``(P, Q, L)`` view."""
    return v.reshape(-1, 1)


# ------------------------------------------------------------------------- batch norm
class BatchNorm(Function):
    """Batch normalisation over axes (0, 2, 3, ...) with a fused backward.

    Training (batch statistics), per channel c over the n = N * L values, with
    ``xc = x - mean`` (never stored: forward saves x, mean and inv_std, reads x twice (shifted
    moments, then ``y = x * scale + shift``) and writes y once; backward reads dy and x for the
    two sums, then dy and x again for dx; xc is formed per block only for channels' means far
    from zero)::

        dbias = sum(dy)     dweight = inv_std * sum(dy * xc)
        dx    = k * dy - xc * (k * inv_std * dweight / n) - k * dbias / n,  k = weight * inv_std

    Evaluation (running statistics are constants): ``y = x * scale + shift`` with
    ``scale = weight / sqrt(running_var + eps)``, so ``dx = dy * scale``.
    """

    def forward(self, x, weight, bias):
        xp = get_array_module(x)  # NumPy, or CuPy (the helpers above take their own path for it)
        x3 = x.reshape(x.shape[0], x.shape[1], -1)
        self.shape = x.shape
        self.weight = weight
        running, self.running = self.running, None  # buffers are not needed for backward
        if self.training:
            n = x3.shape[0] * x3.shape[2]
            mean, var = _moments(x3)
            inv_std = 1.0 / xp.sqrt(var + self.eps)
            if running is not None:
                rm, rv, m = running
                # torch keeps the unbiased variance: var * n / (n - 1)
                rm[...] = (1.0 - m) * rm + m * mean
                rv[...] = (1.0 - m) * rv + (m * n / (n - 1)) * var
            # no normalised or centred copy is kept. Centring x blockwise costs one more
            # in-cache pass per sweep; it is only needed when some channel's mean is far from
            # zero (|mean| > std), where the folded forms (x * scale - mean * scale,
            # sum(dy * x) - mean * sum(dy)) would cancel digits
            far = bool(xp.any(mean * mean > _FAR_MEAN * var))
            self.n, self.x3, self.mean, self.inv_std = n, x3, mean, inv_std
            self.centre = mean if far else None
            scale = inv_std * weight if weight is not None else inv_std
            if far:
                y = _affine_centered(x3, mean, scale, bias)
            else:
                shift = -mean * scale
                y = _affine_centered(x3, None, scale, shift if bias is None else shift + bias)
        else:
            rm, rv, _ = running
            inv_std = (1.0 / xp.sqrt(rv + self.eps)).astype(x.dtype, copy=False)
            mean = rm.astype(x.dtype, copy=False)
            scale = inv_std * weight if weight is not None else inv_std
            shift = -mean * scale
            if bias is not None:
                shift += bias
            # x is only needed for dweight; don't keep the input alive otherwise
            self.x3 = x3 if self.needs_input_grad[1] else None
            self.mean, self.inv_std = mean, inv_std
            y = _affine_centered(x3, None, scale, shift)
        return y.reshape(x.shape)

    def backward(self, gy):
        need_x, need_w, need_b = self.needs_input_grad
        gy3 = gy.reshape(self.shape[0], self.shape[1], -1)
        w, inv_std = self.weight, self.inv_std
        k = inv_std * w if w is not None else inv_std
        dw = dx = None
        if self.training and (need_x or need_w):
            # sum(dy), sum(dy * (x - mean)) = dweight / inv_std
            db, sxc = _sum_dot_centered(gy3, self.x3, self.centre)
            if self.centre is None:
                sxc = sxc - self.mean * db
        else:
            db = _sum02(gy3)
        if self.training and (need_x or need_w):
            if need_w:
                dw = inv_std * sxc
            if need_x:
                kn = k / self.n
                kc, c = kn * inv_std * inv_std * sxc, -kn * db
                if self.centre is None:
                    c = c + self.mean * kc
                dx = _dx_centered(gy3, self.x3, self.centre, k, kc, c).reshape(self.shape)
        elif not self.training:
            # sum(dy * xhat) without materialising xhat = (x - mean) * inv_std
            if need_w:
                dw = inv_std * (_dot02(gy3, self.x3) - self.mean * db)
            if need_x:
                dx = (gy3 * _col(k)).reshape(self.shape)
        return dx, dw, (db if need_b else None)


def _as_tensor(x, where: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor(x)
    raise TypeError(f"{where}: expected a Tensor input, got {type(x).__name__}")


def _check_vector(t, c: int, what: str, where: str, shape) -> None:
    if t is None:
        return
    tshape = tuple(t.shape)
    if tshape != (c,):
        raise ValueError(
            f"{where}: expected {what} of shape ({c},) for {c} channels, got shape {tshape} "
            f"(input shape {tuple(shape)})"
        )


def _data(t):
    if t is None or isinstance(t, Tensor):
        return None if t is None else t.data
    return t if is_device_array(t) else np.asarray(t)


def _check_eps(eps, where: str, positive: bool) -> None:
    if not isinstance(eps, numbers.Real) or eps < 0 or (positive and eps == 0):
        need = "a positive" if positive else "a non-negative"
        raise ValueError(f"{where}: eps must be {need} number, got {eps!r}")


def _check_momentum(momentum, where: str) -> None:
    if momentum is None or not isinstance(momentum, numbers.Real) or isinstance(momentum, bool):
        raise TypeError(
            f"{where}: momentum must be a float, got {momentum!r} (the cumulative average of "
            f"momentum=None is a module option: it needs num_batches_tracked)"
        )


def _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps,
                where: str) -> Tensor:
    x = _as_tensor(x, where)
    if x.ndim < 2:
        raise ValueError(
            f"{where}: expected an input of shape (N, C, *) with at least 2 dims, got shape "
            f"{tuple(x.shape)}"
        )
    c = x.shape[1]
    for t, what in ((running_mean, "running_mean"), (running_var, "running_var"),
                    (weight, "weight"), (bias, "bias")):
        _check_vector(t, c, what, where, x.shape)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{where}: pass both running_mean and running_var, or neither")
    _check_eps(eps, where, positive=training)
    if training:
        _check_momentum(momentum, where)
        if x.shape[0] * math.prod(x.shape[2:]) == 1:
            raise ValueError(
                f"{where}: expected more than 1 value per channel when training, got input "
                f"shape {tuple(x.shape)}"
            )
        running = None
        if running_mean is not None:
            running = (_data(running_mean), _data(running_var), float(momentum))
    else:
        if running_mean is None:
            raise ValueError(
                f"{where}: running_mean and running_var are needed in evaluation mode "
                f"(training=False); got None"
            )
        running = (_data(running_mean), _data(running_var), None)
    return BatchNorm.apply(x, weight, bias, training=bool(training), running=running,
                           eps=float(eps))


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation: normalise each channel over the batch and spatial axes.

    .. math::
        y = \\frac{x - \\mathrm{E}[x]}{\\sqrt{\\mathrm{Var}[x] + \\epsilon}} \\gamma + \\beta

    In training, mean and (biased) variance are those of the batch, per channel over
    ``(N, *)``; if running statistics are given they are updated in place::

        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)

    (the running variance is the unbiased one, n = values per channel). In evaluation
    (``training=False``) the running statistics normalise instead. Backward (training, per
    channel): ``dx = gamma / sqrt(var + eps) / n * (n dy - sum(dy) - xhat sum(dy xhat))``.

    Args:
        x: input of shape (N, C, *).
        running_mean, running_var: (C,) buffers, or None (training only: batch statistics).
        weight, bias: (C,) affine parameters gamma and beta, or None. Default: None.
        training: use batch statistics (and update the running ones). Default: False.
        momentum: running-average factor. Default: 0.1.
        eps: added to the variance. Default: 1e-5.

    Shape:
        - Input: (N, C) or (N, C, L) or (N, C, H, W) or (N, C, D, H, W)
        - Output: same shape as the input.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> x = fb.tensor([[1.0], [3.0]])
        >>> F.batch_norm(x, None, None, training=True).numpy().round(3).tolist()
        [[-1.0], [1.0]]
    """
    return _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps,
                       "batch_norm")


# ------------------------------------------------------------- row-wise normalisation
class Normalize(Function):
    """Normalise each row of ``x`` viewed as ``(R, L)``, then an optional affine map whose
    parameters run along axis 1 of ``x`` viewed as ``aview = (A, W, B)``.

    Backward per row (L values), with ``g = dy * weight``::

        dx = inv_std * (g - mean(g) - xhat * mean(g * xhat))

    If ``running = (running_mean, running_var, momentum, C)`` is given (instance norm), the
    per-instance statistics, averaged over the batch, update the (C,) buffers in place.
    """

    def forward(self, x, weight, bias):
        xp = get_array_module(x)
        self.shape = x.shape
        x2 = x.reshape(self.rows, -1)
        length = x2.shape[1]
        mean = x2.sum(axis=1) / length
        xhat = x2 - mean[:, None]
        var = xp.einsum("rl,rl->r", xhat, xhat) / length
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        xhat *= inv_std[:, None]
        if self.running is not None:
            rm, rv, m, c = self.running
            batch_mean = mean.reshape(-1, c).mean(axis=0)
            batch_var = var.reshape(-1, c).mean(axis=0) * (length / (length - 1))
            rm[...] = (1.0 - m) * rm + m * batch_mean
            rv[...] = (1.0 - m) * rv + m * batch_var
        self.running = None
        self.xhat, self.inv_std, self.weight = xhat, inv_std, weight
        if weight is None and bias is None:
            return xhat.reshape(x.shape).copy()
        y = xhat.reshape(self.aview)
        y = y * _col(weight) if weight is not None else y.copy()
        if bias is not None:
            y += _col(bias)
        return y.reshape(x.shape)

    def backward(self, gy):
        xp = get_array_module(gy)
        need_x, need_w, need_b = self.needs_input_grad
        xhat, w = self.xhat, self.weight
        gy3 = gy.reshape(self.aview)
        dw = _dot02(gy3, xhat.reshape(self.aview)) if need_w else None
        db = _sum02(gy3) if need_b else None
        dx = None
        if need_x:
            g = (gy3 * _col(w)) if w is not None else gy3
            g = g.reshape(xhat.shape)
            length = xhat.shape[1]
            s = g.sum(axis=1) / length
            sx = xp.einsum("rl,rl->r", g, xhat) / length
            dx = xhat * sx[:, None]
            xp.subtract(g, dx, out=dx)
            dx -= s[:, None]
            dx *= self.inv_std[:, None]
            dx = dx.reshape(self.shape)
        if dw is not None:
            dw = dw.reshape(self.pshape)
        if db is not None:
            db = db.reshape(self.pshape)
        return dx, dw, db


def _normalize(x, rows: int, aview, pshape, weight, bias, eps, running=None) -> Tensor:
    return Normalize.apply(x, weight, bias, rows=rows, aview=aview, pshape=pshape,
                           eps=float(eps), running=running)


def _layer_norm(x, normalized_shape, weight, bias, eps, where: str) -> Tensor:
    x = _as_tensor(x, where)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    shape = tuple(int(s) for s in normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(
            f"{where}: expected an input whose trailing dimensions are normalized_shape="
            f"{shape}, i.e. of shape (*, {', '.join(map(str, shape))}), got input shape "
            f"{tuple(x.shape)}"
        )
    for t, what in ((weight, "weight"), (bias, "bias")):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(
                f"{where}: expected {what} of shape normalized_shape={shape}, got shape "
                f"{tuple(t.shape)}"
            )
    _check_eps(eps, where, positive=False)
    inner = math.prod(shape)
    outer = x.data.size // inner if inner else 0
    return _normalize(x, outer, (outer, inner, 1), shape, weight, bias, eps)


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the trailing ``normalized_shape`` dimensions of each sample.

    .. math::
        y = \\frac{x - \\mathrm{E}[x]}{\\sqrt{\\mathrm{Var}[x] + \\epsilon}} \\gamma + \\beta

    Mean and biased variance are taken over the last ``len(normalized_shape)`` dims; gamma and
    beta have shape ``normalized_shape`` (elementwise affine). Same statistics in training and
    evaluation. Backward: ``dx = (g - mean(g) - xhat mean(g xhat)) / sqrt(var + eps)``,
    ``g = gamma dy``.

    Args:
        x: input of shape (*, *normalized_shape).
        normalized_shape: int or tuple, the trailing shape to normalise over.
        weight, bias: parameters of shape ``normalized_shape``, or None. Default: None.
        eps: added to the variance. Default: 1e-5.

    Shape:
        - Input: (*, *normalized_shape)
        - Output: same shape as the input.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.layer_norm(fb.tensor([[1.0, 3.0]]), 2, eps=0.0).tolist()
        [[-1.0, 1.0]]
    """
    return _layer_norm(x, normalized_shape, weight, bias, eps, "layer_norm")


def _group_norm(x, num_groups, weight, bias, eps, where: str) -> Tensor:
    x = _as_tensor(x, where)
    if x.ndim < 2:
        raise ValueError(
            f"{where}: expected an input of shape (N, C, *) with at least 2 dims, got shape "
            f"{tuple(x.shape)}"
        )
    n, c = x.shape[0], x.shape[1]
    if not isinstance(num_groups, numbers.Integral) or num_groups <= 0 or c % num_groups:
        raise ValueError(
            f"{where}: expected the {c} input channels to be divisible by num_groups, got "
            f"num_groups={num_groups!r} (input shape {tuple(x.shape)})"
        )
    for t, what in ((weight, "weight"), (bias, "bias")):
        _check_vector(t, c, what, where, x.shape)
    _check_eps(eps, where, positive=False)
    if n * (c // num_groups) * math.prod(x.shape[2:]) == 1:
        raise ValueError(
            f"{where}: expected more than 1 value per group, got input shape {tuple(x.shape)} "
            f"with num_groups={num_groups}"
        )
    return _normalize(x, n * int(num_groups), (n, c, -1), (c,), weight, bias, eps)


def group_norm(x: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Group normalisation: normalise each group of ``C / num_groups`` channels per sample.

    .. math::
        y = \\frac{x - \\mathrm{E}[x]}{\\sqrt{\\mathrm{Var}[x] + \\epsilon}} \\gamma + \\beta

    Statistics per sample and group, over the group's channels and all spatial positions;
    gamma and beta are per channel. ``num_groups=1`` is layer norm over (C, *) with
    per-channel affine; ``num_groups=C`` is instance norm.

    Args:
        x: input of shape (N, C, *).
        num_groups: number of groups; must divide C.
        weight, bias: (C,) parameters, or None. Default: None.
        eps: added to the variance. Default: 1e-5.

    Shape:
        - Input: (N, C, *)
        - Output: same shape as the input.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.group_norm(fb.tensor([[1.0, 3.0]]), 1, eps=0.0).tolist()
        [[-1.0, 1.0]]
    """
    return _group_norm(x, num_groups, weight, bias, eps, "group_norm")


def _instance_norm(x, running_mean, running_var, weight, bias, use_input_stats, momentum,
                   eps, where: str) -> Tensor:
    x = _as_tensor(x, where)
    if x.ndim < 3:
        raise ValueError(
            f"{where}: expected an input of shape (N, C, *) with at least 3 dims, got shape "
            f"{tuple(x.shape)}"
        )
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{where}: pass both running_mean and running_var, or neither")
    if not use_input_stats:
        return _batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps,
                           where)
    n, c = x.shape[0], x.shape[1]
    for t, what in ((running_mean, "running_mean"), (running_var, "running_var"),
                    (weight, "weight"), (bias, "bias")):
        _check_vector(t, c, what, where, x.shape)
    _check_eps(eps, where, positive=False)
    if math.prod(x.shape[2:]) == 1:
        raise ValueError(
            f"{where}: expected more than 1 spatial element when using input statistics, got "
            f"input shape {tuple(x.shape)}"
        )
    running = None
    if running_mean is not None:
        _check_momentum(momentum, where)
        running = (_data(running_mean), _data(running_var), float(momentum), c)
    return _normalize(x, n * c, (n, c, -1), (c,), weight, bias, eps, running)


def instance_norm(x: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Instance normalisation: normalise each channel of each sample over its spatial axes.

    .. math::
        y_{nc} = \\frac{x_{nc} - \\mathrm{E}[x_{nc}]}{\\sqrt{\\mathrm{Var}[x_{nc}] + \\epsilon}}
        \\gamma_c + \\beta_c

    With ``use_input_stats`` (the default) the statistics are per (sample, channel); running
    statistics, if given, are updated with their batch averages (running_var with the unbiased
    per-instance variance), as ``torch.nn.functional.instance_norm`` does. With
    ``use_input_stats=False`` the running statistics normalise instead (as in batch norm's
    evaluation mode).

    Args:
        x: input of shape (N, C, *) with at least one spatial dim.
        running_mean, running_var: (C,) buffers, or None. Default: None.
        weight, bias: (C,) parameters, or None. Default: None.
        use_input_stats: normalise with the instance statistics. Default: True.
        momentum: running-average factor. Default: 0.1.
        eps: added to the variance. Default: 1e-5.

    Shape:
        - Input: (N, C, L) or (N, C, H, W) or (N, C, D, H, W)
        - Output: same shape as the input.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.instance_norm(fb.tensor([[[1.0, 3.0]]]), eps=0.0).tolist()
        [[[-1.0, 1.0]]]
    """
    return _instance_norm(x, running_mean, running_var, weight, bias, use_input_stats,
                          momentum, eps, "instance_norm")


# ---------------------------------------------------------------- local response norm
def _channel_window_sum(a, before: int, after: int):
    """``out[:, c] = sum(a[:, c - before : c + after + 1])`` with zeros outside the channels.

    One shifted slice-add per window offset (the window is a handful of channels).
    """
    out = a.copy()
    c = a.shape[1]
    for off in range(1, before + 1):
        if off < c:
            out[:, off:] += a[:, :c - off]
    for off in range(1, after + 1):
        if off < c:
            out[:, :c - off] += a[:, off:]
    return out


class LocalResponseNorm(Function):
    """``y = x / d^beta``, ``d = k + alpha / size * S``, ``S_c = sum of x_c'^2`` over the
    window c' in [c - size//2, c + (size-1)//2].

    Backward: ``dx_j = dy_j / d_j^beta - 2 alpha beta / size * x_j * sum_c dy_c x_c /
    d_c^(beta+1)`` over the channels c whose window contains j, i.e. the window with the
    offsets mirrored.
    """

    def forward(self, x):
        size = self.size
        sq = x * x
        s = _channel_window_sum(sq, size // 2, (size - 1) // 2)
        d = s
        d *= self.alpha / size
        d += self.k
        dpow = d ** self.beta
        self.x, self.d, self.dpow = x, d, dpow
        return x / dpow

    def backward(self, gy):
        size = self.size
        x, d, dpow = self.x, self.d, self.dpow
        gx = gy / dpow
        t = gx * x
        t /= d
        ts = _channel_window_sum(t, (size - 1) // 2, size // 2)
        ts *= x
        ts *= 2.0 * self.alpha * self.beta / size
        gx -= ts
        return gx


def _local_response_norm(x, size, alpha, beta, k, where: str) -> Tensor:
    x = _as_tensor(x, where)
    if x.ndim < 3:
        raise ValueError(
            f"{where}: expected an input of shape (N, C, *) with at least 3 dims, got shape "
            f"{tuple(x.shape)}"
        )
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
        raise ValueError(f"{where}: expected a positive integer size, got {size!r}")
    if x.data.size == 0:
        return x
    return LocalResponseNorm.apply(x, size=int(size), alpha=float(alpha), beta=float(beta),
                                   k=float(k))


def local_response_norm(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Local response normalisation across channels (AlexNet, Krizhevsky et al. 2012).

    .. math::
        b_c = a_c \\left(k + \\frac{\\alpha}{n} \\sum_{c'=c-\\lfloor n/2 \\rfloor}
        ^{c+\\lfloor (n-1)/2 \\rfloor} a_{c'}^2\\right)^{-\\beta}

    with zeros outside the channel range and n = ``size``, exactly as
    ``torch.nn.functional.local_response_norm`` (an average pool of size n over the
    zero-padded squared channels, padding ``n // 2`` before and ``(n - 1) // 2`` after).

    Args:
        x: input of shape (N, C, *) with at least 3 dims.
        size: number of neighbouring channels in the window.
        alpha: multiplicative factor. Default: 1e-4.
        beta: exponent. Default: 0.75.
        k: additive factor. Default: 1.0.

    Shape:
        - Input: (N, C, *)
        - Output: same shape as the input.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.local_response_norm(fb.tensor([[[2.0]]]), 1, alpha=1.0, beta=1.0, k=0.0).tolist()
        [[[0.5]]]
    """
    return _local_response_norm(x, size, alpha, beta, k, "local_response_norm")
