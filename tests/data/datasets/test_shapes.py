"""Shapes: the synthetic detection / segmentation data set, and collate_detection."""

from __future__ import annotations

import doctest
import time

import numpy as np
import pytest

from filterbank.data import DataLoader
from filterbank.data.datasets import SHAPE_KINDS, Shapes, collate_detection
from filterbank.data.datasets import shapes as shapes_module
from filterbank.tensor import Tensor


def bbox(raster: np.ndarray) -> list[int]:
    rows, cols = np.flatnonzero(raster.any(axis=1)), np.flatnonzero(raster.any(axis=0))
    return [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]


def centres(size: int):
    c = np.arange(size) + 0.5
    return c[None, :], c[:, None]  # x (columns), y (rows)


@pytest.fixture(scope="module")
def ds():
    return Shapes(n=64, image_size=48, seed=3, shapes=SHAPE_KINDS)


def test_shapes_and_dtypes():
    ds = Shapes(n=10, image_size=32, min_objects=2, max_objects=3, seed=1)
    assert len(ds) == 10 and ds.num_classes == 5 and ds.classes[:3] == ["circle", "square",
                                                                         "triangle"]
    for i in range(10):
        image, target = ds[i]
        k = len(target["labels"])
        assert image.shape == (3, 32, 32) and image.dtype == np.float32
        assert image.min() >= 0 and image.max() <= 1
        assert target["boxes"].shape == (k, 4) and target["boxes"].dtype == np.float32
        assert target["labels"].dtype == np.int64 and 1 <= k <= 3
        assert target["mask"].shape == (32, 32) and target["mask"].dtype == np.int64
        assert np.all((target["labels"] >= 0) & (target["labels"] < 5))
    grey = Shapes(n=2, image_size=16, size_range=(0.3, 0.5), channels=1)[0][0]
    assert grey.shape == (1, 16, 16) and grey.dtype == np.float32
    assert ds[-1][0].tobytes() == ds[9][0].tobytes()


def test_counts_cover_the_range_and_every_class_appears():
    ds = Shapes(n=150, image_size=48, min_objects=1, max_objects=4, seed=0)
    targets = [ds[i][1] for i in range(len(ds))]
    counts = [len(t["labels"]) for t in targets]
    labels = np.concatenate([t["labels"] for t in targets])
    assert set(counts) == {1, 2, 3, 4}
    assert set(labels.tolist()) == set(range(5))


def test_deterministic_and_order_independent():
    a, b = Shapes(n=20, seed=7), Shapes(n=20, seed=7)
    forward = [a[i] for i in range(20)]
    backward = [b[i] for i in reversed(range(20))][::-1]
    for (xa, ta), (xb, tb) in zip(forward, backward):
        np.testing.assert_array_equal(xa, xb)
        for key in ta:
            np.testing.assert_array_equal(ta[key], tb[key])
    assert not np.array_equal(a[0][0], a[1][0])
    assert not np.array_equal(a[0][0], Shapes(n=20, seed=8)[0][0])
    assert not np.array_equal(a[0][0], Shapes(n=20, seed=7, train=False)[0][0])
    # the length does not change an image either
    np.testing.assert_array_equal(Shapes(n=100, seed=7)[5][0], a[5][0])


def test_boxes_are_tight_around_whole_rasters(ds):
    for i in range(len(ds)):
        _, target = ds[i]
        objects = ds.objects(i)
        assert len(objects) == len(target["labels"])
        for k, o in enumerate(objects):
            assert o["raster"].any()
            assert bbox(o["raster"]) == target["boxes"][k].tolist() == o["box"].tolist()
            assert o["label"] == target["labels"][k] and ds.classes[o["label"]] == o["kind"]


def test_rasters_follow_the_shape_formulas(ds):
    x, y = centres(ds.image_size)
    seen = set()
    for i in range(len(ds)):
        for o in ds.objects(i):
            (cx, cy), r = o["centre"], o["size"] / 2
            inside_disc = (x - cx) ** 2 + (y - cy) ** 2 <= r * r + 1e-9
            assert not np.any(o["raster"] & ~inside_disc), o["kind"]  # within its disc
            if o["kind"] == "circle":
                np.testing.assert_array_equal(o["raster"], inside_disc)
            if o["kind"] in ("square", "diamond"):
                a = r / np.sqrt(2)
                if o["kind"] == "square":
                    expect = np.maximum(abs(x - cx), abs(y - cy)) <= a + 1e-9
                else:
                    expect = abs(x - cx) + abs(y - cy) <= r + 1e-9
                np.testing.assert_array_equal(o["raster"], expect)
            if o["kind"] == "triangle":  # barycentric reference
                (x1, y1), (x2, y2), (x3, y3) = o["vertices"]
                d = (y2 - y3) * (x1 - x3) + (x3 - x2) * (y1 - y3)
                l1 = ((y2 - y3) * (x - x3) + (x3 - x2) * (y - y3)) / d
                l2 = ((y3 - y1) * (x - x3) + (x1 - x3) * (y - y3)) / d
                expect = (l1 >= -1e-9) & (l2 >= -1e-9) & (1 - l1 - l2 >= -1e-9)
                np.testing.assert_array_equal(o["raster"], expect)
            if o["vertices"] is not None:
                x1, y1, x2, y2 = o["box"]
                v = o["vertices"]  # a sharp tip may reach past the last pixel centre
                assert np.all((v[:, 0] > x1 - 2) & (v[:, 0] < x2 + 2)
                              & (v[:, 1] > y1 - 2) & (v[:, 1] < y2 + 2))
            seen.add(o["kind"])
    assert {"circle", "square", "diamond", "triangle"} <= seen


def test_mask_shows_the_visible_class_and_the_image_its_colour():
    ds = Shapes(n=40, image_size=48, seed=5, noise=0.0)
    for i in range(len(ds)):
        image, target = ds[i]
        objects = ds.objects(i)
        expect = np.zeros((48, 48), dtype=np.int64)
        for o in objects:  # later shapes on top
            expect[o["raster"]] = o["label"] + 1
        np.testing.assert_array_equal(target["mask"], expect)
        assert set(np.unique(target["mask"])) - {0} <= set((target["labels"] + 1).tolist())
        for k, o in enumerate(objects):
            visible = o["raster"] & ~np.any([p["raster"] for p in objects[k + 1:]] or
                                            [np.zeros((48, 48), bool)], axis=0)
            assert visible.sum() >= ds.min_visible * o["raster"].sum()
            np.testing.assert_allclose(image[:, visible], np.repeat(
                np.clip(o["colour"], 0, 1)[:, None], visible.sum(), 1).astype(np.float32),
                atol=1e-6)


def test_some_images_have_overlapping_shapes(ds):
    overlaps = 0
    for i in range(len(ds)):
        rasters = [o["raster"] for o in ds.objects(i)]
        overlaps += any((a & b).any() for j, a in enumerate(rasters) for b in rasters[j + 1:])
    assert overlaps >= 3


def test_min_visible_one_forbids_overlap():
    ds = Shapes(n=30, image_size=48, min_objects=3, max_objects=4, min_visible=1.0, seed=2)
    for i in range(len(ds)):
        total = np.sum([o["raster"] for o in ds.objects(i)], axis=0)
        assert total.max() <= 1


def test_grid_puts_one_box_centre_per_cell():
    def cells(boxes, n, size):
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        return [tuple(c) for c in np.minimum(n - 1, np.floor(centres[:, ::-1] / size * n))]

    kwargs = {"n": 60, "image_size": 32, "min_objects": 4, "max_objects": 4, "seed": 6}
    gridded = Shapes(grid=3, **kwargs)
    for i in range(len(gridded)):
        taken = cells(gridded[i][1]["boxes"], 3, 32)
        assert len(taken) == 4 and len(set(taken)) == 4
    free = Shapes(**kwargs)  # without the option, some images share a cell
    assert any(len(set(cells(free[i][1]["boxes"], 3, 32))) < 4 for i in range(len(free)))


def test_noise_and_texture():
    flat = Shapes(n=3, image_size=32, noise=0.0, texture=0.0, min_objects=0, max_objects=0)
    image, target = flat[0]
    assert len(target["labels"]) == 0 and target["boxes"].shape == (0, 4)
    assert not target["mask"].any()
    noisy = Shapes(n=3, image_size=32, noise=0.1, texture=0.0, min_objects=0, max_objects=0)
    residual = noisy[0][0] - image
    assert 0.05 < residual.std() < 0.15
    textured = Shapes(n=3, image_size=32, noise=0.0, texture=0.3, min_objects=0, max_objects=0)
    assert np.abs(textured[0][0] - image).max() > 0.05


def test_transforms_apply_to_image_and_target():
    ds = Shapes(n=4, image_size=32, transform=lambda x: x * 0, target_transform=lambda t: "t")
    image, target = ds[0]
    assert not image.any() and target == "t"


def test_collate_with_the_data_loader():
    ds = Shapes(n=10, image_size=32, seed=4)
    loader = DataLoader(ds, batch_size=4, shuffle=True, collate_fn=collate_detection,
                        generator=0)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    images, targets = batches[0]
    assert images.shape == (4, 3, 32, 32) and images.dtype == np.float32
    assert targets["mask"].shape == (4, 32, 32)
    assert isinstance(targets["boxes"], list) and len(targets["boxes"]) == 4
    order = np.random.default_rng(0).permutation(10)[:4]
    for b, i in enumerate(order):
        np.testing.assert_array_equal(images[b], ds[int(i)][0])
        np.testing.assert_array_equal(targets["boxes"][b], ds[int(i)][1]["boxes"])
        np.testing.assert_array_equal(targets["labels"][b], ds[int(i)][1]["labels"])
    # no collate_fn: the get_batch fast path, converted to Tensors
    images, targets = next(iter(DataLoader(ds, batch_size=3)))
    assert isinstance(images, Tensor) and images.shape == (3, 3, 32, 32)
    assert len(targets["boxes"]) == 3 and isinstance(targets["boxes"][0], Tensor)
    np.testing.assert_array_equal(targets["labels"][2].data, ds[2][1]["labels"])


def test_collate_detection_errors():
    ds = Shapes(n=4, image_size=32)
    with pytest.raises(ValueError, match="collate_detection: expected a non-empty list"):
        collate_detection([])
    with pytest.raises(TypeError, match="collate_detection: sample 1 must be a pair"):
        collate_detection([ds[0], ds[1][0]])
    with pytest.raises(ValueError, match="sample 1's target has keys"):
        collate_detection([ds[0], (ds[1][0], {"boxes": ds[1][1]["boxes"]})])
    small = Shapes(n=4, image_size=16, size_range=(0.3, 0.5))
    with pytest.raises(ValueError, match="equal shapes"):
        collate_detection([ds[0], small[0]])


def test_batched_generation_is_fast():
    ds = Shapes(n=1000, image_size=64)
    start = time.perf_counter()
    images, targets = ds.get_batch(np.arange(500))
    elapsed = time.perf_counter() - start
    assert images.shape == (500, 3, 64, 64) and len(targets["boxes"]) == 500
    assert elapsed < 5, f"500 images took {elapsed:.1f} s"


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n": 0}, ValueError, "Shapes: n must be an int >= 1, got 0"),
    ({"n": 2.5}, ValueError, "n must be an int"),
    ({"image_size": 8}, ValueError, "image_size must be an int >= 16, got 8"),
    ({"min_objects": -1}, ValueError, "min_objects must be an int >= 0"),
    ({"min_objects": 3, "max_objects": 2}, ValueError, "max_objects must be >= min_objects"),
    ({"shapes": "circle"}, TypeError, "shapes must be a non-empty sequence"),
    ({"shapes": ()}, TypeError, "shapes must be a non-empty sequence"),
    ({"shapes": ("circle", "hexagon")}, ValueError, r"unknown shape kind\(s\) \['hexagon'\]"),
    ({"shapes": ("circle", "circle")}, ValueError, "must not repeat"),
    ({"size_range": (0.5, 0.2)}, ValueError, "0 < min <= max <= 1"),
    ({"size_range": (0.1, 1.5)}, ValueError, "0 < min <= max <= 1"),
    ({"size_range": 0.3}, TypeError, "size_range must be a pair"),
    ({"size_range": (0.01, 0.5)}, ValueError, "smallest shape would be 0.64 pixels"),
    ({"min_visible": 1.5}, ValueError, r"min_visible must be a number in \[0, 1\]"),
    ({"noise": -0.1}, ValueError, "noise must be a number >= 0"),
    ({"texture": float("nan")}, ValueError, "texture must be a number >= 0"),
    ({"channels": 2}, ValueError, "channels must be 1 or 3, got 2"),
    ({"grid": 0}, ValueError, "grid must be None or an int >= 1, got 0"),
    ({"grid": 1, "max_objects": 2}, ValueError, "a 1x1 grid has fewer cells than max_objects"),
    ({"seed": -1}, ValueError, "seed must be an int >= 0"),
    ({"train": "yes"}, TypeError, "train must be a bool"),
    ({"transform": 3}, TypeError, "transform must be callable"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Shapes(**kwargs)


def test_bad_indices():
    ds = Shapes(n=3, image_size=16, size_range=(0.3, 0.5))
    with pytest.raises(IndexError, match="Shapes: index 3 out of range for 3 images"):
        ds[3]
    with pytest.raises(IndexError, match="index -4"):
        ds[-4]
    with pytest.raises(TypeError, match="index must be an int, got str"):
        ds["0"]


def test_docstring_examples():
    result = doctest.testmod(shapes_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2 and result.failed == 0
