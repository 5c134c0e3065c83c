"""The ``filterbank`` command end to end, on the embedded Fashion-MNIST sample.

``fashion-mnist`` is made to resolve to the embedded sample the way a machine without the full
data set does: no file in ``$FILTERBANK_DATA``, the cache, or the system folder (emptied here).
One LeNet-5 run is trained once per module; evaluate, predict and resume work on it.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from harness import cli as call

import filterbank as fb
from filterbank.cli import main
from filterbank.data.datasets import FashionMNISTSample
from filterbank.train import run as fbrun

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("sample_only")




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

    with Image.open(folder / "filters.png") as im:  # matplotlib: 6 kernels 3x2 + colour bar
        assert im.width >= 500 and im.height >= 350   # LeNet conv1 gives 588x384
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
    # more epochs than planned under the default onecycle: the schedule is rebuilt over 3
    # epochs (same warm-up) and fast-forwarded to the step reached
    code, _, err = call(["train", "--resume", tmp_path / "cut", "--epochs", "3",
                         "--no-progress"])
    assert code == 0, err
    assert "extending the run from 2 to 3 epochs" in err
    rows = _csv(tmp_path / "cut" / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    config = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert config["training"]["epochs"] == 3 and config["results"]["epochs_completed"] == 3
    steps = 8  # 900 training images in batches of 128
    assert config["training"]["warmup_steps"] == 0.25 * 2 * steps
    opt = fb.optim.Adam([fb.nn.Parameter(fb.zeros(1))], lr=config["training"]["lr"])
    ref = fb.optim.lr_scheduler.OneCycleLR(opt, max_lr=config["training"]["lr"],
                                           total_steps=3 * steps, pct_start=4 / 24)
    for _ in range(2 * steps):
        ref.step()
    assert float(rows[2]["lr"]) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
    # annealing again, far above where the 2-epoch schedule ended (max_lr / 25 / 1e4)
    assert float(rows[2]["lr"]) > 1e3 * config["training"]["lr"] / 25 / 1e4


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
    table = out[out.index("confusion matrix (rows: true class"):].splitlines()
    assert table[1].split() == ["T-shi", "Trous", "Pullo", "Dress", "Coat", "Sanda", "Shirt",
                                "Sneak", "Bag", "Ankle"]
    rows = [[int(v) for v in line[len("T-shirt/top"):].split()] for line in table[2:12]]
    assert table[11].startswith("Ankle boot ")
    ev = json.loads((folder / "eval-fashion-mnist-sample.json").read_text())
    assert ev["matrix"] == json.loads((folder / "confusion.json").read_text())["matrix"]
    assert rows == ev["matrix"]
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


def test_predict_run_first_as_in_the_readme(trained, pngs):
    folder, _ = pngs
    code, out, err = call(["predict", trained[0], folder / "img0.png", folder, "--json"])
    assert code == 0, err
    files = [r["file"] for r in json.loads(out)]
    assert files[0] == str(folder / "img0.png") and len(files) == 1 + 5
    code, out2, err = call(["predict", "--run", trained[0], folder / "img0.png", folder,
                            "--json"])
    assert code == 0 and json.loads(out2) == json.loads(out)


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
    (["--model", "lenet5", "--depth", "1", "--batch-size", "8"], "[8, 16, 10, 10]"),
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
    "missing image, run first": (lambda run, tmp: ["predict", run, tmp / "x.png"],
                                 "no such file or folder"),
    "not an image": (lambda run, tmp: ["predict", run / "config.json", "--checkpoint", run],
                     "not an image"),
    "freeze matches nothing": (lambda run, tmp: ["train", "--init-from", run, "--freeze",
                                                 "features.*", "--out", tmp / "f"],
                               "--freeze 'features.*' matches no parameter"),
    "init-from and resume": (lambda run, tmp: ["train", "--init-from", run, "--resume", run],
                             "give one of them"),
    "image before run": (lambda run, tmp: ["predict", tmp / "x.png", run],
                         "the run comes first"),
    "run without images": (lambda run, tmp: ["predict", run], "no images given after the run"),
    "missing folder": (lambda run, tmp: ["train", "--model", "lenet5", "--dataset",
                                         tmp / "nothing"], "no such folder"),
    "download unknown": (lambda run, tmp: ["datasets", "--download", "imagenet"],
                         "unknown data set 'imagenet'"),
    "cuda without CuPy": (lambda run, tmp: ["train", "--model", "lenet5", "--device", "cuda",
                                            "--out", tmp / "c"],
                          "device 'cuda' is not available: CuPy is not installed"),
    "unknown device": (lambda run, tmp: ["train", "--model", "lenet5", "--device", "tpu"],
                       "unknown device 'tpu'"),
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


@pytest.mark.parametrize("argv, flag, expect", [
    # issue 15 item 13: --lr inf was accepted, then failed at step 2 (NaN was refused)
    (["train", "--lr", "inf"], "--lr", "expected a finite number, got 'inf'"),
    (["train", "--lr", "nan"], "--lr", "expected a finite number, got 'nan'"),
    (["train", "--lr", "0"], "--lr", "expected a number > 0, got '0'"),
    (["train", "--lr", "fast"], "--lr", "expected a number, got 'fast'"),
    (["train", "--momentum=-inf"], "--momentum", "expected a finite number"),
    (["train", "--weight-decay", "nan"], "--weight-decay", "expected a finite number"),
    (["train", "--val-split", "nan"], "--val-split", "expected a finite number"),
    # --seed -1 failed inside NumPy without naming the flag
    (["train", "--seed", "-1"], "--seed", "expected an integer >= 0, got -1"),
    # --out '' wrote the run into the current directory
    (["train", "--out", ""], "--out", "expected a folder, got an empty string"),
    (["evaluate", "run", "--out", " "], "--out", "expected a folder, got an empty string"),
    (["train", "--divergence-factor", "1"], "--divergence-factor",
     "expected a number > 1, or 0 to turn the check off, got '1'"),
    (["train", "--divergence-factor", "inf"], "--divergence-factor", "expected a finite number"),
])
def test_bad_numbers_and_folders_are_refused_at_parse_time(argv, flag, expect):
    code, out, err = call(argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"error: argument {flag}: {expect}" in err


def test_divergence_factor_zero_turns_the_check_off():
    from filterbank.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["train", "--divergence-factor", "0"]).divergence_factor is None
    assert parse(["train"]).divergence_factor == fbrun.DIVERGENCE_FACTOR == 1e4
    assert parse(["train", "--divergence-factor", "100"]).divergence_factor == 100


def _library_errors():
    from PIL.Image import DecompressionBombError

    from filterbank.data.datasets import DownloadError
    from filterbank.nn.module import StateDictError
    from filterbank.train import NonFiniteLossError
    from filterbank.train.checkpoint import CheckpointError
    from filterbank.train.trainer import DivergenceError

    return [DivergenceError("the loss diverged\nat step 2"), NonFiniteLossError("nan"),
            CheckpointError("model.json: field x"), StateDictError("keys"),
            DownloadError("offline"), FileNotFoundError("nothing"), PermissionError("denied"),
            TypeError("bad type"), DecompressionBombError("Image size (10000000000 pixels)"),
            # preprocessing.size [100000, 100000] in model.json: was a traceback from evaluate
            MemoryError("Unable to allocate 40 GiB for an array with shape (1, 1, 100000, "
                        "100000)")]


@pytest.mark.parametrize("exc", _library_errors(), ids=lambda e: type(e).__name__)
def test_library_errors_print_one_line(exc, monkeypatch):
    """The exceptions the library raises for bad input or a run gone wrong (issue 15): one
    line, exit 1; a PIL decompression bomb too, even if no reader wrapped it."""
    def fail(**kwargs):
        raise exc

    monkeypatch.setattr(fbrun, "train", fail)
    code, out, err = call(["train", "--model", "lenet5"])
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("filterbank: error: ") and \
        "Traceback" not in err
    assert " ".join(str(exc).split()) in err


def test_debug_shows_the_exception():
    with pytest.raises(ValueError, match="unknown model 'foo'"):
        main(["--debug", "train", "--model", "foo"])
    with pytest.raises(ValueError, match="unknown model 'foo'"):
        main(["summary", "--model", "foo", "--debug"])


def test_the_cli_tunes_the_allocator(monkeypatch):
    from filterbank import _allocator

    calls = []
    monkeypatch.setattr(_allocator, "tune", lambda: calls.append(1) or True)
    code, _, err = call(["summary", "--model", "lenet5"])
    assert code == 0, err
    assert calls == [1]


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


# ------------------------------------------------------------------ library: load_run
def test_load_run_and_load_checkpoint_accept_the_run_folder(trained):
    from filterbank.train import load_checkpoint
    from filterbank.train.run import load_run

    model, config = load_run(trained[0])
    assert not model.training and config["model"] == "lenet5"
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    other = fb.models.get_model("lenet5", **config["model_kwargs"])
    load_checkpoint(trained[0], model=other)
    other.eval()
    np.testing.assert_array_equal(other(fb.tensor(x)).data, model(fb.tensor(x)).data)


# --------------------------------------------------- fine-tuning on an image folder
@pytest.fixture(scope="module")
def shoe_folder(tmp_path_factory):
    """Three classes of the sample as grey PNGs of mixed sizes (28 and 36 pixels)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("shoes")
    ds = FashionMNISTSample(train=True)
    for label, name in ((5, "sandal"), (7, "sneaker"), (9, "ankle boot")):
        (root / name).mkdir()
        for i, j in enumerate(np.flatnonzero(ds.targets == label)[:40]):
            im = Image.fromarray(ds.data[j])
            (im.resize((36, 36)) if i % 4 == 0 else im).save(root / name / f"{i}.png")
    return root


def test_init_from_freeze_on_an_image_folder(trained, shoe_folder, tmp_path):
    from filterbank.train.checkpoint import read_checkpoint

    out = tmp_path / "shoes"
    code, stdout, err = call(["train", "--dataset", shoe_folder, "--init-from", trained[0],
                              "--freeze", "conv*", "--epochs", "1", "--batch-size", "16",
                              "--out", out, "--no-progress"])
    assert code == 0, err
    assert "classifier head fc3 (Linear) is re-initialised" in err
    assert "--freeze conv*: 2,572 parameters frozen (4 tensors), 58,539 trainable" in err
    assert "resizing all images to 28x28" in err
    config = json.loads((out / "config.json").read_text())
    assert config["classes"] == ["ankle boot", "sandal", "sneaker"]
    assert config["dataset"] == "shoes0" or config["dataset"].startswith("shoes")
    assert config["training"]["freeze"] == ["conv*"]
    assert config["data"]["train_images"] + config["data"]["val_images"] == 96  # 80% of 120
    old = json.loads((trained[0] / "config.json").read_text())["preprocessing"]
    assert config["preprocessing"]["mean"] == old["mean"]  # the features' normalisation kept
    new_w, old_w = read_checkpoint(out / "model")[1], read_checkpoint(trained[0] / "model")[1]
    assert new_w["model/fc3.weight"].shape == (3, 84)
    for k in ("conv1.weight", "conv1.bias", "conv2.weight"):  # frozen: exactly as loaded
        np.testing.assert_array_equal(new_w[f"model/{k}"], old_w[f"model/{k}"])
    assert not np.array_equal(new_w["model/fc1.weight"], old_w["model/fc1.weight"])
    state = read_checkpoint(out / "checkpoints" / "last")[0]["optimizer"]["state"]
    assert len(state["param_groups"][0]["params"]) == 10 - 4  # frozen ones are not given
    # evaluate finds the folder again (same held-out test split) and reproduces the accuracy
    code, ev, err = call(["evaluate", out])
    assert code == 0, err
    assert _accuracy(ev) == pytest.approx(config["results"]["test_accuracy"], abs=1e-4)
    assert "/24 " in ev
    # resuming keeps the frozen layers out of the optimizer (its groups must match)
    code, _, err = call(["train", "--resume", out, "--epochs", "2", "--no-progress"])
    assert code == 0, err
    again = read_checkpoint(out / "model")[1]
    np.testing.assert_array_equal(again["model/conv1.weight"], old_w["model/conv1.weight"])


def test_train_on_cuda_without_cupy_fails_before_any_work(tmp_path, monkeypatch):
    """The device is checked first: no model built, no data read, no run folder."""
    from filterbank.train import run

    def built(*args, **kwargs):
        raise AssertionError("a model was built before the device was checked")

    monkeypatch.setattr(run, "build_model", built)
    code, _, err = call(["train", "--model", "lenet5", "--device", "cuda:1",
                         "--out", tmp_path / "run"])
    assert code == 1 and "device 'cuda:1' is not available" in err
    assert not (tmp_path / "run").exists()
