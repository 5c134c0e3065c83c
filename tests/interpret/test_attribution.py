"""interpret: saliency, Grad-CAM, activation maximisation and DeepDream.

Saliency and Grad-CAM are compared with PyTorch on the same weights (Grad-CAM with a PyTorch
implementation of its definition written here); the gradient-ascent methods are checked for
one hand-computed step and for bit-for-bit reproducibility from the seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import assert_close

import filterbank as fb
from filterbank import nn
from filterbank.interpret import (
    GradCAMResult,
    activation_maximization,
    deep_dream,
    grad_cam,
    saliency,
)


def _net(seed=0):
    fb.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Dropout(0.5), nn.Linear(6 * 3 * 3, 5))
    rng = np.random.default_rng(seed)
    net[1].running_mean.data[...] = rng.standard_normal(4)
    net[1].running_var.data[...] = rng.random(4) + 0.5
    return net


def _torch_net(net):
    torch = pytest.importorskip("torch")
    tn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                             torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 3), torch.nn.ReLU(),
                             torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Dropout(0.5),
                             torch.nn.Linear(6 * 3 * 3, 5))
    tn.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in net.state_dict().items()})
    return tn.eval()


def _x(n=3, seed=1, size=8):
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


# ----------------------------------------------------------------------------- saliency
@pytest.mark.parametrize("target", [None, 2, [0, 4, 1]])
def test_saliency_is_torch_input_gradient(target):
    torch = pytest.importorskip("torch")
    net = _net()
    tn = _torch_net(net)
    x = _x()
    tx = torch.from_numpy(x).requires_grad_()
    logits = tn(tx)
    t = (logits.argmax(1) if target is None
         else torch.as_tensor(np.broadcast_to(target, (3,)).copy()))
    logits[torch.arange(3), t].sum().backward()
    signed = saliency(net, x, target=target, abs=False)
    assert isinstance(signed, np.ndarray) and signed.dtype == np.float32 and signed.shape == x.shape
    assert_close(signed, tx.grad)
    assert_close(saliency(net, fb.Tensor(x), target=target), tx.grad.abs())


def test_methods_restore_modes_and_leave_parameter_grads_alone():
    net = _net()
    net[7].eval()  # a mixed state must come back as it was, module by module
    frozen = net[0].weight
    frozen.requires_grad = False
    saliency(net, _x())
    grad_cam(net, "4", _x())
    activation_maximization(net, "3", 0, size=(3, 8, 8), steps=2)
    deep_dream(net, _x(1, size=12), "3", octaves=2, steps=1, jitter=2)
    assert net.training and net[1].training and not net[7].training
    assert all(p.grad is None for p in net.parameters())
    assert not frozen.requires_grad and net[3].weight.requires_grad


# ----------------------------------------------------------------------------- Grad-CAM
def _torch_grad_cam(tn, layer, x, target):
    """The definition, in PyTorch: weights = spatial mean of dy_t/dA, ReLU(sum_k w_k A_k),
    bilinear resize with align_corners=False, then min-max per image."""
    import torch

    store = {}
    h = tn[layer].register_forward_hook(lambda m, a, out: store.update(A=out))
    logits = tn(torch.from_numpy(x))
    h.remove()
    A = store["A"]
    t = (logits.argmax(1) if target is None
         else torch.as_tensor(np.broadcast_to(target, (len(x),)).copy()))
    (grad,) = torch.autograd.grad(logits[torch.arange(len(x)), t].sum(), A)
    w = grad.mean(dim=(2, 3), keepdim=True)
    raw = torch.relu((w * A).sum(1))
    up = torch.nn.functional.interpolate(raw[:, None], size=x.shape[2:], mode="bilinear",
                                         align_corners=False)[:, 0]
    lo = up.amin(dim=(1, 2), keepdim=True)
    hi = up.amax(dim=(1, 2), keepdim=True)
    span = hi - lo
    heat = torch.where(span > 0, (up - lo) / torch.where(span > 0, span, 1), 0)
    return heat, raw.detach(), t


@pytest.mark.parametrize("layer", [2, 4])
@pytest.mark.parametrize("target", [None, 3])
def test_grad_cam_matches_torch_definition(layer, target):
    torch = pytest.importorskip("torch")
    net = _net()
    tn = _torch_net(net)
    x = _x(4, seed=5, size=9)  # 9x9: the layer-4 map (7x7) is resized by a non-integer factor
    net9 = nn.Sequential(*list(net)[:6], nn.AdaptiveAvgPool2d(3), *list(net)[6:])
    tn9 = type(tn)(*list(tn)[:6], torch.nn.AdaptiveAvgPool2d(3), *list(tn)[6:])
    res = grad_cam(net9, str(layer), x, target=target)
    heat, raw, t = _torch_grad_cam(tn9.eval(), layer, x, target)
    assert isinstance(res, GradCAMResult)
    assert res.heatmap.shape == (4, 9, 9) and res.heatmap.dtype == np.float32
    assert res.raw.shape == raw.shape and res.target.tolist() == t.tolist()
    assert_close(res.raw, raw, atol=1e-5)
    assert_close(res.heatmap, heat, atol=1e-4)
    assert np.all(res.heatmap.min(axis=(1, 2)) == 0)
    hi = res.heatmap.max(axis=(1, 2))
    assert np.all((hi == 1) | (res.raw.max(axis=(1, 2)) == 0))  # 1, or a map of zeros


def test_grad_cam_layer_as_module_and_tensor_input():
    net = _net()
    x = _x(2)
    a = grad_cam(net, net[4], fb.Tensor(x), target=[1, 2])
    b = grad_cam(net, "4", x, target=[1, 2])
    assert np.array_equal(a.heatmap, b.heatmap) and np.array_equal(a.raw, b.raw)


def test_grad_cam_all_zero_map_is_zeros_not_nan():
    net = _net()
    with fb.no_grad():
        net[8].weight.data[...] = 0  # the scores do not depend on the features at all
    res = grad_cam(net, "4", _x(2))
    assert np.array_equal(res.heatmap, np.zeros((2, 8, 8), np.float32))
    assert np.array_equal(res.raw, np.zeros((2, 6, 6), np.float32))


def test_grad_cam_needs_a_convolutional_layer():
    with pytest.raises(ValueError, match=r"grad_cam: layer '8' \(Linear\) gives a 2-D output of "
                                         r"shape \(2, 5\), not a 4-D \(N, C, H, W\) feature map"):
        grad_cam(_net(), "8", _x(2))
    with pytest.raises(ValueError, match=r"layer '6' \(Flatten\) gives a 2-D output"):
        grad_cam(_net(), "6", _x(2))


# ------------------------------------------------------------------------ errors, shared
@pytest.mark.parametrize("call, exc, match", [
    (lambda n: grad_cam(n, "conv9", _x()), ValueError,
     r"grad_cam: Sequential has no layer 'conv9'; valid names are: '0', '1', '2'"),
    (lambda n: activation_maximization(n, "features", 0, size=(3, 8, 8)), ValueError,
     "activation_maximization: Sequential has no layer 'features'"),
    (lambda n: deep_dream(n, _x(1), ["3", "x"]), ValueError,
     "deep_dream: Sequential has no layer 'x'"),
    (lambda n: saliency(n, _x(), target=5), ValueError,
     r"saliency: target class 5 is out of range for a model with 5 classes \(0 to 4\)"),
    (lambda n: grad_cam(n, "4", _x(), target=[0, -1, 2]), ValueError,
     "grad_cam: target class -1 is out of range"),
    (lambda n: saliency(n, _x(), target=[0, 1]), ValueError,
     r"saliency: expected 3 targets \(one per image\), got 2"),
    (lambda n: saliency(n, _x(), target=1.5), TypeError,
     "saliency: target must be None, an int or a sequence of ints, got 1.5"),
    (lambda n: saliency(n, _x()[:, :1]), ValueError,
     r"saliency: the model takes 3-channel images \(its first Conv2d has in_channels=3\), "
     r"but x has 1 channels"),
    (lambda n: saliency(n, _x(size=10)), ValueError,
     r"saliency: the model \(Sequential\) cannot take x of shape \(3, 3, 10, 10\): "
     r"ValueError: Linear.*expected the input's last dim to be 54"),
    (lambda n: grad_cam(n, "4", _x()[0]), ValueError,
     r"grad_cam: expected x of shape \(N, C, H, W\), got shape \(3, 8, 8\) \(add a batch "
     r"axis: x\[None\]\)"),
    (lambda n: saliency(n, [[1.0]]), TypeError,
     "saliency: expected x to be a NumPy array or a Tensor of shape"),
    (lambda n: saliency("net", _x()), TypeError,
     "saliency: expected model to be an nn.Module, got str"),
    (lambda n: deep_dream(n, _x(1, size=8), "4", octaves=6, steps=1), ValueError,
     r"deep_dream: the model \(Sequential\) cannot take the octave-0 image of shape "
     r"\(1, 3, 1, 1\): ValueError: Conv2d\(4, 6"),
    (lambda n: activation_maximization(n, "3", 6, size=(3, 8, 8)), ValueError,
     r"activation_maximization: channel 6 is out of range for layer '3', which has 6 "
     r"channels \(0 to 5\)"),
    (lambda n: activation_maximization(n, "3", 0, size=(8, 8)), ValueError,
     r"size must be \(C, H, W\)"),
    (lambda n: deep_dream(n, _x(1), "3", octave_scale=1.0), ValueError,
     "octave_scale must be greater than 1"),
])
def test_errors_name_the_function_and_what_was_wrong(call, exc, match):
    with pytest.raises(exc, match=match):
        call(_net())


# ------------------------------------------------------------------ activation maximisation
def test_activation_maximization_one_step_by_hand_and_it_works():
    torch = pytest.importorskip("torch")
    net = _net()
    tn = _torch_net(net)
    x0 = (np.random.default_rng(7).standard_normal((1, 3, 8, 8)) * 0.01).astype(np.float32)
    tx = torch.from_numpy(x0).requires_grad_()
    tn[:4](tx)[:, 2].mean().backward()
    g = tx.grad.numpy()
    want = x0 + 0.05 * g / (np.sqrt(np.mean(g * g)) + 1e-8)
    got = activation_maximization(net, "3", 2, size=(3, 8, 8), steps=1, jitter=0,
                                  blur_every=0, seed=7)
    assert got.shape == (3, 8, 8) and got.dtype == np.float32
    assert_close(got, want[0], atol=1e-6)
    # with jitter: the shift drawn after the start noise, and the gradient rolled back
    rng = np.random.default_rng(14)
    x0 = (rng.standard_normal((1, 3, 8, 8)) * 0.01).astype(np.float32)
    dy, dx = (int(v) for v in rng.integers(-2, 3, size=2))
    tx = torch.from_numpy(np.roll(x0, (dy, dx), axis=(2, 3))).requires_grad_()
    tn[:4](tx)[:, 2].mean().backward()
    g = np.roll(tx.grad.numpy(), (-dy, -dx), axis=(2, 3))
    want = x0 + 0.05 * g / (np.sqrt(np.mean(g * g)) + 1e-8)
    got = activation_maximization(net, "3", 2, size=(3, 8, 8), steps=1, jitter=2,
                                  blur_every=0, seed=14)
    assert (dy, dx) != (0, 0)
    assert_close(got, want[0], atol=1e-6)
    # many steps (with jitter and blur) raise the channel's mean activation well above noise
    img = activation_maximization(net, "3", 2, size=(3, 8, 8), steps=40, seed=7)
    with torch.no_grad():
        before = tn[:4](torch.from_numpy(x0))[:, 2].mean().item()
        after = tn[:4](torch.from_numpy(img[None]))[:, 2].mean().item()
    assert after - before > 0.25


def test_activation_maximization_seed_and_inferred_size():
    net = _net()
    a = activation_maximization(net, "2", 1, steps=3, seed=3)
    assert a.shape == (3, 64, 64)  # C from the first Conv2d; the forward stops at layer 2
    b = activation_maximization(net, "2", 1, steps=3, seed=3)
    c = activation_maximization(net, "2", 1, steps=3, seed=4)
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    net.input_size = 8
    assert activation_maximization(net, net[8], 4, steps=2).shape == (3, 8, 8)  # a class unit


# ---------------------------------------------------------------------------- DeepDream
def test_deep_dream_one_step_by_hand():
    torch = pytest.importorskip("torch")
    net = _net()
    tn = _torch_net(net)
    x = _x(2, seed=3, size=10)
    tx = torch.from_numpy(x).requires_grad_()
    a3 = tn[:4](tx)
    a4 = tn[:5](tx)
    ((a3 * a3).mean() + 0.5 * (a4 * a4).mean()).backward()
    g = tx.grad.numpy()
    want = x + 1.5 * g / np.abs(g).mean(axis=(1, 2, 3), keepdims=True)
    got = deep_dream(net, x, {"3": 1.0, "4": 0.5}, octaves=1, steps=1, jitter=0)
    assert got.shape == x.shape and got.dtype == np.float32
    assert_close(got, want, atol=1e-5)


def test_deep_dream_two_octaves_with_jitter_by_hand():
    """The pyramid (bilinear, corners aligned), the jitter drawn from the seeded generator and
    rolled back, and the detail carried from the small octave to the large one."""
    torch = pytest.importorskip("torch")
    tn = _torch_net(net := _net())
    x = _x(1, seed=8, size=14)
    rng = np.random.default_rng(5)

    def step(img):
        dy, dx = (int(v) for v in rng.integers(-3, 4, size=2))
        rolled = torch.from_numpy(np.roll(img, (dy, dx), axis=(2, 3))).requires_grad_()
        a = tn[:4](rolled)
        (a * a).mean().backward()
        g = rolled.grad.numpy()
        return np.roll(rolled.detach().numpy() + 1.5 * g / np.abs(g).mean(), (-dy, -dx),
                       axis=(2, 3))

    def resize(a, size):
        return torch.nn.functional.interpolate(torch.from_numpy(a), size=size, mode="bilinear",
                                               align_corners=True).numpy()

    small = resize(x, (10, 10))  # round(14 / 1.4)
    dream_small = step(small)
    want = step(x + resize(dream_small - small, (14, 14)))
    out, levels = deep_dream(net, x, "3", octaves=2, steps=1, jitter=3, seed=5,
                             return_octaves=True)
    assert_close(levels[0], dream_small, atol=1e-5)
    assert_close(out, want, atol=1e-5)


def test_deep_dream_reproducible_bit_for_bit():
    net = _net()
    x = _x(2, seed=4, size=16)
    kw = dict(octaves=3, steps=3, jitter=4)
    a = deep_dream(net, x, ["3", "4"], seed=11, **kw)
    b = deep_dream(net, fb.Tensor(x), ["3", "4"], seed=11, **kw)
    c = deep_dream(net, x, ["3", "4"], seed=12, **kw)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    assert not np.array_equal(a, x)


def test_deep_dream_octaves_detail_and_clip():
    net = _net()
    x = _x(1, seed=6, size=20)
    out, levels = deep_dream(net, x, "3", octaves=3, octave_scale=1.4, steps=2, jitter=3,
                             return_octaves=True, clip=(-1.0, 1.0))
    assert [lv.shape[2:] for lv in levels] == [(10, 10), (14, 14), (20, 20)]
    assert out is levels[-1] and out.min() >= -1 and out.max() <= 1
    # the dream amplifies the layer's activations
    before = net[:4].eval()(fb.Tensor(np.clip(x, -1, 1)))
    after = net[:4](fb.Tensor(out))
    assert float((after * after).mean()) > float((before * before).mean())
    # no steps: the octaves are only resampled, and the detail carried up is zero
    same = deep_dream(net, x, "3", octaves=3, steps=0)
    assert_close(same, x)


def test_docstring_examples_run():
    import doctest

    import filterbank.interpret.attribution as attribution
    import filterbank.interpret.dream as dream

    for module in (attribution, dream):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0
