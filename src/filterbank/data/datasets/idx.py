"""The IDX file format of MNIST and Fashion-MNIST, raw or gzip-compressed.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the values in C
order::

    magic = 0x00 0x00 <dtype code> <ndim>      e.g. 0x00000803: uint8, 3 dims (images)
    dims  = ndim x uint32 (big-endian)          e.g. 60000, 28, 28
    data  = prod(dims) values of the dtype (big-endian for multi-byte types)

Everything is checked before the values are used (magic, dtype code, number of dimensions, exact
file length), so a corrupt or truncated download fails with a message that names the file and
what is wrong instead of producing garbage images. Hostile files cost nothing either: only
regular files are opened (no FIFO, no link to ``/dev/zero``), the declared size is computed in
Python integers and bounded by :data:`MAX_IDX_BYTES`, a raw file's length is compared with it
before the data is read, and gzip data is inflated in chunks and abandoned one byte past the
declared size (a "gzip bomb" stops there).
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from filterbank.serialization import check_fits_in_memory, check_regular

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
#: Largest data size (bytes after the header) :func:`read_idx` accepts unless told otherwise:
#: 4 GiB. A header declaring more is refused before anything is read or decompressed.
MAX_IDX_BYTES = 1 << 32
_CHUNK = 1 << 20


def _open_regular(path: Path):
    """Open ``path`` for reading after the shared regular-file check (a FIFO would block, a
    link to ``/dev/zero`` never ends)."""
    st = check_regular(path, ValueError)  # FileNotFoundError as documented
    return open(path, "rb"), st.st_size


def _read_upto(stream, n: int, path: Path, gz: bool) -> bytearray:
    """Up to ``n`` bytes of ``stream`` (fewer only at its end), read in chunks so that memory
    grows with the data that is really there, not with what a header claims."""
    buf = bytearray()
    try:
        while len(buf) < n:
            chunk = stream.read(min(_CHUNK, n - len(buf)))
            if not chunk:
                break
            buf += chunk
    except (EOFError, OSError, zlib.error) as e:
        if not gz:
            raise
        raise ValueError(f"IDX file {path}: corrupt or truncated gzip data ({e})") from None
    return buf


def read_idx(path: str | os.PathLike, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) into a native-endian NumPy array.

    The header is checked before any value is read: the size it declares is computed in
    Python integers (no overflow) and must not exceed ``max_bytes``; a raw file's length must
    match it exactly (compared with ``stat`` before reading), and gzip data is decompressed
    incrementally and abandoned as soon as it exceeds the declared size (a "gzip bomb" costs
    at most that much memory).

    Args:
        path: the file; gzip compression is detected from its first bytes.
        max_bytes: largest data size (bytes after the header) accepted; default
            :data:`MAX_IDX_BYTES` (4 GiB; MNIST's training images are 47 MB).

    Returns:
        An array of the stored dtype and shape (writable, native byte order).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a regular file, bad magic number (the first two bytes must be zero),
            unknown dtype code, zero dimensions, a declared size above ``max_bytes``, corrupt
            gzip data, or a length that does not match the header (truncated or with trailing
            bytes); the message names the file.

    Example:
        >>> images = read_idx("train-images-idx3-ubyte.gz")  # doctest: +SKIP
        >>> images.shape, images.dtype  # doctest: +SKIP
        ((60000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    limit = MAX_IDX_BYTES if max_bytes is None else int(max_bytes)
    f, file_size = _open_regular(path)
    with f:
        # Decide by content, not by the name: a renamed .gz or an uncompressed "x.gz" both work.
        gz = f.read(2) == _GZIP_MAGIC
        f.seek(0)
        with gzip.GzipFile(fileobj=f, mode="rb") if gz else contextlib.nullcontext(f) as src:
            return _read_idx_stream(src, path, gz, file_size, limit)


def _read_idx_stream(src, path: Path, gz: bool, file_size: int, limit: int) -> np.ndarray:
    head = _read_upto(src, 4, path, gz)
    if len(head) < 4:
        raise ValueError(
            f"IDX file {path}: too short for an IDX header ({len(head)} bytes, expected at "
            f"least 4)"
        )
    zero0, zero1, code, ndim = head
    magic = int.from_bytes(head, "big")
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
    rest = _read_upto(src, 4 * ndim, path, gz)
    if len(rest) < 4 * ndim:
        raise ValueError(
            f"IDX file {path}: truncated header: {ndim} dimensions need {header} bytes, the "
            f"file has {4 + len(rest)}"
        )
    dims = struct.unpack(f">{ndim}I", rest)
    dtype = IDX_DTYPES[code]
    nbytes = math.prod(dims) * dtype.itemsize  # Python ints: 2**22 * 2**21 * 2**21 cannot wrap
    expected = header + nbytes
    if nbytes > limit:
        raise ValueError(
            f"IDX file {path}: the header declares shape {dims} of {dtype.name}, {nbytes:,} "
            f"bytes of data, above the limit of {limit:,} bytes (MAX_IDX_BYTES); a corrupt "
            f"header, or pass max_bytes= to read a file this large"
        )
    if not gz and file_size != expected:  # checked with stat, before reading the data
        _wrong_length(path, dims, dtype, header, nbytes, file_size, gz)
    check_fits_in_memory(nbytes, f"IDX file {path}: the header declares")
    data = _read_upto(src, nbytes, path, gz)
    if len(data) < nbytes:
        _wrong_length(path, dims, dtype, header, nbytes, header + len(data), gz)
    if _read_upto(src, 1, path, gz):  # at the end of gzip data this also checks its CRC
        _wrong_length(path, dims, dtype, header, nbytes, None, gz)
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)  # writable: backed by a bytearray
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))


def _wrong_length(path: Path, dims, dtype, header: int, nbytes: int, has: int | None,
                  gz: bool):
    """Raise the length mismatch error; ``has`` is the length found, None for "more"."""
    expected = header + nbytes
    what = "has trailing bytes" if has is None or has > expected else "truncated"
    found = "more" if has is None else str(has)
    raise ValueError(
        f"IDX file {path}: {what}: shape {dims} of {dtype.name} needs {expected} bytes "
        f"(header {header} + data {nbytes}), the {'decompressed data' if gz else 'file'} has "
        f"{found}"
    )


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
