"""ImageFolder on a directory tree of images the test writes with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from filterbank.data import DataLoader
from filterbank.data.datasets import (
    ImageFolder,
    get_dataset,
    image_folder_splits,
    is_image_folder_name,
)
from filterbank.data.transforms import ToTensor

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
    with pytest.raises(ValueError, match="mode must be one of 'auto', 'RGB'"):
        ImageFolder(root, mode="CMYK")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG garbage")
    # mode="auto" reads every header when the data set is built: the bad file is named then
    with pytest.raises(ValueError, match=r"ImageFolder: cannot read image \S*dog/broken.png: "
                                         r"UnidentifiedImageError"):
        ImageFolder(root)
    ds = ImageFolder(root, mode="RGB")  # no header scan: the error comes with the item
    i = [p for p, _ in ds.samples].index(str(root / "dog" / "broken.png"))
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        ds[i]


def test_truncated_file_is_named(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    good = root / "a" / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)).save(good)
    raw = good.read_bytes()
    (root / "a" / "cut.png").write_bytes(raw[: len(raw) // 2])  # valid header, data cut off
    ds = ImageFolder(root)  # headers are fine
    with pytest.raises(ValueError, match=r"ImageFolder: cannot read image \S*a/cut.png: .*trunc"):
        ds[0]


# ------------------------------------------------------------------- channels, sizes, splits
def save(path: Path, arr: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return arr


def rand_image(g, h, w, c=None):
    shape = (h, w) if c is None else (h, w, c)
    return g.integers(0, 256, shape).astype(np.uint8)


def test_grey_folders_stay_grey_and_size_resizes(tmp_path):
    g = np.random.default_rng(0)
    root = tmp_path / "grey"
    a = save(root / "x" / "1.png", rand_image(g, 6, 8))
    save(root / "y" / "2.png", rand_image(g, 9, 5))
    ds = ImageFolder(root)
    assert ds.mode == "L" and ds[0][0].shape == (6, 8, 1)
    np.testing.assert_array_equal(ds[0][0][..., 0], a)
    sized = ImageFolder(root, size=(4, 7))
    assert [sized[i][0].shape for i in range(2)] == [(4, 7, 1)] * 2
    ref = np.asarray(Image.fromarray(a).resize((7, 4), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(sized[0][0][..., 0], ref)
    assert ImageFolder(root, size=5)[1][0].shape == (5, 5, 1)
    assert ImageFolder(root, mode="RGB")[0][0].shape == (6, 8, 3)
    with pytest.raises(ValueError, match=r"ImageFolder: size must be a positive int or a pair"):
        ImageFolder(root, size=(0, 4))


def make_split_tree(base: Path, g) -> dict:
    """base/Train/{a,b}, base/valid/{a,b}, base/test/{a} with grey images of mixed sizes,
    except one RGB image in test."""
    paths = {}
    for split, counts in (("Train", (3, 2)), ("valid", (1, 1)), ("test", (2, 0))):
        for cls, n in zip("ab", counts):
            for i in range(n):
                p = base / split / cls / f"{i}.png"
                save(p, rand_image(g, 5 + i, 7 + 2 * i))
                paths.setdefault(split, []).append(p)
    save(base / "test" / "a" / "rgb.png", rand_image(g, 10, 10, 3))
    return paths


def test_splits_layout_classes_channels_and_sizes(tmp_path):
    g = np.random.default_rng(1)
    make_split_tree(tmp_path / "data", g)
    s = image_folder_splits(tmp_path / "data", size=(6, 6))
    assert s["layout"] == "splits" and s["carved"] == [] and s["classes"] == ["a", "b"]
    assert s["mode"] == "RGB" and s["size"] == (6, 6)  # one RGB image makes all RGB
    assert s["train"].data.shape == (5, 6, 6, 3)
    assert s["train"].targets.tolist() == [0, 0, 0, 1, 1]
    assert s["val"].data.shape == (2, 6, 6, 3) and s["test"].data.shape == (3, 6, 6, 3)
    assert s["test"].targets.tolist() == [0, 0, 0]  # a class missing in test is fine
    assert s["train"].train and not s["test"].train
    grey = s["train"].data[0]
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])  # grey repeated into RGB
    # the array-backed data set batches like MNIST
    x, y = s["train"].get_batch(np.array([0, 4]))
    assert x.shape == (2, 6, 6, 3) and y.tolist() == [0, 1]
    # a test class that train does not know is an error
    save(tmp_path / "data" / "test" / "zebra" / "z.png", rand_image(g, 4, 4))
    with pytest.raises(ValueError, match=r"class folders \['zebra'\] that are not among"):
        image_folder_splits(tmp_path / "data", size=6)


def test_mixed_sizes_without_size_is_a_clear_error(tmp_path):
    g = np.random.default_rng(2)
    make_split_tree(tmp_path / "data", g)
    with pytest.raises(ValueError) as e:
        image_folder_splits(tmp_path / "data")
    msg = str(e.value)
    assert "have 4 different sizes" in msg and "pass size=(h, w)" in msg
    assert "5x7" in msg and "same shape" not in msg
    # size="auto": the most common size (5x7, the first image of every class folder)
    s = image_folder_splits(tmp_path / "data", size="auto")
    assert s["size"] == (5, 7) and s["file_sizes"] == 4
    assert s["test"].data.shape == (3, 5, 7, 3)
    # and the plain loader path says what to do as well
    ds = ImageFolder(tmp_path / "data" / "Train")
    with pytest.raises(ValueError, match=r"different sizes .*pass size=\(h, w\)"):
        ds.to_arrays()
    with pytest.raises(ValueError, match=r"collate: .*different shapes.*Resize"):
        next(iter(DataLoader(ds, batch_size=5)))
    ds.transform = ToTensor()  # Tensors per item: the same message
    with pytest.raises(ValueError, match=r"collate: .*different shapes.*Resize"):
        next(iter(DataLoader(ds, batch_size=5)))


def test_plain_class_folder_is_split_per_class(tmp_path):
    g = np.random.default_rng(3)
    root = tmp_path / "plain"
    for cls, n in (("cat", 10), ("dog", 5), ("emu", 1)):
        for i in range(n):
            save(root / cls / f"{i:02d}.png", rand_image(g, 4, 4, 3))
    s = image_folder_splits(root, val_split=0.2, test_split=0.2, seed=7)
    assert s["layout"] == "classes" and s["carved"] == ["test", "val"]
    assert s["mode"] == "RGB" and s["size"] == (4, 4)
    counts = {k: np.bincount(s[k].targets, minlength=3).tolist() for k in ("train", "val", "test")}
    assert counts == {"train": [6, 3, 1], "val": [2, 1, 0], "test": [2, 1, 0]}
    paths = [set(s[k].paths) for k in ("train", "val", "test")]
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])
    assert len(paths[0] | paths[1] | paths[2]) == 16
    for k in ("train", "test"):  # images and labels stay together
        for img, path, t in zip(s[k].data, s[k].paths, s[k].targets):
            np.testing.assert_array_equal(img, np.asarray(Image.open(path)))
            assert s["classes"][t] == Path(path).parent.name
    again = image_folder_splits(root, val_split=0.2, test_split=0.2, seed=7)
    assert again["test"].paths == s["test"].paths
    other = image_folder_splits(root, val_split=0.2, test_split=0.2, seed=8)
    assert other["test"].paths != s["test"].paths
    assert image_folder_splits(root, test_split=0)["test"] is None
    with pytest.raises(ValueError, match="val_split must be in"):
        image_folder_splits(root, val_split=1.0)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        image_folder_splits(root / "nope")


def test_get_dataset_accepts_a_folder(tmp_path, monkeypatch):
    from filterbank.data.datasets import image_folder as mod

    g = np.random.default_rng(4)
    root = tmp_path / "pics"
    for cls in ("a", "b"):
        for i in range(5):
            save(root / cls / f"{i}.png", rand_image(g, 3, 3))
    calls = []
    real = mod.image_folder_splits
    monkeypatch.setattr(mod, "image_folder_splits",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    train = get_dataset(str(root), train=True, transform=lambda a: a.sum())
    test = get_dataset(str(root), train=False)
    assert len(calls) == 1  # both splits from one decoding
    assert (len(train), len(test)) == (8, 2) and train.data.shape[1:] == (3, 3, 1)
    assert not set(train.paths) & set(test.paths)
    assert isinstance(train[0][0], np.integer) and test.transform is None
    save(root / "a" / "new.png", rand_image(g, 3, 3))  # a changed folder is read again
    assert len(get_dataset(root, train=True)) == 9 and len(calls) == 2
    assert get_dataset(root, size=2, test_split=0.5, train=False).data.shape[1:3] == (2, 2)
    # a bare registered name stays the registered data set even if such a folder exists
    (tmp_path / "mnist" / "x").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert not is_image_folder_name("mnist") and is_image_folder_name("./mnist")
    with pytest.raises(TypeError, match="only apply to image folders"):
        get_dataset("fashion-mnist-sample", size=3)


def test_end_to_end_mixed_sizes_to_a_training_step(tmp_path):
    import filterbank as fb
    from filterbank.data import transforms as T

    g = np.random.default_rng(5)
    root = tmp_path / "shapes"
    for cls in ("dark", "light"):
        for i in range(6):
            base = 40 if cls == "dark" else 200
            image = base + g.integers(0, 30, (8 + i, 12 - i))  # every image a different size
            save(root / cls / f"{i}.png", image.astype(np.uint8))
    s = image_folder_splits(root, size=(8, 8), test_split=0.25, seed=0)
    assert s["train"].data.shape == (8, 8, 8, 1) and s["test"].data.shape == (4, 8, 8, 1)
    tf = T.Compose([T.ToTensor(), T.RandomResizedCrop(6, scale=(0.5, 1.0)),
                    T.Normalize((0.5,), (0.25,))])
    loader = DataLoader(s["train"], batch_size=4, shuffle=True, transform=tf, generator=0)
    fb.manual_seed(0)
    model = fb.nn.Sequential(fb.nn.Conv2d(1, 2, 3), fb.nn.ReLU(), fb.nn.Flatten(),
                             fb.nn.Linear(2 * 4 * 4, 2))
    opt = fb.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(3):
        for x, y in loader:
            assert x.shape == (4, 1, 6, 6)
            loss = fb.nn.CrossEntropyLoss()(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
    assert np.isfinite(losses).all() and min(losses[-2:]) < losses[0]
