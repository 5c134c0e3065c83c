"""Learning curves: training and validation loss/accuracy per epoch, with the gap annotated.

The lecture's reading of these plots: training loss keeps falling while validation loss stops
falling or rises, and the *gap* between the two curves grows. A big gap = overfitting (the model
memorises the training set); both curves high and close = underfitting.
"""

from __future__ import annotations

import os
from pathlib import Path

from filterbank.viz._mpl import new_figure, save_png


def _pairs(history: dict, metrics) -> list[str]:
    if metrics is None:
        metrics = ["loss"] + [k for k in history if k not in ("loss", "epoch", "lr", "time",
                                                                "images_per_sec", "skipped")
                              and not k.startswith("val_")]
    metrics = [m for m in metrics if m in history]
    if not metrics:
        raise ValueError(f"plot_history: nothing to plot; the history has keys {sorted(history)}")
    return metrics


def gap_message(metric: str, train: float, val: float) -> str:
    """The annotation for the final train/validation gap (the overfitting hint)."""
    lower_is_better = "loss" in metric
    gap = (val - train) if lower_is_better else (train - val)
    if lower_is_better:
        big = gap > 0.2 * max(abs(train), 1e-8) and gap > 0.05
    else:
        big = gap > 0.05
    text = f"gap {gap:+.3f}"
    if big:
        text += "\nbig gap = overfitting"
    return text


def plot_history(history: dict, path: str | os.PathLike | None = None, metrics=None,
                 title: str | None = None, annotate_gap: bool = True):
    """Plot training (solid) and validation (dashed) curves, one panel per metric.

    Args:
        history: a :class:`~filterbank.train.History` (dict of per-epoch lists: ``loss``,
            ``val_loss``, ``accuracy``, ``val_accuracy`` ...).
        path: write a PNG there (folders are created).
        metrics: keys to plot (default: ``loss`` and every training metric).
        title: figure title.
        annotate_gap: mark the final train/validation gap ("big gap = overfitting").

    Returns:
        the matplotlib Figure.

    Example:
        >>> plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.9]}, "runs/curves.png")
        ... # doctest: +SKIP
    """
    metrics = _pairs(history, metrics)
    fig = new_figure((4.2 * len(metrics), 3.4))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, m in zip(axes, metrics):
        train = history[m]
        epochs = history.get("epoch") or list(range(1, len(train) + 1))
        ax.plot(epochs, train, "o-", color="tab:blue", label=f"train {m}", markersize=3)
        val = history.get(f"val_{m}")
        if val is not None:
            ax.plot(epochs, val, "s--", color="tab:orange", label=f"validation {m}",
                    markersize=3)
            last = [(e, t, v) for e, t, v in zip(epochs, train, val)
                    if t is not None and v is not None]
            if annotate_gap and last:
                e, t, v = last[-1]
                ax.annotate("", xy=(e, v), xytext=(e, t),
                            arrowprops={"arrowstyle": "<->", "color": "tab:red"})
                ax.annotate(gap_message(m, t, v), xy=(e, (t + v) / 2), xytext=(-8, 0),
                            textcoords="offset points", ha="right", va="center",
                            color="tab:red", fontsize=8,
                            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none",
                                  "alpha": 0.8})
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.set_title(m)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    if path is not None:
        save_png(fig, path)
    return fig


def save_history_plot(history: dict, path: str | os.PathLike, **kwargs) -> Path:
    """:func:`plot_history` written to ``path`` (a .png); returns the path."""
    plot_history(history, path, **kwargs)
    return Path(path)
