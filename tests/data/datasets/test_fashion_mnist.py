"""MNIST / Fashion-MNIST: search order, item format, downloads from a local HTTP server
(including a corrupted file that must be rejected), and the embedded sample."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from filterbank.data.datasets import (
    MNIST,
    DownloadError,
    FashionMNIST,
    FashionMNISTSample,
    download_url,
    write_idx,
)
from filterbank.data.datasets import fashion_mnist as fm

REPO = Path(__file__).resolve().parents[3]
N_TRAIN, N_TEST = 20, 10


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real data directory can leak in: env, cache and system dirs all point into tmp."""
    monkeypatch.setenv("FILTERBANK_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(tmp_path / "system"),))
    # small fake splits instead of the official 60,000 / 10,000
    monkeypatch.setattr(MNIST, "sizes", {True: N_TRAIN, False: N_TEST})


def fake_split(train: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    n = N_TRAIN if train else N_TEST
    return g.integers(0, 256, (n, 28, 28)).astype(np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_fake(directory: Path, seed: int = 0, gz: bool = True) -> dict:
    """Write both splits in MNIST file layout; returns {filename: bytes-sha256}."""
    directory.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for train in (True, False):
        images, labels = fake_split(train, seed + (0 if train else 1))
        for stem, arr in zip(fm._FILES[train], (images, labels)):
            p = write_idx(directory / (stem + (".gz" if gz else "")), arr)
            hashes[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return hashes


# ------------------------------------------------------------------------------ finding files
def test_reads_root_and_item_format(tmp_path):
    write_fake(tmp_path / "root")
    ds = FashionMNIST(root=tmp_path / "root", train=True)
    images, labels = fake_split(True, 0)
    assert len(ds) == N_TRAIN and ds.data.dtype == np.uint8 and ds.targets.dtype == np.int64
    np.testing.assert_array_equal(ds.data, images)
    np.testing.assert_array_equal(ds.targets, labels)
    image, label = ds[3]
    assert image.shape == (28, 28, 1) and image.dtype == np.uint8 and type(label) is int
    np.testing.assert_array_equal(image[..., 0], images[3])
    test = FashionMNIST(root=tmp_path / "root", train=False)
    np.testing.assert_array_equal(test.data, fake_split(False, 1)[0])
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert ds.class_to_idx["Bag"] == 8 and MNIST.classes[7] == "7 - seven"


def test_raw_uncompressed_files_and_subfolder(tmp_path):
    write_fake(tmp_path / "root" / "fashion-mnist", gz=False)
    ds = FashionMNIST(root=tmp_path / "root")
    assert ds.find(tmp_path / "root")[0].name == "train-images-idx3-ubyte"
    np.testing.assert_array_equal(ds.data, fake_split(True, 0)[0])


def test_search_order(tmp_path):
    places = {
        "root": tmp_path / "root",
        "env": tmp_path / "env",
        "cache": tmp_path / "xdg" / "filterbank" / "fashion-mnist",
        "system": tmp_path / "system",
    }
    for seed, d in enumerate(places.values()):
        write_fake(d, seed=10 * seed)
    # each place wins while it exists; removing it falls through to the next one
    for seed, (name, d) in enumerate(places.items()):
        ds = FashionMNIST(root=places["root"], train=True)
        np.testing.assert_array_equal(ds.data, fake_split(True, 10 * seed)[0], err_msg=name)
        for f in d.iterdir():
            f.unlink()
    with pytest.raises(FileNotFoundError) as e:
        FashionMNIST(root=places["root"])
    msg = str(e.value)
    for d in (places["root"], places["env"], tmp_path / "xdg" / "filterbank", places["system"]):
        assert str(d) in msg
    assert "download=True" in msg and "sample=True" in msg


def test_home_cache_when_no_env(tmp_path, monkeypatch):
    monkeypatch.delenv("FILTERBANK_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_fake(tmp_path / "home" / ".cache" / "filterbank" / "mnist", seed=5)
    np.testing.assert_array_equal(MNIST().data, fake_split(True, 5)[0])


def test_wrong_image_count_is_an_error(tmp_path, monkeypatch):
    write_fake(tmp_path / "root")
    monkeypatch.setattr(MNIST, "sizes", {True: N_TRAIN + 1, False: N_TEST})
    with pytest.raises(ValueError, match=f"expected {N_TRAIN + 1} images, got {N_TRAIN}"):
        FashionMNIST(root=tmp_path / "root")


def test_transforms_get_batch_and_arrays(tmp_path):
    write_fake(tmp_path / "root")
    ds = FashionMNIST(root=tmp_path / "root")
    idx = np.array([4, 0, 7])
    xb, yb = ds.get_batch(idx)
    assert xb.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(xb, np.stack([ds[i][0] for i in idx]))
    np.testing.assert_array_equal(yb, [ds[i][1] for i in idx])
    x, y = ds.arrays()
    assert x.shape == (N_TRAIN, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0] * 255, ds.data, atol=1e-4)
    assert ds.arrays(normalize=False)[0].dtype == np.uint8
    tds = FashionMNIST(root=tmp_path / "root", transform=lambda a: a.sum(),
                       target_transform=lambda t: -t)
    assert tds[2] == (int(ds.data[2].sum()), -ds[2][1])
    assert not hasattr(tds, "get_batch")  # the loader must call the per-item transform


# ---------------------------------------------------------------------------------- download
@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_download_into_root(tmp_path, server, monkeypatch):
    www, url = server
    hashes = write_fake(www / "mirror")
    monkeypatch.setattr(FashionMNIST, "sha256", hashes)
    root = tmp_path / "dl"
    ds = FashionMNIST(root=root, train=True, download=True, mirrors=url + "/mirror/",
                      progress=False)
    np.testing.assert_array_equal(ds.data, fake_split(True, 0)[0])
    dest = root / "fashion-mnist"
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"])  # no .part left over
    # found afterwards without download, and the test split downloads next to it
    assert FashionMNIST(root=root).find(root)[0].parent == dest
    FashionMNIST(root=root, train=False, download=True, mirrors=[url + "/mirror"],
                 progress=False)
    assert len(list(dest.iterdir())) == 4


def test_download_default_goes_to_env_dir(tmp_path, server, monkeypatch):
    www, url = server
    monkeypatch.setattr(MNIST, "sha256", write_fake(www))
    MNIST(download=True, mirrors=[url], progress=False)
    assert (tmp_path / "env" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_corrupted_download_rejected(tmp_path, server, monkeypatch):
    www, url = server
    hashes = write_fake(www)
    monkeypatch.setattr(FashionMNIST, "sha256", hashes)
    bad = www / "train-images-idx3-ubyte.gz"
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    bad.write_bytes(bytes(data))
    root = tmp_path / "dl"
    with pytest.raises(DownloadError) as e:
        FashionMNIST(root=root, download=True, mirrors=[url], progress=False)
    assert "SHA-256 mismatch" in str(e.value) and hashes[bad.name] in str(e.value)
    dest = root / "fashion-mnist"
    assert not any(dest.iterdir())  # nothing left in place, no partial file either


def test_mirror_fallback(tmp_path, server, monkeypatch):
    www, url = server
    hashes = write_fake(www / "good")
    (www / "bad").mkdir()
    for name in hashes:  # a mirror serving wrong bytes under the right names
        (www / "bad" / name).write_bytes(b"not the file")
    monkeypatch.setattr(FashionMNIST, "sha256", hashes)
    mirrors = [url + "/missing/", url + "/bad/", url + "/good/"]
    ds = FashionMNIST(root=tmp_path / "dl", download=True, mirrors=mirrors, progress=False)
    assert len(ds) == N_TRAIN


def test_download_url_failure_keeps_existing_file(tmp_path, server):
    www, url = server
    (www / "f.bin").write_bytes(b"new contents")
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    with pytest.raises(DownloadError, match="could not download f.bin"):
        download_url(url + "/f.bin", dest, sha256="0" * 64, progress=False)
    assert dest.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["f.bin", "www"]
    good = hashlib.sha256(b"new contents").hexdigest()
    download_url([url + "/missing", url + "/f.bin"], dest, sha256=good, progress=False)
    assert dest.read_bytes() == b"new contents"
    with pytest.raises(ValueError, match="at least one URL"):
        download_url([], dest)


def test_download_url_is_atomic_under_interrupt(tmp_path, server, monkeypatch):
    """A crash after the data is written but before the rename leaves no file at dest."""
    www, url = server
    (www / "f.bin").write_bytes(b"x" * 5000)

    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        download_url(url + "/f.bin", tmp_path / "out" / "f.bin", progress=False)
    assert os.listdir(tmp_path / "out") == []


# ----------------------------------------------------------------------------- the sample
@pytest.mark.parametrize("train,n", [(True, 6000), (False, 1000)])
def test_embedded_sample(train, n):
    for ds in (FashionMNISTSample(train), FashionMNIST(train=train, sample=True)):
        assert len(ds) == n and ds.data.shape == (n, 28, 28) and ds.data.dtype == np.uint8
        assert np.bincount(ds.targets, minlength=10).tolist() == [n // 10] * 10
        assert ds[0][0].shape == (28, 28, 1)
        assert 0 < ds.data.mean() < 255 and ds.data.std() > 10  # real images, not blank
    assert ds.classes == FashionMNIST.classes


def test_embedded_files_and_notice():
    files = sorted(fm.EMBEDDED_DIR.iterdir())
    total = sum(f.stat().st_size for f in files)
    assert total < 4_000_000
    notice = (fm.EMBEDDED_DIR / "NOTICE").read_text()
    assert "Zalando SE" in notice and "MIT" in notice and "Permission is hereby granted" in notice
    for f in files:
        if f.name != "NOTICE":
            assert f.read_bytes()[:2] == b"\x1f\x8b"  # stored compressed


def _full_fashion_mnist_available() -> bool:
    try:
        return FashionMNIST.find(None, True) is not None and FashionMNIST.find(None, False)
    except OSError:
        return False


def test_sample_reproducible_from_full_data(tmp_path, monkeypatch):
    """Re-running the tool on the full data set gives the shipped files byte for byte."""
    monkeypatch.undo()  # the real search path, the real sizes
    if not _full_fashion_mnist_available():
        pytest.skip("full Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    out = tmp_path / "emb"
    subprocess.run([sys.executable, str(REPO / "tools" / "make_embedded_sample.py"),
                    "--out", str(out)], check=True, capture_output=True)
    for f in fm.EMBEDDED_DIR.iterdir():
        assert (out / f.name).read_bytes() == f.read_bytes(), f.name
