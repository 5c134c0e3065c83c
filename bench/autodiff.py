"""Per-op overhead of the autodiff engine, next to PyTorch's.

A chain of small elementwise ops (``y = tanh(y * 1.01 + 0.1)``, repeated) on a tiny float32
tensor, so the arithmetic is negligible and what is measured is the cost of recording an op
(``Function.apply``) and of running its backward (``Tensor.backward``). Each library runs blocks
of steps after a warm-up; the median over rounds is reported in microseconds per op.

Run:  python bench/autodiff.py [--depth 20] [--size 16] [--rounds 7] [--steps 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import filterbank as fb

try:
    import torch
except ImportError:  # filterbank alone is still measured
    torch = None


def _fb_chain(x, depth):
    y = x
    for _ in range(depth):
        y = (y * 1.01 + 0.1).tanh()
    return y.sum()


def _torch_chain(x, depth):
    y = x
    for _ in range(depth):
        y = (y * 1.01 + 0.1).tanh()
    return y.sum()


def _time_per_op(step, n_ops, steps, rounds, warmup=10):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - t0) / steps / n_ops * 1e6)
    return statistics.median(times)


def measure(depth=20, size=16, rounds=7, steps=50):
    """Return {(library, phase): microseconds per op}."""
    n_ops = 3 * depth + 1  # mul, add, tanh per link, then the sum
    x_np = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    results = {}

    xf = fb.tensor(x_np, requires_grad=True)
    results["filterbank", "forward"] = _time_per_op(lambda: _fb_chain(xf, depth), n_ops, steps,
                                                    rounds)

    def fb_step():
        xf.grad = None
        _fb_chain(xf, depth).backward()

    results["filterbank", "forward+backward"] = _time_per_op(fb_step, n_ops, steps, rounds)

    def fb_nograd():
        with fb.no_grad():
            _fb_chain(xf, depth)

    results["filterbank", "forward, no_grad"] = _time_per_op(fb_nograd, n_ops, steps, rounds)

    if torch is not None:
        torch.set_num_threads(1)
        xt = torch.tensor(x_np, requires_grad=True)
        results["torch", "forward"] = _time_per_op(lambda: _torch_chain(xt, depth), n_ops,
                                                   steps, rounds)

        def torch_step():
            xt.grad = None
            _torch_chain(xt, depth).backward()

        results["torch", "forward+backward"] = _time_per_op(torch_step, n_ops, steps, rounds)

        def torch_nograd():
            with torch.no_grad():
                _torch_chain(xt, depth)

        results["torch", "forward, no_grad"] = _time_per_op(torch_nograd, n_ops, steps, rounds)
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=20, help="links in the chain (3 ops each)")
    p.add_argument("--size", type=int, default=16, help="elements in the tensor")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=50, help="chains per round")
    args = p.parse_args(argv)
    res = measure(args.depth, args.size, args.rounds, args.steps)
    print(f"per-op overhead: chain of {3 * args.depth + 1} elementwise ops on float32 "
          f"({args.size},), median of {args.rounds} rounds x {args.steps} chains")
    print(f"{'phase':<20}{'filterbank':>12}{'torch':>12}{'ratio':>9}")
    for phase in ("forward", "forward+backward", "forward, no_grad"):
        f = res["filterbank", phase]
        t = res.get(("torch", phase))
        tcol = f"{t:9.2f} us" if t is not None else f"{'n/a':>12}"
        ratio = f"{f / t:8.1f}x" if t is not None else f"{'':>9}"
        print(f"{phase:<20}{f:9.2f} us{tcol}{ratio}")
    if torch is None:
        print("(torch not installed: no comparison)")
    return res


if __name__ == "__main__":
    main()
