"""model.summary: the nested call tree, parameter counts and shares, shapes (batch -1), kernels,
receptive fields, FLOPs, skip connections, torchinfo's memory estimate, side effects.

The LeNet-5 and ResNet numbers are counted by hand in the comments; the memory and mult-add
totals were also checked once against torchinfo 1.8 on the same models written in PyTorch
(LeNet-5: 0.05 / 0.25 / 0.30 MB, 0.42 M mult-adds; CIFAR ResNet-18: 9.83 / 44.70 / 54.54 MB,
555.43 M mult-adds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn
from filterbank.models import lenet5
from filterbank.models.resnet import BasicBlock, conv1x1, conv3x3


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 10))


class Window(nn.Module):
    """Stands in for a conv / pool layer: the attributes summary reads, and the output size
    ``floor((H + 2P - D(K - 1) - 1) / S) + 1``."""

    def __init__(self, k, s=1, p=0, d=1, channels=None, transposed=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = (k, k), (s, s), (p, p), (d, d)
        self.channels, self.transposed = channels, transposed

    def forward(self, x):
        k, s, p, d = self.kernel_size[0], self.stride[0], self.padding[0], self.dilation[0]
        if self.transposed:
            hw = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n in x.shape[2:]]
        else:
            hw = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n in x.shape[2:]]
        return fb.zeros(x.shape[0], self.channels or x.shape[1], *hw)


class Resize(nn.Module):
    """A layer without kernel attributes that changes the map size (global pool, upsample)."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        return fb.zeros(*x.shape[:2], self.size, self.size)


def _rows(model, shape, **kw):
    return model.summary(shape, print_fn=None, **kw)


def _body(table: str) -> list[str]:
    """The layer rows: between the second and the third ``====`` rule."""
    rules = [i for i, line in enumerate(table.splitlines()) if set(line) == {"="}]
    return table.splitlines()[rules[1] + 1:rules[2]]


def test_mlp_counts_and_table(capsys):
    info = mlp().summary((1, 28, 28))
    out = capsys.readouterr().out
    assert out.strip() == info["table"]
    assert [r["params"] for r in info["rows"]] == [0, 401_920, 0, 0, 262_656, 0, 0, 5_130]
    assert [r["type"] for r in info["rows"]] == [
        "Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [r["name"] for r in info["rows"]] == [str(i) for i in range(8)]
    assert info["total_params"] == info["trainable_params"] == 669_706
    assert info["non_trainable_params"] == 0
    for text in ("401,920", "262,656", "5,130", "Total params: 669,706",
                 "Trainable params: 669,706", "Non-trainable params: 0", "[-1, 512]", "[-1, 10]"):
        assert text in out
    assert info["rows"][1]["flops"] == 2 * 784 * 512
    assert info["total_flops"] == 2 * (784 * 512 + 512 * 512 + 512 * 10)
    assert info["activation_bytes"] == 4 * (784 + 6 * 512 + 10)
    assert info["param_bytes"] == 4 * 669_706
    assert info["input_shape"] == (1, 1, 28, 28) and info["output_shape"] == (1, 10)
    assert all(r["receptive_field"] is None for r in info["rows"])  # no spatial dims


def test_conv2d_3_to_1_channel_5x5():
    info = nn.Conv2d(3, 1, 5).summary((3, 32, 32), print_fn=None)
    (row,) = info["rows"]
    assert row["params"] == info["total_params"] == 76
    assert row["output_shape"] == (1, 1, 28, 28)
    assert row["receptive_field"] == (5, 5) and row["jump"] == (1, 1)
    assert row["flops"] == 2 * 28 * 28 * (3 * 5 * 5)
    assert "28, 28" in info["table"] and "76" in info["table"]


def test_frozen_parameters_are_non_trainable():
    model = mlp()
    model[1].requires_grad_(False)
    info = _rows(model, (784,))
    assert info["trainable_params"] == 669_706 - 401_920
    assert info["non_trainable_params"] == 401_920
    assert info["rows"][1]["trainable_params"] == 0


def test_receptive_field_arithmetic():
    # the textbook stack: conv3, conv3, pool2/2, conv3 -> fields 3, 5, 6, 10; jumps 1, 1, 2, 2
    model = nn.Sequential(Window(3, p=1), nn.ReLU(), Window(3, p=1), Window(2, s=2),
                          Window(3, p=1), Window(3, d=2), Window(3, s=2, p=1))
    rows = _rows(model, (3, 32, 32))["rows"]
    assert [r["receptive_field"][0] for r in rows] == [3, 3, 5, 6, 10, 18, 22]
    assert [r["jump"][0] for r in rows] == [1, 1, 1, 2, 2, 2, 4]
    assert [r["output_shape"][2] for r in rows] == [32, 32, 32, 16, 16, 12, 6]
    assert rows[0]["rf_start"] == (0.0, 0.0)  # padding 1 centres the first field on pixel 0
    assert "10x10 /2x2" in _rows(model, (3, 32, 32))["table"]


def test_receptive_field_without_padding_starts_inside_the_image():
    rows = _rows(nn.Sequential(Window(5), Window(2, s=2)), (1, 16, 16))["rows"]
    assert rows[0]["rf_start"] == (2.0, 2.0) and rows[1]["rf_start"] == (2.5, 2.5)


def test_residual_branch_and_resize_layers():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.after = Window(3, p=1), Window(3, p=1), Window(3, p=1)

        def forward(self, x):
            return self.after(self.b(self.a(x)) + x)  # the sum is made outside any layer

    rows = _rows(Res(), (2, 8, 8))["rows"]
    assert [r["receptive_field"][0] for r in rows] == [3, 5, 7]

    rows = _rows(nn.Sequential(Window(3, s=2, p=1), Resize(16), Resize(1)), (1, 16, 16))["rows"]
    assert rows[1]["jump"] == (1.0, 1.0) and rows[1]["receptive_field"] == (3, 3)
    assert rows[2]["receptive_field"] == (18, 18)  # global pooling sees all 16 positions

    rows = _rows(nn.Sequential(Window(3, s=2, p=1), Window(3, s=2, p=1, transposed=True)),
                 (1, 16, 16))["rows"]
    assert rows[1]["output_shape"][2:] == (15, 15) and rows[1]["jump"] == (1.0, 1.0)


def test_conv_flops_use_the_weight_shape():
    class FakeConv(Window):
        def __init__(self):
            super().__init__(3, p=1, channels=8)
            self.weight = nn.Parameter(np.zeros((8, 4, 3, 3), np.float32))

    info = _rows(FakeConv(), (4, 10, 10))
    assert info["rows"][0]["flops"] == 2 * (8 * 10 * 10) * (4 * 3 * 3)
    assert info["total_params"] == 8 * 4 * 9


def test_shape_with_batch_and_includes_batch():
    info = _rows(mlp(), (4, 784), includes_batch=True)
    assert info["output_shape"] == (4, 10)
    assert info["total_flops"] == 4 * 2 * (784 * 512 + 512 * 512 + 512 * 10)
    # default: (1, 28, 28) is one sample; a full shape is accepted when a batch dim is rejected
    fc = nn.Linear(6, 2)
    assert _rows(fc, (6,))["output_shape"] == (1, 2)
    with pytest.raises(ValueError, match="expected the input's last dim to be 6, got 5"):
        _rows(fc, (5,), includes_batch=False)


def test_no_side_effects():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    model[1].train()
    model[0].eval()
    state = fb.default_generator().bit_generator.state
    info = _rows(model, (4,))
    assert model[1].training and not model[0].training and model.training
    assert fb.default_generator().bit_generator.state == state  # dropout ran in eval mode
    assert all(p.grad is None for p in model.parameters())
    assert not model[0]._forward_hooks and not model[1]._forward_hooks
    assert info["rows"][1]["output_shape"] == (1, 4)


def test_shared_layer_counted_once_and_table_has_dotted_names():
    fc = nn.Linear(3, 3)
    model = nn.Sequential(nn.Sequential(fc, nn.ReLU()), fc)
    info = _rows(model, (3,))
    assert [r["name"] for r in info["rows"]] == ["0.0", "0.1", "0.0"]
    assert [r["params"] for r in info["rows"]] == [12, 0, 0]
    assert info["total_params"] == 12
    assert "    Linear: 0.0 " in info["table"]  # depth 2: indented twice


def test_buffers_are_reported():
    class WithBuffer(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("running", fb.zeros(5))

        def forward(self, x):
            return x

    info = _rows(WithBuffer(), (5,))
    assert info["buffer_elements"] == 5 and info["total_params"] == 0
    assert "Buffers (running statistics etc.): 5 elements" in info["table"]


def test_lenet_with_real_layers():
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))
    model.train()
    info = _rows(model, (1, 28, 28))
    rows = info["rows"]
    assert info["total_params"] == 61_706 + 32  # LeNet-5 plus the BatchNorm affine
    assert info["buffer_elements"] == 16 + 16 + 1
    assert [r["receptive_field"] for r in rows[:7]] == [
        (5, 5), (5, 5), (6, 6), (14, 14), (14, 14), (14, 14), (16, 16)]
    assert rows[6]["jump"] == (4, 4) and rows[6]["output_shape"] == (1, 16, 5, 5)
    assert rows[3]["flops"] == 2 * (16 * 10 * 10) * (6 * 5 * 5)
    assert model.training and model[4].training  # BatchNorm back in training mode
    np.testing.assert_array_equal(model[4].running_mean.numpy(), np.zeros(16, np.float32))


def test_transposed_conv_flops_and_field():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1),
                          nn.ConvTranspose2d(8, 4, 2, stride=2))
    rows = _rows(model, (3, 16, 16))["rows"]
    assert rows[1]["output_shape"] == (1, 4, 16, 16)
    assert rows[1]["flops"] == 2 * (8 * 8 * 8) * (4 * 2 * 2)
    assert rows[1]["jump"] == (1.0, 1.0) and rows[1]["receptive_field"] == (3, 3)


# ------------------------------------------------------------------ LeNet-5, counted by hand
# conv1 1->6 5x5 pad 2: 6*25 + 6 = 156, out 6x28x28 = 4,704 values, 2*4,704*25 = 235,200 FLOPs
# conv2 6->16 5x5: 16*150 + 16 = 2,416, out 16x10x10 = 1,600, 2*1,600*150 = 480,000 FLOPs
# fc1 400->120: 48,120; fc2 120->84: 10,164; fc3 84->10: 850; total 61,706
LENET_ROWS = [  # type, name, depth, input, output, kernel, params
    ("LeNet5", "", 0, (1, 1, 28, 28), (1, 10), None, 0),
    ("Conv2d", "conv1", 1, (1, 1, 28, 28), (1, 6, 28, 28), (5, 5), 156),
    ("ReLU", "act1", 1, (1, 6, 28, 28), (1, 6, 28, 28), None, 0),
    ("MaxPool2d", "pool1", 1, (1, 6, 28, 28), (1, 6, 14, 14), (2, 2), 0),
    ("Conv2d", "conv2", 1, (1, 6, 14, 14), (1, 16, 10, 10), (5, 5), 2_416),
    ("ReLU", "act2", 1, (1, 16, 10, 10), (1, 16, 10, 10), None, 0),
    ("MaxPool2d", "pool2", 1, (1, 16, 10, 10), (1, 16, 5, 5), (2, 2), 0),
    ("Flatten", "flatten", 1, (1, 16, 5, 5), (1, 400), None, 0),
    ("Linear", "fc1", 1, (1, 400), (1, 120), None, 48_120),
    ("ReLU", "act3", 1, (1, 120), (1, 120), None, 0),
    ("Linear", "fc2", 1, (1, 120), (1, 84), None, 10_164),
    ("ReLU", "act4", 1, (1, 84), (1, 84), None, 0),
    ("Linear", "fc3", 1, (1, 84), (1, 10), None, 850),
]


def test_lenet5_tree_shapes_kernels_shares_and_memory():
    info = _rows(lenet5(padding=2), (1, 28, 28))
    got = [(r["type"], r["name"] if r["depth"] else "", r["depth"], r["input_shape"],
            r["output_shape"], r["kernel_shape"], r["params"]) for r in info["tree"]]
    assert got == LENET_ROWS
    assert info["rows"] == info["tree"][1:]  # the leaves
    assert info["total_params"] == 61_706 and info["total_flops"] == 833_040
    assert all(r["sequential"] and not r["join"] for r in info["rows"])  # a plain chain
    # memory (torchinfo's estimate): input 784 floats; 2 x the outputs of the 5 layers with
    # parameters (4,704 + 1,600 + 120 + 84 + 10 = 6,518 floats); 61,706 parameter floats
    assert info["input_bytes"] == 4 * 784 == 3_136
    assert info["forward_backward_bytes"] == 2 * 4 * 6_518 == 52_144
    assert info["param_bytes"] == 4 * 61_706 == 246_824
    assert info["total_bytes"] == 3_136 + 52_144 + 246_824
    table = info["table"]
    lines = table.splitlines()
    assert lines[0] == "Model: LeNet5   input [-1, 1, 28, 28]   depth 3"
    assert lines[2].split("  ")[0] == "Layer (type: name)"
    for header in ("Input shape", "Output shape", "Kernel", "Param #", "Param %", "FLOPs"):
        assert header in lines[2]
    assert "Connected to" not in table  # nothing joins: the column is left out
    assert lines[4].split() == ["LeNet5", "[-1,", "1,", "28,", "28]", "[-1,", "10]", "--",
                                "--", "--", "--", "--"]
    assert lines[5].split() == ["Conv2d:", "conv1", "[-1,", "1,", "28,", "28]", "[-1,", "6,",
                                "28,", "28]", "5x5", "156", "0.25%", "5x5", "/1x1", "235,200"]
    fc1 = next(line for line in lines if "Linear: fc1" in line)
    assert fc1.split()[-4:] == ["48,120", "77.98%", "--", "96,000"]  # 48,120 / 61,706
    for text in ("Input size (MB): 0.0031", "Forward/backward pass size (MB): 0.0521",
                 "Params size (MB): 0.25", "Estimated Total Size (MB): 0.30",
                 "batch shown as -1"):
        assert text in table


def test_batch_size_scales_shapes_flops_and_memory():
    one = _rows(lenet5(padding=2), (1, 28, 28))
    info = _rows(lenet5(padding=2), (1, 28, 28), batch_size=64)
    assert info["batch_size"] == 64 and one["batch_size"] is None
    assert info["input_shape"] == (64, 1, 28, 28)
    assert info["rows"][0]["output_shape"] == (64, 6, 28, 28)
    assert info["total_flops"] == 64 * one["total_flops"]
    assert info["input_bytes"] == 64 * 3_136
    assert info["forward_backward_bytes"] == 64 * 52_144
    assert info["param_bytes"] == one["param_bytes"]
    assert "[64, 6, 28, 28]" in info["table"] and "-1" not in info["table"]
    assert "(batch of 64)" in info["table"]
    # a shape that already has the batch shows it as it is
    full = _rows(lenet5(padding=2), (8, 1, 28, 28), includes_batch=True)
    assert full["batch_size"] == 8 and "[8, 6, 28, 28]" in full["table"]


# ------------------------------------------------------------------ a small ResNet by hand
class SmallResNet(nn.Module):
    """stem conv3x3 3->8 (216 weights, no bias), an identity block 8->8, a projection block
    8->16 stride 2, global pool, fc 16->4."""

    def __init__(self):
        super().__init__()
        self.stem = conv3x3(3, 8)
        self.layer = nn.Sequential(
            BasicBlock(8, 8),
            BasicBlock(8, 16, stride=2,
                       downsample=nn.Sequential(conv1x1(8, 16, 2), nn.BatchNorm2d(16))))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.pool(self.layer(self.stem(x))).flatten(1))


# block 0: conv1 8*8*9 = 576, bn1 2*8 = 16, conv2 576, bn2 16                  -> 1,184
# block 1: conv1 8*16*9 = 1,152, bn1 32, conv2 16*16*9 = 2,304, bn2 32,
#          downsample conv 8*16 = 128 + bn 32                                  -> 3,680
# total 216 + 1,184 + 3,680 + fc 16*4 + 4 = 68                                 -> 5,148
def test_small_resnet_nesting_and_skip_connections():
    info = _rows(SmallResNet(), (3, 8, 8))
    tree = {r["name"]: r for r in info["tree"]}
    assert info["total_params"] == 5_148
    assert [(r["name"], r["depth"]) for r in info["tree"][:4]] == [
        ("SmallResNet", 0), ("stem", 1), ("layer", 1), ("layer.0", 2)]
    assert tree["layer.0"]["total_params"] == 1_184
    assert tree["layer.1"]["total_params"] == 3_680
    assert tree["layer.1.downsample"]["total_params"] == 160
    assert tree["layer"]["total_params"] == 1_184 + 3_680
    assert tree["layer.1.downsample.0"]["depth"] == 4
    # the skip connections: each block's second ReLU reads bn2 + the shortcut
    relus = [r for r in info["tree"] if r["type"] == "ReLU"]
    assert [(r["name"], r["join"], r["connected_to"]) for r in relus if r["join"]] == [
        ("layer.0.relu", "add", ["layer.0.bn2", "stem"]),
        ("layer.1.relu", "add", ["layer.1.bn2", "layer.1.downsample.1"]),
    ]
    # the projection block runs downsample first; conv1 then reads the block input again
    assert not tree["layer.1.conv1"]["sequential"]
    assert tree["layer.1.conv1"]["connected_to"] == ["layer.0.relu"]
    assert tree["layer.1.downsample.0"]["sequential"] and tree["fc"]["sequential"]
    assert tree["layer.0"]["residual"] == tree["layer.1"]["residual"] == "add"
    assert tree["layer"]["residual"] is None and info["tree"][0]["residual"] is None
    assert tree["layer.1"]["input_shape"] == (1, 8, 8, 8)
    assert tree["layer.1"]["output_shape"] == (1, 16, 4, 4)

    table = info["table"]
    assert "Connected to" in table
    join = next(line for line in table.splitlines() if "ReLU: layer.1.relu" in line
                and "add(" in line)
    assert join.endswith("add(layer.1.bn2, layer.1.downsample.1)")
    assert next(line for line in table.splitlines()
                if "BasicBlock: layer.0" in line).endswith("residual (add)")
    # depth 3 hides the downsample's conv and BN: its row sums them (128 + 32)
    assert "downsample.0" not in table
    ds = next(line for line in table.splitlines() if "Sequential: layer.1.downsample" in line)
    assert " 160 " in ds and "3.11%" in ds  # 160 / 5,148


def test_depth_collapses_children_into_their_parent():
    info = _rows(SmallResNet(), (3, 8, 8), depth=1)
    body = _body(info["table"])
    names = [line.split()[0] + " " + line.split()[1] if ":" in line.split()[0]
             else line.split()[0] for line in body]
    assert names == ["SmallResNet", "Conv2d: stem", "Sequential: layer",
                     "AdaptiveAvgPool2d: pool", "Linear: fc"]
    layer = body[2].split()
    assert "4,864" in layer and "94.48%" in layer  # 1,184 + 3,680 of 5,148
    top = _body(_rows(SmallResNet(), (3, 8, 8), depth=0)["table"])
    assert len(top) == 1 and "5,148" in top[0] and "100.00%" in top[0]


def test_a_block_that_returns_its_sum_feeds_the_next_one_sequentially():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x) + x  # the join is the block's own output

    info = _rows(nn.Sequential(Block(), Block(), nn.Flatten()), (2, 4, 4))
    tree = {r["name"]: r for r in info["tree"]}
    assert tree["0"]["residual"] == tree["1"]["residual"] == "add"
    assert tree["1.conv"]["sequential"] and tree["1.conv"]["connected_to"] == ["0"]
    assert tree["2"]["sequential"] and tree["2"]["connected_to"] == ["1"]


def test_columns_and_argument_errors():
    info = _rows(lenet5(padding=2), (1, 28, 28), columns=["layer", "params"])
    assert info["table"].splitlines()[2].split() == ["Layer", "(type:", "name)", "Param", "#"]
    with pytest.raises(ValueError, match="summary: expected columns among"):
        _rows(lenet5(), (1, 32, 32), columns=["layer", "weights"])
    with pytest.raises(ValueError, match="summary: expected depth to be an int >= 0, got -1"):
        _rows(lenet5(), (1, 32, 32), depth=-1)
    with pytest.raises(ValueError, match="batch_size to be an int >= 1 or None, got 0"):
        _rows(lenet5(), (1, 32, 32), batch_size=0)
    with pytest.raises(ValueError, match="input_shape must be one sample"):
        _rows(lenet5(), (2, 1, 32, 32), includes_batch=True, batch_size=2)


def test_forward_is_restored_even_when_the_first_try_fails():
    model = lenet5(padding=2)
    stored = model.conv1.forward  # a forward set on the instance must survive too
    object.__setattr__(model.conv1, "forward", stored)
    with fb.no_grad():  # the pass records its own graph, inside no_grad too
        # (1, 1, 28, 28) is first tried as one sample, rejected, then used as the full shape
        info = _rows(model, (1, 1, 28, 28))
    assert info["input_shape"] == (1, 1, 28, 28) and info["output_shape"] == (1, 10)
    assert model.conv1.__dict__["forward"] is stored
    assert all("forward" not in m.__dict__ for m in model.modules() if m is not model.conv1)
    assert all(p.grad is None for p in model.parameters())
    assert fb.is_grad_enabled()


# --------------------------------------------------- inputs too large for memory (issue 15.12)
def _small_convnet(width=16):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


class ExactSize(nn.Module):
    """Rejects every spatial size but one, as a model with a classifier sized to its input
    does: the probe passes cannot size such a model."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        if x.shape[-1] != self.size:
            raise ValueError(f"ExactSize: expected width {self.size}, got {x.shape[-1]}")
        return x


def _peak_of(fn):
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_an_input_too_large_alone_is_refused_before_any_allocation():
    model = _small_convnet()
    with pytest.raises(ValueError, match=r"input shape \(1, 3, 100000, 100000\) \(float32\) "
                                         r"alone takes 111\.8 GiB, more than the limit of"):
        _rows(model, (3, 100000, 100000))  # 112 GiB: numpy would not even try (MemoryError)
    with pytest.raises(ValueError, match=r"alone takes 1\.8 MiB, more than the limit of 1\.0 "
                                         r"MiB \(max_memory"):
        _rows(model, (3, 400, 400), max_memory=2**20)
    assert all("forward" not in m.__dict__ for m in model.modules())


def test_activations_too_large_are_refused_from_a_small_probe():
    # 3 MiB of input, ~200 MiB for the pass (two 16-map layers and their 3x3 unfoldings):
    # sized from one 64x64 sample (about 64 times less), the full pass never runs
    model = _small_convnet()
    errors = []
    # as in a fresh process: convolution buffers kept by earlier tests would be reused by the
    # probe unseen by tracemalloc (it then underestimates, and the in-pass guard refuses
    # instead, as test_a_pass_the_probe_cannot_size_... checks)
    from filterbank.functional import conv as _conv

    _conv._workspace.clear()

    def run():
        try:
            _rows(model, (3, 512, 512), max_memory=40 * 2**20)
        except ValueError as e:
            errors.append(str(e))

    peak = _peak_of(run)
    assert errors and "needs about" in errors[0], errors
    assert "scaled from a pass at 1x3x64x64), more than the limit of 40.0 MiB" in errors[0]
    assert peak < 10 * 2**20, peak  # the probes only
    assert all("forward" not in m.__dict__ for m in model.modules())
    # the same model and size within the limit: probes leave no trace in the numbers
    small = _rows(model, (3, 96, 96))
    assert small["output_shape"] == (1, 10) and small["input_shape"] == (1, 3, 96, 96)
    assert small["rows"][0]["output_shape"] == (1, 16, 96, 96)


def test_a_pass_the_probe_cannot_size_stops_at_the_layer_over_the_limit():
    model = nn.Sequential(ExactSize(256), *_small_convnet(32))
    errors = []

    def run():
        try:
            _rows(model, (3, 256, 256), max_memory=12 * 2**20)
        except ValueError as e:
            errors.append(str(e))

    peak = _peak_of(run)
    assert errors and "by the end of layer '1' of the traced forward pass (stopped there), " \
                      "more than the limit of 12.0 MiB" in errors[0], errors
    # the first convolution's output (8 MiB) and its unfolding (7 MiB), not the whole pass
    assert peak < 40 * 2**20, peak
    assert all("forward" not in m.__dict__ for m in model.modules())


@pytest.mark.parametrize("bad", [0, -5, True, 1.5, "1e9"])
def test_max_memory_errors(bad):
    with pytest.raises(ValueError, match="expected max_memory to be an int >= 1"):
        _rows(lenet5(), (1, 32, 32), max_memory=bad)


def _limited(code: str, limit: int = 2 * 2**30):
    """Run ``code`` in a subprocess whose address space is limited to ``limit`` bytes."""
    import subprocess
    import sys

    pre = ("import resource; resource.setrlimit(resource.RLIMIT_AS, "
           f"({limit}, {limit}))\n")
    return subprocess.run([sys.executable, "-c", pre + code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])


@pytest.mark.slow
@pytest.mark.parametrize("model, size, expect", [
    ("vgg16", "3 100000 100000", "input shape (1, 3, 100000, 100000) (float32) alone takes "
                                 "111.8 GiB, more than the limit of"),
    ("resnet18", "3 1500 1500", "needs about"),
    # a classifier sized to the input: refused by the input's size before the model is built,
    ("simple_cnn", "3 100000 100000", "(1, 3, 100000, 100000) (float32) alone takes 111.8 GiB"),
    # or as it is built (fc1: 91.6 GiB), by the model builder's own check
    ("simple_cnn", "1 8000 8000", "summary: model 'simple_cnn' with arguments {'num_classes': 10, "
                                  "'in_channels': 1, 'input_size': 8000} does not fit in "
                                  "memory (Unable to allocate 91.6 GiB"),
])
def test_cli_summary_of_a_huge_input_is_one_line_under_a_memory_limit(model, size, expect):
    r = _limited("import sys; from filterbank.cli import main\n"
                 f"sys.exit(main(['summary', '--model', '{model}', '--input-size', "
                 f"*'{size}'.split()]))")
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("filterbank: error: ") and expect in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stdout == ""


@pytest.mark.slow
def test_running_out_of_memory_under_a_process_limit_is_a_value_error():
    # max_memory above what the limit leaves: the pass itself fails to allocate
    r = _limited(
        "import sys\n"
        "sys.path.insert(0, 'tests/nn')\n"
        "from test_summary import ExactSize, _small_convnet\n"
        "from filterbank import nn\n"
        "model = nn.Sequential(ExactSize(4000), *_small_convnet(64))\n"
        "try:\n"
        "    model.summary((3, 4000, 4000), print_fn=None, max_memory=2**40)\n"
        "except ValueError as e:\n"
        "    print(e)\n", limit=2**30)
    assert r.returncode == 0, r.stderr
    assert "ran out of memory in the traced forward pass (Unable to allocate" in r.stdout
    assert "below the limit of 1.0 TiB" in r.stdout


class Scratch(nn.Module):
    """8 MiB of scratch space whatever the input size: a constant share of every pass."""

    def forward(self, x):
        np.ones(2**21, np.float32).sum()
        return x


def test_a_constant_share_of_the_probe_is_not_scaled_up():
    # scaled by the pixels, the 64x64 probe (8.6 MiB, nearly all scratch) would claim about
    # 16 x 8.6 MiB for 256x256; the second probe (32x32) shows that only ~0.5 MiB grows
    model = nn.Sequential(Scratch(), nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 2))
    info = _rows(model, (3, 256, 256), max_memory=60 * 2**20)
    assert info["output_shape"] == (1, 2)
