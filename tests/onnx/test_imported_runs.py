"""An imported ONNX run works with the interpretability commands: a tiny SimpleCNN run trained
once per module on the embedded Fashion-MNIST sample, exported to ONNX and imported back
(``filterbank import``); its graph runs through Conv2d/Linear/BatchNorm2d layers named after
the ONNX nodes, so explain, dream, embed and probe find them, and Grad-CAM and saliency give
what they give on the original run."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

from harness import cli as call
from harness import (
    error_line,  # noqa: E402
    tiny_run,  # noqa: E402
)
from PIL import Image  # noqa: E402

import filterbank as fb  # noqa: E402
import filterbank.onnx as fonnx  # noqa: E402
from filterbank import nn  # noqa: E402
from filterbank.interpret import grad_cam, saliency  # noqa: E402
from filterbank.train import runs  # noqa: E402
from filterbank.train.explain import last_feature_map  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("sample_only")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "tiny"
    return tiny_run(folder)


@pytest.fixture(scope="module")
def imported(run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    code, _, err = call(["export", run, "--format", "onnx", "--out", folder / "m.onnx"])
    assert code == 0, err
    pre = runs.find_run(run)[1]["preprocessing"]
    code, _, err = call(["import", folder / "m.onnx", "--out", folder / "imported",
                         "--mean", *pre["mean"], "--std", *pre["std"],
                         "--dataset", "fashion-mnist"])
    assert code == 0, err
    return folder / "imported"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def _written(out: str) -> list[str]:
    paths = [line.split("wrote ", 1)[1].split(" (")[0] for line in out.splitlines()
             if line.startswith("wrote ")]
    assert paths, out
    for p in paths:
        if p.endswith(".png"):
            with open(p, "rb") as f:
                assert f.read(8) == PNG_MAGIC
    return paths


def _x(n=2):
    return np.random.default_rng(1).standard_normal((n, 1, 28, 28)).astype(np.float32)


# ------------------------------------------------------------------------ the model
def test_imported_model_has_named_layers_and_the_same_parameters(run, imported):
    net, _, _ = runs.load_run_model(run)
    onnx_net, config, _ = runs.load_run_model(imported)
    assert config["model"] == "onnx"
    kinds = [type(m).__name__ for _, m in onnx_net.named_modules()]
    assert kinds.count("Conv2d") == 2 and kinds.count("Linear") == 2
    assert kinds.count("BatchNorm2d") == 2 and kinds.count("ReLU") == 3
    count = sum(p.data.size for p in net.parameters())
    assert sum(p.data.size for p in onnx_net.parameters()) == count
    # every parameter is the original's, by its ONNX name (the exporter keeps the run's keys)
    own, theirs = dict(onnx_net.named_parameters()), dict(net.named_parameters())
    assert len(own) == len(theirs)
    for key, p in own.items():
        np.testing.assert_array_equal(p.data, theirs[onnx_net.onnx_names[key]].data)
    # and so is every gradient
    x = fb.Tensor(_x())
    for model in (net, onnx_net):
        model.zero_grad()
        model(x).sum().backward()
    for key, p in own.items():
        np.testing.assert_allclose(p.grad.data, theirs[onnx_net.onnx_names[key]].grad.data,
                                   rtol=1e-4, atol=1e-6)


def test_gradcam_and_saliency_match_the_original_run(run, imported):
    net, _, _ = runs.load_run_model(run)
    onnx_net, _, _ = runs.load_run_model(imported)
    x = _x()
    a, b = last_feature_map(net, x), last_feature_map(onnx_net, x)
    assert isinstance(dict(onnx_net.named_modules())[b], nn.ReLU)
    want, got = grad_cam(net, a, x), grad_cam(onnx_net, b, x)
    np.testing.assert_array_equal(got.target, want.target)
    np.testing.assert_allclose(got.raw, want.raw, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.heatmap, want.heatmap, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(saliency(onnx_net, x), saliency(net, x), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("method", ["gradcam", "saliency"])
def test_explain_gradcam_and_saliency_on_the_imported_run(imported, images, tmp_path, method):
    code, out, err = call(["explain", imported, images / "0.png", "--method", method,
                           "--out", tmp_path])
    assert code == 0, err
    (path,) = _written(out)
    want = "0-gradcam-n_Relu_20.png" if method == "gradcam" else "0-saliency.png"
    assert path.rsplit("/", 1)[1] == want  # the default layer: the last 4-D output, a ReLU


# ------------------------------------------------------------------ the commands
@pytest.mark.parametrize("args", [
    ["IMAGE", "--method", "featuremaps"],
    ["--method", "filters"],
    ["--method", "maximize", "--channels", "2"],
    ["IMAGE", "--method", "gradcam", "--layer", "n_Conv_12"],
])
def test_explain_methods_work_on_the_imported_run(imported, images, tmp_path, args):
    args = [str(images / "0.png") if a == "IMAGE" else a for a in args]
    code, out, err = call(["explain", imported, *args, "--out", tmp_path])
    assert code == 0, err
    paths = _written(out)
    if "filters" in args:
        assert [p.rsplit("/", 1)[1] for p in paths] == ["filters-n_Conv_2.png",
                                                        "filters-n_Conv_12.png"]


def test_dream_works_on_the_imported_run(imported, images, tmp_path):
    code, out, err = call(["dream", imported, images / "0.png", "--octaves", "2", "--steps",
                           "2", "--out", tmp_path])
    assert code == 0, err
    assert [p.rsplit("/", 1)[1] for p in _written(out)] == ["dream-0-n_Conv_12.png"]


def test_embed_works_on_the_imported_run(run, imported, tmp_path):
    for folder in (run, imported):
        code, out, err = call(["embed", folder, "--dataset", "fashion-mnist", "--limit", "30",
                               "--out", tmp_path / f"{folder.name}.npy"])
        assert code == 0, err
    got = np.load(tmp_path / "imported.npy", allow_pickle=False)
    assert got.shape == (30, 16)  # the input of the last Linear
    np.testing.assert_allclose(got, np.load(tmp_path / "tiny.npy"), rtol=1e-4, atol=1e-5)


def test_probe_works_on_the_imported_run(imported, tmp_path):
    code, out, err = call(["probe", imported, "--dataset", "fashion-mnist", "--limit", "100",
                           "--out", tmp_path])
    assert code == 0, err
    assert "untrained (seed 0)" in out
    result = json.loads((tmp_path / "probe-fashion-mnist-sample.json").read_text())
    assert result["trained"]["features"] == result["untrained"]["features"] == 16
    assert result["trained"] != result["untrained"]
    with open(tmp_path / "retrieval-fashion-mnist-sample.png", "rb") as f:
        assert f.read(8) == PNG_MAGIC


def test_untrained_copy_of_an_imported_run_is_reinitialised_and_seeded(imported):
    net, _, ckpt = runs.load_run_model(imported)
    config = runs.find_run(imported)[1]
    fb.manual_seed(0)
    a = runs.untrained_model(ckpt, config)
    fb.manual_seed(0)
    b = runs.untrained_model(ckpt, config)
    assert not a.training
    trained = dict(net.named_parameters())
    for key, p in a.named_parameters():
        np.testing.assert_array_equal(p.data, dict(b.named_parameters())[key].data)
    conv = dict(a.named_modules())["n_Conv_2"]
    assert not np.array_equal(conv.weight.data, trained["n_Conv_2.weight"].data)
    bn = dict(a.named_modules())["n_BatchNormalization_6"]
    np.testing.assert_array_equal(bn.weight.data, 1)
    np.testing.assert_array_equal(bn.running_var.data, 1)


def test_init_from_an_imported_run_is_refused_clearly(imported, tmp_path):
    code, _, err = call(["train", "--init-from", imported, "--dataset", "fashion-mnist",
                         "--limit", "50", "--epochs", "1", "--no-progress", "--out",
                         tmp_path / "ft"])
    assert code == 1
    line = error_line(err)
    assert "imported ONNX graph" in line and "--init-from" in line


# ------------------------------------------------------------- which nodes get layers
def _model(tmp_path, nodes, inits, x_shape, name="m.onnx"):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what ONNX Runtime reads
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _ort(path, x):
    ort = pytest.importorskip("onnxruntime")
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def test_shared_initializer_stays_one_functional_parameter(tmp_path):
    from onnx import helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 4)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w"], ["h"], transB=1),
             helper.make_node("Gemm", ["h", "w"], ["y"], transB=1)]
    path = _model(tmp_path, nodes, {"w": w}, [2, 4])
    model = fonnx.load(path)
    assert [n for n, _ in model.named_parameters()] == ["w"]
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(model(fb.Tensor(x)).data, _ort(path, x), rtol=1e-5, atol=1e-6)


def test_gemm_transb0_conv_asymmetric_pads_and_unnamed_nodes(tmp_path):
    from onnx import helper

    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((3, 2, 3, 3)).astype(np.float32),
             "b": rng.standard_normal(3).astype(np.float32),
             "s": np.array([0, -1], np.int64),
             "fw": rng.standard_normal((3 * 5 * 5, 4)).astype(np.float32),  # (in, out)
             "fb": rng.standard_normal(4).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[0, 1, 1, 0], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "s"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"])]
    path = _model(tmp_path, nodes, inits, [2, 2, 10, 11])
    model = fonnx.load(path)
    named = dict(model.named_modules())
    assert isinstance(named["conv_0"], nn.Conv2d) and isinstance(named["relu_0"], nn.ReLU)
    assert isinstance(named["gemm_0"], nn.Linear)
    assert model.onnx_names["gemm_0.weight"] == "fw"
    assert model.onnx_transposed == {"gemm_0.weight"}
    np.testing.assert_array_equal(named["gemm_0"].weight.data, inits["fw"].T)
    np.testing.assert_array_equal(model.fw.data, inits["fw"].T)  # the initializer's own name
    x = rng.standard_normal((2, 2, 10, 11)).astype(np.float32)
    np.testing.assert_allclose(model(fb.Tensor(x)).data, _ort(path, x), rtol=1e-4, atol=1e-5)


def test_a_state_saved_before_the_layers_still_loads(tmp_path):
    from onnx import helper

    rng = np.random.default_rng(0)
    inits = {"layer/w": rng.standard_normal((4, 3)).astype(np.float32),  # (in, out)
             "b": rng.standard_normal(3).astype(np.float32)}
    path = _model(tmp_path, [helper.make_node("Gemm", ["x", "layer/w", "b"], ["y"])], inits,
                  [2, 4])
    model = fonnx.load(path)
    old = {"layer_w": inits["layer/w"] * 2, "b": inits["b"] + 1}  # the old, flat keys
    model.load_state_dict(old)
    np.testing.assert_array_equal(model.gemm_0.weight.data, (inits["layer/w"] * 2).T)
    np.testing.assert_array_equal(model.gemm_0.bias.data, inits["b"] + 1)


def test_conv_transpose_and_batchnorm_layers_match_onnx_runtime(tmp_path):
    from onnx import helper

    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((2, 3, 3, 3)).astype(np.float32),
             "b": rng.standard_normal(3).astype(np.float32),
             "s": rng.random(3).astype(np.float32) + 0.5,
             "o": rng.standard_normal(3).astype(np.float32),
             "m": rng.standard_normal(3).astype(np.float32),
             "v": rng.random(3).astype(np.float32) + 0.5}
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["t"], pads=[1, 1, 1, 1],
                              strides=[2, 2], output_padding=[1, 1], name="up"),
             helper.make_node("BatchNormalization", ["t", "s", "o", "m", "v"], ["y"],
                              epsilon=1e-3, name="bn")]
    path = _model(tmp_path, nodes, inits, [2, 2, 5, 6])
    model = fonnx.load(path)
    assert isinstance(model.up, nn.ConvTranspose2d) and isinstance(model.bn, nn.BatchNorm2d)
    x = rng.standard_normal((2, 2, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(model(fb.Tensor(x)).data, _ort(path, x), rtol=1e-4, atol=1e-5)
