"""The IDX file format of MNIST and Fashion-MNIST, raw or gzip-compressed.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the values in C
order::

    magic = 0x00 0x00 <dtype code> <ndim>      e.g. 0x00000803: uint8, 3 dims (images)
    dims  = ndim x uint32 (big-endian)          e.g. 60000, 28, 28
    data  = prod(dims) values of the dtype (big-endian for multi-byte types)

Everything is checked before the values are used (magic, dtype code, number of dimensions, exact
file length), so a corrupt or truncated download fails with a message that names the file and
what is wrong instead of producing garbage images.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

#: IDX type code -> big-endian dtype of the stored values.
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    # Decide by content, not by the name: a renamed .gz or an uncompressed "x.gz" both work.
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"IDX file {path}: corrupt or truncated gzip data ({e})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) into a native-endian NumPy array.

    Args:
        path: the file; gzip compression is detected from its first bytes.

    Returns:
        An array of the stored dtype and shape (writable, native byte order).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: bad magic number, unknown dtype code, zero dimensions, or a file length
            that does not match the header (truncated or with trailing bytes); the message
            names the file.

    Example:
        >>> images = read_idx("train-images-idx3-ubyte.gz")  # doctest: +SKIP
        >>> images.shape, images.dtype  # doctest: +SKIP
        ((60000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(
            f"IDX file {path}: too short for an IDX header ({len(raw)} bytes, expected at "
            f"least 4)"
        )
    zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    magic = int.from_bytes(raw[:4], "big")
    if zero0 != 0 or zero1 != 0:
        raise ValueError(
            f"IDX file {path}: bad magic number 0x{magic:08X} (the first two bytes must be "
            f"0x00 0x00; is this an IDX file?)"
        )
    if code not in IDX_DTYPES:
        raise ValueError(
            f"IDX file {path}: unknown data type code 0x{code:02X} in magic number "
            f"0x{magic:08X} (expected one of {', '.join(f'0x{c:02X}' for c in IDX_DTYPES)})"
        )
    if ndim == 0:
        raise ValueError(f"IDX file {path}: magic number 0x{magic:08X} declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"IDX file {path}: truncated header: {ndim} dimensions need {header} bytes, the "
            f"file has {len(raw)}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_DTYPES[code]
    count = int(np.prod(dims, dtype=np.int64))
    expected = header + count * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(
            f"IDX file {path}: {what}: shape {dims} of {dtype.name} needs {expected} bytes "
            f"(header {header} + data {count * dtype.itemsize}), the file has {len(raw)}"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)  # writable and native-endian


def read_idx_images(path: str | os.PathLike, count: int | None = None) -> np.ndarray:
    """Read an IDX image file: uint8 of shape (N, H, W). ``count`` checks N if given."""
    arr = read_idx(path)
    if arr.ndim != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"IDX file {path}: expected uint8 images of shape (N, H, W), got {arr.dtype} "
            f"with shape {arr.shape}"
        )
    if count is not None and arr.shape[0] != count:
        raise ValueError(f"IDX file {path}: expected {count} images, got {arr.shape[0]}")
    return arr


def read_idx_labels(path: str | os.PathLike, count: int | None = None,
                    num_classes: int | None = None) -> np.ndarray:
    """Read an IDX label file: int64 of shape (N,). ``count`` and ``num_classes`` (labels in
    ``[0, num_classes)``) are checked if given."""
    arr = read_idx(path)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(
            f"IDX file {path}: expected integer labels of shape (N,), got {arr.dtype} with "
            f"shape {arr.shape}"
        )
    if count is not None and arr.shape[0] != count:
        raise ValueError(f"IDX file {path}: expected {count} labels, got {arr.shape[0]}")
    labels = arr.astype(np.int64)
    if num_classes is not None and labels.size and (labels.min() < 0
                                                     or labels.max() >= num_classes):
        raise ValueError(
            f"IDX file {path}: labels must lie in [0, {num_classes}), got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return labels


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed if ``compress`` (default: when the name
    ends in ``.gz``). The gzip header carries no time stamp, so equal arrays give equal bytes.
    """
    path = Path(path)
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=") if arr.dtype.itemsize > 1 else arr.dtype
    if key not in _CODES or arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(
            f"write_idx: cannot store dtype {arr.dtype} with {arr.ndim} dims in IDX (dtypes "
            f"{sorted(str(d) for d in _CODES)}, 1 to 255 dims)"
        )
    code = _CODES[key]
    payload = (bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
               + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes())
    if compress is None:
        compress = path.name.endswith(".gz")
    if compress:
        payload = gzip.compress(payload, compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)
    return path
