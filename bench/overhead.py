"""Per-step Python overhead of small-network training, next to PyTorch (issue 12, lever 1).

A LeNet-5 training step (forward, cross-entropy, backward, SGD momentum 0.9 step) at several
batch sizes, filterbank and its PyTorch twin with identical weights (``bench/_e2e.py``: same
models, steps and block-timing protocol; PyTorch at its defaults with ``--threads`` threads).
``ratio`` = PyTorch ms / filterbank ms (filterbank's speed relative to PyTorch's: 1.0 is parity).

How much of filterbank's step is Python overhead, two estimates:

* ``ops x per-op``: the ops one step records (counted with cProfile: calls of
  ``Function.apply``) times the engine's fixed cost per op (forward + backward of a tiny
  elementwise op, ``bench/autodiff.py``), plus the optimizer's fixed cost (its step on
  1-element stand-ins of the same parameters), over the measured step time. A floor: the
  Python around an op that is not in the tiny chain (layer ``forward``, im2col bookkeeping)
  is not counted.
* ``framework (cProfile)``: the share of the profiled step's time outside the ops' arithmetic
  (every ``Function.forward``/``backward`` in ``filterbank/functional`` and the optimizers'
  array updates): the engine, module calls, the backward loop, the optimizer's loops. The
  profiler inflates Python calls, so this is a ceiling.

``--optim`` adds the optimizer alone: ``step()`` over LeNet-5's and ResNet-18's parameters
with random gradients, filterbank (flat buffer and per-tensor paths) and ``torch.optim``.

``--relu-zero`` times the kernel behind ReLU's host path: ``np.maximum`` of a float32 chunk
(``_RELU_CHUNK`` values) against the scalar 0 and against a zero buffer (what ReLU uses),
interleaved, median of the rounds; ``ratio`` = scalar time / buffer time.

Run:  .venv/bin/python bench/overhead.py [--batches 1 4 16 64] [--rounds 5] [--threads 2]
      [--optim | --optim-only] [--relu-zero]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import table  # noqa: E402
from _e2e import build_fb, build_pair, fb_steps, measure, set_torch_threads, torch_steps  # noqa: E402
from autodiff import measure as autodiff_measure  # noqa: E402

import filterbank as fb  # noqa: E402
from filterbank import optim  # noqa: E402
from filterbank.nn import Parameter  # noqa: E402


def profile_step(step, steps: int = 20) -> dict:
    """Run ``step`` under cProfile: ops recorded per step, and the share of the time outside
    the ops' arithmetic (outside every ``forward``/``backward`` of a ``Function`` in
    ``filterbank/functional`` and the optimizers' array updates): the engine, the modules'
    ``__call__``/``forward``, the backward loop, the optimizer's loops, ``zero_grad``."""
    step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    stats = pstats.Stats(prof).stats

    def is_kernel(key) -> bool:
        path, name = key[0].replace("\\", "/"), key[2]
        return (("/filterbank/functional/" in path and name in ("forward", "backward"))
                or ("/filterbank/optim/" in path and name in _OPTIM_KERNELS))

    total = kernels = 0.0
    applies = 0
    for key, (_cc, ncalls, tottime, _ct, callers) in stats.items():
        total += tottime
        if is_kernel(key):  # time entered from outside the kernels (some call each other)
            kernels += sum(c[3] for caller, c in callers.items() if not is_kernel(caller))
        if key[2] == "apply" and key[0].replace("\\", "/").endswith("autograd/function.py"):
            applies += ncalls
    return {"ops": applies / steps, "py_share": 1 - kernels / total if total else float("nan")}


#: the optimizers' functions that only do array arithmetic
_OPTIM_KERNELS = ("_update", "_update_flat")


def optimizer_overhead_ms(model, rounds: int = 5, steps: int = 200) -> float:
    """Milliseconds of one SGD(momentum) step over 1-element stand-ins of ``model``'s
    parameters: the optimizer's cost that does not grow with the parameters' size."""
    params = [Parameter(np.zeros(1, np.float32)) for _ in model.parameters()]
    opt = optim.SGD(params, lr=0.01, momentum=0.9)
    grads = [fb.Tensor(np.ones(1, np.float32)) for _ in params]

    def step():
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()

    res = measure({"opt": step}, rounds=rounds, block_s=0.2, max_steps=steps, pause_s=0.05)
    return res["opt"].median


def run_steps(batches, rounds: int, threads: int) -> list[dict]:
    per_op_us = autodiff_measure(rounds=rounds)["filterbank", "forward+backward"]
    print(f"engine cost per op (bench/autodiff.py, forward+backward): {per_op_us:.2f} us")
    rows = []
    for batch in batches:
        pair = build_pair("lenet5", batch)
        fb_train, _ = fb_steps(pair.fb_model, pair.x, pair.y)
        torch_train, _ = torch_steps(pair.torch_model, pair.x, pair.y)
        res = measure({"filterbank": fb_train, "torch": torch_train}, rounds=rounds,
                      block_s=0.5, max_steps=200)
        prof = profile_step(fb_train)
        fb_ms, t_ms = res["filterbank"].median, res["torch"].median
        opt_ms = optimizer_overhead_ms(pair.fb_model, rounds)
        est = (prof["ops"] * per_op_us / 1e3 + opt_ms) / fb_ms
        rows.append({"batch": batch, "fb_ms": fb_ms, "torch_ms": t_ms, "ratio": t_ms / fb_ms,
                     "ops": prof["ops"], "est": est, "py": prof["py_share"]})
        print(f"  batch {batch}: done", flush=True)
    return rows


# ------------------------------------------------------------------------- optimizer alone
def _optim_case(name: str, flat: bool, params_np, grads_np, kind: str, **kw):
    params = [Parameter(a.copy()) for a in params_np]
    grads = [fb.Tensor(g) for g in grads_np]
    opt = getattr(optim, kind)(params, **kw)
    opt.flat = flat

    def step():
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()

    return step


def run_optim(rounds: int, threads: int) -> list[dict]:
    import torch

    rows = []
    cases = [("SGD", {"lr": 0.01, "momentum": 0.9}), ("Adam", {"lr": 1e-3}),
             ("RMSprop", {"lr": 1e-3}), ("Adagrad", {"lr": 1e-2})]
    for model in ("lenet5", "resnet18_cifar"):
        shapes = [p.shape for p in build_fb(model).parameters()]
        rng = np.random.default_rng(0)
        params_np = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
        grads_np = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
        for kind, kw in cases:
            tparams = [torch.nn.Parameter(torch.tensor(a)) for a in params_np]
            tgrads = [torch.tensor(g) for g in grads_np]
            topt = getattr(torch.optim, kind)(tparams, **kw)

            def tstep(tparams=tparams, tgrads=tgrads, topt=topt):
                for p, g in zip(tparams, tgrads):
                    p.grad = g
                topt.step()

            res = measure({"flat": _optim_case(model, True, params_np, grads_np, kind, **kw),
                           "per-tensor": _optim_case(model, False, params_np, grads_np, kind,
                                                     **kw),
                           "torch": tstep}, rounds=rounds, block_s=0.3, max_steps=500,
                          pause_s=0.1)
            flat, per, t = (res[k].median for k in ("flat", "per-tensor", "torch"))
            rows.append({"case": f"{model} {kind} ({len(shapes)} tensors, "
                                 f"{sum(int(np.prod(s)) for s in shapes):,} values)",
                         "flat": flat, "per": per, "torch": t, "gain": per / flat,
                         "ratio": t / flat})
    return rows


def run_relu_zero(rounds: int, reps: int = 200) -> dict:
    """Seconds per ``np.maximum`` call on one ReLU chunk: against 0 and against zeros."""
    from filterbank.functional.elementwise import _RELU_CHUNK  # noqa: PLC0415

    x = np.random.default_rng(0).standard_normal(_RELU_CHUNK).astype(np.float32)
    zeros, y = np.zeros_like(x), np.empty_like(x)
    times: dict[str, list] = {"scalar": [], "buffer": []}
    for _ in range(rounds):  # interleaved: both see the same machine load
        for name, other in (("scalar", 0), ("buffer", zeros)):
            t = time.perf_counter()
            for _ in range(reps):
                np.maximum(x, other, out=y)
            times[name].append((time.perf_counter() - t) / reps)
    scalar, buffer = (statistics.median(times[k]) for k in ("scalar", "buffer"))
    return {"values": _RELU_CHUNK, "scalar": scalar, "buffer": buffer, "ratio": scalar / buffer}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    p.add_argument("--optim", action="store_true", help="also time the optimizers alone")
    p.add_argument("--optim-only", action="store_true", help="only time the optimizers")
    p.add_argument("--relu-zero", action="store_true",
                   help="only time np.maximum against 0 vs a zero buffer (ReLU's host path)")
    args = p.parse_args(argv)
    if args.relu_zero:
        r = run_relu_zero(args.rounds)
        print(f"np.maximum on {r['values']:,} float32 values, median of {args.rounds} rounds: "
              f"scalar 0 {r['scalar'] * 1e6:.1f} us, zero buffer {r['buffer'] * 1e6:.1f} us, "
              f"ratio {r['ratio']:.2f}")
        return
    set_torch_threads(args.threads)
    if not args.optim_only:
        rows = run_steps(args.batches, args.rounds, args.threads)
        print(f"\nLeNet-5 training step (SGD momentum), median of {args.rounds} rounds, "
              f"torch {args.threads} threads; ratio = torch ms / filterbank ms")
        print(table(rows, [("batch", "batch", "d"), ("fb_ms", "fb ms", ".3f"),
                           ("torch_ms", "torch ms", ".3f"), ("ratio", "ratio", ".2f"),
                           ("ops", "ops/step", ".0f"), ("est", "overhead (ops x per-op)", ".0%"),
                           ("py", "framework (cProfile)", ".0%")]))
    if args.optim or args.optim_only:
        rows = run_optim(args.rounds, args.threads)
        print(f"\noptimizer.step() alone, ms, median of {args.rounds} rounds; gain = per-tensor "
              f"/ flat; ratio = torch / flat")
        print(table(rows, [("case", "case", ""), ("flat", "flat ms", ".3f"),
                           ("per", "per-tensor ms", ".3f"), ("torch", "torch ms", ".3f"),
                           ("gain", "gain", ".2f"), ("ratio", "ratio", ".2f")]))


if __name__ == "__main__":
    main()
