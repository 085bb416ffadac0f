"""The tubes task's clip targets (``tube_clip_targets``): the boxes of the clip's steps, tubes in
record order, valid first; more tubes than ``max_tubes``: those with the most boxes in the clip."""

from __future__ import annotations

import numpy as np

from cfjax.data import synthetic
from cfjax.data.records import example_from_record
from cfjax.data.sampling import sample_clip
from cfjax.train.tasks import tube_clip_targets


def whole_video(video: dict) -> dict:
    """A ``synthetic.tubes`` video as a pipeline example: ``boxes [F, A, 4]``, ``box_mask [F, A]``, ..."""
    return example_from_record(
        {
            "frames": video["frames"],
            "tube_labels": np.array([c for c, _ in video["tubes"]], np.int64),
            "tube_lengths": np.array([len(b) for _, b in video["tubes"]], np.int64),
            "tube_boxes": np.concatenate([b for _, b in video["tubes"]]),
        },
        max_actors=None,
    )


def test_targets_from_a_synthetic_clip():
    example = synthetic.tubes(5, num_frames=16, height=32, width=32, num_actors=2)
    clip = sample_clip(whole_video(example), 8, start=4)  # video frames 4..11
    targets = tube_clip_targets(clip, max_tubes=3)
    assert targets["gt_boxes"].shape == (3, 8, 4)
    assert not targets["gt_tube_valid"][2]
    g = 0
    for label, rows in example["tubes"]:
        idx = rows[:, 0].astype(int) - 1 - 4
        inside = (idx >= 0) & (idx < 8)
        if not inside.any():
            continue
        assert targets["gt_labels"][g] == label
        np.testing.assert_array_equal(np.flatnonzero(targets["gt_valid"][g]), idx[inside])
        np.testing.assert_array_equal(targets["gt_boxes"][g][idx[inside]], rows[inside, 1:])
        g += 1
    assert targets["gt_tube_valid"].sum() == g


def test_more_tubes_than_max_tubes_keeps_those_with_most_boxes():
    example = synthetic.tubes(5, num_frames=16, height=32, width=32, num_actors=2)
    targets = tube_clip_targets(sample_clip(whole_video(example), 16, start=0), max_tubes=1)
    counts = [len(rows) for _, rows in example["tubes"]]
    assert len(counts) == 2 and counts[0] != counts[1]
    label, rows = example["tubes"][int(np.argmax(counts))]
    np.testing.assert_array_equal(targets["gt_tube_valid"], [True])
    assert targets["gt_labels"][0] == label
    np.testing.assert_array_equal(np.flatnonzero(targets["gt_valid"][0]), rows[:, 0].astype(int) - 1)
    np.testing.assert_array_equal(targets["gt_boxes"][0][rows[:, 0].astype(int) - 1], rows[:, 1:])
