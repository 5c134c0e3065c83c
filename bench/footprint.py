"""Install footprint: the size of a fresh venv's site-packages with filterbank's core, and with
every optional extra. Prints MiB and writes ``bench/results/footprint.json``.

Run: ``.venv/bin/python bench/footprint.py`` (creates two throwaway venvs under a temp dir).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dir_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            fp = os.path.join(dirpath, f)
            if not os.path.islink(fp):
                total += os.path.getsize(fp)
    return total


def measure(spec: str, tmp: Path, name: str) -> dict:
    venv = tmp / name
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    empty = dir_size(site)
    # install with the outer pip into the new environment's site-packages (non-editable copy)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-warn-script-location",
                    "--target", str(site), spec], check=True)
    return {"spec": spec, "mib": round((dir_size(site) - empty) / 2**20, 1)}


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = [measure(str(ROOT), tmp, "core"), measure(f"{ROOT}[all]", tmp, "all")]
    rows[0]["what"] = "core: numpy, safetensors, tqdm"
    rows[1]["what"] = "all extras: + matplotlib, pillow, onnx"
    for r in rows:
        print(f"{r['what']:<40} {r['mib']:>8.1f} MiB")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "footprint.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
