"""Device plumbing on the fake CuPy (tests/fakecupy): moving tensors and modules, gradients
through ``.to``, the errors (no GPU, two devices in one op), optimizers, checkpoints and the
Trainer on the "GPU", each compared with the same work on the CPU.

The fake's device arrays are NumPy arrays in disguise that refuse host arrays mixed in, so a
host array leaking into device work fails here as it would on a real GPU.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from fakecupy import (  # noqa: F401  (the fixtures fake_cupy and fake_cupy_no_gpu)
    fake_cupy_fixture,
    fake_cupy_no_gpu_fixture,
    installed,
)

import filterbank as fb
from filterbank.backend import DeviceError, check_same_device, device_of, to_device


def _on_device(t) -> bool:
    return type(t.data).__module__ == "cupy"


def test_array_module_of_one_or_many_arrays(fake_cupy):
    from filterbank import _xp
    from filterbank.backend import get_array_module

    h, d = np.ones(3, np.float32), fake_cupy.ones(3)
    assert get_array_module(h) is np and get_array_module() is np
    assert get_array_module(d) is fake_cupy and get_array_module(h, None, 2.0, d) is fake_cupy
    assert get_array_module(h, h, 1.0) is np and get_array_module(None, d) is fake_cupy
    assert _xp.on_host(h, 1.0) and not _xp.on_host(h, d)


# ------------------------------------------------------------------ tensors and errors
def test_tensor_moves_both_ways_and_reports_its_device(fake_cupy):
    x = fb.tensor([[1.0, 2.0], [3.0, 4.0]])
    g = x.to("cuda")
    assert _on_device(g) and g.is_cuda and g.device == "cuda:0" and str(g.device) == "cuda:0"
    assert g.dtype == np.float32 and g.to("cuda:0") is g and x.cuda().device == "cuda"
    assert "device='cuda:0'" in repr(g)
    back = g.cpu()
    assert type(back.data) is np.ndarray and not back.is_cuda and back.device == "cpu"
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    assert g.tolist() == [[1.0, 2.0], [3.0, 4.0]] and g.sum().item() == 10.0
    assert float(g.sum()) == 10.0
    assert g.to("cuda", fb.float64).dtype == np.float64 and _on_device(g.double())


def test_numpy_of_a_gpu_tensor_says_cpu_first(fake_cupy):
    with pytest.raises(TypeError, match=r"numpy\(\): can't convert a cuda:0 tensor to a NumPy "
                                        r"array; use \.cpu\(\) first"):
        fb.ones(2).cuda().numpy()


def test_gradient_through_to_flows_back_to_the_source_device(fake_cupy):
    x = fb.tensor([1.0, -2.0, 3.0], requires_grad=True)
    g = x.to("cuda")
    assert g.grad_fn.name == "ToDevice"
    (g * g).sum().backward()
    assert type(x.grad.data) is np.ndarray
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy())
    # and the other way: a GPU leaf used on the CPU gets its gradient on the GPU
    w = fb.tensor([2.0, 5.0], device="cuda", requires_grad=True)
    assert w.is_leaf and w.requires_grad and _on_device(w)
    (w.cpu() * w.cpu()).sum().backward()
    assert _on_device(w.grad)
    np.testing.assert_allclose(w.grad.cpu().numpy(), [4.0, 10.0])


def test_to_gradcheck_in_float64(fake_cupy):
    from filterbank.autograd.gradcheck import gradcheck

    x = fb.tensor(np.random.default_rng(0).standard_normal((3, 2)), dtype=fb.float64,
                  requires_grad=True)
    assert gradcheck(lambda t: (t.cuda() * t.cuda()).cpu().sin(), (x,))
    assert gradcheck(lambda t: t.cuda().exp().cpu(), (x,))


def test_two_devices_in_one_op_name_the_op_and_both_devices(fake_cupy):
    a, b = np.ones(2), fake_cupy.ones(2)
    with pytest.raises(DeviceError, match=r"add: expected all tensors on the same device, got "
                                          r"cpu and cuda:0"):
        check_same_device("add", a, b)
    with pytest.raises(RuntimeError, match=r"got cuda:0 and cpu"):
        check_same_device("matmul", 2.0, b, None, a)
    check_same_device("mul", b, 3.0, b)
    x = fb.ones(2).cuda()
    with pytest.raises(DeviceError, match=r"add_: expected all tensors on the same device, "
                                          r"got cuda:0 and cpu"):
        x.add_(fb.ones(2))
    with pytest.raises(DeviceError, match=r"backward: expected all tensors on the same device"):
        fb.ones(2, requires_grad=True).cuda().backward(fb.ones(2))


def test_op_on_two_devices_raises_the_clear_error(fake_cupy):
    with pytest.raises(DeviceError, match=r"Add: expected all tensors on the same device, "
                                          r"got cpu and cuda:0"):
        fb.ones(2) + fb.ones(2).cuda()


def test_copy_across_devices_is_allowed_as_in_torch(fake_cupy):
    g = fb.zeros(3, device="cuda")
    g.copy_(fb.tensor([1.0, 2.0, 3.0]))
    assert _on_device(g) and g.tolist() == [1.0, 2.0, 3.0]


def test_cupy_present_but_no_gpu_says_so(fake_cupy_no_gpu):
    assert fb.cuda.is_available() is False and fb.cuda.device_count() == 0
    fb.device("cuda")  # a descriptor is fine
    for call in (lambda: fb.ones(2).cuda(), lambda: fb.nn.Linear(2, 2).cuda(),
                 lambda: fb.zeros(2, device="cuda")):
        with pytest.raises(DeviceError, match=r"device 'cuda(:0)?' is not available: CuPy is "
                                              r"installed but finds no GPU \(CUDARuntimeError"):
            call()


def test_gpu_index_beyond_the_count(fake_cupy):
    assert fb.cuda.is_available() and fb.cuda.device_count() == 1
    with pytest.raises(DeviceError, match=r"device 'cuda:1' is not available: CuPy sees 1 "
                                          r"GPU\(s\) \(cuda:0..cuda:0\)"):
        fb.ones(1).to("cuda:1")


def test_backend_helpers(fake_cupy):
    h = np.arange(3.0)
    d = to_device(h, "cuda")
    assert type(d).__module__ == "cupy" and d.base is None and device_of(d) == "cuda:0"
    assert to_device(d, fb.device("cuda", 0)) is d
    back = to_device(d, "cpu")
    assert type(back) is np.ndarray and back.base is None and device_of(back) == "cpu"


@pytest.mark.parametrize("make", [
    lambda **k: fb.zeros(2, 3, **k), lambda **k: fb.ones(2, **k),
    lambda **k: fb.full((2,), 7.0, **k), lambda **k: fb.arange(4, **k),
    lambda **k: fb.eye(2, **k), lambda **k: fb.linspace(0, 1, 3, **k),
    lambda **k: fb.tensor([1.0, 2.0], **k), lambda **k: fb.empty(2, **k),
    lambda **k: fb.randint(0, 5, (3,), **k), lambda **k: fb.randperm(4, **k),
])
def test_factories_take_device(fake_cupy, make):
    g, c = make(device="cuda"), make(device="cpu")
    assert _on_device(g) and g.dtype == c.dtype and g.shape == c.shape
    assert not _on_device(c) and not _on_device(make())


def test_random_factories_give_the_same_values_on_every_device(fake_cupy):
    fb.manual_seed(3)
    c = fb.randn(4, 2)
    fb.manual_seed(3)
    g = fb.randn(4, 2, device="cuda", requires_grad=True)
    assert _on_device(g) and g.requires_grad and g.is_leaf
    np.testing.assert_array_equal(g.detach().cpu().numpy(), c.numpy())
    like = fb.zeros_like(g)
    assert _on_device(like) and not _on_device(fb.zeros_like(g, device="cpu"))
    assert _on_device(fb.rand_like(g)) and _on_device(fb.tensor(g))


# --------------------------------------------------------------------- modules, optim
def _small_cnn(seed: int = 0):
    fb.manual_seed(seed)
    nn = fb.nn
    # no conv bias before the batch norm: its gradient is rounding noise (BN removes it),
    # which Adam's normalised step would turn into device-dependent updates
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def test_module_moves_in_place_keeping_parameter_identity(fake_cupy):
    m = _small_cnn()
    params = list(m.parameters())
    ref = {k: v.copy() for k, v in m.state_dict().items()}
    assert m.cuda() is m and [p for p in m.parameters()] == params
    assert all(_on_device(p) for p in m.parameters()) and all(_on_device(b) for b in m.buffers())
    sd = m.state_dict()  # host copies, wherever the module is
    assert all(type(v) is np.ndarray for v in sd.values())
    for k in ref:
        np.testing.assert_array_equal(sd[k], ref[k])
    m.load_state_dict(ref)  # host arrays go to the module's device
    assert all(_on_device(p) for p in m.parameters())
    m.cpu()
    assert all(type(p.data) is np.ndarray for p in m.parameters())


@pytest.mark.parametrize("opt", [
    lambda ps: fb.optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: fb.optim.Adam(ps, lr=0.01),
])
def test_optimizer_made_before_the_move_steps_on_the_device(fake_cupy, opt):
    def run(device):
        m = _small_cnn()
        o = opt(m.parameters())  # before the move, as in PyTorch tutorials
        m.to(device)
        x = fb.randn(2, 1, 8, 8, generator=np.random.default_rng(1), device=device)
        y = fb.tensor([0, 2], device=device)
        for _ in range(2):
            o.zero_grad()
            fb.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
        return m
    c, g = run("cpu"), run("cuda")
    for (k, pc), pg in zip(c.state_dict().items(), g.state_dict().values()):
        np.testing.assert_allclose(pg, pc, rtol=1e-5, atol=1e-6, err_msg=k)
    assert all(_on_device(p) for p in g.parameters())
    assert all(_on_device(fb.tensor(v)) for s in [*g.parameters()] for v in [s.grad.data])


# ------------------------------------------------------------------------ checkpoints
def test_checkpoint_saved_from_the_gpu_loads_without_cupy(tmp_path, monkeypatch):
    from filterbank.serialization import load, save

    path = tmp_path / "gpu.safetensors"
    with installed():
        m = _small_cnn()
        w = fb.tensor([1.0, 2.0], requires_grad=True).cuda()
        save({"model": m.cuda().state_dict(), "w": w.detach(), "step": 3}, path)
        back = load(path, map_location="cuda")
        assert _on_device(back["w"]) and type(back["model"]["0.weight"]) is np.ndarray
    monkeypatch.setitem(sys.modules, "cupy", None)  # now a machine without CuPy
    obj = load(path)
    assert obj["step"] == 3 and type(obj["w"].data) is np.ndarray
    assert obj["w"].tolist() == [1.0, 2.0]
    fresh = _small_cnn(seed=1)
    fresh.load_state_dict(obj["model"])
    ref = _small_cnn()
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k], v)
    with pytest.raises(ValueError, match=r"device 'cuda' is not available: CuPy is not "
                                         r"installed"):
        load(path, map_location="cuda")


def test_gpu_arrays_are_stored_from_host_memory(fake_cupy):
    # real CuPy arrays are no numpy.ndarray: what goes to safetensors must be a host copy
    from filterbank.serialization import encode_tree

    tensors: dict = {}
    tree = encode_tree({"t": fb.ones(2).cuda(), "a": fake_cupy.zeros(3)}, "", tensors, "save")
    assert tree["t"]["tensor"] == "Tensor" and "tensor" not in tree["a"]
    assert {k: type(v) for k, v in tensors.items()} == {"t": np.ndarray, "a": np.ndarray}


def test_gpu_tensor_with_grad_saves_through_fb_save(fake_cupy, tmp_path):
    p = fb.nn.Linear(2, 2).cuda().weight  # a Parameter whose array is on the GPU
    assert isinstance(p, fb.nn.Parameter) and _on_device(p)
    fb.save({"p": p}, tmp_path / "p.safetensors")
    back = fb.load(tmp_path / "p.safetensors")
    assert isinstance(back["p"], fb.nn.Parameter) and back["p"].requires_grad
    assert type(back["p"].data) is np.ndarray


# ---------------------------------------------------------------------------- trainer
def test_trainer_on_the_device_matches_the_cpu_run(fake_cupy):
    from filterbank.data import DataLoader, TensorDataset
    from filterbank.train import Trainer

    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 12)

    def run(device):
        m = _small_cnn()
        t = Trainer(m, fb.optim.SGD(m.parameters(), lr=0.05, momentum=0.9),
                    fb.nn.CrossEntropyLoss(), device=device, progress=False,
                    tune_allocator=False)
        h = t.fit(DataLoader(TensorDataset(x, y), batch_size=4), epochs=2, verbose=0)
        return m, h, t.evaluate(x, y), t.predict(x)

    mc, hc, ec, pc = run(None)
    mg, hg, eg, pg = run("cuda")
    assert all(_on_device(p) for p in mg.parameters())
    np.testing.assert_allclose(hg["loss"], hc["loss"], rtol=1e-5)
    np.testing.assert_allclose(hg["accuracy"], hc["accuracy"])
    assert eg["loss"] == pytest.approx(ec["loss"], rel=1e-5)
    assert type(pg) is np.ndarray
    np.testing.assert_allclose(pg, pc, rtol=1e-4, atol=1e-5)


# ------------------------------------------- tests/gpu's checks, on the fake device
def test_gpu_checks_moves_and_checkpoint_on_the_fake(fake_cupy, tmp_path):
    from gpu import checks

    checks.check_moves("cuda")
    checks.check_checkpoint("cuda", tmp_path)


def test_gpu_checks_layers_and_training_on_the_fake(fake_cupy):
    from gpu import checks

    from filterbank.models import lenet5

    for case in checks.layer_cases():
        checks.check_layer(case, "cuda")
    checks.check_training(lambda: lenet5(padding=2), "cuda", (1, 28, 28), steps=2, batch=2)


# ------------------------------------------------------------- bench/gpu_resnet.py
def _bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "gpu_resnet.py"
    spec = importlib.util.spec_from_file_location("gpu_resnet", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_bench_exits_with_its_reason_without_a_gpu(monkeypatch, capsys, tmp_path):
    bench = _bench()
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert bench.main(["--out", str(tmp_path / "r.json")]) == 2
    assert "no GPU benchmark here: CuPy is not installed" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
    with installed(device_count=0):
        assert bench.main(["--out", str(tmp_path / "r.json")]) == 2
    assert "CuPy is installed but finds no GPU" in capsys.readouterr().err


def test_gpu_bench_timing_alternates_and_synchronises():
    bench = _bench()
    log = []
    libs = {"a": (lambda: log.append("a"), lambda: log.append("sync a")),
            "b": (lambda: log.append("b"), lambda: log.append("sync b"))}
    res = bench.time_blocks(libs, steps=2, rounds=2, warmup=1)
    assert log == ["a", "sync a", "b", "sync b"] + 2 * ["sync a", "a", "a", "sync a",
                                                        "sync b", "b", "b", "sync b"]
    assert set(res) == {"a", "b"} and len(res["a"]["rounds"]) == 2
    assert res["a"]["min"] <= res["a"]["steps_per_s"] <= res["a"]["max"]


def test_gpu_bench_filterbank_side_runs_on_the_fake(fake_cupy, tmp_path, capsys):
    import json

    bench = _bench()
    out = tmp_path / "r.json"
    assert bench.main(["--fake", "--batch", "2", "--image", "8", "--steps", "1", "--rounds",
                       "1", "--warmup", "1", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["results"]["filterbank"]["steps_per_s"] > 0


def test_cli_train_on_the_device_writes_a_cpu_run(fake_cupy, tmp_path):
    """``filterbank train --device cuda`` trains on the (fake) GPU; the run folder's weights
    are host arrays, and the same run on the CPU gives the same test accuracy."""
    import json

    from harness import cli
    from safetensors.numpy import load_file

    args = ["train", "--model", "simple_cnn", "--dataset", "fashion-mnist", "--limit", "200",
            "--epochs", "1", "--model-arg", "width=4", "--model-arg", "hidden=16",
            "--no-progress"]
    runs = {}
    for device in ("cuda", "cpu"):
        code, out, err = cli(args + ["--device", device, "--out", tmp_path / device])
        assert code == 0, err
        runs[device] = json.loads((tmp_path / device / "config.json").read_text())
    assert runs["cuda"]["training"]["device"] == "cuda"
    assert runs["cpu"]["training"]["device"] == "cpu"
    acc = {d: r["results"]["test_accuracy"] for d, r in runs.items()}
    assert acc["cuda"] == pytest.approx(acc["cpu"], abs=0.01), acc
    weights = next((tmp_path / "cuda").glob("model*.safetensors"))
    assert all(type(a) is np.ndarray for a in load_file(weights).values())
