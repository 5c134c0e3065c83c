"""nn.norm layers: a registry of configurations checked against their PyTorch twins.

Generic checks over the registry: output and every gradient vs torch (float32), float64
gradcheck, state_dict keys and repr equal to torch's. Stateful checks: running statistics,
num_batches_tracked and evaluation outputs after several training steps, for each momentum
(including None, the cumulative average) and track_running_stats setting.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import ModuleCase, assert_close, check_module_gradcheck, check_module_vs_torch

import filterbank as fb
from filterbank import nn


def _randomize(m: nn.Module, seed: int = 0) -> nn.Module:
    """Random weight (away from 0), bias and running statistics, so no check passes by the
    accident of gamma = 1, beta = 0, mean = 0, var = 1."""
    g = np.random.default_rng(seed)
    for name, t in list(m.named_parameters()) + list(m.named_buffers()):
        if t.dtype.kind != "f":
            continue
        if name.endswith(("weight", "running_var")):
            t.data[...] = g.uniform(0.5, 1.5, t.shape)
        else:
            t.data[...] = g.standard_normal(t.shape)
    return m


def _case(name, make, make_torch, shapes, eval_mode=False, **kw):
    def build():
        m = _randomize(make())
        return m.eval() if eval_mode else m

    def build_torch():
        tm = make_torch()
        return tm.eval() if eval_mode else tm

    return ModuleCase(name, build, build_torch, shapes, **kw)


def _t():
    import torch

    return torch.nn


MODULES = [
    _case("BatchNorm1d", lambda: nn.BatchNorm1d(3), lambda: _t().BatchNorm1d(3),
          [(5, 3), (4, 3, 5)]),
    _case("BatchNorm1d_eval", lambda: nn.BatchNorm1d(3), lambda: _t().BatchNorm1d(3),
          [(1, 3), (2, 3, 4)], eval_mode=True),
    _case("BatchNorm2d", lambda: nn.BatchNorm2d(3), lambda: _t().BatchNorm2d(3),
          [(2, 3, 4, 3), (1, 3, 3, 3)]),
    _case("BatchNorm2d_eval", lambda: nn.BatchNorm2d(3), lambda: _t().BatchNorm2d(3),
          [(2, 3, 3, 2)], eval_mode=True),
    _case("BatchNorm2d_no_affine", lambda: nn.BatchNorm2d(2, affine=False),
          lambda: _t().BatchNorm2d(2, affine=False), [(3, 2, 3, 3)]),
    _case("BatchNorm2d_no_bias", lambda: nn.BatchNorm2d(2, bias=False),
          lambda: _t().BatchNorm2d(2, bias=False), [(3, 2, 2, 3)]),
    _case("BatchNorm2d_untracked_eval", lambda: nn.BatchNorm2d(3, track_running_stats=False),
          lambda: _t().BatchNorm2d(3, track_running_stats=False), [(2, 3, 3, 3)],
          eval_mode=True),
    _case("BatchNorm3d", lambda: nn.BatchNorm3d(2), lambda: _t().BatchNorm3d(2),
          [(2, 2, 2, 3, 2)]),
    _case("LayerNorm", lambda: nn.LayerNorm((3, 4)), lambda: _t().LayerNorm((3, 4)),
          [(2, 3, 4), (2, 5, 3, 4)]),
    _case("LayerNorm_int_no_bias", lambda: nn.LayerNorm(5, bias=False),
          lambda: _t().LayerNorm(5, bias=False), [(3, 5)]),
    _case("LayerNorm_no_affine", lambda: nn.LayerNorm(6, elementwise_affine=False),
          lambda: _t().LayerNorm(6, elementwise_affine=False), [(1, 6), (2, 3, 6)]),
    _case("GroupNorm", lambda: nn.GroupNorm(2, 6), lambda: _t().GroupNorm(2, 6),
          [(2, 6, 3, 3), (1, 6, 5)]),
    _case("GroupNorm_no_affine", lambda: nn.GroupNorm(4, 4, affine=False),
          lambda: _t().GroupNorm(4, 4, affine=False), [(3, 4, 2, 2)]),
    _case("InstanceNorm1d_affine", lambda: nn.InstanceNorm1d(3, affine=True),
          lambda: _t().InstanceNorm1d(3, affine=True), [(2, 3, 5), (3, 4)]),
    _case("InstanceNorm2d", lambda: nn.InstanceNorm2d(3), lambda: _t().InstanceNorm2d(3),
          [(2, 3, 3, 4), (3, 3, 3)]),
    _case("InstanceNorm2d_affine_tracked", lambda: nn.InstanceNorm2d(3, affine=True,
                                                                     track_running_stats=True),
          lambda: _t().InstanceNorm2d(3, affine=True, track_running_stats=True),
          [(2, 3, 3, 3)]),
    _case("InstanceNorm2d_tracked_eval", lambda: nn.InstanceNorm2d(3, affine=True,
                                                                   track_running_stats=True),
          lambda: _t().InstanceNorm2d(3, affine=True, track_running_stats=True),
          [(2, 3, 2, 3), (3, 2, 2)], eval_mode=True),
    _case("InstanceNorm3d_affine", lambda: nn.InstanceNorm3d(2, affine=True),
          lambda: _t().InstanceNorm3d(2, affine=True), [(2, 2, 2, 2, 3)]),
    _case("LocalResponseNorm", lambda: nn.LocalResponseNorm(3, alpha=0.5, beta=0.75, k=2.0),
          lambda: _t().LocalResponseNorm(3, alpha=0.5, beta=0.75, k=2.0),
          [(2, 5, 3, 3), (2, 4, 6)]),
    _case("LocalResponseNorm_defaults", lambda: nn.LocalResponseNorm(4),
          lambda: _t().LocalResponseNorm(4), [(2, 6, 3, 2)]),
]

SHAPED = [pytest.param(c, s, id=f"{c}-{'x'.join(map(str, s))}") for c in MODULES
          for s in c.shapes]


@pytest.mark.parametrize("case, shape", SHAPED)
def test_vs_torch(case, shape):
    pytest.importorskip("torch")
    check_module_vs_torch(case, shape)


@pytest.mark.parametrize("case, shape", SHAPED)
def test_gradcheck(case, shape):
    check_module_gradcheck(case, shape)


@pytest.mark.parametrize("case", MODULES, ids=str)
def test_state_dict_and_repr_match_torch(case):
    pytest.importorskip("torch")
    m, tm = case.make(), case.make_torch()
    sd, tsd = m.state_dict(), tm.state_dict()
    assert list(sd) == list(tsd)
    for k, v in tsd.items():
        assert sd[k].shape == tuple(v.shape), k
        assert sd[k].dtype == v.numpy().dtype, k  # float32 parameters/buffers, int64 counter
    assert repr(m) == repr(tm)
    # a torch state_dict loads one to one
    m.load_state_dict({k: v.numpy() for k, v in tsd.items()})
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, tsd[k].numpy())


# ------------------------------------------------------------------- running statistics
STATEFUL = [
    ("BatchNorm1d", {}, (6, 3)),
    ("BatchNorm1d", {"momentum": None}, (4, 3, 5)),
    ("BatchNorm2d", {}, (4, 3, 3, 2)),
    ("BatchNorm2d", {"momentum": 0.5}, (2, 3, 2, 3)),
    ("BatchNorm2d", {"momentum": None}, (3, 3, 2, 2)),
    ("BatchNorm2d", {"affine": False}, (4, 3, 2, 2)),
    ("BatchNorm2d", {"track_running_stats": False}, (4, 3, 2, 2)),
    ("BatchNorm3d", {"momentum": None}, (2, 3, 2, 2, 2)),
    ("InstanceNorm2d", {"track_running_stats": True, "affine": True}, (2, 3, 3, 3)),
    ("InstanceNorm2d", {"track_running_stats": True, "momentum": None}, (2, 3, 3, 3)),
    ("InstanceNorm1d", {"track_running_stats": True, "momentum": 0.3}, (3, 3, 4)),
]


@pytest.mark.parametrize("cls, kwargs, shape", STATEFUL,
                         ids=[f"{c}-{k}" for c, k, _ in STATEFUL])
def test_training_steps_then_eval_vs_torch(cls, kwargs, shape):
    torch = pytest.importorskip("torch")
    m = _randomize(getattr(nn, cls)(3, **kwargs))
    tm = getattr(torch.nn, cls)(3, **kwargs)
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    g = np.random.default_rng(5)
    for step in range(4):
        x = (g.standard_normal(shape) * (1 + step) + step).astype(np.float32)
        y, ty = m(fb.Tensor(x)), tm(torch.from_numpy(x))
        assert_close(y, ty, what=f"training output, step {step}")
        for k, v in tm.state_dict().items():
            got = m.state_dict()[k]
            assert got.dtype == v.numpy().dtype, f"{k} dtype {got.dtype}"
            assert_close(got, v, what=f"{k} after step {step}")
    m.eval()
    tm.eval()
    x = (g.standard_normal(shape) + 1).astype(np.float32)
    xt, txt = fb.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = m(xt), tm(txt)
    assert y.dtype == np.float32
    assert_close(y, ty, what="eval output")
    gy = g.standard_normal(shape).astype(np.float32)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    assert_close(xt.grad, txt.grad, what="eval input grad")
    tparams = dict(tm.named_parameters())
    for name, p in m.named_parameters():
        assert_close(p.grad, tparams[name].grad, what=f"eval grad of {name}")
    before = {k: v.copy() for k, v in m.state_dict().items()}
    m(fb.Tensor(x))
    for k, v in m.state_dict().items():  # evaluation never moves the statistics
        np.testing.assert_array_equal(v, before[k])


def test_momentum_none_is_the_plain_average_of_batch_statistics():
    m = nn.BatchNorm1d(2, momentum=None)
    g = np.random.default_rng(6)
    xs = [g.standard_normal((5, 2)).astype(np.float32) + i for i in range(3)]
    for x in xs:
        m(fb.Tensor(x))
    assert int(m.num_batches_tracked.data) == 3
    assert_close(m.running_mean, np.mean([x.mean(0) for x in xs], axis=0))
    assert_close(m.running_var, np.mean([x.var(0, ddof=1) for x in xs], axis=0))


def test_reset_parameters_and_running_stats():
    m = _randomize(nn.BatchNorm2d(3))
    m.num_batches_tracked.data[...] = 7
    m.reset_parameters()
    assert m.weight.tolist() == [1.0] * 3 and m.bias.tolist() == [0.0] * 3
    assert m.running_mean.tolist() == [0.0] * 3 and m.running_var.tolist() == [1.0] * 3
    assert int(m.num_batches_tracked.data) == 0


def test_untracked_batch_norm_has_no_buffers():
    m = nn.BatchNorm2d(3, track_running_stats=False)
    assert m.running_mean is None and list(m.buffers()) == []
    assert list(m.state_dict()) == ["weight", "bias"]


def test_double_module_keeps_float64():
    m = nn.BatchNorm2d(2).double()
    y = m(fb.Tensor(np.random.default_rng(7).standard_normal((3, 2, 2, 2)), dtype=np.float64))
    assert y.dtype == np.float64 and m.running_mean.dtype == np.float64


def test_instance_norm_channel_mismatch_without_parameters_warns_like_torch():
    m = nn.InstanceNorm2d(3)
    with pytest.warns(UserWarning, match=r"InstanceNorm2d\(3\): expected 3 channels, got 4"):
        y = m(fb.randn(2, 4, 3, 3))
    assert y.shape == (2, 4, 3, 3)


# ------------------------------------------------------------------------------- errors
ERRORS = [
    (lambda: nn.BatchNorm2d(16)(fb.zeros(4, 8, 5, 5)),
     r"BatchNorm2d\(16\): expected 16 channels, got 8 \(input shape \(4, 8, 5, 5\)\)"),
    (lambda: nn.BatchNorm2d(3)(fb.zeros(4, 3, 5)),
     r"BatchNorm2d\(3\): expected 4D input \(N, C, H, W\), got 3D input of shape \(4, 3, 5\)"),
    (lambda: nn.BatchNorm1d(3)(fb.zeros(2, 3, 4, 4)),
     r"BatchNorm1d\(3\): expected 2D or 3D input \(N, C\) or \(N, C, L\), got 4D input"),
    (lambda: nn.BatchNorm3d(3)(fb.zeros(2, 3, 4, 4)),
     r"BatchNorm3d\(3\): expected 5D input \(N, C, D, H, W\), got 4D"),
    (lambda: nn.BatchNorm2d(3)(fb.zeros(1, 3, 1, 1)),
     r"BatchNorm2d\(3\): expected more than 1 value per channel when training"),
    (lambda: nn.BatchNorm2d(0), r"BatchNorm2d\(0\): expected a positive integer num_features"),
    (lambda: nn.BatchNorm2d(3, eps=-1.0), r"BatchNorm2d\(3\): expected a non-negative eps"),
    (lambda: nn.LayerNorm((4, 5))(fb.zeros(2, 3, 5)),
     r"LayerNorm\(\(4, 5\)\): expected an input whose trailing dimensions are "
     r"normalized_shape=\(4, 5\), i.e. of shape \(\*, 4, 5\), got input shape \(2, 3, 5\)"),
    (lambda: nn.LayerNorm(()), r"LayerNorm\(\(\)\): expected normalized_shape to be a non-empty"),
    (lambda: nn.GroupNorm(4, 6),
     r"GroupNorm\(4, 6\): num_channels \(6\) must be divisible by num_groups \(4\)"),
    (lambda: nn.GroupNorm(2, 6)(fb.zeros(2, 4, 3)),
     r"GroupNorm\(2, 6\): expected 6 channels, got 4 \(input shape \(2, 4, 3\)\)"),
    (lambda: nn.GroupNorm(2, 6)(fb.zeros(6)),
     r"GroupNorm\(2, 6\): expected an input of shape \(N, C, \*\) with at least 2 dims"),
    (lambda: nn.InstanceNorm2d(3, affine=True)(fb.zeros(2, 4, 3, 3)),
     r"InstanceNorm2d\(3\): expected 3 channels, got 4 \(input shape \(2, 4, 3, 3\)\)"),
    (lambda: nn.InstanceNorm2d(3)(fb.zeros(2, 3, 1, 1)),
     r"InstanceNorm2d\(3\): expected more than 1 spatial element"),
    (lambda: nn.InstanceNorm2d(3)(fb.zeros(3, 3)),
     r"InstanceNorm2d\(3\): expected 3D or 4D input \(N, C, H, W\) or \(C, H, W\), got 2D"),
    (lambda: nn.LocalResponseNorm(0), r"LocalResponseNorm\(0\): expected a positive integer size"),
    (lambda: nn.LocalResponseNorm(3)(fb.zeros(2, 3)),
     r"LocalResponseNorm\(3\): expected an input of shape \(N, C, \*\) with at least 3 dims"),
]


@pytest.mark.parametrize("fn, match", ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_errors(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()


def test_non_tensor_input_is_a_type_error():
    with pytest.raises(TypeError, match=r"BatchNorm1d\(2\): expected a Tensor input, got list"):
        nn.BatchNorm1d(2)([[1.0, 2.0]])
