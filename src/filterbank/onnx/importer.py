"""Import an ONNX model as a filterbank :class:`~filterbank.nn.Module`.

``load(path)`` parses the file defensively (see ``_proto``), sorts the graph's nodes
topologically and returns an :class:`OnnxModule` whose ``forward`` runs them with
:mod:`filterbank.functional`. Floating-point initializers become trainable ``nn.Parameter`` s
(BatchNormalization's running mean and variance become buffers), so an imported model can be
fine-tuned, explained or exported again; ``eval()``/``train()`` switch BatchNormalization
between running and batch statistics and turn Dropout off/on.
"""

from __future__ import annotations

import os
import re

import numpy as np

from filterbank.nn.module import Module, Parameter
from filterbank.onnx import _proto
from filterbank.onnx._ops import OPS, T
from filterbank.tensor import Tensor

__all__ = ["OnnxModule", "load", "run"]


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

    def __init__(self, module: OnnxModule):
        self.opset = module.opset
        self.training = module.training
        self.path = module.path
        self.base_dir = module.base_dir
        self.rng = module.rng
        self._buffers = {id(b) for b in module.buffers()}

    def is_buffer(self, t) -> bool:
        return id(t) in self._buffers


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
        self._value_attr: dict[str, str] = {}
        taken: set[str] = set(dir(self))
        for name, arr in inits.items():
            attr = _attr_name(name, taken)
            arr = np.array(arr)  # writable, owned
            if arr.dtype.kind == "f" and name not in stats:
                self.register_parameter(attr, Parameter(arr))
            else:
                self.register_buffer(attr, Tensor._wrap(arr))
            self.onnx_names[attr] = name
            self._value_attr[name] = attr

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise ValueError(f"{self.path}: expected {len(self.input_names)} inputs "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        env: dict[str, Tensor] = {name: getattr(self, attr)
                                  for name, attr in self._value_attr.items()}
        for name, x in zip(self.input_names, inputs):
            env[name] = x if isinstance(x, Tensor) else T(np.asarray(x))
        ctx = _Context(self)
        for node, attrs in zip(self.nodes, self.attrs):
            args = [env[i] if i else None for i in node.input]
            while args and args[-1] is None:
                args.pop()
            out = OPS[node.op_type](ctx, node, attrs, *args)
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
