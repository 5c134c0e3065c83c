"""How the training-step time per image scales with batch size, image area and depth.

The model is ``ConvNet`` from ``bench/_e2e.py``: a 3x3 stem to 32 channels, ``depth`` blocks of
conv3x3 + BatchNorm + ReLU at full resolution, global average pool, linear (PyTorch twin with
the same initial weights). One sweep varies one quantity around the base point (batch 32,
32x32 RGB, depth 4):

* batch size 8 ... 256: fixed per-step costs (Python, op dispatch) are spread over more
  images, so time per image falls until the arithmetic dominates;
* image side 16 ... 64 px: the work grows with the area, so time per image should grow
  linearly in H*W;
* depth 1 ... 8 blocks: linear in the number of blocks.

Timing: the fairness protocol of ``bench/_e2e.py`` (own blocks per library, warm-up, median
over rounds). Writes ``bench/results/scaling.json`` and ``scaling.png``.

Run: ``.venv/bin/python bench/scaling.py [--quick] [--no-torch] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import table, write_json  # noqa: E402
from _e2e import (  # noqa: E402
    build_fb,
    build_torch,
    copy_to_torch,
    env_info,
    fb_steps,
    line_chart,
    load_avg,
    make_data,
    measure,
    results_path,
    set_torch_threads,
    torch_steps,
)

BASE = {"batch": 32, "side": 32, "depth": 4}
SWEEPS = {
    "batch": [8, 16, 32, 64, 128, 256],
    "side": [16, 24, 32, 48, 64],
    "depth": [1, 2, 4, 8],
}
QUICK = {"batch": [8, 32, 128], "side": [16, 32, 64], "depth": [1, 4, 8]}


def point(batch: int, side: int, depth: int, with_torch: bool, rounds: int,
          block_s: float) -> dict:
    m = build_fb("convnet", depth=depth)
    x, y = make_data((3, side, side), batch)
    steps = {"fb": fb_steps(m, x, y)[0]}
    if with_torch:
        t = build_torch("convnet", depth=depth)
        copy_to_torch(m.state_dict(), t)
        steps["torch"] = torch_steps(t, x, y)[0]
    res = measure(steps, rounds=rounds, block_s=block_s, pause_s=0.2)
    row = {"batch": batch, "side": side, "depth": depth, "loadavg": load_avg()}
    for lib, t in res.items():
        row[f"{lib}_ms"] = t.median
        row[f"{lib}_ms_min"], row[f"{lib}_ms_max"] = t.min, t.max
        row[f"{lib}_ms_per_img"] = t.median / batch
    if with_torch:
        row["ratio"] = res["torch"].median / res["fb"].median
    return row


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=float, default=0.5, help="seconds per timed block")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    parser.add_argument("--no-torch", action="store_true", help="filterbank only")
    parser.add_argument("--quick", action="store_true", help="3 points per sweep, 2 rounds")
    args = parser.parse_args(argv)
    with_torch = not args.no_torch
    if with_torch:
        set_torch_threads(args.threads)
    sweeps = QUICK if args.quick else SWEEPS
    rounds = 2 if args.quick else args.rounds
    results: dict[str, list[dict]] = {}
    for name, values in sweeps.items():
        rows = []
        for v in values:
            cfg = {**BASE, name: v}
            row = point(cfg["batch"], cfg["side"], cfg["depth"], with_torch, rounds, args.block)
            rows.append(row)
            extra = (f"  torch {row['torch_ms_per_img']:.3f} ms/img  ratio {row['ratio']:.2f}"
                     if with_torch else "")
            print(f"{name}={v:<4} fb {row['fb_ms_per_img']:.3f} ms/img{extra}", flush=True)
        results[name] = rows
    cols = [("batch", "batch", "d"), ("side", "side", "d"), ("depth", "depth", "d"),
            ("fb_ms", "fb ms/step", ".1f"), ("fb_ms_per_img", "fb ms/img", ".3f")]
    if with_torch:
        cols += [("torch_ms", "torch ms/step", ".1f"), ("torch_ms_per_img", "torch ms/img", ".3f"),
                 ("ratio", "ratio", ".2f")]
    for name, rows in results.items():
        print(f"\nsweep over {name} (others at {BASE}); training step = fwd + CE + bwd + SGD")
        print(table(rows, cols))
    payload = {"environment": env_info(args.threads if with_torch else None), "base": BASE,
               "model": "ConvNet(depth, width=32)", "rounds": rounds, "sweeps": results}
    path = write_json("scaling.json", payload)
    xlabels = {"batch": "batch size", "side": "image side (px), area = side^2",
               "depth": "conv blocks"}
    panels = []
    for name, rows in results.items():
        series = {"filterbank": [r["fb_ms_per_img"] for r in rows]}
        if with_torch:
            series["PyTorch"] = [r["torch_ms_per_img"] for r in rows]
        panels.append({"x": [r[name] for r in rows], "series": series, "xlabel": xlabels[name],
                       "ylabel": "ms per image (training step)", "logx": name == "batch",
                       "title": f"vs {name}"})
    png = line_chart(results_path("scaling.png"), panels,
                     "Training-step time per image, ConvNet (base: batch 32, 32x32, depth 4)")
    print(f"\nwrote {path}" + (f" and {png}" if png else ""))
    return payload


if __name__ == "__main__":
    main()
