"""Done-means test: a 3-4-2 sigmoid MLP on XOR-like data, trained by hand-written gradient
descent on Tensor ops with a squared loss, cuts its loss by more than 90%."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb


def _xor_data(rng, copies=8):
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    x2 = np.repeat(corners, copies, axis=0)
    labels = (x2[:, 0] != x2[:, 1]).astype(np.int64)
    # two jittered XOR bits and a third, irrelevant noise feature
    x = np.concatenate([x2 + rng.normal(0, 0.05, x2.shape),
                        rng.uniform(-1, 1, (len(x2), 1))], axis=1)
    return fb.tensor(x), fb.tensor(np.eye(2)[labels]), labels


@pytest.mark.parametrize("seed", [0, 1])
def test_sigmoid_mlp_learns_xor_with_hand_written_gradient_descent(seed):
    rng = np.random.default_rng(seed)
    x, y, labels = _xor_data(rng)
    w1 = fb.randn(3, 4, generator=rng, requires_grad=True)
    b1 = fb.zeros(4, requires_grad=True)
    w2 = fb.randn(4, 2, generator=rng, requires_grad=True)
    b2 = fb.zeros(2, requires_grad=True)
    params = [w1, b1, w2, b2]
    lr, losses = 5.0, []
    for _ in range(1000):
        out = fb.sigmoid(fb.sigmoid(x @ w1 + b1) @ w2 + b2)
        loss = ((out - y) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with fb.no_grad():
            for p in params:
                assert p.grad.dtype == np.float32 and p.grad.shape == p.shape
                p.data -= lr * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], f"loss {losses[0]:.4f} -> {losses[-1]:.4f}"
    assert (out.data.argmax(1) == labels).all()
