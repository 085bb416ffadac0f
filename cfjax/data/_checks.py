"""What the input-pipeline modules share: the example's key tables and the input checks.

An *example* is a dict of numpy arrays (keys in :mod:`cfjax.data.sampling`); a random
transform takes an ``np.random.Generator`` or an int seed. Each check raises naming the
argument or key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

Example = dict[str, Any]
Rng = np.random.Generator | int

# Keys holding images (spatial transforms apply to all present), and per-frame keys
# (temporal sampling gathers them with the frames).
IMAGE_KEYS = ("frames", "fine_frames")
TIME_KEYS = ("frames", "boxes", "box_mask")
# (boxes, mask) key pairs the spatial transforms move; the video_* pair is not sampled in time.
BOX_KEYS = (("boxes", "box_mask"), ("video_boxes", "video_box_mask"))
LABEL_KEY = "frame_labels"


def to_generator(rng: Rng, name: str = "rng") -> np.random.Generator:
    """``rng`` itself, or a fresh generator seeded with the int ``rng``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name}: expected a np.random.Generator or an int seed, got {type(rng).__name__}")


def positive_int(value, name: str) -> int:
    """``value`` as a Python int >= 1 (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def frames_of(example: Mapping[str, Any], key: str = "frames") -> np.ndarray:
    """``example[key]``, checked to be images ``[..., T, H, W, C]`` with C 1 or 3."""
    if not isinstance(example, Mapping):
        raise TypeError(f"example: expected a dict of arrays, got {type(example).__name__}")
    if key not in example:
        raise KeyError(f"example has no {key!r} key (keys: {sorted(example)})")
    frames = np.asarray(example[key])
    if frames.ndim < 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"{key!r}: expected [..., T, H, W, 3], got shape {frames.shape}")
    return frames


def num_frames_of(example: Mapping[str, Any]) -> int:
    """``F`` of a whole-video example (``frames [F, H, W, 3]``), checked against its per-frame keys."""
    frames = frames_of(example)
    if frames.ndim != 4:
        raise ValueError(f"'frames': expected a whole video [F, H, W, 3], got shape {frames.shape}")
    if frames.shape[0] < 1:
        raise ValueError("'frames': the video has no frames")
    for key in TIME_KEYS[1:]:
        if key in example and np.shape(example[key])[:1] != (frames.shape[0],):
            raise ValueError(
                f"{key!r}: expected {frames.shape[0]} frames on axis 0 like 'frames', "
                f"got shape {np.shape(example[key])}"
            )
    if "boxes" in example and np.shape(example["boxes"])[-1:] != (4,):
        raise ValueError(f"'boxes': expected [F, A, 4], got shape {np.shape(example['boxes'])}")
    return frames.shape[0]
