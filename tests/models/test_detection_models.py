"""YOLO detectors: output layout of nn.YOLOv1Loss, hand-counted parameters, the paper's network
summarised once at 448x448, the tiny model end to end with the loss, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn
from filterbank.models import (
    TinyYOLO,
    YOLOv1,
    available_models,
    get_model,
    model_task,
    tiny_yolo,
    yolo_v1,
)
from filterbank.train.yolo import encode_targets


# ------------------------------------------------------------------------------ YOLO v1
@pytest.fixture(scope="module")
def paper_model():
    """The paper's network, built once (272M parameters, ~1.1 GB, ~15 s) and freed after."""
    fb.manual_seed(0)
    model = yolo_v1()
    yield model
    del model


def _conv(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + c_out  # weights + bias


def test_yolo_v1_parameter_count_by_hand(paper_model):
    """Figure 3 of the paper, layer by layer (every convolution has a bias, no BatchNorm)."""
    convs = (
        _conv(7, 3, 64)                                                   # 9,472
        + _conv(3, 64, 192)                                               # 110,784
        + _conv(1, 192, 128) + _conv(3, 128, 256)                         # 24,704 + 295,168
        + _conv(1, 256, 256) + _conv(3, 256, 512)                         # 65,792 + 1,180,160
        + 4 * (_conv(1, 512, 256) + _conv(3, 256, 512))                   # 4 x 1,311,488
        + _conv(1, 512, 512) + _conv(3, 512, 1024)                        # 262,656 + 4,719,616
        + 2 * (_conv(1, 1024, 512) + _conv(3, 512, 1024))                 # 2 x 5,244,416
        + 4 * _conv(3, 1024, 1024)                                        # 4 x 9,438,208
    )
    assert convs == 60_155_968
    fc1 = 7 * 7 * 1024 * 4096 + 4096                                      # 205,524,992
    fc2 = 4096 * 7 * 7 * (2 * 5 + 20) + 7 * 7 * 30                        # 6,022,590
    assert convs + fc1 + fc2 == 271_703_550  # "about 2.7e8"
    assert paper_model.num_parameters() == 271_703_550
    assert paper_model.features.num_parameters() == convs
    assert all(p.dtype == np.float32 for p in paper_model.parameters())


def test_yolo_v1_architecture(paper_model):
    convs = [m for m in paper_model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in paper_model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == 24 and len(linears) == 2
    assert (convs[0].kernel_size, convs[0].stride, convs[0].padding) == ((7, 7), (2, 2), (3, 3))
    assert [c.stride for c in convs].count((2, 2)) == 2  # the 7x7/2 and the 3x3/2
    assert convs[-3].stride == (2, 2) and convs[-3].out_channels == 1024
    # 1x1 reductions: every 1x1 halves (or keeps) the channels before a 3x3
    for a, b in zip(convs, convs[1:]):
        if a.kernel_size == (1, 1):
            assert b.kernel_size == (3, 3) and a.out_channels * 2 == b.out_channels
    assert all(c.padding == (c.kernel_size[0] // 2,) * 2 for c in convs)
    assert sum(isinstance(m, nn.MaxPool2d) for m in paper_model.modules()) == 4
    acts = [m for m in paper_model.modules() if isinstance(m, nn.LeakyReLU | nn.ReLU)]
    assert [getattr(m, "negative_slope", None) for m in acts] == [0.1] * 25  # the last is linear
    drops = [m for m in paper_model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 1 and drops[0].p == 0.5
    assert (linears[0].in_features, linears[0].out_features) == (7 * 7 * 1024, 4096)
    assert linears[1].out_features == 7 * 7 * 30
    assert (paper_model.S, paper_model.B, paper_model.C) == (7, 2, 20)


def test_yolo_v1_summary_at_448(paper_model):
    """The one 448x448 forward of this file: the summary traces it and prints the count."""
    lines: list[str] = []
    info = paper_model.summary((3, 448, 448), print_fn=lines.append)
    assert info["total_params"] == 271_703_550
    assert "Total params: 271,703,550" in "\n".join(lines)
    assert tuple(info["output_shape"])[1:] == (7, 7, 30)
    text = "\n".join(lines)
    assert "[-1, 1024, 7, 7]" in text and "[-1, 7, 7, 30]" in text


def test_yolo_v1_output_layout(paper_model):
    """The FC output is read as (S, S, B*5 + C) in C order: unit (i*S + j)*30 + k is cell row
    i, column j, channel k, the layout of YOLOv1Loss. The convolutions are swapped for a cheap
    stand-in (a 64x64 average pool and a 1x1 conv give the 7x7x1024 map)."""
    features = paper_model.features
    fb.manual_seed(1)
    paper_model.features = nn.Sequential(nn.AvgPool2d(64), nn.Conv2d(3, 1024, 1))
    try:
        paper_model.eval()
        x = fb.randn(2, 3, 448, 448)
        with fb.no_grad():
            y = paper_model(x).data
            flat = paper_model.classifier(paper_model.features(x)).data
    finally:
        paper_model.features = features
        paper_model.train()
    assert y.shape == (2, 7, 7, 30) and y.dtype == np.float32
    n, i, j, k = 1, 2, 5, 11
    assert y[n, i, j, k] == flat[n, (i * 7 + j) * 30 + k]
    np.testing.assert_array_equal(y.reshape(2, -1), flat)


def test_yolo_v1_errors(paper_model):
    with pytest.raises(ValueError, match=r"YOLOv1\(S=7\): expected input \(N, C, 448, 448\) "
                                         r"\(total stride 64 x S=7 cells\), got "
                                         r"\(1, 3, 224, 224\)"):
        paper_model(fb.zeros(1, 3, 224, 224))
    with pytest.raises(ValueError, match=r"got \(1, 3, 448, 447\)"):
        paper_model(fb.zeros(1, 3, 448, 447))
    with pytest.raises(ValueError, match="YOLOv1: S must be a positive int, got 0"):
        yolo_v1(S=0)
    with pytest.raises(ValueError, match="YOLOv1: B must be a positive int, got 1.5"):
        yolo_v1(B=1.5)
    with pytest.raises(ValueError, match="YOLOv1: num_classes must be a positive int, got -1"):
        yolo_v1(num_classes=-1)
    assert "S=7, B=2, C=20" in repr(paper_model).splitlines()[0]
    assert isinstance(paper_model, YOLOv1)


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
    # 128x128 with S=8 adds a fourth pooled block: 16-32-64-128, then (capped at 8w) 128, 128
    convs = [(3, 16), (16, 32), (32, 64), (64, 128), (128, 128), (128, 128)]
    count = sum(9 * a * b + 2 * b for a, b in convs) + 128 * 15 + 15
    assert count == 395_039
    assert tiny_yolo(input_size=128).num_parameters() == count
    assert tiny_yolo(input_size=64, S=4).num_parameters() == count
    # the widths stay at 8w however deep: 256x256 with S=8 is five blocks, 16-..-128-128
    assert tiny_yolo(input_size=256, S=8).num_parameters() == count + 9 * 128 * 128 + 256


def test_tiny_yolo_stride_stem():
    """stem='stride': the first down-sampling is a stride-2 convolution instead of a conv and a
    max pool; same parameters, same grid, one pool fewer."""
    fb.manual_seed(0)
    model = tiny_yolo(S=4, input_size=64, stem="stride")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].stride == (2, 2) and all(c.stride == (1, 1) for c in convs[1:])
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3
    assert model.num_parameters() == tiny_yolo(S=4, input_size=64).num_parameters()
    seen = []
    model.features[0].register_forward_hook(lambda m, a, out: seen.append(out.shape))
    assert model(fb.randn(2, 3, 64, 64)).shape == (2, 4, 4, 15)
    assert seen == [(2, 16, 32, 32)]


def _same_weights(a: nn.Module, b: nn.Module) -> None:
    b.load_state_dict(a.state_dict())


def test_tiny_yolo_head_layout_and_sigmoid():
    """The head's 1x1 conv channels go to the last axis, cell [n, i, j] = row i, column j;
    sigmoid='boxes' squashes exactly x, y, sqrt_w, sqrt_h of each box, 'all' everything."""
    fb.manual_seed(0)
    raw = tiny_yolo(S=4, B=2, C=3, input_size=32, width=4, sigmoid="none").eval()
    boxes = tiny_yolo(S=4, B=2, C=3, input_size=32, width=4, sigmoid="boxes").eval()
    every = tiny_yolo(S=4, B=2, C=3, input_size=32, width=4).eval()
    assert every.sigmoid == "all"
    _same_weights(raw, boxes)
    _same_weights(raw, every)
    g = np.random.default_rng(0)
    x = fb.Tensor(g.standard_normal((2, 3, 32, 48)).astype(np.float32))  # 4 x 6 cells
    with fb.no_grad():
        conv = raw.head(raw.features(x)).data  # (N, 13, 4, 6)
        y, z, a = raw(x).data, boxes(x).data, every(x).data
    assert y.shape == z.shape == a.shape == (2, 4, 6, 13)
    np.testing.assert_array_equal(y, conv.transpose(0, 2, 3, 1))
    box = np.zeros(13, bool)
    box[[0, 1, 2, 3, 5, 6, 7, 8]] = True  # (x, y, sqrt_w, sqrt_h) of both boxes
    np.testing.assert_allclose(z[..., box], 1 / (1 + np.exp(-y[..., box])), rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_array_equal(z[..., ~box], y[..., ~box])  # confidences, class scores
    assert ((z[..., box] > 0) & (z[..., box] < 1)).all()
    np.testing.assert_allclose(a, 1 / (1 + np.exp(-y)), rtol=1e-6, atol=1e-7)


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
    with pytest.raises(ValueError, match="TinyYOLO: sigmoid must be 'all', 'boxes' or 'none', "
                                         "got True"):
        tiny_yolo(sigmoid=True)
    with pytest.raises(ValueError, match="TinyYOLO: stem must be 'pool' or 'stride', got 'avg'"):
        tiny_yolo(stem="avg")


# --------------------------------------------------------------------- registry and CLI
def test_registered_with_num_classes_as_C():
    """The zoo's and the CLI's ``num_classes`` / ``in_channels`` arguments build detectors."""
    names = available_models()
    assert "yolo_v1" in names and "tiny_yolo" in names
    model = get_model("tiny_yolo", num_classes=4, in_channels=1, width=2)
    assert isinstance(model, TinyYOLO) and (model.C, model.B) == (4, 2)
    assert model(fb.zeros(1, 1, 64, 64)).shape == (1, 8, 8, 14)
    assert get_model("Tiny-YOLO", C=2, width=2).C == 2
    assert ("S=8, B=2, C=4, input_size=64, stride=8, sigmoid='all', stem='pool'"
            in repr(model))


def test_model_task():
    """The registry says which models are not classifiers, so a task can refuse a model whose
    output it cannot read."""
    assert [model_task(n) for n in ("yolo_v1", "Tiny-YOLO", "unet", "lenet", "resnet18")] == [
        "detect", "detect", "segment", "classify", "classify"]
    assert {model_task(n) for n in available_models()} == {"classify", "detect", "segment"}
    with pytest.raises(ValueError, match="model_task: unknown model 'yolo9'; available: lenet5"):
        model_task("yolo9")


def test_summary_cli_tiny_yolo():
    """``filterbank summary --model tiny_yolo`` goes through model_kwargs (num_classes,
    in_channels, and for multiples of 16 the detection recipe's grid: one cell per 16 pixels,
    a stride-2 stem): the model builds, and the table's last row is the grid."""
    from filterbank.train.info import summary

    lines: list[str] = []
    info = summary("tiny_yolo", (3, 64, 64), num_classes=5, echo=lines.append)
    assert info["total_params"] == 395_039
    assert any("[-1, 4, 4, 15]" in line for line in lines), "\n".join(lines)
    lines.clear()
    info = summary("tiny_yolo", (3, 48, 48), num_classes=5, echo=lines.append)
    assert any("[-1, 3, 3, 15]" in line for line in lines), "\n".join(lines)  # 16 px a cell
    info = summary("yolo_v1", None, num_classes=20, echo=lines.append)
    assert info["total_params"] == 271_703_550


def test_docstring_examples():
    import doctest
    import importlib

    for name, n in (("filterbank.models.yolo", 2), ("filterbank.models.registry", 3)):
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert result.attempted >= n and result.failed == 0, name
