"""Tests of cfjax.data.augment: resize, crops and flips move inclusive-pixel boxes with the pixels; normalisation."""

import numpy as np
import pytest

from cfjax.data.augment import (
    centre_crop,
    crop,
    horizontal_flip,
    normalize,
    random_crop,
    random_horizontal_flip,
    random_resize_short_side,
    resize_short_side,
    three_crop,
)
from cfjax.data.transform import VideoTransform


def box_video(height=40, width=60, box=(7, 5, 30, 21)):
    """Two frames, one actor: a bright rectangle exactly at ``box`` (inclusive pixels)."""
    frames = np.zeros((2, height, width, 3), np.uint8)
    x1, y1, x2, y2 = box
    frames[:, y1 : y2 + 1, x1 : x2 + 1] = 255
    boxes = np.array([[box, (0, 0, 1, 1)]] * 2, np.float32)
    return {"frames": frames, "boxes": boxes, "box_mask": np.array([[True, False]] * 2)}


def bright_box(frame):
    """The inclusive box of the bright pixels: first and last bright column and row."""
    ys, xs = np.nonzero(frame[..., 0] > 127)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)


def test_flip_and_crop_move_boxes_exactly_with_pixels():
    ex = box_video()
    for out in (horizontal_flip(ex), crop(ex, 3, 4, 30, 40), centre_crop(ex, 30), *three_crop(ex, 36)):
        for t in range(2):
            np.testing.assert_array_equal(out["boxes"][t, 0], bright_box(out["frames"][t]))
    flipped = horizontal_flip(ex)
    np.testing.assert_array_equal(flipped["boxes"][0, 0], [59 - 30, 5, 59 - 7, 21])  # x -> W - 1 - x
    np.testing.assert_array_equal(horizontal_flip(flipped)["boxes"], ex["boxes"])


def test_random_transforms_keep_boxes_on_the_object_within_one_pixel():
    ex = box_video()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        out = random_resize_short_side(ex, (44, 70), rng)
        out = random_crop(out, 40, rng)
        out = random_horizontal_flip(out, rng)
        for t in range(2):
            if out["box_mask"][t, 0]:
                clipped_object = bright_box(out["frames"][t])
                np.testing.assert_allclose(out["boxes"][t, 0], clipped_object, atol=1.0)
    full = VideoTransform(clip_length=2, crop_size=32, scale_range=(36, 48), normalise=False)
    for seed in range(6):
        out = full(ex, seed)
        np.testing.assert_allclose(out["boxes"][0, 0], bright_box(out["frames"][0]), atol=1.0)


def test_crop_clips_boxes_and_drops_boxes_that_leave_it():
    ex = box_video()
    ex["box_mask"][:] = True
    out = crop(ex, 10, 20, 20, 30)  # keeps columns 20..49, rows 10..29
    np.testing.assert_array_equal(out["boxes"][0, 0], [0, 0, 10, 11])
    np.testing.assert_array_equal(out["boxes"][0, 0], bright_box(out["frames"][0]))
    np.testing.assert_array_equal(out["box_mask"][0], [True, False])  # actor 1 at (0,0,1,1) is gone
    edge = crop(ex, 0, 30, 40, 30)  # the box's last column (30) is the crop's first
    np.testing.assert_array_equal(edge["boxes"][0, 0], [0, 5, 0, 21])
    np.testing.assert_array_equal(edge["boxes"][0, 0], bright_box(edge["frames"][0]))
    assert edge["box_mask"][0, 0]
    gone = crop(ex, 0, 31, 40, 29)  # starts one column past the box: no pixel left
    assert not gone["box_mask"][0, 0]
    corner = crop(ex, 22, 0, 18, 7)  # ends a column before the box (x1 = 7), starts a row below it (y2 = 21)
    assert not corner["box_mask"][:, 0].any()
    with pytest.raises(ValueError, match="does not fit"):
        crop(ex, 30, 0, 20, 20)


def test_three_crop_positions_along_long_side():
    cols = np.broadcast_to(np.arange(60, dtype=np.uint8)[None, None, :, None], (1, 20, 60, 3)).copy()
    left, centre, right = three_crop({"frames": cols}, 20)
    assert [c["frames"][0, 0, 0, 0] for c in (left, centre, right)] == [0, 20, 40]
    tall = {"frames": np.ascontiguousarray(np.swapaxes(cols, 1, 2))}
    top, _, bottom = three_crop(tall, 20)
    assert top["frames"][0, 0, 0, 0] == 0 and bottom["frames"][0, -1, 0, 0] == 59


def test_resize_short_side_scales_boxes_and_keeps_aspect():
    out = resize_short_side(box_video(), 20)
    assert out["frames"].shape == (2, 20, 30, 3)
    # inclusive pixels: x1 -> x1 * s, x2 -> (x2 + 1) * s - 1 (as the builders rescale)
    np.testing.assert_allclose(out["boxes"][0, 0], [3.5, 2.5, 14.5, 10.0])
    np.testing.assert_allclose(out["boxes"][0, 0], bright_box(out["frames"][0]), atol=1.0)
    for short_side in (17, 31, 40, 57, 83):  # up and down, odd scales: the bright pixels stay within 1 px
        ex = box_video(box=(11, 6, 24, 19))
        out = resize_short_side(ex, short_side)
        np.testing.assert_allclose(out["boxes"][0, 0], bright_box(out["frames"][0]), atol=1.0)


def test_normalize_per_channel_float32():
    ex = {"frames": np.full((1, 2, 2, 3), 255, np.uint8)}
    out = normalize(ex, mean=(0.5, 0.0, 1.0), std=(0.5, 1.0, 2.0))
    assert out["frames"].dtype == np.float32
    np.testing.assert_allclose(out["frames"][0, 0, 0], [1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="mean/std"):
        normalize(ex, mean=(0.5,), std=(0.5,))
