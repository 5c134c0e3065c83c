"""PyTorch tutorial idioms, written once and run twice: with ``filterbank`` and with ``torch``.

Each ``_steps_*`` function below is code as a PyTorch user writes it (the manual SGD loop,
``_, pred = out.max(1)``, ``F.softmax(x, dim=1)``, ``fb.cat(xs, dim=1)``, ``model.to("cpu")``,
...). It receives the library, its ``nn`` and its ``functional`` as arguments, so the very same
lines run in both; the tests compare every number they return. torch is the oracle only: each
test skips by itself when it is missing.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from harness import HAS_TORCH, assert_close

import filterbank as fb
import filterbank.nn.functional as fbF
from filterbank import nn as fbnn

needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the oracle) is not installed")


def _libs():
    """(filterbank, torch) namespaces: (library, nn, functional)."""
    import torch
    import torch.nn.functional as tF
    from torch import nn as tnn

    return (fb, fbnn, fbF), (torch, tnn, tF)


def _data(seed=0, n=16, d=5, k=3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)).astype(np.float32),
            rng.integers(0, k, n).astype(np.int64))


def _mlp_weights(seed=1, d=5, h=8, k=3):
    rng = np.random.default_rng(seed)
    return {"0.weight": rng.standard_normal((h, d)).astype(np.float32) * 0.5,
            "0.bias": rng.standard_normal(h).astype(np.float32) * 0.1,
            "2.weight": rng.standard_normal((k, h)).astype(np.float32) * 0.5,
            "2.bias": rng.standard_normal(k).astype(np.float32) * 0.1}


def _mlp(lib, nn, weights):
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    model.load_state_dict({k: lib.tensor(v) for k, v in weights.items()})
    return model


def _np(t):
    return np.array(t.detach().numpy() if hasattr(t, "detach") else t)


# ------------------------------------------------------------------ the idioms themselves
def _steps_manual_sgd(lib, nn, F, x_np, y_np, weights, lr=0.1, steps=5):
    """The "training loop from scratch": p -= lr * p.grad under no_grad, then zero the grads."""
    model = _mlp(lib, nn, weights).to("cpu")
    x, y = lib.tensor(x_np).to("cpu"), lib.tensor(y_np)
    params_before = [id(p) for p in model.parameters()]
    losses, accs = [], []
    for _ in range(steps):
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        with lib.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
                p.grad.zero_()
        _, pred = out.max(1)
        losses.append(loss.item())
        accs.append((pred == y).float().mean().item())
    assert [id(p) for p in model.parameters()] == params_before  # updated in place
    assert all(p.requires_grad for p in model.parameters())
    return losses, accs, {k: _np(v) for k, v in model.state_dict().items()}


def _steps_bare_leaf(lib, x_np, lr=0.05, steps=4):
    """Linear regression on a bare leaf tensor: ``w -= lr * w.grad`` keeps it a leaf."""
    x = lib.tensor(x_np)
    target = x.sum(dim=1, keepdim=True) * 0.5
    w = lib.zeros((x_np.shape[1], 1), requires_grad=True)
    b = lib.zeros(1, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = ((x @ w + b - target) ** 2).mean()
        loss.backward()
        with lib.no_grad():
            w -= lr * w.grad
            b.sub_(lr * b.grad)
            w.grad.zero_()
            b.grad.zero_()
        losses.append(loss.item())
    assert w.requires_grad and w.is_leaf
    return losses, _np(w), _np(b)


def _steps_eval_loop(lib, nn, F, x_np, y_np, weights):
    """The evaluation loop: no_grad, max(1), correct += ..., softmax/log_softmax with dim=."""
    model = _mlp(lib, nn, weights)
    model.eval()
    correct, total = 0, 0
    with lib.no_grad():
        for i in range(0, len(x_np), 4):
            xb, yb = lib.tensor(x_np[i:i + 4]), lib.tensor(y_np[i:i + 4])
            out = model(xb)
            values, indices = out.max(dim=1)
            _, predicted = lib.max(out.data, 1)
            assert (predicted == indices).all()
            total += yb.size(0)
            correct += (predicted == yb).sum().item()
    out = model(lib.tensor(x_np))
    acc = (out.max(1)[1] == lib.tensor(y_np)).float().mean()
    probs = F.softmax(out, dim=1)
    logp = F.log_softmax(out, dim=1)
    top2 = out.topk(2, dim=1)
    return {"correct": correct, "total": total, "acc": acc.item(),
            "values": _np(values), "probs": _np(probs), "logp": _np(logp),
            "argmax": _np(lib.argmax(out, dim=1)), "top2v": _np(top2.values),
            "top2i": _np(top2.indices), "picked": _np(logp.gather(1, lib.tensor(y_np)[:, None]))}


def _steps_shapes(lib, F, x_np):
    """cat/stack/sum with dim=, view(x.size(0), -1), flatten(1), one_hot, masked_fill."""
    a = lib.tensor(x_np)
    b = a * 2
    out = {
        "cat": lib.cat([a, b], dim=1), "stack": lib.stack([a, b], dim=0),
        "sum": lib.sum(a, dim=1, keepdim=True), "mean": a.mean(dim=0),
        "view": a.view(a.size(0), -1), "flat": lib.stack([a, b], dim=1).flatten(1),
        "max_all": lib.max(a), "one_hot": F.one_hot(lib.tensor(np.array([0, 2, 1])), 3),
        "masked": a.masked_fill(a < 0, 0.0), "t": a.t(), "std": a.std(dim=1),
        "softmax0": F.softmax(a, dim=0), "norm": F.normalize(a, dim=1),
    }
    return {k: _np(v) for k, v in out.items()}


def _steps_optimizer_loop(lib, nn, F, x_np, y_np, weights, steps=4):
    """optimizer.zero_grad(); loss.backward(); optimizer.step() with SGD + momentum."""
    model = _mlp(lib, nn, weights)
    opt = lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = lib.tensor(x_np), lib.tensor(y_np)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, {k: _np(v) for k, v in model.state_dict().items()}


def _steps_data_update(lib, nn, F, x_np, y_np, weights, lr=0.1, steps=3):
    """The older tutorials: ``p.data -= lr * p.grad`` and ``p.grad.data.zero_()``-free resets,
    the device chosen with ``cuda.is_available()``, ``masked_fill_`` on a mask."""
    device = "cuda" if lib.cuda.is_available() else "cpu"
    model = _mlp(lib, nn, weights).to(device)
    x, y = lib.tensor(x_np, device=device), lib.tensor(y_np, device=device)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        losses.append(loss.item())
    out = model(x).detach()
    out.masked_fill_(out < 0, 0.0)
    return losses, _np(out), {k: _np(v) for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------- the tests
@needs_torch
def test_manual_sgd_loop_matches_pytorch():
    (f, fnn, fF), (t, tnn, tF) = _libs()
    x, y = _data()
    w = _mlp_weights()
    got = _steps_manual_sgd(f, fnn, fF, x, y, w)
    want = _steps_manual_sgd(t, tnn, tF, x, y, w)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], want[1])
    for k in w:
        assert_close(got[2][k], want[2][k], what=k)
    assert not np.allclose(got[2]["0.weight"], w["0.weight"])  # the weights did move


@needs_torch
def test_data_update_loop_matches_pytorch():
    (f, fnn, fF), (t, tnn, tF) = _libs()
    x, y = _data(seed=8)
    w = _mlp_weights(seed=9)
    got = _steps_data_update(f, fnn, fF, x, y, w)
    want = _steps_data_update(t, tnn, tF, x, y, w)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    assert_close(got[1], want[1])
    for k in w:
        assert_close(got[2][k], want[2][k], what=k)


def test_data_update_keeps_data_an_array():
    w = fb.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    w.data -= 0.25 * w.grad
    assert isinstance(w.data, np.ndarray) and w.tolist() == [0.5, 1.0]
    assert w.requires_grad and w.is_leaf
    a = np.ones(2, np.float32)
    assert isinstance(a * w, fb.Tensor) and (a * w).requires_grad  # still recorded
    assert isinstance(np.exp(w), np.ndarray)                       # as through __array__


@needs_torch
def test_bare_leaf_update_matches_pytorch():
    (f, *_), (t, *_) = _libs()
    x, _ = _data()
    got, want = _steps_bare_leaf(f, x), _steps_bare_leaf(t, x)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    assert_close(got[1], want[1])
    assert_close(got[2], want[2])


@needs_torch
def test_eval_loop_max_dim_softmax_dim_match_pytorch():
    (f, fnn, fF), (t, tnn, tF) = _libs()
    x, y = _data(seed=3)
    w = _mlp_weights()
    got = _steps_eval_loop(f, fnn, fF, x, y, w)
    want = _steps_eval_loop(t, tnn, tF, x, y, w)
    assert got["correct"] == want["correct"] and got["total"] == want["total"] == len(y)
    assert got["acc"] == pytest.approx(want["acc"])
    assert got["acc"] == pytest.approx(got["correct"] / got["total"])
    for k in ("values", "probs", "logp", "argmax", "top2v", "top2i", "picked"):
        assert_close(got[k], want[k], what=k)


@needs_torch
def test_shape_idioms_match_pytorch():
    (f, _, fF), (t, _, tF) = _libs()
    x, _ = _data(seed=4, n=6)
    got, want = _steps_shapes(f, fF, x), _steps_shapes(t, tF, x)
    assert got.keys() == want.keys()
    for k in got:
        assert_close(got[k], want[k], what=k)
        assert got[k].dtype == want[k].dtype, k


@needs_torch
def test_optimizer_loop_matches_pytorch():
    (f, fnn, fF), (t, tnn, tF) = _libs()
    x, y = _data(seed=5)
    w = _mlp_weights(seed=6)
    got = _steps_optimizer_loop(f, fnn, fF, x, y, w)
    want = _steps_optimizer_loop(t, tnn, tF, x, y, w)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    for k in w:
        assert_close(got[1][k], want[1][k], what=k)


def test_max_dim_unpacks_values_and_indices():
    """At batch size 2 a values-only max(1) would silently unpack into two rows of values."""
    out = fb.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    _, pred = out.max(1)
    assert pred.tolist() == [1, 0] and pred.dtype == np.int64
    assert out.max(1).values.tolist() == pytest.approx([0.9, 0.8])
    assert out.max(1)[1].tolist() == [1, 0]
    assert out.max().item() == pytest.approx(0.9)


def test_device_idioms_on_cpu():
    model = fbnn.Linear(2, 2)
    assert model.to("cpu") is model
    x = fb.ones(2, 2)
    assert x.to("cpu").device == "cpu" and str(x.cpu().device) == "cpu"
    assert x.to(fb.device("cpu"), dtype=fb.float64).dtype == np.float64
    with pytest.raises((ValueError, RuntimeError), match="cpu"):
        x.to("cuda")


def test_nn_functional_is_functional():
    import filterbank.functional

    assert fbF is filterbank.functional


def test_nn_functional_is_an_attribute_of_nn_without_its_own_import():
    # `import torch.nn as nn` then `nn.functional.relu(x)`: a fresh interpreter, since this
    # module's own `import filterbank.nn.functional` would set the attribute
    code = ("import filterbank.nn as nn, filterbank.functional as F\n"
            "assert nn.functional is F\n"
            "print(nn.functional.relu(nn.functional.one_hot(__import__('filterbank')"
            ".tensor([1]), 2)).tolist())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[[0, 1]]"


@needs_torch
def test_inplace_on_saved_tensor_raises_like_pytorch():
    """Modifying a tensor that backward needs raises in both libraries (no silent wrong grad)."""
    (f, *_), (t, *_) = _libs()
    for lib in (t, f):
        a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = a * 2
        c = b ** 2            # saves b
        b.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            c.sum().backward()
    for lib in (t, f):         # add saves nothing: in-place on its input afterwards is fine
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = a * 2
        c = b + 1
        b.add_(1)
        c.sum().backward()
        assert a.grad.tolist() == [2.0, 2.0]
    for lib in (t, f):         # a leaf that requires grad cannot be changed in place
        w = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            w -= 1
