"""Confusion-matrix plot: PNG, class names on both axes, counts or rates in the cells."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from filterbank.train import confusion_matrix  # noqa: E402
from filterbank.viz import plot_confusion_matrix  # noqa: E402


def test_confusion_png_with_names_and_counts(tmp_path):
    cm = confusion_matrix([0, 1, 2, 2, 1, 0, 2], [0, 2, 2, 2, 1, 1, 0], num_classes=3)
    names = ["T-shirt", "Trouser", "Pullover"]
    fig = plot_confusion_matrix(cm, names, tmp_path / "cm.png")
    from PIL import Image

    with Image.open(tmp_path / "cm.png") as im:
        assert im.format == "PNG" and im.size[0] > 100
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    cells = [t.get_text() for t in ax.texts]
    assert cells == [str(v) for v in cm.ravel()]


def test_normalized_rows():
    fig = plot_confusion_matrix(np.array([[3, 1], [0, 0]]), normalize=True)
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.75", "0.25", "0.00", "0.00"]


@pytest.mark.parametrize("cm, names, match", [
    (np.zeros((2, 3)), None, "expected a square matrix"),
    (np.zeros((2, 2)), ["a"], "2 classes but 1 class names"),
])
def test_errors(cm, names, match):
    with pytest.raises(ValueError, match=match):
        plot_confusion_matrix(cm, names)
