"""ResNet-18 training steps per second on one NVIDIA GPU: filterbank on CuPy vs PyTorch CUDA.

CIFAR-size input (3x32x32, the "cifar" stem), 10 classes, SGD with momentum, float32, the same
batch on the device for both (data loading is not timed). Each library warms up, then runs
blocks of steps, alternating libraries over several rounds; every block ends with a device
synchronisation (``cupy.cuda.Device().synchronize()``, ``torch.cuda.synchronize()``) before the
clock is read. Prints a table and writes bench/results/gpu_resnet.json; the ratio is
filterbank steps/s over PyTorch steps/s.

    PYTHONPATH=src python3 bench/gpu_resnet.py            # (make test-gpu runs it)
    PYTHONPATH=src python3 bench/gpu_resnet.py --batch 64 --rounds 3 --steps 5

Without a GPU (or CuPy, or PyTorch with CUDA) it exits with status 2 and says what is
missing. ``--fake`` (used only by tests/test_device_fake.py, on the fake CuPy) runs the
filterbank side on whatever ``cupy`` is importable, tiny and without PyTorch, to keep this
script's code tested where no GPU is lent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "gpu_resnet.json"


def missing(fake: bool = False) -> str | None:
    """What prevents the benchmark from running here, or None."""
    import filterbank as fb

    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed (pip install filterbank[cuda13] or filterbank[cuda12])"
    if not fb.cuda.is_available():
        return "CuPy is installed but finds no GPU"
    if fake:
        return None
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed (the benchmark compares with torch on CUDA)"
    if not torch.cuda.is_available():
        return "PyTorch has no CUDA device (a CPU-only build?)"
    return None


def filterbank_step(batch: int, image: int, device: str = "cuda"):
    """A function running one ResNet-18 training step with filterbank on ``device``, and a
    synchroniser."""
    import filterbank as fb
    from filterbank.models import resnet18

    fb.manual_seed(0)
    model = resnet18(num_classes=10, stem="cifar")
    opt = fb.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.to(device)
    rng = np.random.default_rng(0)
    x = fb.tensor(rng.standard_normal((batch, 3, image, image)).astype(np.float32),
                  device=device)
    y = fb.tensor(rng.integers(0, 10, batch), device=device)
    loss_fn = fb.nn.CrossEntropyLoss()

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, lambda: fb.cuda.synchronize(device)


def torch_step(batch: int, image: int):
    """The same step in PyTorch on CUDA (torchvision-free: the same ResNet-18 built here)."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

        def forward(self, x):
            out = torch.relu(self.b1(self.c1(x)))
            out = self.b2(self.c2(out))
            return torch.relu(out + (x if self.down is None else self.down(x)))

    layers, cin = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10)]
    model = nn.Sequential(*layers).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, image, image, device="cuda")
    y = torch.randint(0, 10, (batch,), device="cuda")
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, torch.cuda.synchronize


def time_blocks(libs: dict, steps: int, rounds: int, warmup: int) -> dict:
    """Median steps/s per library over ``rounds`` alternating blocks of ``steps`` steps."""
    for step, sync in libs.values():
        for _ in range(warmup):
            step()
        sync()
    rates: dict[str, list[float]] = {name: [] for name in libs}
    for _ in range(rounds):
        for name, (step, sync) in libs.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            sync()
            rates[name].append(steps / (time.perf_counter() - t0))
    return {name: {"steps_per_s": statistics.median(r), "min": min(r), "max": max(r),
                   "rounds": r} for name, r in rates.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--image", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="steps per timed block")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    why = missing(a.fake)
    if why is not None:
        print(f"gpu_resnet: no GPU benchmark here: {why}. Run it on a machine with an NVIDIA "
              f"GPU, CuPy and PyTorch with CUDA (make test-gpu).", file=sys.stderr)
        return 2
    libs = {"filterbank": filterbank_step(a.batch, a.image)}
    if not a.fake:
        libs["pytorch"] = torch_step(a.batch, a.image)
    res = time_blocks(libs, a.steps, a.rounds, a.warmup)
    info: dict = {"batch": a.batch, "image": a.image, "steps": a.steps, "rounds": a.rounds,
                  "warmup": a.warmup, "model": "resnet18 (cifar stem, 10 classes)",
                  "optimizer": "SGD momentum 0.9", "results": res}
    if not a.fake:
        import cupy
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
        info["cupy"] = cupy.__version__
        info["torch"] = torch.__version__
        info["ratio"] = res["filterbank"]["steps_per_s"] / res["pytorch"]["steps_per_s"]
    print(f"ResNet-18 training, batch {a.batch}, {a.image}x{a.image}, "
          f"{info.get('gpu', 'fake device')}")
    print(f"{'library':<12}{'steps/s':>10}{'min':>10}{'max':>10}")
    for name, r in res.items():
        print(f"{name:<12}{r['steps_per_s']:>10.2f}{r['min']:>10.2f}{r['max']:>10.2f}")
    if "ratio" in info:
        print(f"ratio filterbank/pytorch: {info['ratio']:.3f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
