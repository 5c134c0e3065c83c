"""``fb.save`` / ``fb.load``: state dicts and nested structures of tensors in one file, no pickle.

The file is an ordinary safetensors file: every tensor and NumPy array of the object is one of
its arrays, and the rest of the structure (dicts, lists, tuples, numbers, strings, None, bools)
is JSON stored in the safetensors header's metadata, with each array replaced by
``{"__tensor__": name}``::

    [8 bytes: header length n][n bytes: JSON header][array bytes]
    header = {"__metadata__": {"format": "filterbank-save", "version": "1",
                               "structure": "<JSON of the object>"},
              "conv1.weight": {"dtype": "F32", "shape": [6, 1, 5, 5], "data_offsets": [0, 600]},
              ...}

Arrays keep their dtype (float32, float64, int64, bool, ...); a :class:`~filterbank.Tensor`
comes back as a Tensor (a ``Parameter`` as a Parameter) with its ``requires_grad``; a NumPy
array as a NumPy array. The arrays of a flat state dict are named by their keys, so other
safetensors readers (``safetensors.numpy.load_file``, ``safetensors.torch.load_file``) read
them by name.

Writing is atomic (temporary file in the same folder, fsync, ``os.replace``): a crash leaves
the old file or the new one. Loading trusts nothing in the file: it must be a regular file
(not a FIFO, a device or a link to one, checked with ``stat`` before it is opened); the header
length, dtypes, shapes and byte ranges are checked against the file's size before any array
is read, and only the bytes the header declares are read; the structure may nest at most
:data:`MAX_DEPTH` levels and is checked while it is decoded. Anything else raises
:class:`ValueError` naming the file.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from filterbank.backend import is_device_array, to_device, to_numpy, usable_device

FORMAT = "filterbank-save"
FORMAT_VERSION = 1
#: Largest safetensors header accepted by :func:`load` (the JSON part, not the arrays).
MAX_HEADER_BYTES = 64 * 2**20
#: Deepest nesting of lists and dicts in a saved structure (JSON levels, tags included).
MAX_DEPTH = 100
#: What the readers raise: an exception class or any callable making one from a message.
ErrorType = Callable[[str], Exception]

# safetensors dtype names -> NumPy (those NumPy has)
_DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16,
           "I16": np.int16, "U32": np.uint32, "I32": np.int32, "U64": np.uint64,
           "I64": np.int64, "F16": np.float16, "F32": np.float32, "F64": np.float64}
_NUMPY_TYPES = frozenset(_DTYPES.values())


# ------------------------------------------------------------------------- writing
def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (best effort: not every platform can open a
    directory; the data itself is synced before the rename)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the data itself is synced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a part.

    Temp file in the same folder (same file system, so the rename is atomic), flush + fsync,
    then ``os.replace``; the temp file is removed if anything fails.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


# ------------------------------------------------------------------------- reading
def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: str | os.PathLike, error: ErrorType = ValueError) -> os.stat_result:
    """``os.stat`` of ``path`` (links followed), raising ``error`` unless it is a regular file.

    FIFOs would block a reader forever and devices (``/dev/zero``) never end, so they are
    refused before anything opens them. A missing file raises :class:`FileNotFoundError`.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        link = f" (a link to {os.path.realpath(path)})" if os.path.islink(path) else ""
        raise error(f"{path}: expected a regular file, got {_kind(st.st_mode)}{link}")
    return st


def check_fits_in_memory(nbytes: int, what: str, error: ErrorType = ValueError) -> None:
    """Refuse, before reading, ``nbytes`` of data larger than the memory available (a sparse
    file of a valid length would otherwise fill it, or end in a MemoryError naming nothing);
    the message starts with ``what``."""
    from filterbank.nn.summary import available_memory

    available = available_memory()
    if nbytes > available:
        raise error(f"{what} {nbytes:,} bytes, more than the {available:,} bytes of memory "
                    f"available")


class RegularFile:
    """A regular file opened for reading, after :func:`check_regular`: ``size`` is its size
    when opened; :meth:`read` returns exactly ``n`` bytes or raises ``error`` (never blocks,
    never reads more than asked)."""

    def __init__(self, path: str | os.PathLike, error: ErrorType = ValueError):
        self.path, self.error = path, error
        check_regular(path, error)
        # O_NONBLOCK: should the path be swapped for a FIFO after the stat, open does not wait
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise error(f"{path}: expected a regular file, got {_kind(st.st_mode)}")
            self.file = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        self.size = st.st_size

    def read(self, n: int) -> bytes:
        data = self.file.read(n)
        if len(data) != n:
            raise self.error(f"{self.path}: the file changed while it was read (expected "
                             f"{n:,} more bytes, got {len(data):,})")
        return data

    def __enter__(self) -> RegularFile:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


def read_regular_file(path: str | os.PathLike, max_bytes: int,
                      error: ErrorType = ValueError, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``, refused (``error``) before reading when it is
    not a regular file or larger than ``max_bytes``."""
    with RegularFile(path, error) as f:
        if f.size > max_bytes:
            raise error(f"{path}: {f.size:,} bytes, more than the {max_bytes:,} a {what} may "
                        f"have")
        return f.read(f.size)


def json_depth(obj) -> int:
    """Nesting depth of lists and dicts in ``obj`` (a scalar: 0), without recursion."""
    depth, stack = 0, [(obj, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        depth = max(depth, level)
        stack.extend((c, level + 1) for c in children if isinstance(c, dict | list | tuple))
    return depth


def parse_json(data: bytes | str, where: str, error: ErrorType = ValueError,
               max_depth: int = MAX_DEPTH):
    """``json.loads(data)``; invalid text or UTF-8, or nesting deeper than ``max_depth``,
    raise ``error`` starting with ``where`` (never a RecursionError)."""
    try:
        obj = json.loads(data)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an int of 5000 digits
        raise error(f"{where}: not valid JSON ({str(e)[:80]})") from None
    except RecursionError:
        raise error(f"{where}: nested deeper than {max_depth} levels") from None
    if json_depth(obj) > max_depth:
        raise error(f"{where}: nested deeper than {max_depth} levels")
    return obj


# -------------------------------------------------------------------- tree encoding
def c_order(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous little-endian array (0-d arrays stay 0-d)."""
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    # not np.ascontiguousarray: it turns 0-d arrays (num_batches_tracked) into shape (1,)
    return a if a.flags.c_contiguous else np.array(a, order="C")


def encode_tree(obj, key: str, tensors: dict, where: str, error: type[Exception] = TypeError,
                unique: bool = False):
    """JSON-able version of ``obj``; arrays go into ``tensors`` under names derived from
    ``key`` (``key/sub/0``). Tensors are marked so :func:`decode_tree` can rebuild them.

    ``unique``: on a name collision (``{"a/b": x, "a": {"b": y}}``) add ``#n`` instead of
    raising ``error``.
    """
    from filterbank.tensor import Tensor

    mark = None
    if isinstance(obj, Tensor):
        from filterbank.nn import Parameter

        mark = {"tensor": "Parameter" if isinstance(obj, Parameter) else "Tensor",
                "requires_grad": bool(obj.requires_grad)}
        obj = obj.data
    if is_device_array(obj):  # a GPU array: saved from host memory
        obj = to_numpy(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.type not in _NUMPY_TYPES:
            raise error(f"{where}: cannot store an array of dtype {obj.dtype} at {key!r} "
                        f"(booleans, integers and floats only)")
        name = key
        if name in tensors:
            if not unique:
                raise error(f"{where}: two arrays map to the key {key!r}")
            n = 1
            while f"{key}#{n}" in tensors:
                n += 1
            name = f"{key}#{n}"
        tensors[name] = c_order(obj)
        return {"__tensor__": name, **(mark or {})}
    if isinstance(obj, np.generic):
        if obj.dtype.kind not in "biuf":
            raise error(f"{where}: cannot store a NumPy {obj.dtype} scalar at {key!r}")
        return {"__scalar__": obj.dtype.str, "value": obj.item()}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj

    def sub(k) -> str:
        return f"{key}/{k}" if key else str(k)

    if isinstance(obj, tuple):
        return {"__tuple__": [encode_tree(v, sub(i), tensors, where, error, unique)
                              for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [encode_tree(v, sub(i), tensors, where, error, unique) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode_tree(v, sub(k), tensors, where, error, unique)
                    for k, v in obj.items()}
        return {"__items__": [[encode_tree(k, sub(f"#{i}"), tensors, where, error, unique),
                               encode_tree(v, sub(k), tensors, where, error, unique)]
                              for i, (k, v) in enumerate(obj.items())]}
    raise error(f"{where}: cannot store an object of type {type(obj).__name__} at {key!r} "
                f"(tensors, arrays, numbers, strings, None, lists, tuples and dicts only)")


def decode_tree(obj, tensors: dict, where: str, error: ErrorType = ValueError,
                as_tensors: bool = True, copy: bool = True):
    """Inverse of :func:`encode_tree`; every node is checked (a hostile structure raises
    ``error``, it never builds anything but arrays, tensors, numbers, strings and containers).
    ``as_tensors=False`` gives plain arrays for marked tensors too."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, list):
        return [decode_tree(v, tensors, where, error, as_tensors, copy) for v in obj]
    if not isinstance(obj, dict):
        raise error(f"{where}: damaged structure (unexpected {type(obj).__name__})")
    if "__tensor__" in obj:
        key = obj["__tensor__"]
        if not isinstance(key, str) or key not in tensors:
            raise error(f"{where}: the structure refers to array {key!r}, which is not in the "
                        f"file")
        arr = np.array(tensors[key], copy=True) if copy else tensors[key]
        kind = obj.get("tensor")
        if not as_tensors or kind is None:
            return arr
        if kind not in ("Tensor", "Parameter"):
            raise error(f"{where}: damaged structure (unknown tensor class {kind!r})")
        requires_grad = obj.get("requires_grad", False) is True
        if requires_grad and arr.dtype.kind != "f":
            raise error(f"{where}: array {key!r} of dtype {arr.dtype} cannot require gradients")
        if kind == "Parameter":
            from filterbank.nn import Parameter

            return Parameter(arr, requires_grad=requires_grad)
        from filterbank.tensor import Tensor

        return Tensor(arr, requires_grad=requires_grad, dtype=arr.dtype)
    if "__scalar__" in obj:
        try:
            dtype = np.dtype(obj["__scalar__"])
        except (TypeError, ValueError):
            dtype = None
        value = obj.get("value")
        if dtype is None or dtype.kind not in "biuf" or isinstance(value, dict | list | str) \
                or value is None:
            raise error(f"{where}: damaged structure (bad scalar {obj!r:.80})")
        try:
            return dtype.type(value)
        except (TypeError, ValueError, OverflowError):
            raise error(f"{where}: damaged structure (bad scalar {obj!r:.80})") from None
    if "__tuple__" in obj:
        items = obj["__tuple__"]
        if not isinstance(items, list):
            raise error(f"{where}: damaged structure (__tuple__ must hold a list)")
        return tuple(decode_tree(v, tensors, where, error, as_tensors, copy) for v in items)
    if "__items__" in obj:
        items = obj["__items__"]
        if not isinstance(items, list) or not all(isinstance(p, list) and len(p) == 2
                                                  for p in items):
            raise error(f"{where}: damaged structure (__items__ must hold [key, value] pairs)")
        out = {}
        for k, v in items:
            k = _hashable(decode_tree(k, tensors, where, error, as_tensors=False, copy=False))
            try:
                hash(k)
            except TypeError:
                raise error(f"{where}: damaged structure (a dict key of type "
                            f"{type(k).__name__})") from None
            out[k] = decode_tree(v, tensors, where, error, as_tensors, copy)
        return out
    return {k: decode_tree(v, tensors, where, error, as_tensors, copy) for k, v in obj.items()}


def _hashable(k):
    return tuple(_hashable(v) for v in k) if isinstance(k, list) else k


# --------------------------------------------------------------------- save / load
def save(obj: Any, path: str | os.PathLike) -> Path:
    """Save ``obj`` (a state dict, or nested dicts/lists/tuples of tensors, arrays, numbers,
    strings, None and bools) to one file, atomically; the inverse of :func:`load`.

    The file is safetensors (the arrays) with the structure as JSON in its header metadata; no
    pickle. Dtypes are kept; non-string dict keys (an optimizer state's parameter indices),
    tuples and NumPy scalars come back as they were.

    Args:
        obj: what to save, e.g. ``model.state_dict()`` or
            ``{"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}``.
        path: the file (by convention ``*.safetensors``); its folder must exist.

    Returns:
        the path written.

    Raises:
        TypeError: ``obj`` contains something else (an arbitrary object, a string array...).

    Example:
        >>> import filterbank as fb, numpy as np, tempfile, os
        >>> from filterbank.serialization import load, save
        >>> path = os.path.join(tempfile.mkdtemp(), "state.safetensors")
        >>> _ = save({"w": fb.ones(2, 3), "step": 7, "idx": np.arange(3)}, path)
        >>> back = load(path)
        >>> back["w"].shape, back["step"], back["idx"].dtype
        ((2, 3), 7, dtype('int64'))
    """
    import safetensors.numpy

    path = Path(path)
    tensors: dict[str, np.ndarray] = {}
    structure = encode_tree(obj, "", tensors, "save", TypeError, unique=True)
    if json_depth(structure) > MAX_DEPTH:  # load would refuse it
        raise ValueError(f"save: the structure nests deeper than {MAX_DEPTH} levels")
    text = json.dumps(structure, allow_nan=True, separators=(",", ":"))
    blob = safetensors.numpy.save(tensors, metadata={"format": FORMAT,
                                                     "version": str(FORMAT_VERSION),
                                                     "structure": text})
    atomic_write_bytes(path, blob)
    return path


def _bad(path, why: str) -> ValueError:
    return ValueError(f"load: {path} is not a file written by filterbank.save ({why})")


def check_header(path, header_bytes: bytes, data_len: int,
                 error: ErrorType = ValueError) -> dict:
    """The parsed safetensors header (the JSON after the length field), every entry checked:
    a known dtype, a shape of non-negative ints whose byte count is its byte range's, and
    ranges that cover the ``data_len`` bytes after the header exactly (so nothing but what
    the header declares is ever read)."""
    def bad(why):
        return error(f"{path}: not a safetensors file written by filterbank ({why})")

    try:
        header = json.loads(header_bytes)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise bad(f"the header is not JSON: {str(e)[:80]}") from None
    except RecursionError:
        raise bad("the header is nested too deeply") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            if not (isinstance(info, dict) and all(isinstance(v, str) for v in info.values())):
                raise bad("__metadata__ must map names to strings")
            continue
        dtype = info.get("dtype") if isinstance(info, dict) else None
        if not isinstance(dtype, str) or dtype not in _DTYPES:  # a list is not hashable
            raise bad(f"array {name!r}: unsupported or missing dtype")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
            raise bad(f"array {name!r}: bad shape {shape!r:.60}")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_len):
            raise bad(f"array {name!r}: byte range {offsets!r:.60} outside the {data_len:,} "
                      f"bytes of data (truncated?)")
        size = int(np.prod(shape, dtype=object)) * np.dtype(_DTYPES[info["dtype"]]).itemsize
        if size != offsets[1] - offsets[0]:
            raise bad(f"array {name!r}: shape {shape} needs {size:,} bytes, its range has "
                      f"{offsets[1] - offsets[0]:,}")
        end = max(end, offsets[1])
    if end != data_len:
        raise bad(f"its arrays end at byte {end:,} of the {data_len:,} after the header")
    return header


def read_safetensors(path, error: ErrorType = ValueError, expected_size: int | None = None,
                     expected_by: str = "") -> tuple[dict, bytes]:
    """(checked header, the whole file's bytes) of the safetensors file ``path``.

    The file's type and size are checked before it is read (a regular file; ``expected_size``
    bytes when given, ``expected_by`` says who expects it), then its header, then only the
    bytes that header declares are read.
    """
    with RegularFile(path, error) as f:
        if expected_size is not None and f.size != expected_size:
            by = f" ({expected_by})" if expected_by else ""
            raise error(f"{path}: truncated or replaced: expected {expected_size:,} bytes{by}, "
                        f"the file has {f.size:,}")
        if f.size < 8:
            raise error(f"{path}: not a safetensors file ({f.size} bytes, too short for a "
                        f"safetensors header)")
        head = f.read(8)
        n = int.from_bytes(head, "little")
        if n > f.size - 8 or n > MAX_HEADER_BYTES:
            raise error(f"{path}: not a safetensors file (its header claims {n:,} bytes, the "
                        f"file has {f.size - 8:,} after the length field; truncated?)")
        header_bytes = f.read(n)
        header = check_header(path, header_bytes, f.size - 8 - n, error)
        # a header may declare gigabytes over a sparse file (truncate -s 8G): refuse what
        # cannot be held before reading it, rather than fill the memory or raise MemoryError
        check_fits_in_memory(f.size - 8 - n, f"{path}: its arrays take", error)
        try:
            f.file.seek(0)  # the whole file in one buffer (not a second, concatenated copy)
            return header, f.read(f.size)
        except MemoryError:
            raise error(f"{path}: its arrays take {f.size - 8 - n:,} bytes, more than the "
                        f"memory available") from None


def load(path: str | os.PathLike, map_location=None) -> Any:
    """Load what :func:`save` wrote: the same structure, tensors as Tensors, arrays as NumPy
    arrays, dtypes kept.

    Tensors come back in host memory, wherever they were saved from (a file saved from GPU
    tensors loads on a machine without a GPU or CuPy), unless ``map_location`` names a device
    for them (``"cuda"``, ``"cuda:1"``, ``fb.device(...)``; plain NumPy arrays stay NumPy).

    Nothing in the file is executed (no pickle): it is checked to be a safetensors file whose
    header sizes agree with the file and whose metadata holds a filterbank structure before any
    array is built.

    Args:
        path: a file written by :func:`save`.
        map_location: None or ``"cpu"`` (host memory), or the device the tensors go to.

    Returns:
        the saved object (``OrderedDict`` state dicts come back as plain dicts, in order).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a file of this format, truncated, corrupted or hostile; the message
            names the file and the problem. A ``map_location`` GPU without CuPy or a GPU
            raises :class:`~filterbank.backend.DeviceError` (a ValueError) before reading.

    Example:
        >>> import filterbank as fb, tempfile, os
        >>> from filterbank.serialization import load, save
        >>> model = fb.nn.Linear(3, 2)
        >>> path = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
        >>> _ = save(model.state_dict(), path)
        >>> fb.nn.Linear(3, 2).load_state_dict(load(path))
        IncompatibleKeys(missing_keys=[], unexpected_keys=[])
    """
    import safetensors
    import safetensors.numpy

    dev = None if map_location is None else usable_device(map_location)  # before any reading
    path = Path(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: {path}: no such file")
    header, blob = read_safetensors(path, _load_error)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(path, f"no \"format\": \"{FORMAT}\" in its safetensors metadata; a plain "
                         f"safetensors file reads with safetensors.numpy.load_file")
    version = meta.get("version")
    if not (isinstance(version, str) and version.isdigit()
            and 1 <= int(version) <= FORMAT_VERSION):
        raise _bad(path, f"format version {version!r} is not supported (this filterbank reads "
                         f"1..{FORMAT_VERSION})")
    text = meta.get("structure")
    if not isinstance(text, str):
        raise _bad(path, "no structure in its metadata")
    structure = parse_json(text, f"load: {path}: its structure", ValueError)
    try:
        arrays = safetensors.numpy.load(blob)
    except (safetensors.SafetensorError, ValueError, TypeError) as e:
        raise _bad(path, f"unreadable arrays: {str(e)[:120]}") from None
    obj = decode_tree(structure, arrays, f"load: {path}", ValueError, copy=False)
    return obj if dev is None or dev.type == "cpu" else _tensors_to(obj, dev)


def _tensors_to(obj, dev):
    """``obj`` with every Tensor's array moved to ``dev`` (the Tensor objects are kept)."""
    from filterbank.tensor import Tensor

    if isinstance(obj, Tensor):
        obj.data = to_device(obj.data, dev)
        return obj
    if isinstance(obj, list | tuple):
        return type(obj)(_tensors_to(v, dev) for v in obj)
    if isinstance(obj, dict):
        return {k: _tensors_to(v, dev) for k, v in obj.items()}
    return obj


def _load_error(message: str) -> ValueError:
    return ValueError(f"load: {message}")
