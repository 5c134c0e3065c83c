"""The model zoo: exact parameter counts, forward + backward on small inputs, torchvision's
state_dict names, initialisation, residual blocks against PyTorch, and the registry."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn
from filterbank.models import (
    BasicBlock,
    Bottleneck,
    available_models,
    get_model,
    lenet5,
    resnet18,
    unet,
)

_CACHE: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _free_models():
    yield
    _CACHE.clear()  # ~1 GB of parameters must not outlive this module in a full test run


def build(name: str, **kwargs):
    """Each configuration is built once per session (the big ones take a while)."""
    key = (name, tuple(sorted(kwargs.items())))
    if key not in _CACHE:
        fb.manual_seed(0)
        _CACHE[key] = get_model(name, **kwargs)
    return _CACHE[key]


# ----------------------------------------------------------------------- parameter counts
# torchvision's published numbers (weights meta "num_params"); LeNet-5 is the textbook count.
COUNTS = [
    ("lenet5", {}, 61_706),
    ("lenet5", {"padding": 2}, 61_706),
    ("alexnet", {}, 61_100_840),
    ("vgg16", {}, 138_357_544),
    ("resnet18", {}, 11_689_512),
    ("resnet34", {}, 21_797_672),
    ("resnet50", {}, 25_557_032),
    # He et al.'s CIFAR ResNets (option B shortcuts), derived in test_cifar_resnet.py
    ("resnet8", {}, 78_042),
    ("resnet20", {}, 272_474),
]


@pytest.mark.parametrize("name,kwargs,count", COUNTS,
                         ids=[f"{n}{'-' + str(k) if k else ''}" for n, k, _ in COUNTS])
def test_parameter_count(name, kwargs, count):
    model = build(name, **kwargs)
    assert model.num_parameters() == count
    assert all(p.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("name,count", [("vgg11", 132_863_336), ("vgg13", 133_047_848),
                                        ("vgg19", 143_667_240)])
def test_vgg_variant_counts_from_shapes(name, count, bn):
    """The other VGGs, counted from their layer shapes without building 130M parameters: the
    features part is built for real (it is small), the classifier is fixed."""
    from filterbank.models.vgg import CFGS, make_layers

    features = make_layers(CFGS[name], 3, batch_norm=bn)
    convs = [v for v in CFGS[name] if v != "M"]
    classifier = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    expected = count + (2 * sum(convs) if bn else 0)  # BN adds a weight and a bias per channel
    assert features.num_parameters() + classifier == expected
    if bn:
        assert sum(isinstance(m, nn.BatchNorm2d) for m in features.modules()) == len(convs)
        if name == "vgg11":
            assert expected == 132_868_840  # torchvision's vgg11_bn


# ------------------------------------------------------------------- forward + backward
# (name, kwargs, input shape, output shape): the smallest inputs each model accepts
FORWARD = [
    ("lenet5", {}, (2, 1, 32, 32), (2, 10)),
    ("lenet5", {"padding": 2, "activation": "tanh", "pool": "avg"}, (2, 1, 28, 28), (2, 10)),
    ("lenet5", {"in_channels": 3, "num_classes": 4}, (2, 3, 32, 32), (2, 4)),
    ("alexnet", {}, (2, 3, 63, 63), (2, 1000)),
    ("vgg16", {}, (2, 3, 32, 32), (2, 1000)),
    ("resnet18", {}, (2, 3, 32, 32), (2, 1000)),
    ("resnet18", {"stem": "cifar", "num_classes": 10}, (2, 3, 8, 8), (2, 10)),
    ("resnet50", {}, (2, 3, 32, 32), (2, 1000)),
    ("unet", {}, (2, 1, 16, 16), (2, 2, 16, 16)),
    ("unet", {"in_channels": 3, "num_classes": 5, "base": 4, "depth": 2}, (2, 3, 8, 12),
     (2, 5, 8, 12)),
]


@pytest.mark.parametrize("name,kwargs,in_shape,out_shape", FORWARD,
                         ids=[f"{n}{'-' + str(k) if k else ''}" for n, k, *_ in FORWARD])
def test_forward_backward(name, kwargs, in_shape, out_shape):
    model = build(name, **kwargs)
    model.train()
    model.zero_grad()
    g = np.random.default_rng(1)
    x = fb.Tensor(g.standard_normal(in_shape).astype(np.float32), requires_grad=True)
    y = model(x)
    assert y.shape == out_shape and y.dtype == np.float32
    assert np.isfinite(y.data).all()
    w = g.standard_normal(out_shape).astype(np.float32)
    (y * fb.Tensor(w)).sum().backward()
    assert x.grad is not None and x.grad.shape == in_shape and np.abs(x.grad.data).sum() > 0
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert p.grad.shape == p.shape and p.grad.dtype == np.float32, pname
        assert np.isfinite(p.grad.data).all(), pname
    # every layer that has weights takes part: the first and the last get a non-zero gradient
    params = list(model.parameters())
    assert np.abs(params[0].grad.data).sum() > 0 and np.abs(params[-1].grad.data).sum() > 0
    model.zero_grad()


def test_eval_mode_is_deterministic():
    model = build("resnet18", stem="cifar", num_classes=10)
    x = fb.randn(2, 3, 8, 8)
    model.eval()
    with fb.no_grad():
        a, b = model(x).data, model(x).data
    model.train()
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ torchvision's names
def _expand(spec: str) -> list[str]:
    """One key per line; ``bnX.*`` stands for BatchNorm's five entries, in torch's order."""
    keys = []
    for line in spec.split():
        if line.endswith(".*"):
            keys += [line[:-1] + s for s in
                     ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
        else:
            keys.append(line)
    return keys


RESNET18_KEYS = _expand("""
conv1.weight bn1.*
layer1.0.conv1.weight layer1.0.bn1.* layer1.0.conv2.weight layer1.0.bn2.*
layer1.1.conv1.weight layer1.1.bn1.* layer1.1.conv2.weight layer1.1.bn2.*
layer2.0.conv1.weight layer2.0.bn1.* layer2.0.conv2.weight layer2.0.bn2.*
layer2.0.downsample.0.weight layer2.0.downsample.1.*
layer2.1.conv1.weight layer2.1.bn1.* layer2.1.conv2.weight layer2.1.bn2.*
layer3.0.conv1.weight layer3.0.bn1.* layer3.0.conv2.weight layer3.0.bn2.*
layer3.0.downsample.0.weight layer3.0.downsample.1.*
layer3.1.conv1.weight layer3.1.bn1.* layer3.1.conv2.weight layer3.1.bn2.*
layer4.0.conv1.weight layer4.0.bn1.* layer4.0.conv2.weight layer4.0.bn2.*
layer4.0.downsample.0.weight layer4.0.downsample.1.*
layer4.1.conv1.weight layer4.1.bn1.* layer4.1.conv2.weight layer4.1.bn2.*
fc.weight fc.bias
""")


@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
def test_resnet18_state_dict_keys(stem):
    sd = build("resnet18", stem=stem, **({} if stem == "imagenet" else {"num_classes": 10})
               ).state_dict()
    assert len(RESNET18_KEYS) == 122
    assert list(sd) == RESNET18_KEYS
    shapes = {"conv1.weight": (64, 3, 7, 7) if stem == "imagenet" else (64, 3, 3, 3),
              "layer1.0.conv1.weight": (64, 64, 3, 3),
              "layer2.0.conv1.weight": (128, 64, 3, 3),
              "layer2.0.downsample.0.weight": (128, 64, 1, 1),
              "layer4.1.bn2.running_var": (512,),
              "bn1.num_batches_tracked": (),
              "fc.weight": (1000 if stem == "imagenet" else 10, 512)}
    for k, s in shapes.items():
        assert sd[k].shape == s, k
    assert sd["bn1.num_batches_tracked"].dtype == np.int64


def test_resnet50_bottleneck_keys():
    sd = build("resnet50").state_dict()
    block = [k for k in sd if k.startswith("layer1.0.")]
    assert block == _expand("""
        layer1.0.conv1.weight layer1.0.bn1.* layer1.0.conv2.weight layer1.0.bn2.*
        layer1.0.conv3.weight layer1.0.bn3.* layer1.0.downsample.0.weight layer1.0.downsample.1.*
    """)
    assert sd["layer1.0.conv3.weight"].shape == (256, 64, 1, 1)
    assert sd["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)  # stride on the 3x3 (v1.5)
    assert sd["fc.weight"].shape == (1000, 2048) and len(sd) == 320


def _weight_bias_keys(prefix, indices):
    return [f"{prefix}.{i}.{s}" for i in indices for s in ("weight", "bias")]


def test_alexnet_and_vgg16_keys():
    assert list(build("alexnet").state_dict()) == (
        _weight_bias_keys("features", [0, 3, 6, 8, 10])
        + _weight_bias_keys("classifier", [1, 4, 6]))
    sd = build("vgg16").state_dict()
    assert list(sd) == (
        _weight_bias_keys("features", [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28])
        + _weight_bias_keys("classifier", [0, 3, 6]))
    assert sd["classifier.0.weight"].shape == (4096, 25088)


def test_vgg_bn_features_forward_backward_and_keys():
    """The batch-norm variant's convolutional part (its classifier is vgg16's, tested above)."""
    from filterbank.models.vgg import CFGS, make_layers

    fb.manual_seed(0)
    features = make_layers(CFGS["vgg11"], in_channels=1, batch_norm=True)
    x = fb.randn(2, 1, 32, 32, requires_grad=True)
    y = features(x)
    assert y.shape == (2, 512, 1, 1)
    y.sum().backward()
    assert all(p.grad is not None and np.isfinite(p.grad.data).all()
               for p in features.parameters())
    assert np.abs(x.grad.data).sum() > 0
    keys = list(features.state_dict())
    assert keys[:9] == ["0.weight", "0.bias"] + _expand("1.*") + ["4.weight", "4.bias"]


def test_unet_structure():
    model = build("unet")
    sd = model.state_dict()
    assert sd["encoder.0.0.weight"].shape == (16, 1, 3, 3)
    assert sd["encoder.2.3.weight"].shape == (64, 64, 3, 3)
    assert sd["bottleneck.0.weight"].shape == (128, 64, 3, 3)
    # up-convolutions: ConvTranspose2d weights are (in, out, k, k)
    assert sd["upconv.2.weight"].shape == (128, 64, 2, 2)
    assert sd["upconv.0.weight"].shape == (32, 16, 2, 2)
    # the decoder sees the up-sampled features concatenated with the skip: 2x the channels
    assert sd["decoder.0.0.weight"].shape == (16, 32, 3, 3)
    assert sd["head.weight"].shape == (2, 16, 1, 1)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in model.modules()) == 3


# ------------------------------------------------------------------------ initialisation
def test_resnet_init_as_torchvision():
    model = build("resnet50")
    w = model.layer3[0].conv2.weight.data  # (256, 256, 3, 3): fan_out = 256 * 9
    assert abs(w.std() - np.sqrt(2 / (256 * 9))) < 0.02 * np.sqrt(2 / (256 * 9))
    assert abs(w.mean()) < 1e-3
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all((m.weight.data == 1).all() and (m.bias.data == 0).all() for m in bns)
    fb.manual_seed(0)
    zero = resnet18(stem="cifar", zero_init_residual=True)
    assert all((b.bn2.weight.data == 0).all() for b in zero.modules()
               if isinstance(b, BasicBlock))
    assert (zero.bn1.weight.data == 1).all()


def test_vgg_init_as_torchvision():
    model = build("vgg16")
    fc = model.classifier[3]
    assert abs(fc.weight.data.std() - 0.01) < 2e-4 and (fc.bias.data == 0).all()
    conv = model.features[28]  # (512, 512, 3, 3)
    assert abs(conv.weight.data.std() - np.sqrt(2 / (512 * 9))) < 0.02 * np.sqrt(2 / 4608)
    assert (conv.bias.data == 0).all()


def test_models_follow_the_global_seed():
    fb.manual_seed(3)
    a = lenet5().state_dict()
    fb.manual_seed(3)
    b = lenet5().state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


# ------------------------------------------------------- residual blocks against PyTorch
def _torch_block(block, x, torch):
    """The block's formula written with torch.nn.functional (eval-mode BatchNorm)."""
    F = torch.nn.functional

    def t(p):
        return torch.from_numpy(np.array(p.data))

    def conv(m, h):
        return F.conv2d(h, t(m.weight), None, m.stride, m.padding)

    def bn(m, h):
        return F.batch_norm(h, t(m.running_mean), t(m.running_var), t(m.weight), t(m.bias),
                            False, 0.0, m.eps)

    identity = x
    if block.downsample is not None:
        identity = bn(block.downsample[1], conv(block.downsample[0], x))
    out = F.relu(bn(block.bn1, conv(block.conv1, x)))
    if isinstance(block, Bottleneck):
        out = F.relu(bn(block.bn2, conv(block.conv2, out)))
        out = bn(block.bn3, conv(block.conv3, out))
    else:
        out = bn(block.bn2, conv(block.conv2, out))
    return F.relu(out + identity)


@pytest.mark.parametrize("block_cls,inplanes,planes,stride", [
    (BasicBlock, 8, 8, 1), (BasicBlock, 4, 8, 2), (Bottleneck, 16, 4, 1), (Bottleneck, 8, 4, 2),
])
def test_residual_block_matches_torch(block_cls, inplanes, planes, stride):
    torch = pytest.importorskip("torch")
    from filterbank.models.resnet import conv1x1

    g = np.random.default_rng(0)
    out_ch = planes * block_cls.expansion
    ds = None
    if stride != 1 or inplanes != out_ch:
        ds = nn.Sequential(conv1x1(inplanes, out_ch, stride), nn.BatchNorm2d(out_ch))
    block = block_cls(inplanes, planes, stride, ds)
    for m in block.modules():  # non-trivial running statistics and affine parameters
        if isinstance(m, nn.BatchNorm2d):
            c = m.weight.shape[0]
            m.running_mean.data[...] = g.standard_normal(c).astype(np.float32)
            m.running_var.data[...] = g.uniform(0.5, 2, c).astype(np.float32)
            m.weight.data[...] = g.uniform(0.5, 1.5, c).astype(np.float32)
            m.bias.data[...] = g.standard_normal(c).astype(np.float32)
    block.eval()
    x = g.standard_normal((2, inplanes, 6, 6)).astype(np.float32)
    with fb.no_grad():
        got = block(fb.Tensor(x))
    want = _torch_block(block, torch.from_numpy(x), torch)
    assert got.shape == tuple(want.shape) == (2, out_ch, 6 // stride, 6 // stride)
    scale = max(1.0, float(want.abs().max()))
    np.testing.assert_allclose(got.data, want.numpy(), rtol=1e-4, atol=1e-5 * scale)


# ------------------------------------------------------------------- registry and errors
def test_registry():
    zoo = ["lenet5", "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
           "vgg19", "vgg19_bn", "resnet8", "resnet20", "resnet18", "resnet34", "resnet50",
           "unet"]
    names = available_models()
    assert [n for n in names if n in zoo] == zoo  # others may register more models
    assert len(set(names)) == len(names)
    assert type(get_model("LeNet-5".replace("-", ""), padding=2)).__name__ == "LeNet5"
    assert type(get_model("ResNet18", stem="cifar")).__name__ == "ResNet"
    with pytest.raises(ValueError, match="unknown model 'resnet101'; available: lenet5"):
        get_model("resnet101")
    with pytest.raises(TypeError, match="get_model\\('lenet5'\\)"):
        get_model("lenet5", stem="cifar")


def test_errors():
    with pytest.raises(ValueError, match=r"LeNet5\(padding=0\): expected input of shape "
                                         r"\(N, C, 32, 32\).*got \(2, 1, 28, 28\)"):
        lenet5()(fb.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="activation must be 'relu' or 'tanh'"):
        lenet5(activation="sigmoid")
    with pytest.raises(ValueError, match="stem must be 'imagenet' or 'cifar', got 'tiny'"):
        resnet18(stem="tiny")
    with pytest.raises(ValueError, match=r"UNet\(depth=2\): expected .* multiples of 4, got "
                                         r"\(1, 1, 6, 8\)"):
        unet(base=2, depth=2)(fb.zeros(1, 1, 6, 8))
    with pytest.raises(ValueError, match=r"AlexNet: expected .* H, W >= 63"):
        build("alexnet")(fb.zeros(1, 3, 62, 62))
    with pytest.raises(ValueError, match=r"VGG: expected .* H, W >= 32"):
        build("vgg16")(fb.zeros(1, 3, 16, 32))


def test_simple_cnn_blocks_and_global_pooling():
    from filterbank.models import simple_cnn

    default = simple_cnn()
    assert default.num_parameters() == 313202 and "extra.0.weight" not in default.state_dict()
    deep = simple_cnn(num_classes=4, in_channels=3, input_size=64, width=16, blocks=4)
    x = fb.tensor(np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32))
    assert deep(x).shape == (2, 4)
    # blocks 3 and 4 keep 4 * width maps; the classifier sees 4x4 of them
    assert deep.extra[0].weight.shape == (64, 32, 3, 3)
    assert deep.extra[4].weight.shape == (64, 64, 3, 3)
    assert deep.fc1.weight.shape == (128, 64 * 4 * 4)
    pooled = simple_cnn(num_classes=5, in_channels=3, input_size=64, width=16, blocks=4,
                        pool="max")
    assert pooled.fc1.weight.shape == (128, 64)
    # the classifier gets the largest value of each of the last maps
    pooled.eval()
    seen = {}
    pooled.fc1.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    pooled(x)
    last = pooled.extra(pooled.act2(pooled.pool2(pooled.bn2(pooled.conv2(
        pooled.act1(pooled.pool1(pooled.bn1(pooled.conv1(x)))))))))
    np.testing.assert_allclose(seen["x"].data, last.data.max(axis=(2, 3)), rtol=1e-6)
    assert isinstance(simple_cnn(pool="avg").global_pool, nn.AdaptiveAvgPool2d)
    with pytest.raises(ValueError, match="input_size must be a multiple of 16"):
        simple_cnn(input_size=40, blocks=4)
    with pytest.raises(ValueError, match="pool must be 'flatten', 'max' or 'avg'"):
        simple_cnn(pool="sum")
    with pytest.raises(ValueError, match="blocks must be >= 2"):
        simple_cnn(blocks=1)
