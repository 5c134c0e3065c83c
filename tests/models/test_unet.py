"""U-Net with the paper's unpadded convolutions: 572x572 -> 388x388, the size formula, cropped
skips against a PyTorch reference, and errors naming the level and the valid sizes nearby."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn
from filterbank.models import get_model, unet


def test_paper_572_gives_388():
    """The paper's Figure 1 (depth 4): 572 -> 568 -> 284 -> 280 -> 140 -> 136 -> 68 -> 64 -> 32
    -> 28 -> 56 -> 52 -> 104 -> 100 -> 200 -> 196 -> 392 -> 388. The sizes do not depend on
    the width, so base=2 keeps the test fast."""
    fb.manual_seed(0)
    model = unet(in_channels=1, num_classes=2, base=2, depth=4, padding="valid").eval()
    assert model.output_size(572, 572) == (388, 388)
    seen = []
    for i in reversed(range(4)):  # the decoder's outputs, deepest first
        model.decoder[i].register_forward_hook(lambda m, a, out: seen.append(out.shape[2]))
    with fb.no_grad():
        y = model(fb.zeros(1, 1, 572, 572))
    assert y.shape == (1, 2, 388, 388) and y.dtype == np.float32
    assert seen == [52, 100, 196, 388]


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_valid_output_size_formula(depth):
    """H' = H - 12 * 2^depth + 8 for every valid H; valid sizes are 2^depth apart from the
    smallest (for which every level's two convolutions still leave something)."""
    model = unet(base=1, depth=depth, padding="valid")
    valid = []
    for h in range(1, 400):
        try:
            out, _ = model.output_size(h, h)
        except ValueError:
            continue
        valid.append(h)
        assert out == h - 12 * 2 ** depth + 8
    assert np.all(np.diff(valid) == 2 ** depth)
    smallest = {1: (18, 2), 2: (44, 4), 3: (92, 4), 4: (188, 4)}[depth]
    assert (valid[0], model.output_size(valid[0], valid[0])[0]) == smallest


def _bn(F, m, h, t):
    """Training-mode BatchNorm (batch statistics), so activations stay of order 1 at every
    level and a wrong crop shows in the output."""
    return F.batch_norm(h, None, None, t(m.weight), t(m.bias), True, 0.0, m.eps)


def _torch_unet(model, x, torch):
    """The paper's U-Net written with torch.nn.functional: unpadded 3x3
    convolutions, the encoder's map centre-cropped to the decoder's, [up, skip] concatenated."""
    F = torch.nn.functional

    def t(p):
        return torch.from_numpy(np.array(p.data))

    def block(seq, h):
        for conv, bn in ((seq[0], seq[1]), (seq[3], seq[4])):
            h = F.relu(_bn(F, bn, F.conv2d(h, t(conv.weight), None, 1, 0), t))
        return h

    skips = []
    for enc in model.encoder:
        x = block(enc, x)
        skips.append(x)
        x = F.max_pool2d(x, 2)
    x = block(model.bottleneck, x)
    for i in reversed(range(model.depth)):
        up = model.upconv[i]
        x = F.conv_transpose2d(x, t(up.weight), t(up.bias), stride=2)
        s = skips[i]
        top, left = (s.shape[2] - x.shape[2]) // 2, (s.shape[3] - x.shape[3]) // 2
        s = s[:, :, top:top + x.shape[2], left:left + x.shape[3]]
        x = block(model.decoder[i], torch.cat([x, s], 1))
    return F.conv2d(x, t(model.head.weight), t(model.head.bias))


def test_valid_matches_torch_reference():
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(0)
    fb.manual_seed(0)
    model = unet(in_channels=2, num_classes=3, base=3, depth=2, padding="valid")
    for m in model.modules():  # non-trivial affine parameters
        if isinstance(m, nn.BatchNorm2d):
            c = m.weight.shape[0]
            m.weight.data[...] = g.uniform(0.5, 1.5, c).astype(np.float32)
            m.bias.data[...] = g.uniform(-0.2, 0.2, c).astype(np.float32)
    model.train()
    x = g.standard_normal((2, 2, 44, 52)).astype(np.float32)  # H and W differ: 4 x 12 out
    with fb.no_grad():
        got = model(fb.Tensor(x)).data
    want = _torch_unet(model, torch.from_numpy(x), torch).numpy()
    assert got.shape == want.shape == (2, 3, 4, 12)
    assert got.std(axis=(2, 3)).min() > 0.1  # the output varies over the pixels
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_valid_forward_backward():
    fb.manual_seed(0)
    model = unet(in_channels=1, num_classes=2, base=2, depth=2, padding="valid")
    x = fb.randn(2, 1, 48, 44, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 2, 8, 4)
    (y * fb.randn(*y.shape)).sum().backward()
    assert np.abs(x.grad.data).sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.data).all(), name
        assert np.abs(p.grad.data).sum() > 0, name


def test_same_and_valid_share_parameters():
    """Only the convolutions' padding differs: same state_dict keys and shapes, so weights load
    from one into the other; 'same' stays the default and keeps H and W."""
    same, valid = unet(base=2, depth=2), unet(base=2, depth=2, padding="valid")
    assert same.padding == "same"
    a, b = same.state_dict(), valid.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    valid.load_state_dict(a)
    convs = [m for m in valid.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.padding == (0, 0) for m in convs)
    assert all(m.padding == (1, 1) for m in same.modules()
               if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    assert same(fb.zeros(1, 1, 12, 8)).shape == (1, 2, 12, 8)
    assert same.output_size(12, 8) == (12, 8)
    model = get_model("unet", num_classes=3, in_channels=1, base=1, depth=1, padding="valid")
    assert model(fb.zeros(1, 1, 18, 20)).shape == (1, 3, 2, 4)


def test_valid_errors():
    model = unet(base=1, depth=4, padding="valid")
    with pytest.raises(ValueError, match=r"UNet\(depth=4, padding='valid'\): input H = 570 does "
                                         r"not fit the unpadded network \(encoder level 1 gives "
                                         r"279, odd, .* max pool"):
        model.output_size(570, 572)
    with pytest.raises(ValueError, match=r"valid sizes near it: 556 or 572$"):
        model.output_size(570, 572)
    with pytest.raises(ValueError, match=r"input H = 573 .*near it: 572 or 588$"):
        model.output_size(573, 572)
    with pytest.raises(ValueError, match=r"input W = 574 .*encoder level 1 gives 281, odd.*"
                                         r"near it: 572 or 588"):
        model(fb.zeros(1, 1, 572, 574))
    with pytest.raises(ValueError, match=r"input H = 100 .*encoder level 3 gives 5, odd"):
        model.output_size(100, 188)  # 96 -> 48, 44 -> 22, 18 -> 9, 5
    with pytest.raises(ValueError, match=r"H = 60 .*encoder level 3 leaves 0 .*near it: 188$"):
        model.output_size(60, 188)  # 56 -> 28, 24 -> 12, 8 -> 4, 0; nothing below 188 works
    with pytest.raises(ValueError, match=r"input H = 10 .*the bottleneck leaves -1"):
        unet(base=1, depth=1, padding="valid").output_size(10, 18)
    with pytest.raises(ValueError, match=r"input H = 14 .*decoder level 0 leaves -2 .*near it: 18"):
        unet(base=1, depth=1, padding="valid").output_size(14, 18)
    with pytest.raises(ValueError, match=r"expected input \(N, C, H, W\), got \(1, 188, 188\)"):
        model(fb.zeros(1, 188, 188))
    with pytest.raises(ValueError, match="UNet: padding must be 'same' or 'valid', got 'full'"):
        unet(padding="full")
    with pytest.raises(ValueError, match=r"UNet\(depth=2\): expected H and W positive multiples "
                                         r"of 4, got 6x8"):
        unet(base=1, depth=2).output_size(6, 8)


def test_docstring_examples():
    import doctest
    import sys

    module = sys.modules["filterbank.models.unet"]  # the package's ``unet`` is the factory
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2 and result.failed == 0
