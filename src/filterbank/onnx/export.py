"""Export a filterbank model to an ONNX file by tracing one forward pass.

The model runs once on the example input, in evaluation mode, with gradient recording on.
Every op call (``Function.apply``) is noted with its inputs, including the constants the
autodiff graph itself does not keep (``2 * x``, BatchNorm's running statistics), and the
layer (module name) that made it. The graph is then walked from the output back to the input;
each op's Function class maps to one or a few ONNX nodes (the ``_CONVERTERS`` registry below),
parameters and buffers become initializers. With ``dynamic_batch`` the first dimension of the
input and output is the symbol ``'batch'``, and every shape written into the graph keeps the
batch dimension symbolic (``0`` or ``-1`` in a Reshape), so one file serves every batch size.

``onnx`` is imported inside :func:`export`, so ``import filterbank`` never needs it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

import numpy as np

from filterbank.autograd import grad_mode
from filterbank.autograd.function import Function
from filterbank.tensor import Tensor

__all__ = ["export"]


class _Op:
    """One recorded op call: its Function, inputs (an op, a leaf Tensor or a constant per
    input), hyperparameters, output shape and the layer that ran it."""

    __slots__ = ("fn", "cls", "inputs", "hyper", "shape", "in_shapes", "module")

    def __init__(self, fn, cls, inputs, hyper, shape, in_shapes, module):
        self.fn, self.cls, self.inputs, self.hyper = fn, cls, inputs, hyper
        self.shape, self.in_shapes, self.module = shape, in_shapes, module


def _trace(model, x: Tensor):
    """Run ``model(x)`` and return (output, {id(fn): _Op}) for every recorded op."""
    ops: dict[int, _Op] = {}
    stack = ["<model>"]
    original = Function.__dict__["apply"]

    def apply(cls, *inputs, **hyper):
        out = original.__func__(cls, *inputs, **hyper)
        fn = out._ctx
        if fn is not None:
            srcs = tuple((t._ctx if t._ctx is not None else t) if isinstance(t, Tensor) else
                         ("const", t) for t in inputs)
            shapes = tuple(t.shape if isinstance(t, Tensor) else np.shape(t) for t in inputs)
            ops[id(fn)] = _Op(fn, cls, srcs, dict(hyper), tuple(out.shape), shapes, stack[-1])
        return out

    def enter(module, args, label):
        stack.append(label)

    def leave(module, args, out):
        stack.pop()  # returns None: the output is left alone

    handles = []
    for name, m in model.named_modules():
        label = f"{name or '<model>'} ({type(m).__name__})"
        handles.append(m.register_forward_pre_hook(
            lambda mod, args, _label=label: enter(mod, args, _label)))
        handles.append(m.register_forward_hook(leave))
    Function.apply = classmethod(apply)
    try:
        with grad_mode.enable_grad():
            y = model(x)
    finally:
        Function.apply = original
        for h in handles:
            h.remove()
    return y, ops


class _Graph:
    """The ONNX graph under construction, plus what converters need to know."""

    def __init__(self, helper, numpy_helper, dtype, dynamic: bool, batch: int, opset: int):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.dtype = np.dtype(dtype)
        self.dynamic, self.batch = dynamic, batch
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        name = f"{hint}_{self._count}"
        self._names.add(name)
        return name

    def node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | None = None,
             **attrs) -> str:
        """Add one node; returns its (first) output name."""
        if outputs is None:
            outputs = [self.fresh(op_type.lower())]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), list(outputs),
                                                name=self.fresh(f"n_{op_type}"), **attrs))
        return outputs[0]

    def const(self, value, hint: str = "const", dtype=None) -> str:
        arr = np.asarray(value, dtype=dtype if dtype is not None else None)
        if dtype is None and arr.dtype.kind == "f":
            arr = arr.astype(self.dtype)
        name = self.fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def reduce(self, op_type: str, x: str, axes, keepdims: int) -> str:
        """Reduce* with ``axes`` an attribute (opset 17) or an input (18 on; Sum since 13)."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes, "axes")], keepdims=keepdims)
        return self.node(op_type, [x], axes=list(axes), keepdims=keepdims)

    def ints(self, values, hint: str = "shape") -> str:
        return self.const(np.asarray(list(values), np.int64), hint, np.int64)

    def batch_shape(self, in_shape, out_shape) -> list[int]:
        """A Reshape target that keeps the batch dimension symbolic: 0 (copy the input's) when
        it is unchanged, -1 when it absorbs it; concrete elsewhere."""
        shape = [int(s) for s in out_shape]
        if not self.dynamic or not shape or not in_shape or in_shape[0] != self.batch:
            return shape
        if shape[0] == in_shape[0]:
            shape[0] = 0
        elif shape[0] % self.batch == 0 and -1 not in shape[1:]:
            shape[0] = -1
        return shape


# ------------------------------------------------------------------------------- converters
# One function per Function class: (graph, op, input names) -> output name. A converter may
# raise ValueError for hyperparameters ONNX cannot express.


def _elementwise(op_type):
    def convert(g, op, xs):
        return g.node(op_type, xs)
    return convert


def _conv(g, op, xs):
    h = op.hyper
    pads = [lo for lo, _ in h["pads"]] + [hi for _, hi in h["pads"]]
    return g.node("Conv", [x for x in xs if x is not None], strides=list(h["stride"]),
                  pads=pads, dilations=list(h["dilation"]), group=int(h["groups"]),
                  kernel_shape=list(op.in_shapes[1][2:]))


def _conv_transpose(g, op, xs):
    geo = op.hyper["conv_geometry"]  # the convolution whose adjoint this is
    nd = geo.nd
    x_spatial = op.in_shapes[0][2:]
    base = [(s - 1) * st - 2 * p + d * (k - 1) + 1 for s, st, (p, _), d, k in
            zip(x_spatial, geo.stride, geo.pads, geo.dilation, geo.K)]
    out_pad = [o - b for o, b in zip(geo.S, base)]
    pads = [p for p, _ in geo.pads] * 2
    return g.node("ConvTranspose", [x for x in xs if x is not None], strides=list(geo.stride),
                  pads=pads, dilations=list(geo.dilation), group=int(geo.groups),
                  kernel_shape=list(geo.K), output_padding=out_pad[:nd])


def _pool_attrs(op):
    h = op.hyper
    nd = len(h["kernel"])
    spatial = op.in_shapes[0][-nd:]
    floor_out = [(L + 2 * p - d * (k - 1) - 1) // s + 1 for L, p, d, k, s in
                 zip(spatial, h["padding"], h["dilation"], h["kernel"], h["stride"])]
    ceil = any(o != f for o, f in zip(h["out"], floor_out))
    return dict(kernel_shape=list(h["kernel"]), strides=list(h["stride"]),
                pads=list(h["padding"]) * 2, ceil_mode=int(ceil)), nd


def _max_pool(g, op, xs):
    attrs, _ = _pool_attrs(op)
    return g.node("MaxPool", xs, dilations=list(op.hyper["dilation"]), **attrs)


def _avg_pool(g, op, xs):
    if op.hyper.get("divisor_override") is not None:
        raise ValueError("divisor_override has no ONNX AveragePool equivalent")
    attrs, _ = _pool_attrs(op)
    return g.node("AveragePool", xs, count_include_pad=int(op.hyper["count_include_pad"]),
                  **attrs)


def _adaptive_avg(g, op, xs):
    out = tuple(op.hyper["out"])
    nd = len(out)
    spatial = op.in_shapes[0][-nd:]
    if all(n == 1 for n in out) and len(op.in_shapes[0]) == nd + 2:
        return g.node("GlobalAveragePool", xs)
    if all(L % n == 0 for L, n in zip(spatial, out)):
        k = [L // n for L, n in zip(spatial, out)]
        return g.node("AveragePool", xs, kernel_shape=k, strides=k)
    if nd != 2:
        raise ValueError(f"adaptive average pooling from {tuple(spatial)} to {out} (bins of "
                         f"unequal size) over {nd} dims")
    # bins of unequal size (or output larger than input): averaging is linear and separable,
    # y = Mh x Mw^T with the (n, L) averaging matrices of the forward pass
    P = importlib.import_module("filterbank.functional.pool")
    dt = g.dtype
    mh = P._adaptive_avg_matrix(spatial[0], out[0], dt)
    mw = P._adaptive_avg_matrix(spatial[1], out[1], dt)
    y = g.node("MatMul", [xs[0], g.const(mw.T, "pool_cols")])
    return g.node("MatMul", [g.const(mh, "pool_rows"), y])


def _adaptive_max(g, op, xs):
    # functional.pool records AdaptiveMaxPool only for bins of unequal size (sizes that
    # divide run, and so export, as a plain MaxPool): no ONNX op takes such bins
    out = tuple(op.hyper["out"])
    spatial = op.in_shapes[0][-len(out):]
    raise ValueError(f"adaptive max pooling from {tuple(spatial)} to {out} has no ONNX "
                     f"equivalent here")


def _reduce(op_type):
    def convert(g, op, xs):
        axes = op.hyper["axes"]
        rank = len(op.in_shapes[0])
        axes = list(range(rank)) if axes is None else [int(a) % rank for a in
                                                        np.atleast_1d(axes)]
        keep = int(bool(op.hyper["keepdims"]))
        if op_type == "ReduceMean" and keep and rank >= 3 and sorted(axes) == list(range(2, rank)):
            return g.node("GlobalAveragePool", xs)
        return g.reduce(op_type, xs[0], axes, keep)
    return convert


def _linear(g, op, xs):
    if len(op.in_shapes[0]) == 2:
        return g.node("Gemm", [x for x in xs if x is not None], transB=1)
    wt = g.node("Transpose", [xs[1]], perm=[1, 0])
    y = g.node("MatMul", [xs[0], wt])
    return g.node("Add", [y, xs[2]]) if len(xs) > 2 and xs[2] is not None else y


def _batch_norm(g, op, xs):
    h = op.hyper
    if h["training"]:
        raise ValueError("batch norm in training mode (batch statistics); call model.eval()")
    mean, var, _ = h["running"]
    c = op.in_shapes[0][1]
    scale = xs[1] if xs[1] is not None else g.const(np.ones(c), "bn_scale")
    bias = xs[2] if xs[2] is not None else g.const(np.zeros(c), "bn_bias")
    return g.node("BatchNormalization", [xs[0], scale, bias, g.const(mean, "bn_mean"),
                                         g.const(var, "bn_var")], epsilon=float(h["eps"]))


def _normalize(g, op, xs):
    """Layer norm (rows = everything before the normalised dims) or group / instance norm
    (rows = N x groups): ``(x - mean) / sqrt(var + eps)`` per row, then the affine map."""
    h = op.hyper
    if h.get("running") is not None:
        raise ValueError("instance norm that updates running statistics (training mode)")
    xshape = op.in_shapes[0]
    x, w, b = xs
    eps = float(h["eps"])
    if h["aview"][2] != -1:  # layer norm over the trailing dims pshape
        axis = len(xshape) - len(h["pshape"])
        w = w if w is not None else g.const(np.ones(h["pshape"]), "ln_scale")
        ins = [x, w] + ([b] if b is not None else [])
        return g.node("LayerNormalization", ins, axis=axis, epsilon=eps)
    n, c = xshape[0], xshape[1]
    groups = h["rows"] // n
    rows = g.node("Reshape", [x, g.ints([0 if g.dynamic else n, groups, -1])])
    mean = g.reduce("ReduceMean", rows, [2], 1)
    xc = g.node("Sub", [rows, mean])
    var = g.reduce("ReduceMean", g.node("Mul", [xc, xc]), [2], 1)
    std = g.node("Sqrt", [g.node("Add", [var, g.const(np.float64(eps), "eps")])])
    y = g.node("Reshape", [g.node("Div", [xc, std]), g.node("Shape", [x])])
    pshape = [c] + [1] * (len(xshape) - 2)
    if w is not None:
        y = g.node("Mul", [y, g.node("Reshape", [w, g.ints(pshape)])])
    if b is not None:
        y = g.node("Add", [y, g.node("Reshape", [b, g.ints(pshape)])])
    return y


def _softmax(op_type):
    def convert(g, op, xs):
        return g.node(op_type, xs, axis=int(op.hyper["axis"]))
    return convert


def _leaky(g, op, xs):
    return g.node("LeakyRelu", xs, alpha=float(op.hyper["slope"]))


def _elu(g, op, xs):
    alpha, scale = float(op.hyper["alpha"]), float(op.hyper["scale"])
    if scale != 1.0:
        return g.node("Selu", xs, alpha=alpha, gamma=scale)
    return g.node("Elu", xs, alpha=alpha)


def _clip(g, op, xs):
    lo, hi = op.hyper["lo"], op.hyper["hi"]
    ins = [xs[0], "" if lo is None else g.const(np.float64(lo), "min"),
           "" if hi is None else g.const(np.float64(hi), "max")]
    while ins[-1] == "":
        ins.pop()
    return g.node("Clip", ins)


def _hardtanh(g, op, xs):
    return g.node("Clip", [xs[0], g.const(np.float64(op.hyper["lo"]), "min"),
                           g.const(np.float64(op.hyper["hi"]), "max")])


def _reshape(g, op, xs):
    return g.node("Reshape", [xs[0], g.ints(g.batch_shape(op.in_shapes[0], op.shape))])


def _permute(g, op, xs):
    return g.node("Transpose", xs, perm=[int(d) for d in op.hyper["dims"]])


def _concat(g, op, xs):
    return g.node("Concat", xs, axis=int(op.hyper["axis"]))


def _pad(g, op, xs):
    width = op.hyper["width"]
    pads = [int(lo) for lo, _ in width] + [int(hi) for _, hi in width]
    return g.node("Pad", [xs[0], g.ints(pads, "pads"), g.const(np.float64(op.hyper["value"]),
                                                               "pad_value")], mode="constant")


def _pad_mode(g, op, xs):
    pads = op.hyper["pads"]
    full = [0, 0] + [int(lo) for lo, _ in pads] + [0, 0] + [int(hi) for _, hi in pads]
    mode = {"reflect": "reflect", "replicate": "edge"}.get(op.hyper["mode"])
    if mode is None:
        raise ValueError(f"padding mode {op.hyper['mode']!r} (ONNX Pad has no 'wrap' before "
                         f"opset 19)")
    return g.node("Pad", [xs[0], g.ints(full, "pads")], mode=mode)


def _resample(g, op, xs):
    in_shape, sizes = op.in_shapes[0], op.hyper["sizes"]
    nd = len(sizes)
    spatial = in_shape[-nd:]
    scales = [1.0] * (len(in_shape) - nd) + [n / L for n, L in zip(sizes, spatial)]
    if op.hyper["index"] is not None:
        for idx, L, n in zip(op.hyper["index"], spatial, sizes):
            if not np.array_equal(idx, np.minimum(np.arange(n) * L // n, L - 1)):
                raise ValueError("nearest resampling with a non-integer scale factor")
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    else:
        align = _align_corners(op.hyper["mats"], spatial, sizes)
        attrs = dict(mode="linear", coordinate_transformation_mode="align_corners" if align
                     else "pytorch_half_pixel")
    if all(float(f).is_integer() for f in scales):
        scale_input = g.const(np.asarray(scales, np.float32), "scales", np.float32)
        return g.node("Resize", [xs[0], "", scale_input], **attrs)
    # a non-integer factor would be rounded differently: give the output sizes, with the
    # leading (batch, channel) dims taken from the input's shape
    lead = g.node("Slice", [g.node("Shape", [xs[0]]), g.ints([0]),
                            g.ints([len(in_shape) - nd])])
    sizes_input = g.node("Concat", [lead, g.ints(sizes, "sizes")], axis=0)
    return g.node("Resize", [xs[0], "", "", sizes_input], **attrs)


def _align_corners(mats, spatial, sizes) -> bool:
    from filterbank.functional.upsample import _linear_matrix
    for m, L, n in zip(mats, spatial, sizes):
        if m is not None and n > 1:
            return bool(np.allclose(m, _linear_matrix(L, n, True, None, m.dtype)))
    return False


def _getitem(g, op, xs):
    index = op.hyper["index"]
    index = index if isinstance(index, tuple) else (index,)
    rank = len(op.in_shapes[0])
    if any(i is Ellipsis for i in index):
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (rank - len(index) + 1) + index[k + 1:]
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for axis, i in enumerate(index):
        if isinstance(i, slice):
            if i == slice(None):
                continue
            start, stop, step = i.indices(op.in_shapes[0][axis])
            if axis == 0 and g.dynamic:
                raise ValueError("slicing the batch dimension")
        elif isinstance(i, int | np.integer):
            start, stop, step = int(i), int(i) + 1, 1
            squeeze.append(axis)
        else:
            raise ValueError(f"indexing with {type(i).__name__} (only ints and slices)")
        if step < 0:
            raise ValueError("slicing with a negative step")
        starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
    y = xs[0]
    if axes:
        y = g.node("Slice", [y, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    if squeeze:
        y = g.node("Squeeze", [y, g.ints(squeeze, "axes")])
    return y if y is not xs[0] else g.node("Identity", [y])


def _identity(g, op, xs):
    return g.node("Identity", [xs[0]])


def _registry() -> dict:
    # import_module: some submodules share their name with a function that
    # filterbank.functional re-exports (``linear``), which ``from ... import`` would return
    def mod(name):
        return importlib.import_module(f"filterbank.functional.{name}")

    A, C, E, L, M = mod("activation"), mod("conv"), mod("elementwise"), mod("linear"), mod("matmul")
    N, P, R, S, U = mod("norm"), mod("pool"), mod("reduce"), mod("shape"), mod("upsample")
    return {
        E.Add: _elementwise("Add"), E.Sub: _elementwise("Sub"), E.Mul: _elementwise("Mul"),
        E.Div: _elementwise("Div"), E.Pow: _elementwise("Pow"), E.Neg: _elementwise("Neg"),
        E.Exp: _elementwise("Exp"), E.Log: _elementwise("Log"), E.Sqrt: _elementwise("Sqrt"),
        E.Abs: _elementwise("Abs"), E.Tanh: _elementwise("Tanh"),
        E.Sigmoid: _elementwise("Sigmoid"), E.ReLU: _elementwise("Relu"),
        E.Maximum: _elementwise("Max"), E.Minimum: _elementwise("Min"), E.Clip: _clip,
        E.Clone: _identity,
        A.LeakyReLU: _leaky, A.ELU: _elu, A.Hardtanh: _hardtanh,
        A.Softplus: lambda g, op, xs: _softplus(g, op, xs),
        A.SiLU: lambda g, op, xs: g.node("Mul", [xs[0], g.node("Sigmoid", xs)]),
        C.ConvNd: _conv, C.ConvTransposeNd: _conv_transpose, C.PadMode: _pad_mode,
        P.MaxPool: _max_pool, P.AvgPool: _avg_pool, P.AdaptiveAvgPool: _adaptive_avg,
        P.AdaptiveMaxPool: _adaptive_max,
        R.Mean: _reduce("ReduceMean"), R.Sum: _reduce("ReduceSum"),
        R.Softmax: _softmax("Softmax"), R.LogSoftmax: _softmax("LogSoftmax"),
        L.Linear: _linear, M.MatMul: _elementwise("MatMul"),
        N.BatchNorm: _batch_norm, N.Normalize: _normalize,
        S.Reshape: _reshape, S.Permute: _permute, S.Concatenate: _concat, S.Pad: _pad,
        S.GetItem: _getitem, U.Resample: _resample,
    }


def _softplus(g, op, xs):
    beta = float(op.hyper["beta"])
    if beta == 1.0:
        return g.node("Softplus", xs)
    scaled = g.node("Mul", [xs[0], g.const(np.float64(beta), "beta")])
    return g.node("Div", [g.node("Softplus", [scaled]), g.const(np.float64(beta), "beta")])


# ----------------------------------------------------------------------------------- export


def export(model, example_input, path: str | os.PathLike, opset: int = 17,
           dynamic_batch: bool = True, input_names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None):
    """Write ``model`` as an ONNX file that computes what ``model(x)`` computes in eval mode.

    The model runs once on ``example_input`` and the ops it records are translated one by
    one (Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, Gemm / MatMul,
    Add / Sub / Mul / Div, Relu, LeakyRelu, Elu, Sigmoid, Tanh, Softmax, LogSoftmax,
    BatchNormalization, LayerNormalization, group and instance norm, Flatten / Reshape,
    Concat, Pad, Resize, Clip, Transpose; dropout is the identity in eval mode). The model's
    training flag is restored afterwards. The file is checked with
    ``onnx.checker.check_model(full_check=True)`` and written atomically.

    Args:
        model: a :class:`filterbank.nn.Module` (``Sequential`` or any custom ``forward``).
        example_input: a Tensor or array of the input shape, batch first.
        path: the ``.onnx`` file to write.
        opset: the ONNX opset (17 or newer). Default: 17.
        dynamic_batch: make the first dimension of the input and outputs the symbol
            ``'batch'``, so the file runs at any batch size. Default: True.
        input_names: the graph input's name. Default: ``['input']``.
        output_names: the output names. Default: ``['output']`` (``output_0``, ... for a
            model returning a tuple).

    Returns:
        The ``onnx.ModelProto`` that was written.

    Raises:
        NotImplementedError: an op has no ONNX translation; the message names the op and
            the layer that called it.

    Example:
        >>> import filterbank as fb, filterbank.nn as nn
        >>> from filterbank.onnx import export
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        >>> proto = export(net, fb.randn(2, 4), "/tmp/net.onnx")  # doctest: +SKIP
    """
    import onnx
    from onnx import helper, numpy_helper

    from filterbank.serialization import atomic_write_bytes

    if opset < 17:
        raise ValueError(f"export: opset must be 17 or newer (LayerNormalization), got {opset}")
    arr = example_input.data if isinstance(example_input, Tensor) else np.asarray(example_input)
    if arr.dtype.kind != "f":
        raise TypeError(f"export: the example input must be floating point, got {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError("export: the example input needs a batch dimension")
    x = Tensor(np.array(arr, copy=True), requires_grad=True)
    was_training = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        y, ops = _trace(model, x)
    finally:
        for m, t in was_training:
            m.training = t
    outputs = list(y) if isinstance(y, tuple | list) else [y]
    if not all(isinstance(o, Tensor) for o in outputs):
        raise TypeError(f"export: the model must return a Tensor or a tuple of Tensors, got "
                        f"{type(y).__name__}")
    in_name = (list(input_names) if input_names else ["input"])[0]
    out_names = list(output_names) if output_names else (
        ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))])
    if len(out_names) != len(outputs):
        raise ValueError(f"export: {len(outputs)} outputs but output_names={output_names!r}")

    g = _Graph(helper, numpy_helper, arr.dtype, dynamic_batch, arr.shape[0], int(opset))
    g._names.update([in_name, *out_names])
    leaf_names = {}
    for name, p in list(model.named_parameters()) + list(model.named_buffers()):
        leaf_names.setdefault(id(p), name)
    converters = _registry()
    values: dict[int, str] = {}  # id(fn) or id(leaf) -> ONNX value name
    used_leaves: dict[int, Tensor] = {}

    def leaf(t: Tensor) -> str:
        key = id(t)
        if key not in values:
            if key == id(x):
                values[key] = in_name
            else:
                hint = leaf_names.get(key, "tensor")
                name = g.fresh(hint) if hint in g._names else hint
                g._names.add(name)
                g.initializers.append(numpy_helper.from_array(np.ascontiguousarray(t.data),
                                                              name))
                values[key] = name
            used_leaves[key] = t
        return values[key]

    # depth-first, iteratively (ResNet-50 graphs are deeper than Python's recursion limit)
    order: list[_Op] = []
    state: dict[int, bool] = {}
    roots = [o._ctx for o in outputs if o._ctx is not None]
    for root in roots:
        todo = [(root, False)]
        while todo:
            fn, done = todo.pop()
            key = id(fn)
            if done:
                if not state.get(key):
                    state[key] = True
                    order.append(ops[key])
                continue
            if key in state:
                continue
            state[key] = False
            if key not in ops:
                raise NotImplementedError(f"export: op {type(fn).__name__} was not recorded")
            todo.append((fn, True))
            for src in ops[key].inputs:
                if isinstance(src, Function) and id(src) not in state:
                    todo.append((src, False))

    for op in order:
        xs = []
        for src in op.inputs:
            if isinstance(src, Function):
                xs.append(values[id(src)])
            elif isinstance(src, Tensor):
                xs.append(leaf(src))
            elif src[1] is None:
                xs.append(None)
            else:
                xs.append(g.const(np.asarray(src[1], dtype=arr.dtype)
                                  if np.asarray(src[1]).dtype.kind in "fiub" else src[1]))
        convert = converters.get(op.cls)
        if convert is None:
            raise NotImplementedError(
                f"export: op {op.cls.__name__} (called by layer {op.module}) has no ONNX "
                f"translation")
        try:
            values[id(op.fn)] = convert(g, op, xs)
        except ValueError as e:
            raise NotImplementedError(f"export: op {op.cls.__name__} (called by layer "
                                      f"{op.module}): {e}") from None

    for o in outputs:
        if o._ctx is None:
            leaf(o)  # the input itself, or a constant (refused just below)
    if id(x) not in used_leaves:
        raise ValueError("export: the recorded graph does not reach the input: the output "
                         "was computed without gradient recording (no_grad inside forward, "
                         "or an integer op such as argmax), so it would be exported as a "
                         "constant")
    weight_bytes = sum(len(t.raw_data) for t in g.initializers)
    if weight_bytes >= 2**31 - 2**24:
        raise ValueError(f"export: {weight_bytes / 2**30:.2f} GiB of weights do not fit a "
                         f"single ONNX file (2 GiB protobuf limit; external data is not "
                         f"supported)")
    elem = helper.np_dtype_to_tensor_dtype(arr.dtype)
    batch = "batch" if dynamic_batch else None

    def value_info(name, shape):
        dims = list(shape)
        if dims and batch:
            dims[0] = batch
        return helper.make_tensor_value_info(name, elem, dims)

    graph_outputs = []
    for o, name in zip(outputs, out_names):
        src = values[id(o._ctx)] if o._ctx is not None else leaf(o)
        g.node("Identity", [src], [name])
        graph_outputs.append(value_info(name, o.shape))
    graph = helper.make_graph(g.nodes, type(model).__name__,
                              [value_info(in_name, arr.shape)], graph_outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="filterbank",
                              ir_version=helper.find_min_ir_version_for(
                                  [helper.make_opsetid("", int(opset))]))
    data = proto.SerializeToString()  # once: the checker takes the bytes too
    onnx.checker.check_model(data, full_check=True)
    atomic_write_bytes(path, data)
    return proto
