"""Pictures of what a network learned (issue 18): the filters of any convolution, the feature
maps of one image, saliency and Grad-CAM overlays, activation-maximisation tiles, DeepDream
octaves, nearest-neighbour retrievals and classic image kernels.

Images come in the model's input units, ``x = (pixel / 255 - mean[c]) / std[c]``, and are
shown de-normalised back to pixels (:func:`denormalize`). Maps use perceptually uniform colour
maps (``inferno`` for magnitudes such as saliency and Grad-CAM, ``viridis`` for activations;
``RdBu_r`` centred on 0 for signed values), each with its colour bar.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from filterbank.nn.conv import Conv2d
from filterbank.nn.module import Module
from filterbank.nn.utils import find_module
from filterbank.tensor import Tensor
from filterbank.viz._mpl import new_figure, save_png
from filterbank.viz.filters import plot_filters

__all__ = ["conv_layers", "denormalize", "plot_activation_maximization", "plot_attribution",
           "plot_conv_filters", "plot_dream", "plot_feature_maps", "plot_kernel",
           "plot_retrieval", "saliency_heatmap"]


def _array(x) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def denormalize(x, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None) -> np.ndarray:
    """Model inputs back to displayable pixels.

    ``pixel = clip(x * std[c] + mean[c], 0, 1)`` with the run's preprocessing (its
    ``config["preprocessing"]``); without ``mean`` and ``std``, each image is min-max scaled
    to [0, 1] instead.

    Args:
        x: ``(C, H, W)`` or ``(N, C, H, W)``, NumPy array or Tensor.
        mean, std: per-channel statistics (one value each, or one per channel).

    Returns:
        float32 ``(H, W, C)`` or ``(N, H, W, C)`` in [0, 1].

    Example:
        >>> denormalize(np.zeros((1, 1, 2, 2)), [0.5], [0.25])[0, :, :, 0].tolist()
        [[0.5, 0.5], [0.5, 0.5]]
    """
    a = _array(x).astype(np.float64)
    single = a.ndim == 3
    if single:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"denormalize: expected (C, H, W) or (N, C, H, W), got shape {a.shape}")
    if (mean is None) != (std is None):
        raise ValueError("denormalize: give both mean and std, or neither")
    if mean is None:
        lo = a.min(axis=(1, 2, 3), keepdims=True)
        span = a.max(axis=(1, 2, 3), keepdims=True) - lo
        out = np.divide(a - lo, span, out=np.full_like(a, 0.5), where=span > 0)
    else:
        m = np.asarray(mean, np.float64).reshape(1, -1, 1, 1)
        s = np.asarray(std, np.float64).reshape(1, -1, 1, 1)
        if m.shape[1] not in (1, a.shape[1]) or s.shape[1] not in (1, a.shape[1]):
            raise ValueError(f"denormalize: {a.shape[1]} channels but mean/std of length "
                             f"{m.shape[1]}/{s.shape[1]}")
        out = np.clip(a * s + m, 0, 1)
    out = out.transpose(0, 2, 3, 1).astype(np.float32)
    return out[0] if single else out


def _show(ax, image: np.ndarray, **kwargs):
    """An (H, W, C) image in [0, 1]: grey when C == 1."""
    ax.set_xticks([])
    ax.set_yticks([])
    if image.ndim == 3 and image.shape[2] == 1:
        return ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, **kwargs)
    return ax.imshow(np.clip(image, 0, 1), **kwargs)


def _grey(image: np.ndarray) -> np.ndarray:
    """Luma (ITU-R 601) of an (H, W, C) image in [0, 1], as (H, W)."""
    if image.shape[2] == 1:
        return image[..., 0]
    return image[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)


def conv_layers(model: Module) -> list[str]:
    """``named_modules()`` names of the model's ``Conv2d`` layers, in order."""
    return [n for n, m in model.named_modules() if isinstance(m, Conv2d)]


# -------------------------------------------------------------------------------- filters
def plot_conv_filters(model: Module, layer: str | Module | None = None,
                      path: str | os.PathLike | None = None, **kwargs):
    """The kernels of any convolution of ``model`` (default: the first), drawn by
    :func:`~filterbank.viz.filters.plot_filters`: one shared diverging scale, and a colour
    column when the layer takes 3 input channels (a first layer on RGB images).

    Args:
        model: the network.
        layer: a ``Conv2d``'s ``named_modules()`` name or the module. Default: the first.
        path: write a PNG there.
        kwargs: passed to :func:`~filterbank.viz.filters.plot_filters` (``max_out``,
            ``max_in``, ``title``, ...).

    Returns:
        the matplotlib Figure.

    Raises:
        ValueError: an unknown layer (the valid names are listed) or one that is not a
            ``Conv2d`` (the convolutions are listed).
    """
    where = "plot_conv_filters"
    convs = conv_layers(model) if isinstance(model, Module) else []
    if layer is None:
        if not convs:
            raise ValueError(f"{where}: {type(model).__name__} has no Conv2d layer")
        layer = convs[0]
    name, module = find_module(model, layer, where)
    if not isinstance(module, Conv2d):
        raise ValueError(f"{where}: layer {name!r} is a {type(module).__name__}, not a Conv2d; "
                         f"the convolutions are: {', '.join(map(repr, convs)) or 'none'}")
    return plot_filters(module.weight, path, layer=name, **kwargs)


# --------------------------------------------------------------------------- feature maps
def plot_feature_maps(maps: Mapping[str, object], path: str | os.PathLike | None = None,
                      image: np.ndarray | None = None, max_channels: int = 32, ncols: int = 8,
                      cmap: str = "viridis", title: str | None = None):
    """The activations of one image at some layers: a grid of channels per layer.

    Each layer gets its own block titled with its name and output shape ``C x H x W``, its
    channels drawn on one colour scale shared by the block (``[min, max]`` of the channels
    shown, so a weak channel looks weak) with a colour bar. The input image, when given, is
    drawn above.

    Args:
        maps: ``{layer name: activations}``, each ``(C, H, W)`` or ``(1, C, H, W)``.
        path: write a PNG there.
        image: the input as ``(H, W, C)`` pixels in [0, 1] (see :func:`denormalize`).
        max_channels: at most this many channels per layer (the first ones).
        ncols: channels per row.
        cmap: matplotlib colour map. Default: ``viridis``.
        title: figure title.

    Returns:
        the matplotlib Figure.
    """
    blocks = []
    for name, a in maps.items():
        arr = _array(a).astype(np.float32)
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 3:
            raise ValueError(f"plot_feature_maps: layer {name!r}: expected activations (C, H, W)"
                             f" of one image, got shape {arr.shape}; pick a convolutional layer")
        blocks.append((str(name), arr))
    if not blocks:
        raise ValueError("plot_feature_maps: no layers given")
    rows = [math.ceil(min(len(a), max_channels) / min(ncols, len(a))) for _, a in blocks]
    tile = 0.85
    heights = [r * tile + 0.55 for r in rows]
    if image is not None:
        heights.insert(0, 1.9)
    fig = new_figure((ncols * tile + 1.6, sum(heights) + (0.4 if title else 0)))
    subs = np.atleast_1d(fig.subfigures(len(heights), 1, height_ratios=heights))
    if image is not None:
        ax = subs[0].subplots()
        _show(ax, np.asarray(image, np.float32), interpolation="nearest")
        ax.set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=9)
        subs = subs[1:]
    for sub, (name, a), nrows in zip(subs, blocks, rows):
        c, h, w = a.shape
        shown = a[:max_channels]
        cols = min(ncols, len(shown))
        axes = sub.subplots(nrows, cols, squeeze=False)
        lo, hi = float(shown.min()), float(shown.max())
        hi = hi if hi > lo else lo + 1e-6
        im = None
        for k, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if k < len(shown):
                im = ax.imshow(shown[k], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
                ax.set_title(f"{k}", fontsize=7, pad=1)
        more = f" (first {len(shown)} channels)" if len(shown) < c else ""
        sub.suptitle(f"{name}: {c} x {h} x {w}{more}", fontsize=10, x=0.02, ha="left")
        bar = sub.colorbar(im, ax=axes, fraction=0.03, pad=0.02, shrink=0.9)
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    if path is not None:
        save_png(fig, path)
    return fig


# ---------------------------------------------------------------------------- attribution
def plot_attribution(image: np.ndarray, heatmap: np.ndarray,
                     path: str | os.PathLike | None = None, map_title: str = "saliency",
                     title: str | None = None, cmap: str = "inferno", alpha: float = 0.75):
    """An image, an attribution map and the map laid over the image, side by side.

    The overlay is the image in grey with the colour-mapped map painted over it, each pixel's
    opacity ``alpha * heat``: where the map is 0 the image shows through unchanged.

    Args:
        image: ``(H, W, C)`` pixels in [0, 1] (C = 1 or 3; see :func:`denormalize`).
        heatmap: ``(H, W)`` map in [0, 1] (Grad-CAM's ``heatmap``, or a scaled saliency).
        path: write a PNG there.
        map_title: the middle panel's title.
        title: the figure's title (what was explained).
        cmap: a sequential, perceptually uniform colour map. Default: ``inferno``.
        alpha: the overlay's largest opacity.

    Returns:
        the matplotlib Figure.
    """
    img = np.asarray(image, np.float32)
    heat = np.clip(np.asarray(heatmap, np.float32), 0, 1)
    if img.ndim != 3 or img.shape[2] not in (1, 3) or heat.shape != img.shape[:2]:
        raise ValueError(f"plot_attribution: expected an (H, W, 1|3) image and an (H, W) map of "
                         f"the same size, got {img.shape} and {heat.shape}")
    from matplotlib import colormaps

    paint = colormaps[cmap](heat)[..., :3]
    grey = np.repeat(_grey(img)[..., None], 3, axis=2)
    a = (alpha * heat)[..., None]
    overlay = (1 - a) * grey + a * paint
    fig = new_figure((9.0, 3.4 if title else 3.1))
    axes = fig.subplots(1, 3)
    _show(axes[0], img, interpolation="nearest")
    axes[0].set_title("image", fontsize=9)
    im = axes[1].imshow(heat, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    axes[1].set_title(map_title, fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    _show(axes[2], overlay, interpolation="nearest")
    axes[2].set_title("overlay", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        save_png(fig, path)
    return fig


def saliency_heatmap(grad: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """A saliency gradient ``(C, H, W)`` as an (H, W) map in [0, 1]: ``max_c |g_c|``
    (Simonyan et al.), divided by its ``percentile``-th percentile and clipped, so that a few
    extreme pixels do not turn the rest black."""
    g = np.abs(_array(grad)).max(axis=0)
    top = float(np.percentile(g, percentile))
    return np.clip(g / top, 0, 1).astype(np.float32) if top > 0 else np.zeros_like(g)


# ------------------------------------------------------------------ feature visualisation
def plot_activation_maximization(images, channels: Sequence[int],
                                 path: str | os.PathLike | None = None,
                                 layer: str = "", ncols: int = 8, mean=None, std=None):
    """Activation-maximisation images, one tile per channel, titled ``ch k``.

    The images are in the model's input units; each tile is de-normalised with ``mean``/
    ``std`` and then contrast-stretched on its own (min to max), since the patterns that
    excite a unit are faint and their absolute level is meaningless.

    Args:
        images: ``(K, C, H, W)`` from :func:`filterbank.interpret.activation_maximization`.
        channels: the channel of each tile.
        path: write a PNG there.
        layer: the layer's name, for the title.
        ncols: tiles per row.
        mean, std: the run's preprocessing.

    Returns:
        the matplotlib Figure.
    """
    imgs = _array(images).astype(np.float32)
    if imgs.ndim != 4 or len(imgs) != len(channels):
        raise ValueError(f"plot_activation_maximization: expected (K, C, H, W) images, one per "
                         f"channel ({len(channels)}), got shape {imgs.shape}")
    pixels = imgs * (np.asarray(std, np.float32).reshape(1, -1, 1, 1) if std is not None
                     else 1) + (np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
                                if mean is not None else 0)
    tiles = denormalize(pixels)  # per-tile min-max
    cols = min(ncols, len(tiles))
    nrows = math.ceil(len(tiles) / cols)
    fig = new_figure((cols * 1.15 + 0.4, nrows * 1.3 + 0.6))
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, tile, ch in zip(axes.flat, tiles, channels):
        _show(ax, tile, interpolation="bilinear")
        ax.set_axis_on()
        ax.set_title(f"ch {int(ch)}", fontsize=8, pad=2)
    fig.suptitle(f"what excites each channel of {layer or 'the layer'} "
                 f"(each tile contrast-stretched)", fontsize=10)
    if path is not None:
        save_png(fig, path)
    return fig


def plot_dream(octaves: Sequence, path: str | os.PathLike | None = None, original=None,
               mean=None, std=None, title: str | None = None):
    """DeepDream, octave by octave: the starting image, then the dream at the end of each
    octave (smallest first), all drawn at the same size, de-normalised with ``mean``/``std``
    (clipped to [0, 1]; without them, min-max scaled).

    Args:
        octaves: the per-octave images ``(1, C, h, w)`` or ``(C, h, w)`` from
            ``deep_dream(..., return_octaves=True)``.
        path: write a PNG there.
        original: the starting image ``(C, H, W)`` in model units (first panel), or None.
        mean, std: the run's preprocessing.
        title: figure title.

    Returns:
        the matplotlib Figure.
    """
    panels = []
    if original is not None:
        o = _array(original)
        panels.append(("start", o[0] if o.ndim == 4 else o))
    for i, a in enumerate(octaves):
        a = _array(a)
        a = a[0] if a.ndim == 4 else a
        last = i == len(octaves) - 1
        panels.append((f"octave {i + 1}{' (final)' if last else ''}\n"
                       f"{a.shape[1]}x{a.shape[2]}", a))
    if not panels:
        raise ValueError("plot_dream: no images")
    fig = new_figure((2.1 * len(panels) + 0.2, 2.7 if title else 2.4))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (label, a) in zip(axes, panels):
        _show(ax, denormalize(a, mean, std), interpolation="bilinear")
        ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        save_png(fig, path)
    return fig


# ------------------------------------------------------------------------------ retrieval
def plot_retrieval(queries: np.ndarray, neighbours: np.ndarray, similarities: np.ndarray,
                   path: str | os.PathLike | None = None, query_labels=None,
                   neighbour_labels=None, classes: Sequence[str] | None = None,
                   title: str | None = None):
    """Each query image followed by its ``k`` nearest images, one row per query.

    A neighbour's title is its cosine similarity and, with labels, its class, green when it
    is the query's class and red otherwise.

    Args:
        queries: ``(Q, H, W, C)`` pixels in [0, 1].
        neighbours: ``(Q, k, H, W, C)`` pixels in [0, 1].
        similarities: ``(Q, k)`` (from :func:`filterbank.train.nearest`).
        path: write a PNG there.
        query_labels: ``(Q,)`` class indices, or None.
        neighbour_labels: ``(Q, k)`` class indices, or None.
        classes: class names for the labels.
        title: figure title.

    Returns:
        the matplotlib Figure.
    """
    q = np.asarray(queries, np.float32)
    nb = np.asarray(neighbours, np.float32)
    sim = np.asarray(similarities, np.float32)
    if q.ndim != 4 or nb.ndim != 5 or nb.shape[0] != len(q) or sim.shape != nb.shape[:2]:
        raise ValueError(f"plot_retrieval: expected queries (Q, H, W, C), neighbours "
                         f"(Q, k, H, W, C) and similarities (Q, k), got {q.shape}, {nb.shape} "
                         f"and {sim.shape}")
    n, k = sim.shape

    def name(c):
        return str(classes[int(c)]) if classes is not None else str(int(c))

    fig = new_figure((1.25 * (k + 1) + 0.5, 1.45 * n + (0.5 if title else 0.2)))
    axes = fig.subplots(n, k + 1, squeeze=False)
    for i in range(n):
        ax = axes[i, 0]
        _show(ax, q[i], interpolation="nearest")
        ax.set_title("query" + (f"\n{name(query_labels[i])}" if query_labels is not None
                                else ""), fontsize=7, pad=2, fontweight="bold")
        for side in ax.spines.values():
            side.set_linewidth(2.5)
        for j in range(k):
            ax = axes[i, j + 1]
            _show(ax, nb[i, j], interpolation="nearest")
            label, colour = f"{sim[i, j]:.2f}", "black"
            if neighbour_labels is not None:
                label += f"\n{name(neighbour_labels[i][j])}"
                if query_labels is not None:
                    same = int(neighbour_labels[i][j]) == int(query_labels[i])
                    colour = "tab:green" if same else "tab:red"
            ax.set_title(label, fontsize=7, pad=2, color=colour)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        save_png(fig, path)
    return fig


# ---------------------------------------------------------------------------- image kernels
def plot_kernel(image: np.ndarray, kernel: np.ndarray | None, filtered: np.ndarray,
                path: str | os.PathLike | None = None, name: str = "",
                signed: bool | None = None):
    """An image, the kernel (its weights written in the cells) and the filtered image.

    A kernel whose weights sum to about 0 (Sobel, Laplacian) gives a signed response: drawn
    on ``RdBu_r`` centred on 0 (red +, blue -). A kernel summing to 1 (blur, sharpen,
    emboss) gives an image: drawn as pixels clipped to [0, 1]. A ``kernel`` of None means the
    gradient magnitude (non-negative, drawn in grey). Responses and magnitudes are scaled to
    the 99.5th percentile of their absolute value (edges are sparse; the few stronger pixels
    saturate, as the colour bar's arrows show).

    Args:
        image: ``(H, W, C)`` pixels in [0, 1].
        kernel: the ``(kH, kW)`` weights, or None for the gradient magnitude.
        filtered: ``(H, W)`` or ``(H, W, C)`` result.
        path: write a PNG there.
        name: the kernel's name, for the titles.
        signed: override the signed/image choice.

    Returns:
        the matplotlib Figure.
    """
    img = np.asarray(image, np.float32)
    out = np.asarray(filtered, np.float32)
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[..., 0]
    if signed is None:
        signed = kernel is not None and abs(float(np.sum(kernel))) < 1e-3
    # a large image is shrunk on screen: antialiased, or its thin edges vanish
    interp = "nearest" if max(img.shape[:2]) <= 128 else "antialiased"
    panels = 3 if kernel is not None else 2
    fig = new_figure((3.3 * panels + 0.6, 3.4))
    axes = fig.subplots(1, panels)
    _show(axes[0], img, interpolation=interp)
    axes[0].set_title(f"image {img.shape[1]}x{img.shape[0]} (W x H)", fontsize=9)
    if kernel is not None:
        kern = np.asarray(kernel, np.float64)
        m = float(np.abs(kern).max()) or 1.0
        ax = axes[1]
        ax.imshow(kern, cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if kern.size <= 49:
            for (r, c), v in np.ndenumerate(kern):
                text = f"{v:.2f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v)}"
                ax.text(c, r, text, ha="center", va="center", fontsize=8 if kern.size <= 25
                        else 6, color="white" if abs(v) > 0.6 * m else "black")
        ax.set_title(f"kernel {name} {kern.shape[0]}x{kern.shape[1]}", fontsize=9)
    ax = axes[-1]
    ax.set_xticks([])
    ax.set_yticks([])
    # edges are sparse: the colour scale ends at the 99.5th percentile of |response| (the
    # few stronger pixels saturate; the bar's arrow says so), else most edges look faint
    mag = np.abs(out if out.ndim == 2 else out.mean(axis=2)) if (signed or kernel is None) \
        else None
    top = float(np.percentile(mag, 99.5)) if mag is not None else 0.0
    top = top if top > 0 else (float(mag.max()) if mag is not None and mag.max() > 0 else 1.0)
    if kernel is None:
        im = ax.imshow(out, cmap="gray", vmin=0, vmax=top, interpolation=interp)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, extend="max")
        bar.ax.tick_params(labelsize=7)
        ax.set_title(name or "gradient magnitude", fontsize=9)
    elif signed:
        im = ax.imshow(out if out.ndim == 2 else out.mean(axis=2), cmap="RdBu_r", vmin=-top,
                       vmax=top, interpolation=interp)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, extend="both")
        bar.ax.tick_params(labelsize=7)
        ax.set_title("response (red +, blue -)", fontsize=9)
    else:
        _show(ax, out[..., None] if out.ndim == 2 else out, interpolation=interp)
        ax.set_title("filtered (clipped to [0, 1])", fontsize=9)
    if path is not None:
        save_png(fig, path)
    return fig
