"""CIFAR-10/100 binary readers on files the test writes, and the verified, safely unpacked
download from a local HTTP server."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from filterbank.data.datasets import (
    CIFAR10,
    CIFAR100,
    DownloadError,
    available_datasets,
    get_dataset,
    read_cifar_binary,
)
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


# ---------------------------------------------------------------------------------- download
def make_tarball(path: Path, folder: str, files: dict[str, bytes],
                 extra: list[tarfile.TarInfo] = ()) -> tuple[str, str]:
    """A .tar.gz with ``folder/`` and ``files`` under it (plus raw ``extra`` members); returns
    its (sha256, md5)."""
    with tarfile.open(path, "w:gz") as tar:
        d = tarfile.TarInfo(folder)
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    raw = path.read_bytes()
    return hashlib.sha256(raw).hexdigest(), hashlib.md5(raw).hexdigest()


def cifar10_files(seed: int = 0) -> tuple[dict[str, bytes], np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    files, xs, ys = {}, [], []
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        x = g.integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
        y = g.integers(0, 10, 2)
        files[name] = records(y, x)
        xs.append(x)
        ys.append(y)
    files["batches.meta.txt"] = ("\n".join(CIFAR10.classes) + "\n").encode()
    return files, np.concatenate(xs[:5]), np.concatenate(ys[:5])


@pytest.fixture
def served_cifar10(http_server, monkeypatch):
    """The synthetic CIFAR-10 tarball on the local server, its checksums pinned."""
    www, url = http_server
    files, x, y = cifar10_files()
    sha, md5 = make_tarball(www / CIFAR10.archive, CIFAR10.folder, files)
    monkeypatch.setattr(CIFAR10, "archive_sha256", sha)
    monkeypatch.setattr(CIFAR10, "archive_md5", md5)
    monkeypatch.setattr(CIFAR10, "mirrors", (url + "/",))
    monkeypatch.setattr(CIFAR10, "sizes", {True: 10, False: 2})
    return www, url, x, y


def leftovers(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")) \
        if directory.exists() else []


def test_official_checksums_are_pinned():
    # SHA-256 from TensorFlow Datasets' url_checksums, MD5 from the official CIFAR page
    assert CIFAR10.archive_sha256 == \
        "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
    assert CIFAR10.archive_md5 == "c32a1d4ab5d03f1284b67883e8d87530"
    assert CIFAR100.archive_sha256 == \
        "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec"
    assert CIFAR100.archive_md5 == "03b5dce01913d631647c71ecec9e9cb8"
    assert CIFAR10.mirrors[0] + CIFAR10.archive == CIFAR10.url
    assert CIFAR100.mirrors[0] + CIFAR100.archive == CIFAR100.url


def test_download_verifies_and_unpacks(tmp_path, served_cifar10):
    _, _, x, y = served_cifar10
    root = tmp_path / "dl"
    ds = CIFAR10(root, download=True, progress=False)
    np.testing.assert_array_equal(ds.data, x)
    assert ds.targets.tolist() == y.tolist()
    # only the unpacked files remain: no archive, no temporary folder or .part file
    assert leftovers(root) == ["cifar-10-batches-bin"] + [
        f"cifar-10-batches-bin/{n}" for n in sorted(cifar10_files()[0])]
    assert len(CIFAR10(root, train=False)) == 2  # found without downloading again


def test_download_default_dir_and_registry(tmp_path, served_cifar10):
    ds = get_dataset("CIFAR-10", train=False, download=True)
    assert len(ds) == 2 and ds.files[0].parent == tmp_path / "env" / "cifar-10-batches-bin"
    info = {d["name"]: d for d in available_datasets()}
    assert info["cifar10"]["downloadable"] and info["cifar10"]["found"] is not None


def test_wrong_checksum_fails_cleanly(tmp_path, served_cifar10, monkeypatch):
    monkeypatch.setattr(CIFAR10, "archive_sha256", "0" * 64)
    root = tmp_path / "dl"
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        CIFAR10(root, download=True, progress=False)
    assert leftovers(root) == []


def test_wrong_md5_fails_cleanly(tmp_path, served_cifar10, monkeypatch):
    monkeypatch.setattr(CIFAR10, "archive_md5", "0" * 32)
    root = tmp_path / "dl"
    with pytest.raises(ValueError, match=r"has MD5 [0-9a-f]{32}, expected the published 0{32}"):
        CIFAR10(root, download=True, progress=False)
    assert leftovers(root) == []


def _member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    info.size = 3 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("member, kind", [
    (_member("cifar-10-batches-bin/../../evil.bin"), "file"),
    (_member("/tmp/evil.bin"), "file"),
    (_member("cifar-10-batches-bin/link", tarfile.SYMTYPE, "/etc/passwd"), "link"),
    (_member("cifar-10-batches-bin/hard", tarfile.LNKTYPE, "../../outside"), "link"),
    (_member("cifar-10-batches-bin/fifo", tarfile.FIFOTYPE), "special file"),
    (_member("elsewhere/data.bin"), "file"),
])
def test_malicious_members_are_refused(tmp_path, served_cifar10, monkeypatch, member, kind):
    www, _, _, _ = served_cifar10
    files, _, _ = cifar10_files()
    sha, md5 = make_tarball(www / CIFAR10.archive, CIFAR10.folder, files, [member])
    monkeypatch.setattr(CIFAR10, "archive_sha256", sha)
    monkeypatch.setattr(CIFAR10, "archive_md5", md5)
    root = tmp_path / "deep" / "dl"
    with pytest.raises(ValueError, match=f"refusing to extract {kind} '{re.escape(member.name)}'"):
        CIFAR10(root, download=True, progress=False)
    assert leftovers(root) == []  # nothing extracted, the archive deleted
    assert leftovers(tmp_path / "deep") == ["dl"]
    assert not (tmp_path / "evil.bin").exists()


def test_cifar100_download(tmp_path, http_server, monkeypatch):
    www, url = http_server
    g = np.random.default_rng(3)
    x = g.integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    labels = np.stack([g.integers(0, 20, 4), g.integers(0, 100, 4)], 1)
    sha, md5 = make_tarball(www / CIFAR100.archive, CIFAR100.folder,
                            {"train.bin": records(labels, x), "test.bin": records(labels, x)})
    monkeypatch.setattr(CIFAR100, "archive_sha256", sha)
    monkeypatch.setattr(CIFAR100, "archive_md5", md5)
    ds = CIFAR100(tmp_path / "dl", download=True, check_size=False, mirrors=url,
                  progress=False)
    assert ds.targets.tolist() == labels[:, 1].tolist()
    assert (tmp_path / "dl" / "cifar-100-binary" / "test.bin").is_file()


def test_missing_message_says_what_works(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        CIFAR100(tmp_path / "nothing-here")
    msg = str(e.value)
    assert "CIFAR100(..., download=True)" in msg
    assert "filterbank datasets --download cifar100" in msg
    assert "cifar-100-binary.tar.gz" in msg and str(tmp_path / "nothing-here") in msg


def test_command_line_download(tmp_path, served_cifar10, capsys):
    from filterbank.cli import main

    assert main(["datasets", "--download", "cifar10", "--data-root", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("cifar10 "))
    assert str(tmp_path / "d" / "cifar-10-batches-bin") in row
    assert len(CIFAR10(tmp_path / "d")) == 10
