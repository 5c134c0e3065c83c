"""nn loss modules: a registry of configurations checked against their PyTorch twins
(values, input gradients, state_dict keys and buffers), repr and constructor validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from harness import assert_close

import filterbank as fb
from filterbank import nn

rng = np.random.default_rng(0)
W3 = np.array([0.5, 1.0, 2.0])


def _logits(shape):
    return rng.standard_normal(shape)


def _probs(shape):
    return rng.uniform(0.05, 0.95, shape)


def _labels(c):
    return lambda shape: rng.integers(0, c, (shape[0],) + shape[2:]).astype(np.int64)


@dataclass
class LossCase:
    """``cls(**kwargs)`` against ``torch.nn.<cls name>(**kwargs)`` (arrays become tensors)."""

    cls: type
    kwargs: dict[str, Any]
    shape: tuple[int, ...]
    make_input: Any = _logits
    make_target: Any = None  # default: same shape as the input, standard normal

    def __str__(self) -> str:
        return f"{self.cls.__name__}({', '.join(f'{k}' for k in self.kwargs)})"

    def torch_module(self):
        import torch

        kw = {k: (torch.tensor(np.asarray(v, np.float32)) if isinstance(v, np.ndarray) else v)
              for k, v in self.kwargs.items()}
        return getattr(torch.nn, self.cls.__name__)(**kw)

    def sample(self):
        x = self.make_input(self.shape)
        t = (self.make_target or (lambda s: rng.standard_normal(s)))(self.shape)
        return x, t


CASES = [
    LossCase(nn.MSELoss, {}, (4, 3)),
    LossCase(nn.MSELoss, {"reduction": "sum"}, (2, 3, 2, 2)),
    LossCase(nn.L1Loss, {"reduction": "none"}, (4, 3)),
    LossCase(nn.SmoothL1Loss, {"beta": 0.5}, (4, 3)),
    LossCase(nn.HuberLoss, {"delta": 0.5, "reduction": "sum"}, (4, 3)),
    LossCase(nn.CrossEntropyLoss, {}, (5, 3), make_target=_labels(3)),
    LossCase(nn.CrossEntropyLoss, {"weight": W3, "ignore_index": 1, "label_smoothing": 0.1},
             (6, 3), make_target=_labels(3)),
    LossCase(nn.CrossEntropyLoss, {"reduction": "none"}, (2, 3, 4, 4), make_target=_labels(3)),
    LossCase(nn.NLLLoss, {"weight": W3}, (5, 3), make_target=_labels(3)),
    LossCase(nn.BCELoss, {"weight": W3}, (4, 3), make_input=_probs, make_target=_probs),
    LossCase(nn.BCEWithLogitsLoss, {"pos_weight": W3}, (4, 3), make_target=_probs),
    LossCase(nn.BCEWithLogitsLoss, {"weight": W3, "reduction": "none"}, (4, 3),
             make_target=lambda s: (rng.random(s) < 0.5).astype(float)),
]


def _fb(a, requires_grad=False):
    a = np.asarray(a)
    return fb.Tensor(a.astype(np.float32) if a.dtype.kind == "f" else a,
                     requires_grad=requires_grad)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_module_vs_torch(case):
    torch = pytest.importorskip("torch")
    m, tm = case.cls(**case.kwargs), case.torch_module()
    x, t = case.sample()
    xt = _fb(x, requires_grad=True)
    y = m(xt, _fb(t))
    tx = torch.tensor(x.astype(np.float32), requires_grad=True)
    ty = tm(tx, torch.tensor(t.astype(np.float32) if t.dtype.kind == "f" else t))
    assert y.dtype == np.float32
    assert_close(y, ty, what="forward")
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    assert_close(xt.grad, tx.grad, what="input grad")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_state_dict_matches_torch(case):
    pytest.importorskip("torch")
    sd, tsd = case.cls(**case.kwargs).state_dict(), case.torch_module().state_dict()
    assert list(sd) == list(tsd)
    for k, v in sd.items():
        assert v.dtype == np.float32
        assert_close(v, tsd[k], what=k)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_module_equals_functional(case):
    import filterbank.functional as F

    name = {"MSELoss": "mse_loss", "L1Loss": "l1_loss", "SmoothL1Loss": "smooth_l1_loss",
            "HuberLoss": "huber_loss", "CrossEntropyLoss": "cross_entropy",
            "NLLLoss": "nll_loss", "BCELoss": "binary_cross_entropy",
            "BCEWithLogitsLoss": "binary_cross_entropy_with_logits"}[case.cls.__name__]
    x, t = case.sample()
    got = case.cls(**case.kwargs)(_fb(x), _fb(t))
    want = getattr(F, name)(_fb(x), _fb(t), **case.kwargs)
    assert np.array_equal(got.data, want.data)


def test_repr():
    assert repr(nn.MSELoss()) == "MSELoss(reduction='mean')"
    assert repr(nn.SmoothL1Loss(beta=0.5)) == "SmoothL1Loss(reduction='mean', beta=0.5)"
    assert repr(nn.CrossEntropyLoss(weight=[1.0, 2.0], label_smoothing=0.1)) == (
        "CrossEntropyLoss(weight=(2,), ignore_index=-100, reduction='mean', "
        "label_smoothing=0.1)")


def test_weight_buffer_follows_module_dtype_and_state_dict():
    m = nn.CrossEntropyLoss(weight=[1.0, 2.0, 3.0])
    assert m.weight.dtype == np.float32
    m.load_state_dict({"weight": np.array([3.0, 2.0, 1.0])})
    assert m.weight.tolist() == [3.0, 2.0, 1.0]
    x = fb.zeros(1, 3)
    assert m(x, fb.tensor([0])).item() == pytest.approx(np.log(3.0))


@pytest.mark.parametrize("make, match", [
    (lambda: nn.MSELoss(reduction="avg"), r"MSELoss: reduction must be 'mean', 'sum' or 'none'"),
    (lambda: nn.SmoothL1Loss(beta=-0.5), r"SmoothL1Loss: beta must be >= 0, got -0.5"),
    (lambda: nn.HuberLoss(delta=0.0), r"HuberLoss: delta must be > 0, got 0.0"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=-0.1),
     r"CrossEntropyLoss: label_smoothing must be in \[0, 1\], got -0.1"),
])
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bce_with_logits_ignore_index_vs_torch_on_known_entries():
    # unknown labels (-1 or NaN) leave the loss and its mean's count; torch has no such option,
    # so its BCEWithLogitsLoss sees only the known entries
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((6, 4)).astype(np.float32)
    t = (rng.random((6, 4)) < 0.5).astype(np.float32)
    t[rng.random((6, 4)) < 0.25] = -1.0
    t[0, 0], t[1, 2] = np.nan, -1.0
    known = ~(np.isnan(t) | (t == -1))
    pw = np.array([0.5, 1.0, 2.0, 3.0])
    m = nn.BCEWithLogitsLoss(pos_weight=pw, ignore_index=-1)
    xt = _fb(x, requires_grad=True)
    y = m(xt, _fb(t))
    y.backward()
    tx = torch.tensor(x, requires_grad=True)
    tpw = torch.tensor(np.broadcast_to(pw, t.shape)[known].astype(np.float32))
    ty = torch.nn.BCEWithLogitsLoss(pos_weight=tpw)(tx[torch.from_numpy(known)],
                                                   torch.from_numpy(t[known]))
    ty.backward()
    assert_close(y, ty, what="forward")
    assert_close(xt.grad, tx.grad, what="input grad")
    assert np.all(xt.grad.data[~known] == 0)
    assert list(m.state_dict()) == list(torch.nn.BCEWithLogitsLoss(pos_weight=tpw).state_dict())
    assert repr(m) == "BCEWithLogitsLoss(reduction='mean', ignore_index=-1.0)"
    with pytest.raises(TypeError, match=r"BCEWithLogitsLoss: ignore_index must be a number or "
                                        r"None, got str"):
        nn.BCEWithLogitsLoss(ignore_index="?")
