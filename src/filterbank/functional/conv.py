"""Convolution: ``conv1d/2d/3d`` and the transposed (up-)convolution ``conv_transpose1d/2d/3d``.

Forward and backward are written by hand, for any number of spatial dims, by the algorithms in
:mod:`filterbank.functional._conv`, one module each; ``_conv/registry.py`` lists them in
priority order with the measured rule that picks one per convolution:

* **Winograd** ``F(4x4, 3x3)`` (``winograd43.py``) and ``F(2x2, 3x3)`` (``winograd.py``) for
  2-d 3x3, stride-1, undilated convolutions with enough channels and large enough outputs
  (the bulk of VGG and ResNet): fewer multiplications per output tile, as one GEMM over the
  channels per tile element;
* **Row-Toeplitz** (``toeplitz.py``) for 2-d convolutions with few output channels on narrow
  images (LeNet-5's layers): one GEMM of whole input rows against a banded weight matrix;
* **shifted GEMM** (``shifted.py``): channels-last, one GEMM per kernel tap; only when forced;
* **im2col + GEMM** (``im2col.py``, every case, the fallback; a transposed convolution runs
  its pieces the other way round: its forward is col2im).

im2col, shifted GEMM and Winograd work on chunks of a few samples at a time, so that the
intermediates of a chunk stay in cache, and run the chunks on filterbank's thread pool
(:func:`filterbank._parallel.run_tasks`) with BLAS switched to one thread meanwhile (NumPy
releases the GIL in ufuncs, copies and BLAS calls, so the copies and transforms run in
parallel too, not just the GEMMs). The columns or Winograd tiles are kept for the weight
gradient when they fit ``_conv.chunking.KEEP_BYTES``, else rebuilt in backward. Row-Toeplitz
makes one GEMM per direction for the whole batch, threaded by BLAS itself (up to
``FILTERBANK_NUM_THREADS``), and is only picked while its row matrix fits that budget.

Big arrays come from :mod:`filterbank._workspace`, which reuses an array only once nothing
else references it.

On a GPU (CuPy arrays) every convolution runs im2col + one GEMM per direction (cuBLAS), the
whole batch at once, with no thread pool and no workspace (CuPy's memory pool reuses blocks);
the measured CPU rule is not consulted. A forced algorithm (``_FORCE_ALGO``) runs on the GPU
too, for the tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from filterbank import _parallel, _xp
from filterbank._workspace import workspace as _workspace
from filterbank.autograd.function import Function
from filterbank.backend import get_array_module, is_device_array
from filterbank.functional._conv import registry
from filterbank.functional._conv.geometry import _Geometry, _is_int, _ntuple, _padding_pairs
from filterbank.functional._conv.im2col import _bias_grad, _Im2col
from filterbank.functional._conv.toeplitz import _RowToeplitz
from filterbank.functional._conv.winograd import _Winograd
from filterbank.tensor import Tensor

# the algorithm classes are named here for bench/conv_algos.py and the tests
__all__ = ["ConvNd", "ConvTransposeNd", "PadMode", "_Geometry", "_Im2col", "_RowToeplitz",
           "_Winograd", "_algorithm", "_workspace", "conv1d", "conv2d", "conv3d",
           "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "pad_mode"]


def _as_tensor(x, name: str, what: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray) or is_device_array(x):
        return Tensor._wrap(x)
    raise TypeError(f"{name}: expected {what} to be a Tensor, got {type(x).__name__}")



# ------------------------------------------------------------------------------- Functions

#: Force an algorithm by its registry name (``_conv.registry.ALGORITHMS``: "winograd43",
#: "winograd", "toeplitz", "shifted", "im2col") for the tests and the benchmark; None lets
#: the registry's measured rule pick.
_FORCE_ALGO: str | None = None


def _algorithm(g: _Geometry, itemsize: int = 4, host: bool = True):
    """The algorithm class for ``g`` (``_FORCE_ALGO``, or the registry's measured pick on
    the host; im2col on a GPU, ``host=False``)."""
    return _entry(g, itemsize, host).impl


def _entry(g: _Geometry, itemsize: int, host: bool):
    if host or _FORCE_ALGO is not None:
        return registry.choose(g, itemsize, _FORCE_ALGO)
    return registry.get("im2col")


class ConvNd(Function):
    """``y = x * w + b`` (cross-correlation) over 1, 2 or 3 spatial dims.

    Hyperparameters: ``stride``, ``pads`` ((before, after) per dim), ``dilation``, ``groups``.
    """

    def forward(self, x, w, b=None):
        g = _Geometry(x.shape, w.shape, self.stride, self.pads, self.dilation, self.groups)
        self.geometry = g
        if g.N == 0:
            return get_array_module(x).zeros((0, g.O) + g.So, x.dtype)
        host = type(x) is np.ndarray
        entry = _entry(g, x.itemsize, host)
        # on a GPU: cuBLAS, no BLAS thread control
        self.algo, self.blas = entry.impl, entry.blas if host else contextlib.nullcontext
        with self.blas():
            return self.algo.forward(self, x, w, b, g)

    def backward(self, gy):
        g = self.geometry
        if g.N == 0:
            xp = get_array_module(gy)
            return (xp.zeros((0, g.C) + g.S, gy.dtype), xp.zeros((g.O, g.Cg) + g.K, gy.dtype),
                    xp.zeros((g.O,), gy.dtype))
        with self.blas():
            return self.algo.backward(self, gy, g)


class ConvTransposeNd(Function):
    """``y = conv_transpose(x, w) + b``: the adjoint (input gradient) of ``ConvNd``.

    ``conv_geometry`` describes the convolution whose input gradient this is: its input is
    ``y`` and its output is ``x``. Backward is that convolution itself (``dx = conv(dy)``)
    and its weight gradient with the roles of input and output gradient swapped.
    """

    def forward(self, x, w, b=None):
        g = self.conv_geometry
        host = type(x) is np.ndarray
        y = _xp.empty((g.N, g.C) + g.S, x.dtype, x)
        if g.N:
            with _parallel.blas_threads(1) if host else contextlib.nullcontext():
                _Im2col.run(g, w, gy=x, dx=y)
        if b is not None:
            y += b.reshape((1, g.C) + (1,) * g.nd)
        if self.needs_input_grad[1]:
            self.x = x
        if self.needs_input_grad[0]:
            self.w = w
        return y

    def backward(self, gy):
        g = self.conv_geometry
        need_x, need_w = self.needs_input_grad[:2]
        need_b = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        host = type(gy) is np.ndarray
        dx = _xp.empty((g.N, g.O) + g.So, gy.dtype, gy) if need_x else None
        dw = None
        if g.N == 0:
            dw = get_array_module(gy).zeros((g.O, g.Cg) + g.K, gy.dtype) if need_w else None
        elif need_x or need_w:
            with _parallel.blas_threads(1) if host else contextlib.nullcontext():
                dw, _, _ = _Im2col.run(g, self.w if need_x else None, x=gy, y=dx,
                                       gy=self.x if need_w else None, want_dw=need_w)
        return dx, dw, (_bias_grad(gy) if need_b else None)


_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class PadMode(Function):
    """Reflect / replicate / circular padding of the spatial dims (hyper: ``pads``, ``mode``).

    Backward folds the gradient of every padded border back onto the input cell it copied.
    """

    def forward(self, x):
        width = ((0, 0), (0, 0)) + tuple(self.pads)
        self.shape = x.shape
        return get_array_module(x).pad(x, width, mode=_PAD_MODES[self.mode])

    def backward(self, gy):
        g = gy
        for axis in range(2, gy.ndim):
            lo, hi = self.pads[axis - 2]
            size = self.shape[axis]
            inner = _take(g, axis, lo, lo + size).copy()
            left, right = _take(g, axis, 0, lo), _take(g, axis, lo + size, lo + size + hi)
            if self.mode == "circular":
                _add_into(inner, axis, size - lo, size, left)
                _add_into(inner, axis, 0, hi, right)
            elif self.mode == "replicate":
                _add_into(inner, axis, 0, 1, left.sum(axis=axis, keepdims=True))
                _add_into(inner, axis, size - 1, size, right.sum(axis=axis, keepdims=True))
            else:  # reflect: padded index lo - i mirrors x[i], x[size - 1 - i] likewise
                _add_into(inner, axis, 1, lo + 1, left[_reverse(axis)])
                _add_into(inner, axis, size - 1 - hi, size - 1, right[_reverse(axis)])
            g = inner
        return g


def _reverse(axis):
    return (slice(None),) * axis + (slice(None, None, -1),)


def _take(a, axis, start, stop):
    return a[(slice(None),) * axis + (slice(start, stop),)]


def _add_into(a, axis, start, stop, values):
    if stop > start:
        view = _take(a, axis, start, stop)
        view += values


# ---------------------------------------------------------------------------- public API


def _check_common(name, x, weight, bias, nd, transposed):
    x = _as_tensor(x, name, "input")
    weight = _as_tensor(weight, name, "weight")
    if bias is not None:
        bias = _as_tensor(bias, name, "bias")
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype}")
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{name}: input and {what} must have the same dtype, got "
                            f"{x.dtype} and {t.dtype}")
    if weight.ndim != nd + 2:
        raise ValueError(f"{name}: expected a {nd + 2}-d weight "
                         f"({'C_in, C_out / groups' if transposed else 'C_out, C_in / groups'}"
                         f", *kernel), got shape {tuple(weight.shape)}")
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{name}: expected a {nd + 2}-d (batched) or {nd + 1}-d (unbatched) "
                         f"input, got shape {tuple(x.shape)}")
    return x, weight, bias


def _check_groups(name, groups, c_in, c_out, xshape):
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{name}: expected groups to be a positive int, got {groups!r}")
    if c_in % groups or c_out % groups:
        raise ValueError(f"{name}: groups={groups} must divide both the input channels "
                         f"({c_in}) and the output channels ({c_out}) (input shape {xshape})")


def _check_bias(name, bias, channels):
    if bias is not None and tuple(bias.shape) != (channels,):
        raise ValueError(f"{name}: expected a bias of shape ({channels},), got "
                         f"{tuple(bias.shape)}")


def _batched(x, nd):
    return (x, False) if x.ndim == nd + 2 else (x.reshape((1,) + tuple(x.shape)), True)


def _conv(x, weight, bias, stride, padding, dilation, groups, nd, name, padding_mode="zeros"):
    x, weight, bias = _check_common(name, x, weight, bias, nd, transposed=False)
    kernel = tuple(weight.shape[2:])
    stride = _ntuple(stride, nd, "stride", name, 1)
    dilation = _ntuple(dilation, nd, "dilation", name, 1)
    pads = _padding_pairs(padding, nd, kernel, stride, dilation, name)
    x, unbatched = _batched(x, nd)
    xshape = tuple(x.shape)
    c_out = weight.shape[0]
    _check_groups(name, groups, xshape[1], c_out, xshape)
    if weight.shape[1] * groups != xshape[1]:
        raise ValueError(f"{name}: expected {weight.shape[1] * groups} input channels "
                         f"(weight {tuple(weight.shape)}, groups={groups}), got {xshape[1]} "
                         f"(input shape {xshape})")
    _check_bias(name, bias, c_out)
    if padding_mode != "zeros":
        for (lo, hi), s in zip(pads, xshape[2:]):
            limit = {"reflect": s - 1, "circular": s}.get(padding_mode, max(lo, hi))
            if max(lo, hi) > limit:
                raise ValueError(f"{name}: {padding_mode} padding {pads} needs at most "
                                 f"{limit} per side for input shape {xshape}")
        x = PadMode.apply(x, pads=pads, mode=padding_mode)
        pads = ((0, 0),) * nd
        xshape = tuple(x.shape)
    for i, (s, (lo, hi), k, d) in enumerate(zip(xshape[2:], pads, kernel, dilation)):
        span = d * (k - 1) + 1
        if s + lo + hi < span:
            raise ValueError(f"{name}: the (dilated) kernel size {span} is larger than the "
                             f"padded input size {s + lo + hi} in spatial dim {i} (input shape "
                             f"{xshape}, kernel {kernel}, padding {pads}, dilation {dilation})")
    y = ConvNd.apply(x, weight, bias, stride=stride, pads=pads, dilation=dilation,
                     groups=int(groups))
    return y.reshape(tuple(y.shape[1:])) if unbatched else y


def _conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation, nd,
                    name, output_size=None):
    x, weight, bias = _check_common(name, x, weight, bias, nd, transposed=True)
    kernel = tuple(weight.shape[2:])
    stride = _ntuple(stride, nd, "stride", name, 1)
    dilation = _ntuple(dilation, nd, "dilation", name, 1)
    if isinstance(padding, str):
        raise ValueError(f"{name}: padding must be an int or a tuple of {nd} ints, got "
                         f"{padding!r}")
    pad = _ntuple(padding, nd, "padding", name, 0)
    opad = _ntuple(output_padding, nd, "output_padding", name, 0)
    x, unbatched = _batched(x, nd)
    xshape = tuple(x.shape)
    if xshape[1] != weight.shape[0]:
        raise ValueError(f"{name}: expected {weight.shape[0]} input channels (weight "
                         f"{tuple(weight.shape)}), got {xshape[1]} (input shape {xshape})")
    c_out = weight.shape[1] * (groups if _is_int(groups) else 1)
    _check_groups(name, groups, xshape[1], c_out, xshape)
    _check_bias(name, bias, c_out)
    base = tuple((s - 1) * st - 2 * p + d * (k - 1) + 1
                 for s, st, p, d, k in zip(xshape[2:], stride, pad, dilation, kernel))
    if output_size is not None:
        size = tuple(int(v) for v in output_size)[-nd:]
        if len(size) != nd:
            raise ValueError(f"{name}: output_size needs {nd} spatial sizes, got {output_size}")
        opad = tuple(s - b for s, b in zip(size, base))
    for i, (o, st, d) in enumerate(zip(opad, stride, dilation)):
        if not 0 <= o < max(st, d):
            raise ValueError(f"{name}: output padding must be smaller than either stride or "
                             f"dilation and non-negative, got output_padding={opad} (stride "
                             f"{stride}, dilation {dilation}) in spatial dim {i}")
    out = tuple(b + o for b, o in zip(base, opad))
    if min(out) <= 0:
        raise ValueError(f"{name}: the output size {out} is not positive (input shape "
                         f"{xshape}, kernel {kernel}, stride {stride}, padding {pad}, "
                         f"dilation {dilation})")
    g = _Geometry((xshape[0], c_out) + out, (xshape[1],) + tuple(weight.shape[1:]), stride,
                  tuple((p, p) for p in pad), dilation, groups, out_spatial=xshape[2:])
    y = ConvTransposeNd.apply(x, weight, bias, conv_geometry=g)
    return y.reshape(tuple(y.shape[1:])) if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-d convolution (cross-correlation) over ``(N, C_in, L)`` inputs.

    ``y[n, o, l] = b[o] + sum_(c, k) w[o, c, k] x_pad[n, g(o) C_in/groups + c, s l + d k]``

    Args are those of :func:`conv2d` with one spatial dim.

    Shape:
        - Input ``(N, C_in, L_in)`` or ``(C_in, L_in)``; weight ``(C_out, C_in / groups, K)``.
        - Output ``(N, C_out, L_out)``, ``L_out = floor((L_in + 2P - D (K - 1) - 1) / S) + 1``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.conv1d(fb.ones(1, 1, 5), fb.ones(1, 1, 3)).tolist()
        [[[3.0, 3.0, 3.0]]]
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-d convolution (cross-correlation, as in every deep-learning library) of ``(N, C, H, W)``.

    ``y[n, o, i, j] = b[o] + sum_(c, p, q) w[o, c, p, q] x_pad[n, c', s i + d p, s j + d q]``
    with ``c' = (o // (C_out / groups)) (C_in / groups) + c``: each group of output channels sees
    its own slice of input channels (``groups = C_in`` is a depthwise convolution).

    Backward: ``dL/dw[o, c, p, q] = sum_(n, i, j) dL/dy[n, o, i, j] x_pad[n, c', s i + d p,
    s j + d q]``, ``dL/db[o] = sum dL/dy[n, o]`` and ``dL/dx`` is the transposed convolution of
    ``dL/dy`` with the same weight.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_out, C_in / groups, kH, kW)``.
        bias: ``(C_out,)`` or None. Default: None.
        stride: int or (sH, sW). Default: 1.
        padding: int, (pH, pW), ``'valid'`` (no padding) or ``'same'`` (output size = input
            size; stride 1 only; for even kernels the extra zero goes after). Default: 0.
        dilation: spacing between kernel taps, int or (dH, dW). Default: 1.
        groups: split the channels into this many independent convolutions. Default: 1.

    Shape:
        - Output ``(N, C_out, H_out, W_out)`` with
          ``H_out = floor((H_in + 2P - D (K - 1) - 1) / S) + 1`` (same for W).

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> x = fb.tensor([[[[1, .5, 1, 0], [0, .25, .5, 1], [1, .25, 0, 1], [.5, 0, 1, 1]]]])
        >>> F.conv2d(x, fb.tensor([[[[1., 0], [0, 2]]]])).tolist()
        [[[[1.5, 1.5, 3.0], [0.5, 0.25, 2.5], [1.0, 2.25, 2.0]]]]
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """3-d convolution (cross-correlation) over ``(N, C_in, D, H, W)`` inputs (video, volumes).

    ``y[n, o, t, i, j] = b[o] + sum_(c, r, p, q) w[o, c, r, p, q] x_pad[n, c', s t + d r, ...]``

    Args are those of :func:`conv2d` with three spatial dims.

    Shape:
        - Input ``(N, C_in, D_in, H_in, W_in)``; weight ``(C_out, C_in / groups, kD, kH, kW)``.
        - Output ``(N, C_out, D_out, H_out, W_out)``, each
          ``floor((size + 2P - D (K - 1) - 1) / S) + 1``.

    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.conv3d(fb.ones(1, 2, 4, 4, 4), fb.ones(3, 2, 3, 3, 3), padding=1).shape
        (1, 3, 4, 4, 4)
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


_TRANSPOSE_DOC = """

    Args:
        input: ``(N, C_in, *S_in)`` or unbatched ``(C_in, *S_in)``.
        weight: ``(C_in, C_out / groups, *K)`` (note: input channels first).
        bias: ``(C_out,)`` or None. Default: None.
        stride: int or tuple; the upsampling factor. Default: 1.
        padding: int or tuple: the padding of the convolution this is the transpose of; crops
            ``P`` from both sides of the full output. Default: 0.
        output_padding: extra size added on one side of each dim (< stride or dilation), to
            pick among the input sizes a strided convolution maps to the same size. Default: 0.
        groups: as in the convolution. Default: 1.
        dilation: spacing between kernel taps. Default: 1.

    Shape:
        - Output ``(N, C_out, *S_out)`` with
          ``S_out = (S_in - 1) S - 2P + D (K - 1) + output_padding + 1``.
"""


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 3, "conv_transpose3d")


conv_transpose1d.__doc__ = """1-d transposed convolution ("up-convolution", fractionally
    strided convolution) of ``(N, C_in, L)`` inputs: the gradient of :func:`conv1d` with respect
    to its input, so each input value scatters ``value * w`` into a window of the output.

    ``y[n, o, s l + d k - P] += x[n, c, l] w[c, o, k]`` (summed over c in the group, k, l)
    """ + _TRANSPOSE_DOC + """
    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.conv_transpose1d(fb.ones(1, 1, 3), fb.ones(1, 1, 2), stride=2).tolist()
        [[[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]]
    """
conv_transpose2d.__doc__ = """2-d transposed convolution ("up-convolution", fractionally
    strided convolution, U-Net's decoder upsampling): the gradient of :func:`conv2d` with
    respect to its input. Each input pixel scatters ``pixel * w`` into a window of the output,
    so stride 2 doubles the spatial size.

    ``y[n, o, s i + d p - P, s j + d q - P] += x[n, c, i, j] w[c, o, p, q]``
    """ + _TRANSPOSE_DOC + """
    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.conv_transpose2d(fb.ones(1, 4, 8, 8), fb.ones(4, 2, 2, 2), stride=2).shape
        (1, 2, 16, 16)
    """
conv_transpose3d.__doc__ = """3-d transposed convolution (volumetric up-convolution): the
    gradient of :func:`conv3d` with respect to its input.

    ``y[n, o, s t + d r - P, s i + d p - P, s j + d q - P] += x[n, c, t, i, j] w[c, o, r, p, q]``
    """ + _TRANSPOSE_DOC + """
    Example:
        >>> import filterbank as fb
        >>> import filterbank.functional as F
        >>> F.conv_transpose3d(fb.ones(1, 2, 2, 2, 2), fb.ones(2, 3, 2, 2, 2), stride=2).shape
        (1, 3, 4, 4, 4)
    """


def pad_mode(x, pads: Sequence[tuple[int, int]], mode: str) -> Tensor:
    """Pad the spatial dims of ``(N, C, *S)`` with ``mode`` in {'reflect', 'replicate',
    'circular'}; ``pads`` holds (before, after) per spatial dim. Used by the conv layers'
    ``padding_mode``."""
    if mode not in _PAD_MODES:
        raise ValueError(f"pad_mode: expected mode in {sorted(_PAD_MODES)}, got {mode!r}")
    return PadMode.apply(x, pads=tuple(tuple(p) for p in pads), mode=mode)
