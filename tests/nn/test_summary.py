"""model.summary: parameter counts, shapes, receptive fields, FLOPs, memory, side effects."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn


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
                 "Trainable params: 669,706", "Non-trainable params: 0", "(1, 512)", "(1, 10)"):
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
    assert "0.0 (Linear)" in info["table"]


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
