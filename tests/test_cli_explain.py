"""``filterbank explain | dream | embed | probe | filter`` end to end, on a tiny SimpleCNN run
trained once per module on the embedded Fashion-MNIST sample (as tests/test_cli.py does)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

from harness import cli as call
from harness import tiny_run
from PIL import Image  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("sample_only")




@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "tiny"
    return tiny_run(folder, 300)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    grey = folder / "shoe.png"
    Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(grey)
    rgb = folder / "photo.jpg"  # another size and colour: converted to the model's
    Image.fromarray((rng.random((40, 50, 3)) * 255).astype(np.uint8)).save(rgb)
    bad = folder / "notes.png"
    bad.write_text("not an image")
    return grey, rgb, bad


def _pngs(out: str) -> list:
    paths = [line.split("wrote ", 1)[1].split(" (")[0] for line in out.splitlines()
             if line.startswith("wrote ")]
    assert paths
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == PNG_MAGIC
    return paths


# ------------------------------------------------------------------------------ explain
@pytest.mark.parametrize("method, expected", [
    ("saliency", ["shoe-saliency.png", "photo-saliency.png"]),
    ("gradcam", ["shoe-gradcam-act2.png", "photo-gradcam-act2.png"]),
    ("featuremaps", ["shoe-featuremaps.png", "photo-featuremaps.png"]),
])
def test_explain_methods_write_one_png_per_image(run, images, tmp_path, method, expected):
    code, out, err = call(["explain", run, images[0], images[1], "--method", method,
                           "--out", tmp_path])
    assert code == 0, err
    assert [p.rsplit("/", 1)[1] for p in _pngs(out)] == expected


def test_explain_defaults_to_the_run_folder_and_takes_a_class_name(run, images):
    code, out, err = call(["explain", run, images[0], "--method", "gradcam", "--layer",
                           "conv2", "--target", "sneaker"])
    assert code == 0, err
    assert _pngs(out) == [str(run / "explain" / "shoe-gradcam-conv2.png")]


def test_filters_and_maximize_need_no_images(run, tmp_path):
    code, out, err = call(["explain", run, "--method", "filters", "--out", tmp_path])
    assert code == 0, err
    assert [p.rsplit("/", 1)[1] for p in _pngs(out)] == ["filters-conv1.png",
                                                          "filters-conv2.png"]
    code, out, err = call(["explain", run, "--method", "maximize", "--channels", "3",
                           "--out", tmp_path])
    assert code == 0, err
    assert [p.rsplit("/", 1)[1] for p in _pngs(out)] == ["maximize-conv2.png"]


@pytest.mark.parametrize("args, message", [
    (["--layer", "conv9"], "no layer 'conv9'; did you mean 'conv2', 'conv1'\\? valid names are"),
    (["--method", "gradcam", "--layer", "fc1"], "'fc1' \\(Linear\\) gives a 2-D output.*"
                                                "pick a convolutional layer"),
    (["--method", "featuremaps", "--layer", "fc1"], "pick a convolutional layer"),
    (["--target", "12"], "class 12 is out of range for a model with 10 classes \\(0 to 9\\)"),
    (["--target", "hat"], "expected a class index \\(0 to 9\\) or a class name, got 'hat'; "
                          "the classes are: T-shirt/top, Trouser"),
])
def test_explain_errors_are_one_line(run, images, tmp_path, args, message):
    code, out, err = call(["explain", run, images[0], "--out", tmp_path, *args])
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("filterbank: error: ")
    assert re.search(message, err), err


def test_explain_refuses_files_that_are_not_images(run, images, tmp_path):
    code, _, err = call(["explain", run, images[2], "--out", tmp_path])
    assert code == 1 and "notes.png" in err
    code, _, err = call(["explain", run, "--method", "filters", "--layer", "fc1"])
    assert code == 1 and "'fc1' is a Linear, not a convolution" in err
    code, _, err = call(["explain", run, "--method", "saliency"])
    assert code == 1 and "no images given" in err


# -------------------------------------------------------------------------------- dream
def test_dream_from_an_image_and_from_noise(run, images, tmp_path):
    code, out, err = call(["dream", run, images[0], "--octaves", "2", "--steps", "2",
                           "--out", tmp_path])
    assert code == 0, err
    assert "one octave" not in out  # SimpleCNN's size check is passed by its prefix network
    assert [p.rsplit("/", 1)[1] for p in _pngs(out)] == ["dream-shoe-conv2.png"]
    code, out, err = call(["dream", run, "--layer", "conv1", "--seed", "3", "--steps", "1",
                           "--out", tmp_path])
    assert code == 0, err
    assert [p.rsplit("/", 1)[1] for p in _pngs(out)] == ["dream-noise3-conv1.png"]


# ------------------------------------------------------------------------- embed, probe
def test_embed_saves_features_and_labels_without_pickle(run, tmp_path):
    dest = tmp_path / "f.npy"
    code, out, err = call(["embed", run, "--dataset", "fashion-mnist", "--limit", "50",
                           "--out", dest])
    assert code == 0, err
    f = np.load(dest, allow_pickle=False)
    y = np.load(tmp_path / "f-labels.npy", allow_pickle=False)
    assert f.shape == (50, 16) and f.dtype == np.float32 and y.shape == (50,)
    assert "50 x 16 features (the input of fc2) of the test split" in out
    code, _, err = call(["embed", run, "--dataset", "fashion-mnist", "--limit", "20",
                         "--layer", "conv2", "--split", "train", "--out", dest])
    assert code == 0, err
    assert np.load(dest).shape == (20, 8 * 14 * 14)
    code, _, err = call(["embed", run, "--dataset", "fashion-mnist", "--limit", "50",
                         "--normalize", "--out", dest])
    assert code == 0, err
    unit = np.load(dest, allow_pickle=False)
    assert unit.dtype == np.float32 and unit.shape == (50, 16)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit, f / np.linalg.norm(f, axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)  # the same 50 images (seed 0), in order
    code, _, err = call(["embed", run, "--dataset", "fashion-mnist", "--out",
                         tmp_path / "f.txt"])
    assert code == 1 and "expected a .npy file" in err


def test_probe_reports_trained_and_untrained(run, tmp_path):
    code, out, err = call(["probe", run, "--dataset", "fashion-mnist", "--limit", "200",
                           "--out", tmp_path])
    assert code == 0, err
    assert "trained (this run)" in out and "untrained (seed 0)" in out
    result = json.loads((tmp_path / "probe-fashion-mnist-sample.json").read_text())
    assert result["train_images"] == 200 and result["test_images"] == 200
    for key in ("trained", "untrained"):
        assert 0.0 <= result[key]["test_accuracy"] <= 1.0
        assert result[key]["features"] == 16
    assert result["trained"]["test_accuracy"] > 0.3  # chance is 0.1
    assert result["trained"]["knn5_test_accuracy"] > 0.3  # the majority vote of 5 neighbours
    assert result["trained"] != result["untrained"]  # two networks, two sets of features
    with open(tmp_path / "retrieval-fashion-mnist-sample.png", "rb") as f:
        assert f.read(8) == PNG_MAGIC


# ------------------------------------------------------------------------------- filter
@pytest.mark.parametrize("args", [["--kernel", "sobel_x"], ["--magnitude"],
                                  ["--kernel", "gaussian", "--kernel-size", "7",
                                   "--sigma", "2"]])
def test_filter_writes_a_picture(images, tmp_path, args):
    dest = tmp_path / "out.png"
    code, out, err = call(["filter", images[1], *args, "--out", dest])
    assert code == 0, err
    assert _pngs(out) == [str(dest)]


def test_filter_errors(images, tmp_path):
    code, _, err = call(["filter", images[0], "--out", tmp_path / "x.png"])
    assert code == 2 and "one of the arguments --kernel --magnitude is required" in err
    code, _, err = call(["filter", images[0], "--kernel", "sobel_x", "--kernel-size", "5"])
    assert code == 1 and "only for gaussian and box_blur" in err
    code, _, err = call(["filter", images[2], "--kernel", "sharpen"])
    assert code == 1 and "notes.png" in err
