"""XOR with a tiny sigmoid MLP, trained by hand on filterbank's autodiff.

No layers, no optimizer: four weight tensors, a forward pass written with Tensor ops, a
squared loss, ``loss.backward()`` for the gradients and a plain gradient-descent update.
XOR is the classic problem a single linear layer cannot solve: the hidden layer must bend
the input space so the two classes become separable.

Run:  python examples/xor_mlp.py
"""

from __future__ import annotations

import numpy as np

import filterbank as fb


def make_data(rng: np.random.Generator, copies: int = 8):
    """Jittered XOR corners plus one irrelevant noise feature: inputs (32, 3), one-hot (32, 2)."""
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    bits = np.repeat(corners, copies, axis=0)
    labels = (bits[:, 0] != bits[:, 1]).astype(np.int64)
    x = np.concatenate([bits + rng.normal(0, 0.05, bits.shape),
                        rng.uniform(-1, 1, (len(bits), 1))], axis=1)
    return fb.tensor(x), fb.tensor(np.eye(2)[labels]), labels


def main(steps: int = 2000, lr: float = 5.0, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    x, y, labels = make_data(rng)

    # a 3-4-2 network: y_hat = sigmoid(sigmoid(x W1 + b1) W2 + b2)
    w1 = fb.randn(3, 4, generator=rng, requires_grad=True)
    b1 = fb.zeros(4, requires_grad=True)
    w2 = fb.randn(4, 2, generator=rng, requires_grad=True)
    b2 = fb.zeros(2, requires_grad=True)
    params = [w1, b1, w2, b2]

    print(f"{'step':>6}  {'loss':>10}")
    for step in range(steps + 1):
        hidden = fb.sigmoid(x @ w1 + b1)
        out = fb.sigmoid(hidden @ w2 + b2)
        loss = ((out - y) ** 2).mean()  # squared loss

        for p in params:
            p.grad = None
        loss.backward()  # dloss/dp for every p, by reverse-mode autodiff
        with fb.no_grad():  # the update itself must not be recorded
            for p in params:
                p.data -= lr * p.grad.data
        if step % (steps // 10) == 0:
            print(f"{step:>6}  {loss.item():>10.6f}")

    with fb.no_grad():
        probs = fb.sigmoid(fb.sigmoid(x @ w1 + b1) @ w2 + b2)
    pred = probs.argmax(dim=1).numpy()
    print("\n x1  x2 | target  predicted  p(class 1)")
    for i in range(0, len(labels), 8):  # one line per XOR corner
        a, b = np.rint(x.numpy()[i, :2]).astype(int)  # the corner this point jitters around
        print(f" {a}   {b}  |   {labels[i]}        {pred[i]}        "
              f"{probs.numpy()[i, 1]:.3f}")
    accuracy = float((pred == labels).mean())
    print(f"\naccuracy on all {len(labels)} points: {accuracy:.0%}")
    return accuracy


if __name__ == "__main__":
    main()
