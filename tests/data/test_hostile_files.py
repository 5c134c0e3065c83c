"""Hostile and careless data files (issue 15, items 4-7 and 13): IDX headers that overflow,
gzip bombs, image decompression bombs, truncated images, symlink loops in image folders and
files that are not files. Each must end in the reader's documented error, naming the file,
without hanging or allocating what a header claims."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import struct
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from filterbank.data.datasets import image_folder as imf
from filterbank.data.datasets.cifar import read_cifar_binary
from filterbank.data.datasets.idx import read_idx, write_idx
from filterbank.data.datasets.image_folder import (
    ImageFolder,
    image_folder_splits,
    load_image,
)

Image = pytest.importorskip("PIL.Image")

ROOT = Path(__file__).resolve().parents[2]


# for _run_python: the child may use 256 MiB more than it does after its imports
_LIMIT_MEMORY = ("import resource; vm = next(int(line.split()[1]) * 1024 for line in "
                 "open('/proc/self/status') if line.startswith('VmSize:')); "
                 "resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20),) * 2)")


def _run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


# ------------------------------------------------------------------ item 4: IDX header overflow
def test_idx_header_whose_size_wraps_int64_is_refused_naming_the_file(tmp_path):
    # 2**22 * 2**21 * 2**21 = 2**64: np.prod in int64 wraps to 0, which "matched" 16 bytes
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", 2**22, 2**21, 2**21))
    with pytest.raises(ValueError) as e:
        read_idx(path)
    assert str(path) in str(e.value) and "limit" in str(e.value)
    assert "18,446,744,073,709,551,616 bytes" in str(e.value)


def test_idx_declared_size_is_bounded(tmp_path):
    arr = np.zeros((10, 10), np.uint8)
    path = write_idx(tmp_path / "a.gz", arr)
    np.testing.assert_array_equal(read_idx(path, max_bytes=100), arr)
    with pytest.raises(ValueError, match=r"100 bytes of data, above the limit of 99 bytes"):
        read_idx(path, max_bytes=99)


def test_idx_gz_declaring_much_but_holding_little_allocates_little(tmp_path):
    # 1 GiB declared (under the limit), a few bytes present: memory follows the data
    path = tmp_path / "liar.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 2**30) + b"x"))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="truncated"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak


# ---------------------------------------------------------------------- item 5: gzip bomb
def _gzip_bomb(path: Path, mib: int) -> Path:
    """A valid 4x28x28 IDX file in one gzip member followed by ``mib`` members of 1 MiB of
    zeros each (about 1 KB apiece): a small file that inflates to ``mib`` MiB."""
    good = b"\x00\x00\x08\x03" + struct.pack(">3I", 4, 28, 28) + bytes(4 * 28 * 28)
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(good, mtime=0))
        for _ in range(mib):
            f.write(zeros)
    return path


def test_gzip_bomb_stops_at_the_declared_size(tmp_path):
    path = _gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", 64)
    assert path.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as e:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(e.value) and "trailing bytes" in str(e.value)
    assert peak < 8 << 20, f"read {peak} bytes of a 64 MiB bomb"


def test_gzip_bomb_under_a_memory_limit(tmp_path):
    """A 1 GiB bomb in a process allowed 256 MiB more than it uses after start-up."""
    path = _gzip_bomb(tmp_path / "bomb-idx3-ubyte.gz", 1024)
    proc = _run_python(f"""
        from filterbank.data.datasets.idx import read_idx
        {_LIMIT_MEMORY}
        try:
            read_idx({str(path)!r})
        except ValueError as e:
            print("ValueError:", e)
        """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ValueError:") and "trailing bytes" in proc.stdout


@pytest.mark.parametrize("reader", ["idx", "cifar"])
def test_sparse_file_of_a_valid_length_larger_than_memory_is_refused(tmp_path, reader):
    """3 GB of holes with a matching IDX header (or a whole number of CIFAR records): under a
    memory limit this was a bare MemoryError naming nothing (without one, 3 GB read)."""
    path = tmp_path / "big"
    with open(path, "wb") as f:
        if reader == "idx":
            f.write(b"\x00\x00\x08\x03" + struct.pack(">3I", 3000, 1000, 1000))
            f.truncate(16 + 3 * 10**9)
        else:
            f.truncate(3073 * 10**6)
    call = (f"read_idx({str(path)!r})" if reader == "idx"
            else f"read_cifar_binary([{str(path)!r}])")
    proc = _run_python(f"""
        from filterbank.data.datasets.cifar import read_cifar_binary
        from filterbank.data.datasets.idx import read_idx
        {_LIMIT_MEMORY}
        try:
            {call}
        except ValueError as e:
            print("ValueError:", e)
        """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"ValueError: {reader.upper()} file {path}: ")
    assert "bytes, more than the" in proc.stdout
    assert "bytes of memory available" in proc.stdout


# -------------------------------------------------------- files that are not regular files
@pytest.fixture
def fifo(tmp_path):
    """A FIFO; should a reader block on it, a writer opens and closes it after 3 s so that the
    test fails instead of hanging."""
    path = tmp_path / "train-images-idx3-ubyte"
    os.mkfifo(path)
    done = threading.Event()

    def unblock():
        while not done.wait(3):
            with contextlib.suppress(OSError):  # ENXIO: nobody is reading, fine
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=unblock, daemon=True)
    thread.start()
    yield path
    done.set()
    thread.join()


def test_idx_fifo_is_refused_without_blocking(fifo):
    with pytest.raises(ValueError, match=f"{fifo}: expected a regular file, got a FIFO"):
        read_idx(fifo)


def test_cifar_fifo_is_refused_without_blocking(fifo):
    with pytest.raises(ValueError, match=f"{fifo}: expected a regular file, got a FIFO"):
        read_cifar_binary([fifo])


@pytest.mark.parametrize("reader", ["idx", "cifar"])
def test_link_to_dev_zero_is_refused(tmp_path, reader):
    """In a process with a memory limit: reading /dev/zero to its end never ends."""
    link = tmp_path / ("t10k-labels-idx1-ubyte.gz" if reader == "idx" else "test_batch.bin")
    link.symlink_to("/dev/zero")
    call = f"read_idx({str(link)!r})" if reader == "idx" else f"read_cifar_binary([{str(link)!r}])"
    proc = _run_python(f"""
        from filterbank.data.datasets.cifar import read_cifar_binary
        from filterbank.data.datasets.idx import read_idx
        {_LIMIT_MEMORY}
        try:
            {call}
        except ValueError as e:
            print("ValueError:", e)
        """, timeout=30)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ValueError:")
    assert f"{link}: expected a regular file" in proc.stdout


def test_image_folder_fifo_named_like_an_image_is_refused_without_blocking(fifo, tmp_path):
    root = tmp_path / "set"
    (root / "c").mkdir(parents=True)
    os.replace(fifo, root / "c" / "x.png")
    fifo.symlink_to(root / "c" / "x.png")  # the fixture's unblocker still finds it
    with pytest.raises(ValueError, match=f"{root / 'c'}/x.png: expected a regular file"):
        ImageFolder(root)
    ds = ImageFolder(root, mode="L")
    with pytest.raises(ValueError, match="expected a regular file, got a FIFO"):
        ds[0]


# ------------------------------------------------------- item 6: image decompression bomb
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width x height`` grey pixels (the data is a few
    bytes: it would fail to decode, but nothing should try)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b""))


def _png(path: Path, h: int = 6, w: int = 5, mode: str = "L", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    shape = (h, w) if mode == "L" else (h, w, 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


@pytest.fixture
def bomb_folder(tmp_path):
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    _png(root / "a" / "0.png")
    bomb = root / "b" / "bomb.png"
    bomb.write_bytes(_png_declaring(100_000, 100_000))
    assert len(bomb.read_bytes()) < 100
    return root, bomb


def test_image_folder_refuses_a_decompression_bomb_naming_it(bomb_folder):
    root, bomb = bomb_folder
    with pytest.raises(ValueError) as e:
        ImageFolder(root)  # mode="auto" reads the headers
    assert str(bomb) in str(e.value) and "MAX_IMAGE_PIXELS" in str(e.value)
    ds = ImageFolder(root, mode="L")  # no headers read: the error comes with the item
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS") as e:
        ds[1]
    assert str(bomb) in str(e.value)
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS"):
        image_folder_splits(root, size=4)


@pytest.mark.parametrize("side", [10_000, 13_000], ids=["1e8", "1.7e8"])
def test_bomb_between_pillows_limit_and_twice_it(tmp_path, side):
    # Pillow only warns here (DecompressionBombWarning) and would go on to decode
    path = tmp_path / "big.png"
    path.write_bytes(_png_declaring(side, side))
    with pytest.raises(ValueError, match=f"{path} is too large to decode.*MAX_IMAGE_PIXELS"):
        load_image(path, "L")
    # outside pytest's "error" filter: one error, and no warning printed before it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS"):
            load_image(path, "L")
    assert not caught, [str(w.message) for w in caught]


def test_the_pixel_limit_is_filterbanks_own(tmp_path, monkeypatch):
    path = _png(tmp_path / "x.png", 11, 10)
    assert load_image(path, "L").shape == (11, 10, 1)
    monkeypatch.setattr(imf, "MAX_IMAGE_PIXELS", 109)
    with pytest.raises(ValueError, match=r"11 = 110 pixels, above filterbank's limit "
                                         r"MAX_IMAGE_PIXELS = 109"):
        load_image(path, "L")


def test_predict_load_images_refuses_a_bomb_naming_it(bomb_folder):
    from filterbank.train.inference import load_images

    _, bomb = bomb_folder
    with pytest.raises(ValueError) as e:
        load_images([bomb], {"channels": 1, "size": [28, 28]})
    assert str(bomb) in str(e.value) and "MAX_IMAGE_PIXELS" in str(e.value)


# -------------------------------------------------------------- item 13: truncated PNG
@pytest.fixture
def truncated_png(tmp_path):
    good = _png(tmp_path / "good.png", 32, 32, "RGB")
    bad = tmp_path / "cut.png"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return bad


def test_predict_load_images_names_a_truncated_png(truncated_png):
    from filterbank.train.inference import load_images

    with pytest.raises(ValueError) as e:
        load_images([truncated_png], {"channels": 3, "size": [28, 28]})
    assert str(truncated_png) in str(e.value) and "truncated" in str(e.value)


def test_image_folder_names_a_truncated_png(tmp_path, truncated_png):
    root = tmp_path / "set"
    (root / "c").mkdir(parents=True)
    os.replace(truncated_png, root / "c" / "cut.png")
    ds = ImageFolder(root)
    with pytest.raises(ValueError, match=f"ImageFolder: cannot read image {root / 'c'}/cut.png"):
        ds[0]


# ---------------------------------------------------------- CLI: one line for these errors
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from filterbank.cli import main

    out = tmp_path_factory.mktemp("runs") / "tiny"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["train", "--model", "simple_cnn", "--dataset", "fashion-mnist-sample",
                     "--limit", "60", "--model-arg", "width=4", "--model-arg", "hidden=16",
                     "--epochs", "1", "--out", str(out)])
    assert code == 0
    return out


@pytest.mark.parametrize("which", ["bomb", "truncated"])
def test_cli_predict_prints_one_line_naming_the_image(tiny_run, bomb_folder, truncated_png,
                                                      which):
    from filterbank.cli import main

    image = bomb_folder[1] if which == "bomb" else truncated_png
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["predict", str(tiny_run), str(image)])
    lines = err.getvalue().strip().splitlines()
    assert code == 1 and len(lines) == 1, err.getvalue()
    assert lines[0].startswith("filterbank: error:") and str(image) in lines[0]


# ------------------------------------------------------ item 7: symlink loops in ImageFolder
@pytest.fixture
def two_classes(tmp_path):
    root = tmp_path / "root"
    for c, seeds in (("a", (0, 1, 2)), ("b", (3, 4, 5))):
        (root / c).mkdir(parents=True)
        for s in seeds:
            _png(root / c / f"{s}.png", seed=s)
    return root


def _check_six(ds: ImageFolder, root: Path) -> None:
    assert len(ds) == 6
    assert [Path(p).relative_to(root).as_posix() for p, _ in ds.samples] == [
        "a/0.png", "a/1.png", "a/2.png", "b/3.png", "b/4.png", "b/5.png"]
    assert ds.targets.tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("links", [["up"], ["self"]])
def test_image_folder_does_not_follow_folder_links(two_classes, links):
    # before: "up" made 6 files 246 samples (b's images as class a), "self" 41 copies
    target = {"up": "..", "self": "."}
    for name in links:
        os.symlink(target[name], two_classes / "a" / name)
    ds = ImageFolder(two_classes)
    _check_six(ds, two_classes)
    assert ds.skipped_links == [str(two_classes / "a" / n) for n in links]


def test_image_folder_with_both_loops_ends_quickly(two_classes):
    # before: os.walk(followlinks=True) took exponential time (over a minute)
    os.symlink("..", two_classes / "a" / "up")
    os.symlink(".", two_classes / "a" / "self")
    proc = _run_python(f"""
        from filterbank.data.datasets.image_folder import ImageFolder, image_folder_dataset
        ds = ImageFolder({str(two_classes)!r})
        print(len(ds), ds.targets.tolist())
        print(len(image_folder_dataset({str(two_classes)!r}, size=4, test_split=0.5)))
        """, timeout=30)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:2] == ["6 [0, 0, 0, 1, 1, 1]", "2"]


def test_file_links_count_once_and_outside_folders_are_not_entered(two_classes, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _png(outside / "9.png", seed=9)
    os.symlink(outside, two_classes / "a" / "more")
    os.symlink(two_classes / "a" / "0.png", two_classes / "a" / "0-again.png")
    os.symlink(outside / "9.png", two_classes / "b" / "9.png")  # a file link is followed
    ds = ImageFolder(two_classes)
    names = [Path(p).name for p, _ in ds.samples]
    assert names == ["0.png", "1.png", "2.png", "3.png", "4.png", "5.png", "9.png"]
    assert ds.skipped_links == [str(two_classes / "a" / "more")]


def test_class_folder_linking_to_the_root_is_refused(two_classes):
    os.symlink(".", two_classes / "c")
    with pytest.raises(ValueError, match=r"class folder .*/c leads to .*the root .* itself"):
        ImageFolder(two_classes)


def test_class_folder_linking_into_another_class_is_refused(two_classes):
    os.symlink("a", two_classes / "c")
    with pytest.raises(ValueError, match=r"class folder .*/c leads to .*class 'a'.*two labels"):
        ImageFolder(two_classes)


def test_predict_image_files_ignores_folder_loops(two_classes):
    from filterbank.train.inference import image_files

    os.symlink("..", two_classes / "a" / "up")
    os.symlink(".", two_classes / "a" / "self")
    files = image_files([two_classes])
    assert [f.relative_to(two_classes).as_posix() for f in files] == [
        "a/0.png", "a/1.png", "a/2.png", "b/3.png", "b/4.png", "b/5.png"]
