"""The CIFAR-10 ResNets of He et al. (2015, section 4.2): parameter counts derived by hand,
shapes on 28x28 and 32x32, a PyTorch twin with the same weights (train and eval mode), names,
initialisation, errors, the registry, and ``filterbank train --model resnet8``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from harness import HAS_TORCH, assert_close, cli

import filterbank as fb
from filterbank import nn
from filterbank.models import BasicBlock, CifarResNet, get_model, resnet8, resnet20
from filterbank.train import run as fbrun

needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")


# ----------------------------------------------------------------------- parameter counts
# Width w = 16, 3 input channels, 10 classes. A 3x3 convolution c_in -> c_out has 9 c_in c_out
# weights (no bias), a BatchNorm 2 c (weight, bias), the 1x1 projection c_in c_out + 2 c_out.
#   stem:   conv1 9*3*16 = 432, bn1 32                                                =    464
#   stage 1 block (16 -> 16):  2 * 9*16*16 = 4,608 + 2 BN 64                          =  4,672
#   stage 2 first block (16 -> 32, stride 2): 9*16*32 = 4,608 + 9*32*32 = 9,216
#           + projection 16*32 = 512 + 3 BN 192                                       = 14,528
#   stage 2 other block (32 -> 32): 2 * 9,216 + 2 BN 128                              = 18,560
#   stage 3 first block (32 -> 64): 9*32*64 = 18,432 + 9*64*64 = 36,864
#           + projection 32*64 = 2,048 + 3 BN 384                                     = 57,728
#   stage 3 other block (64 -> 64): 2 * 36,864 + 2 BN 256                             = 73,984
#   fc: 64*10 + 10                                                                    =    650
# resnet8  (n = 1): 464 + 4,672 + 14,528 + 57,728 + 650                               = 78,042
# resnet20 (n = 3): 78,042 + 2 * (4,672 + 18,560 + 73,984)                            = 272,474
# (The paper's 0.27M used zero-padding shortcuts, option A: 272,474 - 2,752 = 269,722.)
# One input channel (Fashion-MNIST) takes 9*2*16 = 288 off: resnet8 has 77,754.
COUNTS = [("resnet8", {}, 78_042), ("resnet20", {}, 272_474),
          ("resnet8", {"in_channels": 1}, 77_754)]


def _count_by_formula(n: int, w: int, c: int = 3, k: int = 10) -> int:
    """The same count as a formula: convolutions, BatchNorms, projections, fc."""
    widths = (w, 2 * w, 4 * w)
    convs = 9 * c * w + sum(2 * n * 9 * v * v for v in widths)
    convs -= 9 * (2 * w * 2 * w - w * 2 * w) + 9 * (4 * w * 4 * w - 2 * w * 4 * w)  # stage inputs
    bns = 2 * w + 2 * 2 * n * sum(widths)
    projections = (w * 2 * w + 2 * 2 * w) + (2 * w * 4 * w + 2 * 4 * w)
    return convs + bns + projections + 4 * w * k + k


@pytest.mark.parametrize("name,kwargs,count", COUNTS,
                         ids=["resnet8", "resnet20", "resnet8-1ch"])
def test_parameter_counts(name, kwargs, count):
    fb.manual_seed(0)
    model = get_model(name, **kwargs)
    assert model.num_parameters() == count
    assert all(p.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("depth,width", [(8, 16), (20, 16), (20, 32), (32, 8), (56, 16)])
def test_parameter_count_formula(depth, width):
    """resnet20 = 272,474 and resnet8 = 78,042 from the formula too; other depths and widths
    (``--model-arg width=32``) follow it."""
    assert _count_by_formula(1, 16) == 78_042 and _count_by_formula(3, 16) == 272_474
    fb.manual_seed(0)
    model = CifarResNet(depth, width=width)
    assert model.num_parameters() == _count_by_formula((depth - 2) // 6, width)


# ------------------------------------------------------------------- forward + backward
@pytest.mark.parametrize("name,channels,size,final", [("resnet8", 1, 28, 7),
                                                      ("resnet8", 3, 32, 8),
                                                      ("resnet20", 1, 28, 7)])
def test_forward_backward_shapes(name, channels, size, final):
    """28 -> 28, 14, 7 (Fashion-MNIST) and 32 -> 32, 16, 8 (CIFAR); every parameter gets a
    finite float32 gradient."""
    fb.manual_seed(0)
    model = get_model(name, num_classes=10, in_channels=channels).train()
    seen = {}
    for stage in ("layer1", "layer2", "layer3"):
        getattr(model, stage).register_forward_hook(
            lambda m, a, out, stage=stage: seen.__setitem__(stage, out.shape))
    g = np.random.default_rng(1)
    x = fb.Tensor(g.standard_normal((2, channels, size, size)).astype(np.float32),
                  requires_grad=True)
    y = model(x)
    assert y.shape == (2, 10) and y.dtype == np.float32
    assert seen == {"layer1": (2, 16, size, size),
                    "layer2": (2, 32, (size + 1) // 2, (size + 1) // 2),
                    "layer3": (2, 64, final, final)}
    (y * fb.Tensor(g.standard_normal((2, 10)).astype(np.float32))).sum().backward()
    assert x.grad.shape == x.shape and x.grad.dtype == np.float32
    assert np.abs(x.grad.data).sum() > 0
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == np.float32, pname
        assert np.isfinite(p.grad.data).all(), pname
    assert np.abs(model.conv1.weight.grad.data).sum() > 0


# --------------------------------------------------------------------- the PyTorch twin
def _torch_twin(depth: int, width: int, in_channels: int, num_classes: int):
    """CifarResNet written again with torch.nn, from the paper's description (not from the
    filterbank model's modules), with the same state_dict names."""
    import torch

    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:  # option B: projection where the shape changes
                self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                                 tnn.BatchNorm2d(cout))

        def forward(self, x):
            skip = x if self.downsample is None else self.downsample(x)
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + skip)

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            n = (depth - 2) // 6
            self.conv1 = tnn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(width)
            cin = width
            for i, (cout, stride) in enumerate([(width, 1), (2 * width, 2), (4 * width, 2)]):
                blocks = [Block(cin, cout, stride)] + [Block(cout, cout, 1) for _ in range(n - 1)]
                setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
                cin = cout
            self.fc = tnn.Linear(4 * width, num_classes)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(x.mean(dim=(2, 3)))

    return Net()


def _randomise_batchnorm(model, g, shifts: bool):
    """Non-trivial BatchNorm scales, and with ``shifts`` biases and running statistics (so eval
    mode tests something). Train mode keeps the biases at 0: a negative one can leave a channel
    nearly dead after the ReLU, the next BatchNorm then divides by a variance near its eps, and
    the float32 input gradient of resnet20 (batch 4, width 8) can then miss PyTorch's own
    float64 one by far more than float32 tolerance, while the two libraries agree in float64."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.weight.shape[0]
            m.weight.data[...] = g.uniform(0.5, 1.5, c).astype(np.float32)
            if shifts:
                m.bias.data[...] = (0.2 * g.standard_normal(c)).astype(np.float32)
                m.running_mean.data[...] = (0.2 * g.standard_normal(c)).astype(np.float32)
                m.running_var.data[...] = g.uniform(0.5, 2, c).astype(np.float32)


@needs_torch
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("depth,channels,size", [(8, 1, 28), (8, 3, 32), (20, 3, 32)])
def test_matches_torch_twin(depth, channels, size, mode):
    import torch

    fb.manual_seed(0)
    g = np.random.default_rng(2)
    model = CifarResNet(depth, num_classes=10, in_channels=channels, width=8)
    _randomise_batchnorm(model, g, shifts=mode == "eval")
    twin = _torch_twin(depth, 8, channels, 10)
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                          model.state_dict().items()}, strict=True)
    model.train(mode == "train")
    twin.train(mode == "train")
    x_np = g.standard_normal((4, channels, size, size)).astype(np.float32)
    x = fb.Tensor(x_np, requires_grad=True)
    tx = torch.tensor(x_np, requires_grad=True)
    y, ty = model(x), twin(tx)
    assert y.dtype == np.float32
    assert_close(y, ty, atol=1e-4, rtol=1e-3, what=f"resnet{depth} {mode} forward")
    gy = g.standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    assert x.grad.dtype == np.float32
    assert_close(x.grad, tx.grad, atol=1e-4, rtol=1e-3, what=f"resnet{depth} {mode} input grad")
    tparams = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        assert_close(p.grad, tparams[name].grad, atol=1e-4, rtol=1e-3, what=f"grad of {name}")
    if mode == "train":  # the running statistics moved the same way
        tbuffers = dict(twin.named_buffers())
        for name, b in model.named_buffers():
            if name.endswith(("running_mean", "running_var")):
                assert_close(b, tbuffers[name], atol=1e-5, rtol=1e-4, what=name)


# ------------------------------------------------------------------ names, init, errors
def _keys(spec: str) -> list[str]:
    """One key per word; ``bnX.*`` stands for BatchNorm's five entries, in torch's order."""
    out = []
    for word in spec.split():
        if word.endswith(".*"):
            out += [word[:-1] + s for s in ("weight", "bias", "running_mean", "running_var",
                                           "num_batches_tracked")]
        else:
            out.append(word)
    return out


def test_state_dict_names():
    fb.manual_seed(0)
    sd = resnet8().state_dict()
    assert list(sd) == _keys("""
        conv1.weight bn1.*
        layer1.0.conv1.weight layer1.0.bn1.* layer1.0.conv2.weight layer1.0.bn2.*
        layer2.0.conv1.weight layer2.0.bn1.* layer2.0.conv2.weight layer2.0.bn2.*
        layer2.0.downsample.0.weight layer2.0.downsample.1.*
        layer3.0.conv1.weight layer3.0.bn1.* layer3.0.conv2.weight layer3.0.bn2.*
        layer3.0.downsample.0.weight layer3.0.downsample.1.*
        fc.weight fc.bias
    """)
    shapes = {"conv1.weight": (16, 3, 3, 3), "layer1.0.conv1.weight": (16, 16, 3, 3),
              "layer2.0.conv1.weight": (32, 16, 3, 3),
              "layer2.0.downsample.0.weight": (32, 16, 1, 1),
              "layer3.0.downsample.0.weight": (64, 32, 1, 1), "fc.weight": (10, 64)}
    for k, s in shapes.items():
        assert sd[k].shape == s, k
    # resnet20: identity shortcuts everywhere but the first block of stages 2 and 3
    sd20 = resnet20().state_dict()
    assert [k for k in sd20 if "downsample.0" in k] == ["layer2.0.downsample.0.weight",
                                                        "layer3.0.downsample.0.weight"]
    assert "layer3.2.bn2.weight" in sd20 and "layer3.3.conv1.weight" not in sd20
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
               for m in resnet20().modules()) + 1 == 20  # 6n + 2 = 19 3x3 convs + fc


def test_init_as_resnet():
    fb.manual_seed(0)
    model = resnet20()
    w = model.layer3[1].conv2.weight.data  # (64, 64, 3, 3): fan_out = 64 * 9
    assert abs(w.std() - np.sqrt(2 / 576)) < 0.02 * np.sqrt(2 / 576) and abs(w.mean()) < 2e-3
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all((m.weight.data == 1).all() and (m.bias.data == 0).all() for m in bns)
    zero = resnet8(zero_init_residual=True)
    blocks = [b for b in zero.modules() if isinstance(b, BasicBlock)]
    assert len(blocks) == 3 and all((b.bn2.weight.data == 0).all() for b in blocks)
    assert (zero.bn1.weight.data == 1).all() and (zero.layer2[0].bn1.weight.data == 1).all()
    assert "CifarResNet(depth=8, width=16" in repr(zero)


@pytest.mark.parametrize("depth", [7, 9, 2, 0, -4, 21, 20.0, True, "20"])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match=r"CifarResNet: depth must be 6n \+ 2 with n >= 1 "
                                         rf"\(8, 14, 20, .*\), got {depth!r}"):
        CifarResNet(depth)


def test_bad_width_and_input():
    with pytest.raises(ValueError, match="CifarResNet: width must be a positive int, got 0"):
        resnet8(width=0)
    with pytest.raises(ValueError, match=r"CifarResNet: expected input \(N, C, H, W\), got "
                                         r"shape \(3, 8, 8\)"):
        resnet8()(fb.zeros(3, 8, 8))


# --------------------------------------------------------------------- registry and CLI
def test_registry_and_model_kwargs():
    assert type(get_model("ResNet20")).__name__ == "CifarResNet"
    wide = get_model("resnet20", width=32)  # the CLI's --model-arg width=32
    assert wide.fc.weight.shape == (10, 128) and wide.layer1[0].conv1.weight.shape[0] == 32
    for name in ("resnet8", "resnet20"):
        assert fbrun.model_kwargs(name, 1, (28, 28), 10) == {"num_classes": 10, "in_channels": 1}
        assert fbrun.model_kwargs(name, 3, (32, 32), 10, {"width": 32}) == {
            "num_classes": 10, "in_channels": 3, "width": 32}
    assert fbrun.model_kwargs("resnet18", 1, (28, 28), 10)["stem"] == "cifar"
    assert fbrun.model_kwargs("resnet50", 3, (64, 64), 10)["stem"] == "cifar"


def test_train_cli_resnet8(tmp_path):
    """``filterbank train --model resnet8`` end to end on 64 images of the embedded sample."""
    folder = tmp_path / "r8"
    code, out, err = cli(["train", "--model", "resnet8", "--dataset", "fashion-mnist-sample",
                          "--limit", "64", "--epochs", "1", "--no-progress", "--out", folder])
    assert code == 0, err
    assert "Total params: 77,754" in out
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == "resnet8"
    assert config["model_kwargs"] == {"num_classes": 10, "in_channels": 1}
    assert 0.0 <= config["results"]["test_accuracy"] <= 1.0


def test_docstring_examples_run():
    import doctest

    from filterbank.models import resnet

    result = doctest.testmod(resnet, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
