"""CIFAR-10/100 binary readers on files the test writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from filterbank.data.datasets import CIFAR10, CIFAR100, read_cifar_binary
from filterbank.data.datasets.cifar import CIFAR100_CLASSES, CIFAR100_COARSE_CLASSES


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FILTERBANK_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def records(labels: np.ndarray, images_hwc: np.ndarray) -> bytes:
    """Binary records: label byte(s), then the R, G, B planes (the documented layout)."""
    planes = images_hwc.transpose(0, 3, 1, 2).reshape(len(images_hwc), -1)
    return np.concatenate([labels.reshape(len(labels), -1).astype(np.uint8), planes],
                          axis=1).tobytes()


def make_cifar10(directory: Path, per_batch: int = 2, n_test: int = 3, seed: int = 0):
    g = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        x = g.integers(0, 256, (per_batch, 32, 32, 3)).astype(np.uint8)
        y = g.integers(0, 10, per_batch)
        (directory / f"data_batch_{i}.bin").write_bytes(records(y, x))
        train_x.append(x)
        train_y.append(y)
    x = g.integers(0, 256, (n_test, 32, 32, 3)).astype(np.uint8)
    y = g.integers(0, 10, n_test)
    (directory / "test_batch.bin").write_bytes(records(y, x))
    return (np.concatenate(train_x), np.concatenate(train_y)), (x, y)


def test_cifar10_reads_layout(tmp_path):
    (tx, ty), (sx, sy) = make_cifar10(tmp_path / "root" / "cifar-10-batches-bin")
    ds = CIFAR10(tmp_path / "root", train=True, check_size=False)
    assert ds.data.shape == (10, 32, 32, 3) and ds.data.dtype == np.uint8
    np.testing.assert_array_equal(ds.data, tx)
    assert ds.targets.dtype == np.int64 and ds.targets.tolist() == ty.tolist()
    image, label = ds[4]
    np.testing.assert_array_equal(image, tx[4])
    assert label == ty[4] and ds.classes[label] == CIFAR10.classes[label]
    x, _ = ds.arrays()
    assert x.shape == (10, 3, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x[4, 0] * 255, tx[4, :, :, 0], atol=1e-3)  # channel 0 is red
    test = CIFAR10(tmp_path / "root", train=False, check_size=False)
    np.testing.assert_array_equal(test.data, sx)


def test_cifar10_pixel_order_by_hand(tmp_path):
    """One record with a known red/green/blue pattern."""
    rec = np.zeros(1 + 3072, np.uint8)
    rec[0] = 7
    rec[1 + 0 * 1024 + 0] = 200           # red at (0, 0)
    rec[1 + 1 * 1024 + 1 * 32 + 2] = 100  # green at row 1, col 2
    rec[1 + 2 * 1024 + 1023] = 50         # blue at (31, 31)
    p = tmp_path / "one.bin"
    p.write_bytes(rec.tobytes())
    images, labels = read_cifar_binary([p])
    assert labels.tolist() == [[7]]
    assert images[0, 0, 0, 0] == 200 and images[0, 1, 2, 1] == 100 and images[0, 31, 31, 2] == 50
    assert int(images.sum()) == 350


def test_cifar10_meta_names_and_direct_dir(tmp_path):
    make_cifar10(tmp_path / "flat")
    names = [f"class{i}" for i in range(10)]
    (tmp_path / "flat" / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    ds = CIFAR10(tmp_path / "flat", check_size=False)
    assert ds.classes == names and CIFAR10.classes[0] == "airplane"


def test_cifar10_found_via_env(tmp_path):
    make_cifar10(tmp_path / "env" / "cifar-10-batches-bin")
    assert len(CIFAR10(train=False, check_size=False)) == 3


@pytest.mark.parametrize("case", ["truncated", "empty", "bad-label"])
def test_cifar10_bad_files(tmp_path, case):
    d = tmp_path / "root"
    make_cifar10(d)
    p = d / "data_batch_3.bin"
    raw = bytearray(p.read_bytes())
    if case == "truncated":
        p.write_bytes(bytes(raw[:-1]))
        match = "not a positive multiple of the 3073-byte record"
    elif case == "empty":
        p.write_bytes(b"")
        match = "length 0 bytes"
    else:
        raw[3073] = 10  # second record's label
        p.write_bytes(bytes(raw))
        match = r"record 1 has label 10 .* expected a value in \[0, 10\)"
    with pytest.raises(ValueError, match=match) as e:
        CIFAR10(d, check_size=False)
    assert str(p) in str(e.value)


def test_cifar10_size_check_and_missing(tmp_path):
    make_cifar10(tmp_path / "root")
    with pytest.raises(ValueError, match="expected 50000 images, got 10"):
        CIFAR10(tmp_path / "root")
    with pytest.raises(FileNotFoundError, match="(?s)data_batch_1.bin.*cifar-10-binary.tar.gz"):
        CIFAR10(tmp_path / "nothing-here")


def test_cifar100(tmp_path):
    d = tmp_path / "root" / "cifar-100-binary"
    d.mkdir(parents=True)
    g = np.random.default_rng(1)
    x = g.integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    coarse, fine = g.integers(0, 20, 6), g.integers(0, 100, 6)
    (d / "train.bin").write_bytes(records(np.stack([coarse, fine], 1), x))
    (d / "test.bin").write_bytes(records(np.stack([coarse[:2], fine[:2]], 1), x[:2]))
    ds = CIFAR100(tmp_path / "root", check_size=False)
    np.testing.assert_array_equal(ds.data, x)
    assert ds.targets.tolist() == fine.tolist() and ds.coarse_targets.tolist() == coarse.tolist()
    assert len(ds.classes) == 100 and len(ds.coarse_classes) == 20
    assert len(set(CIFAR100_CLASSES)) == 100 and len(set(CIFAR100_COARSE_CLASSES)) == 20
    assert CIFAR100_CLASSES == sorted(CIFAR100_CLASSES)  # official order is alphabetical
    assert len(CIFAR100(tmp_path / "root", train=False, check_size=False)) == 2
    (d / "test.bin").write_bytes(records(np.array([[20, 0]]), x[:1]))
    with pytest.raises(ValueError, match=r"label 20 in label byte 0, expected .*\[0, 20\)"):
        CIFAR100(tmp_path / "root", train=False, check_size=False)
