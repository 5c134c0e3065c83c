"""Lazy matplotlib access: the core never imports it; plots use the Agg canvas directly."""

from __future__ import annotations

import os
from pathlib import Path


def new_figure(figsize):
    """A matplotlib Figure attached to an Agg canvas (no pyplot, no global backend change)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - matplotlib is an optional dependency
        raise ImportError("filterbank.viz needs matplotlib: pip install 'filterbank[plots]'") \
            from e
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"expected a .png path, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path
