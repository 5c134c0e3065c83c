"""nn.Upsample against torch.nn.Upsample: output and input gradient (float32), repr, float64
gradcheck on a sample, and errors that name the layer."""

from __future__ import annotations

import numpy as np
import pytest
from harness import HAS_TORCH, ModuleCase, check_module_gradcheck, check_module_vs_torch

import filterbank as fb
from filterbank import nn

if HAS_TORCH:  # the oracle: without it only the tests marked needs_torch skip
    import torch

    tnn = torch.nn
else:
    torch = tnn = None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")


def _case(shapes, **kw):
    text = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    return ModuleCase(f"Upsample({text})", lambda: nn.Upsample(**kw),
                      lambda: tnn.Upsample(**kw), shapes)


CASES = [
    _case([(2, 3, 4, 5), (1, 2, 3, 3)], scale_factor=2),
    _case([(2, 3, 4, 5), (2, 3, 5)], scale_factor=3, mode="nearest"),
    _case([(2, 3, 4, 5)], size=(7, 3)),
    _case([(1, 2, 5, 4)], scale_factor=0.5),
    _case([(2, 3, 4, 5)], scale_factor=2, mode="bilinear"),
    _case([(2, 3, 4, 5)], scale_factor=2, mode="bilinear", align_corners=True),
    _case([(2, 3, 4, 5)], size=(6, 9), mode="bilinear", align_corners=False),
    _case([(1, 2, 6, 7)], scale_factor=(0.5, 1.5), mode="bilinear"),
    _case([(2, 3, 5)], scale_factor=2.5, mode="linear"),
    _case([(2, 3, 5)], size=8, mode="linear", align_corners=True),
    _case([(1, 2, 2, 3, 3)], scale_factor=2, mode="trilinear"),
    _case([(1, 2, 2, 3, 3)], scale_factor=2),
    _case([(2, 3, 7, 6)], size=(3, 4), mode="area"),
    _case([(2, 3, 4, 5)], scale_factor=1.7, mode="bilinear", recompute_scale_factor=True),
]
GRID = [(c, s) for c in CASES for s in c.shapes]


def _id(v):
    return str(v) if isinstance(v, ModuleCase) else "x".join(map(str, v))


@needs_torch
@pytest.mark.parametrize("case, shape", GRID, ids=_id)
def test_vs_torch(case, shape):
    check_module_vs_torch(case, shape)


@pytest.mark.parametrize("case, shape", GRID[::3], ids=_id)
def test_gradcheck(case, shape):
    check_module_gradcheck(case, shape)


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=str)
def test_repr_matches_torch(case):
    assert repr(case.make()) == repr(case.make_torch())


def test_unet_style_decoder_step():
    """Upsample then concatenate with a skip connection: shapes line up and gradients reach
    both branches."""
    x = fb.Tensor(np.random.default_rng(0).standard_normal((2, 4, 3, 3)), requires_grad=True)
    skip = fb.Tensor(np.random.default_rng(1).standard_normal((2, 2, 6, 6)), requires_grad=True)
    y = fb.cat([nn.Upsample(scale_factor=2, mode="bilinear")(x), skip], axis=1)
    assert y.shape == (2, 6, 6, 6)
    y.sum().backward()
    # bilinear upsampling by 2 (align_corners=False) preserves the total mass of the gradient
    np.testing.assert_allclose(x.grad.numpy(), np.full(x.shape, 4.0), rtol=1e-5)
    np.testing.assert_array_equal(skip.grad.numpy(), np.ones(skip.shape, np.float32))


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"Upsample\(scale_factor=2.0, mode='bilinear'\): mode "
                       r"'bilinear' expects a 4-D \(N, C, \*spatial\) input, got a 3-D tensor "
                       r"of shape \(2, 3, 4\)"):
        nn.Upsample(scale_factor=2, mode="bilinear")(fb.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"Upsample: give exactly one of size and scale_factor"):
        nn.Upsample()
    with pytest.raises(ValueError, match=r"Upsample: mode must be one of"):
        nn.Upsample(scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match=r"Upsample: align_corners can only be set"):
        nn.Upsample(scale_factor=2, align_corners=True)
