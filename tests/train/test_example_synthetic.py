"""examples/train_synthetic.py: the data generator, and a shortened run of the same code path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_synthetic.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_synthetic", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bars_are_seeded_and_oriented(example):
    x, y = example.make_bars(400, generator=np.random.default_rng(1))
    x2, y2 = example.make_bars(400, generator=np.random.default_rng(1))
    assert x.dtype == np.uint8 and x.shape == (400, 16, 16) and y.dtype == np.int64
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert np.bincount(y, minlength=4).min() > 60  # all four classes, roughly balanced
    # orientation is in the pixels: the bright pixels' principal axis follows the class angle
    x, y = example.make_bars(40, generator=np.random.default_rng(2), noise=0.02)
    for img, label in zip(x, y):
        rows, cols = np.nonzero(img > 200)
        cov = np.cov(np.stack([cols, -rows]).astype(float))
        v = np.linalg.eigh(cov)[1][:, -1]
        angle = np.degrees(np.arctan2(v[1], v[0])) % 180
        diff = min(abs(angle - 45 * label), 180 - abs(angle - 45 * label))
        assert diff < 25, (label, angle)


def test_short_run_writes_plots_and_checkpoints(example, tmp_path, capsys):
    result = example.main(["--out", str(tmp_path), "--epochs", "2", "--train-size", "384",
                           "--test-size", "128", "--no-progress"])
    assert result["history"]["epoch"] == [1, 2]
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["confusion"].sum() == 128
    for name in ("curves.png", "confusion.png", "history.csv", "checkpoints/last.json",
                 "checkpoints/best.json"):
        assert (tmp_path / name).exists(), name
    out = capsys.readouterr().out
    assert "test accuracy" in out and "macro avg" in out


def test_default_run_reaches_95_percent(example, tmp_path):
    result = example.run(tmp_path, progress=False)  # the defaults of the command line
    assert result["test_accuracy"] > 0.95
    assert result["history"]["val_accuracy"][-1] == pytest.approx(result["test_accuracy"])
