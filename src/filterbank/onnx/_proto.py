"""Reading an ONNX file defensively: every size is checked before anything is allocated, and
every problem is a ``ValueError`` naming the file and what is wrong (never a crash, never a
huge allocation). ``onnx`` is imported here, lazily, by the functions that need it."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from filterbank.serialization import RegularFile, check_fits_in_memory, read_regular_file

#: protobuf's own limit: a serialized message cannot exceed 2 GiB
MAX_MODEL_BYTES = 2**31 - 1
#: more dims than any real tensor has (NumPy's limit is 64)
MAX_RANK = 32


def _onnx():
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("filterbank.onnx needs the onnx package: pip install "
                          "'filterbank[onnx]'") from e
    return onnx


def read_model(path: str | os.PathLike) -> Any:
    """The ``onnx.ModelProto`` of the file ``path``, checked to be a model with a graph."""
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    data = read_regular_file(path, MAX_MODEL_BYTES, ValueError, "ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ValueError(f"{path}: not an ONNX model (truncated or not a protobuf: {e})") from e
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output:
        raise ValueError(f"{path}: not an ONNX model (no IR version, graph or graph output)")
    return model


def np_dtype(data_type: int, path, what: str) -> np.dtype:
    """The NumPy dtype of ONNX element type ``data_type``; NotImplementedError for the types
    filterbank has no array for (strings, bfloat16, float8, 4-bit ints, complex)."""
    onnx = _onnx()
    tp = onnx.TensorProto
    supported = {tp.FLOAT: np.float32, tp.DOUBLE: np.float64, tp.FLOAT16: np.float16,
                 tp.INT8: np.int8, tp.INT16: np.int16, tp.INT32: np.int32, tp.INT64: np.int64,
                 tp.UINT8: np.uint8, tp.UINT16: np.uint16, tp.UINT32: np.uint32,
                 tp.UINT64: np.uint64, tp.BOOL: np.bool_}
    if data_type in supported:
        return np.dtype(supported[data_type])
    try:
        name = tp.DataType.Name(data_type)
    except ValueError:
        raise ValueError(f"{path}: {what}: unknown element type {data_type}") from None
    raise NotImplementedError(f"{what}: element type {name} is not supported by filterbank")


def _shape(dims, path, what: str) -> tuple[int, ...]:
    dims = tuple(int(d) for d in dims)
    if len(dims) > MAX_RANK:
        raise ValueError(f"{path}: {what}: {len(dims)} dims, more than {MAX_RANK}")
    if any(d < 0 for d in dims):
        raise ValueError(f"{path}: {what}: negative dim in {list(dims)}")
    return dims


def _external_bytes(t, base_dir: str, path, what: str, nbytes: int) -> bytes:
    """The ``nbytes`` bytes an initializer keeps in an external file, which must lie inside
    the model's folder (no absolute path, no ``..`` out of it, no link leading out)."""
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if not location:
        raise ValueError(f"{path}: {what}: external data without a location")
    if os.path.isabs(location) or os.path.splitdrive(location)[0]:
        raise ValueError(f"{path}: {what}: external data location {location!r} is absolute; it "
                         f"must be relative to the model's folder")
    root = os.path.realpath(base_dir)
    full = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, full]) != root:
        raise ValueError(f"{path}: {what}: external data location {location!r} lies outside "
                         f"the model's folder {base_dir}")
    if not os.path.exists(full):
        raise ValueError(f"{path}: {what}: external data file {location!r} does not exist")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise ValueError(f"{path}: {what}: external data offset/length is not an integer: "
                         f"{info}") from None
    if offset < 0 or (length is not None and length < 0):
        raise ValueError(f"{path}: {what}: negative external data offset or length: {info}")
    if length is not None and length != nbytes:
        raise ValueError(f"{path}: {what}: external data length {length:,} bytes, but its "
                         f"dims and type need {nbytes:,}")
    with RegularFile(full, ValueError) as f:
        if offset + nbytes > f.size:
            raise ValueError(f"{path}: {what}: external data file {location!r} holds "
                             f"{f.size:,} bytes, fewer than offset {offset:,} + {nbytes:,}")
        f.read(offset)
        return f.read(nbytes)


def tensor_to_array(t, path, base_dir: str | None, what: str | None = None) -> np.ndarray:
    """A TensorProto's array, after checking that its declared size (dims x element size) fits
    in memory and matches the data it carries."""
    onnx = _onnx()
    what = what or f"tensor {t.name!r}"
    shape = _shape(t.dims, path, what)
    dtype = np_dtype(t.data_type, path, what)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    check_fits_in_memory(nbytes, f"{path}: {what}: dims {list(shape)} need")
    if t.data_location == onnx.TensorProto.EXTERNAL:
        if base_dir is None:
            raise ValueError(f"{path}: {what}: external data is not allowed here")
        raw = _external_bytes(t, base_dir, path, what, nbytes)
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    if t.HasField("raw_data"):
        if len(t.raw_data) != nbytes:
            raise ValueError(f"{path}: {what}: dims {list(shape)} x {dtype.itemsize} bytes = "
                             f"{nbytes:,} bytes, but the tensor holds {len(t.raw_data):,}")
        return np.frombuffer(t.raw_data, dtype=dtype.newbyteorder("<")).astype(dtype)\
            .reshape(shape)
    field = onnx.helper.tensor_dtype_to_field(t.data_type)
    values = getattr(t, field)
    if len(values) != count:
        raise ValueError(f"{path}: {what}: dims {list(shape)} hold {count:,} values, but the "
                         f"tensor has {len(values):,}")
    if dtype == np.float16:  # stored as the bits, one per int32
        return np.asarray(values, dtype=np.uint16).view(np.float16).reshape(shape)
    return np.asarray(values).astype(dtype).reshape(shape)


def toposort(graph, known: set[str], path) -> list:
    """The graph's nodes in an order where each runs after the producers of its inputs
    (Kahn's algorithm); a ValueError names a cycle, a value produced twice, or an input no one
    produces."""
    producer: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for name in node.output:
            if not name:
                continue
            if name in producer or name in known:
                raise ValueError(f"{path}: value {name!r} is produced twice (node "
                                 f"{_label(node)})")
            producer[name] = i
    deps: list[set[int]] = []
    users: dict[int, list[int]] = {i: [] for i in range(len(graph.node))}
    for i, node in enumerate(graph.node):
        d = set()
        for name in node.input:
            if not name or name in known:
                continue
            if name not in producer:
                raise ValueError(f"{path}: node {_label(node)} reads {name!r}, which no node, "
                                 f"graph input or initializer produces")
            d.add(producer[name])
        deps.append(d)
        for j in d:
            users[j].append(i)
    ready = [i for i, d in enumerate(deps) if not d]
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in users[i]:
            deps[j].discard(i)
            if not deps[j]:
                ready.append(j)
    if len(order) != len(graph.node):
        stuck = [_label(graph.node[i]) for i in range(len(graph.node)) if deps[i]]
        raise ValueError(f"{path}: the graph has a cycle through nodes {', '.join(stuck[:8])}")
    return [graph.node[i] for i in order]


def _label(node) -> str:
    return f"{node.name!r} ({node.op_type})" if node.name else node.op_type
