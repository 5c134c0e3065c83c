"""``filterbank import | export`` end to end: a tiny SimpleCNN run trained once per module on
the embedded Fashion-MNIST sample (as tests/test_cli.py does), exported to ONNX and imported
back; a PyTorch state_dict imported as a zoo run."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("PIL")

from harness import cli as call
from harness import error_line, tiny_run
from PIL import Image

import filterbank as fb
from filterbank.train import runs

pytestmark = pytest.mark.usefixtures("sample_only")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "tiny"
    return tiny_run(folder)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def _onnx():
    pytest.importorskip("onnx")
    import filterbank.onnx  # noqa: F401  (with onnx installed, an ImportError here is a bug)


def _accuracy(out: str) -> float:
    return float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))


def _predictions(run, images) -> list:
    code, out, err = call(["predict", run, images, "--json", "--top-k", "10"])
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def onnx_round_trip(run, tmp_path_factory):
    _onnx()
    folder = tmp_path_factory.mktemp("onnx")
    code, out, err = call(["export", run, "--format", "onnx", "--out", folder / "m.onnx"])
    assert code == 0, err
    assert f"wrote {folder / 'm.onnx'}" in out
    pre = runs.find_run(run)[1]["preprocessing"]
    code, out, err = call(["import", folder / "m.onnx", "--out", folder / "imported",
                           "--mean", *pre["mean"], "--std", *pre["std"],
                           "--dataset", "fashion-mnist"])
    assert code == 0, err
    return folder / "imported"


def test_export_default_path(run):
    _onnx()
    code, out, err = call(["export", run])
    assert code == 0, err
    assert (run / "model.onnx").is_file() and f"wrote {run / 'model.onnx'}" in out


def test_onnx_import_evaluates_as_the_run(run, onnx_round_trip):
    config = json.loads((onnx_round_trip / "config.json").read_text())
    assert config["model"] == "onnx" and config["onnx_file"] == "source.onnx"
    assert (onnx_round_trip / "source.onnx").is_file()
    assert config["classes"] == [str(i) for i in range(10)]
    assert config["preprocessing"]["size"] == [28, 28]  # from the graph's input
    code, out_a, err = call(["evaluate", run, "--out", onnx_round_trip / "a"])
    assert code == 0, err
    code, out_b, err = call(["evaluate", onnx_round_trip])
    assert code == 0, err
    assert _accuracy(out_a) == _accuracy(out_b)


def test_onnx_import_predicts_as_the_run(run, onnx_round_trip, images):
    want, got = _predictions(run, images), _predictions(onnx_round_trip, images)
    names = runs.find_run(run)[1]["classes"]
    for w, g in zip(want, got):
        np.testing.assert_allclose([p["probability"] for p in g["predictions"]],
                                   [p["probability"] for p in w["predictions"]], atol=1e-5)
        assert [names[int(p["class"])] for p in g["predictions"]] == \
            [p["class"] for p in w["predictions"]]


def test_onnx_import_explain_and_reexport(onnx_round_trip, images):
    code, out, err = call(["explain", onnx_round_trip, images / "0.png", "--method",
                           "saliency"])
    assert code == 0, err
    code, out, err = call(["export", onnx_round_trip, "--out",
                           onnx_round_trip / "again.onnx"])
    assert code == 0, err


# ------------------------------------------------------------------ PyTorch weights
@pytest.fixture(scope="module")
def torch_lenet(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    tnn = torch.nn

    class TorchLeNet5(tnn.Module):  # the zoo's lenet5(padding=2, num_classes=4), in torch
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 6, 5, padding=2), tnn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = (tnn.Linear(400, 120), tnn.Linear(120, 84),
                                            tnn.Linear(84, 4))

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
            x = torch.relu(self.fc1(x.flatten(1)))
            return self.fc3(torch.relu(self.fc2(x)))

    torch.manual_seed(0)
    net = TorchLeNet5().eval()
    folder = tmp_path_factory.mktemp("torch")
    save_file(net.state_dict(), str(folder / "weights.safetensors"))
    return net, folder / "weights.safetensors"


def test_torch_weights_import_predicts_as_torch(torch_lenet, images, tmp_path):
    import torch

    net, weights = torch_lenet
    classes = ["a", "b", "c", "d"]
    code, out, err = call(["import", weights, "--model", "lenet5", "--input-size", "1", "28",
                           "28", "--classes", *classes, "--mean", "0.5", "--std", "0.25",
                           "--out", tmp_path / "r"])
    assert code == 0, err
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["model"] == "lenet5" and config["model_kwargs"]["num_classes"] == 4
    assert config["imported"]["format"] == "safetensors"
    got = _predictions(tmp_path / "r", images)
    for r in got:
        with Image.open(r["file"]) as im:
            x = (np.asarray(im, np.float32)[None, None] / 255 - 0.5) / 0.25
        with torch.no_grad():
            p = torch.softmax(net(torch.from_numpy(x)).double(), 1)[0].numpy()
        order = np.argsort(-p, kind="stable")
        assert [q["class"] for q in r["predictions"]] == [classes[i] for i in order]
        np.testing.assert_allclose([q["probability"] for q in r["predictions"]], p[order],
                                   atol=1e-5)
    # the run rebuilds the zoo model: load_run gives torch's logits
    model, _ = runs.load_run(tmp_path / "r")
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(fb.tensor(x)).detach().numpy(), want, rtol=1e-4,
                               atol=1e-5)


def test_torch_weights_num_classes_from_the_file(torch_lenet, tmp_path):
    _, weights = torch_lenet
    code, out, err = call(["import", weights, "--model", "lenet5", "--out", tmp_path / "r",
                           "--input-size", "1", "28", "28"])
    assert code == 0, err
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["classes"] == ["0", "1", "2", "3"]
    assert config["preprocessing"]["mean"] == [0.0] and config["preprocessing"]["std"] == [1.0]
    code, _, err = call(["evaluate", tmp_path / "r"])  # no data set recorded: say so
    assert code == 1 and "give evaluate --dataset" in error_line(err)


@pytest.mark.parametrize("argv, message", [
    (["--model", "lenet5", "--num-classes", "7"], "fc3.weight: expected (7, 84), got (4, 84)"),
    ([], "needs --model NAME"),
    (["--model", "lenet5", "--classes", "a", "b"], "expected (2, 84), got (4, 84)"),
    (["--model", "nosuch"], "unknown model 'nosuch'"),
    (["--model", "lenet5", "--mean", "0.1", "0.2"],
     "--mean: expected 1 finite number (one per channel), got [0.1, 0.2]"),
])
def test_torch_import_errors(torch_lenet, tmp_path, argv, message):
    _, weights = torch_lenet
    code, _, err = call(["import", weights, "--out", tmp_path / "r", "--input-size", "1", "28",
                         "28", *argv])
    assert code == 1 and message in error_line(err)


def test_import_refuses_other_files_and_used_folders(tmp_path, run):
    (tmp_path / "w.txt").write_text("x")
    code, _, err = call(["import", tmp_path / "w.txt", "--out", tmp_path / "r"])
    assert code == 1 and "expected a .onnx or .safetensors file" in error_line(err)
    (tmp_path / "bad.safetensors").write_bytes(b"\x10" + bytes(7) + b"{}")
    code, _, err = call(["import", tmp_path / "bad.safetensors", "--model", "lenet5",
                         "--out", run])
    assert code == 1 and "choose another --out" in error_line(err)
    code, _, err = call(["import", tmp_path / "bad.safetensors", "--model", "lenet5", "--out",
                         tmp_path / "r"])
    assert code == 1 and "bad.safetensors: not a safetensors file" in error_line(err)
    assert not (tmp_path / "r").exists()  # nothing written for a file that failed


def test_export_errors(run, tmp_path):
    code, _, err = call(["export", run, "--out", tmp_path / "m.txt"])
    assert code == 1 and "expected a .onnx file name" in error_line(err)
    code, _, err = call(["export", tmp_path / "nope"])
    assert code == 1 and "no checkpoint found" in error_line(err)


def test_onnx_run_with_a_path_in_onnx_file_is_refused(onnx_round_trip, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(onnx_round_trip, copy)
    config = json.loads((copy / "config.json").read_text())
    config["onnx_file"] = "../elsewhere.onnx"
    (copy / "config.json").write_text(json.dumps(config))
    (copy / "model.json").write_text(json.dumps(
        {**json.loads((copy / "model.json").read_text()), "extra": {}}))
    code, _, err = call(["evaluate", copy])
    assert code == 1 and "onnx_file: expected the name of a .onnx file" in error_line(err)
