"""YOLO detectors: output layout of nn.YOLOv1Loss, hand-counted parameters, the paper's network
summarised once at 448x448, the tiny model end to end with the loss, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn
from filterbank.models import TinyYOLO, available_models, get_model, tiny_yolo
from filterbank.train.yolo import encode_targets


# ---------------------------------------------------------------------------- tiny YOLO
@pytest.mark.parametrize("size,S,stride,out", [
    (64, None, 8, (2, 8, 8, 15)),     # default: the grid closest to the paper's 7
    (64, 4, 16, (2, 4, 4, 15)),
    (96, None, 16, (2, 6, 6, 15)),
    (128, None, 16, (2, 8, 8, 15)),
    (128, 16, 8, (2, 16, 16, 15)),
])
def test_tiny_yolo_grid(size, S, stride, out):
    fb.manual_seed(0)
    model = tiny_yolo(S=S, input_size=size, width=4)
    assert (model.S, model.B, model.C, model.stride) == (out[1], 2, 5, stride)
    y = model(fb.randn(2, 3, size, size))
    assert y.shape == out and y.dtype == np.float32
    n_pools = sum(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert 2 ** n_pools == stride
    # conv-BN-leaky ReLU 0.1 blocks: one per pool plus two at the grid's resolution
    acts = [m for m in model.modules() if isinstance(m, nn.LeakyReLU | nn.ReLU)]
    assert [getattr(m, "negative_slope", None) for m in acts] == [0.1] * (n_pools + 2)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == n_pools + 2


def test_tiny_yolo_parameter_count_by_hand():
    """64x64, S=8 (3 max pools), width 16: widths 16-32-64 before the pools, then 128, 128.
    A conv without bias has k*k*c_in*c_out weights; its BatchNorm 2*c_out; head 1x1 + bias."""
    convs = [(3, 16), (16, 32), (32, 64), (64, 128), (128, 128)]
    backbone = sum(9 * a * b + 2 * b for a, b in convs)
    head = 128 * (2 * 5 + 5) + (2 * 5 + 5)
    assert backbone + head == 247_327
    assert tiny_yolo().num_parameters() == 247_327
    # 128x128 with S=8 adds a fourth pooled block: 16-32-64-128, then 256, 256
    convs = [(3, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 256)]
    count = sum(9 * a * b + 2 * b for a, b in convs) + 256 * 15 + 15
    assert tiny_yolo(input_size=128).num_parameters() == count == 987_295


def _same_weights(a: nn.Module, b: nn.Module) -> None:
    b.load_state_dict(a.state_dict())


def test_tiny_yolo_head_layout_and_sigmoid():
    """The head's 1x1 conv channels go to the last axis, cell [n, i, j] = row i, column j; with
    sigmoid=True exactly x, y, sqrt_w, sqrt_h of each box are squashed, the rest is linear."""
    fb.manual_seed(0)
    raw = tiny_yolo(S=4, B=2, C=3, input_size=32, width=4, sigmoid=False).eval()
    squashed = tiny_yolo(S=4, B=2, C=3, input_size=32, width=4).eval()
    _same_weights(raw, squashed)
    g = np.random.default_rng(0)
    x = fb.Tensor(g.standard_normal((2, 3, 32, 48)).astype(np.float32))  # 4 x 6 cells
    with fb.no_grad():
        conv = raw.head(raw.features(x)).data  # (N, 13, 4, 6)
        y, z = raw(x).data, squashed(x).data
    assert y.shape == z.shape == (2, 4, 6, 13)
    np.testing.assert_array_equal(y, conv.transpose(0, 2, 3, 1))
    box = np.zeros(13, bool)
    box[[0, 1, 2, 3, 5, 6, 7, 8]] = True  # (x, y, sqrt_w, sqrt_h) of both boxes
    np.testing.assert_allclose(z[..., box], 1 / (1 + np.exp(-y[..., box])), rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_array_equal(z[..., ~box], y[..., ~box])  # confidences, class scores
    assert ((z[..., box] > 0) & (z[..., box] < 1)).all()


def test_tiny_yolo_trains_with_the_loss():
    """Forward, YOLOv1Loss on encoded targets, backward: every parameter gets a gradient, and
    a few SGD steps on one batch lower the loss."""
    fb.manual_seed(0)
    model = tiny_yolo(C=3, input_size=32, S=4, width=4)
    g = np.random.default_rng(0)
    x = fb.Tensor(g.uniform(0, 1, (2, 3, 32, 32)).astype(np.float32))
    target = encode_targets([np.array([[0.1, 0.1, 0.5, 0.6]]),
                             np.array([[0.5, 0.2, 0.9, 0.5], [0.0, 0.6, 0.3, 0.95]])],
                            [np.array([0]), np.array([2, 1])], S=model.S, C=model.C)
    loss_fn = nn.YOLOv1Loss(S=model.S, B=model.B, C=model.C)
    opt = fb.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        if not losses:
            for name, p in model.named_parameters():
                assert p.grad is not None and np.isfinite(p.grad.data).all(), name
                assert np.abs(p.grad.data).sum() > 0, name
        losses.append(loss.item())
        opt.step()
    assert losses[-1] < losses[0]


def test_tiny_yolo_errors():
    model = tiny_yolo(input_size=64, width=2)
    with pytest.raises(ValueError, match=r"TinyYOLO\(input_size=64, S=8\): expected input .* "
                                         r"multiples of the total stride 8 .*got \(1, 3, 60, 64\)"):
        model(fb.zeros(1, 3, 60, 64))
    with pytest.raises(ValueError, match=r"got \(1, 3, 64, 60\)"):
        model(fb.zeros(1, 3, 64, 60))
    with pytest.raises(ValueError, match=r"TinyYOLO: input_size / S must be a power of two .*"
                                         r"input_size=64, S=5; e.g. S in \[32, 16, 8, 4, 2, 1\]"):
        tiny_yolo(S=5)
    with pytest.raises(ValueError, match=r"input_size=64, S=64"):
        tiny_yolo(S=64)  # stride 1: no down-sampling
    with pytest.raises(ValueError, match="TinyYOLO: input_size must be divisible by 2"):
        tiny_yolo(input_size=63)
    with pytest.raises(ValueError, match="TinyYOLO: C must be a positive int, got 0"):
        tiny_yolo(C=0)
    with pytest.raises(ValueError, match="TinyYOLO: width must be a positive int, got 2.5"):
        tiny_yolo(width=2.5)
    with pytest.raises(TypeError, match="TinyYOLO: sigmoid must be a bool, got 'yes'"):
        tiny_yolo(sigmoid="yes")


# --------------------------------------------------------------------- registry and CLI
def test_registered_with_num_classes_as_C():
    """The zoo's and the CLI's ``num_classes`` / ``in_channels`` arguments build detectors."""
    names = available_models()
    assert "yolo_v1" in names and "tiny_yolo" in names
    model = get_model("tiny_yolo", num_classes=4, in_channels=1, width=2)
    assert isinstance(model, TinyYOLO) and (model.C, model.B) == (4, 2)
    assert model(fb.zeros(1, 1, 64, 64)).shape == (1, 8, 8, 14)
    assert get_model("Tiny-YOLO", C=2, width=2).C == 2
    assert "S=8, B=2, C=4, input_size=64, stride=8, sigmoid=True" in repr(model)


def test_summary_cli_tiny_yolo():
    """``filterbank summary --model tiny_yolo`` goes through model_kwargs (num_classes,
    in_channels): the model builds, and the table's last row is the grid."""
    from filterbank.train.info import summary

    lines: list[str] = []
    info = summary("tiny_yolo", (3, 64, 64), num_classes=5, echo=lines.append)
    assert info["total_params"] == 247_327
    assert any("[-1, 8, 8, 15]" in line for line in lines), "\n".join(lines)
