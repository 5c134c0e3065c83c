"""Learning curves: training and validation loss/accuracy per epoch, with the gap annotated.

The lecture's reading of these plots: training loss keeps falling while validation loss stops
falling or rises, and the *gap* between the two curves grows. A big gap = overfitting (the model
memorises the training set); both curves high and close = underfitting. The plot shades the gap,
writes its sign out (``val - train loss = +0.12``) and shows the learning rate beside the curves.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

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


def _is_big(metric: str, gap: float, train: float) -> bool:
    if "loss" in metric:
        return gap > 0.2 * max(abs(train), 1e-8) and gap > 0.05
    return gap > 0.05


def gap_message(metric: str, train: float, val: float, start_gap: float | None = None) -> str:
    """The annotation for the final train/validation gap, its sign spelled out.

    The gap is taken so that positive means "validation is worse": ``val - train`` for a loss
    (lower is better), ``train - val`` for accuracy-like metrics. It is called big beyond 0.05
    (and, for a loss, beyond 20 % of the training loss). ``start_gap`` (the gap at the first
    epoch) lets the message say whether it grew: a gap that grows while training improves is
    the signature of overfitting; a negative one usually means the training numbers were
    measured with dropout or augmentation on.

    Example:
        >>> print(gap_message("loss", 0.30, 0.34))
        val - train loss = +0.040
        (overfitting if it grows)
    """
    lower_is_better = "loss" in metric
    gap = (val - train) if lower_is_better else (train - val)
    head = f"{'val - train' if lower_is_better else 'train - val'} {metric} = {gap:+.3f}"
    # overfitting is validation worse *and* worse than it was: a negative gap that shrinks
    # (training catching up with validation) is not
    growing = start_gap is not None and gap > 0 and _is_big(metric, gap - start_gap, train)
    if _is_big(metric, gap, train):
        note = (f"big gap, grown from {start_gap:+.3f}: overfitting" if growing
                else "big gap = overfitting")
    elif growing:
        note = f"grown from {start_gap:+.3f}: overfitting starts"
    elif gap < 0:
        note = "< 0: validation better\n(dropout or augmentation in training?)"
    else:
        note = "(overfitting if it grows)"
    return f"{head}\n{note}"


def _lr_values(history: dict) -> list | None:
    lr = history.get("lr")
    if not lr or all(v is None for v in lr):
        return None
    return lr


def plot_history(history: dict, path: str | os.PathLike | None = None, metrics=None,
                 title: str | None = None, annotate_gap: bool = True, lr_panel: bool = True):
    """Plot training (solid) and validation (dashed) curves, one panel per metric, and the
    learning rate.

    Where both curves exist, the gap between them is shaded (red where validation is worse)
    and the final gap annotated with its sign spelled out, e.g. ``val - train loss = +0.120``
    and what it suggests (see :func:`gap_message`). When the history has an ``lr`` column, a
    last panel shows the learning rate per epoch (log scale when it spans more than 10x), so
    a jump in the curves can be matched with a step of the schedule.

    Args:
        history: a :class:`~filterbank.train.History` (dict of per-epoch lists: ``loss``,
            ``val_loss``, ``accuracy``, ``val_accuracy``, ``lr`` ...).
        path: write a PNG there (folders are created).
        metrics: keys to plot (default: ``loss`` and every training metric).
        title: figure title.
        annotate_gap: mark the final train/validation gap.
        lr_panel: add the learning-rate panel when the history has ``lr``.

    Returns:
        the matplotlib Figure.

    Example:
        >>> plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.9]}, "runs/curves.png")
        ... # doctest: +SKIP
    """
    metrics = _pairs(history, metrics)
    lr = _lr_values(history) if lr_panel else None
    panels = len(metrics) + (lr is not None)
    fig = new_figure((4.4 * panels, 3.6))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for ax, m in zip(axes, metrics):
        train = history[m]
        epochs = history.get("epoch") or list(range(1, len(train) + 1))
        ax.plot(epochs, train, "o-", color="tab:blue", label=f"train {m}", markersize=3)
        val = history.get(f"val_{m}")
        if val is not None:
            ax.plot(epochs, val, "s--", color="tab:orange", label=f"validation {m}",
                    markersize=3)
            both = [(e, t, v) for e, t, v in zip(epochs, train, val)
                    if t is not None and v is not None]
            if both:
                e_, t_, v_ = (np.array(c, dtype=float) for c in zip(*both))
                worse = v_ > t_ if "loss" in m else v_ < t_
                ax.fill_between(e_, t_, v_, where=worse, interpolate=True, color="tab:red",
                                alpha=0.12, linewidth=0,
                                label="gap: validation worse" if worse.any() else None)
            if annotate_gap and both:
                e, t, v = both[-1]
                start = both[0][2] - both[0][1] if "loss" in m else both[0][1] - both[0][2]
                ax.annotate("", xy=(e, v), xytext=(e, t),
                            arrowprops={"arrowstyle": "<->", "color": "tab:red"})
                # above the panel, right-aligned: never over the curves or the legend
                ax.annotate(gap_message(m, t, v, start if len(both) > 1 else None),
                            xy=(1, 1), xycoords="axes fraction", xytext=(0, 4),
                            textcoords="offset points", ha="right", va="bottom",
                            color="tab:red", fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.set_title(m, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if lr is not None:
        ax = axes[-1]
        epochs = history.get("epoch") or list(range(1, len(lr) + 1))
        pts = [(e, v) for e, v in zip(epochs, lr) if v is not None]
        ax.plot(*zip(*pts), "o-", color="tab:green", markersize=3, drawstyle="steps-post")
        positive = [v for _, v in pts if v > 0]
        if positive and len(positive) == len(pts) and max(positive) > 10 * min(positive):
            ax.set_yscale("log")
        elif positive and len(positive) == len(pts):
            ax.set_ylim(0, 1.15 * max(positive))  # from 0: a constant rate is a flat line
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        ax.set_title("learning rate", loc="left")
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    if path is not None:
        save_png(fig, path)
    return fig


def save_history_plot(history: dict, path: str | os.PathLike, **kwargs) -> Path:
    """:func:`plot_history` written to ``path`` (a .png); returns the path."""
    plot_history(history, path, **kwargs)
    return Path(path)
