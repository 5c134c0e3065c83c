"""Import an ONNX model as a filterbank :class:`~filterbank.nn.Module`.

``load(path)`` parses the file defensively (see ``_proto``), sorts the graph's nodes
topologically and returns an :class:`OnnxModule` whose ``forward`` runs them with
:mod:`filterbank.functional`. Floating-point initializers become trainable ``nn.Parameter`` s
(BatchNormalization's running mean and variance become buffers), so an imported model can be
fine-tuned, explained or exported again; ``eval()``/``train()`` switch BatchNormalization
between running and batch statistics and turn Dropout off/on.

Nodes that map onto a filterbank layer run through one, registered as a sub-module named after
the node (``named_modules()``), so the interpretability tools that look for layers (Grad-CAM,
feature maps, filters, embeddings) work on an imported graph: a 2-D Conv with constant weights
becomes an ``nn.Conv2d``, ConvTranspose an ``nn.ConvTranspose2d``, Gemm with a constant 2-D
weight an ``nn.Linear``, BatchNormalization an ``nn.BatchNorm2d``, Relu an ``nn.ReLU``, and
pooling and the other activations an :class:`OnnxOp`. The layer holds the initializers as its
parameters. A node whose initializers are shared with another node, or whose attributes have
no layer equivalent, runs functionally with top-level parameters.
"""

from __future__ import annotations

import os
import re

import numpy as np

from filterbank import nn
from filterbank.nn.module import Module, Parameter
from filterbank.onnx import _proto
from filterbank.onnx._ops import OPS, T, _pad_spatial, _pads, is_float, keep
from filterbank.tensor import Tensor

__all__ = ["OnnxModule", "OnnxOp", "load", "run"]


def _attrs(node, path) -> dict:
    import onnx

    out = {}
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise NotImplementedError(f"ONNX {node.op_type}: subgraph attribute {a.name!r} is "
                                      f"not supported by filterbank")
        if a.ref_attr_name:
            raise NotImplementedError(f"ONNX {node.op_type}: attribute references")
        out[a.name] = onnx.helper.get_attribute_value(a)
    return out


def _attr_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", name) or "param"
    if base[0].isdigit() or base.startswith("_"):
        base = "p_" + base.lstrip("_")
    candidate, i = base, 1
    while candidate in taken:
        i += 1
        candidate = f"{base}_{i}"
    taken.add(candidate)
    return candidate


class _Context:
    """What the ops need besides their inputs: the opset, the mode, the file for messages."""

    def __init__(self, module: OnnxModule | OnnxOp):
        self.opset = module.opset
        self.training = module.training
        self.path = module.path
        self.base_dir = module.base_dir
        self.rng = module.rng
        self._buffers = {id(b) for b in module.buffers()}

    def is_buffer(self, t) -> bool:
        return id(t) in self._buffers


class OnnxOp(Module):
    """One parameterless ONNX node (a pooling, an activation) as a module, so that its output
    has a name in ``named_modules()``; ``forward`` runs the node's filterbank op."""

    def __init__(self, node, attrs: dict, opset: int, path: str, base_dir: str):
        super().__init__()
        self.node, self.attrs = node, attrs
        self.opset, self.path, self.base_dir = opset, path, base_dir
        self.rng = np.random.default_rng()

    def forward(self, *args):
        return OPS[self.node.op_type](_Context(self), self.node, self.attrs, *args)

    def extra_repr(self) -> str:
        return f"{self.node.op_type!r}"


#: parameterless ops run as an OnnxOp (so their outputs can be captured by name)
_OP_MODULES = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LeakyRelu",
               "Sigmoid", "Tanh", "Elu", "Selu", "HardSigmoid", "Softplus", "PRelu"}


def _auto_pad(attrs) -> str:
    auto = attrs.get("auto_pad", b"NOTSET")
    return auto.decode() if isinstance(auto, bytes) else auto


def _float(arr) -> bool:
    return arr is not None and arr.dtype.kind == "f"


def _layer(node, attrs, args):
    """``(layer, extra)`` for a node that maps onto a filterbank layer, given its constant
    inputs (``args``: arrays, None where an input is not an owned initializer), else None.
    ``extra`` holds what ``forward`` needs around the call (explicit pads); the layer's
    parameters are filled in by the caller."""
    op, n_in = node.op_type, len(node.input)
    outputs = [o for o in node.output if o]
    if len(outputs) != 1:
        return None
    if op in ("Conv", "ConvTranspose"):
        w = args[1] if n_in > 1 else None
        b = args[2] if n_in > 2 and node.input[2] else None
        if not _float(w) or w.ndim != 4 or (n_in > 2 and node.input[2] and not _float(b)):
            return None
        group = int(attrs.get("group", 1))
        kernel = list(attrs.get("kernel_shape", w.shape[2:]))
        if kernel != list(w.shape[2:]):
            return None
        stride = list(attrs.get("strides", [1, 1]))
        dilation = list(attrs.get("dilations", [1, 1]))
        auto = _auto_pad(attrs)
        if op == "Conv":
            if auto not in ("NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"):
                return None
            pads = list(attrs.get("pads", [0] * 4)) if auto in ("NOTSET", "") else [0] * 4
            explicit = auto in ("SAME_UPPER", "SAME_LOWER") or pads[:2] != pads[2:]
            layer = nn.Conv2d(w.shape[1] * group, w.shape[0], kernel, stride,
                              0 if explicit else pads[:2], dilation, group, b is not None)
            return layer, {"explicit_pads": explicit}
        if "output_shape" in attrs or auto not in ("NOTSET", "", "VALID"):
            return None
        pads = list(attrs.get("pads", [0] * 4)) if auto != "VALID" else [0] * 4
        if pads[:2] != pads[2:]:
            return None
        layer = nn.ConvTranspose2d(w.shape[0], w.shape[1] * group, kernel, stride, pads[:2],
                                   list(attrs.get("output_padding", [0, 0])), group,
                                   b is not None, dilation)
        return layer, {}
    if op == "Gemm":
        w = args[1] if n_in > 1 else None
        c = args[2] if n_in > 2 and node.input[2] else None
        if (attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or not _float(w)
                or w.ndim != 2):
            return None
        if n_in > 2 and node.input[2] and (not _float(c) or attrs.get("beta", 1.0) != 1.0):
            return None
        out_f, in_f = w.shape if attrs.get("transB", 0) else w.shape[::-1]
        if c is not None and c.shape != (out_f,):
            return None
        return nn.Linear(in_f, out_f, c is not None), {"transposed": not attrs.get("transB", 0)}
    if op == "BatchNormalization":
        if (attrs.get("spatial", 1) != 1 or attrs.get("training_mode", 0) or n_in != 5
                or not all(_float(a) and a.ndim == 1 for a in args[1:5])
                or len({a.shape for a in args[1:5]}) != 1):
            return None
        layer = nn.BatchNorm2d(args[1].shape[0], attrs.get("epsilon", 1e-5),
                               1 - attrs.get("momentum", 0.9))
        return layer, {}
    if op == "Relu" and n_in == 1:
        return nn.ReLU(), {}
    return None


_SLOTS = {"Conv": ("weight", "bias"), "ConvTranspose": ("weight", "bias"),
          "Gemm": ("weight", "bias"),
          "BatchNormalization": ("weight", "bias", "running_mean", "running_var")}


class OnnxModule(Module):
    """An ONNX graph run with filterbank ops; ``forward(*inputs)`` takes the graph inputs in
    order (those without an initializer) and returns one tensor, or a tuple for several graph
    outputs.

    ``onnx_names`` maps each parameter/buffer attribute name to its ONNX initializer name.
    """

    def __init__(self, model, path: str):
        super().__init__()
        graph = model.graph
        self.path = str(path)
        self.base_dir = os.path.dirname(os.path.abspath(path))
        self.rng = np.random.default_rng()
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        for o in model.opset_import:
            if o.domain not in ("", "ai.onnx"):
                used = any(n.domain == o.domain for n in graph.node)
                if used:
                    raise NotImplementedError(f"ONNX operator set domain {o.domain!r} is not "
                                              f"supported by filterbank")
        inits = {}
        for t in graph.initializer:
            inits[t.name] = _proto.tensor_to_array(t, self.path, self.base_dir,
                                                   f"initializer {t.name!r}")
        if graph.sparse_initializer:
            raise NotImplementedError("ONNX sparse initializers are not supported by filterbank")
        stats = {n.input[i] for n in graph.node if n.op_type == "BatchNormalization"
                 for i in (3, 4) if len(n.input) > i}
        self.input_names = [v.name for v in graph.input if v.name not in inits]
        self.output_names = [v.name for v in graph.output]
        known = set(self.input_names) | set(inits)
        self.nodes = _proto.toposort(graph, known, self.path)
        produced = known | {o for n in self.nodes for o in n.output if o}
        for name in self.output_names:
            if name not in produced:
                raise ValueError(f"{self.path}: graph output {name!r} is not produced by any "
                                 f"node, input or initializer")
        for n in self.nodes:
            if n.domain not in ("", "ai.onnx"):
                raise NotImplementedError(f"ONNX op {n.domain}.{n.op_type} is not supported by "
                                          f"filterbank")
            if n.op_type not in OPS:
                raise NotImplementedError(f"ONNX op {n.op_type} is not supported by filterbank")
        self.attrs = [_attrs(n, self.path) for n in self.nodes]
        self.onnx_names: dict[str, str] = {}
        #: the state_dict keys whose value is the transpose of their initializer (a Gemm with
        #: transB=0 run as an nn.Linear)
        self.onnx_transposed: set[str] = set()
        self._value_attr: dict[str, str] = {}
        taken: set[str] = set(dir(self))
        # the sanitised initializer names still reach an initializer held by a layer
        # (``model.conv1_weight`` as well as ``model.conv_0.weight``)
        alias_taken = set(taken)
        aliases = {_attr_name(name, alias_taken): name for name in inits}
        self._layers = self._make_layers(inits, taken)
        self._aliases = {a: self._value_attr[name] for a, name in aliases.items()
                         if name in self._value_attr}
        for name, arr in inits.items():
            if name in self._value_attr:
                continue
            attr = _attr_name(name, taken)
            arr = np.array(arr)  # writable, owned
            if arr.dtype.kind == "f" and name not in stats:
                self.register_parameter(attr, Parameter(arr))
            else:
                self.register_buffer(attr, Tensor._wrap(arr))
            self.onnx_names[attr] = name
            self._value_attr[name] = attr

    def _make_layers(self, inits: dict, taken: set[str]) -> list:
        """One entry per node: ``(attribute name, extra)`` for a node run through a layer
        sub-module, else None; the layers take their initializers as their own parameters."""
        uses: dict[str, int] = {}
        for n in self.nodes:
            for i in n.input:
                uses[i] = uses.get(i, 0) + 1
        for name in self.output_names:
            uses[name] = uses.get(name, 0) + 1
        counts: dict[str, int] = {}
        out: list = []
        for n, attrs in zip(self.nodes, self.attrs):
            index = counts.get(n.op_type, 0)
            counts[n.op_type] = index + 1
            owned = [np.array(inits[i]) if i in inits and uses[i] == 1 else None
                     for i in n.input]
            made = None
            if n.op_type in _OP_MODULES:
                made = OnnxOp(n, attrs, self.opset, self.path, self.base_dir), {}
            else:
                try:
                    made = _layer(n, attrs, owned)
                except ValueError:  # attributes a layer refuses: the functional path
                    made = None
            if made is None:
                out.append(None)
                continue
            layer, extra = made
            slots = _SLOTS.get(n.op_type, ())
            attr = _attr_name(n.name or f"{n.op_type.lower()}_{index}", taken)
            for slot, name, arr in zip(slots, n.input[1:], owned[1:]):
                if not name:
                    continue
                if extra.get("transposed") and slot == "weight":
                    arr = np.ascontiguousarray(arr.T)
                    self.onnx_transposed.add(f"{attr}.{slot}")
                if slot.startswith("running_"):
                    getattr(layer, slot).data = arr
                else:
                    setattr(layer, slot, Parameter(arr))
                self.onnx_names[f"{attr}.{slot}"] = name
                self._value_attr[name] = f"{attr}.{slot}"
            self.add_module(attr, layer)
            out.append((attr, extra))
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """As :meth:`Module.load_state_dict`; a state saved before the graph's nodes ran
        through layers (keyed by the sanitised initializer names) is accepted too."""
        own = self.state_dict()
        aliases = self.__dict__.get("_aliases", {})
        if any(k not in own and k in aliases for k in state_dict):
            state = {}
            for k, v in state_dict.items():
                path = aliases.get(k, k) if k not in own else k
                if path != k and path in self.onnx_transposed:
                    v = np.ascontiguousarray(np.asarray(getattr(v, "data", v)).T)
                state[path] = v
            for k, v in own.items():  # counters the old layout did not have
                if k.endswith(".num_batches_tracked") and k not in state:
                    state[k] = v
            state_dict = state
        return super().load_state_dict(state_dict, strict)

    def __getattr__(self, name: str):
        aliases = self.__dict__.get("_aliases", {})
        if name in aliases:
            return self._value(aliases[name])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _value(self, path: str) -> Tensor:
        obj = self
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj

    def _call_layer(self, ctx, node, attrs, attr, extra, args):
        layer = getattr(self, attr)
        x = args[0]
        if not is_float(x) or (node.op_type == "BatchNormalization" and x.ndim != 4):
            # BatchNorm2d takes 4-D input only, ReLU floats only: the same numbers, run
            # functionally with the layer's tensors
            slots = _SLOTS.get(node.op_type, ())
            mine = {name: getattr(layer, slot) for slot, name in zip(slots, node.input[1:])
                    if name}
            rest = [mine.get(name, a) for name, a in zip(node.input[1:], args[1:])]
            return OPS[node.op_type](ctx, node, attrs, x, *rest)
        if extra.get("explicit_pads"):
            pads = _pads(node, attrs, x.shape[2:], list(layer.kernel_size),
                         list(layer.stride), list(layer.dilation))
            x = _pad_spatial(x, pads)
        return keep(layer(x), x.data.dtype)

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise ValueError(f"{self.path}: expected {len(self.input_names)} inputs "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        env: dict[str, Tensor] = {name: self._value(attr)
                                  for name, attr in self._value_attr.items()}
        for name, x in zip(self.input_names, inputs):
            env[name] = x if isinstance(x, Tensor) else T(np.asarray(x))
        ctx = _Context(self)
        for node, attrs, layer in zip(self.nodes, self.attrs, self._layers):
            args = [env[i] if i else None for i in node.input]
            while args and args[-1] is None:
                args.pop()
            if layer is None:
                out = OPS[node.op_type](ctx, node, attrs, *args)
            elif isinstance(getattr(self, layer[0]), OnnxOp):
                out = getattr(self, layer[0])(*args)
            else:
                out = self._call_layer(ctx, node, attrs, layer[0], layer[1], args)
            outs = out if isinstance(out, tuple) else (out,)
            for name, value in zip(node.output, outs):
                if name:
                    env[name] = value
        results = tuple(env[name] for name in self.output_names)
        return results[0] if len(results) == 1 else results

    def extra_repr(self) -> str:
        return (f"{os.path.basename(self.path)!r}, opset={self.opset}, nodes={len(self.nodes)}, "
                f"inputs={self.input_names}, outputs={self.output_names}")


def load(path: str | os.PathLike) -> OnnxModule:
    """Load the ONNX model at ``path`` as an :class:`OnnxModule` (in eval mode, as exported).

    Raises ``ValueError`` (naming the file) for a truncated or non-ONNX file, an external-data
    file that is missing or outside the model's folder, a cycle, an initializer whose data does
    not match its dims, or dims too large for memory; ``NotImplementedError`` for an op or
    attribute filterbank does not support.

    Example:
        >>> import filterbank.onnx
        >>> model = filterbank.onnx.load("model.onnx")  # doctest: +SKIP
        >>> y = model(x)  # doctest: +SKIP
    """
    model = _proto.read_model(path)
    return OnnxModule(model, os.fspath(path)).eval()


def run(model_path: str | os.PathLike, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run the ONNX model at ``model_path`` on ``inputs`` (graph-input name -> array, in
    graph-input order); the graph outputs as NumPy arrays, in graph-output order."""
    from filterbank.autograd.grad_mode import no_grad

    module = load(model_path)
    missing = [n for n in module.input_names if n not in inputs]
    if missing:
        raise ValueError(f"{model_path}: missing inputs {missing}")
    with no_grad():
        out = module(*(inputs[n] for n in module.input_names))
    outs = out if isinstance(out, tuple) else (out,)
    return [np.asarray(o.data) for o in outs]
