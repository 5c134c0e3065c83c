"""Descriptors: embed (penultimate layer by hooks, any named layer), PCA (vs NumPy's
eigendecomposition of the covariance), LinearProbe (vs PyTorch's logistic regression on the
same data) and nearest (vs a brute-force search)."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn
from filterbank.train import PCA, LinearProbe, embed, nearest, penultimate_layer


def _net(seed=0):
    fb.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 12), nn.ReLU(),
                        nn.Dropout(0.5), nn.Linear(12, 3))
    net[1].running_var.data[...] = np.random.default_rng(seed).random(4) + 0.5
    return net


def _x(n=10, seed=1):
    return np.random.default_rng(seed).standard_normal((n, 1, 8, 8)).astype(np.float32)


# -------------------------------------------------------------------------------- embed
def test_default_is_the_input_of_the_last_linear():
    net = _net()
    x = _x()
    assert penultimate_layer(net)[0] == "8"
    f = embed(net, x, batch_size=4)
    assert f.shape == (10, 12) and f.dtype == np.float32
    assert net.training and net[7].training          # the mode is restored
    net.eval()
    with fb.no_grad():
        manual = net[:8](fb.Tensor(x)).data          # everything before the last Linear
    np.testing.assert_allclose(f, manual, rtol=1e-6, atol=1e-6)


def test_named_layer_is_flattened_and_batches_agree():
    net = _net()
    x = _x(7)
    f = embed(net, fb.Tensor(x), layer="3")
    net.eval()
    with fb.no_grad():
        manual = net[:4](fb.Tensor(x)).data.reshape(7, -1)
    np.testing.assert_allclose(f, manual, rtol=1e-6, atol=1e-6)
    loader = [(x[i:i + 3], np.zeros(3)) for i in range(0, 7, 3)]  # an iterable of batches
    np.testing.assert_array_equal(embed(net, loader, layer="3"), f)


def test_normalize_gives_unit_vectors():
    f = embed(_net(), _x(), normalize=True)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1, rtol=1e-5)


def test_embed_errors_name_what_was_expected():
    net = _net()
    with pytest.raises(ValueError, match=r"no layer 'fc9'.*valid names are: '0', '1'"):
        embed(net, _x(), layer="fc9")
    with pytest.raises(ValueError, match="takes 1-channel images.*3 channels"):
        embed(net, np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*add a batch axis"):
        embed(net, np.zeros((1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="cannot take images of shape"):
        embed(net, np.zeros((2, 1, 6, 6), np.float32))
    with pytest.raises(ValueError, match="no nn.Linear"):
        embed(nn.Sequential(nn.Conv2d(1, 2, 3)), _x())
    with pytest.raises(ValueError, match="pca must be"):
        embed(net, _x(), pca=0)


# ---------------------------------------------------------------------------------- PCA
def test_pca_matches_numpy_eigendecomposition():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6)) + 3.0
    p = PCA(3).fit(x)
    evals, evecs = np.linalg.eigh(np.cov(x, rowvar=False))
    order = np.argsort(evals)[::-1][:3]
    np.testing.assert_allclose(p.explained_variance, evals[order], rtol=1e-8)
    np.testing.assert_allclose(p.explained_variance_ratio, evals[order] / evals.sum(),
                               rtol=1e-8)
    for k, j in enumerate(order):  # the same axes, up to the sign
        v = evecs[:, j] * np.sign(evecs[:, j] @ p.components[k])
        np.testing.assert_allclose(p.components[k], v, atol=1e-8)
        assert p.components[k][np.abs(p.components[k]).argmax()] > 0  # the sign convention
    y = rng.standard_normal((5, 6))
    expected = (y - x.mean(axis=0)) @ p.components.T
    np.testing.assert_allclose(p.transform(y), expected, rtol=1e-5, atol=1e-5)


def test_a_test_split_uses_the_training_splits_pca():
    net = _net()
    train_f, pca = embed(net, _x(20, seed=2), pca=4, return_pca=True)
    assert train_f.shape == (20, 4) and isinstance(pca, PCA)
    test_f = embed(net, _x(6, seed=3), pca=pca)
    np.testing.assert_allclose(test_f, pca.transform(embed(net, _x(6, seed=3))), atol=1e-6)
    with pytest.raises(ValueError, match="n_components=30 is more than"):
        PCA(30).fit(train_f)


# -------------------------------------------------------------------------- LinearProbe
def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 4.0, 0]])
    y = np.arange(n) % 3
    return (centres[y] + rng.standard_normal((n, 4))).astype(np.float32), y


def test_probe_learns_a_separable_problem():
    f, y = _blobs()
    probe = LinearProbe(epochs=100, lr=0.05).fit(f, y)
    assert probe.score(f, y) == 1.0
    assert probe.losses[-1] < 0.1 * probe.losses[0]
    assert probe.predict(f).dtype == np.int64
    minibatch = LinearProbe(epochs=30, batch_size=16, lr=0.05).fit(f, y)
    assert minibatch.score(f, y) == 1.0
    again = LinearProbe(epochs=30, batch_size=16, lr=0.05).fit(f, y)  # seeded
    np.testing.assert_array_equal(again.linear.weight.data, minibatch.linear.weight.data)


def test_probe_loss_gradients_and_steps_equal_torch():
    torch = pytest.importorskip("torch")
    f, y = _blobs(30, seed=1)
    probe = LinearProbe(seed=3).init(f, y)
    loss = probe.loss(f, y)
    loss.backward()
    z = torch.from_numpy((f - probe.mean) / probe.scale)
    w = torch.tensor(probe.linear.weight.data, requires_grad=True)
    b = torch.tensor(probe.linear.bias.data, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(z @ w.T + b, torch.from_numpy(y))
    tl.backward()
    np.testing.assert_allclose(float(loss.item()), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(probe.linear.weight.grad.data, w.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(probe.linear.bias.grad.data, b.grad.numpy(), atol=1e-6)
    # five full-batch SGD steps (momentum 0.9) from the same start
    trained = LinearProbe(epochs=5, lr=0.1, optimizer="sgd", seed=3).fit(f, y)
    w0 = torch.tensor(LinearProbe(seed=3).init(f, y).linear.weight.data, requires_grad=True)
    b0 = torch.tensor(LinearProbe(seed=3).init(f, y).linear.bias.data, requires_grad=True)
    opt = torch.optim.SGD([w0, b0], lr=0.1, momentum=0.9)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(z @ w0.T + b0, torch.from_numpy(y)).backward()
        opt.step()
    np.testing.assert_allclose(trained.linear.weight.data, w0.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(trained.linear.bias.data, b0.detach().numpy(), atol=1e-5)


def test_probe_errors():
    f, y = _blobs(12)
    with pytest.raises(ValueError, match="fit the probe first"):
        LinearProbe().predict(f)
    with pytest.raises(ValueError, match="expected 12 integer labels"):
        LinearProbe().fit(f, y[:5])
    probe = LinearProbe(epochs=1).fit(f, y)
    with pytest.raises(ValueError, match="fitted on 4 features, got 3"):
        probe.predict(f[:, :3])
    with pytest.raises(ValueError, match="optimizer must be"):
        LinearProbe(optimizer="lbfgs")


# ------------------------------------------------------------------------------ nearest
def test_nearest_equals_brute_force():
    rng = np.random.default_rng(0)
    db = rng.standard_normal((50, 8)).astype(np.float32)
    db[10] = db[3]                           # a tie: the lower index comes first
    db[20] = 0.0                             # a zero vector: similarity 0
    q = np.concatenate([rng.standard_normal((6, 8)), db[3:4]]).astype(np.float32)
    idx, sim = nearest(q, db, k=7, chunk=4)
    assert idx.shape == sim.shape == (7, 7) and idx.dtype == np.int64
    assert sim.dtype == np.float32
    for i, v in enumerate(q):
        s = [float(v @ d) / (np.linalg.norm(v) * np.linalg.norm(d)) if d.any() else 0.0
             for d in db]
        brute = sorted(range(len(db)), key=lambda n: (-round(s[n], 5), n))[:7]
        assert idx[i].tolist() == brute
        np.testing.assert_allclose(sim[i], [s[n] for n in brute], rtol=1e-5, atol=1e-6)
    assert idx[-1, :2].tolist() == [3, 10]
    with pytest.raises(ValueError, match="k must be an int from 1 to 50"):
        nearest(q, db, k=51)
    with pytest.raises(ValueError, match="query has 8 features per row, features has 4"):
        nearest(q, db[:, :4])
