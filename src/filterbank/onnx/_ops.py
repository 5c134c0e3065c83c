"""ONNX operators on filterbank tensors: one function per op type, ``op(ctx, node, attrs,
*inputs) -> output or tuple of outputs``. Floating-point ops go through
:mod:`filterbank.functional` (so gradients flow to the imported parameters); integer and bool
values (shapes, indices, masks, the integer variants of Add/Mul/...) are computed with NumPy
and carry no gradient. Every output keeps the ONNX dtype exactly."""

from __future__ import annotations

import math

import numpy as np

import filterbank.functional as F
from filterbank.functional.conv import pad_mode
from filterbank.serialization import check_fits_in_memory
from filterbank.tensor import Tensor

OPS: dict = {}


def op(*names):
    def register(fn):
        for name in names:
            OPS[name] = fn
        return fn
    return register


def T(a) -> Tensor:
    """A constant tensor holding ``a`` with its dtype unchanged."""
    return Tensor._wrap(np.asarray(a))


def A(t) -> np.ndarray | None:
    return None if t is None else t.data


def is_float(t) -> bool:
    return t.data.dtype.kind == "f"


def unsupported(node, what: str):
    return NotImplementedError(f"ONNX {node.op_type}: {what} is not supported by filterbank")


def keep(y: Tensor, dtype) -> Tensor:
    """``y`` in ``dtype`` (an op that promoted stays in the ONNX dtype)."""
    return y if y.data.dtype == dtype else F.cast(y, dtype)


def scalar(v, like: Tensor) -> Tensor:
    return T(np.asarray(v, dtype=like.data.dtype))


def ints(t) -> list[int]:
    return [int(v) for v in np.asarray(A(t)).reshape(-1)]


# ------------------------------------------------------------------------ elementwise
def _int_div(a, b):
    if a.dtype.kind == "u" or b.dtype.kind == "u":
        return a // b
    q = a // b
    fix = (a % b != 0) & ((a < 0) != (b < 0))
    return (q + fix).astype(a.dtype)


_BINARY = {
    "Add": (F.add, np.add), "Sub": (F.sub, np.subtract), "Mul": (F.mul, np.multiply),
    "Div": (F.div, _int_div), "Pow": (F.pow, np.power),
}


def _binary(ctx, node, attrs, a, b):
    fb_fn, np_fn = _BINARY[node.op_type]
    if attrs.get("broadcast", 1) == 1 and "axis" in attrs:
        raise unsupported(node, "the legacy 'axis' broadcast attribute")
    if is_float(a):
        if node.op_type == "Pow" and not is_float(b):
            b = T(A(b).astype(a.data.dtype))
        return keep(fb_fn(a, b), a.data.dtype)
    with np.errstate(over="ignore"):
        return T(np.asarray(np_fn(A(a), A(b))).astype(A(a).dtype))


for _name in _BINARY:
    OPS[_name] = _binary


@op("Max", "Min")
def _max_min(ctx, node, attrs, *xs):
    fb_fn, np_fn = (F.maximum, np.maximum) if node.op_type == "Max" else (F.minimum, np.minimum)
    y = xs[0]
    for x in xs[1:]:
        y = keep(fb_fn(y, x), y.data.dtype) if is_float(y) else T(np_fn(A(y), A(x)))
    return y


@op("Sum", "Mean")
def _sum_mean(ctx, node, attrs, *xs):
    y = xs[0]
    for x in xs[1:]:
        y = F.add(y, x)
    if node.op_type == "Mean":
        y = F.div(y, scalar(len(xs), y))
    return keep(y, xs[0].data.dtype)


def _unary(fb_fn, np_fn=None):
    def run(ctx, node, attrs, x):
        if is_float(x):
            return keep(fb_fn(x), x.data.dtype)
        if np_fn is None:
            raise unsupported(node, f"element type {x.data.dtype}")
        return T(np_fn(A(x)).astype(A(x).dtype))
    return run


OPS.update({
    "Neg": _unary(F.neg, np.negative), "Abs": _unary(F.abs, np.abs), "Exp": _unary(F.exp),
    "Log": _unary(F.log), "Sqrt": _unary(F.sqrt), "Sin": _unary(F.sin), "Cos": _unary(F.cos),
    "Relu": _unary(F.relu, lambda a: np.maximum(a, 0)), "Sigmoid": _unary(F.sigmoid),
    "Tanh": _unary(F.tanh),
    "Reciprocal": _unary(lambda x: F.div(scalar(1, x), x)),
    "Softplus": _unary(lambda x: F.softplus(x)),
    "Mish": _unary(lambda x: F.mul(x, F.tanh(F.softplus(x)))),
    "HardSwish": _unary(lambda x: F.mul(x, F.clip(F.add(F.div(x, scalar(6, x)),
                                                        scalar(0.5, x)), 0.0, 1.0))),
})


@op("LeakyRelu")
def _leaky_relu(ctx, node, attrs, x):
    return keep(F.leaky_relu(x, attrs.get("alpha", 0.01)), x.data.dtype)


@op("Elu")
def _elu(ctx, node, attrs, x):
    return keep(F.elu(x, attrs.get("alpha", 1.0)), x.data.dtype)


@op("Selu")
def _selu(ctx, node, attrs, x):
    alpha = attrs.get("alpha", 1.67326319217681884765625)
    gamma = attrs.get("gamma", 1.05070102214813232421875)
    return keep(F.mul(F.elu(x, alpha), scalar(gamma, x)), x.data.dtype)


@op("HardSigmoid")
def _hard_sigmoid(ctx, node, attrs, x):
    y = F.add(F.mul(x, scalar(attrs.get("alpha", 0.2), x)), scalar(attrs.get("beta", 0.5), x))
    return keep(F.clip(y, 0.0, 1.0), x.data.dtype)


@op("Clip")
def _clip(ctx, node, attrs, x, lo=None, hi=None):
    if ctx.opset < 11:
        lo = T(attrs["min"]) if "min" in attrs else None
        hi = T(attrs["max"]) if "max" in attrs else None
    if not is_float(x):
        y = A(x)
        if lo is not None:
            y = np.maximum(y, A(lo))
        if hi is not None:
            y = np.minimum(y, A(hi))
        return T(np.asarray(y).astype(A(x).dtype))
    y = x
    if lo is not None:
        y = F.maximum(y, T(A(lo).astype(x.data.dtype)))
    if hi is not None:
        y = F.minimum(y, T(A(hi).astype(x.data.dtype)))
    return keep(y, x.data.dtype)


_COMPARE = {"Less": np.less, "Greater": np.greater, "Equal": np.equal,
            "LessOrEqual": np.less_equal, "GreaterOrEqual": np.greater_equal,
            "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}


@op(*_COMPARE)
def _compare(ctx, node, attrs, a, b):
    return T(_COMPARE[node.op_type](A(a), A(b)))


@op("Not")
def _not(ctx, node, attrs, x):
    return T(np.logical_not(A(x)))


@op("Where")
def _where(ctx, node, attrs, c, a, b):
    if is_float(a):
        return keep(F.where(T(A(c)), a, b), a.data.dtype)
    return T(np.where(A(c), A(a), A(b)))


@op("Cast")
def _cast(ctx, node, attrs, x):
    from filterbank.onnx._proto import np_dtype
    dtype = np_dtype(attrs["to"], ctx.path, f"Cast node {node.name!r}")
    return F.cast(x, dtype) if is_float(x) and dtype.kind == "f" else T(A(x).astype(dtype))


@op("CastLike")
def _cast_like(ctx, node, attrs, x, like):
    dtype = like.data.dtype
    return F.cast(x, dtype) if is_float(x) and dtype.kind == "f" else T(A(x).astype(dtype))


@op("Identity")
def _identity(ctx, node, attrs, x):
    return x


# ------------------------------------------------------------------------ reductions
def _reduce_axes(ctx, node, attrs, x, axes_t, new_api: bool):
    axes = ints(axes_t) if new_api and axes_t is not None else attrs.get("axes")
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return None
        return tuple(range(x.ndim))
    return tuple(a % x.ndim if x.ndim else 0 for a in axes)


def _reduce(fb_name, np_fn, since):
    def run(ctx, node, attrs, x, axes_t=None):
        axes = _reduce_axes(ctx, node, attrs, x, axes_t, ctx.opset >= since)
        if axes is None:
            return x
        keepdims = bool(attrs.get("keepdims", 1))
        if is_float(x):
            return keep(getattr(F, fb_name)(x, axes, keepdims=keepdims), x.data.dtype)
        return T(np.asarray(np_fn(A(x), axis=axes, keepdims=keepdims)).astype(A(x).dtype))
    return run


OPS.update({"ReduceMean": _reduce("mean", np.mean, 18), "ReduceSum": _reduce("sum", np.sum, 13),
            "ReduceMax": _reduce("amax", np.max, 18), "ReduceMin": _reduce("amin", np.min, 18)})


@op("Softmax", "LogSoftmax")
def _softmax(ctx, node, attrs, x):
    fn = F.softmax if node.op_type == "Softmax" else F.log_softmax
    if ctx.opset >= 13:
        return keep(fn(x, axis=attrs.get("axis", -1)), x.data.dtype)
    # before opset 13: coerce to 2-d at ``axis`` (default 1) and normalise each row
    axis = attrs.get("axis", 1) % max(x.ndim, 1)
    rows = math.prod(x.shape[:axis])
    y = fn(F.reshape(x, (rows, -1)), axis=-1)
    return keep(F.reshape(y, x.shape), x.data.dtype)


# ------------------------------------------------------------------------ linear algebra
@op("MatMul")
def _matmul(ctx, node, attrs, a, b):
    if not is_float(a):
        return T(np.matmul(A(a), A(b)))
    return keep(F.matmul(a, b), a.data.dtype)


@op("Gemm")
def _gemm(ctx, node, attrs, a, b, c=None):
    if attrs.get("transA", 0):
        a = F.transpose(a, 0, 1)
    if attrs.get("transB", 0):
        b = F.transpose(b, 0, 1)
    y = F.matmul(a, b)
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    if alpha != 1.0:
        y = F.mul(y, scalar(alpha, y))
    if c is not None:
        y = F.add(y, c if beta == 1.0 else F.mul(c, scalar(beta, c)))
    return keep(y, a.data.dtype)


# ------------------------------------------------------------------------ convolution
def _spatial(node, attrs, x, kernel):
    n = len(kernel)
    strides = attrs.get("strides", [1] * n)
    dilations = attrs.get("dilations", [1] * n)
    return n, list(strides), list(dilations)


def _pads(node, attrs, in_sizes, kernel, strides, dilations):
    """(begin, end) pads per spatial dim from ``pads`` or ``auto_pad``."""
    n = len(kernel)
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        pads = attrs.get("pads", [0] * 2 * n)
        return [(pads[i], pads[i + n]) for i in range(n)]
    if auto == "VALID":
        return [(0, 0)] * n
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise unsupported(node, f"auto_pad={auto!r}")
    out = []
    for L, k, s, d in zip(in_sizes, kernel, strides, dilations):
        total = max(0, (-(-L // s) - 1) * s + d * (k - 1) + 1 - L)
        small, big = total // 2, total - total // 2
        out.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return out


def _pad_spatial(x, pads, value=0.0):
    """Constant-pad the trailing spatial dims of ``x`` by (begin, end) pairs."""
    if not any(b or e for b, e in pads):
        return x
    flat = []
    for b, e in reversed(pads):
        flat += [b, e]
    return F.pad(x, tuple(flat), value=value)


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@op("Conv")
def _conv(ctx, node, attrs, x, w, b=None):
    kernel = list(attrs.get("kernel_shape", w.shape[2:]))
    n, strides, dilations = _spatial(node, attrs, x, kernel)
    if n not in _CONV:
        raise unsupported(node, f"{n}-d convolution")
    pads = _pads(node, attrs, x.shape[2:], kernel, strides, dilations)
    if all(p == q for p, q in pads):
        padding = [p for p, _ in pads]
    else:
        x, padding = _pad_spatial(x, pads), 0
    y = _CONV[n](x, w, b, stride=strides, padding=padding, dilation=dilations,
                 groups=attrs.get("group", 1))
    return keep(y, x.data.dtype)


@op("ConvTranspose")
def _conv_transpose(ctx, node, attrs, x, w, b=None):
    kernel = list(attrs.get("kernel_shape", w.shape[2:]))
    n, strides, dilations = _spatial(node, attrs, x, kernel)
    if n not in _CONV_T:
        raise unsupported(node, f"{n}-d transposed convolution")
    out_pad = list(attrs.get("output_padding", [0] * n))
    full = [s * (L - 1) + op_ + d * (k - 1) + 1 for L, s, op_, d, k in
            zip(x.shape[2:], strides, out_pad, dilations, kernel)]
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if "output_shape" in attrs:
        shape = list(attrs["output_shape"])[-n:]
        totals = [f - o for f, o in zip(full, shape)]
        # a negative total (an output larger than the full one) adds zeros at the end
        if auto == "SAME_LOWER":
            pads = [(t - t // 2, t // 2) if t >= 0 else (0, t) for t in totals]
        else:
            pads = [(t // 2, t - t // 2) if t >= 0 else (0, t) for t in totals]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        totals = [f - L * s for f, L, s in zip(full, x.shape[2:], strides)]
        if auto == "SAME_UPPER":
            pads = [(t // 2, t - t // 2) for t in totals]
        else:
            pads = [(t - t // 2, t // 2) for t in totals]
    elif auto in ("NOTSET", "", "VALID"):
        p = attrs.get("pads", [0] * 2 * n) if auto != "VALID" else [0] * 2 * n
        pads = [(p[i], p[i + n]) for i in range(n)]
    else:
        raise unsupported(node, f"auto_pad={auto!r}")
    if any(b_ < 0 for b_, _ in pads):
        raise unsupported(node, f"negative begin pads {pads}")
    y = _CONV_T[n](x, w, None, stride=strides, padding=0, output_padding=0,
                   groups=attrs.get("group", 1), dilation=dilations)
    grow = [p + max(0, -e) for p, (_, e) in zip(out_pad, pads)]
    pads = [(b_, max(0, e)) for b_, e in pads]
    if any(grow):
        y = _pad_spatial(y, [(0, g) for g in grow])
    if any(b_ or e for b_, e in pads):
        index = (slice(None), slice(None)) + tuple(
            slice(b_, y.shape[2 + i] - e) for i, (b_, e) in enumerate(pads))
        y = F.getitem(y, index)
    if b is not None:
        y = F.add(y, F.reshape(b, (1, -1) + (1,) * n))
    return keep(y, x.data.dtype)


# ------------------------------------------------------------------------ pooling
def _pool_geometry(node, attrs, x):
    kernel = list(attrs["kernel_shape"])
    n, strides, dilations = _spatial(node, attrs, x, kernel)
    pads = _pads(node, attrs, x.shape[2:], kernel, strides, dilations)
    ceil = bool(attrs.get("ceil_mode", 0))
    extra = []
    for L, k, s, d, (pb, pe) in zip(x.shape[2:], kernel, strides, dilations, pads):
        span = L + pb + pe - d * (k - 1) - 1
        out = (-(-span // s) if ceil else span // s) + 1
        if ceil and (out - 1) * s >= L + pb:  # the last window may not start in the end pad
            out -= 1
        extra.append(max(0, (out - 1) * s + d * (k - 1) + 1 - (L + pb + pe)))
    return n, kernel, strides, dilations, pads, extra


@op("MaxPool")
def _max_pool(ctx, node, attrs, x):
    if len([o for o in node.output if o]) > 1:
        raise unsupported(node, "the Indices output")
    if attrs.get("storage_order", 0):
        raise unsupported(node, "storage_order=1")
    n, kernel, strides, dilations, pads, extra = _pool_geometry(node, attrs, x)
    if n not in (1, 2, 3):
        raise unsupported(node, f"{n}-d pooling")
    dtype = x.data.dtype
    if not is_float(x):
        x = T(A(x).astype(np.float64))
    lo = -np.inf
    xp = _pad_spatial(x, [(pb, pe + e) for (pb, pe), e in zip(pads, extra)], value=lo)
    fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[n]
    y = fn(xp, kernel, stride=strides, padding=0, dilation=dilations)
    return keep(y, dtype) if dtype.kind == "f" else T(A(y).astype(dtype))


@op("AveragePool")
def _avg_pool(ctx, node, attrs, x):
    n, kernel, strides, dilations, pads, extra = _pool_geometry(node, attrs, x)
    if n not in _CONV:
        raise unsupported(node, f"{n}-d pooling")
    dtype = x.data.dtype
    full = [(pb, pe + e) for (pb, pe), e in zip(pads, extra)]
    # a depthwise convolution with a kernel of ones sums each (dilated) window; dividing by the
    # count of the window's cells that are inputs (or inputs and pads) gives the average
    ones = np.ones((x.shape[1], 1, *kernel), dtype=dtype)
    xp = _pad_spatial(x, full)
    total = _CONV[n](xp, T(ones), None, stride=strides, dilation=dilations, groups=x.shape[1])
    mask = np.ones((1, 1, *x.shape[2:]), dtype=dtype)
    if attrs.get("count_include_pad", 0):
        mask = np.pad(mask, [(0, 0), (0, 0)] + list(pads), constant_values=1)
        mask = np.pad(mask, [(0, 0), (0, 0)] + [(0, e) for e in extra])
    else:
        mask = np.pad(mask, [(0, 0), (0, 0)] + full)
    count = _CONV[n](T(mask), T(ones[:1]), None, stride=strides, dilation=dilations)
    return keep(F.div(total, T(np.maximum(A(count), 1).astype(dtype))), dtype)


@op("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx, node, attrs, x):
    axes = tuple(range(2, x.ndim))
    fn = F.mean if node.op_type == "GlobalAveragePool" else F.amax
    return keep(fn(x, axes, keepdims=True), x.data.dtype)


# ------------------------------------------------------------------------ normalisation
@op("BatchNormalization")
def _batch_norm(ctx, node, attrs, x, scale, bias, mean, var, *_):
    if attrs.get("spatial", 1) != 1:
        raise unsupported(node, "spatial=0")
    training = bool(attrs.get("training_mode", 0)) or ctx.training
    eps, momentum = attrs.get("epsilon", 1e-5), attrs.get("momentum", 0.9)
    dtype = x.data.dtype
    if not training:
        y = F.batch_norm(x, mean, var, scale, bias, training=False, eps=eps)
        return keep(y, dtype)
    axes = (0,) + tuple(range(2, x.ndim))
    batch_mean = A(x).mean(axis=axes)
    batch_var = A(x).var(axis=axes)
    old_mean, old_var = A(mean).copy(), A(var).copy()
    # filterbank's batch norm updates a running statistic kept by the module (a buffer) in place,
    # with PyTorch's momentum = 1 - ONNX's momentum
    rm = mean if ctx.is_buffer(mean) else None
    rv = var if ctx.is_buffer(var) else None
    y = keep(F.batch_norm(x, rm, rv, scale, bias, training=True, momentum=1 - momentum,
                          eps=eps), dtype)
    outputs = [o for o in node.output if o]
    if len(outputs) == 1:
        return y
    # ONNX's running statistics: the batch's (biased) variance, ONNX momentum
    new_mean = (old_mean * momentum + batch_mean * (1 - momentum)).astype(A(mean).dtype)
    new_var = (old_var * momentum + batch_var * (1 - momentum)).astype(A(var).dtype)
    return y, T(new_mean), T(new_var)


@op("InstanceNormalization")
def _instance_norm(ctx, node, attrs, x, scale, bias):
    return keep(F.instance_norm(x, weight=scale, bias=bias, eps=attrs.get("epsilon", 1e-5)),
                x.data.dtype)


@op("LayerNormalization")
def _layer_norm(ctx, node, attrs, x, scale, bias=None):
    axis = attrs.get("axis", -1) % x.ndim
    eps = attrs.get("epsilon", 1e-5)
    shape = tuple(x.shape[axis:])
    dtype = x.data.dtype
    outputs = [o for o in node.output if o]
    if len(outputs) == 1 and tuple(scale.shape) == shape and (
            bias is None or tuple(bias.shape) == shape):
        return keep(F.layer_norm(x, shape, scale, bias, eps=eps), dtype)
    axes = tuple(range(axis, x.ndim))
    mean = F.mean(x, axes, keepdims=True)
    centred = F.sub(x, mean)
    var = F.mean(F.mul(centred, centred), axes, keepdims=True)
    inv_std = F.div(scalar(1, x), F.sqrt(F.add(var, scalar(eps, x))))
    y = F.mul(F.mul(centred, inv_std), scale)
    if bias is not None:
        y = F.add(y, bias)
    return keep(y, dtype), keep(mean, dtype), keep(inv_std, dtype)


@op("GroupNormalization")
def _group_norm(ctx, node, attrs, x, scale, bias):
    groups = attrs["num_groups"]
    channels = x.shape[1]
    eps = attrs.get("epsilon", 1e-5)
    if scale.shape[0] != channels:  # opset 18: one scale and bias per group
        per = channels // groups
        scale = F.reshape(F.expand(F.reshape(scale, (groups, 1)), (groups, per)), (channels,))
        bias = F.reshape(F.expand(F.reshape(bias, (groups, 1)), (groups, per)), (channels,))
    return keep(F.group_norm(x, groups, scale, bias, eps=eps), x.data.dtype)


@op("Dropout")
def _dropout(ctx, node, attrs, x, ratio=None, training_mode=None):
    p = float(A(ratio)) if ratio is not None else attrs.get("ratio", 0.5)
    training = ctx.training or (training_mode is not None and bool(A(training_mode)))
    if ctx.opset < 7 and attrs.get("is_test", 0) == 0 and not ctx.training:
        training = False
    want_mask = len([o for o in node.output if o]) > 1
    if not training or p == 0:
        mask = np.ones(x.shape, dtype=bool)
        return (x, T(mask)) if want_mask else x
    mask = ctx.rng.random(x.shape) >= p
    y = F.mul(x, T((mask / (1 - p)).astype(x.data.dtype)))
    return (y, T(mask)) if want_mask else y


# ------------------------------------------------------------------------ shapes
def _np_or_fb(x, fb_fn, np_fn):
    return fb_fn(x) if is_float(x) else T(np_fn(A(x)))


@op("Reshape")
def _reshape(ctx, node, attrs, x, shape_t=None):
    shape = ints(shape_t) if shape_t is not None else list(attrs["shape"])
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return _np_or_fb(x, lambda t: F.reshape(t, tuple(shape)), lambda a: a.reshape(shape))


@op("Flatten")
def _flatten(ctx, node, attrs, x):
    axis = attrs.get("axis", 1)
    axis = axis % x.ndim if axis < 0 else axis
    shape = (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return _np_or_fb(x, lambda t: F.reshape(t, shape), lambda a: a.reshape(shape))


@op("Transpose")
def _transpose(ctx, node, attrs, x):
    perm = attrs.get("perm", list(range(x.ndim))[::-1])
    return _np_or_fb(x, lambda t: F.permute(t, tuple(perm)), lambda a: a.transpose(perm))


@op("Concat")
def _concat(ctx, node, attrs, *xs):
    axis = attrs["axis"]
    if is_float(xs[0]):
        return keep(F.concatenate(list(xs), axis=axis), xs[0].data.dtype)
    return T(np.concatenate([A(x) for x in xs], axis=axis))


@op("Unsqueeze")
def _unsqueeze(ctx, node, attrs, x, axes_t=None):
    axes = ints(axes_t) if axes_t is not None else list(attrs["axes"])
    rank = x.ndim + len(axes)
    axes = sorted(a % rank for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return _np_or_fb(x, lambda t: F.reshape(t, tuple(shape)), lambda a: a.reshape(shape))


@op("Squeeze")
def _squeeze(ctx, node, attrs, x, axes_t=None):
    axes = ints(axes_t) if axes_t is not None else attrs.get("axes")
    if axes is None:
        axes = [i for i, s in enumerate(x.shape) if s == 1]
    axes = {a % x.ndim for a in axes}
    shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
    return _np_or_fb(x, lambda t: F.reshape(t, shape), lambda a: a.reshape(shape))


@op("Shape")
def _shape(ctx, node, attrs, x):
    dims = list(x.shape)
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return T(np.asarray(dims[start:end], dtype=np.int64))


@op("Size")
def _size(ctx, node, attrs, x):
    return T(np.asarray(math.prod(x.shape), dtype=np.int64))


@op("Gather")
def _gather(ctx, node, attrs, x, idx):
    axis = attrs.get("axis", 0) % x.ndim
    i = A(idx).astype(np.int64)
    i = np.where(i < 0, i + x.shape[axis], i)
    index = (slice(None),) * axis + (i,)
    return _np_or_fb(x, lambda t: F.getitem(t, index), lambda a: a[index])


@op("Slice")
def _slice(ctx, node, attrs, x, starts=None, ends=None, axes=None, steps=None):
    if ctx.opset < 10:
        starts, ends = attrs["starts"], attrs["ends"]
        axes = attrs.get("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = ints(starts), ints(ends)
        axes = ints(axes) if axes is not None else list(range(len(starts)))
        steps = ints(steps) if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        L = x.shape[a]
        s, e = max(-L - 1, min(s, L + 1)), max(-L - 1, min(e, L + 1))  # clamp huge sentinels
        index[a % x.ndim] = slice(s, e, st)
    index = tuple(index)
    return _np_or_fb(x, lambda t: F.getitem(t, index), lambda a: a[index])


@op("Constant")
def _constant(ctx, node, attrs):
    from filterbank.onnx._proto import tensor_to_array
    for key in ("value_float", "value_int"):
        if key in attrs:
            return T(np.asarray(attrs[key], np.float32 if key == "value_float" else np.int64))
    for key in ("value_floats", "value_ints"):
        if key in attrs:
            return T(np.asarray(attrs[key], np.float32 if key == "value_floats" else np.int64))
    if "value" in attrs:
        return T(tensor_to_array(attrs["value"], ctx.path, ctx.base_dir,
                                 f"Constant node {node.name!r}"))
    raise unsupported(node, f"attributes {sorted(attrs)}")


@op("ConstantOfShape")
def _constant_of_shape(ctx, node, attrs, shape_t):
    from filterbank.onnx._proto import tensor_to_array
    shape = ints(shape_t)
    value = (tensor_to_array(attrs["value"], ctx.path, None, "ConstantOfShape value")
             if "value" in attrs else np.zeros(1, np.float32))
    if any(s < 0 for s in shape):
        raise ValueError(f"{ctx.path}: ConstantOfShape: negative dim in {shape}")
    check_fits_in_memory(math.prod(shape) * value.dtype.itemsize,
                         f"{ctx.path}: ConstantOfShape {shape} needs")
    return T(np.full(shape, value.reshape(-1)[0], dtype=value.dtype))


@op("Expand")
def _expand(ctx, node, attrs, x, shape_t):
    shape = np.broadcast_shapes(x.shape, tuple(ints(shape_t)))
    check_fits_in_memory(math.prod(shape) * x.data.dtype.itemsize,
                         f"{ctx.path}: Expand to {list(shape)} needs")
    return _np_or_fb(x, lambda t: F.expand(t, shape), lambda a: np.broadcast_to(a, shape).copy())


@op("Pad")
def _pad(ctx, node, attrs, x, pads_t=None, value_t=None, axes_t=None):
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if ctx.opset < 11:
        pads, value = list(attrs["pads"]), attrs.get("value", 0.0)
    else:
        pads = ints(pads_t)
        value = A(value_t).reshape(-1)[0] if value_t is not None and A(value_t).size else 0
    axes = ints(axes_t) if axes_t is not None else list(range(x.ndim))
    n = len(axes)
    per_dim = [(0, 0)] * x.ndim
    for i, a in enumerate(axes):
        per_dim[a % x.ndim] = (pads[i], pads[i + n])
    if any(b < 0 or e < 0 for b, e in per_dim):  # negative pads crop
        index = tuple(slice(max(0, -b), s - max(0, -e)) for (b, e), s in zip(per_dim, x.shape))
        x = _np_or_fb(x, lambda t: F.getitem(t, index), lambda a: a[index])
        per_dim = [(max(0, b), max(0, e)) for b, e in per_dim]
    np_mode = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}
    if mode not in np_mode:
        raise unsupported(node, f"mode={mode!r}")
    if not is_float(x):
        kw = {"constant_values": value} if mode == "constant" else {}
        return T(np.pad(A(x), per_dim, mode=np_mode[mode], **kw).astype(A(x).dtype))
    if mode == "constant":
        return keep(_pad_spatial(x, per_dim, value=float(value)) if x.ndim else x, x.data.dtype)
    lead = next((i for i, p in enumerate(per_dim) if p != (0, 0)), x.ndim)
    fb_mode = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}[mode]
    # filterbank's pad modes pad the spatial dims of (N, C, *S): view x that way
    keep_dims = min(lead, x.ndim)
    front = x.shape[:keep_dims]
    view = F.reshape(x, (1, math.prod(front)) + tuple(x.shape[keep_dims:]))
    y = pad_mode(view, per_dim[keep_dims:], fb_mode)
    return keep(F.reshape(y, tuple(front) + tuple(y.shape[2:])), x.data.dtype)


@op("Resize", "Upsample")
def _resize(ctx, node, attrs, x, *rest):
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if node.op_type == "Upsample" or ctx.opset < 11:
        raise unsupported(node, "opset < 11")
    roi, scales, sizes = (list(rest) + [None] * 3)[:3]
    ctm = attrs.get("coordinate_transformation_mode", b"half_pixel")
    ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
    nearest = attrs.get("nearest_mode", b"round_prefer_floor")
    nearest = nearest.decode() if isinstance(nearest, bytes) else nearest
    if attrs.get("axes") or attrs.get("antialias", 0):
        raise unsupported(node, "axes/antialias")
    n = x.ndim - 2
    kw = {}
    if sizes is not None and A(sizes).size:
        out = ints(sizes)
        if out[:2] != list(x.shape[:2]):
            raise unsupported(node, "resizing the batch or channel dims")
        kw["size"] = tuple(out[2:])
    else:
        sc = [float(s) for s in A(scales).reshape(-1)]
        if sc[:2] != [1.0, 1.0]:
            raise unsupported(node, "resizing the batch or channel dims")
        kw["size"] = tuple(int(math.floor(L * s)) for L, s in zip(x.shape[2:], sc[2:]))
    if mode == "nearest" and ctm == "asymmetric" and nearest == "floor":
        y = F.interpolate(x, mode="nearest", **kw)
    elif mode == "linear" and ctm in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        fb_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(n)
        if fb_mode is None:
            raise unsupported(node, f"{n}-d linear resize")
        y = F.interpolate(x, mode=fb_mode, align_corners=ctm == "align_corners", **kw)
    else:
        raise unsupported(node, f"mode={mode!r} with coordinate_transformation_mode={ctm!r} "
                                f"and nearest_mode={nearest!r}")
    return keep(y, x.data.dtype)
