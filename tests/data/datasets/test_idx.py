"""IDX reader: good files (raw and gzip) and a registry of corrupt ones, each written here."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from filterbank.data.datasets.idx import (
    read_idx,
    read_idx_images,
    read_idx_labels,
    write_idx,
)


def idx_bytes(arr: np.ndarray, code: int, dtype: str) -> bytes:
    """IDX bytes built by hand (independent of write_idx)."""
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(dtype).tobytes()


rng = np.random.default_rng(0)
GOOD = [
    ("images-u8", rng.integers(0, 256, (5, 28, 28)).astype(np.uint8), 0x08, "u1"),
    ("labels-u8", rng.integers(0, 10, 7).astype(np.uint8), 0x08, "u1"),
    ("i8", rng.integers(-128, 128, (3, 4)).astype(np.int8), 0x09, "i1"),
    ("i16", rng.integers(-3000, 3000, (2, 3)).astype(np.int16), 0x0B, ">i2"),
    ("i32", rng.integers(-2**31, 2**31 - 1, (4,)).astype(np.int32), 0x0C, ">i4"),
    ("f32", rng.standard_normal((2, 2, 2)).astype(np.float32), 0x0D, ">f4"),
    ("f64", rng.standard_normal((3,)), 0x0E, ">f8"),
]


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("name,arr,code,dtype", GOOD, ids=[g[0] for g in GOOD])
def test_read_good(tmp_path, name, arr, code, dtype, gz):
    payload = idx_bytes(arr, code, dtype)
    path = tmp_path / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(payload) if gz else payload)
    got = read_idx(path)
    assert got.dtype == arr.dtype and got.dtype.isnative
    assert got.flags.writeable
    np.testing.assert_array_equal(got, arr)


@pytest.mark.parametrize("name,arr,code,dtype", GOOD, ids=[g[0] for g in GOOD])
def test_write_idx_round_trip_and_bytes(tmp_path, name, arr, code, dtype):
    raw = write_idx(tmp_path / "a", arr)
    assert raw.read_bytes() == idx_bytes(arr, code, dtype)
    gz = write_idx(tmp_path / "a.gz", arr)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(gz), arr)
    # no time stamp in the gzip header: writing again gives identical bytes
    assert write_idx(tmp_path / "b.gz", arr).read_bytes() == gz.read_bytes()


def test_gzip_detected_by_content_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    p = tmp_path / "plain-name"
    p.write_bytes(gzip.compress(idx_bytes(arr, 0x08, "u1")))
    np.testing.assert_array_equal(read_idx(p), arr)


_IMG = np.zeros((4, 28, 28), np.uint8)
_GOOD_BYTES = idx_bytes(_IMG, 0x08, "u1")

# (id, file bytes, gzip?, fragment the error message must contain)
BAD = [
    ("empty", b"", False, "too short"),
    ("bad-magic", b"\x1f\x00" + _GOOD_BYTES[2:], False, "bad magic number 0x1F000803"),
    # every byte of the magic number counts, not only the first (issue 15, item 15)
    ("bad-magic-byte-1", b"\x00\x01" + _GOOD_BYTES[2:], False, "bad magic number 0x00010803"),
    ("bad-magic-byte-1-gz", b"\x00\x80" + _GOOD_BYTES[2:], True,
     "bad magic number 0x00800803"),
    ("bad-magic-dtype-byte", b"\x00\x00\x00\x03" + _GOOD_BYTES[4:], False,
     "unknown data type code 0x00"),
    ("bad-magic-ndim-byte", b"\x00\x00\x08\x02" + _GOOD_BYTES[4:], False, "trailing bytes"),
    ("text-file", b"hello world, not idx", False, "bad magic number"),
    ("unknown-dtype", b"\x00\x00\x07\x03" + _GOOD_BYTES[4:], False, "unknown data type code 0x07"),
    ("zero-dims", b"\x00\x00\x08\x00", False, "0 dimensions"),
    ("truncated-header", _GOOD_BYTES[:10], False, "truncated header"),
    ("truncated-data", _GOOD_BYTES[:-1], False, "truncated"),
    ("trailing-bytes", _GOOD_BYTES + b"\x00", False, "trailing bytes"),
    ("truncated-data-gz", _GOOD_BYTES[:-100], True, "truncated"),
    ("corrupt-gz-stream", gzip.compress(_GOOD_BYTES)[:-20], False, "corrupt or truncated gzip"),
    ("garbage-after-gz-magic", b"\x1f\x8b" + b"\x00" * 40, False, "corrupt or truncated gzip"),
]


@pytest.mark.parametrize("name,data,gz,fragment", BAD, ids=[b[0] for b in BAD])
def test_read_bad(tmp_path, name, data, gz, fragment):
    path = tmp_path / f"{name}-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg
    assert fragment in msg


def test_expected_sizes_in_truncation_message(tmp_path):
    path = tmp_path / "t"
    path.write_bytes(_GOOD_BYTES[:-5])
    with pytest.raises(ValueError, match=r"shape \(4, 28, 28\).*needs 3152 bytes.*has 3147"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


def test_images_and_labels_helpers(tmp_path):
    imgs = write_idx(tmp_path / "i.gz", _IMG)
    labs = write_idx(tmp_path / "l.gz", np.array([0, 9, 3, 3], np.uint8))
    assert read_idx_images(imgs, count=4).shape == (4, 28, 28)
    got = read_idx_labels(labs, count=4, num_classes=10)
    assert got.dtype == np.int64 and got.tolist() == [0, 9, 3, 3]
    with pytest.raises(ValueError, match="expected 5 images, got 4"):
        read_idx_images(imgs, count=5)
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(N, H, W\)"):
        read_idx_images(labs)
    with pytest.raises(ValueError, match=r"expected integer labels of shape \(N,\)"):
        read_idx_labels(imgs)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\).*\[0, 9\]"):
        read_idx_labels(labs, num_classes=5)


def test_write_idx_rejects_unsupported(tmp_path):
    with pytest.raises(ValueError, match="write_idx: cannot store dtype int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="0 dims"):
        write_idx(tmp_path / "x", np.uint8(3))


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_negative_int8_labels_are_out_of_range(tmp_path, gz):
    """int8 labels (code 0x09) below zero are refused, not wrapped or passed on."""
    path = tmp_path / ("labels" + (".gz" if gz else ""))
    payload = idx_bytes(np.array([3, -1, 0, -128], np.int8), 0x09, "i1")
    path.write_bytes(gzip.compress(payload) if gz else payload)
    assert read_idx_labels(path).tolist() == [3, -1, 0, -128]  # no range given: as stored
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\).*\[-128, 3\]") as e:
        read_idx_labels(path, count=4, num_classes=10)
    assert str(path) in str(e.value)
