"""Tests of cfjax.data.sampling: temporal indices and the sample_* transforms."""

import itertools

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from cfjax.data.sampling import (
    clip_indices,
    coarse_fine_indices,
    multi_clip_indices,
    resample_frame_labels,
    sample_clip,
    sample_clips,
    sample_coarse_fine,
)
from tests.data.videos import video


def test_clip_indices_centre_random_and_loop_padding():
    idx, mask = clip_indices(100, 8, 3)
    np.testing.assert_array_equal(np.diff(idx), 3)
    assert mask.all() and idx[0] == (100 - 22) // 2
    starts = {int(clip_indices(100, 8, 3, np.random.default_rng(s))[0][0]) for s in range(30)}
    assert len(starts) > 5 and min(starts) >= 0 and max(starts) <= 100 - 22
    # Short video: 7 frames, stride 2 -> in-range steps 0, 2, 4, 6, then they loop.
    idx, mask = clip_indices(7, 10, 2, np.random.default_rng(0))
    np.testing.assert_array_equal(idx, [0, 2, 4, 6, 0, 2, 4, 6, 0, 2])
    np.testing.assert_array_equal(mask, [True] * 4 + [False] * 6)


def test_sample_clip_gathers_frames_labels_and_masks_together():
    ex = video(7)
    out = sample_clip(ex, 10, 2, np.random.default_rng(0))
    assert out["frames"].shape == (10, 24, 32, 3)
    np.testing.assert_array_equal(out["frames"][:, 0, 0, 0], out["frame_indices"])
    np.testing.assert_array_equal(out["frame_labels"][:, 0], out["frame_indices"])
    assert out["frame_mask"].sum() == 4 and out["label"] == ex["label"]


def test_frame_labels_at_another_rate_are_resampled_proportionally():
    labels = np.repeat(np.arange(5), 1)[:, None]  # 5 label rows for 20 frames: 4 frames each
    got = resample_frame_labels(labels, np.array([0, 3, 4, 10, 19]), 20)
    np.testing.assert_array_equal(got[:, 0], [0, 0, 1, 2, 4])


def test_multi_clip_indices_non_overlapping_uniform_and_in_range():
    for rng in (None, np.random.default_rng(3)):
        idx, clip_mask, frame_mask = multi_clip_indices(200, 5, 8, 2, rng)
        assert idx.shape == (5, 8) and clip_mask.all() and frame_mask.all()
        windows = [(row[0], row[-1] + 2) for row in idx]  # each clip owns [start, start + L*s)
        for (a0, a1), (b0, b1) in itertools.pairwise(windows):
            assert a1 <= b0
        assert idx.min() >= 0 and idx.max() < 200
        assert idx[0, 0] < 40 and idx[-1, 0] >= 160  # spread over the whole video


def test_multi_clip_indices_short_video_masked():
    idx, clip_mask, frame_mask = multi_clip_indices(20, 5, 8, 1, short_video="mask")
    np.testing.assert_array_equal(clip_mask, [True, True, True, False, False])
    assert frame_mask[:2].all() and frame_mask[2, :4].all() and not frame_mask[2, 4:].any()
    assert not frame_mask[3:].any()
    np.testing.assert_array_equal(idx[3], idx[0])
    valid = idx[frame_mask]
    assert len(np.unique(valid)) == len(valid) == 20  # every frame once, no overlap
    out = sample_clips(video(20), 5, 8, 1, short_video="mask")
    assert out["frames"].shape == (5, 8, 24, 32, 3) and out["frame_labels"].shape == (5, 8, 3)
    np.testing.assert_array_equal(out["frames"][..., 0, 0, 0], idx)
    np.testing.assert_array_equal(out["clip_mask"], clip_mask)
    with pytest.raises(ValueError, match="^short_video: expected one of"):
        multi_clip_indices(20, 5, 8, short_video="pad")


@hypothesis.given(
    num_clips=st.integers(1, 12), clip_length=st.integers(1, 8), stride=st.integers(1, 3), fraction=st.floats(0, 1)
)
def test_multi_clip_indices_short_video_loops_as_real_clips(num_clips, clip_length, stride, fraction):
    """GCF-Net's loop padding: a video shorter than N windows gives N valid clips that cycle through its
    k = ceil(F / window) consecutive windows (the last wrapping to frame 0); masking only changes the masks."""
    window = clip_length * stride
    num_frames = 1 + int(fraction * (num_clips * window - 2)) if num_clips * window > 1 else 1
    hypothesis.assume(num_frames < num_clips * window)
    idx, clip_mask, frame_mask = multi_clip_indices(num_frames, num_clips, clip_length, stride)
    assert idx.shape == (num_clips, clip_length) and clip_mask.all() and frame_mask.all()
    k = -(-num_frames // window)
    expected = (window * np.arange(k)[:, None] + stride * np.arange(clip_length)) % num_frames
    np.testing.assert_array_equal(idx, expected[np.arange(num_clips) % k])
    masked_idx, masked_clips, _ = multi_clip_indices(num_frames, num_clips, clip_length, stride, short_video="mask")
    np.testing.assert_array_equal(masked_idx, idx)
    np.testing.assert_array_equal(masked_clips, np.arange(num_clips) < k)


def test_clip_set_task_short_video_option():
    """``input.short_video`` of the clip-set task: "loop" (default) keeps the 10 looped clips valid, "mask" masks
    the repeats; any other value, or the key with another sampling, is a one-line error."""
    import ml_collections

    from cfjax.train import tasks

    c = ml_collections.ConfigDict(
        {
            "task": "clip_set",
            "input": {"sampling": "clips", "num_clips": 10, "clip_length": 4, "crop_size": 16, "flip": False},
            "eval_input": {},
            "loss": {"sparsity_weight": 0.0},
        }
    )
    task = tasks.get_task(c)
    looped = task.transform(c, train=False)(video(20), 0)  # 20 frames: 5 windows of 4
    assert looped["clip_mask"].all() and looped["frames"].shape[:2] == (10, 4)
    np.testing.assert_array_equal(looped["frame_indices"][5:], looped["frame_indices"][:5])
    c.input.short_video = "mask"
    masked = task.transform(c, train=True)(video(20), 0)
    np.testing.assert_array_equal(masked["clip_mask"], np.arange(10) < 5)
    np.testing.assert_array_equal(masked["frame_indices"], looped["frame_indices"])
    c.input.short_video = "pad"
    with pytest.raises(ValueError, match="^input.short_video: expected one of"):
        task.transform(c, train=True)
    c.input.short_video, c.input.sampling = "mask", "clip"
    with pytest.raises(ValueError, match="^input.short_video: only for sampling='clips'"):
        tasks.video_transform(c, train=True)


@pytest.mark.parametrize("num_frames", [30, 300, 2000])
def test_coarse_fine_offset_points_at_the_coarse_clip_start(num_frames):
    for seed in range(5):
        ex = video(num_frames)
        ex["frames"] = ex["frames"][:, :2, :2]
        idx = coarse_fine_indices(num_frames, 8, 10, 16, 10, np.random.default_rng(seed))
        off = int(idx["offset"])
        assert idx["fine_mask"][off]
        assert idx["fine_indices"][off] == idx["coarse_indices"][0]
        np.testing.assert_array_equal(
            idx["fine_indices"][off : off + 8][idx["fine_mask"][off : off + 8]],
            idx["coarse_indices"][: int(idx["fine_mask"][off : off + 8].sum())],
        )
        out = sample_coarse_fine(ex, 8, 10, 16, 10, np.random.default_rng(seed))
        np.testing.assert_array_equal(out["fine_frames"][int(out["fine_offset"])], out["frames"][0])
        assert out["fine_frames"].shape[0] == 16 and out["frames"].shape[0] == 8
    if num_frames == 30:  # 3 fine steps valid, the rest loop-padded and masked
        np.testing.assert_array_equal(idx["fine_mask"], [True] * 3 + [False] * 13)
    with pytest.raises(ValueError, match="start_step"):
        coarse_fine_indices(30, 8, 10, 16, 10, start_step=5)
