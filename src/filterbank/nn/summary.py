"""``model.summary(input_shape)``: a Keras-style table of layers, shapes, parameters, receptive
fields, FLOPs and activation memory, measured by running one forward pass on zeros."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from filterbank.autograd import grad_mode
from filterbank.backend import DEFAULT_DTYPE, xp
from filterbank.nn.module import Module
from filterbank.tensor import Tensor


def _tensors(obj) -> list[Tensor]:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, tuple | list):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _per_dim(value, n: int, default=None) -> tuple:
    if value is None:
        value = default
    if isinstance(value, int | float | np.integer | np.floating):
        return (value,) * n
    value = tuple(value)
    return value if len(value) == n else (value[0],) * n


class _RF:
    """Receptive field of one feature map along each spatial dim: ``size`` (input pixels one
    output pixel sees), ``jump`` (input pixels between neighbouring outputs) and ``start``
    (centre of the first output's field, in input coordinates; padding shifts it)."""

    __slots__ = ("size", "jump", "start", "spatial")

    def __init__(self, size, jump, start, spatial):
        self.size, self.jump, self.start, self.spatial = size, jump, start, spatial


def _next_rf(module: Module, rf: _RF | None, x: Tensor | None, out: Tensor) -> _RF | None:
    """Receptive-field arithmetic (Dumoulin & Visin; Araujo et al.) for one layer:
    ``size' = size + (k_eff - 1) jump``, ``jump' = jump * stride``,
    ``start' = start + ((k_eff - 1) / 2 - pad) jump``, ``k_eff = dilation (k - 1) + 1``."""
    nsp = out.ndim - 2
    if nsp < 1 or rf is None or len(rf.size) != nsp:
        return None
    spatial = tuple(out.shape[2:])
    size, jump, start = list(rf.size), list(rf.jump), list(rf.start)
    if getattr(module, "kernel_size", None) is not None:
        k = _per_dim(module.kernel_size, nsp)
        s = _per_dim(getattr(module, "stride", None), nsp, default=k)
        d = _per_dim(getattr(module, "dilation", 1), nsp, default=1)
        pad = getattr(module, "padding", 0)
        transposed = bool(getattr(module, "transposed", False))  # PyTorch's conv attribute
        for i in range(nsp):
            keff = d[i] * (k[i] - 1) + 1
            if isinstance(pad, str):  # 'valid' / 'same'
                p = 0 if pad == "valid" else (keff - 1) // 2
            else:
                p = _per_dim(pad, nsp, default=0)[i]
            if transposed:
                # an output pixel sees ceil(k_eff / stride) input pixels
                jump[i] = jump[i] / s[i]
                size[i] = size[i] + (math.ceil(keff / s[i]) - 1) * rf.jump[i]
                start[i] = start[i] - p * jump[i]
            else:
                size[i] = size[i] + (keff - 1) * jump[i]
                start[i] = start[i] + ((keff - 1) / 2 - p) * jump[i]
                jump[i] = jump[i] * s[i]
    elif x is not None and x.ndim == out.ndim and tuple(x.shape[2:]) != spatial:
        # no kernel attributes but the map changed size: adaptive/global pooling (each output
        # pools a window of in - (out - 1) * stride pixels, stride = in // out) or upsampling
        # (outputs get denser: jump * in / out, same field)
        for i in range(nsp):
            n_in, n_out = x.shape[2 + i], out.shape[2 + i]
            if n_out >= n_in:
                jump[i] = jump[i] * n_in / max(n_out, 1)
                continue
            st = max(n_in // max(n_out, 1), 1)
            kk = n_in - (n_out - 1) * st
            size[i] = size[i] + (kk - 1) * jump[i]
            start[i] = start[i] + (kk - 1) / 2 * jump[i]
            jump[i] = jump[i] * st
    return _RF(tuple(size), tuple(jump), tuple(start), spatial)


def _flops(module: Module, x: Tensor | None, out: Tensor) -> int:
    """2 FLOPs per multiply-add, for layers with a weight matrix or kernel; 0 for the rest."""
    w = getattr(module, "_parameters", {}).get("weight")
    if w is None:
        return 0
    if hasattr(module, "in_features") and w.ndim == 2 and out.ndim >= 1:
        # Linear (and Maxout): each of the out.size / out_features rows is a GEMV with W
        return 2 * w.data.size * (out.data.size // max(out.shape[-1], 1))
    if hasattr(module, "kernel_size") and w.ndim >= 3:
        if getattr(module, "transposed", False):
            # transposed conv: every input pixel scatters into C_out/groups * prod(k) outputs
            return 2 * (x.data.size if x is not None else 0) * int(np.prod(w.shape[1:]))
        return 2 * out.data.size * int(np.prod(w.shape[1:]))
    return 0


def _fmt_shape(shapes) -> str:
    if not shapes:
        return "?"
    return ", ".join(str(tuple(s)) for s in shapes)


def _fmt_rf(rf: _RF | None) -> str:
    if rf is None:
        return "-"
    size = "x".join(f"{v:g}" for v in rf.size)
    jump = "x".join(f"{v:g}" for v in rf.jump)
    return f"{size} /{jump}"


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} B" if unit == "B" else f"{n:,.2f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _trace(model: Module, shape: tuple[int, ...], dtype) -> tuple[list[dict], Tensor]:
    rows: list[dict] = []
    rfs: dict[int, _RF | None] = {}
    keep: list = []  # outputs stay alive so their ids are not reused during the pass
    seen_params: set[int] = set()

    def lookup(x: Tensor | None) -> _RF | None:
        if x is None:
            return None
        if id(x) in rfs:
            return rfs[id(x)]
        # produced by a functional op between layers (a residual add, a concat): take the
        # widest field recorded for a map of the same spatial size
        cands = [r for r in rfs.values()
                 if r is not None and r.spatial == tuple(x.shape[2:]) and x.ndim > 2]
        return max(cands, key=lambda r: np.prod(r.size), default=None)

    def hook(name: str):
        def fn(module, args, output):
            xs = _tensors(args)
            x = xs[0] if xs else None
            outs = _tensors(output)
            out = outs[0] if outs else None
            rf = _next_rf(module, lookup(x), x, out) if out is not None else None
            for o in outs:
                rfs[id(o)] = rf
            keep.append(output)
            params = [p for p in module._parameters.values()
                      if p is not None and id(p) not in seen_params]
            seen_params.update(id(p) for p in params)
            rows.append({
                "name": name or type(module).__name__,
                "type": type(module).__name__,
                "output_shape": tuple(out.shape) if len(outs) == 1 else
                tuple(tuple(o.shape) for o in outs),
                "params": int(sum(p.data.size for p in params)),
                "trainable_params": int(sum(p.data.size for p in params if p.requires_grad)),
                "receptive_field": None if rf is None else rf.size,
                "jump": None if rf is None else rf.jump,
                "rf_start": None if rf is None else rf.start,
                "flops": int(_flops(module, x, out)) if out is not None else 0,
                "output_bytes": int(sum(o.data.nbytes for o in outs)),
            })
        return fn

    handles = []
    for name, m in model.named_modules():
        if not m._modules or any(p is not None for p in m._parameters.values()):
            handles.append(m.register_forward_hook(hook(name)))
    x = Tensor._wrap(xp.zeros(shape, dtype))
    if x.ndim > 2:
        nsp = x.ndim - 2
        rfs[id(x)] = _RF((1,) * nsp, (1,) * nsp, (0.0,) * nsp, tuple(x.shape[2:]))
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    return rows, out


def summary(model: Module, input_shape, *, includes_batch: bool | None = None, dtype=None,
            print_fn: Callable[[str], object] | None = print) -> dict:
    """Print a table of the layers of ``model`` and return the numbers behind it.

    One forward pass on zeros (in ``eval()`` mode, without recording a graph; the training
    flags are restored afterwards) with forward hooks on the leaf modules gives, per layer
    call: dotted name, type, output shape, parameter count (a shared layer's parameters are
    counted at its first call), receptive field, FLOPs and output bytes.

    - Receptive field: ``size /jump`` per spatial dim, accumulated through every layer that has
      ``kernel_size`` / ``stride`` / ``dilation`` / ``padding`` attributes (conv, pooling):
      ``size' = size + (k_eff - 1) * jump``, ``jump' = jump * stride``, ``k_eff = d (k - 1) + 1``.
      Elementwise layers keep it; ``-`` once the output has no spatial dims (after Flatten).
    - FLOPs: one multiply-add counts as 2 FLOPs (the bias add completes the K - 1 additions of
      a K-term dot product), counted for Linear/Maxout (``2 * in * out`` per row) and
      convolutions (``2 * C_in/groups * prod(k)`` per output element); other layers count 0.
      Totals are for the traced batch (batch 1 by default, i.e. per sample).
    - Memory: bytes of every hooked layer's output (float32 unless ``dtype`` says otherwise),
      the input and the parameters.

    Args:
        model: the module to describe.
        input_shape: shape of one sample, e.g. ``(3, 32, 32)``; a batch dim of 1 is prepended.
            A shape that already includes the batch is accepted too.
        includes_batch: True: ``input_shape`` already includes the batch dim; False: it does
            not; None (default): try without, and if the forward pass rejects that shape, use
            ``input_shape`` as the full shape.
        dtype: input dtype (default: the dtype of the first floating parameter, else float32).
        print_fn: called with the table text; None to print nothing.

    Returns:
        dict with ``rows`` (list of dicts with keys ``name, type, output_shape, params,
        trainable_params, receptive_field, jump, rf_start, flops, output_bytes``) and the
        totals ``total_params, trainable_params, non_trainable_params, buffer_elements,
        total_flops, input_shape, output_shape, input_bytes, activation_bytes, param_bytes,
        table``.

    Example:
        >>> import filterbank as fb
        >>> nn = fb.nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        >>> info = net.summary((1, 28, 28), print_fn=None)
        >>> info["total_params"], info["rows"][1]["output_shape"]
        (7850, (1, 10))
    """
    if isinstance(input_shape, int | np.integer):
        input_shape = (int(input_shape),)
    input_shape = tuple(int(s) for s in input_shape)
    if any(s < 0 for s in input_shape):
        raise ValueError(f"summary: expected a shape of non-negative ints, got {input_shape}")
    if dtype is None:
        floats = [p.dtype for p in model.parameters() if p.dtype.kind == "f"]
        dtype = floats[0] if floats else DEFAULT_DTYPE
    dtype = np.dtype(dtype)

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with grad_mode.no_grad():
            if includes_batch:
                shape = input_shape
                rows, out = _trace(model, shape, dtype)
            else:
                shape = (1, *input_shape)
                try:
                    rows, out = _trace(model, shape, dtype)
                except (ValueError, TypeError, RuntimeError):
                    if includes_batch is False:
                        raise
                    shape = input_shape
                    rows, out = _trace(model, shape, dtype)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)

    params = list(model.parameters())
    total = int(sum(p.data.size for p in params))
    trainable = int(sum(p.data.size for p in params if p.requires_grad))
    outs = _tensors(out)
    info = {
        "rows": rows,
        "total_params": total,
        "trainable_params": trainable,
        "non_trainable_params": total - trainable,
        "buffer_elements": int(sum(b.data.size for b in model.buffers())),
        "total_flops": int(sum(r["flops"] for r in rows)),
        "input_shape": shape,
        "output_shape": tuple(outs[0].shape) if len(outs) == 1 else
        tuple(tuple(o.shape) for o in outs),
        "input_bytes": int(np.prod(shape, dtype=np.int64)) * dtype.itemsize,
        "activation_bytes": int(sum(r["output_bytes"] for r in rows)),
        "param_bytes": int(sum(p.data.nbytes for p in params)),
    }
    info["table"] = _table(model, info)
    if print_fn is not None:
        print_fn(info["table"])
    return info


def _table(model: Module, info: dict) -> str:
    header = ("Layer (type)", "Output shape", "Param #", "RF size /jump", "FLOPs")
    body = []
    for r in info["rows"]:
        shape = r["output_shape"]
        shapes = [shape] if shape and isinstance(shape[0], int | np.integer) else list(shape)
        rf = None if r["receptive_field"] is None else _RF(r["receptive_field"], r["jump"],
                                                           None, None)
        body.append((f"{r['name']} ({r['type']})", _fmt_shape(shapes), f"{r['params']:,}",
                     _fmt_rf(rf), f"{r['flops']:,}"))
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    right = (False, False, True, False, True)

    def line(cells):
        return "  ".join(c.rjust(w) if rj else c.ljust(w)
                         for c, w, rj in zip(cells, widths, right)).rstrip()

    rule_len = sum(widths) + 2 * (len(widths) - 1)
    lines = [f"Model: {type(model).__name__}   input {info['input_shape']}", "=" * rule_len,
             line(header), "=" * rule_len]
    lines += [line(row) for row in body]
    lines += [
        "=" * rule_len,
        f"Total params: {info['total_params']:,}",
        f"Trainable params: {info['trainable_params']:,}",
        f"Non-trainable params: {info['non_trainable_params']:,}",
    ]
    if info["buffer_elements"]:
        lines.append(f"Buffers (running statistics etc.): {info['buffer_elements']:,} elements")
    lines += [
        "-" * rule_len,
        f"Total FLOPs (multiply-add = 2): {info['total_flops']:,}",
        f"Input size: {_human_bytes(info['input_bytes'])}",
        f"Forward activations: {_human_bytes(info['activation_bytes'])}",
        f"Params size: {_human_bytes(info['param_bytes'])}",
        "=" * rule_len,
    ]
    return "\n".join(lines)
