"""End-to-end throughput against PyTorch: training steps and inference, images per second.

Cases: LeNet-5 on 1x28x28 at batch 64 and 256, ResNet-18 with the CIFAR stem on 3x32x32 at
batch 64. A training step is forward + cross-entropy + backward + SGD (momentum 0.9) step; an
inference step is a forward pass in eval mode without gradient recording. The PyTorch twins
(``bench/_e2e.py``) have the same architecture and start from filterbank's initial weights.
Timing follows the fairness protocol of ``bench/_e2e.py`` (own blocks per library, warm-up,
pauses, median over rounds with min-max). ``ratio`` = filterbank images/s / PyTorch images/s.

Peak RSS of ResNet-18-CIFAR training at batch 64 is measured in a separate child process per
library (the child's ``VmHWM``; the filterbank child never imports torch).

Run: ``.venv/bin/python bench/train.py [--rounds 5] [--threads 2] [--filter lenet]
[--no-rss] [--quick]``; writes ``bench/results/train.json`` and ``train.png``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import table, write_json  # noqa: E402
from _e2e import (  # noqa: E402
    MODELS,
    bar_chart,
    build_fb,
    build_pair,
    env_info,
    fb_steps,
    load_avg,
    measure,
    peak_rss,
    ratio_row,
    results_path,
    set_torch_threads,
    torch_steps,
)

#: (model, batch, mode, target ratio from issue 12, performance round 2)
CASES = [
    ("lenet5", 64, "train", 1.0),
    ("lenet5", 64, "infer", 1.0),
    ("lenet5", 256, "train", 1.0),
    ("lenet5", 256, "infer", 1.0),
    ("resnet18_cifar", 64, "train", 0.9),
    ("resnet18_cifar", 64, "infer", 0.8),
]
RSS_TARGET = 1.2  # filterbank peak RSS <= 1.2x PyTorch's


def run_speed(rounds: int, block_s: float, filt: str) -> list[dict]:
    rows = []
    pairs = {}
    for model, batch, mode, target in CASES:
        label = f"{MODELS[model].label} b{batch} {mode}"
        if filt and filt not in label.lower() and filt not in model:
            continue
        key = (model, batch)
        if key not in pairs:  # train and infer share weights and data (fresh per batch)
            p = build_pair(model, batch)
            pairs = {key: (p, fb_steps(p.fb_model, p.x, p.y),
                           torch_steps(p.torch_model, p.x, p.y))}
        _, fbs, ts = pairs[key]
        i = 0 if mode == "train" else 1
        t = measure({"fb": fbs[i], "torch": ts[i]}, rounds=rounds, block_s=block_s)
        row = {"case": label, "model": model, "batch": batch, "mode": mode, "target": target,
               "loadavg": load_avg(), **ratio_row(t["fb"], t["torch"], batch),
               "fb": t["fb"], "torch": t["torch"]}
        rows.append(row)
        print(f"{label:<36} fb {row['fb_ms']:8.1f} ms ({row['fb_ips']:7.0f} img/s)  torch "
              f"{row['torch_ms']:8.1f} ms ({row['torch_ips']:7.0f} img/s)  ratio "
              f"{row['ratio']:.2f} [{row['ratio_lo']:.2f}-{row['ratio_hi']:.2f}]"
              f"{'' if target is None else f'  target {target}'}", flush=True)
    return rows


def run_rss(model: str, batch: int, steps: int, threads: int) -> dict:
    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "init.safetensors")
        save_file(dict(build_fb(model).state_dict()), path)  # both children: the same weights
        fb_r = peak_rss("fb", model, batch, steps, threads, path)
        t_r = peak_rss("torch", model, batch, steps, threads, path)
    out = {"model": model, "batch": batch, "steps": steps, "fb": fb_r, "torch": t_r,
           "ratio": fb_r["peak_rss_mib"] / t_r["peak_rss_mib"],
           "ratio_training_delta": (fb_r["peak_rss_mib"] - fb_r["rss_before_mib"])
           / max(t_r["peak_rss_mib"] - t_r["rss_before_mib"], 1e-9),
           "target": RSS_TARGET}
    print(f"peak RSS {MODELS[model].label} b{batch} training ({steps} steps, one child process "
          f"each): fb {fb_r['peak_rss_mib']:.0f} MiB (before the first step "
          f"{fb_r['rss_before_mib']:.0f}), torch {t_r['peak_rss_mib']:.0f} MiB (before "
          f"{t_r['rss_before_mib']:.0f}); ratio fb/torch {out['ratio']:.2f} (target <= "
          f"{RSS_TARGET}); training-only growth ratio {out['ratio_training_delta']:.2f}")
    if fb_r.get("torch_imported"):
        print("warning: the filterbank child imported torch", file=sys.stderr)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=float, default=1.5, help="seconds per timed block")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    parser.add_argument("--filter", default="", help="only cases containing this text")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS children")
    parser.add_argument("--rss-steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="3 rounds of ~0.5 s blocks")
    parser.add_argument("--out", default="train.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.block = 3, 0.5
    set_torch_threads(args.threads)
    rows = run_speed(args.rounds, args.block, args.filter.lower())
    rss = None if args.no_rss else run_rss("resnet18_cifar", 64, args.rss_steps, args.threads)
    print()
    print(f"torch threads {args.threads}; median ms per step over {args.rounds} rounds "
          f"[min-max of the ratio]; ratio = filterbank img/s / torch img/s")
    flat = [{**r, "range": f"{r['ratio_lo']:.2f}-{r['ratio_hi']:.2f}",
             "target_s": "" if r["target"] is None else f">= {r['target']}"} for r in rows]
    print(table(flat, [("case", "case", ""), ("fb_ms", "fb ms", ".1f"),
                       ("torch_ms", "torch ms", ".1f"), ("fb_ips", "fb img/s", ".0f"),
                       ("torch_ips", "torch img/s", ".0f"), ("ratio", "ratio", ".2f"),
                       ("range", "range", ""), ("target_s", "target", "")]))
    if rss:
        print(f"peak RSS ResNet-18-CIFAR b64 training: fb {rss['fb']['peak_rss_mib']:.0f} MiB,"
              f" torch {rss['torch']['peak_rss_mib']:.0f} MiB, ratio {rss['ratio']:.2f} "
              f"(target <= {RSS_TARGET})")
    payload = {"environment": env_info(args.threads), "rounds": args.rounds,
               "block_s": args.block, "cases": rows, "peak_rss": rss}
    path = write_json(args.out, payload)
    labels = [r["case"] for r in rows]
    ratios = [r["ratio"] for r in rows]
    ranges = [(r["ratio_lo"], r["ratio_hi"]) for r in rows]
    targets = [r["target"] for r in rows]
    if rss:
        labels.append("ResNet-18 b64 peak RSS: torch/fb")
        ratios.append(1 / rss["ratio"])
        ranges.append((1 / rss["ratio"], 1 / rss["ratio"]))
        targets.append(1 / RSS_TARGET)
    png = bar_chart(results_path(Path(args.out).stem + ".png"), labels, ratios,
                    f"End-to-end, filterbank vs PyTorch ({args.threads} threads)", ranges,
                    targets)
    print(f"\nwrote {path}" + (f" and {png}" if png else ""))
    return payload


if __name__ == "__main__":
    main()
