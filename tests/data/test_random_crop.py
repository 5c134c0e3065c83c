"""RandomCrop against hand-computed crops (torchvision's documented semantics), not only
against itself: every offset in ``[0, H_pad - h]`` is drawn, the last one included, and a
2-tuple padding is ``(left/right, top/bottom)``, a 4-tuple ``(left, top, right, bottom)``
(issue 15, item 15)."""

from __future__ import annotations

import numpy as np
import pytest

from filterbank.data.transforms import RandomCrop

# one 1-channel 2x3 image: rows [1 2 3], [4 5 6]
IMAGE = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3)

# IMAGE padded with zeros by 1 column left and right, 2 rows top and bottom: padding=(1, 2)
PADDED_1_2 = np.array([[0, 0, 0, 0, 0],
                       [0, 0, 0, 0, 0],
                       [0, 1, 2, 3, 0],
                       [0, 4, 5, 6, 0],
                       [0, 0, 0, 0, 0],
                       [0, 0, 0, 0, 0]], np.float32)


def _offsets(crops: np.ndarray, padded: np.ndarray, h: int, w: int) -> set[tuple[int, int]]:
    """The (top, left) of each crop in ``padded``; every crop must be one of its windows."""
    windows = {(t, left): padded[t:t + h, left:left + w]
               for t in range(padded.shape[0] - h + 1)
               for left in range(padded.shape[1] - w + 1)}
    found = set()
    for crop in crops:
        match = [k for k, win in windows.items() if np.array_equal(crop[0], win)]
        assert match, f"crop\n{crop[0]}\nis no {h}x{w} window of\n{padded}"
        found.update(match)
    return found


def test_every_offset_is_drawn_including_the_last():
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    batch = np.repeat(image[None], 200, axis=0)
    out = RandomCrop(3, generator=np.random.default_rng(0))(batch)
    assert out.shape == (200, 1, 3, 3)
    # 4x4 -> 3x3: offsets 0 and 1 on each axis, all four windows appear
    assert _offsets(out, image[0], 3, 3) == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_every_offset_is_drawn_one_image_at_a_time():
    crop = RandomCrop((1, 2), generator=np.random.default_rng(1))
    outs = np.stack([crop(IMAGE) for _ in range(100)])
    assert _offsets(outs, IMAGE[0], 1, 2) == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_two_tuple_padding_is_left_right_then_top_bottom():
    # crop = the whole padded image: the result is the padding itself, hand-computed
    out = RandomCrop((6, 5), padding=(1, 2), generator=np.random.default_rng(0))(IMAGE)
    np.testing.assert_array_equal(out[0], PADDED_1_2)


def test_two_tuple_padding_crops_are_windows_of_the_padded_image():
    batch = np.repeat(IMAGE[None], 200, axis=0)
    out = RandomCrop((5, 4), padding=(1, 2), generator=np.random.default_rng(2))(batch)
    assert _offsets(out, PADDED_1_2, 5, 4) == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_four_tuple_padding_is_left_top_right_bottom():
    out = RandomCrop((5, 6), padding=(1, 0, 2, 3), fill=9,
                     generator=np.random.default_rng(0))(IMAGE)
    expected = np.array([[9, 1, 2, 3, 9, 9],
                         [9, 4, 5, 6, 9, 9],
                         [9, 9, 9, 9, 9, 9],
                         [9, 9, 9, 9, 9, 9],
                         [9, 9, 9, 9, 9, 9]], np.float32)
    np.testing.assert_array_equal(out[0], expected)


@pytest.mark.parametrize("mode,expected", [
    ("edge", [[1, 1, 2, 3, 3], [4, 4, 5, 6, 6]]),
    ("reflect", [[2, 1, 2, 3, 2], [5, 4, 5, 6, 5]]),
    ("symmetric", [[1, 1, 2, 3, 3], [4, 4, 5, 6, 6]]),
])
def test_two_tuple_padding_with_other_modes(mode, expected):
    # (1, 0): one column left and right, no rows
    out = RandomCrop((2, 5), padding=(1, 0), padding_mode=mode,
                     generator=np.random.default_rng(0))(IMAGE)
    np.testing.assert_array_equal(out[0], np.array(expected, np.float32))
