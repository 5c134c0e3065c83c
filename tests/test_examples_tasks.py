"""examples/segment_shapes.py, regress_shapes.py and multilabel_shapes.py: their helpers, and
each one run end to end at a tiny size (seconds), checking the metrics it prints."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def segment():
    return _load("segment_shapes")


@pytest.fixture(scope="module")
def regress():
    return _load("regress_shapes")


@pytest.fixture(scope="module")
def multilabel():
    return _load("multilabel_shapes")


def _printed(out: str, key: str) -> float:
    """The last value printed after ``key`` (the final summary line's)."""
    found = re.findall(rf"\b{key} (-?[0-9.]+|nan)\b", out)
    assert found, f"{key!r} not printed in:\n{out}"
    return float(found[-1])


# ----------------------------------------------------------------------- segmentation
def test_void_band_marks_both_sides_of_every_class_boundary(segment):
    m = np.zeros((1, 6, 6), dtype=np.int64)
    m[0, 2:4, 2:4] = 3
    band = segment.void_band(m, 1)
    want = m.copy()
    want[0, 1:5, 1:5] = segment.VOID  # the square's outer ring and its own border pixels
    want[0, [1, 1, 4, 4], [1, 4, 1, 4]] = 0  # diagonal neighbours are not boundary pixels
    np.testing.assert_array_equal(band, want)
    np.testing.assert_array_equal(segment.void_band(m, 0), m)
    assert (segment.void_band(m, 2) == segment.VOID).sum() > (band == segment.VOID).sum()


def test_segment_tiny_run_prints_miou_and_writes_the_overlay(segment, tmp_path, capsys):
    r = segment.main(["--out", str(tmp_path), "--epochs", "2", "--train-size", "24",
                      "--test-size", "8", "--base", "4", "--depth", "2", "--batch-size", "8"])
    out = capsys.readouterr().out
    for key in ("test_miou", "test_pixel_accuracy", "test_miou_all",
                "test_pixel_accuracy_all", "train_seconds"):
        assert 0 <= _printed(out, key) <= (1 if "seconds" not in key else 600), key
    assert _printed(out, "test_miou") == pytest.approx(r["test_miou"], abs=1e-4)
    assert out.count("epoch ") >= 2 and "IoU per class (all pixels): background" in out
    assert r["history"]["epoch"] == [1, 2]
    if r["plot"] is not None:  # matplotlib is optional
        assert (tmp_path / "segmentation.png").stat().st_size > 0


# ------------------------------------------------------------------------- regression
def test_vertices_are_sorted_by_angle_and_flips_keep_them_on_the_triangle(regress):
    v = np.array([[[10.0, 0.0], [0.0, 10.0], [-10.0, -1.0]]])
    np.testing.assert_array_equal(regress.sort_vertices(v),
                                  [[[-10.0, -1.0], [10.0, 0.0], [0.0, 10.0]]])
    images, s = regress.make_data(4, 32, 0, True, "vertices")
    flipped, s2 = regress.flip(images, s, np.array([True, False, True, False]), "vertices")
    np.testing.assert_array_equal(s2[1], s[1])
    # the flipped vertex set is the mirror image of the original one, re-sorted
    mirror = s[0].reshape(3, 2) * [-1, 1] + [1, 0]
    np.testing.assert_allclose(s2[0].reshape(3, 2), regress.sort_vertices(mirror[None])[0])
    np.testing.assert_array_equal(flipped[0], images[0][..., ::-1])


def test_box_targets_are_the_normalised_cxcywh_of_the_one_box(regress):
    from filterbank.data.datasets import Shapes

    _, s = regress.make_data(3, 32, 5, False, "box")
    ds = Shapes(n=3, image_size=32, min_objects=1, max_objects=1, seed=5, train=False)
    x1, y1, x2, y2 = ds[2][1]["boxes"][0]
    np.testing.assert_allclose(s[2], np.array([x1 + x2, y1 + y2, 2 * (x2 - x1),
                                               2 * (y2 - y1)]) / 64, rtol=1e-6)
    images = np.stack([ds[i][0] for i in range(3)])
    flipped, s2 = regress.flip(images, s, np.array([False, False, True]), "box")
    # the flipped image's own box: columns c -> 31 - c, so x1, x2 -> 32 - x2, 32 - x1
    np.testing.assert_allclose(s2[2], np.array([64 - x1 - x2, y1 + y2, 2 * (x2 - x1),
                                                2 * (y2 - y1)]) / 64, rtol=1e-6)
    np.testing.assert_array_equal(flipped[2], images[2][..., ::-1])
    np.testing.assert_array_equal(s2[:2], s[:2])


@pytest.mark.parametrize("target, keys", [
    ("box", ("test_mean_iou", "test_mean_pixel_error", "test_centre_pixel_error")),
    ("vertices", ("test_mean_vertex_pixel_error",)),
])
def test_regress_tiny_run_prints_its_metrics(regress, capsys, target, keys):
    r = regress.main(["--target", target, "--epochs", "1", "--train-size", "16",
                      "--test-size", "8", "--image-size", "32", "--width", "4"])
    out = capsys.readouterr().out
    for key in keys + ("train_seconds",):
        assert _printed(out, key) >= 0
    assert _printed(out, keys[0]) == pytest.approx(r[keys[0]], abs=1e-4)
    if target == "box":
        assert r["test_mean_iou"] <= 1


# ------------------------------------------------------------------------ multi-label
def test_hidden_labels_are_minus_one_and_the_rest_unchanged(multilabel):
    y = (np.random.default_rng(0).random((200, 5)) < 0.5).astype(np.float32)
    h = multilabel.hide_labels(y, 0.3, np.random.default_rng(1))
    hidden = h == multilabel.UNKNOWN
    assert 0.25 < hidden.mean() < 0.35
    np.testing.assert_array_equal(h[~hidden], y[~hidden])


def test_multilabel_tiny_run_prints_ap_per_class(multilabel, capsys):
    r = multilabel.main(["--epochs", "1", "--train-size", "16", "--test-size", "16",
                         "--width", "4", "--unknown", "0.5"])
    out = capsys.readouterr().out
    assert re.search(r"AP per class: circle [0-9.]+ {2}square [0-9.]+ {2}triangle", out)
    assert 0 <= _printed(out, "test_map") <= 1
    assert _printed(out, "test_map") == pytest.approx(r["test_map"], abs=1e-4)
    assert r["ap_per_class"].shape == (5,)
    assert 0 <= _printed(out, "exact_match") <= 1
