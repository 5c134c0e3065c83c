"""Fuzzing the IDX and CIFAR readers (issue 15, "Done means"): random truncations, bit flips,
header mutations and appended bytes, raw and gzip-compressed, never raise anything but the
readers' documented ValueError (and never hang or allocate what a header claims)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filterbank.data.datasets.cifar import read_cifar_binary
from filterbank.data.datasets.idx import read_idx, read_idx_images, read_idx_labels

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _idx(arr: np.ndarray, code: int, dtype: str) -> bytes:
    return (bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
            + arr.astype(dtype).tobytes())


_rng = np.random.default_rng(0)
IDX_SEEDS = [
    _idx(_rng.integers(0, 256, (3, 4, 5)).astype(np.uint8), 0x08, "u1"),
    _idx(_rng.integers(0, 10, 9).astype(np.uint8), 0x08, "u1"),
    _idx(_rng.integers(-128, 128, 6).astype(np.int8), 0x09, "i1"),
    _idx(_rng.integers(-3000, 3000, (2, 3)).astype(np.int16), 0x0B, ">i2"),
    _idx(_rng.standard_normal((2, 2)).astype(np.float32), 0x0D, ">f4"),
]


@st.composite
def mutated(draw, seeds: list[bytes], header_len: int) -> bytes:
    """One of ``seeds`` with a few random mutations applied in turn."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "header", "dims", "append", "zero"]))
        if kind == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif kind == "flip" and data:
            for _ in range(draw(st.integers(1, 8))):
                i = draw(st.integers(0, len(data) - 1))
                data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "header":
            n = min(header_len, len(data))
            data[:n] = draw(st.binary(min_size=n, max_size=n))
        elif kind == "dims" and len(data) >= 8:
            i = draw(st.integers(1, (min(len(data), 16) // 4) - 1))
            dim = draw(st.sampled_from([0, 1, 2**16, 2**21, 2**22, 2**31, 2**32 - 1])
                       | st.integers(0, 2**32 - 1))
            data[4 * i:4 * i + 4] = struct.pack(">I", dim)
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=64))
        elif kind == "zero":
            data += bytes(draw(st.integers(1, 4096)))
    return bytes(data)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _read_all_ways(path: Path) -> None:
    try:
        arr = read_idx(path)
    except ValueError as e:
        assert str(path) in str(e)
        return
    assert isinstance(arr, np.ndarray) and arr.dtype.isnative
    for read in (read_idx_images, lambda p: read_idx_labels(p, num_classes=10)):
        try:
            read(path)
        except ValueError as e:
            assert str(path) in str(e)


@FUZZ
@given(data=mutated(IDX_SEEDS, 16), gz=st.booleans())
def test_fuzz_idx_payload(folder, data, gz):
    path = folder / "x-idx"
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    _read_all_ways(path)


@FUZZ
@given(data=mutated([gzip.compress(s, mtime=0) for s in IDX_SEEDS], 10))
def test_fuzz_idx_gzip_stream(folder, data):
    """Mutations of the compressed bytes: gzip header, deflate stream, CRC and length."""
    path = folder / "y-idx.gz"
    path.write_bytes(data)
    _read_all_ways(path)


_PIXELS = 3 * 32 * 32
CIFAR10 = bytes(np.concatenate([np.r_[lab, _rng.integers(0, 256, _PIXELS)]
                                for lab in (3, 9)]).astype(np.uint8))
CIFAR100 = bytes(np.concatenate([np.r_[c, f, _rng.integers(0, 256, _PIXELS)]
                                 for c, f in ((19, 99), (0, 5))]).astype(np.uint8))


@FUZZ
@given(data=mutated([CIFAR10], 1))
def test_fuzz_cifar10(folder, data):
    path = folder / "data_batch_1.bin"
    path.write_bytes(data)
    try:
        images, labels = read_cifar_binary([path], 1, (10,))
    except ValueError as e:
        assert str(path) in str(e)
        return
    assert images.shape == (len(data) // 3073, 32, 32, 3) and labels.max() < 10


@FUZZ
@given(data=mutated([CIFAR100], 2))
def test_fuzz_cifar100(folder, data):
    path = folder / "train.bin"
    path.write_bytes(data)
    try:
        images, labels = read_cifar_binary([path], 2, (20, 100))
    except ValueError as e:
        assert str(path) in str(e)
        return
    assert images.shape == (len(data) // 3074, 32, 32, 3)
    assert (labels < [20, 100]).all() and (labels >= 0).all()
