"""Learning-curve plots: PNG written, gap annotated, matplotlib imported lazily."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from filterbank.viz import gap_message, plot_history, save_history_plot  # noqa: E402

OVERFIT = {"epoch": [1, 2, 3, 4], "loss": [1.0, 0.6, 0.3, 0.1],
           "val_loss": [1.1, 0.8, 0.8, 0.9], "accuracy": [0.5, 0.8, 0.9, 0.99],
           "val_accuracy": [0.5, 0.7, 0.72, 0.7], "lr": [0.1] * 4, "time": [1.0] * 4}
GOOD = {"loss": [1.0, 0.5], "val_loss": [1.0, 0.52], "accuracy": [0.5, 0.9],
        "val_accuracy": [0.5, 0.89]}


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def read_png(path):
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im)


def test_curves_png_and_overfitting_annotation(tmp_path):
    path = tmp_path / "sub" / "curves.png"
    fig = plot_history(OVERFIT, path, title="run")
    img = read_png(path)
    assert img.shape[0] > 200 and img.shape[1] > 400
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]  # lr/time not plotted
    assert sum("big gap = overfitting" in t for t in texts(fig)) == 2
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["train loss", "validation loss"]
    np.testing.assert_array_equal(fig.axes[1].lines[1].get_ydata(), OVERFIT["val_accuracy"])


def test_small_gap_is_not_called_overfitting(tmp_path):
    fig = plot_history(GOOD, metrics=["loss", "accuracy"])
    assert texts(fig) and not any("overfitting" in t for t in texts(fig))
    assert gap_message("loss", 0.1, 0.9).endswith("big gap = overfitting")
    assert gap_message("accuracy", 0.9, 0.89) == "gap +0.010"
    out = save_history_plot({"loss": [1.0, 0.5]}, tmp_path / "c.png")  # no validation curve
    assert read_png(out).size


def test_errors():
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_history({"lr": [0.1]})
    with pytest.raises(ValueError, match="expected a .png path"):
        plot_history(GOOD, "curves.jpg")


def test_core_does_not_import_matplotlib():
    code = ("import sys, filterbank, filterbank.train, filterbank.data, filterbank.viz; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
