"""CocoDetection on a small instances.json and PNGs the tests write; hostile files."""

from __future__ import annotations

import copy
import json
import os
import sys

import numpy as np
import pytest

from filterbank.data import DataLoader
from filterbank.data.datasets import CocoDetection, collate_detection, polygon_mask
from filterbank.data.datasets import coco as coco_module

Image = pytest.importorskip("PIL.Image")

RGB = np.random.default_rng(0).integers(0, 256, (16, 20, 3)).astype(np.uint8)
GREY = np.random.default_rng(1).integers(0, 256, (12, 10)).astype(np.uint8)
INSTANCES = {
    "images": [
        {"id": 10, "file_name": "a.png", "width": 20, "height": 16},
        {"id": 11, "file_name": "sub/b.png", "width": 10, "height": 12},
        {"id": 12, "file_name": "a.png", "width": 20, "height": 16},
    ],
    "annotations": [
        # a rectangle polygon covering pixel rows 3..6, columns 2..6
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [2, 3, 5, 4],
         "segmentation": [[2, 3, 7, 3, 7, 7, 2, 7]], "iscrowd": 0},
        # no segmentation: the box is the mask
        {"id": 2, "image_id": 10, "category_id": 12, "bbox": [10, 1, 6, 8]},
        # two parts, the second over the first annotation's right edge
        {"id": 3, "image_id": 10, "category_id": 3, "bbox": [0, 10, 20, 6],
         "segmentation": [[0, 10, 4, 10, 4, 16, 0, 16], [6, 5, 9, 5, 9, 16, 6, 16]]},
        # slightly outside the image (rounding): clipped
        {"id": 4, "image_id": 12, "category_id": 3, "bbox": [-0.5, 0, 20.5, 16.4]},
    ],
    "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"},
                   {"id": 12, "name": "bird"}],
}


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(RGB).save(root / "a.png")
    Image.fromarray(GREY).save(root / "sub" / "b.png")
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps(INSTANCES))
    return root, ann


def write(tmp_path, obj) -> str:
    path = tmp_path / "bad.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def rect(rows, cols, shape):
    m = np.zeros(shape, dtype=bool)
    m[rows[0]:rows[1], cols[0]:cols[1]] = True
    return m


def test_reads_images_boxes_labels_and_masks(files):
    root, ann = files
    ds = CocoDetection(root, ann)
    assert len(ds) == 3 and ds.ids == [10, 11, 12]
    assert ds.cat_ids == [3, 7, 12] and ds.classes == ["dog", "cat", "bird"]
    assert ds.cat_id_to_label == {3: 0, 7: 1, 12: 2} and ds.num_classes == 3
    image, target = ds[0]
    assert image.shape == (3, 16, 20) and image.dtype == np.float32
    np.testing.assert_allclose(image, RGB.transpose(2, 0, 1) / 255, atol=1e-7)
    np.testing.assert_array_equal(target["boxes"], [[2, 3, 7, 7], [10, 1, 16, 9], [0, 10, 20, 16]])
    assert target["boxes"].dtype == np.float32
    np.testing.assert_array_equal(target["labels"], [1, 2, 0])
    assert target["labels"].dtype == np.int64 and int(target["image_id"]) == 10
    np.testing.assert_array_equal(target["iscrowd"], [0, 0, 0])
    masks = target["masks"]
    assert masks.shape == (3, 16, 20) and masks.dtype == bool
    np.testing.assert_array_equal(masks[0], rect((3, 7), (2, 7), (16, 20)))
    np.testing.assert_array_equal(masks[1], rect((1, 9), (10, 16), (16, 20)))
    np.testing.assert_array_equal(masks[2], rect((10, 16), (0, 4), (16, 20))
                                  | rect((5, 16), (6, 9), (16, 20)))
    semantic = np.zeros((16, 20), dtype=np.int64)  # later annotations on top, label + 1
    for k, label in enumerate([1, 2, 0]):
        semantic[masks[k]] = label + 1
    np.testing.assert_array_equal(target["mask"], semantic)
    assert target["mask"][5, 6] == 1 and target["mask"][6, 6] == 1  # dog over cat


def test_grey_empty_and_clipped(files):
    root, ann = files
    ds = CocoDetection(root, ann)
    image, target = ds[1]  # a grey file converted to RGB, no annotations
    assert image.shape == (3, 12, 10)
    np.testing.assert_allclose(image[1], GREY / 255, atol=1e-7)
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    assert target["masks"].shape == (0, 12, 10) and not target["mask"].any()
    _, target = ds[2]
    np.testing.assert_array_equal(target["boxes"], [[0, 0, 20, 16]])
    grey = CocoDetection(root, ann, mode="L")
    assert grey[1][0].shape == (1, 12, 10)


def test_resize_scales_boxes_and_masks(files):
    root, ann = files
    ds = CocoDetection(root, ann, size=(12, 10))  # x scaled by 1/2, y by 3/4
    image, target = ds[0]
    assert image.shape == (3, 12, 10)
    np.testing.assert_allclose(target["boxes"][0], [1, 2.25, 3.5, 5.25])
    assert target["masks"].shape == (3, 12, 10)
    np.testing.assert_array_equal(target["masks"][0], rect((2, 5), (1, 3), (12, 10)))
    reference = np.asarray(Image.fromarray(RGB).resize((10, 12), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(image, reference.transpose(2, 0, 1) / 255, atol=1e-7)


def test_masks_off_transforms_and_target_without_image(files):
    root, ann = files
    ds = CocoDetection(root, ann, masks=False, transform=lambda x: x[:1],
                       target_transform=lambda t: sorted(t))
    image, keys = ds[0]
    assert image.shape == (1, 16, 20) and keys == ["boxes", "image_id", "iscrowd", "labels"]
    assert CocoDetection(root, ann).target(0)["masks"].shape == (3, 16, 20)


def test_collate_with_the_data_loader(files):
    root, ann = files
    ds = CocoDetection(root, ann, size=16)
    images, targets = next(iter(DataLoader(ds, batch_size=3, collate_fn=collate_detection)))
    assert images.shape == (3, 3, 16, 16) and targets["mask"].shape == (3, 16, 16)
    assert [len(b) for b in targets["boxes"]] == [3, 0, 1]
    assert [m.shape for m in targets["masks"]] == [(3, 16, 16), (0, 16, 16), (1, 16, 16)]
    np.testing.assert_array_equal(targets["image_id"], [10, 11, 12])


def even_odd_reference(polygons, h, w):
    """Per pixel centre, count the edges crossed by a ray to the right (a slow loop)."""
    out = np.zeros((h, w), dtype=bool)
    for poly in polygons:
        p = np.asarray(poly, dtype=float).reshape(-1, 2)
        for r in range(h):
            for c in range(w):
                x, y, inside = c + 0.5, r + 0.5, False
                for (x1, y1), (x2, y2) in zip(p, np.roll(p, -1, axis=0)):
                    if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                        inside = not inside
                out[r, c] |= inside
    return out


def test_polygon_mask_matches_a_crossing_number_reference():
    g = np.random.default_rng(0)
    for _ in range(12):
        polys = [g.uniform(-2, 14, size=2 * int(g.integers(3, 8))) for _ in range(2)]
        np.testing.assert_array_equal(polygon_mask(polys, 11, 13),
                                      even_odd_reference(polys, 11, 13))
    # a self-intersecting pentagram: the even-odd rule leaves its centre empty
    t = np.pi / 2 + 4 * np.pi * np.arange(5) / 5
    star = np.stack([10 + 9 * np.cos(t), 10 - 9 * np.sin(t)], axis=1)
    m = polygon_mask([star.ravel()], 20, 20)
    assert not m[10, 10] and m[3, 10]
    assert polygon_mask([[0, 0, 5, 0]], 4, 4).sum() == 0  # fewer than 3 points: nothing


def test_rle_skip(tmp_path, files):
    root, _ = files
    obj = copy.deepcopy(INSTANCES)
    obj["annotations"][0]["segmentation"] = {"counts": [1, 2], "size": [16, 20]}
    ds = CocoDetection(root, write(tmp_path, obj), rle="skip")
    assert ds.skipped_rle == 1 and ds.target(0)["labels"].tolist() == [2, 0]


def test_missing_pillow_names_the_extra(files, monkeypatch):
    root, ann = files
    ds = CocoDetection(root, ann)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"filterbank\[images\]"):
        ds[0]


def mutate(path, value):
    """INSTANCES with the field at ``path`` (keys / indices) set to ``value`` (or deleted)."""
    obj = copy.deepcopy(INSTANCES)
    node = obj
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return obj


@pytest.mark.parametrize("path, value, match", [
    (("images",), KeyError, r"images: missing \(expected a list of an image object"),
    (("categories",), [], "categories: expected a list of a category object"),
    (("annotations", 1, "bbox"), KeyError, r"annotations\[1\]\.bbox: missing"),
    (("annotations", 1, "bbox"), "abc", r"annotations\[1\]\.bbox: expected a list of 4 numbers"),
    (("annotations", 1, "bbox"), [1, 2, 3], r"annotations\[1\]\.bbox: expected a list of 4"),
    (("annotations", 1, "bbox", 2), True, r"annotations\[1\]\.bbox\[2\]: expected a number"),
    (("annotations", 1, "bbox", 2), -1, r"annotations\[1\]\.bbox: expected finite .* >= 0"),
    (("annotations", 1, "bbox", 0), 30, r"annotations\[1\]\.bbox: \[30, 1, 6, 8\] lies outside "
                                        r"its 20x16 image \(images\[0\]\)"),
    (("annotations", 1, "bbox", 0), 10**400, r"annotations\[1\]\.bbox: expected finite"),
    (("annotations", 1, "category_id"), 5, r"annotations\[1\]\.category_id: unknown category "
                                           r"id 5"),
    (("annotations", 1, "category_id"), "7", r"annotations\[1\]\.category_id: expected an "
                                             r"integer, got \"7\" \(a string\)"),
    (("annotations", 1, "image_id"), 99, r"annotations\[1\]\.image_id: unknown image id 99"),
    (("annotations", 0, "segmentation"), {"counts": "abc", "size": [16, 20]},
     r"annotations\[0\]\.segmentation: RLE masks .* not supported"),
    (("annotations", 0, "segmentation"), [[1, 2, 3, 4, 5]],
     r"annotations\[0\]\.segmentation\[0\]: expected an even number"),
    (("annotations", 0, "segmentation"), [[1, 2, 3, 4, 5, "x"]],
     r"annotations\[0\]\.segmentation\[0\]: expected an even number"),
    (("annotations", 0, "segmentation"), [[1, 2, 3, 4, 5, 90]],
     r"annotations\[0\]\.segmentation\[0\]: points outside the 20x16 image"),
    (("annotations", 0, "segmentation"), "abc",
     r"annotations\[0\]\.segmentation: expected a list of polygons"),
    (("images", 0, "width"), "20", r"images\[0\]\.width: expected an integer >= 1"),
    (("images", 0, "width"), 0, r"images\[0\]\.width: expected an integer >= 1, got 0"),
    (("images", 0, "height"), 10**9, r"images\[0\]: 20x1000000000 is more than "
                                     r"MAX_IMAGE_PIXELS"),
    (("images", 1, "id"), 10, r"images\[1\]\.id: duplicate image id 10"),
    (("categories", 1, "id"), 7, r"categories\[1\]\.id: duplicate category id 7"),
    (("images", 1, "file_name"), "../secret.png", r"images\[1\]\.file_name: expected a path "
                                                  r"inside the image folder, got '\.\./secret"),
    (("images", 1, "file_name"), "sub/../../x.png", r"images\[1\]\.file_name: .*'\.\.' part"),
    (("images", 1, "file_name"), "..\\x.png", r"images\[1\]\.file_name: .*'\.\.' part"),
    (("images", 1, "file_name"), "/etc/passwd", r"images\[1\]\.file_name: expected a path "
                                                r"relative to the image folder"),
    (("images", 1, "file_name"), "C:\\x.png", r"images\[1\]\.file_name: .*absolute"),
    (("images", 1, "file_name"), "", r"images\[1\]\.file_name: expected a file name"),
])
def test_hostile_fields_give_one_line_errors(tmp_path, files, path, value, match):
    root, _ = files
    bad = write(tmp_path, mutate(path, value))
    with pytest.raises(ValueError, match=f"^CocoDetection: {bad}: {match}") as e:
        CocoDetection(root, bad)
    assert "\n" not in str(e.value)


def test_hostile_files(tmp_path, files):
    root, _ = files
    with pytest.raises(ValueError, match=r"^CocoDetection: .*bad\.json: not valid JSON"):
        CocoDetection(root, write(tmp_path, "{\"images\": ["))
    with pytest.raises(ValueError, match=r"^CocoDetection: .*: nested deeper than 100"):
        CocoDetection(root, write(tmp_path, "[" * 150 + "]" * 150))
    with pytest.raises(ValueError, match=r"^CocoDetection: .*: the top level: expected a COCO "
                                         r"instances object, got \[\]"):
        CocoDetection(root, write(tmp_path, "[]"))
    big = write(tmp_path, {**INSTANCES, "info": "x" * 5000})
    with pytest.raises(ValueError, match=r"^CocoDetection: .*bad\.json: 5,\d+ bytes, more than "
                                         r"the 4,096"):
        CocoDetection(root, big, max_bytes=4096)
    with pytest.raises(ValueError, match=r"^CocoDetection: .*images: expected a regular file, "
                                         r"got a folder"):
        CocoDetection(root, root)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.json"
        os.mkfifo(fifo)
        with pytest.raises(ValueError, match="expected a regular file, got a FIFO"):
            CocoDetection(root, fifo)
    with pytest.raises(FileNotFoundError):
        CocoDetection(root, tmp_path / "missing.json")


def test_image_file_problems(tmp_path, files):
    root, _ = files
    wrong = write(tmp_path, mutate(("images", 0, "width"), 21))
    with pytest.raises(ValueError, match=r"CocoDetection: .*a\.png: the image is 20x16, but "
                                         r".*bad\.json declares 21x16 \(image id 10\)"):
        CocoDetection(root, wrong)[0]
    gone = write(tmp_path, mutate(("images", 0, "file_name"), "nope.png"))
    with pytest.raises(ValueError, match=r"cannot read image .*nope\.png"):
        CocoDetection(root, gone)[0]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"mode": "RGBA"}, ValueError, "CocoDetection: mode must be 'RGB' or 'L', got 'RGBA'"),
    ({"rle": "decode"}, ValueError, "CocoDetection: rle must be one of"),
    ({"max_bytes": 0}, ValueError, "CocoDetection: max_bytes must be a positive int, got 0"),
    ({"size": (0, 4)}, ValueError, "CocoDetection: size must be a positive int or a pair"),
    ({"transform": 1}, TypeError, "CocoDetection: transform must be callable"),
])
def test_bad_arguments(files, kwargs, error, match):
    root, ann = files
    with pytest.raises(error, match=match):
        CocoDetection(root, ann, **kwargs)
    with pytest.raises(ValueError, match="CocoDetection: root .* is not a folder"):
        CocoDetection(root / "a.png", ann)


def test_bad_indices(files):
    ds = CocoDetection(*files)
    with pytest.raises(IndexError, match="CocoDetection: index 3 out of range for 3 images"):
        ds[3]
    with pytest.raises(TypeError, match="CocoDetection: index must be an int, got float"):
        ds[1.0]
    assert int(ds[-1][1]["image_id"]) == 12


def test_docstring_example():
    import doctest

    result = doctest.testmod(coco_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 1 and result.failed == 0
