"""nn.conv: Conv1d/2d/3d and ConvTranspose1d/2d/3d layers.

A registry of layer configurations (every padding mode, 'same'/'valid', strides, dilation,
groups incl. depthwise, 1x1, transposed with output_padding) runs through the generic checks:
output and all gradients against PyTorch in float32, float64 finite differences w.r.t. the
input and every parameter. Plus: PyTorch's default initialisation (statistically), repr and
state_dict names identical to PyTorch's, and errors that name the layer.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from harness import (
    HAS_TORCH,
    ModuleCase,
    assert_close,
    check_module_gradcheck,
    check_module_vs_torch,
)

import filterbank as fb

if HAS_TORCH:  # the oracle: without it only the tests marked needs_torch skip
    import torch
else:
    torch = None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")


def _quiet(make):
    """torch warns that 'same' padding with an even kernel copies the input; we know."""
    class Quiet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = make()

        def forward(self, x):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Using padding='same'")
                return self.inner(x)

        def load_state_dict(self, state, strict=True):
            return self.inner.load_state_dict(state, strict=strict)

        def named_parameters(self, *args, **kwargs):
            return self.inner.named_parameters(*args, **kwargs)

    return Quiet()


def _layer(cls_name, *args, shapes, **kwargs):
    desc = ", ".join([*map(str, args), *(f"{k}={v}" for k, v in kwargs.items())])
    return ModuleCase(
        f"{cls_name}({desc})",
        lambda: getattr(fb.nn, cls_name)(*args, **kwargs),
        lambda: _quiet(lambda: getattr(torch.nn, cls_name)(*args, **kwargs)),
        shapes)


CASES = [
    _layer("Conv2d", 3, 4, 3, shapes=[(2, 3, 6, 5)]),
    _layer("Conv2d", 2, 4, 3, padding=1, shapes=[(1, 2, 5, 5), (2, 6, 7)]),  # + unbatched
    _layer("Conv2d", 4, 4, 3, stride=2, padding=1, groups=2, shapes=[(2, 4, 7, 6)]),
    _layer("Conv2d", 2, 4, (3, 2), padding="same", dilation=(1, 2), groups=2,
           shapes=[(1, 2, 5, 6)]),
    _layer("Conv2d", 2, 2, 4, padding="same", padding_mode="reflect", shapes=[(2, 2, 5, 5)]),
    _layer("Conv2d", 2, 3, 3, padding=(2, 1), padding_mode="replicate", bias=False,
           shapes=[(1, 2, 4, 5)]),
    _layer("Conv2d", 2, 3, 3, stride=2, padding=2, padding_mode="circular",
           shapes=[(2, 2, 5, 4)]),
    _layer("Conv2d", 3, 6, 3, padding=1, groups=3, shapes=[(1, 3, 5, 5)]),  # depthwise x2
    _layer("Conv2d", 4, 3, 1, shapes=[(2, 4, 3, 4)]),  # 1x1
    _layer("Conv2d", 4, 3, 1, stride=2, shapes=[(1, 4, 5, 4)]),
    _layer("Conv2d", 3, 2, 3, padding="valid", stride=3, dilation=2, shapes=[(1, 3, 9, 8)]),
    _layer("Conv1d", 2, 3, 3, padding=1, padding_mode="reflect", shapes=[(2, 2, 7)]),
    _layer("Conv1d", 4, 2, 2, stride=2, groups=2, padding_mode="circular", padding=1,
           shapes=[(1, 4, 6), (4, 5)]),
    _layer("Conv1d", 2, 2, 5, dilation=2, padding="same", padding_mode="replicate",
           shapes=[(1, 2, 9)]),
    _layer("Conv1d", 1, 2, 3, padding=4, padding_mode="replicate", shapes=[(2, 1, 3)]),
    _layer("Conv3d", 2, 3, 3, padding=1, shapes=[(1, 2, 3, 4, 3)]),
    _layer("Conv3d", 2, 2, (2, 1, 2), stride=(1, 2, 1), padding_mode="reflect", padding=1,
           shapes=[(1, 2, 3, 4, 3)]),
    _layer("ConvTranspose2d", 3, 2, 3, stride=2, padding=1, output_padding=1,
           shapes=[(2, 3, 3, 4)]),
    _layer("ConvTranspose2d", 4, 2, 2, stride=2, groups=2, bias=False, shapes=[(1, 4, 3, 3)]),
    _layer("ConvTranspose2d", 2, 3, 3, dilation=2, padding=2, output_padding=1,
           shapes=[(1, 2, 4, 3), (2, 3, 3)]),
    _layer("ConvTranspose1d", 2, 3, 4, stride=3, padding=1, shapes=[(2, 2, 4)]),
    _layer("ConvTranspose3d", 2, 2, 2, stride=2, shapes=[(1, 2, 2, 3, 2)]),
]


@needs_torch
@pytest.mark.parametrize("case, shape", [(c, s) for c in CASES for s in c.shapes],
                         ids=lambda v: str(v))
def test_vs_torch(case, shape):
    check_module_vs_torch(case, shape)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case):
    check_module_gradcheck(case, case.shapes[0])


# ---------------------------------------------------------------------- initialisation
@needs_torch
@pytest.mark.parametrize("cls, args, kwargs, fan_in", [
    ("Conv2d", (16, 32, 3), {}, 16 * 9),
    ("Conv2d", (16, 32, (3, 5)), {"groups": 4}, 4 * 15),
    ("Conv1d", (8, 16, 7), {}, 8 * 7),
    ("Conv3d", (4, 8, 3), {}, 4 * 27),
    ("ConvTranspose2d", (16, 32, 4), {"groups": 2}, 16 * 16),  # fan_in = out / groups * k^2
])
def test_default_init_is_torch_uniform(cls, args, kwargs, fan_in):
    """W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)): range, mean and variance of the draws."""
    m = getattr(fb.nn, cls)(*args, **kwargs, generator=np.random.default_rng(0))
    tm = getattr(torch.nn, cls)(*args, **kwargs)
    assert m.weight.shape == tuple(tm.weight.shape) and m.weight.dtype == np.float32
    bound = 1 / math.sqrt(fan_in)
    for p, tp in ((m.weight, tm.weight), (m.bias, tm.bias)):
        a, t = p.data.astype(np.float64).ravel(), tp.detach().numpy().ravel()
        assert np.abs(a).max() <= bound and np.abs(t).max() <= bound
        if a.size >= 500:  # the weight: enough draws for the moments
            n = a.size
            assert abs(a.mean()) < 5 * bound / math.sqrt(3 * n)
            var = bound**2 / 3  # of U(-b, b); the sample variance has sd ~ sqrt(4/5 / n) var
            assert abs(a.var() - var) < 5 * var * math.sqrt(0.8 / n)
            assert np.abs(a).max() > 0.95 * bound


def test_init_uses_the_generator():
    a = fb.nn.Conv2d(3, 4, 3, generator=np.random.default_rng(1))
    b = fb.nn.Conv2d(3, 4, 3, generator=np.random.default_rng(1))
    c = fb.nn.Conv2d(3, 4, 3, generator=np.random.default_rng(2))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.weight.data, c.weight.data)


# ----------------------------------------------------------------------- repr and state
REPRS = [
    ("Conv2d", (3, 16, 3), {}),
    ("Conv2d", (3, 6, (3, 5)), dict(stride=2, padding=(1, 2), dilation=(1, 2), groups=3,
                                     bias=False, padding_mode="circular")),
    ("Conv2d", (3, 6, 4), dict(padding="same", padding_mode="reflect")),
    ("Conv3d", (2, 2, 3), dict(padding="valid")),
    ("Conv1d", (2, 2, 3), {}),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2,
                                        dilation=2)),
    ("ConvTranspose1d", (4, 6, 3), dict(bias=False)),
]


@needs_torch
@pytest.mark.parametrize("cls, args, kwargs", REPRS, ids=[f"{r[0]}{r[1]}" for r in REPRS])
def test_repr_and_state_dict_match_torch(cls, args, kwargs):
    m, tm = getattr(fb.nn, cls)(*args, **kwargs), getattr(torch.nn, cls)(*args, **kwargs)
    assert repr(m) == repr(tm)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                 "groups", "padding_mode", "output_padding", "transposed"):
        assert getattr(m, name) == getattr(tm, name), name


def test_lecture_example_through_the_layer():
    conv = fb.nn.Conv2d(1, 1, 2, bias=False)
    conv.weight.data[...] = [[[[1, 0], [0, 2]]]]
    x = fb.tensor([[[[1, .5, 1, 0], [0, .25, .5, 1], [1, .25, 0, 1], [.5, 0, 1, 1]]]])
    np.testing.assert_allclose(conv(x).detach().numpy()[0, 0],
                               [[1.5, 1.5, 3], [.5, .25, 2.5], [1, 2.25, 2]])


def test_transpose_output_size():
    up = fb.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = fb.zeros(1, 2, 4, 4)
    assert up(x).shape == (1, 3, 7, 7)
    assert up(x, output_size=(8, 8)).shape == (1, 3, 8, 8)
    if not HAS_TORCH:  # the shapes above stand without the oracle
        return
    tup = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    up.load_state_dict({k: v.detach().numpy() for k, v in tup.state_dict().items()})
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((1, 2, 4, 4), dtype=np.float32)
    assert_close(up(fb.tensor(xn), output_size=[1, 3, 8, 8]),
                 tup(torch.tensor(xn), output_size=[1, 3, 8, 8]))


def test_frozen_first_layer_gets_no_input_gradient():
    conv = fb.nn.Conv2d(3, 4, 3, padding=1)
    x = fb.zeros(2, 3, 5, 5)
    conv(x).sum().backward()
    assert x.grad is None and conv.weight.grad is not None and conv.bias.grad is not None


# ------------------------------------------------------------------------------ errors
LAYER_ERRORS = [
    ("channels", lambda: fb.nn.Conv2d(3, 16, 3)(fb.zeros(8, 4, 32, 32)),
     "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)): expected 3 input channels, got 4 "
     "(input shape (8, 4, 32, 32))"),
    ("rank", lambda: fb.nn.Conv2d(3, 16, 3)(fb.zeros(32, 32)),
     "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)): expected a 4-d (batched) or 3-d "
     "(unbatched) input, got shape (32, 32)"),
    ("kernel larger", lambda: fb.nn.Conv2d(3, 16, 5)(fb.zeros(1, 3, 4, 8)),
     "Conv2d(3, 16, kernel_size=(5, 5), stride=(1, 1)): the (dilated) kernel size 5 is larger "
     "than the padded input size 4"),
    ("transpose channels", lambda: fb.nn.ConvTranspose2d(4, 2, 2)(fb.zeros(1, 3, 4, 4)),
     "ConvTranspose2d(4, 2, kernel_size=(2, 2), stride=(1, 1)): expected 4 input channels, "
     "got 3"),
    ("reflect too wide", lambda: fb.nn.Conv1d(1, 1, 3, padding=3,
                                              padding_mode="reflect")(fb.zeros(1, 1, 3)),
     "Conv1d(1, 1, kernel_size=(3,), stride=(1,), padding=(3,), padding_mode=reflect): reflect "
     "padding"),
    ("groups", lambda: fb.nn.Conv2d(4, 6, 3, groups=4),
     "Conv2d: in_channels (4) and out_channels (6) must both be divisible by groups (4)"),
    ("padding mode", lambda: fb.nn.Conv2d(4, 6, 3, padding_mode="mirror"),
     "Conv2d: padding_mode must be one of"),
    ("same strided", lambda: fb.nn.Conv2d(4, 6, 3, stride=2, padding="same"),
     "Conv2d: padding='same' is not supported for strided convolutions"),
    ("kernel size", lambda: fb.nn.Conv2d(4, 6, 0), "Conv2d: expected kernel_size >= 1, got 0"),
    ("transpose padding mode", lambda: fb.nn.ConvTranspose2d(4, 6, 3, padding_mode="reflect"),
     "ConvTranspose2d: only padding_mode='zeros' is supported"),
    ("channels positive", lambda: fb.nn.Conv1d(0, 6, 3),
     "Conv1d: expected in_channels to be a positive int, got 0"),
]


@pytest.mark.parametrize("name, call, message", LAYER_ERRORS, ids=[e[0] for e in LAYER_ERRORS])
def test_errors_name_the_layer(name, call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value), str(info.value)
