"""load_torch_state_dict: a PyTorch state_dict saved with safetensors.torch loads into the zoo
model of the same name and gives PyTorch's outputs (eval mode)."""

import json

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn
from filterbank.models import get_model, load_torch_state_dict, read_torch_safetensors

torch = pytest.importorskip("torch")
tnn = torch.nn
save_file = pytest.importorskip("safetensors.torch").save_file


# ------------------------------------------------------------ torch twins of the zoo models
class TorchLeNet5(tnn.Module):
    def __init__(self, num_classes=10, padding=2):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 6, 5, padding=padding)
        self.conv2 = tnn.Conv2d(6, 16, 5)
        self.fc1 = tnn.Linear(400, 120)
        self.fc2 = tnn.Linear(120, 84)
        self.fc3 = tnn.Linear(84, num_classes)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc3(torch.relu(self.fc2(x)))


class TorchSimpleCNN(tnn.Module):
    def __init__(self, width=4, hidden=16, num_classes=10):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn1 = tnn.BatchNorm2d(width)
        self.conv2 = tnn.Conv2d(width, 2 * width, 3, padding=1, bias=False)
        self.bn2 = tnn.BatchNorm2d(2 * width)
        self.fc1 = tnn.Linear(2 * width * 49, hidden)
        self.fc2 = tnn.Linear(hidden, num_classes)

    def forward(self, x):
        x = torch.relu(torch.max_pool2d(self.bn1(self.conv1(x)), 2))
        x = torch.relu(torch.max_pool2d(self.bn2(self.conv2(x)), 2))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class TorchBasicBlock(tnn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = tnn.Sequential(tnn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                             tnn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + identity)


class TorchResNet18(tnn.Module):
    """torchvision's resnet18, written out (torchvision is not a test dependency)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, planes in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", tnn.Sequential(
                TorchBasicBlock(inplanes, planes, stride), TorchBasicBlock(planes, planes, 1)))
            inplanes = planes
        self.fc = tnn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(x.mean((2, 3)))


def _randomize_bn(net):
    """Non-trivial running statistics (a fresh BatchNorm's are 0 and 1)."""
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, tnn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.num_batches_tracked.fill_(7)


CASES = {
    "lenet5": (TorchLeNet5, {"padding": 2}, (1, 28, 28)),
    "simple_cnn": (TorchSimpleCNN, {"width": 4, "hidden": 16}, (1, 28, 28)),
    "resnet18": (TorchResNet18, {"num_classes": 10}, (3, 32, 32)),
}


def _torch_file(name, path, dtype=None):
    cls, kwargs, shape = CASES[name]
    torch.manual_seed(0)
    net = cls(**({} if name == "lenet5" else {k: v for k, v in kwargs.items()
                                              if k != "padding"}))
    with torch.no_grad():
        _randomize_bn(net)
    net.eval()
    sd = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
          for k, v in net.state_dict().items()}
    if dtype is not None:  # the torch model computes with the rounded weights too
        net.load_state_dict({k: v.float() if v.is_floating_point() else v
                             for k, v in sd.items()})
    save_file(sd, str(path))
    return net, shape


@pytest.mark.parametrize("name", sorted(CASES))
def test_zoo_model_matches_torch(tmp_path, name):
    net, shape = _torch_file(name, tmp_path / "w.safetensors")
    model = get_model(name, **CASES[name][1])
    report = load_torch_state_dict(model, tmp_path / "w.safetensors")
    assert report.missing_keys == [] and report.unexpected_keys == []
    assert set(model.state_dict()) == set(net.state_dict())  # one to one, no renaming
    model.eval()
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = model(fb.tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_files_become_float32(tmp_path, dtype):
    net, shape = _torch_file("simple_cnn", tmp_path / "w.safetensors", getattr(torch, dtype))
    arrays = read_torch_safetensors(tmp_path / "w.safetensors")
    assert arrays["conv1.weight"].dtype == np.float32
    assert arrays["bn1.num_batches_tracked"].dtype == np.int64  # int buffers kept
    assert int(arrays["bn1.num_batches_tracked"]) == 7
    want_w = net.state_dict()["conv1.weight"].numpy()
    np.testing.assert_array_equal(arrays["conv1.weight"], want_w)  # exact: widening only
    model = get_model("simple_cnn", width=4, hidden=16).eval()
    load_torch_state_dict(model, tmp_path / "w.safetensors")
    assert model.bn1.num_batches_tracked.data.dtype == np.int64
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(fb.tensor(x)).detach().numpy(), want, rtol=1e-4, atol=1e-5)


def test_bfloat16_bits_by_hand(tmp_path):
    values = torch.tensor([1.0, -2.5, 3.140625, 1e-3, 65504.0, -0.0])
    save_file({"w": values.to(torch.bfloat16)}, str(tmp_path / "b.safetensors"))
    got = read_torch_safetensors(tmp_path / "b.safetensors")["w"]
    np.testing.assert_array_equal(got, values.to(torch.bfloat16).float().numpy())


def _lenet_file(tmp_path, edit):
    net, _ = _torch_file("lenet5", tmp_path / "w.safetensors")
    sd = dict(net.state_dict())
    edit(sd)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "e.safetensors"))
    return tmp_path / "e.safetensors"


def test_missing_unexpected_and_misshaped_keys_named(tmp_path):
    def edit(sd):
        del sd["fc2.bias"]
        sd["fc4.weight"] = torch.zeros(3)
        sd["conv2.weight"] = torch.zeros(16, 6, 3, 3)

    path = _lenet_file(tmp_path, edit)
    model = get_model("lenet5", padding=2)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(nn.StateDictError) as e:
        load_torch_state_dict(model, path)
    msg = str(e.value)
    assert "missing keys: fc2.bias" in msg and "unexpected keys: fc4.weight" in msg
    assert "conv2.weight: expected (16, 6, 5, 5), got (16, 6, 3, 3)" in msg
    for k, v in model.state_dict().items():  # nothing was copied
        np.testing.assert_array_equal(v, before[k])


def test_not_strict_loads_what_fits_and_reports_the_rest(tmp_path):
    def edit(sd):
        del sd["fc2.bias"]
        sd["extra.weight"] = torch.ones(2)

    path = _lenet_file(tmp_path, edit)
    model = get_model("lenet5", padding=2)
    report = load_torch_state_dict(model, path, strict=False)
    assert report.missing_keys == ["fc2.bias"] and report.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(model.fc3.weight.detach().numpy(),
                                  read_torch_safetensors(path)["fc3.weight"])


def test_swapped_keys_are_shape_errors(tmp_path):
    def edit(sd):
        sd["fc1.weight"], sd["fc2.weight"] = sd["fc2.weight"], sd["fc1.weight"]

    with pytest.raises(ValueError, match=r"fc1\.weight: expected \(120, 400\), got \(84, 120\)"):
        load_torch_state_dict(get_model("lenet5", padding=2), _lenet_file(tmp_path, edit))


def test_num_batches_tracked_may_be_absent(tmp_path):
    net, _ = _torch_file("simple_cnn", tmp_path / "w.safetensors")
    sd = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(sd, str(tmp_path / "old.safetensors"))
    report = load_torch_state_dict(get_model("simple_cnn", width=4, hidden=16),
                                   tmp_path / "old.safetensors")
    assert report.missing_keys == []


def test_data_parallel_prefix_hint(tmp_path):
    net, _ = _torch_file("lenet5", tmp_path / "w.safetensors")
    save_file({f"module.{k}": v for k, v in net.state_dict().items()},
              str(tmp_path / "dp.safetensors"))
    with pytest.raises(ValueError, match="DataParallel"):
        load_torch_state_dict(get_model("lenet5", padding=2), tmp_path / "dp.safetensors")


# ------------------------------------------------------------------------ hostile files
def _rewrite_header(src, dst, change):
    raw = src.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    change(header)
    h = json.dumps(header).encode()
    dst.write_bytes(len(h).to_bytes(8, "little") + h + raw[8 + n:])


def test_truncated_file(tmp_path):
    _torch_file("lenet5", tmp_path / "w.safetensors")
    raw = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(raw[:len(raw) - 100])
    with pytest.raises(ValueError, match=r"t\.safetensors: .*truncated"):
        load_torch_state_dict(get_model("lenet5", padding=2), tmp_path / "t.safetensors")
    (tmp_path / "h.safetensors").write_bytes(raw[:20])
    with pytest.raises(ValueError, match="header claims"):
        read_torch_safetensors(tmp_path / "h.safetensors")
    (tmp_path / "s.safetensors").write_bytes(b"abc")
    with pytest.raises(ValueError, match="too short"):
        read_torch_safetensors(tmp_path / "s.safetensors")


def test_header_lying_about_sizes(tmp_path):
    _torch_file("lenet5", tmp_path / "w.safetensors")

    def bigger_shape(h):
        h["fc1.weight"]["shape"] = [120, 4000]

    _rewrite_header(tmp_path / "w.safetensors", tmp_path / "l.safetensors", bigger_shape)
    with pytest.raises(ValueError, match=r"'fc1\.weight': shape \[120, 4000\] needs") as e:
        read_torch_safetensors(tmp_path / "l.safetensors")
    assert "written by filterbank" not in str(e.value)

    def beyond_end(h):
        h["fc1.weight"]["data_offsets"] = [0, 10**12]

    _rewrite_header(tmp_path / "w.safetensors", tmp_path / "b.safetensors", beyond_end)
    with pytest.raises(ValueError, match="outside the"):
        read_torch_safetensors(tmp_path / "b.safetensors")

    def unknown_dtype(h):
        h["fc1.weight"]["dtype"] = "F8_E4M3"

    _rewrite_header(tmp_path / "w.safetensors", tmp_path / "d.safetensors", unknown_dtype)
    with pytest.raises(ValueError, match="unsupported or missing dtype"):
        read_torch_safetensors(tmp_path / "d.safetensors")


def test_not_a_regular_file(tmp_path):
    with pytest.raises(ValueError, match="expected a regular file"):
        read_torch_safetensors(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_torch_safetensors(tmp_path / "nope.safetensors")
