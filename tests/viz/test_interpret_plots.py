"""Pictures of what a network learned: de-normalisation, filters of any conv layer, feature
maps, attribution overlays, activation maximisation, DeepDream octaves, retrieval, kernels."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import filterbank as fb  # noqa: E402
from filterbank import nn  # noqa: E402
from filterbank.viz import (  # noqa: E402
    conv_layers,
    denormalize,
    plot_activation_maximization,
    plot_attribution,
    plot_conv_filters,
    plot_dream,
    plot_feature_maps,
    plot_kernel,
    plot_retrieval,
    saliency_heatmap,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC


def _net():
    fb.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 4, 3), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 2))


def test_denormalize_inverts_the_preprocessing():
    rng = np.random.default_rng(0)
    pixels = rng.random((2, 3, 4, 5))
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    x = (pixels - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    back = denormalize(x, mean, std)
    assert back.shape == (2, 4, 5, 3) and back.dtype == np.float32
    np.testing.assert_allclose(back, pixels.transpose(0, 2, 3, 1), atol=1e-6)
    assert denormalize(np.full((1, 2, 2), 9.0), [0.5], [1.0]).max() == 1.0  # clipped
    stretched = denormalize(np.array([[[1.0, 3.0]]]))                         # min-max
    assert stretched[..., 0].tolist() == [[0.0, 1.0]]


def test_filters_of_any_conv_layer(tmp_path):
    net = _net()
    assert conv_layers(net) == ["0", "2"]
    fig = plot_conv_filters(net, "2", tmp_path / "f.png")
    _png(tmp_path / "f.png")
    assert fig._suptitle.get_text().startswith("2: 4 filters of 6x3x3")
    first = plot_conv_filters(net)  # the first layer takes RGB: its colour column
    assert any(ax.get_title() == "RGB" for ax in first.axes)
    with pytest.raises(ValueError, match=r"'4' is a Linear, not a Conv2d.*'0', '2'"):
        plot_conv_filters(net, "4")
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        plot_conv_filters(net, "conv9")


def test_feature_maps_one_block_per_layer_on_a_shared_scale(tmp_path):
    rng = np.random.default_rng(0)
    maps = {"conv1": rng.random((1, 10, 6, 6)), "conv2": rng.random((40, 3, 3)) * 5}
    maps["conv2"][35] = 100.0  # not shown, so not in the scale
    fig = plot_feature_maps(maps, tmp_path / "m.png", image=rng.random((6, 6, 1)),
                            max_channels=32)
    _png(tmp_path / "m.png")
    titles = [sf._suptitle.get_text() for sf in fig.subfigs if sf._suptitle is not None]
    assert titles == ["conv1: 10 x 6 x 6", "conv2: 40 x 3 x 3 (first 32 channels)"]
    for sf, a in zip(fig.subfigs[1:], maps.values()):
        images = [im for ax in sf.axes for im in ax.get_images()]
        shown = np.asarray(a, np.float32).reshape(-1, *np.asarray(a).shape[-3:])[0][:32]
        assert len(images) == len(shown)
        assert {im.get_clim() for im in images} == {(float(shown.min()), float(shown.max()))}
    with pytest.raises(ValueError, match="pick a convolutional layer"):
        plot_feature_maps({"fc": np.zeros((1, 16))})


def test_attribution_panels_and_overlay(tmp_path):
    image = np.full((8, 8, 1), 0.3, np.float32)
    heat = np.zeros((8, 8), np.float32)
    heat[2:4, 2:4] = 1.0
    fig = plot_attribution(image, heat, tmp_path / "a.png", map_title="Grad-CAM",
                           title="shoe: predicted Sneaker")
    _png(tmp_path / "a.png")
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["image", "Grad-CAM", "overlay"]
    heat_im = axes[1].get_images()[0]
    assert heat_im.get_cmap().name == "inferno" and heat_im.get_clim() == (0, 1)
    overlay = np.asarray(axes[2].get_images()[0].get_array())
    np.testing.assert_allclose(overlay[0, 0], [0.3, 0.3, 0.3], atol=1e-6)  # heat 0: the image
    assert not np.allclose(overlay[2, 2], [0.3, 0.3, 0.3])
    with pytest.raises(ValueError, match="same size"):
        plot_attribution(image, heat[:4])


def test_saliency_heatmap_is_the_channel_max_scaled_by_a_percentile():
    g = np.zeros((3, 10, 10), np.float32)
    g[1] = -np.arange(100).reshape(10, 10)
    g[2] = np.arange(100)[::-1].reshape(10, 10)
    h = saliency_heatmap(g, percentile=50)
    m = np.maximum(np.arange(100), np.arange(100)[::-1]).reshape(10, 10)
    np.testing.assert_allclose(h, np.clip(m / np.percentile(m, 50), 0, 1), rtol=1e-6)
    assert saliency_heatmap(np.zeros((1, 2, 2))).max() == 0


def test_maximization_dream_retrieval_and_kernel_pictures(tmp_path):
    rng = np.random.default_rng(0)
    fig = plot_activation_maximization(rng.standard_normal((3, 1, 8, 8)), [0, 4, 7],
                                       tmp_path / "am.png", layer="conv2", mean=[0.3],
                                       std=[0.4])
    _png(tmp_path / "am.png")
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["ch 0", "ch 4", "ch 7"]
    levels = [rng.standard_normal((1, 1, s, s)) for s in (5, 7, 10)]
    fig = plot_dream(levels, tmp_path / "d.png", original=rng.standard_normal((1, 10, 10)),
                     mean=[0.3], std=[0.4])
    _png(tmp_path / "d.png")
    assert [ax.get_title() for ax in fig.axes] == [
        "start", "octave 1\n5x5", "octave 2\n7x7", "octave 3 (final)\n10x10"]
    fig = plot_retrieval(rng.random((2, 6, 6, 1)), rng.random((2, 3, 6, 6, 1)),
                         np.array([[0.9, 0.8, 0.7], [0.95, 0.5, 0.1]]), tmp_path / "r.png",
                         query_labels=[0, 1], neighbour_labels=[[0, 1, 0], [1, 1, 0]],
                         classes=["cat", "dog"])
    _png(tmp_path / "r.png")
    titles = {ax.get_title(): ax.title.get_color() for ax in fig.axes}
    assert titles["0.80\ndog"] == "tab:red" and titles["0.90\ncat"] == "tab:green"
    img = rng.random((9, 9, 1)).astype(np.float32)
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    fig = plot_kernel(img, sobel, rng.standard_normal((9, 9)), tmp_path / "k.png",
                      name="sobel_x")
    _png(tmp_path / "k.png")
    signed = fig.axes[2].get_images()[0]
    assert signed.get_cmap().name == "RdBu_r" and signed.get_clim()[0] == -signed.get_clim()[1]
    assert [t.get_text() for t in fig.axes[1].texts][:3] == ["-1", "0", "1"]
