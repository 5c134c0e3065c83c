"""``filterbank train --task``: detection, segmentation, regression and multi-label runs end to
end from the command line (tiny runs: the learning itself is measured by the README's
commands), the task modules' pieces against references, and the bad inputs each refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from harness import cli as call
from harness import error_line

import filterbank as fb
from filterbank.data.datasets import StandardShapes, get_dataset
from filterbank.train.metrics import average_precision, mean_average_precision
from filterbank.train.tasks import (
    TASKS,
    ArrayPairs,
    DetectionMAP,
    HalfSquaredError,
    MultiLabelMAP,
    get_task,
    void_band,
)
from filterbank.train.tasks.detect import flip_grid, grid_targets
from filterbank.train.tasks.regress import sort_vertices
from filterbank.train.yolo import decode, encode_targets

PNG = b"\x89PNG\r\n\x1a\n"






# ------------------------------------------------------------------ end to end (CLI)
TINY = {"detect": ["--model-arg", "width=4"], "segment": ["--model-arg", "base=4",
                                                          "--model-arg", "depth=2"],
        "regress": ["--model-arg", "width=4", "--model-arg", "hidden=8"],
        "multilabel": ["--model-arg", "width=4", "--model-arg", "hidden=8"]}
FILES = {"detect": ["test-pr-curves.png", "test-detections.png"],
         "segment": ["test-iou.png", "test-masks.png"],
         "regress": ["test-predictions.png"], "multilabel": ["test-ap.png"]}
RESULTS = {"detect": ["test_map_50", "test_map", "test_map_75"],
           "segment": ["test_miou", "test_pixel_accuracy", "test_miou_all"],
           "regress": ["test_mean_iou", "test_mean_pixel_error"],
           "multilabel": ["test_map", "test_exact_match"]}
MONITORED = {"detect": "val_map_50", "segment": "val_miou", "regress": "val_mean_iou",
             "multilabel": "val_map"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run per task (24 images, 1 epoch), from the command line with only --task."""
    root = tmp_path_factory.mktemp("tasks")
    out = {}
    for task in TASKS[1:]:
        folder = root / task
        code, stdout, err = call(["train", "--task", task, "--epochs", "1", "--limit", "24",
                                  "--no-progress", "--out", folder, *TINY[task]])
        assert code == 0, err
        out[task] = (folder, stdout, err)
    return root, out


@pytest.mark.parametrize("task", TASKS[1:])
def test_a_task_trains_from_the_command_line_with_its_defaults(runs, task):
    folder, stdout, err = runs[1][task]
    config = json.loads((folder / "config.json").read_text())
    job = get_task(task)
    assert config["task"] == task and config["dataset"] == "shapes"
    assert config["model"] == job.default_model
    assert config["training"]["batch_size"] == job.defaults["batch_size"]
    assert config["training"]["augment"] == ["flip"]
    report = json.loads((folder / "test.json").read_text())
    for key in RESULTS[task]:
        assert key in report and key in config["results"]
        assert np.isfinite(report[key])
    for name in FILES[task] + ["curves.png", "metrics.csv", "model.json"]:
        assert (folder / name).is_file(), name
    for name in FILES[task]:
        assert (folder / name).read_bytes()[:8] == PNG
    header = (folder / "metrics.csv").read_text().splitlines()[0].split(",")
    assert MONITORED[task] in header
    if task in ("detect", "multilabel"):  # whole-set metrics: validation only
        assert MONITORED[task][4:] not in header
    assert f"for the task {task}" in err
    assert "after 1 epoch(s)" in stdout


def test_the_detect_report_is_the_map_of_the_decoded_test_outputs(runs, tmp_path):
    """The run's test report is COCO's mAP of the decoded test outputs (checked by
    recomputing it from the saved model on the same images)."""
    folder = runs[1]["detect"][0]
    net, config = fb.train.load_run(folder)
    ds = StandardShapes(train=False, n=24)
    x = np.stack([ds[i][0] for i in range(24)])
    truth = [{"boxes": ds[i][1]["boxes"], "labels": ds[i][1]["labels"]} for i in range(24)]
    with fb.no_grad():
        dets = decode(net(fb.tensor(x)).numpy(), 0.01, 0.5, 2, 5, 64)
    m = mean_average_precision(dets, truth, area_ranges={"all": (0, 1e10)})
    report = json.loads((folder / "test.json").read_text())
    assert report["test_map_50"] == pytest.approx(round(m["map_50"], 4), abs=1e-4)
    assert report["test_map"] == pytest.approx(round(m["map"], 4), abs=1e-4)


@pytest.mark.parametrize("task", TASKS[1:])
def test_evaluate_and_predict_a_task_run(runs, task, tmp_path):
    folder = runs[1][task][0]
    code, stdout, err = call(["evaluate", folder, "--limit", "16", "--out", tmp_path])
    assert code == 0, err
    report = json.loads((tmp_path / "eval-shapes.json").read_text())
    assert report["test_images"] == 16
    for key in RESULTS[task]:
        assert key in report
    from PIL import Image

    ds = StandardShapes(train=False, n=2)
    files = []
    for i in range(2):
        image = (ds[i][0].transpose(1, 2, 0) * 255).astype(np.uint8)
        f = tmp_path / f"shape{i}.png"
        Image.fromarray(image).resize((128, 96)).save(f)  # another size than the model's
        files.append(f)
    pics = tmp_path / "pics"
    code, stdout, err = call(["predict", folder, *files, "--json", "--out", pics])
    assert code == 0, err
    results = json.loads(stdout)
    assert [r["file"] for r in results] == [str(f) for f in files]
    for r in results:
        png = Path(r["png"])
        assert png.parent == pics and png.read_bytes()[:8] == PNG
        assert "mask" not in r
    if task == "detect":
        assert all("detections" in r for r in results)
    if task == "regress":
        # c_x in pixels of the 128-wide file, c_y of the 96-high one: 2x and 1.5x the model's
        net, config = fb.train.load_run(folder)
        with fb.no_grad():
            out = net(fb.tensor(np.stack([ds[i][0] for i in range(2)]))).numpy()
        # the file was resized twice (64 -> 128x96 -> 64): compare loosely
        assert results[0]["values"]["c_x"] == pytest.approx(out[0, 0] * 128, abs=8)
        assert results[0]["values"]["c_y"] == pytest.approx(out[0, 1] * 96, abs=6)
    if task == "multilabel":
        assert set(results[0]["probabilities"]) == set(ds.classes)
    code, stdout, err = call(["predict", folder, *files])
    assert code == 0 and str(files[0]) in stdout and "pictures:" in stdout


def test_a_resumed_task_run_keeps_its_task(runs, tmp_path):
    folder = runs[1]["regress"][0]
    code, _, err = call(["train", "--resume", folder, "--task", "detect", "--epochs", "2"])
    assert code == 1
    assert "was trained for the task regress" in error_line(err)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("argv, message", [
    (["--task", "segment", "--model", "simple_cnn"], "task 'segment' needs a model that "
     "outputs a class map"),
    (["--task", "detect", "--model", "unet"], "task 'detect' needs a detector"),
    (["--task", "regress", "--model", "tiny_yolo"], "task 'regress' needs a model with one "
     "output per number"),
    (["--task", "classify", "--model", "unet"], "model 'unet' is a segment model"),
    (["--task", "detect", "--dataset", "fashion-mnist"], "task 'detect' trains on the data "
     "set 'shapes'"),
    (["--task", "detect", "--task-arg", "foo=1"], "unknown task argument(s) ['foo']"),
    (["--task", "regress", "--task-arg", "target=circle"], "target must be 'box' or "
     "'vertices', got 'circle'"),
    (["--task", "segment", "--task-arg", "void=wide"], "argument void must be int"),
    (["--task", "multilabel", "--augment", "crop"], "supports the augmentations flip; got "
     "crop"),
    (["--task", "detect", "--image-size", "72"], "tiny_yolo needs images whose size is a "
     "multiple of 16"),
    (["--task", "segment", "--image-size", "60"], "with H and W multiples of 8, got (1, 3, "
     "60, 60)"),
])
def test_bad_task_options_are_refused_before_the_run_folder(argv, message, tmp_path):
    code, _, err = call(["train", *argv, "--limit", "8", "--epochs", "1", "--out",
                         tmp_path / "r"])
    assert code == 1
    assert message in error_line(err)
    assert not (tmp_path / "r").exists()


def test_an_unknown_task_is_refused_by_the_parser():
    code, _, err = call(["train", "--task", "caption"])
    assert code == 2 and "invalid choice: 'caption'" in err


def test_a_config_naming_an_unknown_task_is_refused(runs, tmp_path):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(runs[1]["multilabel"][0], folder)
    config = json.loads((folder / "config.json").read_text())
    config["task"] = "caption"
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.json").unlink()  # the config then comes from config.json
    code, _, err = call(["evaluate", folder])
    assert code == 1
    assert "config.json: task: expected one of classify, detect" in error_line(err)


# ------------------------------------------------------------------- the pieces
def _random_boxes(rng, n, S):
    """``n`` boxes (image-relative xyxy) with their centres in distinct cells."""
    cells = rng.choice(S * S, n, replace=False)
    r, c = cells // S, cells % S
    cx, cy = (c + rng.uniform(0.05, 0.95, n)) / S, (r + rng.uniform(0.05, 0.95, n)) / S
    w = rng.uniform(0.05, 0.5, n) * np.minimum(1, 2 * np.minimum(cx, 1 - cx) / 0.5)
    h = rng.uniform(0.05, 0.5, n) * np.minimum(1, 2 * np.minimum(cy, 1 - cy) / 0.5)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def test_grid_targets_inverts_encode_targets():
    rng = np.random.default_rng(0)
    boxes = [_random_boxes(rng, k, 4) for k in (1, 3, 0, 5)]
    labels = [rng.integers(0, 5, len(b)) for b in boxes]
    back = grid_targets(encode_targets(boxes, labels, 4, 5), 64)
    for b, lab, t in zip(boxes, labels, back):
        order = np.lexsort((t["boxes"][:, 0], t["boxes"][:, 1]))
        want = np.lexsort((b[:, 0], b[:, 1]))
        np.testing.assert_allclose(t["boxes"][order], b[want] * 64, atol=1e-4)
        np.testing.assert_array_equal(t["labels"][order], lab[want])


def test_flip_grid_is_the_encoding_of_the_mirrored_boxes():
    rng = np.random.default_rng(1)
    boxes = [_random_boxes(rng, 4, 4) for _ in range(3)]
    labels = [rng.integers(0, 5, 4) for _ in range(3)]
    mirrored = [np.stack([1 - b[:, 2], b[:, 1], 1 - b[:, 0], b[:, 3]], 1) for b in boxes]
    np.testing.assert_allclose(flip_grid(encode_targets(boxes, labels, 4, 5)),
                               encode_targets(mirrored, labels, 4, 5), atol=1e-6)


def test_detection_map_metric_is_mean_average_precision_of_the_decoded_grids():
    rng = np.random.default_rng(2)
    boxes = [_random_boxes(rng, 3, 4) for _ in range(6)]
    labels = [rng.integers(0, 5, 3) for _ in range(6)]
    y = encode_targets(boxes, labels, 4, 5)
    # predictions near the truth (noisy boxes, some confident misses): mAP@0.5 is high and
    # differs from mAP@[.5:.95]
    pred = np.zeros((6, 4, 4, 15), np.float32)
    for b in range(2):
        pred[..., 5 * b:5 * b + 2] = y[..., :2] + rng.normal(0, 0.08, y[..., :2].shape)
        pred[..., 5 * b + 2:5 * b + 4] = np.sqrt(y[..., 2:4]) + rng.normal(0, 0.08,
                                                                            y[..., 2:4].shape)
        pred[..., 5 * b + 4] = np.clip(y[..., 4] * 0.8 + rng.uniform(0, 0.3, y.shape[:3]), 0, 1)
    pred[..., 10:] = y[..., 5:] * 0.7 + rng.uniform(0, 0.3, y[..., 5:].shape)
    pred = np.abs(pred).astype(np.float32)
    m = DetectionMAP(B=2, C=5, image_size=64)
    m.update(pred[:4], y[:4])
    m.update(fb.tensor(pred[4:]), fb.tensor(y[4:]))
    dets = decode(pred, 0.01, 0.5, 2, 5, 64)
    truth = [{"boxes": b * 64, "labels": lab} for b, lab in zip(boxes, labels)]
    want = mean_average_precision(dets, truth, area_ranges={"all": (0, 1e10)})["map_50"]
    assert m.compute() == pytest.approx(want, abs=1e-5)
    assert 0.5 < m.compute() < 1
    assert m.validation_only


def test_multilabel_map_leaves_unknown_labels_out():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(40, 4)).astype(np.float32)
    y = (rng.random((40, 4)) < 0.4).astype(np.float32)
    hidden = y.copy()
    hidden[rng.random(y.shape) < 0.3] = -1
    m = MultiLabelMAP()
    m.update(scores[:25], hidden[:25])
    m.update(scores[25:], hidden[25:])
    assert m.compute() == pytest.approx(float(np.nanmean(average_precision(scores, hidden,
                                                                           -1))))
    assert m.compute() != pytest.approx(float(np.nanmean(average_precision(scores, y))))


def test_void_band_marks_the_pixels_next_to_a_class_boundary():
    mask = np.zeros((1, 6, 6), np.int64)
    mask[0, 2:4, 2:4] = 3
    one = void_band(mask, 1)[0]
    # the boundary runs between rows/columns 1|2 and 3|4: both sides are void
    expect = np.zeros((6, 6), bool)
    expect[1:5, 2:4] = expect[2:4, 1:5] = True
    np.testing.assert_array_equal(one == 255, expect)
    two = void_band(mask, 2)[0]
    assert (two == 255).sum() == 32  # grown by one pixel in every direction, diagonals too
    assert two[0, 0] == 0 and two[5, 5] == 0
    np.testing.assert_array_equal(void_band(mask, 0), mask)


def test_half_squared_error_is_the_lectures_formula_with_its_gradient():
    rng = np.random.default_rng(4)
    s_hat = rng.normal(size=(5, 4))
    s = rng.normal(size=(5, 4))
    loss = HalfSquaredError()(fb.tensor(s_hat), fb.tensor(s))
    assert loss.item() == pytest.approx(float(np.mean(0.5 * ((s - s_hat) ** 2).sum(1))),
                                        rel=1e-5)
    x = fb.tensor(s_hat, dtype=np.float64, requires_grad=True)
    t = fb.tensor(s, dtype=np.float64)
    assert fb.gradcheck(lambda a: HalfSquaredError()(a, t), (x,))
    with pytest.raises(ValueError, match="HalfSquaredError: expected input and target"):
        HalfSquaredError()(fb.zeros(5, 4), fb.zeros(5, 3))


def test_sorted_vertices_do_not_depend_on_their_order():
    rng = np.random.default_rng(5)
    v = rng.uniform(0, 64, (10, 3, 2))
    shuffled = np.stack([p[rng.permutation(3)] for p in v])
    np.testing.assert_array_equal(sort_vertices(v), sort_vertices(shuffled))
    d = sort_vertices(v) - v.mean(axis=1, keepdims=True)
    assert np.all(np.diff(np.arctan2(d[..., 1], d[..., 0]), axis=1) > 0)


def test_array_pairs_augments_a_batch_the_same_way_whatever_the_order():
    x = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 1, 2, 3)
    y = np.arange(4, dtype=np.float32)[:, None]

    def flip(a, b, rng):
        which = rng.random(len(a)) < 0.5
        a = a.copy()
        a[which] = a[which][..., ::-1]
        return a, b + which[:, None]

    ds = ArrayPairs(x, y, flip, seed=3)
    a1, b1 = ds.get_batch([0, 1, 2, 3])
    a2, b2 = ds.get_batch([0, 1, 2, 3])
    np.testing.assert_array_equal(a1, a2)
    flipped = (b1 - y)[:, 0].astype(bool)
    np.testing.assert_array_equal(a1[flipped], x[flipped][..., ::-1])
    np.testing.assert_array_equal(a1[~flipped], x[~flipped])
    assert ds.x is x  # the stored arrays are never changed


def test_the_registered_shapes_data_set():
    train, test = get_dataset("shapes"), get_dataset("Shapes", train=False)
    assert (len(train), len(test)) == (6000, 1000)
    assert train.grid == 4 and train.min_visible == 0.75 and train.image_size == 64
    a, b = train[0][0], get_dataset("shapes")[0][0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(train[0][0], test[0][0])
    assert StandardShapes(image_size=128).grid == 8


# ---------------------------------------------------------------- COCO-format folders
def _coco_folder(root: Path, n: int, seed: int, split: str | None = None) -> Path:
    """``n`` Shapes images as PNGs with an instances.json (boxes; polygons for the polygon
    kinds, the box for the others), in ``root`` or ``root/split``."""
    from PIL import Image

    folder = root if split is None else root / split
    folder.mkdir(parents=True, exist_ok=True)
    ds = StandardShapes(train=seed == 0, n=n, image_size=32, min_objects=1, max_objects=2)
    images, annotations = [], []
    for i in range(n):
        x, t = ds[i]
        Image.fromarray((x.transpose(1, 2, 0) * 255).astype(np.uint8)).save(folder / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 32, "height": 32})
        for o, box, label in zip(ds.objects(i), t["boxes"], t["labels"]):
            x1, y1, x2, y2 = (float(v) for v in box)
            ann = {"id": len(annotations) + 1, "image_id": i + 1,
                   "category_id": 10 + int(label), "bbox": [x1, y1, x2 - x1, y2 - y1]}
            if o["vertices"] is not None:
                ann["segmentation"] = [np.asarray(o["vertices"]).reshape(-1).tolist()]
            annotations.append(ann)
    categories = [{"id": 10 + k, "name": name} for k, name in enumerate(ds.classes)]
    (folder / "instances.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}))
    return root


@pytest.mark.parametrize("task", ["detect", "segment", "multilabel"])
def test_a_task_trains_on_a_coco_folder_and_evaluates_on_another(task, tmp_path):
    data = _coco_folder(tmp_path / "coco", 20, 0)
    run = tmp_path / "run"
    code, stdout, err = call(["train", "--task", task, "--dataset", data, "--epochs", "1",
                              "--no-progress", "--out", run, *TINY[task]])
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "coco" and config["requested_dataset"] == str(data)
    assert config["data"] == {"train_images": 14, "val_images": 2, "test_images": 4}
    shapes = list(StandardShapes.classes)
    assert config["classes"] == (["background", *shapes] if task == "segment" else shapes)
    assert config["preprocessing"]["size"] == [32, 32]
    assert "COCO annotations in" in err
    # another folder, with train/ and test/ splits
    other = tmp_path / "other"
    _coco_folder(other, 6, 0, "train")
    _coco_folder(other, 5, 1, "test")
    code, stdout, err = call(["evaluate", run, "--dataset", other, "--out", tmp_path / "ev"])
    assert code == 0, err
    assert json.loads((tmp_path / "ev" / "eval-other.json").read_text())["test_images"] == 5


def test_a_coco_folder_of_mixed_sizes_needs_an_image_size(tmp_path):
    data = _coco_folder(tmp_path / "coco", 6, 0)
    meta = json.loads((data / "instances.json").read_text())
    from PIL import Image

    Image.new("RGB", (48, 32)).save(data / "0.png")
    meta["images"][0].update(width=48)
    (data / "instances.json").write_text(json.dumps(meta))
    code, _, err = call(["train", "--task", "detect", "--dataset", data, "--epochs", "1",
                         "--out", tmp_path / "r"])
    assert code == 1
    assert "have sizes 32x32, 48x32; give an image size" in error_line(err)
    code, _, err = call(["train", "--task", "regress", "--dataset", data, "--out",
                         tmp_path / "r"])
    assert code == 1 and "task 'regress' trains on the data set 'shapes'" in error_line(err)


def test_flip_half_mirrors_the_chosen_images_and_their_targets_only():
    from filterbank.train.tasks.base import flip_half

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2, 3, 5)).astype(np.float32)
    y = rng.normal(size=(64, 4)).astype(np.float32)
    x0, y0 = x.copy(), y.copy()
    fx, fy = flip_half(x, y, np.random.default_rng(1), lambda t: -t)
    which = np.random.default_rng(1).random(64) < 0.5
    assert 10 < which.sum() < 54
    np.testing.assert_array_equal(fx[which], x[which][..., ::-1])
    np.testing.assert_array_equal(fx[~which], x[~which])
    np.testing.assert_array_equal(fy[which], -y[which])
    np.testing.assert_array_equal(fy[~which], y[~which])
    np.testing.assert_array_equal(x, x0)  # the caller's arrays are not changed
    np.testing.assert_array_equal(y, y0)
