"""What filters do networks learn: convolution kernels (and feature maps) as pictures.

:func:`plot_filters` (matplotlib; what ``filterbank train`` writes as ``filters.png``) draws
every kernel slice ``W[out, in]`` on one shared, symmetric, diverging colour scale: red is a
positive weight, blue a negative one, white zero, and the same colour means the same value in
every tile. The sign is what a filter does (a vertical edge detector is + on one side, - on the
other), so it must stay visible, and a shared scale lets filters be compared.

:func:`filter_grid` / :func:`save_filter_grid` (Pillow, no matplotlib) make a plain pixel grid
instead: each tile min-max normalised on its own, so a kernel's pattern shows whatever its scale
but neither its sign nor its size relative to the others.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from filterbank.tensor import Tensor


def _normalise(tile: np.ndarray) -> np.ndarray:
    lo, hi = float(tile.min()), float(tile.max())
    if hi - lo < 1e-12:
        return np.full(tile.shape, 0.5, np.float32)
    return ((tile - lo) / (hi - lo)).astype(np.float32)


def tile_grid(tiles: np.ndarray, ncols: int | None = None, pad: int = 1,
              scale: int = 1) -> np.ndarray:
    """Arrange ``tiles`` of shape (N, H, W) or (N, H, W, 3) with values in [0, 1] into one uint8
    image (rows x cols grid, ``pad`` pixels of white between tiles, each pixel repeated
    ``scale`` times)."""
    tiles = np.asarray(tiles, np.float32)
    if tiles.ndim not in (3, 4):
        raise ValueError(f"tile_grid: expected tiles of shape (N, H, W[, 3]), got {tiles.shape}")
    if scale > 1:
        tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w = tiles.shape[:3]
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    shape = (nrows * (h + pad) + pad, ncols * (w + pad) + pad) + tiles.shape[3:]
    grid = np.ones(shape, np.float32)
    for i in range(n):  # one iteration per tile, not per pixel
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = tiles[i]
    return (grid * 255 + 0.5).astype(np.uint8)


def filter_grid(weight, ncols: int | None = None, scale: int = 8) -> np.ndarray:
    """The kernels of a conv layer, shape (out_channels, in_channels, kH, kW), as one image."""
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: expected a 4-d conv weight (O, C, kH, kW), got {w.shape}")
    if w.shape[1] == 3:
        tiles = np.stack([_normalise(k.transpose(1, 2, 0)) for k in w])
    else:
        tiles = np.stack([_normalise(k.mean(axis=0)) for k in w])
    return tile_grid(tiles, ncols=ncols, scale=scale)


def feature_map_grid(activations, ncols: int | None = None, scale: int = 2) -> np.ndarray:
    """The channels of one activation map, shape (C, H, W) or (1, C, H, W), as one image."""
    a = activations.data if isinstance(activations, Tensor) else np.asarray(activations)
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise ValueError(f"feature_map_grid: expected a single sample, got shape {a.shape}")
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"feature_map_grid: expected (C, H, W), got {a.shape}")
    return tile_grid(np.stack([_normalise(c) for c in a]), ncols=ncols, scale=scale)


def save_image(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 grey or RGB image as PNG (Pillow), atomically."""
    from PIL import Image  # optional dependency: filterbank[images]

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def save_filter_grid(weight, path: str | os.PathLike, scale: int = 8) -> Path:
    """Save the kernels of a conv layer as a PNG grid (the lecture's learned-filters picture)."""
    return save_image(filter_grid(weight, scale=scale), path)


def plot_filters(weight, path: str | os.PathLike | None = None, *, max_out: int | None = None,
                 max_in: int = 8, title: str | None = None, cmap: str = "RdBu_r",
                 tile_inches: float | None = None, rgb: bool | None = None,
                 layer: str | None = None):
    """Draw the kernels of a conv layer on one shared, symmetric, diverging colour scale.

    With ``m = max |W|`` over the kernels shown, every tile uses ``vmin = -m``, ``vmax = +m``
    (red +, white 0, blue -), with one colour bar for all. A layer with one input channel
    shows its kernels in a grid labelled ``out k``; otherwise row ``k`` is output channel
    ``k`` and column ``j`` its slice for input channel ``j`` (``W[k, j]``). Three input
    channels (a first layer on RGB images) add an ``RGB`` column: the kernel as a colour
    image, ``0.5 + W / (2m)`` per channel (grey is 0), to see which colours it responds to.

    Args:
        weight: conv weight ``(out_channels, in_channels, kH, kW)`` (Tensor or array).
        path: write a PNG there (folders are created).
        max_out: at most this many output channels are drawn, the first ones (default: 64
            for one input channel, else 16: one row each).
        max_in: at most this many input channels per output channel.
        title: figure title (default: the shape and the colour scale).
        cmap: a diverging matplotlib colour map.
        tile_inches: size of one kernel tile in inches (default 0.9, about 110 pixels at the
            saved 120 dpi; 0.7 beyond 48 tiles).
        rgb: add the colour column (default: when there are exactly 3 input channels).
        layer: the layer's name, put in front of the default title (``"conv2: ..."``).

    Returns:
        the matplotlib Figure.

    Example:
        >>> import filterbank as fb
        >>> conv = fb.nn.Conv2d(1, 6, 5)
        >>> plot_filters(conv.weight, "runs/filters.png")  # doctest: +SKIP
    """
    from filterbank.viz._mpl import new_figure, save_png

    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=np.float64)
    if w.ndim != 4 or 0 in w.shape:
        raise ValueError(f"plot_filters: expected a 4-d conv weight (O, C, kH, kW), got shape "
                         f"{w.shape}")
    if max_out is None:
        max_out = 64 if w.shape[1] == 1 else 16
    for name, value in (("max_out", max_out), ("max_in", max_in)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"plot_filters: expected {name} to be an int >= 1, got {value!r}")
    n_out, n_in, kh, kw = w.shape
    shown = w[:max_out, :max_in]
    o, c = shown.shape[:2]
    m = float(np.abs(shown).max()) or 1.0  # all zeros: any scale shows white
    rgb = (n_in == 3) if rgb is None else bool(rgb and n_in == 3)
    if c == 1:  # one slice per filter: a compact grid of filters
        ncols = min(o, max(1, math.ceil(math.sqrt(o * 1.5))))
        nrows = math.ceil(o / ncols)
        cells = [(i // ncols, i % ncols, i, 0) for i in range(o)]
    else:
        ncols, nrows = c + int(rgb), o
        cells = [(i, j, i, j) for i in range(o) for j in range(c)]
    if tile_inches is None:
        tile_inches = 0.9 if nrows * ncols <= 48 else 0.7
    aspect = kw / kh
    tile_w, tile_h = tile_inches * min(aspect, 2.0), tile_inches / max(aspect, 0.5)
    fig = new_figure((max(4.5, ncols * tile_w + 2.2), max(3.0, nrows * tile_h + 1.4)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    im = None
    for r, col, i, j in cells:
        ax = axes[r, col]
        ax.set_axis_on()
        im = ax.imshow(shown[i, j], cmap=cmap, vmin=-m, vmax=m, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if c == 1:
            ax.set_title(f"out {i}", fontsize=8, pad=2)
        else:
            if r == 0:
                ax.set_title(f"in {j}", fontsize=8, pad=2)
            if col == 0:
                ax.set_ylabel(f"out {i}", fontsize=8, rotation=0, ha="right", va="center")
    if rgb and c > 1:
        for i in range(o):
            ax = axes[i, c]
            ax.set_axis_on()
            ax.imshow(np.clip(0.5 + shown[i, :3].transpose(1, 2, 0) / (2 * m), 0, 1),
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("RGB", fontsize=8, pad=2)
    bar = fig.colorbar(im, ax=axes, shrink=min(1.0, max(0.4, 4.0 / max(nrows, 1))),
                       fraction=0.05 if ncols > 2 else 0.1, pad=0.02)
    bar.set_label("weight (red +, white 0, blue -)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if title is None:
        title = f"{n_out} filters of {n_in}x{kh}x{kw}, one colour scale for all: \u00b1{m:.3g}"
        if layer:
            title = f"{layer}: {title}"
    parts = []
    if o < n_out:
        parts.append(f"first {o} of {n_out} output channels")
    if c < n_in:
        parts.append(f"first {c} of {n_in} input channels")
    fig.suptitle(title + (f"\n({', '.join(parts)})" if parts else ""), fontsize=10)
    if path is not None:
        save_png(fig, path)
    return fig


def save_filters_plot(weight, path: str | os.PathLike, **kwargs) -> Path:
    """:func:`plot_filters` written to ``path`` (a .png); returns the path."""
    plot_filters(weight, path, **kwargs)
    return Path(path)
