"""ImageFolder on a directory tree of images the test writes with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from filterbank.data.datasets import ImageFolder

Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def tree(tmp_path):
    """root/{cat,dog,empty}: RGB, grayscale and RGBA files, nested folders, non-images."""
    g = np.random.default_rng(0)
    root = tmp_path / "root"
    arrays = {}

    def save(rel, arr, mode):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(p)  # mode inferred from the shape
        arrays[rel] = (arr, mode)

    save("cat/b.png", g.integers(0, 256, (6, 5, 3)).astype(np.uint8), "RGB")
    save("cat/a.PNG", g.integers(0, 256, (6, 5)).astype(np.uint8), "L")
    save("dog/sub/c.bmp", g.integers(0, 256, (4, 7, 3)).astype(np.uint8), "RGB")
    save("dog/d.png", g.integers(0, 256, (3, 3, 4)).astype(np.uint8), "RGBA")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()
    (root / ".hidden").mkdir()
    (root / "stray.png").write_bytes(b"ignored: not in a class folder")
    return root, arrays


def test_classes_samples_and_rgb(tree):
    root, arrays = tree
    ds = ImageFolder(root)
    assert ds.classes == ["cat", "dog", "empty"] and ds.class_to_idx["dog"] == 1
    assert ds.empty_classes == ["empty"]
    rel = [Path(p).relative_to(root).as_posix() for p, _ in ds.samples]
    assert rel == ["cat/a.PNG", "cat/b.png", "dog/d.png", "dog/sub/c.bmp"]
    assert ds.targets.tolist() == [0, 0, 1, 1] and ds.targets.dtype == np.int64
    for i, r in enumerate(rel):
        image, label = ds[i]
        arr, mode = arrays[r]
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert label == ds.targets[i]
        if mode == "RGB":
            np.testing.assert_array_equal(image, arr)
        elif mode == "L":  # gray -> RGB repeats the channel
            np.testing.assert_array_equal(image, np.repeat(arr[..., None], 3, axis=2))
        else:  # RGBA -> RGB drops alpha
            np.testing.assert_array_equal(image, arr[..., :3])


def test_grayscale_mode(tree):
    root, arrays = tree
    ds = ImageFolder(root, mode="L", transform=lambda a: a.astype(np.float32) / 255,
                     target_transform=str)
    image, label = ds[1]  # cat/b.png, RGB
    assert image.shape == (6, 5, 1) and image.dtype == np.float32 and label == "0"
    rgb = arrays["cat/b.png"][0]
    want = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_allclose(image[..., 0] * 255, want, atol=1e-3)
    gray = ImageFolder(root, mode="L")[0][0]
    np.testing.assert_array_equal(gray[..., 0], arrays["cat/a.PNG"][0])


def test_mode_none_keeps_file_modes(tree):
    root, _ = tree
    ds = ImageFolder(root, mode=None)
    assert [ds[i][0].shape[2] for i in range(len(ds))] == [1, 3, 4, 3]


def test_extensions_and_is_valid_file(tree):
    root, _ = tree
    assert len(ImageFolder(root, extensions=(".bmp",))) == 1
    ds = ImageFolder(root, is_valid_file=lambda p: p.endswith("d.png"))
    assert len(ds) == 1 and ds.targets.tolist() == [1]


def test_errors(tmp_path, tree):
    root, _ = tree
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        ImageFolder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    with pytest.raises(FileNotFoundError, match="no class folders"):
        ImageFolder(tmp_path / "flat")
    with pytest.raises(FileNotFoundError, match=r"no image files .*\.xyz"):
        ImageFolder(root, extensions=(".xyz",))
    with pytest.raises(ValueError, match="mode must be one of"):
        ImageFolder(root, mode="CMYK")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG garbage")
    ds = ImageFolder(root)
    i = [p for p, _ in ds.samples].index(str(root / "dog" / "broken.png"))
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        ds[i]
