"""Learning-curve plots: PNG written, the gap's sign spelled out and shaded, the learning-rate
panel, matplotlib imported lazily."""

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
    # time is not plotted; lr has its own panel
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["loss", "accuracy", "learning rate"]
    assert sum("overfitting" in t for t in texts(fig)) == 2
    assert "val - train loss = +0.800\nbig gap, grown from +0.100: overfitting" in texts(fig)
    assert "train - val accuracy = +0.290\nbig gap, grown from +0.000: overfitting" in texts(fig)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["train loss", "validation loss"]
    np.testing.assert_array_equal(fig.axes[1].lines[1].get_ydata(), OVERFIT["val_accuracy"])


def test_small_gap_is_not_called_overfitting(tmp_path):
    fig = plot_history(GOOD, metrics=["loss", "accuracy"])
    notes = [t for t in texts(fig) if t]
    assert len(notes) == 2 and all(t.endswith("\n(overfitting if it grows)") for t in notes)
    assert gap_message("loss", 0.1, 0.9).endswith("big gap = overfitting")
    assert gap_message("accuracy", 0.9, 0.89) == (
        "train - val accuracy = +0.010\n(overfitting if it grows)")
    assert gap_message("loss", 0.30, 0.34) == "val - train loss = +0.040\n(overfitting if it grows)"
    assert gap_message("loss", 0.6, 0.55).startswith(
        "val - train loss = -0.050\n< 0: validation better")
    assert gap_message("accuracy", 0.80, 0.77, start_gap=-0.05) == (
        "train - val accuracy = +0.030\ngrown from -0.050: overfitting starts")
    assert gap_message("loss", 1.0, 1.1, start_gap=0.09) == (
        "val - train loss = +0.100\n(overfitting if it grows)")  # +0.01: not growing
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


def test_gap_is_shaded_where_validation_is_worse_and_written_above_the_panel():
    history = {"loss": [1.0, 0.5, 0.3], "val_loss": [0.9, 0.6, 0.7]}
    fig = plot_history(history)
    ax = fig.axes[0]
    (shade,) = ax.collections
    assert shade.get_label() == "gap: validation worse"
    xs = shade.get_paths()[0].vertices[:, 0]
    assert xs.min() > 1.0 and xs.max() == 3.0  # epoch 1 (val better) is not shaded
    fig.canvas.draw()
    note = next(t for t in ax.texts if t.get_text().startswith("val - train loss"))
    assert note.get_window_extent().y0 >= ax.get_window_extent().y1  # never over the curves
    better = plot_history({"loss": [1.0, 0.6], "val_loss": [0.9, 0.5]})
    assert "gap: validation worse" not in [t.get_text() for t in better.axes[0].get_legend()
                                           .get_texts()]


def test_learning_rate_panel():
    history = {"loss": [1.0, 0.5, 0.4, 0.3], "lr": [0.1, 0.1, 0.01, 0.001]}
    fig = plot_history(history, metrics=["loss"])  # as run.py calls it
    lr_ax = fig.axes[1]
    assert lr_ax.get_title(loc="left") == "learning rate" and lr_ax.get_yscale() == "log"
    np.testing.assert_array_equal(lr_ax.lines[0].get_ydata(), history["lr"])
    flat = plot_history({"loss": [1.0, 0.5], "lr": [0.05, 0.05]}).axes[1]
    assert flat.get_yscale() == "linear" and flat.get_ylim()[0] == 0
    assert len(plot_history(history, lr_panel=False).axes) == 1
    assert len(plot_history({"loss": [1.0], "lr": [None]}).axes) == 1


def test_gap_message_does_not_call_a_shrinking_negative_gap_overfitting():
    from filterbank.viz import gap_message

    # training accuracy catching up with validation: -0.186 -> -0.032 (validation still better)
    msg = gap_message("accuracy", 0.533, 0.565, start_gap=-0.186)
    assert "overfitting" not in msg.split("\n", 1)[1] and "validation better" in msg
    # validation worse and the gap has grown: that is overfitting
    assert "overfitting" in gap_message("accuracy", 0.95, 0.80, start_gap=0.01)
