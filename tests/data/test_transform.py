"""Tests of cfjax.data.transform: multi-view evaluation."""

import numpy as np

from cfjax.data.transform import VideoTransform, multi_view
from tests.data.videos import video


def test_multi_view_has_30_views_clip_major():
    ex = video(100, 24, 36)
    out = multi_view(ex, 8, 2, num_clips=10, num_crops=3, crop_size=16)
    assert out["frames"].shape == (30, 8, 16, 16, 3)
    assert out["frame_mask"].shape == (30, 8) and out["frame_labels"].shape == (30, 8, 3)
    starts = out["frame_indices"][:, 0].reshape(10, 3)
    assert (starts == starts[:, :1]).all() and (np.diff(starts[:, 0]) > 0).all()
    np.testing.assert_array_equal(out["frames"][:, :, 0, 0, 0], out["frame_indices"])
    assert out["label"] == ex["label"]
    eval_tf = VideoTransform(
        sampling="multi_view", train=False, clip_length=8, stride=2, num_clips=10, num_crops=3, crop_size=16
    )
    assert eval_tf(ex, 0)["frames"].dtype == np.float32
