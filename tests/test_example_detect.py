"""examples/detect_shapes.py runs end to end at a tiny size (not its accuracy target)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "detect_shapes.py"


def test_tiny_run_prints_the_metrics_and_draws(tmp_path):
    png = tmp_path / "pred.png"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--epochs", "1", "--train-size", "64", "--test-size",
         "16", "--batch-size", "16", "--png", str(png)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mAP@0.5" in proc.stdout and "mAP@[.5:.95]" in proc.stdout
    line = next(s for s in proc.stdout.splitlines() if s.startswith("metrics "))
    metrics = json.loads(line[len("metrics "):])
    for key in ("map_50", "map", "map_75", "mar", "train_seconds", "epochs", "steps"):
        assert key in metrics, key
    assert -1 <= metrics["map_50"] <= 1 and -1 <= metrics["map"] <= 1
    assert metrics["epochs"] == 1 and metrics["steps"] == 4
    if metrics["png"] is not None:  # Pillow is an optional extra
        assert png.exists() and png.stat().st_size > 0


def test_model_output_has_the_yolo_layout():
    import importlib.util

    import filterbank as fb

    spec = importlib.util.spec_from_file_location("detect_shapes", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model(num_classes=5, image_size=64, width=4)
    with fb.no_grad():
        out = model(fb.tensor(np.zeros((2, 3, 64, 64), np.float32))).numpy()
    assert out.shape == (2, 4, 4, 2 * 5 + 5)
    assert np.all((out > 0) & (out < 1))  # sigmoid outputs
    with pytest.raises(ValueError, match="multiple of 16"):
        module.run(image_size=40, png=None, log=lambda *_: None)
