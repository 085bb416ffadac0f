"""The ACT layout of the tubes task's outputs: tubes interpolated to every frame (the whole layout is
checked end to end in tests/train/test_tubes_task.py)."""

import numpy as np
import pytest

from cfjax.metrics import interpolate_tube


def test_interpolate_tube_averages_repeats_and_fills_every_frame():
    frames, boxes = interpolate_tube([1, 1, 4], [[0, 0, 2, 2], [2, 2, 4, 4], [4, 4, 7, 7]])
    np.testing.assert_array_equal(frames, [1, 2, 3, 4])
    np.testing.assert_allclose(boxes[:, 0], [1, 2, 3, 4])  # repeat averaged to 1, then linear to 4
    np.testing.assert_allclose(boxes[:, 2], [3, 4 + 1 / 3, 5 + 2 / 3, 7])
    with pytest.raises(ValueError, match="frames, boxes"):
        interpolate_tube([], np.zeros((0, 4)))
