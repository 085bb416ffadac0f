"""The frame_detection task's Charades mAP names its rule for classes without positives (no model run)."""

from __future__ import annotations

import numpy as np
import pytest

from cfjax.train import tasks
from cfjax.train.config import base_config

# One clip of 4 steps read at 4 points (the step itself). Classes 0 and 1 have AP 5/6 each; class 2 has no positive.
RESULTS = {
    "logits": np.array([[[4, 0.1, 9], [3, 0.9, 8], [2, 0.5, 7], [1, 0.3, 6]]], np.float32),
    "frame_indices": np.arange(4)[None],
    "frame_mask": np.ones((1, 4), bool),
    "point_frames": np.arange(4)[None],
    "point_labels": np.array([[[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]]], bool),
}


def _task(rule=None):
    c = base_config()
    c.task = "frame_detection"
    if rule is not None:
        c.eval_protocol.empty_classes = rule
    return tasks.get_task(c)


@pytest.mark.parametrize("rule, expected", [(None, 5 / 9), ("zero", 5 / 9), ("skip", 5 / 6)])
def test_empty_class_rule_is_applied_and_named(rule, expected):
    metrics, table = _task(rule).eval_metrics(RESULTS, ["a", "b", "c"])
    assert metrics["frame_map"] == pytest.approx(expected, rel=1e-6)
    assert metrics["frame_map_empty_classes"] == (rule or "zero")
    assert metrics["frame_map_num_empty_classes"] == 1
    assert table["ap"][2] == (None if rule == "skip" else 0.0)


def test_unknown_rule_fails_when_the_task_is_made():
    with pytest.raises(ValueError, match=r"eval_protocol.empty_classes: expected one of \('zero', 'skip'\), got 'drop'"):
        _task("drop")
