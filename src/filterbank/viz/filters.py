"""What filters do networks learn: tile convolution kernels (or feature maps) into one image.

Each tile is min-max normalised on its own, so a kernel's pattern shows whatever its scale;
single-channel kernels are grey, three-channel kernels RGB, others the mean over channels.
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
