"""filterbank's convolution algorithms against each other: forward+backward per shape.

``filterbank.functional.conv`` picks im2col, Winograd F(2x2, 3x3) or row-Toeplitz per
convolution (``_algorithm``); the thresholds in its code come from this table. Each shape is
run with every algorithm that applies forced (``_FORCE_ALGO``), input and weight both needing
gradients, blocks alternating per the protocol of ``bench/_common.py``; the pick is marked
``*``. No PyTorch here: ``bench/layers.py`` has the ratios against it.

Run: ``.venv/bin/python bench/conv_algos.py [--rounds 5] [--filter lenet]``; writes
``bench/results/conv_algos.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import compare, environment, table, write_json  # noqa: E402

import filterbank as fb  # noqa: E402
import filterbank.functional as F  # noqa: E402
from filterbank.functional import conv as conv_module  # noqa: E402

#: (name, batch, C_in, size, C_out, kernel, padding)
SHAPES = [
    ("lenet c1 1->6 k5 p2 @28", 64, 1, 28, 6, 5, 2),
    ("lenet c2 6->16 k5 @14", 64, 6, 14, 16, 5, 0),
    ("lenet c2 6->16 k5 @14 b256", 256, 6, 14, 16, 5, 0),
    ("3->6 k5 @32", 64, 3, 32, 6, 5, 0),
    ("1->32 k5 p2 @28", 64, 1, 28, 32, 5, 2),
    ("16->32 k5 @14", 64, 16, 14, 32, 5, 0),
    ("32->16 k3 p1 @8", 64, 32, 8, 16, 3, 1),
    ("64->32 k3 p1 @16", 64, 64, 16, 32, 3, 1),
    ("3->16 k3 p1 @32", 64, 3, 32, 16, 3, 1),
    ("16->16 k3 p1 @14", 64, 16, 14, 16, 3, 1),
    ("16->16 k3 p1 @28", 64, 16, 28, 16, 3, 1),
    ("32->32 k3 p1 @16", 64, 32, 16, 32, 3, 1),
    ("32->32 k3 p1 @28", 64, 32, 28, 32, 3, 1),
    ("64->64 k3 p1 @32", 64, 64, 32, 64, 3, 1),
    ("128->128 k3 p1 @16", 64, 128, 16, 128, 3, 1),
    ("256->256 k3 p1 @8", 64, 256, 8, 256, 3, 1),
]
ALGOS = {"im2col": conv_module._Im2col, "winograd": conv_module._Winograd,
         "toeplitz": conv_module._RowToeplitz}


def _applicable(g) -> list[str]:
    out = ["im2col"]
    if g.nd == 2 and g.K == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1):
        out.append("winograd")
    if g.nd == 2 and g.groups == 1 and g.O <= 64:  # (far slower beyond; minutes to time)
        out.append("toeplitz")
    return out


def _step(algo, x, w, pad, gy):
    def run():
        prev = conv_module._FORCE_ALGO
        conv_module._FORCE_ALGO = algo
        try:
            F.conv2d(x, w, padding=pad).backward(gy)
        finally:
            conv_module._FORCE_ALGO = prev
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--filter", default="")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for name, n, c, size, o, k, pad in SHAPES:
        if args.filter and args.filter not in name:
            continue
        x = fb.Tensor(rng.standard_normal((n, c, size, size), dtype=np.float32),
                      requires_grad=True)
        w = fb.Tensor(rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.1,
                      requires_grad=True)
        g = conv_module._Geometry(x.shape, w.shape, (1, 1), ((pad, pad),) * 2, (1, 1), 1)
        picked = next(a for a, cls in ALGOS.items() if conv_module._algorithm(g) is cls)
        out = size + 2 * pad - k + 1
        gy = fb.Tensor(np.ones((n, o, out, out), np.float32))
        algos = _applicable(g)
        t = compare({a: _step(a, x, w, pad, gy) for a in algos}, rounds=args.rounds)
        row = {"case": name, "picked": picked,
               **{a: t[a].median if a in t else float("nan") for a in ALGOS}}
        best = min(algos, key=lambda a: t[a].median)
        rows.append({**row, "fastest": best, "timings": t})
        cells = "  ".join(f"{a}{'*' if a == picked else ''} {t[a].median:7.2f}" for a in algos)
        print(f"{name:<28} {cells}   fastest: {best}", flush=True)
    print("\nfwd+bwd ms (median of rounds); picked = the automatic choice")
    print(table(rows, [("case", "case", ""), ("picked", "picked", ""),
                       ("im2col", "im2col", ".2f"), ("winograd", "winograd", ".2f"),
                       ("toeplitz", "toeplitz", ".2f"), ("fastest", "fastest", "")]))
    clean = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
             for r in rows]  # strict JSON: null, not NaN, for an algorithm that does not apply
    path = write_json("conv_algos.json", {"environment": environment(), "rows": clean})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
