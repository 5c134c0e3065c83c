"""The confusion matrix as an image: rows are true classes, columns predicted classes."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from filterbank.viz._mpl import new_figure, save_png


def plot_confusion_matrix(cm, class_names: Sequence[str] | None = None,
                          path: str | os.PathLike | None = None, normalize: bool = False,
                          title: str = "Confusion matrix", cmap: str = "Blues"):
    """Draw a confusion matrix with class names and the count (or rate) in every cell.

    Args:
        cm: square matrix ``cm[true, predicted]`` (e.g. from
            :func:`filterbank.train.confusion_matrix`).
        class_names: labels of the classes (default 0..K-1).
        path: write a PNG there.
        normalize: show each row as fractions of the true class (recall on the diagonal).
        title: figure title.
        cmap: matplotlib colour map.

    Returns:
        the matplotlib Figure.

    Example:
        >>> plot_confusion_matrix([[5, 1], [2, 7]], ["cat", "dog"], "runs/cm.png")
        ... # doctest: +SKIP
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square matrix, got shape "
                         f"{cm.shape}")
    k = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    if len(names) != k:
        raise ValueError(f"plot_confusion_matrix: {k} classes but {len(names)} class names")
    values = cm.astype(np.float64)
    if normalize:
        rows = values.sum(axis=1, keepdims=True)
        values = np.divide(values, rows, out=np.zeros_like(values), where=rows > 0)
    size = 1.5 + 0.55 * k
    fig = new_figure((size + 1.2, size))
    ax = fig.subplots()
    im = ax.imshow(values, cmap=cmap, vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), labels=names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    threshold = values.max() / 2 if values.size else 0
    fontsize = 9 if k <= 12 else 6
    for i in range(k):  # one label per cell: K^2 text objects, fine for class counts
        for j in range(k):
            text = f"{values[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if values[i, j] > threshold else "black")
    if path is not None:
        save_png(fig, path)
    return fig
