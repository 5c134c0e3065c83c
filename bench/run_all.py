"""Run every benchmark and print one summary table (``make bench``).

Each benchmark runs in its own process (so one's thread settings and memory cannot leak into
the next) and writes JSON + a PNG chart to ``bench/results/``:

=================  ==========================================  ============================
benchmark          what                                        files
=================  ==========================================  ============================
autodiff           per-op overhead of the engine (us / op)     autodiff.json, autodiff.png
layers             single layers, forward and fwd+bwd          layers.json, layers.png
conv_algos         our conv algorithms against each other      conv_algos.json (own table)
train              LeNet-5 / ResNet-18 steps, peak RSS         train.json, train.png
scaling            time per image vs batch, area, depth        scaling.json, scaling.png
footprint          installed size (two throwaway venvs)        footprint.json, footprint.png
fashion (opt-in)   Fashion-MNIST images/s, time to 90 %        train_fashion.json / .png
=================  ==========================================  ============================

Run: ``.venv/bin/python bench/run_all.py [--quick] [--skip footprint,scaling]
[--fashion]``. Ratios are filterbank speed / PyTorch speed (1.0 = parity, higher is better)
except where the table says otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import RESULTS, table  # noqa: E402

ORDER = ["autodiff", "layers", "conv_algos", "train", "scaling", "footprint", "fashion"]


def _autodiff_json(quick: bool) -> None:
    """Subcommand: run bench/autodiff.py's measurement, write its JSON and chart."""
    import autodiff
    from _e2e import bar_chart, env_info

    res = autodiff.measure(rounds=3 if quick else 7, steps=20 if quick else 50)
    phases = ["forward", "forward+backward", "forward, no_grad"]
    rows = [{"phase": p, "fb_us": res["filterbank", p], "torch_us": res.get(("torch", p)),
             "ratio": (res[("torch", p)] / res["filterbank", p]) if ("torch", p) in res
             else None} for p in phases]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "autodiff.json").write_text(json.dumps(
        {"environment": env_info(1), "unit": "microseconds per op", "rows": rows}, indent=2)
        + "\n")
    if all(r["ratio"] is not None for r in rows):
        bar_chart(RESULTS / "autodiff.png", [f"per-op overhead: {r['phase']}" for r in rows],
                  [r["ratio"] for r in rows], "Autodiff engine overhead (torch 1 thread)")


def _run(cmd: list[str], log: list[str]) -> bool:
    print(f"\n$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, check=False)
    log.append(f"{' '.join(Path(c).name if c.endswith('.py') else c for c in cmd[1:])}: "
               f"exit {res.returncode}, {time.perf_counter() - t0:.0f} s")
    return res.returncode == 0


def _load(name: str):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _layers_chart() -> None:
    data = _load("layers.json")
    if not data:
        return
    from _e2e import bar_chart

    cases = data["cases"]
    bar_chart(RESULTS / "layers.png", [c["name"] for c in cases],
              [c["ratio_step"] for c in cases],
              f"Layers, forward+backward, batch {data['batch']}",
              [(c["torch_step"]["min_ms"] / c["fb_step"]["max_ms"],
                c["torch_step"]["max_ms"] / c["fb_step"]["min_ms"]) for c in cases],
              [layer_target(c["name"]) or None for c in cases])


def _footprint_chart() -> None:
    data = _load("footprint.json")
    if not data:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return
    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.barh([r["what"] for r in data][::-1], [r["mib"] for r in data][::-1], color="tab:blue")
    ax.set_xlabel("installed size (MiB)")
    ax.set_title("filterbank install footprint")
    fig.tight_layout()
    fig.savefig(RESULTS / "footprint.png", dpi=110)
    plt.close(fig)


#: Issue 12 (performance round 2): layer targets, by case name prefix in bench/layers.py
LAYER_TARGETS = [
    ("conv 64->64 k3 p1 @32", 0.9),
    ("resnet ", 0.8),  # every ResNet-18 conv shape
    ("lenet c1 ", 0.8), ("vgg 3->64 ", 0.8),  # the first layers of LeNet and VGG
    ("maxpool ", 1.0), ("batchnorm2d ", 1.0), ("linear ", 1.0), ("softmax-CE ", 1.0),
]
#: time to 90% at most 1.1x PyTorch's: speed ratio >= 1 / 1.1
FASHION_T90_TARGET = round(1 / 1.1, 3)


def layer_target(name: str):
    """The issue's target ratio for a bench/layers.py case, or "" when it has none."""
    return next((t for prefix, t in LAYER_TARGETS if name.startswith(prefix)), "")


def summary_rows(only: set[str] | None = None) -> list[dict]:
    """One row per headline number, from the JSON files of the benchmarks in ``only`` (all
    that exist when None)."""
    rows = []

    def want(name):
        return only is None or name in only

    def add(bench, case, fb_val, torch_val, ratio, target="", unit=""):
        ok = ""
        if isinstance(target, (int, float)) and ratio is not None:
            ok = "yes" if ratio >= target else "no"
        rows.append({"bench": bench, "case": case, "fb": fb_val, "torch": torch_val,
                     "unit": unit, "ratio": ratio,
                     "target": f">= {target}" if isinstance(target, (int, float)) else target,
                     "met": ok})

    if (d := _load("autodiff.json")) and want("autodiff"):
        for r in d["rows"]:
            add("autodiff", r["phase"], r["fb_us"], r["torch_us"], r["ratio"], unit="us/op")
    if (d := _load("layers.json")) and want("layers"):
        for c in d["cases"]:
            target = layer_target(c["name"])
            add("layers", c["name"], c["fb_step"]["median_ms"], c["torch_step"]["median_ms"],
                c["ratio_step"], target, "ms f+b")
    if (d := _load("conv_algos.json")) and want("conv_algos") and isinstance(d, dict):
        # Conv2d(64, 64, 3, padding=1) on 64x64x32x32 as a fraction of the float32 GEMM peak
        # measured in the same run (nominal direct-convolution FLOPs: above 1 means fewer
        # multiplications than direct, as Winograd does)
        for r in d.get("rows", []):
            frac = r.get("fraction_of_gemm_peak")
            if r.get("case", "").startswith("conv2d 64->64") and frac:
                ours = frac.get(r.get("picked"))
                add("conv_algos", f"Conv2d(64,64,3,p=1) {r['mode']} ({r.get('picked')}) of GEMM "
                    f"peak", ours, frac.get("torch"), None, unit="x peak")
    if (d := _load("train.json")) and want("train"):
        for c in d["cases"]:
            add("train", c["case"], c["fb_ips"], c["torch_ips"], c["ratio"],
                c["target"] if c["target"] is not None else "", "img/s")
        if (r := d.get("peak_rss")):
            # for memory, ratio = torch / filterbank so that higher is better here too
            add("train", "ResNet-18 b64 training peak RSS", r["fb"]["peak_rss_mib"],
                r["torch"]["peak_rss_mib"], 1 / r["ratio"], round(1 / r["target"], 3),
                "MiB (ratio torch/fb)")
    if (d := _load("scaling.json")) and want("scaling"):
        for name, pts in d["sweeps"].items():
            for p in (pts[0], pts[-1]):  # the ends of each sweep
                label = f"ConvNet b{p['batch']} {p['side']}px depth {p['depth']}"
                add("scaling", f"{label} ({name} sweep)",
                    p["fb_ms_per_img"], p.get("torch_ms_per_img"), p.get("ratio"),
                    unit="ms/img")
    if (d := _load("footprint.json")) and want("footprint"):
        for r in d:
            add("footprint", r["what"], r["mib"], None, None, unit="MiB")
    if (d := _load("train_fashion.json")) and want("fashion"):
        for r in d["rows"]:
            add("fashion", f"{r['model']} images/s", r.get("fb_ips"), r.get("torch_ips"),
                r.get("ratio_ips"), unit="img/s")
            add("fashion", f"{r['model']} time to 90%", r.get("fb_t90"), r.get("torch_t90"),
                r.get("ratio_t90"), FASHION_T90_TARGET, unit="s")
    return rows


def print_summary(only: set[str] | None = None) -> None:
    rows = summary_rows(only)
    flat = []
    for r in rows:
        flat.append({**r, "fb": _fmt(r["fb"]), "torch": _fmt(r["torch"]),
                     "ratio": _fmt(r["ratio"], ".2f")})
    print("\nSummary (bench/results/*.json); ratio = filterbank speed / PyTorch speed, 1 = parity")
    print(table(flat, [("bench", "bench", ""), ("case", "case", ""), ("fb", "filterbank", ""),
                       ("torch", "PyTorch", ""), ("unit", "unit", ""), ("ratio", "ratio", ""),
                       ("target", "target", ""), ("met", "met", "")]))


def _fmt(v, spec=None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v != v:  # NaN
        return "n/a"
    if spec:
        return format(v, spec)
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and points")
    parser.add_argument("--skip", default="", help=f"comma-separated, from {ORDER}")
    parser.add_argument("--only", default="", help="comma-separated subset to run")
    parser.add_argument("--fashion", action="store_true", help="also run train_fashion.py")
    parser.add_argument("--summary", action="store_true", help="only print the table of "
                        "the existing results")
    parser.add_argument("--autodiff-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.autodiff_json:
        _autodiff_json(args.quick)
        return 0
    if args.summary:
        print_summary()
        return 0
    skip = {s for s in args.skip.split(",") if s}
    only = {s for s in args.only.split(",") if s}
    todo = [b for b in ORDER if b not in skip and (not only or b in only)
            and (b != "fashion" or args.fashion or "fashion" in only)]
    py = sys.executable
    q = ["--quick"] if args.quick else []
    commands = {
        "autodiff": [py, str(HERE / "run_all.py"), "--autodiff-json"] + q,
        "layers": [py, str(HERE / "layers.py")] + (["--rounds", "3"] if args.quick else []),
        "conv_algos": [py, str(HERE / "conv_algos.py")] + (["--rounds", "3"] if args.quick
                                                           else []),
        "train": [py, str(HERE / "train.py")] + q,
        "scaling": [py, str(HERE / "scaling.py")] + q,
        "footprint": [py, str(HERE / "footprint.py")],
        "fashion": [py, str(HERE / "train_fashion.py")] + q,
    }
    log: list[str] = []
    failed = []
    for name in todo:
        if not _run(commands[name], log):
            failed.append(name)
    # footprint builds two venvs with pip: without an index (offline CI) it cannot run, which
    # says nothing about speed, so it only warns
    fatal = [f for f in failed if f != "footprint"]
    _layers_chart()
    _footprint_chart()
    print_summary(set(todo) - set(failed))
    print("\nruns: " + "; ".join(log))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main())
