"""The ``filterbank`` command end to end, on the embedded Fashion-MNIST sample.

``fashion-mnist`` is made to resolve to the embedded sample the way a machine without the full
data set does: no file in ``$FILTERBANK_DATA``, the cache, or the system folder (emptied here).
One LeNet-5 run is trained once per module; evaluate, predict and resume work on it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import filterbank as fb
from filterbank.cli import main
from filterbank.data.datasets import FashionMNIST, FashionMNISTSample
from filterbank.train import run as fbrun

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def sample_only(tmp_path_factory):
    """No full Fashion-MNIST anywhere: the CLI must fall back to the embedded sample."""
    empty = tmp_path_factory.mktemp("nodata")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FILTERBANK_DATA", str(empty))
        mp.setenv("XDG_CACHE_HOME", str(empty / "cache"))
        mp.setattr(FashionMNIST, "system_dirs", ())
        yield empty


def call(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse: --help, bad arguments
            code = e.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "lenet"
    code, out, err = call(["train", "--model", "lenet5", "--dataset", "fashion-mnist",
                           "--epochs", "1", "--out", folder, "--lr", "0.003"])
    assert code == 0, err
    return folder, out, err


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _accuracy(text: str) -> float:
    return float(re.search(r"test accuracy: ([0-9.]+)", text).group(1))


# -------------------------------------------------------------------------------- train
def test_train_prints_summary_progress_accuracy_and_folder(trained):
    folder, out, err = trained
    assert "Total params: 61,706" in out                        # the model summary
    assert "Epoch 1/1" in err                                    # the progress bar
    assert "embedded sample" in err                              # the fallback is announced
    assert f"run folder: {folder}" in out
    acc = _accuracy(out)
    assert 0.4 < acc <= 1.0                                      # it learned: chance is 0.1
    config = json.loads((folder / "config.json").read_text())
    assert config["dataset"] == "fashion-mnist-sample"
    assert config["requested_dataset"] == "fashion-mnist"
    assert config["model"] == "lenet5" and config["model_kwargs"]["padding"] == 2
    assert config["results"]["test_accuracy"] == pytest.approx(acc, abs=1e-4)
    assert config["data"] == {"train_images": 5400, "val_images": 600, "test_images": 1000}


def test_train_writes_the_run_folder(trained):
    folder, _, _ = trained
    config = json.loads((folder / "config.json").read_text())
    for name in ("curves.png", "confusion.png", "filters.png"):
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC, name
    from PIL import Image

    with Image.open(folder / "filters.png") as im:  # 6 kernels of 5x5, 8x scale, 3x2 grid
        assert im.size == (3 * 41 + 1, 2 * 41 + 1)
    rows = _csv(folder / "metrics.csv")
    assert len(rows) == 1 and {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(rows[0])
    cm = json.loads((folder / "confusion.json").read_text())
    matrix = np.array(cm["matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 1000
    assert np.trace(matrix) / 1000 == pytest.approx(config["results"]["test_accuracy"])
    # the checkpoint is the library's format and embeds the config
    meta = json.loads((folder / "model.json").read_text())
    assert meta["format"] == "filterbank-checkpoint"
    assert (folder / meta["tensor_file"]).is_file()
    assert (folder / "checkpoints" / "last.json").is_file()
    # preprocessing: the training images' own mean and std
    ds = FashionMNISTSample(train=True)
    x = ds.data.astype(np.float64) / 255
    mean = config["preprocessing"]["mean"][0]
    assert abs(mean - x.mean()) < 0.01 and config["preprocessing"]["std"][0] > 0.3


def test_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    """Ctrl-C after epoch 1, then --resume: the same weights as an uninterrupted run."""
    from filterbank.train import ModelCheckpoint
    from filterbank.train.checkpoint import read_checkpoint

    args = ["train", "--model", "lenet5", "--epochs", "2", "--limit", "1000", "--no-progress"]
    code, _, err = call([*args, "--out", tmp_path / "whole"])
    assert code == 0, err

    save = ModelCheckpoint.on_epoch_end

    def interrupt(self, trainer, epoch, logs):
        save(self, trainer, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(ModelCheckpoint, "on_epoch_end", interrupt)
    code, _, err = call([*args, "--out", tmp_path / "cut"])
    assert code == 130 and "filterbank train --resume" in err
    assert len(_csv(tmp_path / "cut" / "metrics.csv")) == 1
    monkeypatch.setattr(ModelCheckpoint, "on_epoch_end", save)
    code, out, err = call(["train", "--resume", tmp_path / "cut", "--no-progress"])
    assert code == 0, err
    assert [r["epoch"] for r in _csv(tmp_path / "cut" / "metrics.csv")] == ["1", "2"]
    whole = read_checkpoint(tmp_path / "whole" / "model")[1]
    cut = read_checkpoint(tmp_path / "cut" / "model")[1]
    assert whole.keys() == cut.keys()
    for k in whole:
        np.testing.assert_array_equal(whole[k], cut[k], err_msg=k)
    config = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert config["results"]["epochs_completed"] == 2
    code, _, err = call(["train", "--resume", tmp_path / "cut", "--epochs", "3"])
    assert code == 1 and "onecycle schedule spans 2 epochs" in err


def test_existing_run_folder_is_not_overwritten(trained):
    code, _, err = call(["train", "--model", "lenet5", "--out", trained[0]])
    assert code == 1 and "already holds a run" in err


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_reproduces_the_test_accuracy(trained):
    folder, train_out, _ = trained
    code, out, err = call(["evaluate", folder])
    assert code == 0, err
    assert _accuracy(out) == _accuracy(train_out)
    assert "precision" in out and "Ankle boot" in out           # per-class report
    ev = json.loads((folder / "eval-fashion-mnist-sample.json").read_text())
    assert ev["matrix"] == json.loads((folder / "confusion.json").read_text())["matrix"]
    assert (folder / "eval-fashion-mnist-sample.png").read_bytes()[:8] == PNG_MAGIC
    # a checkpoint inside the run folder works too (config found one level up)
    code, out, _ = call(["evaluate", folder / "checkpoints" / "last.json", "--limit", "200",
                         "--out", folder / "ev"])
    assert code == 0 and "(" in out and "/200 " in out


# ------------------------------------------------------------------------------ predict
@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    ds = FashionMNISTSample(train=False)
    for i in range(4):
        Image.fromarray(ds.data[i]).save(folder / f"img{i}.png")
    # the same image as 56x56 RGB: predict converts it back to 28x28 grey
    Image.fromarray(ds.data[0]).convert("RGB").resize((56, 56)).save(folder / "rgb.jpg")
    (folder / "notes.txt").write_text("not an image")
    return folder, ds.data[:4]


def test_predict_json_matches_the_model(trained, pngs):
    folder, images = pngs
    files = [folder / f"img{i}.png" for i in range(4)]
    code, out, err = call(["predict", *files, "--checkpoint", trained[0], "--json",
                           "--top-k", "3"])
    assert code == 0, err
    result = json.loads(out)
    assert [r["file"] for r in result] == [str(f) for f in files]
    # reference: the model on the same pixels, normalised with the stored mean/std
    net, config, _ = fbrun.load_run_model(trained[0])
    pre = config["preprocessing"]
    x = (images[:, None].astype(np.float32) / 255 - pre["mean"][0]) / pre["std"][0]
    logits = net(fb.tensor(x)).data.astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for r, p in zip(result, probs):
        got = [q["probability"] for q in r["predictions"]]
        assert len(got) == 3 and got == sorted(got, reverse=True)
        want = np.sort(p)[::-1][:3]
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert r["predictions"][0]["class"] == config["classes"][int(p.argmax())]


def test_predict_folder_table(trained, pngs):
    folder, _ = pngs
    code, out, err = call(["predict", folder, "--checkpoint", trained[0], "--top-k", "2"])
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["image", "top-1", "top-2"]
    assert len(lines) == 2 + 5 and "rgb.jpg" in out and "notes.txt" not in out
    assert re.search(r"\(\d+\.\d%\)", lines[2])


# ------------------------------------------------------------------- summary, datasets
@pytest.mark.parametrize("argv,expect", [
    (["--model", "lenet5"], "Total params: 61,706"),
    (["--model", "simple_cnn"], "Total params: 313,202"),
    (["--model", "resnet18", "--input-size", "3", "32", "32"], "Total params: 11,173,962"),
    (["--model", "LeNet", "--input-size", "1", "28", "28", "--num-classes", "4"],
     "Total params: 61,196"),
])
def test_summary(argv, expect):
    code, out, err = call(["summary", *argv])
    assert code == 0, err
    assert expect in out and "FLOPs" in out


def test_datasets_lists_where_files_are(tmp_path):
    from filterbank.data.datasets import write_idx

    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for split, n in (("train", 3), ("t10k", 2)):
        write_idx(root / "mnist" / f"{split}-images-idx3-ubyte",
                  np.zeros((n, 28, 28), np.uint8))
        write_idx(root / "mnist" / f"{split}-labels-idx1-ubyte", np.zeros(n, np.uint8))
    code, out, err = call(["datasets", "--data-root", root])
    assert code == 0, err
    lines = {ln.split()[0]: ln for ln in out.splitlines()[1:] if ln and ln[0] != "s"}
    assert set(lines) == {"fashion-mnist-sample", "fashion-mnist", "mnist", "cifar10",
                          "cifar100"}
    assert "_embedded" in lines["fashion-mnist-sample"]
    assert "not found" in lines["fashion-mnist"]
    assert str(root / "mnist") in lines["mnist"]


# ---------------------------------------------------------------------------- errors
def _not_checkpoint(tmp: Path) -> Path:
    p = tmp / "weights.json"
    p.write_text('{"hello": 1}')
    return p


ERRORS = {
    "unknown model": (lambda run, tmp: ["train", "--model", "foo"],
                      "unknown model 'foo' (choose from: lenet5,"),
    "unknown data set": (lambda run, tmp: ["train", "--model", "lenet5", "--dataset", "bar"],
                         "unknown data set 'bar' (choose from: fashion-mnist-sample"),
    "missing data": (lambda run, tmp: ["train", "--model", "lenet5", "--dataset", "mnist"],
                     "--download"),
    "missing checkpoint": (lambda run, tmp: ["evaluate", tmp / "nothing"],
                           "no checkpoint found"),
    "other model": (lambda run, tmp: ["evaluate", run, "--model", "simple_cnn"],
                    "does not fit the SimpleCNN"),
    "resume other model": (lambda run, tmp: ["train", "--resume", run, "--model",
                                             "simple_cnn", "--out", tmp / "r"],
                           "does not fit the SimpleCNN"),
    "png as checkpoint": (lambda run, tmp: ["predict", run / "curves.png", "--checkpoint",
                                            run / "curves.png"], "not a filterbank checkpoint"),
    "json not a checkpoint": (lambda run, tmp: ["evaluate", _not_checkpoint(tmp)],
                              "not a filterbank checkpoint"),
    "missing image": (lambda run, tmp: ["predict", tmp / "x.png", "--checkpoint", run],
                      "no such file or folder"),
    "not an image": (lambda run, tmp: ["predict", run / "config.json", "--checkpoint", run],
                     "not an image"),
    "download unsupported": (lambda run, tmp: ["datasets", "--download", "cifar10"],
                             "download=True is not supported"),
    "download unknown": (lambda run, tmp: ["datasets", "--download", "imagenet"],
                         "unknown data set 'imagenet'"),
    "bad augmentation": (lambda run, tmp: ["train", "--model", "lenet5", "--augment", "zoom"],
                         "unknown augmentation 'zoom'"),
    "bad input size": (lambda run, tmp: ["summary", "--model", "lenet5", "--input-size", "1",
                                         "30", "30"], "takes 28x28 or 32x32 images, got 30x30"),
    "model rejects size": (lambda run, tmp: ["summary", "--model", "unet", "--input-size", "1",
                                             "6", "8"], "multiples of 8, got (1, 1, 6, 8)"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_are_one_line(case, trained, tmp_path):
    argv, expect = ERRORS[case]
    code, out, err = call(argv(trained[0], tmp_path))
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("filterbank: error: ") and expect in lines[-1], err
    assert "Traceback" not in err
    assert not any(ln.startswith("filterbank: error") for ln in lines[:-1])  # notes may precede


def test_bad_arguments_one_line_exit_2():
    code, out, err = call(["train", "--epochs", "zero"])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("filterbank train: error: argument --epochs")


def test_debug_shows_the_exception():
    with pytest.raises(ValueError, match="unknown model 'foo'"):
        main(["--debug", "train", "--model", "foo"])
    with pytest.raises(ValueError, match="unknown model 'foo'"):
        main(["summary", "--model", "foo", "--debug"])


def test_python_dash_m_subprocess(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "filterbank", "--help"], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0
    for command in ("train", "evaluate", "predict", "summary", "datasets"):
        assert command in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "filterbank", "evaluate",
                          str(tmp_path / "none")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("filterbank: error: ")
    assert len(bad.stderr.strip().splitlines()) == 1 and bad.stdout == ""
