"""Regression with a CNN: a shape's box (c_x, c_y, w, h), or a triangle's three vertices.

Each Shapes image holds exactly one shape. A small CNN (conv blocks, then two linear layers;
no global pooling, which would throw away *where* things are) regresses

- ``--target box``: s = (c_x, c_y, w, h) of the bounding box, as fractions of the image size;
  scored by the mean IoU of the predicted and true boxes (``filterbank.ops.box_iou``) and the
  mean absolute error of the four numbers in pixels;
- ``--target vertices``: s = (x_1, y_1, x_2, y_2, x_3, y_3) of a triangle (images with
  triangles only), the vertices in a fixed order -- sorted by their angle around the centroid,
  atan2(y - c_y, x - c_x) increasing from -pi, so the order is a function of the picture;
  scored by the mean distance in pixels between a predicted and a true vertex.

The loss is the lecture's squared loss with its factor 1/2, E = 1/2 sum_i (s_i - s_hat_i)^2
per image, averaged over the batch: ``0.5 * F.mse_loss(pred, s, reduction='sum') / N``
(``MSELoss`` has no 1/2, so its gradient is twice the lecture's s_hat - s).

    python examples/regress_shapes.py                        # about 2.5 minutes on 2 cores
    python examples/regress_shapes.py --target vertices
    python examples/regress_shapes.py --epochs 1 --train-size 128 --test-size 64  # seconds

Measured on the 2-core CPU (defaults: 2000 training and 500 test images 64x64, width 16,
Adam lr 2e-3 with cosine decay, batch 32, 20 epochs)::

    time nice -n 5 .venv/bin/python examples/regress_shapes.py
    test_mean_iou 0.6704  test_mean_pixel_error 1.8801  test_centre_pixel_error 2.3573
        train_seconds 142.7                                               (real 2m26s)
    time nice -n 5 .venv/bin/python examples/regress_shapes.py --target vertices
    test_mean_vertex_pixel_error 3.5269  train_seconds 124.9              (real 2m8s)

(with 10 epochs: mean IoU 0.6011 and vertex error 5.68 px.)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import filterbank as fb
import filterbank.functional as F
from filterbank import nn, optim
from filterbank.data.datasets import Shapes
from filterbank.ops import box_convert, box_iou
from filterbank.train.tasks.regress import sort_vertices


def make_data(n: int, image_size: int, seed: int, train: bool, target: str):
    """Images ``(n, 3, S, S)`` float32 and targets ``(n, 4)`` (box, cxcywh / S) or
    ``(n, 6)`` (vertices / S), float32."""
    shapes = ("triangle",) if target == "vertices" else Shapes(n=1).classes
    ds = Shapes(n=n, image_size=image_size, min_objects=1, max_objects=1, shapes=shapes,
                seed=seed, train=train)
    images = np.stack([ds[i][0] for i in range(n)])
    if target == "box":
        boxes = np.concatenate([ds[i][1]["boxes"] for i in range(n)])
        s = box_convert(boxes.astype(np.float64), "xyxy", "cxcywh")
    else:
        s = sort_vertices(np.stack([ds.objects(i)[0]["vertices"] for i in range(n)]))
        s = s.reshape(n, 6)
    return images, (s / image_size).astype(np.float32)


def flip(images: np.ndarray, s: np.ndarray, which: np.ndarray, target: str):
    """Left-right flips of the chosen images, with their targets moved to match."""
    images = np.where(which[:, None, None, None], images[..., ::-1], images)
    s = s.copy()
    if target == "box":
        s[which, 0] = 1 - s[which, 0]
    else:
        v = s[which].reshape(-1, 3, 2)
        v[..., 0] = 1 - v[..., 0]
        s[which] = sort_vertices(v).reshape(-1, 6)
    return images, s


def build_model(outputs: int, image_size: int, width: int = 16) -> nn.Module:
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(), nn.MaxPool2d(2)]

    side = image_size // 16
    return nn.Sequential(*block(3, width), *block(width, 2 * width),
                         *block(2 * width, 4 * width), *block(4 * width, 4 * width),
                         nn.Flatten(), nn.Linear(4 * width * side * side, 128), nn.ReLU(),
                         nn.Linear(128, outputs))


def predict(model, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    model.eval()
    with fb.no_grad():
        return np.concatenate([model(fb.tensor(images[i:i + batch_size])).data
                               for i in range(0, len(images), batch_size)])


def scores(pred: np.ndarray, s: np.ndarray, image_size: int, target: str) -> dict:
    """The metrics of predictions ``pred`` against targets ``s`` (both normalised)."""
    p, t = pred.astype(np.float64) * image_size, s.astype(np.float64) * image_size
    if target == "box":
        iou = np.diagonal(box_iou(box_convert(p, "cxcywh", "xyxy"),
                                  box_convert(t, "cxcywh", "xyxy")))
        return {"mean_iou": float(iou.mean()), "mean_pixel_error": float(np.abs(p - t).mean()),
                "centre_pixel_error": float(np.hypot(*(p[:, :2] - t[:, :2]).T).mean())}
    d = (p - t).reshape(-1, 3, 2)
    return {"mean_vertex_pixel_error": float(np.hypot(d[..., 0], d[..., 1]).mean())}


def run(target: str = "box", epochs: int = 20, train_size: int = 2000, test_size: int = 500,
        image_size: int = 64, width: int = 16, batch_size: int = 32, lr: float = 2e-3,
        seed: int = 0, verbose: bool = True) -> dict:
    if target not in ("box", "vertices"):
        raise ValueError(f"regress_shapes.run: target must be 'box' or 'vertices', got "
                         f"{target!r}")
    if image_size % 16:
        raise ValueError(f"regress_shapes.run: image_size must be a multiple of 16 (four 2x2 "
                         f"poolings), got {image_size}")
    fb.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_train, s_train = make_data(train_size, image_size, seed, True, target)
    x_test, s_test = make_data(test_size, image_size, seed, False, target)
    model = build_model(s_train.shape[1], image_size, width)
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    history: dict[str, list] = {"epoch": [], "loss": []}
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(train_size)
        total, seen = 0.0, 0
        for i in range(0, train_size, batch_size):
            idx = order[i:i + batch_size]
            xb, sb = flip(x_train[idx], s_train[idx], rng.random(len(idx)) < 0.5, target)
            # the lecture's E = 1/2 sum (s - s_hat)^2 per image, averaged over the batch
            loss = 0.5 * F.mse_loss(model(fb.tensor(xb)), fb.tensor(sb), reduction="sum") \
                / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        sched.step()
        m = scores(predict(model, x_test), s_test, image_size, target)
        history["epoch"].append(epoch)
        history["loss"].append(total / seen)
        for k, v in m.items():
            history.setdefault(f"test_{k}", []).append(v)
        if verbose:
            shown = "  ".join(f"test_{k} {v:.4f}" for k, v in m.items())
            print(f"epoch {epoch:2d}  loss {total / seen:.5f}  {shown}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    result = {f"test_{k}": v for k, v in scores(predict(model, x_test), s_test, image_size,
                                                 target).items()}
    result.update(history=history, train_seconds=time.perf_counter() - start)
    return result


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", choices=("box", "vertices"), default="box")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--test-size", type=int, default=500)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--width", type=int, default=16, help="channels of the first conv block")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    r = run(args.target, args.epochs, args.train_size, args.test_size, args.image_size,
            args.width, args.batch_size, args.lr, args.seed)
    print("  ".join(f"{k} {v:.4f}" for k, v in r.items() if k.startswith("test_"))
          + f"  train_seconds {r['train_seconds']:.1f}")
    return r


if __name__ == "__main__":
    main()
