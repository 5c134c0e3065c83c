"""filters.png: signed kernels on one shared, symmetric, diverging colour scale; labelled;
readable."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import filterbank as fb  # noqa: E402
from filterbank.viz.filters import (  # noqa: E402
    filter_grid,
    plot_filters,
    save_filters_plot,
)


def edge_detectors() -> np.ndarray:
    """out 0: + left, - right (a vertical edge); out 1: its negative; out 2: tiny weights."""
    w = np.zeros((3, 1, 5, 5), np.float32)
    w[0, 0, :, :2], w[0, 0, :, 3:] = 1.0, -1.0
    w[1] = -w[0]
    w[2, 0, 2, 2] = 0.01
    return w


def kernel_images(fig):
    """The signed kernel images (colour-mapped 2-d arrays; the RGB column is 3-d)."""
    return [im for ax in fig.axes for im in ax.get_images() if im.get_array().ndim == 2]


def test_one_shared_symmetric_diverging_scale_shows_the_sign(tmp_path):
    w = edge_detectors()
    fig = plot_filters(fb.tensor(w), tmp_path / "sub" / "filters.png")
    images = kernel_images(fig)
    assert len(images) == 3
    for im in images:  # every tile on the same scale, symmetric about 0
        assert im.get_clim() == (-1.0, 1.0)
        assert im.get_cmap().name == "RdBu_r"
    np.testing.assert_array_equal(images[0].get_array(), w[0, 0])
    rgba = images[0].to_rgba(images[0].get_array())
    left, middle, right = rgba[2, 0], rgba[2, 2], rgba[2, 4]
    assert left[0] > 0.4 > left[2]  # positive: red
    assert right[2] > 0.3 > right[0]  # negative: blue
    assert np.all(middle[:3] > 0.9)  # zero: white
    # the tiny filter stays pale next to the strong ones (it is not rescaled on its own)
    tiny = images[2].to_rgba(images[2].get_array())[2, 2]
    assert np.all(tiny[:3] > 0.9)
    from PIL import Image

    with Image.open(tmp_path / "sub" / "filters.png") as png:
        assert png.format == "PNG" and png.width >= 500 and png.height >= 350


def test_labels_colour_bar_and_readable_tiles():
    fig = plot_filters(np.random.default_rng(0).normal(size=(4, 2, 3, 3)))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["in 0", "in 1"]
    assert [ax.get_ylabel() for ax in fig.axes[:8:2]] == ["out 0", "out 1", "out 2", "out 3"]
    bars = [ax for ax in fig.axes if "weight" in ax.get_ylabel()]
    assert len(bars) == 1 and "red +" in bars[0].get_ylabel()
    fig.canvas.draw()
    dpi = 120  # what save_png writes
    for ax in fig.axes:
        if ax.get_images():
            box = ax.get_window_extent()
            assert box.width * dpi / fig.dpi >= 80 and box.height * dpi / fig.dpi >= 80
    one_in = plot_filters(edge_detectors())
    assert [ax.get_title() for ax in one_in.axes if ax.get_images()] == [
        "out 0", "out 1", "out 2"]


def test_rgb_first_layer_adds_a_colour_column_and_large_layers_are_cut():
    w = np.random.default_rng(1).normal(size=(20, 3, 5, 5)).astype(np.float32)
    fig = plot_filters(w)
    rgb = [im for ax in fig.axes for im in ax.get_images() if im.get_array().ndim == 3]
    assert len(rgb) == 16 and len(kernel_images(fig)) == 16 * 3
    m = np.abs(w[:16]).max()
    np.testing.assert_allclose(rgb[0].get_array(), np.clip(0.5 + w[0].transpose(1, 2, 0) /
                                                           (2 * m), 0, 1), rtol=1e-6)
    assert "first 16 of 20 output channels" in fig._suptitle.get_text()
    assert [ax.get_title() for ax in fig.axes[:4]] == ["in 0", "in 1", "in 2", "RGB"]
    no_rgb = plot_filters(w, rgb=False, max_out=2, max_in=2)
    assert len(kernel_images(no_rgb)) == 4
    assert "first 2 of 3 input channels" in no_rgb._suptitle.get_text()
    assert not any(im.get_array().ndim == 3 for ax in no_rgb.axes for im in ax.get_images())


def test_errors_and_save(tmp_path):
    with pytest.raises(ValueError, match=r"plot_filters: expected a 4-d conv .*\(6, 5, 5\)"):
        plot_filters(np.zeros((6, 5, 5)))
    with pytest.raises(ValueError, match="plot_filters: expected max_out to be an int >= 1, got 0"):
        plot_filters(edge_detectors(), max_out=0)
    with pytest.raises(ValueError, match="expected a .png path"):
        plot_filters(edge_detectors(), tmp_path / "f.jpg")
    out = save_filters_plot(np.zeros((2, 1, 3, 3)), tmp_path / "zeros.png")  # all zero: white
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert filter_grid(edge_detectors()).dtype == np.uint8  # the Pillow pixel grid stays
