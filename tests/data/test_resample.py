"""The ``"resample"`` temporal sampling (CFAD: the whole video resampled to T frames) and the
``video_boxes`` that ride through the spatial transforms unsampled (numpy only)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfjax.data.sampling import resample_indices
from cfjax.data.transform import VideoTransform


def test_segment_centres_by_hand():
    # F = 10, T = 4: segments of 2.5 frames, centres 1.25, 3.75, 6.25, 8.75
    np.testing.assert_array_equal(resample_indices(10, 4), [1, 3, 6, 8])
    # F < T repeats frames: F = 3, T = 8 -> centres (i + 0.5) * 3 / 8
    np.testing.assert_array_equal(resample_indices(3, 8), [0, 0, 0, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(resample_indices(16, 16), np.arange(16))  # T = F: every frame
    np.testing.assert_array_equal(resample_indices(40, 8), [2, 7, 12, 17, 22, 27, 32, 37])
    assert resample_indices(1, 5).tolist() == [0] * 5


@settings(max_examples=60, deadline=None)
@given(num_frames=st.integers(1, 400), num_steps=st.integers(1, 100), seed=st.integers(0, 2**16))
def test_random_position_inside_each_segment(num_frames, num_steps, seed):
    train = resample_indices(num_frames, num_steps, np.random.default_rng(seed))
    centre = resample_indices(num_frames, num_steps)
    for indices in (train, centre):
        assert indices.shape == (num_steps,) and indices.dtype == np.int64
        assert (np.diff(indices) >= 0).all() and 0 <= indices.min() and indices.max() < num_frames
    i = np.arange(num_steps)
    low = i * num_frames // num_steps  # floor(i F / T): the segment's first frame
    high = -(-(i + 1) * num_frames // num_steps) - 1  # ceil((i + 1) F / T) - 1: its last
    assert (low <= train).all() and (train <= np.maximum(high, low)).all()
    assert (low <= centre).all() and (centre <= np.maximum(high, low)).all()


def test_training_positions_vary_and_cover_the_segment():
    draws = np.stack([resample_indices(40, 4, np.random.default_rng(s)) for s in range(200)])
    for i in range(4):
        assert set(draws[:, i]) == set(range(10 * i, 10 * i + 10))


def _example(num_frames=40):
    frames = np.zeros((num_frames, 24, 32, 3), np.uint8)
    frames[:] = np.arange(num_frames, dtype=np.uint8)[:, None, None, None]
    t = np.arange(num_frames, dtype=np.float32)
    boxes = np.stack([t * 0.5, t * 0 + 4, t * 0.5 + 9, t * 0 + 15], axis=-1)[:, None]  # [F, 1, 4], moving right
    mask = np.ones((num_frames, 1), bool)
    return {"frames": frames, "boxes": boxes, "box_mask": mask, "video_boxes": boxes, "video_box_mask": mask}


def test_video_transform_resamples_and_moves_video_boxes_like_boxes():
    ex = _example()
    evaluate = VideoTransform(
        sampling="resample", train=False, clip_length=8, crop_size=20, short_side=30, normalise=False
    )
    out = evaluate(ex, 0)
    np.testing.assert_array_equal(out["frame_indices"], resample_indices(40, 8))
    np.testing.assert_array_equal(out["frames"][:, 0, 0, 0], out["frame_indices"])  # the pixels of those frames
    assert out["frame_mask"].all() and out["video_boxes"].shape == (40, 1, 4)
    np.testing.assert_array_equal(out["video_boxes"][out["frame_indices"]], out["boxes"])  # same resize and crop
    np.testing.assert_array_equal(out["video_box_mask"][out["frame_indices"]], out["box_mask"])
    train = VideoTransform(sampling="resample", clip_length=8, crop_size=16, scale_range=(20, 28), normalise=False)
    for seed in range(4):
        out = train(ex, seed)
        np.testing.assert_array_equal(out["video_boxes"][out["frame_indices"]], out["boxes"])  # crop and flip too
        np.testing.assert_array_equal(out["video_box_mask"][out["frame_indices"]], out["box_mask"])
    short = evaluate(_example(3), 0)
    np.testing.assert_array_equal(short["frame_indices"], [0, 0, 0, 1, 1, 2, 2, 2])
    assert short["frame_mask"].all()


def test_resample_takes_no_stride():
    with pytest.raises(ValueError, match="^stride: .*resample.* expected 1, got 2"):
        VideoTransform(sampling="resample", stride=2)
    with pytest.raises(ValueError, match="num_steps"):
        resample_indices(10, 0)
