"""End-to-end benchmark helpers: model pairs (filterbank and an identical PyTorch twin with the
same initial weights), training / inference steps, the block timing protocol, peak RSS in a
child process, and charts.

Timing protocol (the issue's fairness rules): each library runs its OWN block of consecutive
steps, never one step of each in turn (OpenMP / OpenBLAS worker threads spin after a call, so
interleaving single steps penalises whoever runs second). Every library is warmed up first; a
round is one block per library with a short pause before each block (and one untimed step at
the start of each block, so neither library starts on caches the other one left); we report
the median per-step time over the rounds with its min and max. PyTorch runs at its defaults
with ``torch.set_num_threads(threads)``; both libraries compute in float32 on the same arrays.

torch is imported lazily: the filterbank half of a measurement (and the RSS child for
filterbank) never loads it.

Run as a script only for the RSS child (peak = ``VmHWM``): ``python bench/_e2e.py rss --lib fb
--model resnet18_cifar --batch 64 --steps 3 [--weights init.safetensors]`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, Timing, environment, time_block  # noqa: E402

import filterbank as fb  # noqa: E402
import filterbank.functional as F  # noqa: E402
from filterbank import nn  # noqa: E402
from filterbank.models import lenet5, resnet18  # noqa: E402
from filterbank.models.resnet import BasicBlock, conv1x1  # noqa: E402

__all__ = [
    "MODELS", "Pair", "build_fb", "build_pair", "copy_to_torch", "measure", "peak_rss",
    "ratio_row", "bar_chart", "line_chart", "load_avg",
]


# ------------------------------------------------------------------ filterbank models
class ConvNet(nn.Module):
    """A plain VGG-style stack for the scaling sweeps: a 3x3 stem to ``width`` channels, then
    ``depth`` blocks of conv3x3 (``width -> width``) + BatchNorm + ReLU, global average pool
    and a linear classifier. Depth and image size change the work without changing anything
    else."""

    def __init__(self, depth: int = 4, width: int = 32, in_channels: int = 3,
                 num_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        layers = []
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU()]
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        x = self.blocks(self.relu(self.bn(self.stem(x))))
        return self.fc(self.pool(x).flatten(1))


class SmallResNet(nn.Module):
    """ResNet-8 for 28x28 grey images: a 3x3 stem (16 channels), three stages of one
    :class:`~filterbank.models.resnet.BasicBlock` each (16, 32, 64 channels, each halving the
    size: 14, 7, 4), global average pool and ``fc``. 78k parameters, ~5.5 MFLOP per image."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths=(16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        blocks, inplanes = [], widths[0]
        for planes in widths:  # every block halves the size: its skip path is projected
            down = nn.Sequential(conv1x1(inplanes, planes, 2), nn.BatchNorm2d(planes))
            blocks.append(BasicBlock(inplanes, planes, 2, down))
            inplanes = planes
        self.layers = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(self.avgpool(x).flatten(1))


@dataclass
class ModelSpec:
    """How to build one benchmark model: filterbank constructor, input shape (C, H, W)."""

    build: Callable[..., nn.Module]
    chw: tuple[int, int, int]
    classes: int = 10
    label: str = ""


MODELS: dict[str, ModelSpec] = {
    "lenet5": ModelSpec(lambda **kw: lenet5(padding=2), (1, 28, 28), label="LeNet-5"),
    "resnet18_cifar": ModelSpec(lambda **kw: resnet18(num_classes=10, stem="cifar"),
                                (3, 32, 32), label="ResNet-18 (CIFAR stem)"),
    "small_resnet": ModelSpec(lambda **kw: SmallResNet(), (1, 28, 28), label="ResNet-8"),
    "convnet": ModelSpec(lambda depth=4, width=32, **kw: ConvNet(depth, width), (3, 32, 32),
                         label="ConvNet"),
}


def build_fb(name: str, seed: int = 0, **kw) -> nn.Module:
    fb.manual_seed(seed)
    return MODELS[name].build(**kw)


# --------------------------------------------------------------------- torch twins
def _torch_classes():
    """The PyTorch twins, defined on first use (module names equal filterbank's, so the
    state_dicts map one to one)."""
    import torch
    from torch import nn as tnn

    tf = torch.nn.functional

    class TorchLeNet5(tnn.Module):
        def __init__(self, padding=2, in_channels=1, num_classes=10):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_channels, 6, 5, padding=padding)
            self.act1, self.pool1 = tnn.ReLU(), tnn.MaxPool2d(2)
            self.conv2 = tnn.Conv2d(6, 16, 5)
            self.act2, self.pool2 = tnn.ReLU(), tnn.MaxPool2d(2)
            self.flatten = tnn.Flatten()
            self.fc1, self.act3 = tnn.Linear(400, 120), tnn.ReLU()
            self.fc2, self.act4 = tnn.Linear(120, 84), tnn.ReLU()
            self.fc3 = tnn.Linear(84, num_classes)

        def forward(self, x):
            x = self.pool1(self.act1(self.conv1(x)))
            x = self.pool2(self.act2(self.conv2(x)))
            x = self.flatten(x)
            return self.fc3(self.act4(self.fc2(self.act3(self.fc1(x)))))

    class TorchBasicBlock(tnn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.relu = tnn.ReLU(inplace=True)
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    def _down(inplanes, planes, stride):
        return tnn.Sequential(tnn.Conv2d(inplanes, planes, 1, stride, bias=False),
                              tnn.BatchNorm2d(planes))

    class TorchResNet18Cifar(tnn.Module):
        def __init__(self, num_classes=10, in_channels=3):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU(inplace=True)
            self.maxpool = tnn.Identity()
            inplanes = 64
            for i, planes in enumerate((64, 128, 256, 512)):
                stride = 1 if i == 0 else 2
                down = _down(inplanes, planes, stride) if stride != 1 or inplanes != planes \
                    else None
                setattr(self, f"layer{i + 1}", tnn.Sequential(
                    TorchBasicBlock(inplanes, planes, stride, down),
                    TorchBasicBlock(planes, planes)))
                inplanes = planes
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.fc = tnn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    class TorchSmallResNet(tnn.Module):
        def __init__(self, in_channels=1, num_classes=10, widths=(16, 32, 64)):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(widths[0])
            self.relu = tnn.ReLU()
            blocks, inplanes = [], widths[0]
            for planes in widths:
                blocks.append(TorchBasicBlock(inplanes, planes, 2, _down(inplanes, planes, 2)))
                inplanes = planes
            self.layers = tnn.Sequential(*blocks)
            self.avgpool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(inplanes, num_classes)

        def forward(self, x):
            x = self.layers(self.relu(self.bn1(self.conv1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    class TorchConvNet(tnn.Module):
        def __init__(self, depth=4, width=32, in_channels=3, num_classes=10):
            super().__init__()
            self.stem = tnn.Conv2d(in_channels, width, 3, padding=1, bias=False)
            self.bn = tnn.BatchNorm2d(width)
            self.relu = tnn.ReLU()
            layers = []
            for _ in range(depth):
                layers += [tnn.Conv2d(width, width, 3, padding=1, bias=False),
                           tnn.BatchNorm2d(width), tnn.ReLU()]
            self.blocks = tnn.Sequential(*layers)
            self.pool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(width, num_classes)

        def forward(self, x):
            x = self.blocks(self.relu(self.bn(self.stem(x))))
            return self.fc(self.pool(x).flatten(1))

    del tf
    return {"lenet5": lambda **kw: TorchLeNet5(),
            "resnet18_cifar": lambda **kw: TorchResNet18Cifar(),
            "small_resnet": lambda **kw: TorchSmallResNet(),
            "convnet": lambda depth=4, width=32, **kw: TorchConvNet(depth, width)}


def build_torch(name: str, **kw):
    return _torch_classes()[name](**kw)


def copy_to_torch(state: dict[str, np.ndarray], torch_model) -> None:
    """Load a filterbank state_dict (NumPy arrays) into the torch twin; every key must match."""
    import torch

    tstate = torch_model.state_dict()
    if set(tstate) != set(state):
        raise KeyError(f"state_dict keys differ: only filterbank {sorted(set(state) - set(tstate))}"
                       f", only torch {sorted(set(tstate) - set(state))}")
    torch_model.load_state_dict({k: torch.from_numpy(np.array(v)).to(tstate[k].dtype)
                                 for k, v in state.items()})


@dataclass
class Pair:
    """A filterbank model and its torch twin with identical weights, plus the data."""

    name: str
    fb_model: nn.Module
    torch_model: object
    x: np.ndarray
    y: np.ndarray


def make_data(chw, batch: int, classes: int = 10, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + tuple(chw), dtype=np.float32)
    return x, rng.integers(0, classes, batch)


def build_pair(name: str, batch: int, chw=None, seed: int = 0, **kw) -> Pair:
    spec = MODELS[name]
    m = build_fb(name, seed, **kw)
    t = build_torch(name, **kw)
    copy_to_torch(m.state_dict(), t)
    x, y = make_data(chw or spec.chw, batch, spec.classes)
    return Pair(name, m, t, x, y)


# --------------------------------------------------------------------------- steps
def fb_steps(model: nn.Module, x: np.ndarray, y: np.ndarray, lr: float = 0.01,
             momentum: float = 0.9):
    """(train_step, infer_step) closures for filterbank: SGD with momentum; inference in eval
    mode under no_grad."""
    from filterbank.optim import SGD

    opt = SGD(model.parameters(), lr=lr, momentum=momentum)
    xt, yt = fb.Tensor(x), fb.Tensor(y)

    def train():
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()

    def infer():
        model.eval()
        with fb.no_grad():
            model(xt)

    return train, infer


def torch_steps(model, x: np.ndarray, y: np.ndarray, lr: float = 0.01, momentum: float = 0.9):
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    xt, yt = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())

    def train():
        model.train()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(xt)

    return train, infer


# ------------------------------------------------------------------------- timing
def measure(steps: dict[str, Callable[[], object]], rounds: int = 5, block_s: float = 1.0,
            warmup: int = 2, pause_s: float = 0.3, max_steps: int = 50,
            min_steps: int = 1) -> dict[str, Timing]:
    """Milliseconds per step of several implementations under the fairness rules (see the
    module docstring). Each library's block size is set once, from its own warm-up, to last
    about ``block_s`` seconds."""
    counts = {}
    for name, step in steps.items():
        for _ in range(warmup):
            step()
        t0 = time.perf_counter()
        step()
        one = time.perf_counter() - t0
        counts[name] = int(max(min_steps, min(max_steps, block_s / max(one, 1e-6))))
        time.sleep(pause_s)
    out = {name: Timing() for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            gc.collect()
            time.sleep(pause_s)
            step()  # untimed: this library's own caches and thread pool
            out[name].samples.append(time_block(step, counts[name]))
    return out


def ratio_row(fb_t: Timing, torch_t: Timing, batch: int) -> dict:
    """Throughputs and the speed ratio (filterbank / PyTorch images per second: 1.0 is parity)
    from per-step timings, with the range over rounds."""
    return {
        "fb_ms": fb_t.median, "fb_ms_min": fb_t.min, "fb_ms_max": fb_t.max,
        "torch_ms": torch_t.median, "torch_ms_min": torch_t.min, "torch_ms_max": torch_t.max,
        "fb_ips": batch / fb_t.median * 1e3, "torch_ips": batch / torch_t.median * 1e3,
        "ratio": torch_t.median / fb_t.median,
        # the worst and best pairing of rounds: how far noise could move the ratio
        "ratio_lo": torch_t.min / fb_t.max, "ratio_hi": torch_t.max / fb_t.min,
    }


def set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def load_avg() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def env_info(threads: int | None = None) -> dict:
    info = environment()
    if threads is not None:
        info["torch_threads"] = threads
    info["blas_threads_env"] = {k: os.environ[k] for k in
                                ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                                if k in os.environ}
    return info


# -------------------------------------------------------------------------- peak RSS
def _peak_rss_mib() -> float:
    """This process's peak resident set size. ``VmHWM`` belongs to the address space, which
    ``exec`` replaces; ``getrusage``'s maxrss is kept across ``exec`` on Linux, so a child
    started by a big parent would report the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_child(lib: str, model: str, batch: int, steps: int, weights: str | None,
               threads: int) -> dict:
    """Runs in the child: build the model and data, note the RSS, train ``steps`` steps,
    report the peak."""
    spec = MODELS[model]
    x, y = make_data(spec.chw, batch, spec.classes)
    state = None
    if weights:
        from safetensors.numpy import load_file

        state = load_file(weights)
    if lib == "fb":
        m = build_fb(model)
        if state is not None:
            m.load_state_dict(state)
        train, _ = fb_steps(m, x, y)
    else:
        set_torch_threads(threads)
        t = build_torch(model)
        if state is not None:
            copy_to_torch(state, t)
        train, _ = torch_steps(t, x, y)
    gc.collect()
    before = _current_rss_mib()
    for _ in range(steps):
        train()
    return {"lib": lib, "model": model, "batch": batch, "steps": steps,
            "rss_before_mib": round(before, 1), "peak_rss_mib": round(_peak_rss_mib(), 1),
            "rss_after_mib": round(_current_rss_mib(), 1)}


def peak_rss(lib: str, model: str, batch: int, steps: int = 3, threads: int = 2,
             weights: str | None = None) -> dict:
    """Peak resident memory of training ``model`` in a fresh child process running only
    ``lib`` (``"fb"`` never imports torch). Returns the child's JSON report."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "rss", "--lib", lib, "--model", model,
           "--batch", str(batch), "--steps", str(steps), "--threads", str(threads)]
    if weights:
        cmd += ["--weights", weights]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"RSS child for {lib} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- charts
def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def bar_chart(path: Path, labels: list[str], ratios: list[float], title: str,
              ranges: list[tuple[float, float]] | None = None,
              targets: list[float | None] | None = None) -> Path | None:
    """Horizontal bars of speed ratios (1.0 = parity), optional min-max whiskers and target
    ticks. Returns the path, or None without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.4))
    ypos = np.arange(len(labels))[::-1]
    colors = ["tab:green" if r >= 1 else "tab:orange" for r in ratios]
    xerr = None
    if ranges:
        xerr = np.array([[max(r - lo, 0) for r, (lo, _) in zip(ratios, ranges)],
                         [max(hi - r, 0) for r, (_, hi) in zip(ratios, ranges)]])
    ax.barh(ypos, ratios, color=colors, xerr=xerr, capsize=3)
    if targets:
        for y, t in zip(ypos, targets):
            if t is not None:
                ax.plot([t, t], [y - 0.4, y + 0.4], color="black", lw=2)
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.set_yticks(ypos, labels)
    ax.set_xlabel("speed ratio filterbank / PyTorch (1 = parity; black tick = target)")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def line_chart(path: Path, panels: list[dict], title: str) -> Path | None:
    """One panel per dict ``{"x": [...], "series": {label: [...]}, "xlabel", "ylabel",
    "logx"}``."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, p in zip(axes[0], panels):
        for label, ys in p["series"].items():
            ax.plot(p["x"], ys, marker="o", label=label,
                    ls="--" if "torch" in label.lower() else "-")
        if p.get("logx"):
            ax.set_xscale("log", base=2)
        ax.set_xlabel(p["xlabel"])
        ax.set_ylabel(p["ylabel"])
        ax.set_title(p.get("title", ""))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def results_path(name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / name


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="peak-RSS child process")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rss")
    r.add_argument("--lib", choices=("fb", "torch"), required=True)
    r.add_argument("--model", choices=sorted(MODELS), required=True)
    r.add_argument("--batch", type=int, default=64)
    r.add_argument("--steps", type=int, default=3)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--weights", default=None)
    args = p.parse_args(argv)
    report = _rss_child(args.lib, args.model, args.batch, args.steps, args.weights,
                        args.threads)
    if args.lib == "fb":
        report["torch_imported"] = "torch" in sys.modules
    print(json.dumps(report))


if __name__ == "__main__":
    main()
