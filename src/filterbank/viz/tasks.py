"""Pictures of the tasks beyond classification: predictions drawn on images (boxes with
labels and scores, mask overlays, regressed points), precision-recall curves and per-class
bars. Images are drawn with Pillow; plots with matplotlib (Agg)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from filterbank.viz._mpl import new_figure, save_png

__all__ = ["PALETTE", "caption", "draw_boxes", "draw_points", "image_sheet", "overlay_mask",
           "plot_class_bars", "plot_pr_curves", "to_rgb8"]

#: Distinct colours for classes (class ``k`` is ``PALETTE[k % len(PALETTE)]``).
PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]


def _pil():
    try:
        from PIL import Image, ImageDraw
    except ImportError as e:  # pragma: no cover - Pillow is an optional dependency
        raise ImportError("drawing predictions needs Pillow: pip install "
                          "'filterbank[images]'") from e
    return Image, ImageDraw


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """A ``(C, H, W)`` or ``(H, W)`` float image in [0, 1] (or uint8) as ``(H, W, 3)`` uint8."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"to_rgb8: expected an image (C, H, W) or (H, W) with 1 or 3 "
                         f"channels, got shape {np.asarray(image).shape}")
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float64), 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


def _upscaled(image: np.ndarray, scale: int):
    Image, _ = _pil()
    rgb = to_rgb8(image)
    tile = Image.fromarray(rgb)
    if scale != 1:
        tile = tile.resize((rgb.shape[1] * scale, rgb.shape[0] * scale), Image.NEAREST)
    return tile


def draw_boxes(image: np.ndarray, boxes, labels, classes: Sequence[str], scores=None,
               scale: int = 4, colours: Sequence | None = None, width: int = 2,
               dashed: bool = False, text: bool = True):
    """The image upscaled ``scale`` times with xyxy pixel ``boxes`` drawn, each labelled with
    its class name (and score) unless ``text`` is False; returns a PIL image. ``image`` may
    also be a PIL image already at the drawing scale (to draw a second set of boxes)."""
    Image, ImageDraw = _pil()
    tile = image.copy() if isinstance(image, Image.Image) else _upscaled(image, scale)
    pen = ImageDraw.Draw(tile)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1)
    for k, (box, label) in enumerate(zip(boxes, labels)):
        colour = tuple((colours or PALETTE)[int(label) % len(colours or PALETTE)])
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        x1, x2 = min(x1, x2), max(x1, x2)  # a regressed box may come out inverted
        y1, y2 = min(y1, y2), max(y1, y2)
        if dashed:
            for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)),
                         ((x1, y2), (x1, y1))):
                n = max(1, int(math.hypot(b[0] - a[0], b[1] - a[1]) // 6))
                for i in range(0, n, 2):
                    t0, t1 = i / n, min(1.0, (i + 1) / n)
                    pen.line([(a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0),
                              (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1)],
                             fill=colour, width=max(1, width - 1))
        else:
            pen.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        if not text:
            continue
        name = str(classes[int(label)]) if 0 <= int(label) < len(classes) else str(int(label))
        if scores is not None:
            name += f" {float(np.asarray(scores).reshape(-1)[k]):.2f}"
        tx, ty = x1 + 2, max(0.0, y1 - 11) if y1 >= 11 else y1 + 2
        pen.rectangle([tx - 1, ty, tx + 6 * len(name) + 1, ty + 10], fill=(0, 0, 0))
        pen.text((tx, ty - 1), name, fill=colour)
    return tile


def draw_points(image, points, colour=(230, 25, 75), scale: int = 4, radius: int = 3,
                closed: bool = True):
    """Points ``(K, 2)`` (x, y pixels) drawn as dots joined by lines (a polygon when
    ``closed``) on the image upscaled ``scale`` times; returns a PIL image."""
    Image, ImageDraw = _pil()
    tile = image.copy() if isinstance(image, Image.Image) else _upscaled(image, scale)
    pen = ImageDraw.Draw(tile)
    pts = [(float(x) * scale, float(y) * scale) for x, y in np.asarray(points).reshape(-1, 2)]
    if len(pts) > 1:
        pen.line(pts + ([pts[0]] if closed else []), fill=tuple(colour), width=2)
    for x, y in pts:
        pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=tuple(colour))
    return tile


def overlay_mask(image: np.ndarray, mask: np.ndarray, alpha: float = 0.55, scale: int = 4,
                 background: int | None = 0, ignore_index: int | None = None):
    """The image with each pixel's class painted over it in :data:`PALETTE` colours
    (``alpha`` opaque; the ``background`` class and ``ignore_index`` pixels left clear),
    upscaled ``scale`` times; returns a PIL image."""
    Image, _ = _pil()
    rgb = to_rgb8(image).astype(np.float64)
    m = np.asarray(mask)
    if m.shape != rgb.shape[:2]:
        raise ValueError(f"overlay_mask: mask shape {m.shape} does not match the image's "
                         f"{rgb.shape[:2]}")
    colours = np.array(PALETTE, np.float64)
    # class k > background gets PALETTE[k - 1]: the shape classes keep the detector's colours
    index = (m - (1 if background == 0 else 0)) % len(PALETTE)
    paint = colours[index]
    on = np.ones(m.shape, bool)
    if background is not None:
        on &= m != background
    if ignore_index is not None:
        on &= m != ignore_index
    rgb[on] = (1 - alpha) * rgb[on] + alpha * paint[on]
    tile = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    if scale != 1:
        tile = tile.resize((m.shape[1] * scale, m.shape[0] * scale), Image.NEAREST)
    return tile


def caption(image, lines: Sequence[str], scale: int = 4):
    """The image upscaled ``scale`` times with text ``lines`` written in a band below it;
    returns a PIL image."""
    Image, ImageDraw = _pil()
    tile = image if isinstance(image, Image.Image) else _upscaled(image, scale)
    out = Image.new("RGB", (tile.width, tile.height + 12 * len(lines) + 4), "white")
    out.paste(tile, (0, 0))
    pen = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        pen.text((3, tile.height + 2 + 12 * i), str(line), fill=(0, 0, 0))
    return out


def image_sheet(tiles: Sequence, path: str | os.PathLike, columns: int = 4,
                titles: Sequence[str] | None = None, pad: int = 4) -> Path:
    """PIL images laid out in a grid (``columns`` wide, optional title above each) saved as
    a PNG; returns the path."""
    Image, ImageDraw = _pil()
    if not tiles:
        raise ValueError("image_sheet: no images to lay out")
    w = max(t.width for t in tiles)
    h = max(t.height for t in tiles) + (12 if titles else 0)
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + pad) + pad), "white")
    pen = ImageDraw.Draw(sheet)
    for k, t in enumerate(tiles):
        x, y = pad + (k % columns) * (w + pad), pad + (k // columns) * (h + pad)
        if titles:
            pen.text((x, y), str(titles[k])[: w // 6], fill=(0, 0, 0))
            y += 12
        sheet.paste(t, (x, y))
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"image_sheet: expected a .png path, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG")
    return path


def plot_pr_curves(curves: dict, classes: Sequence[str], path: str | os.PathLike | None = None,
                   ap: dict | None = None, title: str = "Precision-recall at IoU 0.5"):
    """One precision-recall curve per class (``curves[class] = {"recall", "precision"}``, as
    :func:`~filterbank.train.metrics.mean_average_precision`'s ``pr_curve``), the class's AP in
    the legend when ``ap`` (class -> AP) is given; returns the Figure (PNG at ``path``)."""
    fig = new_figure((5.5, 4.2))
    ax = fig.add_subplot()
    for c, curve in sorted(curves.items()):
        name = classes[int(c)] if 0 <= int(c) < len(classes) else str(c)
        label = f"{name} (AP {ap[c]:.3f})" if ap and c in ap else name
        ax.plot(curve["recall"], curve["precision"], label=label,
                color=np.array(PALETTE[int(c) % len(PALETTE)]) / 255, lw=1.8)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    if path is not None:
        save_png(fig, path)
    return fig


def plot_class_bars(values: Sequence[float], classes: Sequence[str],
                    path: str | os.PathLike | None = None, title: str = "",
                    xlabel: str = "IoU", mean: float | None = None):
    """Horizontal bars, one per class, value printed at the end (IoU per class, AP per
    class); a dashed line at ``mean``; returns the Figure (PNG at ``path``)."""
    values = np.asarray(values, np.float64)
    if len(values) != len(classes):
        raise ValueError(f"plot_class_bars: {len(values)} values but {len(classes)} classes")
    fig = new_figure((5.5, 0.45 * len(classes) + 1.3))
    ax = fig.add_subplot()
    y = np.arange(len(classes))[::-1]
    shown = np.nan_to_num(values, nan=0.0)
    ax.barh(y, shown, color=[np.array(PALETTE[k % len(PALETTE)]) / 255
                             for k in range(len(classes))])
    for yi, v in zip(y, values):
        ax.text(min(float(np.nan_to_num(v)), 1.0) + 0.01, yi,
                "n/a" if np.isnan(v) else f"{v:.3f}", va="center", fontsize=8)
    if mean is not None:
        ax.axvline(mean, ls="--", color="0.3", lw=1)
    ax.set_yticks(y, [str(c) for c in classes])
    ax.set(xlim=(0, 1.12), xlabel=xlabel, title=title)
    if path is not None:
        save_png(fig, path)
    return fig
