"""Layer benchmarks against PyTorch: forward and forward+backward milliseconds, GFLOP/s, ratio.

Every benchmark is one entry of ``CASES``: a name, a family and a builder that returns the
modules (filterbank and PyTorch, with identical weights) and input shapes. The timing protocol
is in ``bench/_common.py`` (same process, blocks per library, median over rounds; PyTorch with
2 threads). ``ratio`` is PyTorch time / filterbank time: 1.0 is parity, 0.7 means filterbank
takes 1/0.7 = 1.43x as long.

Run: ``.venv/bin/python bench/layers.py [--filter conv] [--rounds 5] [--batch 64]``; writes
``bench/results/layers.json``. On a busy machine, ``--clock cpu`` measures the CPU time of
the one thread everything then runs on (BLAS, PyTorch and filterbank single-threaded): a
ratio that other processes barely disturb, as a proxy for the 2-thread wall-clock ratio.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

if "--clock" in sys.argv and sys.argv[sys.argv.index("--clock") + 1:][:1] == ["cpu"]:
    # must be set before NumPy (OpenBLAS) and filterbank start their threads
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["FILTERBANK_NUM_THREADS"] = "1"
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _common import compare, environment, ratio, table, write_json  # noqa: E402

import filterbank as fb  # noqa: E402
import filterbank.functional as F  # noqa: E402


@dataclass
class Case:
    """One layer on one input shape.

    build(batch) -> (fb_module, torch_module, input_shape, extra) where ``extra`` may hold
    ``target`` (class indices for a loss) and ``flops`` (forward multiply-adds x 2).
    ``input_grad``: whether the input needs a gradient (False for a network's first layer).
    """

    name: str
    family: str
    build: Callable
    input_grad: bool = True
    loss: bool = False
    notes: str = ""
    extra: dict = field(default_factory=dict)


CASES: list[Case] = []


def register(case: Case) -> Case:
    CASES.append(case)
    return case


def _copy_weights(fb_mod, torch_mod) -> None:
    state = {k: v.detach().numpy().copy() for k, v in torch_mod.state_dict().items()}
    fb_mod.load_state_dict(state)


# ---------------------------------------------------------------------------- convolution


def conv_case(name, c_in, c_out, size, k, stride=1, padding=0, groups=1, input_grad=True,
              notes=""):
    def build(batch):
        import torch

        t = torch.nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, groups=groups)
        m = fb.nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, groups=groups)
        _copy_weights(m, t)
        out = (size + 2 * padding - k) // stride + 1
        flops = 2 * batch * c_out * out * out * (c_in // groups) * k * k
        return m, t, (batch, c_in, size, size), {"flops": flops}

    return register(Case(name, "conv", build, input_grad=input_grad, notes=notes))


conv_case("conv 64->64 k3 p1 @32 (target)", 64, 64, 32, 3, padding=1,
          notes="issue 6 target: >= 0.7")
conv_case("lenet c1 1->6 k5 p2 @28", 1, 6, 28, 5, padding=2, input_grad=False)
conv_case("lenet c1 1->6 k5 @32", 1, 6, 32, 5, input_grad=False)
conv_case("lenet c2 6->16 k5 @14", 6, 16, 14, 5)
conv_case("vgg 3->64 k3 p1 @32", 3, 64, 32, 3, padding=1, input_grad=False)
conv_case("vgg 256->256 k3 p1 @8", 256, 256, 8, 3, padding=1)
conv_case("resnet 128->128 k3 p1 @16", 128, 128, 16, 3, padding=1)
conv_case("resnet 256->256 k3 p1 @8", 256, 256, 8, 3, padding=1)
conv_case("resnet 512->512 k3 p1 @4", 512, 512, 4, 3, padding=1)
conv_case("resnet 64->128 k3 s2 p1 @32", 64, 128, 32, 3, stride=2, padding=1)
conv_case("resnet 128->256 k3 s2 p1 @16", 128, 256, 16, 3, stride=2, padding=1)
conv_case("resnet 256->512 k3 s2 p1 @8", 256, 512, 8, 3, stride=2, padding=1)
conv_case("resnet 64->128 k1 s2 @32", 64, 128, 32, 1, stride=2)
conv_case("resnet 128->256 k1 s2 @16", 128, 256, 16, 1, stride=2)
conv_case("resnet 256->512 k1 s2 @8", 256, 512, 8, 1, stride=2)


# ------------------------------------------------------------- other families (if present)


def _module_case(name, family, fb_ctor, torch_ctor, shape_fn, flops_fn=None, loss=False,
                 classes=None):
    def build(batch):
        t, m = torch_ctor(), fb_ctor()
        if list(t.state_dict()):
            _copy_weights(m, t)
        shape = shape_fn(batch)
        extra = {"flops": flops_fn(batch) if flops_fn else None}
        if classes:
            extra["target"] = np.random.default_rng(1).integers(0, classes, batch)
        return m, t, shape, extra

    return register(Case(name, family, build, loss=loss))


def _register_other_families() -> None:
    import torch

    nn = fb.nn
    if hasattr(F, "max_pool2d") and hasattr(nn, "MaxPool2d"):
        _module_case("maxpool k2 s2 64ch @32", "pool", lambda: nn.MaxPool2d(2, 2),
                     lambda: torch.nn.MaxPool2d(2, 2), lambda b: (b, 64, 32, 32))
    _module_case("relu 6ch @28 (LeNet c1)", "activation", lambda: nn.ReLU(),
                 lambda: torch.nn.ReLU(), lambda b: (b, 6, 28, 28))
    _module_case("relu 64ch @32", "activation", lambda: nn.ReLU(), lambda: torch.nn.ReLU(),
                 lambda b: (b, 64, 32, 32))
    if hasattr(F, "batch_norm") and hasattr(nn, "BatchNorm2d"):
        _module_case("batchnorm2d 64ch @32", "norm", lambda: nn.BatchNorm2d(64),
                     lambda: torch.nn.BatchNorm2d(64), lambda b: (b, 64, 32, 32))
    if hasattr(F, "linear") and hasattr(nn, "Linear"):
        _module_case("linear 4096->1024", "linear", lambda: nn.Linear(4096, 1024),
                     lambda: torch.nn.Linear(4096, 1024), lambda b: (b, 4096),
                     flops_fn=lambda b: 2 * b * 4096 * 1024)
    if hasattr(F, "cross_entropy") and hasattr(nn, "CrossEntropyLoss"):
        _module_case("softmax-CE 1000 classes", "loss", lambda: nn.CrossEntropyLoss(),
                     lambda: torch.nn.CrossEntropyLoss(), lambda b: (b, 1000), loss=True,
                     classes=1000)


# ---------------------------------------------------------------------------------- runner


def run_case(case: Case, batch: int, rounds: int) -> dict:
    import torch

    m, t, shape, extra = case.build(batch)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(shape, dtype=np.float32)
    x = fb.Tensor(x_np.copy(), requires_grad=case.input_grad)
    tx = torch.tensor(x_np, requires_grad=case.input_grad)
    if case.loss:
        target = extra["target"]
        fb_target, torch_target = fb.Tensor(target), torch.tensor(target)

        def fb_fwd():
            return m(x, fb_target)

        def torch_fwd():
            return t(tx, torch_target)

        with torch.no_grad():
            gy_np = None
    else:
        def fb_fwd():
            return m(x)

        def torch_fwd():
            return t(tx)

        with torch.no_grad():
            gy_np = rng.standard_normal(tuple(t(tx).shape), dtype=np.float32)
    gy, tgy = (None, None) if gy_np is None else (fb.Tensor(gy_np), torch.tensor(gy_np))
    fb_params, torch_params = list(m.parameters()), list(t.parameters())

    def fb_step():
        for p in fb_params:
            p.grad = None
        x.grad = None
        y = fb_fwd()
        y.backward(gy)

    def torch_step():
        for p in torch_params:
            p.grad = None
        tx.grad = None
        y = torch_fwd()
        y.backward(tgy)

    fwd = compare({"fb": fb_fwd, "torch": torch_fwd}, rounds=rounds)
    step = compare({"fb": fb_step, "torch": torch_step}, rounds=rounds)
    row = {"name": case.name, "family": case.family, "shape": shape, "notes": case.notes,
           "fb_fwd": fwd["fb"], "torch_fwd": fwd["torch"], "fb_step": step["fb"],
           "torch_step": step["torch"], "ratio_fwd": ratio(fwd["fb"], fwd["torch"]),
           "ratio_step": ratio(step["fb"], step["torch"])}
    flops = extra.get("flops")
    if flops:
        bwd_factor = 2 if case.input_grad else 1  # dW always, dX when the input needs it
        row["gflops_fwd_fb"] = flops / fwd["fb"].median / 1e6
        row["gflops_fwd_torch"] = flops / fwd["torch"].median / 1e6
        row["gflops_step_fb"] = flops * (1 + bwd_factor) / step["fb"].median / 1e6
        row["gflops_step_torch"] = flops * (1 + bwd_factor) / step["torch"].median / 1e6
    return row


def main(argv=None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default="", help="only cases whose name or family "
                        "contains this text")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: single-threaded CPU time (see the module docstring)")
    parser.add_argument("--out", default="layers.json")
    args = parser.parse_args(argv)
    _common.CLOCK = args.clock
    torch.set_num_threads(1 if args.clock == "cpu" else args.threads)
    _register_other_families()
    cases = [c for c in CASES if args.filter in c.name or args.filter in c.family]
    rows = []
    for case in cases:
        row = run_case(case, args.batch, args.rounds)
        rows.append(row)
        flat = {**row, **{k: row[k].median for k in ("fb_fwd", "torch_fwd", "fb_step",
                                                     "torch_step")}}
        print(f"{case.name:<34} fwd {flat['fb_fwd']:8.2f} / {flat['torch_fwd']:8.2f} ms "
              f"(x{row['ratio_fwd']:.2f})   fwd+bwd {flat['fb_step']:8.2f} / "
              f"{flat['torch_step']:8.2f} ms (x{row['ratio_step']:.2f})", flush=True)
    flat_rows = []
    for r in rows:
        f = dict(r)
        for k in ("fb_fwd", "torch_fwd", "fb_step", "torch_step"):
            f[k] = r[k].median
        flat_rows.append(f)
    print()
    threads = 1 if args.clock == "cpu" else args.threads
    print(f"batch {args.batch}, torch threads {threads}, clock {args.clock}; ratio = torch ms / "
          f"filterbank ms (median of {args.rounds} rounds)")
    print(table(flat_rows, [
        ("name", "case", ""), ("fb_fwd", "fb fwd ms", ".2f"), ("torch_fwd", "torch fwd", ".2f"),
        ("ratio_fwd", "ratio", ".2f"), ("fb_step", "fb f+b ms", ".2f"),
        ("torch_step", "torch f+b", ".2f"), ("ratio_step", "ratio", ".2f"),
        ("gflops_step_fb", "fb GF/s", ".0f"), ("gflops_step_torch", "torch GF/s", ".0f")]))
    path = write_json(args.out, {"environment": environment(), "batch": args.batch,
                                 "rounds": args.rounds, "cases": rows})
    print(f"\nwrote {path}")
    if any(math.isnan(r["ratio_step"]) for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
