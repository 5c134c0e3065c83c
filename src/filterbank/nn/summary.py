"""``model.summary(input_shape)``: a torchinfo-style table of the module tree (nested rows down to
``depth``), with input/output shapes, kernels, parameters and their share, receptive fields,
FLOPs, the skip connections of non-sequential models and a memory estimate, measured by running
one forward pass on zeros. An input too large for memory is refused before that pass (sized from
a small probe pass), never allocated."""

from __future__ import annotations

import math
import os
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

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


# ------------------------------------------------------------------------ memory budget
#: Used where neither the available memory nor the physical memory can be read.
FALLBACK_MEMORY = 16 * 2**30
#: Spatial sizes of the probe passes that size a large input's forward pass (see ``summary``).
PROBE_SIZES = (64, 128)


class _TooLarge(ValueError):
    """The traced pass would not fit in the memory budget (never retried with another shape)."""


def available_memory() -> int:
    """Bytes the traced forward pass of ``summary`` may use by default: the memory available
    now (``MemAvailable`` of /proc/meminfo on Linux, else the physical memory), at most the
    address space left under ``RLIMIT_AS``; :data:`FALLBACK_MEMORY` where none can be read."""
    limit = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limit = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if limit is None:
        try:
            limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            limit = FALLBACK_MEMORY
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            used = 0
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        used = int(line.split()[1]) * 1024
            limit = min(limit, max(soft - used, 0))
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return int(limit)


def _fmt_bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{int(n)} bytes"


@contextmanager
def _allocations() -> Iterator[Callable[[], tuple[int, int]]]:
    """Bytes allocated since entry, (now, peak), as tracemalloc sees them (NumPy reports its
    arrays to it). Where tracemalloc was already running it is left running and its peak
    untouched; the peak is then the current value."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]

    def used() -> tuple[int, int]:
        now, peak = tracemalloc.get_traced_memory()
        now = max(now - base, 0)
        return now, max(peak - base, now) if started else now

    try:
        yield used
    finally:
        if started:
            tracemalloc.stop()


def _too_large(shape, dtype, budget: int, need: str) -> _TooLarge:
    return _TooLarge(
        f"summary: input shape {shape} ({np.dtype(dtype).name}) {need} the limit of "
        f"{_fmt_bytes(budget)} (max_memory; by default the memory available); use a smaller "
        f"input size or batch")


def check_input_bytes(shape: Sequence[int], dtype=np.float32,
                      max_memory: int | None = None) -> None:
    """Raise ``ValueError`` when an input of ``shape`` alone takes more than ``max_memory``
    bytes (default: :func:`available_memory`): for callers that build a model sized by its
    input before calling :func:`summary`. Sizes are Python ints: no overflow."""
    shape = tuple(int(s) for s in shape)
    budget = available_memory() if max_memory is None else int(max_memory)
    dtype = np.dtype(dtype)
    n = math.prod(shape) * dtype.itemsize
    if n > budget:
        raise _too_large(shape, dtype, budget, f"alone takes {_fmt_bytes(n)}, more than")


def _probe_shape(shape: tuple[int, ...], size: int) -> tuple[int, ...]:
    """One sample, spatial dims (those after the channels) cut to ``size``."""
    if len(shape) >= 3:
        return (1, shape[1], *(min(s, size) for s in shape[2:]))
    return (1, *shape[1:]) if shape else shape


def _probe_peak(model: Module, probe: tuple[int, ...], dtype, budget: int) -> int | None:
    """Peak bytes allocated by the traced pass at ``probe``; None when the model rejects it."""
    try:
        with _allocations() as used:
            _trace(model, probe, dtype, budget, used)
            return used()[1]
    except _TooLarge:
        raise
    except Exception:  # any error of the model at this size: the full pass decides (guarded)
        return None


def _check_size(model: Module, shape: tuple[int, ...], dtype, budget: int) -> None:
    """Refuse ``shape`` before any large allocation when its forward pass would not fit.

    The input alone is checked first. Then, when the input is larger than one sample of
    64 x 64 (per spatial dim), the pass is sized by a probe: the same forward on one sample
    with the spatial dims cut to 64 (128 where the model rejects 64), its peak allocation
    scaled by the ratio of input elements (activations grow with the pixels and the batch).
    When that is over budget, a second probe at half the size fits ``a + b * elements``, and
    the smaller estimate counts, so that a constant share (a classifier after global pooling)
    is not scaled up. A model that rejects both sizes is left to the full pass, which stops
    after the first layer that takes it over the budget.
    """
    check_input_bytes(shape, dtype, budget)
    n = math.prod(shape)
    for size in PROBE_SIZES:
        probe = _probe_shape(shape, size)
        m = math.prod(probe)
        if probe == shape or m == 0:
            return  # small: the full pass is as cheap as a probe
        try:
            peak = _probe_peak(model, probe, dtype, budget)
        except _TooLarge:
            raise _too_large(shape, dtype, budget, f"needs more than a pass at {probe}, which "
                             f"alone took more than") from None
        if peak is not None:
            break
    else:
        return
    estimate = peak * n / m
    if estimate > budget:
        half = _probe_shape(shape, size // 2)
        m2 = math.prod(half)
        peak2 = _probe_peak(model, half, dtype, budget) if 0 < m2 < m else None
        if peak2 is not None and peak > peak2:
            estimate = min(estimate, peak + (peak - peak2) / (m - m2) * (n - m))
    if estimate > budget:
        raise _too_large(shape, dtype, budget, f"needs about {_fmt_bytes(estimate)} for the "
                         f"traced forward pass (scaled from a pass at "
                         f"{'x'.join(map(str, probe))}), more than")


# ------------------------------------------------------------------------------ tracing
class _Node:
    """One module call: its place in the call tree and what was measured."""

    __slots__ = ("module", "name", "depth", "parent", "end", "args", "output", "row")

    def __init__(self, module: Module, name: str, depth: int, parent: int | None):
        self.module, self.name, self.depth, self.parent = module, name, depth, parent
        self.end = 0  # index one past this call's last descendant in call order
        self.args = self.output = None
        self.row: dict = {}


def _trace(model: Module, shape: tuple[int, ...], dtype, budget: int | None = None,
           used: Callable[[], tuple[int, int]] | None = None
           ) -> tuple[list[_Node], object, Tensor]:
    """Run ``model`` once on zeros, every module's ``forward`` wrapped to record the call tree.

    The graph is recorded (the input requires grad) so that a layer's input can be traced back
    through functional ops (a residual ``out + identity``, a ``cat``) to the layers that made
    it; nothing is ever backpropagated and no ``.grad`` is touched. With ``budget`` and
    ``used`` (see ``_allocations``) the pass stops after the first module call whose
    allocations take it over the budget."""
    names = {id(m): n for n, m in model.named_modules()}
    nodes: list[_Node] = []
    stack: list[int] = []
    patched: list[tuple[Module, object]] = []

    def wrap(module: Module):
        forward = module.forward

        def recording_forward(*args, **kwargs):
            parent = stack[-1] if stack else None
            node = _Node(module, names.get(id(module), type(module).__name__),
                         len(stack), parent)
            node.args = args
            nodes.append(node)
            stack.append(len(nodes) - 1)
            try:
                node.output = forward(*args, **kwargs)
            finally:
                stack.pop()
                node.end = len(nodes)
            if budget is not None and used is not None and used()[1] > budget:
                raise _too_large(shape, dtype, budget, f"took {_fmt_bytes(used()[1])} by the "
                                 f"end of layer {node.name or type(module).__name__!r} of the "
                                 f"traced forward pass (stopped there), more than")
            return node.output

        return recording_forward

    for m in model.modules():
        patched.append((m, m.__dict__.get("forward", _MISSING)))
        object.__setattr__(m, "forward", wrap(m))
    x = Tensor._wrap(xp.zeros(shape, dtype))
    if x.dtype.kind == "f":
        x.requires_grad_(True)
    try:
        with grad_mode.enable_grad():
            out = model(x)
    finally:
        for m, previous in patched:
            if previous is _MISSING:
                del m.__dict__["forward"]
            else:
                object.__setattr__(m, "forward", previous)
    return nodes, out, x


_MISSING = object()


def _measure(nodes: list[_Node], x: Tensor) -> None:
    """Fill ``node.row`` for every call: shapes, parameters, receptive field, FLOPs, bytes and
    where the inputs came from."""
    rfs: dict[int, _RF | None] = {}
    if x.ndim > 2:
        nsp = x.ndim - 2
        rfs[id(x)] = _RF((1,) * nsp, (1,) * nsp, (0.0,) * nsp, tuple(x.shape[2:]))
    seen_params: set[int] = set()
    # who made a tensor: by the tensor itself, or by the Function that computed it
    by_tensor: dict[int, str] = {id(x): "input"}
    by_fn: dict[int, str] = {}
    walked: dict[int, tuple[list[str], str | None]] = {}
    previous = "input"  # the last leaf call (a chain of layers feeds each the one before)

    def sources(t: Tensor) -> tuple[list[str], str | None]:
        """The layers whose outputs ``t`` was computed from, and the op that joined them."""
        if id(t) in by_tensor:
            return [by_tensor[id(t)]], None
        return walk(t._ctx) if t._ctx is not None else ([], None)

    def walk(fn) -> tuple[list[str], str | None]:
        if id(fn) in by_fn:
            return [by_fn[id(fn)]], None
        if id(fn) in walked:
            return walked[id(fn)]
        walked[id(fn)] = ([], None)  # (a graph has no cycles; this only stops re-walks)
        found: list[str] = []
        join = None
        for p in getattr(fn, "parents", ()):
            if p is None:
                continue
            srcs, inner = (([by_tensor[id(p)]], None) if id(p) in by_tensor else ([], None)) \
                if isinstance(p, Tensor) else walk(p)
            found += [s for s in srcs if s not in found]
            join = join or inner
        if len(found) > 1 and join is None:
            join = fn.name.lower()
        walked[id(fn)] = (found, join)
        return found, join

    def lookup(t: Tensor | None) -> _RF | None:
        if t is None:
            return None
        if id(t) in rfs:
            return rfs[id(t)]
        # produced by a functional op between layers (a residual add, a concat): take the
        # widest field recorded for a map of the same spatial size
        cands = [r for r in rfs.values()
                 if r is not None and r.spatial == tuple(t.shape[2:]) and t.ndim > 2]
        return max(cands, key=lambda r: np.prod(r.size), default=None)

    def register(node: _Node, outs: list[Tensor]) -> None:
        name = node.row["name"]
        for o in outs:
            by_tensor[id(o)] = name
            if o._ctx is not None:
                by_fn[id(o._ctx)] = name

    open_blocks: list[int] = []  # containers whose call has not finished at this point

    def close_blocks(upto: int) -> None:
        # a container's call ends once its last descendant has: what it returns without a
        # layer having made it (``return out + identity``) is its own output, a join it made
        nonlocal previous
        while open_blocks and nodes[open_blocks[-1]].end <= upto:
            block = nodes[open_blocks.pop()]
            outs = [o for o in _tensors(block.output) if id(o) not in by_tensor]
            if outs:
                _, join = sources(outs[0])
                if join:
                    block.row["residual"] = block.row["residual"] or join
                register(block, outs)
                previous = block.row["name"]

    for i, node in enumerate(nodes):  # call order: a container before its children
        close_blocks(i)
        m = node.module
        xs, outs = _tensors(node.args), _tensors(node.output)
        inp, out = (xs[0] if xs else None), (outs[0] if outs else None)
        leaf = node.end == i + 1
        own = [p for p in m._parameters.values() if p is not None]
        params = [p for p in own if id(p) not in seen_params]
        seen_params.update(id(p) for p in params)
        srcs, join = [], None
        for t in xs:
            s, j = sources(t)
            srcs += [n for n in s if n not in srcs]
            join = join or j
        kernel = getattr(m, "kernel_size", None) if leaf or own else None
        node.row = {
            "name": node.name or type(m).__name__,
            "type": type(m).__name__,
            "depth": node.depth,
            "is_leaf": leaf,
            "input_shape": _shape_of(xs),
            "output_shape": _shape_of(outs),
            "kernel_shape": None if kernel is None else _per_dim(kernel, max(inp.ndim - 2, 1))
            if inp is not None else None,
            "params": int(sum(p.data.size for p in params)),
            "trainable_params": int(sum(p.data.size for p in params if p.requires_grad)),
            "flops": 0,
            "output_bytes": int(sum(o.data.nbytes for o in outs)),
            "connected_to": srcs,
            "join": join,
            "sequential": srcs == [previous],
            "receptive_field": None, "jump": None, "rf_start": None,
        }
        if join and node.parent is not None:
            # the join was computed in the parent's forward (``self.relu(out + identity)``)
            parent = nodes[node.parent].row
            parent["residual"] = parent.get("residual") or join
        if not leaf:
            node.row.setdefault("residual", None)
            open_blocks.append(i)
            if not own:
                continue
        # a leaf (or a module with its own weights): receptive field, FLOPs, and it is the
        # producer of its outputs from now on
        rf = _next_rf(m, lookup(inp), inp, out) if out is not None else None
        node.row.update({
            "receptive_field": None if rf is None else rf.size,
            "jump": None if rf is None else rf.jump,
            "rf_start": None if rf is None else rf.start,
            "flops": int(_flops(m, inp, out)) if out is not None else 0,
        })
        for o in outs:
            rfs[id(o)] = rf
        if leaf:
            register(node, outs)
            previous = node.row["name"]
    close_blocks(len(nodes))
    for node in nodes:  # containers: the receptive field of what they return
        outs = _tensors(node.output)
        if node.row["receptive_field"] is None and outs and rfs.get(id(outs[0])) is not None:
            rf = rfs[id(outs[0])]
            node.row.update(receptive_field=rf.size, jump=rf.jump, rf_start=rf.start)


def _shape_of(ts: list[Tensor]):
    if not ts:
        return ()
    return tuple(ts[0].shape) if len(ts) == 1 else tuple(tuple(t.shape) for t in ts)


def _subtree_totals(nodes: list[_Node]) -> None:
    for i, node in enumerate(nodes):
        inside = nodes[i:node.end]
        node.row["total_params"] = int(sum(n.row["params"] for n in inside))
        node.row["total_flops"] = int(sum(n.row["flops"] for n in inside))


# ----------------------------------------------------------------------------- the table
def _fmt_shape(shape, batch_unknown: bool) -> str:
    if not shape:
        return "--"
    shapes = [shape] if isinstance(shape[0], int | np.integer) else list(shape)
    out = []
    for s in shapes:
        dims = [str(d) for d in s]
        if batch_unknown and dims:
            dims[0] = "-1"
        out.append("[" + ", ".join(dims) + "]")
    return ", ".join(out)


def _fmt_rf(size, jump) -> str:
    if size is None:
        return "--"
    return "x".join(f"{v:g}" for v in size) + " /" + "x".join(f"{v:g}" for v in jump)


def _fmt_mb(n: int) -> str:
    return f"{n / 1e6:,.2f}" if n >= 1e5 else f"{n / 1e6:.4f}"


#: The table's columns: header, whether right-aligned.
COLUMNS = {
    "layer": ("Layer (type: name)", False),
    "input_shape": ("Input shape", False),
    "output_shape": ("Output shape", False),
    "kernel_shape": ("Kernel", False),
    "params": ("Param #", True),
    "param_share": ("Param %", True),
    "receptive_field": ("RF size /jump", False),
    "flops": ("FLOPs", True),
    "connected_to": ("Connected to", False),
}


def _cells(r: dict, expanded: bool, total: int, batch_unknown: bool) -> dict[str, str]:
    """One table row. ``expanded``: its children are shown below it (so its own counts only)."""
    indent = "  " * r["depth"]
    params = r["params"] if expanded or r["is_leaf"] else r["total_params"]
    flops = r["flops"] if expanded or r["is_leaf"] else r["total_flops"]
    container = not r["is_leaf"]
    if container:
        link = f"residual ({r['residual']})" if r.get("residual") else ""
    elif r.get("sequential", True):
        link = ""
    elif r["join"]:
        link = f"{r['join']}({', '.join(r['connected_to'])})"
    else:
        link = ", ".join(r["connected_to"]) or "--"
    show_params = params or not (container and expanded)
    kernel = r["kernel_shape"]
    return {
        "layer": f"{indent}{r['type']}: {r['name']}" if r["depth"] else r["type"],
        "input_shape": _fmt_shape(r["input_shape"], batch_unknown),
        "output_shape": _fmt_shape(r["output_shape"], batch_unknown),
        "kernel_shape": "--" if kernel is None else "x".join(str(k) for k in kernel),
        "params": f"{params:,}" if show_params else "--",
        "param_share": (f"{100 * params / total:.2f}%" if total else "0.00%")
        if show_params else "--",
        "receptive_field": _fmt_rf(r["receptive_field"], r["jump"]),
        "flops": f"{flops:,}" if flops or not (container and expanded) else "--",
        "connected_to": link,
    }


def _table(model: Module, info: dict, columns) -> str:
    depth = info["depth"]
    batch_unknown = info["batch_size"] is None
    tree = [r for r in info["tree"] if r["depth"] <= depth]
    body = []
    for i, r in enumerate(tree):
        expanded = i + 1 < len(tree) and tree[i + 1]["depth"] > r["depth"]
        body.append(_cells(r, expanded, info["total_params"], batch_unknown))
    columns = [c for c in columns if c != "connected_to" or any(b[c] for b in body)]
    header = {c: COLUMNS[c][0] for c in columns}
    widths = {c: max(len(row[c]) for row in [header, *body]) for c in columns}

    def line(cells):
        return "  ".join(cells[c].rjust(widths[c]) if COLUMNS[c][1] else cells[c].ljust(widths[c])
                         for c in columns).rstrip()

    rule = "=" * (sum(widths.values()) + 2 * (len(columns) - 1))
    dash = "-" * len(rule)
    shape = _fmt_shape(info["input_shape"], batch_unknown)
    per = " (per sample: batch shown as -1; pass batch_size= for a batch)" if batch_unknown \
        else f" (batch of {info['batch_size']})"
    lines = [f"Model: {type(model).__name__}   input {shape}   depth {depth}", rule,
             line(header), rule, *(line(b) for b in body), rule,
             f"Total params: {info['total_params']:,}",
             f"Trainable params: {info['trainable_params']:,}",
             f"Non-trainable params: {info['non_trainable_params']:,}"]
    if info["buffer_elements"]:
        lines.append(f"Buffers (running statistics etc.): {info['buffer_elements']:,} elements")
    lines += [
        f"Total FLOPs (multiply-add = 2): {info['total_flops']:,}",
        dash,
        f"Memory estimate{per}:",
        f"Input size (MB): {_fmt_mb(info['input_bytes'])}",
        f"Forward/backward pass size (MB): {_fmt_mb(info['forward_backward_bytes'])}",
        f"Params size (MB): {_fmt_mb(info['param_bytes'])}",
        f"Estimated Total Size (MB): {_fmt_mb(info['total_bytes'])}",
        rule,
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- summary()
def summary(model: Module, input_shape, *, includes_batch: bool | None = None, dtype=None,
            print_fn: Callable[[str], object] | None = print, depth: int = 3,
            batch_size: int | None = None, columns: Sequence[str] | None = None,
            max_memory: int | None = None) -> dict:
    """Print a torchinfo-style table of the modules of ``model`` and return the numbers.

    One forward pass on zeros (in ``eval()`` mode; the training flags are restored afterwards)
    with every module's ``forward`` wrapped records the call tree: each module call is a row,
    nested containers (``Sequential``, a ResNet block) are parent rows with their children
    indented below them, down to ``depth`` (a container at the last shown depth counts its
    hidden children's parameters and FLOPs).

    Columns:

    - **Layer (type: name)**: the class, then the dotted name as in ``state_dict`` keys.
    - **Input shape / Output shape**: the batch dim shows as ``-1`` when ``input_shape`` is one
      sample (the pass ran on a batch of 1), as the number when ``batch_size`` is given.
    - **Kernel**: ``kernel_size`` of convolutions and pooling.
    - **Param #** and **Param %**: parameters the module owns (a shared module's are counted at
      its first call) and their share of the total; ``--`` on an expanded container.
    - **RF size /jump**: receptive field per spatial dim, accumulated through every layer with
      ``kernel_size`` / ``stride`` / ``dilation`` / ``padding`` attributes:
      ``size' = size + (k_eff - 1) * jump``, ``jump' = jump * stride``,
      ``k_eff = d (k - 1) + 1``. Elementwise layers keep it; ``--`` without spatial dims.
    - **FLOPs**: one multiply-add counts as 2 FLOPs, for Linear/Maxout (``2 * in * out`` per
      row) and convolutions (``2 * C_in/groups * prod(k)`` per output element); other layers
      count 0. For the traced batch.
    - **Connected to**: empty while each layer reads the previous layer's output. A layer that
      reads something else names the layer(s) its input came from, traced through the graph
      (``input`` is the model's input); a join made by a functional op between layers shows
      as ``add(layer1.0.bn2, maxpool)``: that is the skip connection of a residual block. A
      container that contains or returns such a join is marked ``residual (add)``.

    Memory limit: the traced pass runs on a real array of ``input_shape``, so an input whose
    pass would not fit in ``max_memory`` is refused with a ``ValueError`` naming the shape and
    the estimate, before anything of its size is allocated: first by the input's own bytes,
    then (for inputs larger than one 64x64 sample) by a probe, the same pass on one sample with
    the spatial dims cut to 64 (128 where the model rejects 64), whose peak allocation is
    scaled to the full input (refined by a second probe at half the size when over the
    limit); the full pass itself stops after the first layer that takes it over the limit.

    Memory estimate (MB = 10^6 bytes, torchinfo's): input bytes, plus the forward/backward
    pass size = 2 x the output bytes of every leaf layer with parameters (its output kept for
    backward and the gradient flowing back), plus the parameter bytes.

    Args:
        model: the module to describe.
        input_shape: shape of one sample, e.g. ``(3, 32, 32)``; a batch dim of 1 (or
            ``batch_size``) is prepended. A shape that already includes the batch is accepted.
        includes_batch: True: ``input_shape`` already includes the batch dim; False: it does
            not; None (default): try without, and if the forward pass rejects that shape, use
            ``input_shape`` as the full shape.
        dtype: input dtype (default: the dtype of the first floating parameter, else float32).
        print_fn: called with the table text; None to print nothing.
        depth: deepest level of nesting shown (the model itself is depth 0). Default: 3.
        batch_size: trace (and estimate memory) for this many samples; shapes then show it
            instead of ``-1``. ``input_shape`` is one sample then.
        columns: the table's columns, a subset of ``layer, input_shape, output_shape,
            kernel_shape, params, param_share, receptive_field, flops, connected_to`` in the
            order wanted (default: all; ``connected_to`` only when something is connected).
        max_memory: bytes the traced forward pass may allocate (default: the memory available
            now, :func:`available_memory`).

    Returns:
        dict with ``rows`` (the leaf layers and modules owning parameters, one dict per call,
        keys ``name, type, depth, is_leaf, input_shape, output_shape, kernel_shape, params,
        trainable_params, total_params, receptive_field, jump, rf_start, flops, total_flops,
        output_bytes, connected_to, join``), ``tree`` (every call, containers included, in
        call order, the model first at depth 0; containers also have ``residual``) and the
        totals ``total_params, trainable_params, non_trainable_params, buffer_elements,
        total_flops, input_shape, output_shape, input_bytes, activation_bytes (every leaf
        output), forward_backward_bytes, param_bytes, total_bytes, depth, batch_size, table``.

    Example:
        >>> import filterbank as fb
        >>> nn = fb.nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        >>> info = net.summary((1, 28, 28), print_fn=None)
        >>> info["total_params"], info["rows"][1]["output_shape"]
        (7850, (1, 10))
        >>> print(info["table"].splitlines()[6])  # doctest: +NORMALIZE_WHITESPACE
          Linear: 1  [-1, 784]  [-1, 10]  --  7,850  100.00%  --  15,680
    """
    if isinstance(input_shape, int | np.integer):
        input_shape = (int(input_shape),)
    input_shape = tuple(int(s) for s in input_shape)
    if any(s < 0 for s in input_shape):
        raise ValueError(f"summary: expected a shape of non-negative ints, got {input_shape}")
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer) or depth < 0:
        raise ValueError(f"summary: expected depth to be an int >= 0, got {depth!r}")
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) \
                or batch_size < 1:
            raise ValueError(f"summary: expected batch_size to be an int >= 1 or None, got "
                             f"{batch_size!r}")
        if includes_batch:
            raise ValueError("summary: batch_size is given, so input_shape must be one sample "
                             f"(includes_batch=False), got includes_batch=True and "
                             f"{input_shape}")
    columns = list(COLUMNS) if columns is None else list(columns)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown or not columns:
        raise ValueError(f"summary: expected columns among {list(COLUMNS)}, got {columns}")
    if max_memory is None:
        budget = available_memory()
    elif isinstance(max_memory, bool) or not isinstance(max_memory, int | np.integer) \
            or max_memory < 1:
        raise ValueError(f"summary: expected max_memory to be an int >= 1 (bytes) or None, "
                         f"got {max_memory!r}")
    else:
        budget = int(max_memory)
    if dtype is None:
        floats = [p.dtype for p in model.parameters() if p.dtype.kind == "f"]
        dtype = floats[0] if floats else DEFAULT_DTYPE
    dtype = np.dtype(dtype)

    def trace(shape):
        _check_size(model, shape, dtype, budget)
        try:
            with _allocations() as used:
                return _trace(model, shape, dtype, budget, used)
        except MemoryError as e:  # a process limit below what the system has available
            raise _too_large(shape, dtype, budget, f"ran out of memory in the traced forward "
                             f"pass ({e}), below") from None

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    batch = 1 if batch_size is None else int(batch_size)
    with_batch = True
    try:
        if includes_batch:
            shape = input_shape
            with_batch = False
            nodes, out, x = trace(shape)
        else:
            shape = (batch, *input_shape)
            try:
                nodes, out, x = trace(shape)
            except _TooLarge:
                raise
            except (ValueError, TypeError, RuntimeError):
                if includes_batch is False or batch_size is not None:
                    raise
                shape = input_shape
                with_batch = False
                nodes, out, x = trace(shape)
        _measure(nodes, x)
        _subtree_totals(nodes)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)

    tree = [n.row for n in nodes]
    rows = [n.row for n in nodes if n.row["is_leaf"] or any(
        p is not None for p in n.module._parameters.values())]
    params = list(model.parameters())
    total = int(sum(p.data.size for p in params))
    trainable = int(sum(p.data.size for p in params if p.requires_grad))
    outs = _tensors(out)
    info = {
        "rows": rows,
        "tree": tree,
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
        "forward_backward_bytes": 2 * int(sum(r["output_bytes"] for r in rows
                                              if r["is_leaf"] and r["params"])),
        "param_bytes": int(sum(p.data.nbytes for p in params)),
        "depth": int(depth),
        "batch_size": (batch if batch_size is not None else None) if with_batch
        else int(shape[0]) if shape else None,
    }
    info["total_bytes"] = (info["input_bytes"] + info["forward_backward_bytes"]
                           + info["param_bytes"])
    info["table"] = _table(model, info, columns)
    if print_fn is not None:
        print_fn(info["table"])
    return info
