"""filterbank's convolution algorithms against each other and PyTorch, per shape.

``filterbank.functional._conv.registry`` picks one algorithm per convolution; the rules in
it come from this table. Each shape runs every algorithm that applies to it, forced
(``_FORCE_ALGO``), and PyTorch (float32, 2 threads, ``torch.set_num_threads(2)``; filterbank
under ``FILTERBANK_NUM_THREADS``, default the CPUs this process may use), forward only
(``fwd``) and forward + backward with input and weight gradients (``fwd+bwd``), blocks
alternating per the protocol of ``bench/_common.py``. Printed per shape: median ms per
algorithm (the automatic pick marked ``*``) and its speed ratio to PyTorch
(``torch ms / ours ms``: above 1 we are faster). For ``Conv2d(64, 64, 3, p=1)`` on
64x64x32x32 it also prints each algorithm's fraction of this machine's float32 GEMM peak
(``np.matmul`` of two 2048x2048 float32 matrices, best of 5, measured at the start and again
next to that case, the higher kept; a convolution
pass is ``2 N C_out H_out W_out C_in kH kW`` FLOPs, three passes for fwd+bwd; Winograd does
fewer multiplications, so its "fraction" of the direct convolution's FLOPs can pass 1).

``--accuracy`` prints instead each algorithm's float32 error against float64 direct
convolution (im2col in float64): max |error| / max |reference| over y, dx and dW for
standard normal inputs at several channel counts.

Run: ``.venv/bin/python bench/conv_algos.py [--rounds 5] [--filter resnet] [--fwd-only]``
(writes ``bench/results/conv_algos.json``; ``--filter`` takes comma-separated name parts)
or ``... --accuracy``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import compare, environment, write_json  # noqa: E402

import filterbank as fb  # noqa: E402
import filterbank.functional as F  # noqa: E402
from filterbank import _parallel  # noqa: E402
from filterbank.functional import conv as conv_module  # noqa: E402
from filterbank.functional._conv import registry  # noqa: E402
from filterbank.functional._conv.geometry import _Geometry  # noqa: E402

try:
    import torch
except ImportError:  # the algorithms still compare among themselves
    torch = None

#: (name, batch, C_in, size, C_out, kernel, padding[, stride])
SHAPES = [
    ("lenet c1 1->6 k5 p2 @28", 64, 1, 28, 6, 5, 2),
    ("lenet c2 6->16 k5 @14", 64, 6, 14, 16, 5, 0),
    ("lenet c2 6->16 k5 @14 b256", 256, 6, 14, 16, 5, 0),
    ("3->6 k5 @32", 64, 3, 32, 6, 5, 0),
    ("1->32 k5 p2 @28", 64, 1, 28, 32, 5, 2),
    ("16->32 k5 @14", 64, 16, 14, 32, 5, 0),
    ("32->16 k3 p1 @8", 64, 32, 8, 16, 3, 1),
    ("64->32 k3 p1 @16", 64, 64, 16, 32, 3, 1),
    ("vgg c1 3->64 k3 p1 @32", 64, 3, 32, 64, 3, 1),
    ("vgg c1 3->64 k3 p1 @224 b4", 4, 3, 224, 64, 3, 1),
    ("3->16 k3 p1 @32", 64, 3, 32, 16, 3, 1),
    ("16->16 k3 p1 @14", 64, 16, 14, 16, 3, 1),
    ("16->16 k3 p1 @28", 64, 16, 28, 16, 3, 1),
    ("32->32 k3 p1 @16", 64, 32, 16, 32, 3, 1),
    ("32->32 k3 p1 @28", 64, 32, 28, 32, 3, 1),
    ("conv2d 64->64 k3 p1 @32 b64", 64, 64, 32, 64, 3, 1),
    ("resnet 64->64 k3 p1 @32", 32, 64, 32, 64, 3, 1),
    ("resnet 64->64 k3 p1 @56", 32, 64, 56, 64, 3, 1),
    ("resnet 128->128 k3 p1 @28", 32, 128, 28, 128, 3, 1),
    ("resnet 256->256 k3 p1 @14", 32, 256, 14, 256, 3, 1),
    ("resnet 512->512 k3 p1 @7", 32, 512, 7, 512, 3, 1),
    ("128->128 k3 p1 @16", 64, 128, 16, 128, 3, 1),
    ("256->256 k3 p1 @8", 64, 256, 8, 256, 3, 1),
    # small feature maps: ResNet-8/20 on 28x28 (stages at 28, 14, 7; bench/_e2e.py's
    # ResNet-8 also at 4) and ResNet-18-CIFAR's last stage, where channels-last im2col competes
    ("16->16 k3 p1 @8", 64, 16, 8, 16, 3, 1),
    ("32->32 k3 p1 @7", 64, 32, 7, 32, 3, 1),
    ("64->64 k3 p1 @7", 64, 64, 7, 64, 3, 1),
    ("64->64 k3 p1 @4", 64, 64, 4, 64, 3, 1),
    ("16->32 k3 s2 p1 @14", 64, 16, 14, 32, 3, 1, 2),
    ("32->64 k3 s2 p1 @14", 64, 32, 14, 64, 3, 1, 2),
    ("32->64 k3 s2 p1 @7", 64, 32, 7, 64, 3, 1, 2),
    ("16->16 k3 s2 p1 @28", 64, 16, 28, 16, 3, 1, 2),
    ("256->512 k3 s2 p1 @8", 64, 256, 8, 512, 3, 1, 2),
    ("512->512 k3 p1 @4", 64, 512, 4, 512, 3, 1),
]
PEAK_CASE = "conv2d 64->64 k3 p1 @32 b64"
ALGOS = [a.name for a in registry.ALGORITHMS]


def _geometry(n, c, size, o, k, pad, stride=1) -> _Geometry:
    return _Geometry((n, c, size, size), (o, c, k, k), (stride, stride), ((pad, pad),) * 2,
                     (1, 1), 1)


def _applicable(g) -> list[str]:
    out = [a.name for a in registry.ALGORITHMS if a.applies(g)]
    # row-Toeplitz beyond 32 output channels is left out: its banded weight matrix grows with
    # the channels (64->64 @32 took 0.56 s a step in bench/results/conv_algos.json of
    # 2026-11-22, 5.7x im2col), so timing it there takes minutes and says nothing new
    if g.O > 32:
        out = [a for a in out if a != "toeplitz"]
    return out


def _forced(algo, fn):
    def run():
        prev = conv_module._FORCE_ALGO
        conv_module._FORCE_ALGO = algo
        try:
            fn()
        finally:
            conv_module._FORCE_ALGO = prev
    return run


def _steps(algos, x, w, pad, gy, backward, stride=1):
    xs = fb.Tensor(x, requires_grad=backward)
    ws = fb.Tensor(w, requires_grad=backward)
    gys = fb.Tensor(gy)

    def ours():
        y = F.conv2d(xs, ws, stride=stride, padding=pad)
        if backward:
            xs.grad = ws.grad = None
            y.backward(gys)

    steps = {a: _forced(a, ours) for a in algos}
    if torch is not None:
        tx = torch.tensor(x, requires_grad=backward)
        tw = torch.tensor(w, requires_grad=backward)
        tgy = torch.tensor(gy)

        def theirs():
            y = torch.nn.functional.conv2d(tx, tw, stride=stride, padding=pad)
            if backward:
                tx.grad = tw.grad = None
                y.backward(tgy)

        steps["torch"] = theirs
    return steps


def gemm_gflops(size: int = 2048, rounds: int = 5) -> float:
    """Float32 GEMM speed of this machine's BLAS on ``FILTERBANK_NUM_THREADS`` threads."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    times = []
    with _parallel.blas_threads(_parallel.num_threads()):
        np.matmul(a, b, out=out)
        for _ in range(rounds):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - t0)
    return 2 * size ** 3 / min(times) / 1e9  # a peak: the best round


def accuracy() -> None:
    """float32 error of each algorithm against float64 im2col (direct convolution)."""
    rng = np.random.default_rng(2)
    print("max |err| / max |ref| against float64 direct convolution (y, dx, dW)")
    for c in (4, 16, 64, 128, 256):
        n, size, o = 4, 16, c
        x = rng.standard_normal((n, c, size, size))
        w = rng.standard_normal((o, c, 3, 3))
        gy = rng.standard_normal((n, o, size, size))
        ref = _grads("im2col", x, w, gy, np.float64)
        cells = []
        for a in _applicable(_geometry(n, c, size, o, 3, 1)):
            got = _grads(a, x, w, gy, np.float32)
            errs = [float(np.abs(gv - rv).max() / np.abs(rv).max()) for gv, rv in zip(got, ref)]
            cells.append(f"{a} " + "/".join(f"{e:.1e}" for e in errs))
        print(f"C_in = C_out = {c:<4} " + "   ".join(cells), flush=True)


def _grads(algo, x, w, gy, dtype):
    xs = fb.Tensor(x.astype(dtype), dtype=dtype, requires_grad=True)
    ws = fb.Tensor(w.astype(dtype), dtype=dtype, requires_grad=True)
    out = {}

    def run():
        y = F.conv2d(xs, ws, padding=1)
        y.backward(fb.Tensor(gy.astype(dtype), dtype=dtype))
        out["r"] = (y.data.astype(np.float64), xs.grad.data.astype(np.float64),
                    ws.grad.data.astype(np.float64))

    _forced(algo, run)()
    return out["r"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--filter", default="", help="comma-separated name parts; any matches")
    parser.add_argument("--fwd-only", action="store_true")
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--json", default="conv_algos.json",
                        help="results file under bench/results ('' writes none)")
    args = parser.parse_args()
    if torch is not None:
        torch.set_num_threads(2)
    if args.accuracy:
        accuracy()
        return
    rng = np.random.default_rng(0)
    peak = gemm_gflops()
    print(f"float32 GEMM (2048^3, np.matmul): {peak:.1f} GFLOP/s", flush=True)
    rows = []
    modes = ("fwd",) if args.fwd_only else ("fwd", "fwd+bwd")
    for name, n, c, size, o, k, pad, *rest in SHAPES:
        if args.filter and not any(part in name for part in args.filter.split(",")):
            continue
        stride = rest[0] if rest else 1
        x = rng.standard_normal((n, c, size, size), dtype=np.float32)
        w = rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.1
        g = _geometry(n, c, size, o, k, pad, stride)
        picked = registry.choose(g).name
        out = g.So[0]
        gy = np.ones((n, o, out, out), np.float32)
        algos = _applicable(g)
        flops = 2 * n * o * out * out * c * k * k
        for mode in modes:
            t = compare(_steps(algos, x, w, pad, gy, mode != "fwd", stride),
                        rounds=args.rounds)
            best = min(algos, key=lambda a: t[a].median)
            row = {"case": name, "mode": mode, "picked": picked, "fastest": best,
                   "ms": {a: round(t[a].median, 3) for a in t}, "timings": t}
            cells = []
            for a in algos:
                cell = f"{a}{'*' if a == picked else ''} {t[a].median:7.2f}"
                if "torch" in t:
                    cell += f" ({t['torch'].median / t[a].median:4.2f}x)"
                cells.append(cell)
            if "torch" in t:
                cells.append(f"torch {t['torch'].median:7.2f}")
                row["speed_vs_torch"] = {a: round(t["torch"].median / t[a].median, 3)
                                         for a in algos}
            print(f"{name:<28} {mode:<7} " + "  ".join(cells) + f"   fastest: {best}",
                  flush=True)
            if name == PEAK_CASE:
                peak = max(peak, gemm_gflops())  # again next to the case: the load varies
                passes = 1 if mode == "fwd" else 3
                frac = {a: passes * flops / (t[a].median * 1e-3) / 1e9 / peak for a in t}
                row["fraction_of_gemm_peak"] = {a: round(v, 3) for a, v in frac.items()}
                print(f"{'':<28} {mode:<7} fraction of GEMM peak: "
                      + "  ".join(f"{a} {v:.2f}" for a, v in frac.items()), flush=True)
            rows.append(row)
    print("\nms = median per step over rounds; (Nx) = speed vs PyTorch (torch ms / ours ms); "
          "* = the automatic pick")
    env = {**environment(), "gemm_gflops": round(peak, 1)}
    if args.json:
        path = write_json(args.json, {"environment": env, "rows": rows})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
