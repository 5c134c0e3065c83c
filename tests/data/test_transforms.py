"""Transforms: a registry of cases and generic checks (dtype, single image == batch of one,
Tensor in -> Tensor out, determinism, per-image randomness), plus exact references."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from harness import HAS_TORCH

import filterbank as fb
from filterbank.data.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    Grayscale,
    Lambda,
    Normalize,
    RandomAffine,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomVerticalFlip,
    Resize,
    ToTensor,
    Transform,
    hsv_to_rgb,
    resized_shape,
    rgb_to_hsv,
)


@dataclass
class TCase:
    name: str
    make: Any  # () -> Transform
    shape: tuple = (6, 3, 9, 8)  # NCHW batch
    dtype: Any = np.float32
    out_shape: tuple | None = None
    random: bool = True
    per_channel: bool = False  # built for 3 channels (per-channel mean/fill)

    def __str__(self):
        return self.name


CASES = [
    TCase("normalize", lambda: Normalize((0.5, 0.4, 0.3), (0.2, 0.3, 0.4)), random=False,
          per_channel=True),
    TCase("normalize-1ch", lambda: Normalize(0.5, 2.0), shape=(4, 1, 5, 5), random=False),
    TCase("crop-pad", lambda: RandomCrop(7, padding=2), out_shape=(6, 3, 7, 7)),
    TCase("crop-reflect", lambda: RandomCrop((5, 6), padding=(1, 2), padding_mode="reflect"),
          out_shape=(6, 3, 5, 6)),
    TCase("crop-uint8-fill", lambda: RandomCrop(9, padding=(1, 0, 2, 1), fill=(1, 2, 3)),
          dtype=np.uint8, out_shape=(6, 3, 9, 9), per_channel=True),
    TCase("crop-pad-if-needed", lambda: RandomCrop(12, pad_if_needed=True),
          out_shape=(6, 3, 12, 12)),
    TCase("hflip", lambda: RandomHorizontalFlip(0.5)),
    TCase("vflip-uint8", lambda: RandomVerticalFlip(0.5), dtype=np.uint8),
    TCase("affine-nearest", lambda: RandomAffine(30, translate=(0.2, 0.1), scale=(0.8, 1.2))),
    TCase("affine-bilinear", lambda: RandomAffine((-20, 40), translate=(0.1, 0.1),
                                                  interpolation="bilinear", fill=0.5)),
    TCase("affine-bilinear-uint8", lambda: RandomAffine(15, interpolation="bilinear"),
          dtype=np.uint8),
    TCase("erasing", lambda: RandomErasing(p=0.7)),
    TCase("erasing-random", lambda: RandomErasing(p=1.0, value="random")),
    TCase("erasing-per-channel", lambda: RandomErasing(p=1.0, value=(1, 2, 3)),
          per_channel=True),
    TCase("compose", lambda: Compose([RandomHorizontalFlip(), RandomCrop(8, padding=1),
                                      Normalize((0.5,) * 3, (0.5,) * 3)]),
          out_shape=(6, 3, 8, 8), per_channel=True),
    TCase("resize-down", lambda: Resize((5, 7)), out_shape=(6, 3, 5, 7), random=False),
    TCase("resize-short-side-up", lambda: Resize(16), out_shape=(6, 3, 18, 16), random=False),
    TCase("resize-uint8", lambda: Resize((4, 11)), dtype=np.uint8, out_shape=(6, 3, 4, 11),
          random=False),
    TCase("resize-nearest", lambda: Resize((3, 12), interpolation="nearest"),
          out_shape=(6, 3, 3, 12), random=False),
    TCase("center-crop", lambda: CenterCrop((4, 5)), out_shape=(6, 3, 4, 5), random=False),
    TCase("center-crop-pad", lambda: CenterCrop(11), dtype=np.uint8, out_shape=(6, 3, 11, 11),
          random=False),
    TCase("grayscale", lambda: Grayscale(), out_shape=(6, 1, 9, 8), random=False,
          per_channel=True),
    TCase("grayscale-3-uint8", lambda: Grayscale(3), dtype=np.uint8, random=False,
          per_channel=True),
    TCase("random-resized-crop", lambda: RandomResizedCrop((5, 6)), out_shape=(6, 3, 5, 6)),
    TCase("random-resized-crop-uint8", lambda: RandomResizedCrop(7, scale=(0.3, 1.0)),
          dtype=np.uint8, out_shape=(6, 3, 7, 7)),
    TCase("color-jitter", lambda: ColorJitter(0.4, 0.4, 0.4, 0.1)),
    TCase("color-jitter-hue", lambda: ColorJitter(hue=0.5), per_channel=True),
]


def sample(case: TCase, seed=0) -> np.ndarray:
    g = np.random.default_rng(seed)
    if case.dtype == np.uint8:
        return g.integers(0, 256, case.shape).astype(np.uint8)
    return g.random(case.shape, dtype=np.float32)


def run(case, x, seed=0, **kw):
    return case.make()(x, generator=np.random.default_rng(seed), **kw)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_dtype_and_shape(case):
    x = sample(case)
    y = run(case, x)
    assert isinstance(y, np.ndarray)
    assert y.dtype == x.dtype
    assert y.shape == (case.out_shape or x.shape)
    np.testing.assert_array_equal(x, sample(case))  # input not modified


@pytest.mark.parametrize("case", CASES, ids=str)
def test_single_image_equals_batch_of_one(case):
    x = sample(case)[:1]
    batch = run(case, x, seed=3)
    single = run(case, x[0], seed=3)
    assert single.shape == batch.shape[1:]
    np.testing.assert_array_equal(single, batch[0])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_tensor_in_tensor_out(case):
    x = sample(case)
    y = run(case, fb.Tensor(x, dtype=x.dtype))
    assert isinstance(y, fb.Tensor)
    np.testing.assert_array_equal(y.numpy(), run(case, x))


@pytest.mark.parametrize("case", [c for c in CASES if c.random], ids=str)
def test_deterministic_given_generator_and_random_per_image(case):
    x = sample(case)
    np.testing.assert_array_equal(run(case, x, seed=1), run(case, x, seed=1))
    assert not np.array_equal(run(case, x, seed=1), run(case, x, seed=2))
    # a batch of identical images: different images get different random parameters
    same = np.broadcast_to(x[:1], (16,) + x.shape[1:]).copy()
    y = run(case, same, seed=1)
    assert len({y[i].tobytes() for i in range(16)}) > 1
    # no generator given: the global one decides
    fb.manual_seed(4)
    a = case.make()(x)
    fb.manual_seed(4)
    np.testing.assert_array_equal(a, case.make()(x))


@pytest.mark.parametrize("case", [c for c in CASES if not c.per_channel], ids=str)
def test_batched_3d_input_is_n_h_w(case):
    x = sample(case)[:, 0]
    y = run(case, x, batched=True, seed=2)
    ref = run(case, x[:, None], seed=2)[:, 0]
    np.testing.assert_array_equal(y, ref)


# ------------------------------------------------------------------ references
def test_to_tensor():
    g = np.random.default_rng(0)
    hwc = g.integers(0, 256, (5, 4, 3)).astype(np.uint8)
    t = ToTensor()(hwc)
    assert isinstance(t, fb.Tensor) and t.dtype == np.float32 and t.shape == (3, 5, 4)
    np.testing.assert_array_equal(t.numpy(), hwc.transpose(2, 0, 1).astype(np.float32) / 255)
    assert t.numpy().flags.c_contiguous
    nhwc = g.integers(0, 256, (2, 5, 4, 3)).astype(np.uint8)
    np.testing.assert_array_equal(ToTensor()(nhwc).numpy()[1], ToTensor()(nhwc[1]).numpy())
    hw = hwc[..., 0]
    assert ToTensor()(hw).shape == (1, 5, 4)
    assert ToTensor()(np.stack([hw, hw]), batched=True).shape == (2, 1, 5, 4)
    f = ToTensor()(hwc.astype(np.float64))
    assert f.dtype == np.float32 and float(f.numpy().max()) > 1  # floats are not rescaled
    with pytest.raises(ValueError, match=r"ToTensor: expected .* got shape \(5,\)"):
        ToTensor()(np.zeros(5, np.uint8))


def test_to_tensor_matches_torch_convention():
    torch = pytest.importorskip("torch")
    hwc = np.random.default_rng(1).integers(0, 256, (4, 6, 3)).astype(np.uint8)
    ref = torch.from_numpy(hwc).permute(2, 0, 1).float().div(255).numpy()
    np.testing.assert_array_equal(ToTensor()(hwc).numpy(), ref)


def test_normalize_reference_and_errors():
    x = np.random.default_rng(0).random((2, 3, 4, 4), dtype=np.float32)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    ref = (x - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None,
                                                                                       None]
    np.testing.assert_array_equal(Normalize(mean, std)(x), ref)
    y = x.copy()
    assert Normalize(mean, std, inplace=True)(y) is y
    np.testing.assert_array_equal(y, ref)
    with pytest.raises(ValueError, match=r"mean has 3 values, but the input has 2 channels"):
        Normalize(mean, std)(x[:, :2])
    with pytest.raises(TypeError, match="apply ToTensor first"):
        Normalize(mean, std)(x.astype(np.uint8))
    with pytest.raises(ValueError, match="std must be non-zero"):
        Normalize(0, 0)


def test_random_crop_takes_windows_of_the_padded_image():
    x = np.random.default_rng(0).random((10, 2, 6, 6), dtype=np.float32) + 1
    y = RandomCrop(6, padding=2, generator=np.random.default_rng(1))(x)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = set()
    for i in range(10):
        hits = [(t, l) for t in range(5) for l in range(5)
                if np.array_equal(padded[i, :, t:t + 6, l:l + 6], y[i])]
        assert hits, f"image {i} is not a crop of its padded input"
        offsets.add(hits[0])
    assert len(offsets) > 1
    with pytest.raises(ValueError, match=r"crop size \(9, 9\) is larger than the padded image"):
        RandomCrop(9)(x)


def test_flips():
    x = np.random.default_rng(0).random((32, 2, 3, 4), dtype=np.float32)
    y = RandomHorizontalFlip(0.5, generator=np.random.default_rng(0))(x)
    flipped = np.array([np.array_equal(y[i], x[i, :, :, ::-1]) for i in range(32)])
    kept = np.array([np.array_equal(y[i], x[i]) for i in range(32)])
    assert np.all(flipped ^ kept) and 4 < flipped.sum() < 28
    np.testing.assert_array_equal(RandomVerticalFlip(1.0)(x), x[:, :, ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x), x)
    with pytest.raises(ValueError, match=r"RandomHorizontalFlip: p must be in \[0, 1\]"):
        RandomHorizontalFlip(1.5)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_affine_quarter_turn_and_integer_shift(interpolation):
    x = np.random.default_rng(0).random((3, 2, 7, 7), dtype=np.float32)
    y = RandomAffine((90, 90), interpolation=interpolation)(x)
    np.testing.assert_allclose(y, np.rot90(x, 1, axes=(2, 3)), atol=1e-6)
    y = RandomAffine((0, 0), interpolation=interpolation)(x)
    np.testing.assert_allclose(y, x, atol=1e-6)


def test_affine_translation_shifts_with_fill():
    x = np.random.default_rng(0).random((64, 1, 5, 5), dtype=np.float32) + 1
    t = RandomAffine(0, translate=(0.4, 0.4), generator=np.random.default_rng(2))
    y = t(x)
    shifts = set()
    for i in range(64):
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ref = np.zeros_like(x[i])
                src = x[i][:, max(0, -dy):5 - max(0, dy), max(0, -dx):5 - max(0, dx)]
                ref[:, max(0, dy):5 - max(0, -dy), max(0, dx):5 - max(0, -dx)] = src
                if np.array_equal(ref, y[i]):
                    found = True
                    shifts.add((dy, dx))
        assert found, f"image {i} is not an integer shift of its input"
    assert len(shifts) > 5


def test_affine_bilinear_matches_torch_grid_sample():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 3, 9, 9), dtype=np.float32)
    angle = 30.0
    y = RandomAffine((angle, angle), interpolation="bilinear")(x)
    a = np.deg2rad(angle)
    # our inverse map in normalised coordinates (square image, align_corners=True)
    theta = torch.tensor([[[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0]]] * 2,
                         dtype=torch.float32)
    grid = torch.nn.functional.affine_grid(theta, (2, 3, 9, 9), align_corners=True)
    ref = torch.nn.functional.grid_sample(torch.from_numpy(x), grid, mode="bilinear",
                                          padding_mode="zeros", align_corners=True)
    np.testing.assert_allclose(y, ref.numpy(), atol=1e-5)


def test_erasing_erases_one_rectangle_within_the_scale_range():
    x = np.random.default_rng(0).random((40, 3, 20, 20), dtype=np.float32) + 1
    y = RandomErasing(p=1.0, scale=(0.05, 0.2), ratio=(0.5, 2.0),
                      generator=np.random.default_rng(0))(x)
    for i in range(40):
        mask = (y[i] == 0).all(axis=0)
        assert mask.any()
        rows, cols = np.nonzero(mask)
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all() and box.sum() == mask.sum()  # exactly one filled rectangle
        assert 0.03 <= mask.mean() <= 0.25
        np.testing.assert_array_equal(y[i][:, ~mask], x[i][:, ~mask])
    np.testing.assert_array_equal(RandomErasing(p=0.0)(x), x)


def test_compose_and_lambda():
    x = np.full((2, 2, 3), 255, np.uint8)
    t = Compose([ToTensor(), Normalize((0.5,) * 3, (0.5,) * 3), Lambda(lambda a: a * 2),
                 lambda a: a + 1])
    y = t(x)
    assert isinstance(y, fb.Tensor) and y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), np.full((3, 2, 2), 3, np.float32))
    assert "Normalize" in repr(t)
    with pytest.raises(TypeError, match="Compose: expected callables"):
        Compose([1])


@pytest.mark.parametrize("make, match", [
    (lambda: RandomCrop(0), "size must be positive"),
    (lambda: RandomCrop(3, padding=(1, 2, 3)), "padding must be an int or a sequence of 2 or 4"),
    (lambda: RandomCrop(3, padding_mode="wrap"), "padding_mode must be"),
    (lambda: RandomAffine((10, -10)), "min <= max"),
    (lambda: RandomAffine(10, translate=(2, 0)), r"translate fractions must be in \[0, 1\]"),
    (lambda: RandomAffine(10, scale=(0, 1)), "0 < min <= max"),
    (lambda: RandomAffine(10, interpolation="cubic"), "'nearest' or 'bilinear'"),
    (lambda: RandomErasing(scale=(0.5, 0.1)), "scale must be"),
    (lambda: RandomErasing(value="noise"), "value must be a number"),
])
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_shape_errors_name_the_transform():
    with pytest.raises(ValueError, match=r"RandomHorizontalFlip\(p=0.5\): expected a \(C, H, "
                                         r"W\) image or an \(N, C, H, W\) batch, got shape"):
        RandomHorizontalFlip()(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="fill/value needs 1 or 3 values"):
        RandomErasing(p=1, value=(1, 2))(np.zeros((3, 8, 8), np.float32))


def test_is_transform():
    assert all(isinstance(c.make(), Transform) for c in CASES)


# ------------------------------------------------------- resize, crops, grey and colour
def _torch_resize(x: np.ndarray, size) -> np.ndarray:
    import torch

    return torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear",
                                           align_corners=False, antialias=False).numpy()


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch as the oracle")
@pytest.mark.parametrize("size", [(5, 7), (13, 17), (30, 41), (1, 1), (13, 4), (27, 9)])
def test_resize_matches_torch_bilinear(size):
    x = np.random.default_rng(0).random((2, 3, 13, 17), dtype=np.float32)
    np.testing.assert_allclose(Resize(size)(x), _torch_resize(x, size), atol=2e-6)


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch as the oracle")
def test_resize_nearest_and_uint8_match_torch():
    import torch

    x = np.random.default_rng(1).integers(0, 256, (2, 3, 10, 7)).astype(np.uint8)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x).float(), size=(4, 15),
                                          mode="nearest").numpy()
    np.testing.assert_array_equal(Resize((4, 15), interpolation="nearest")(x), ref)
    y = Resize((4, 15))(x)
    ref = np.clip(np.rint(_torch_resize(x.astype(np.float32), (4, 15))), 0, 255)
    assert y.dtype == np.uint8
    assert np.abs(y.astype(np.int64) - ref).max() <= 1  # rounding of a float32 tie at most


def test_resize_by_hand_and_short_side_rule():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    # 4 -> 2: sources 0.5 and 2.5 on each axis, so the means of 2x2 blocks
    np.testing.assert_array_equal(Resize(2)(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    # 2 -> 4 on [0, 1]: src = max((i + .5)/2 - .5, 0) = 0, .25, .75, 1 (clamped at the end)
    row = Resize((1, 4))(np.array([[[0.0, 1.0]]], np.float32))
    np.testing.assert_allclose(row[0, 0], [0, 0.25, 0.75, 1])
    assert resized_shape(480, 640, 224) == (224, 298)
    assert resized_shape(640, 480, 224) == (298, 224)
    assert resized_shape(100, 100, 32) == (32, 32)
    assert resized_shape(100, 400, 50, max_size=120) == (30, 120)
    assert resized_shape(7, 9, (3, 4)) == (3, 4)
    assert Resize(12)(np.zeros((3, 24, 36), np.float32)).shape == (3, 12, 18)
    with pytest.raises(ValueError, match=r"Resize: size must be a positive int or a pair"):
        Resize((0, 3))
    with pytest.raises(ValueError, match=r"Resize: max_size must be larger than size"):
        Resize(32, max_size=16)
    with pytest.raises(ValueError, match="interpolation must be 'bilinear' or 'nearest'"):
        Resize(3, interpolation="bicubic")


def test_center_crop_offsets_and_padding():
    x = np.random.default_rng(0).random((2, 3, 9, 8), dtype=np.float32)
    # top = round((9 - 4) / 2) = round(2.5) = 2 (Python rounds half to even, as torchvision)
    np.testing.assert_array_equal(CenterCrop((4, 5))(x), x[:, :, 2:6, 2:7])
    np.testing.assert_array_equal(CenterCrop((3, 2))(x), x[:, :, 3:6, 3:5])
    np.testing.assert_array_equal(CenterCrop((9, 8))(x), x)
    small = np.ones((1, 3, 2), np.float32)
    y = CenterCrop((5, 4))(small)  # 3 rows of zeros: 1 above, 2 below; 1 column each side
    ref = np.zeros((1, 5, 4), np.float32)
    ref[:, 1:4, 1:3] = 1
    np.testing.assert_array_equal(y, ref)


def test_grayscale_weights_and_channels():
    x = np.random.default_rng(0).random((2, 3, 4, 5), dtype=np.float32)
    ref = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    np.testing.assert_allclose(Grayscale()(x)[:, 0], ref, rtol=1e-6)
    y3 = Grayscale(3)(x)
    assert y3.shape == x.shape and np.array_equal(y3[:, 0], y3[:, 2])
    u = np.array([[[200]], [[100]], [[50]]], np.uint8)  # 59.8 + 58.7 + 5.7 = 124.2 -> 124
    assert Grayscale()(u).dtype == np.uint8 and int(Grayscale()(u)[0, 0, 0]) == 124
    one = x[:, :1]
    np.testing.assert_array_equal(Grayscale()(one), one)
    np.testing.assert_array_equal(Grayscale(3)(one), np.repeat(one, 3, axis=1))
    with pytest.raises(ValueError, match=r"Grayscale\(num_output_channels=1\): expected 1 or 3"):
        Grayscale()(x[:, :2])
    with pytest.raises(ValueError, match="num_output_channels must be 1 or 3, got 2"):
        Grayscale(2)


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch as the oracle")
def test_random_resized_crop_is_a_resized_box_of_each_image():
    x = np.random.default_rng(0).random((12, 3, 20, 30), dtype=np.float32)
    t = RandomResizedCrop((8, 9))
    top, left, h, w = t.get_params(np.random.default_rng(5), 12, 20, 30)
    y = t(x, generator=np.random.default_rng(5))
    for i in range(12):
        crop = x[i:i + 1, :, top[i]:top[i] + h[i], left[i]:left[i] + w[i]]
        np.testing.assert_allclose(y[i:i + 1], _torch_resize(crop, (8, 9)), atol=2e-6)


def test_random_resized_crop_sampling_and_fallback():
    t = RandomResizedCrop(4, scale=(0.2, 0.6), ratio=(0.5, 2.0))
    top, left, h, w = t.get_params(np.random.default_rng(0), 2000, 50, 60)
    assert (h >= 1).all() and (top >= 0).all() and (top + h <= 50).all()
    assert (left >= 0).all() and (left + w <= 60).all()
    area = h * w / 3000
    assert 0.18 < area.min() and area.max() < 0.63
    assert 0.45 < (w / h).min() and (w / h).max() < 2.2
    assert len(set(top.tolist())) > 10 and len(set(left.tolist())) > 10
    # the whole image at its own aspect ratio: Resize
    x = np.random.default_rng(1).random((3, 2, 10, 15), dtype=np.float32)
    full = RandomResizedCrop((6, 7), scale=(1, 1), ratio=(1.5, 1.5))
    np.testing.assert_allclose(full(x), Resize((6, 7))(x), atol=1e-6)
    # no try can fit a 20x20 square in 10x40: fall back to the central 10x10 square
    wide = np.random.default_rng(2).random((2, 1, 10, 40), dtype=np.float32)
    fb_t = RandomResizedCrop(5, scale=(1, 1), ratio=(1, 1))
    assert fb_t.get_params(np.random.default_rng(0), 2, 10, 40)[1].tolist() == [15, 15]
    np.testing.assert_allclose(fb_t(wide), Resize(5)(wide[:, :, :, 15:25]), atol=1e-6)
    with pytest.raises(ValueError, match=r"RandomResizedCrop: scale must be \(min, max\)"):
        RandomResizedCrop(4, scale=(0.5, 0.1))


def _luma(x):
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def test_color_jitter_formulas_with_fixed_factors():
    x = np.random.default_rng(0).random((4, 3, 5, 6), dtype=np.float32)
    y = ColorJitter(brightness=(1.3, 1.3))(x)
    np.testing.assert_allclose(y, np.clip(1.3 * x, 0, 1), rtol=1e-6)
    mean = _luma(x).mean(axis=(1, 2, 3), keepdims=True)
    y = ColorJitter(contrast=(0.6, 0.6))(x)
    np.testing.assert_allclose(y, np.clip(0.6 * x + 0.4 * mean, 0, 1), rtol=1e-5, atol=1e-6)
    y = ColorJitter(saturation=(1.7, 1.7))(x)
    np.testing.assert_allclose(y, np.clip(1.7 * x - 0.7 * _luma(x), 0, 1), rtol=1e-5,
                               atol=1e-6)
    one = x[:, :1]  # grey: contrast uses the image's own mean; saturation and hue do nothing
    np.testing.assert_allclose(ColorJitter(contrast=(2, 2))(one),
                               np.clip(2 * one - one.mean(axis=(1, 2, 3), keepdims=True), 0, 1),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ColorJitter(saturation=0.5, hue=0.5)(one), one)


def test_color_jitter_hue_matches_colorsys():
    import colorsys

    x = np.random.default_rng(0).random((3, 3, 4, 4), dtype=np.float32)
    x[0, :, 0, 0] = 0.5  # a grey pixel (hue 0, saturation 0)
    x[1, :, 1, 1] = (0.9, 0.9, 0.2)  # two equal maxima
    hsv = rgb_to_hsv(x)
    np.testing.assert_allclose(hsv_to_rgb(hsv), x, atol=1e-6)
    shift = 0.3
    y = ColorJitter(hue=(shift, shift))(x)
    for n, i, j in np.ndindex(3, 4, 4):
        h, s, v = colorsys.rgb_to_hsv(*x[n, :, i, j].astype(np.float64))
        assert abs(hsv[n, 0, i, j] - h) < 1e-5 or abs(abs(hsv[n, 0, i, j] - h) - 1) < 1e-5
        ref = colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)
        np.testing.assert_allclose(y[n, :, i, j], ref, atol=1e-5)
    np.testing.assert_allclose(ColorJitter(hue=(0.0, 0.0))(x), x)


def test_color_jitter_random_factors_and_order():
    x = np.random.default_rng(0).random((64, 3, 4, 4), dtype=np.float32) * 0.5 + 0.1
    y = ColorJitter(brightness=0.5, generator=np.random.default_rng(1))(x)
    ratio = (y / x).reshape(64, -1)
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-5)
    f = ratio[:, 0]
    assert 0.5 <= f.min() and f.max() <= 1.5 and f.std() > 0.2
    # two fixed adjustments: each image gets them in one of the two orders, both orders occur
    # (brightness clips bright pixels, so the orders give different images)
    x = x * 1.6
    t = ColorJitter(brightness=(1.8, 1.8), contrast=(0.5, 0.5), generator=np.random.default_rng(0))
    y = t(x)
    b_then_c = ColorJitter.adjust(ColorJitter.adjust(x, 0, np.full(64, 1.8)), 1, np.full(64, 0.5))
    c_then_b = ColorJitter.adjust(ColorJitter.adjust(x, 1, np.full(64, 0.5)), 0, np.full(64, 1.8))
    assert not any(np.allclose(b_then_c[i], c_then_b[i]) for i in range(64))
    first = np.array([np.allclose(y[i], b_then_c[i]) for i in range(64)])
    second = np.array([np.allclose(y[i], c_then_b[i]) for i in range(64)])
    assert (first | second).all() and first.any() and second.any()


@pytest.mark.parametrize("make, match", [
    (lambda: ColorJitter(brightness=-0.1), "brightness is a single number, it must be non-neg"),
    (lambda: ColorJitter(hue=0.6), r"hue values must lie in \[-0.5, 0.5\]"),
    (lambda: ColorJitter(contrast=(1.5, 0.5)), "min <= max"),
    (lambda: ColorJitter(saturation=(1, 2, 3)), "must be a number or a pair"),
])
def test_color_jitter_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_color_jitter_input_errors():
    with pytest.raises(TypeError, match=r"ColorJitter: expected a floating-point image in "
                                        r"\[0, 1\] \(apply ToTensor first\), got dtype uint8"):
        ColorJitter(0.5)(np.zeros((3, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="expected 1 or 3 .*channels, got 4"):
        ColorJitter(0.5)(np.zeros((4, 2, 2), np.float32))
