"""Spatial transforms of examples: resize, crops, flips (boxes moved with the pixels), normalisation.

Each applies to every image key present (``frames [..., H, W, 3]`` and the coarse-fine
``fine_frames``) and moves the boxes (``boxes``, ``video_boxes``; keys in
:mod:`cfjax.data.sampling`). Random ones take an explicit ``np.random.Generator`` (or
an int seed).

Boxes use the inclusive-pixel convention of the datasets (ACT ground truth, the
synthetic ``tubes``; see :mod:`cfjax.data.boxes`): ``x2`` is the last pixel
column inside the box, ``y2`` the last row, area ``(x2 - x1 + 1) * (y2 - y1 + 1)``.
A horizontal flip maps ``x1' = W - 1 - x2``, ``x2' = W - 1 - x1``; a crop shifts
boxes and clips them to ``[0, w - 1] x [0, h - 1]`` (a box with no pixel left gets
``box_mask`` False); a resize by ``s`` maps ``x1 -> x1 * s``,
``x2 -> (x2 + 1) * s - 1`` (the builders' :func:`~cfjax.data.boxes.rescale_boxes`).
Flips and crops are exact on integer boxes; after a resize a box matches the
resampled object within a pixel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from cfjax.data._checks import BOX_KEYS, IMAGE_KEYS, Example, Rng, frames_of, positive_int, to_generator
from cfjax.data.boxes import crop_boxes, flip_boxes, rescale_boxes

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "centre_crop",
    "crop",
    "horizontal_flip",
    "normalize",
    "random_crop",
    "random_horizontal_flip",
    "random_resize_short_side",
    "resize_short_side",
    "three_crop",
]

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


def _size2(size, name: str) -> tuple[int, int]:
    """``size`` as ``(height, width)`` from an int or a pair."""
    if isinstance(size, (int, np.integer)):
        size = (size, size)
    if len(size) != 2:
        raise ValueError(f"{name}: expected an int or (height, width), got {size!r}")
    return positive_int(size[0], name), positive_int(size[1], name)


def _image_size(example: Mapping[str, Any]) -> tuple[int, int]:
    """``(H, W)`` shared by every image key."""
    height, width = frames_of(example).shape[-3:-1]
    for key in IMAGE_KEYS[1:]:
        if key in example and frames_of(example, key).shape[-3:-1] != (height, width):
            raise ValueError(
                f"{key!r}: expected frames of {height}x{width} like 'frames', got shape {np.shape(example[key])}"
            )
    return int(height), int(width)


def _resize_frames(frames: np.ndarray, height: int, width: int, key: str) -> np.ndarray:
    if frames.dtype != np.uint8:
        raise ValueError(f"{key!r}: resizing expects uint8 frames (normalise last), got {frames.dtype}")
    lead, (h, w, c) = frames.shape[:-3], frames.shape[-3:]
    flat = frames.reshape((-1, h, w, c))
    out = np.empty((flat.shape[0], height, width, c), np.uint8)
    for i, frame in enumerate(flat):
        image = Image.fromarray(frame[..., 0] if c == 1 else frame)
        resized = np.asarray(image.resize((width, height), Image.BILINEAR))
        out[i] = resized.reshape(height, width, c)
    return out.reshape(lead + (height, width, c))


def _boxes(example: Example, key: str = "boxes") -> np.ndarray:
    boxes = np.asarray(example[key], np.float32)
    if boxes.shape[-1:] != (4,):
        raise ValueError(f"{key!r}: expected [..., A, 4], got shape {boxes.shape}")
    return boxes


def resize_short_side(example: Example, short_side: int) -> Example:
    """Bilinear resize so that ``min(H, W) = short_side`` (aspect kept); boxes rescaled
    with the inclusive convention (:func:`cfjax.data.boxes.rescale_boxes`).

    ``frames [..., H, W, 3] -> [..., H', W', 3]`` (and ``fine_frames``).
    """
    short_side = positive_int(short_side, "short_side")
    height, width = _image_size(example)
    if height <= width:
        new_h, new_w = short_side, max(1, round(width * short_side / height))
    else:
        new_h, new_w = max(1, round(height * short_side / width)), short_side
    out = dict(example)
    if (new_h, new_w) == (height, width):
        return out
    for key in IMAGE_KEYS:
        if key in example:
            out[key] = _resize_frames(np.asarray(example[key]), new_h, new_w, key)
    for key, _ in BOX_KEYS:
        if key in example:
            out[key] = rescale_boxes(_boxes(example, key), new_w / width, new_h / height)
    return out


def random_resize_short_side(example: Example, size_range: tuple[int, int], rng: Rng) -> Example:
    """Scale jitter: short side uniform in ``[size_range[0], size_range[1]]`` (integers)."""
    if len(size_range) != 2 or not 1 <= size_range[0] <= size_range[1]:
        raise ValueError(f"size_range: expected (min, max) with 1 <= min <= max, got {size_range!r}")
    size = int(to_generator(rng).integers(size_range[0], size_range[1] + 1))
    return resize_short_side(example, size)


def crop(example: Example, top: int, left: int, height: int, width: int) -> Example:
    """Crops every image key to ``[top, top + height) x [left, left + width)``.

    Inclusive-pixel boxes are shifted and clipped to ``[0, width - 1] x
    [0, height - 1]``; a box with no pixel left in the crop gets ``box_mask``
    False (see :func:`cfjax.data.boxes.crop_boxes`).
    """
    img_h, img_w = _image_size(example)
    if not (0 <= top and 0 <= left and top + height <= img_h and left + width <= img_w):
        raise ValueError(f"crop: window top={top} left={left} {height}x{width} does not fit frames of {img_h}x{img_w}")
    out = dict(example)
    for key in IMAGE_KEYS:
        if key in example:
            out[key] = np.asarray(example[key])[..., top : top + height, left : left + width, :]
    for key, mask_key in BOX_KEYS:
        if key in example:
            boxes, alive = crop_boxes(_boxes(example, key), top, left, height, width)
            out[key] = boxes
            if mask_key in example:
                out[mask_key] = np.asarray(example[mask_key], bool) & alive
    return out


def random_crop(example: Example, size, rng: Rng) -> Example:
    """Crop of ``size`` (int or ``(h, w)``) at a uniformly random position."""
    crop_h, crop_w = _size2(size, "size")
    height, width = _image_size(example)
    if crop_h > height or crop_w > width:
        raise ValueError(f"size: crop {crop_h}x{crop_w} is larger than the frames ({height}x{width})")
    rng = to_generator(rng)
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    return crop(example, top, left, crop_h, crop_w)


def _positioned_crop(example: Example, size, position: float) -> Example:
    """Crop centred on the short side; at ``position`` (0 start, 1/2 centre, 1 end) on the long one."""
    crop_h, crop_w = _size2(size, "size")
    height, width = _image_size(example)
    if crop_h > height or crop_w > width:
        raise ValueError(f"size: crop {crop_h}x{crop_w} is larger than the frames ({height}x{width})")
    if width >= height:
        top, left = (height - crop_h) // 2, round((width - crop_w) * position)
    else:
        top, left = round((height - crop_h) * position), (width - crop_w) // 2
    return crop(example, top, left, crop_h, crop_w)


def centre_crop(example: Example, size) -> Example:
    """Central crop of ``size`` (int or ``(h, w)``)."""
    return _positioned_crop(example, size, 0.5)


def three_crop(example: Example, size) -> list[Example]:
    """Three crops along the long side: left, centre, right (top, centre, bottom if portrait)."""
    return [_positioned_crop(example, size, p) for p in (0.0, 0.5, 1.0)]


def horizontal_flip(example: Example) -> Example:
    """Mirrors every image key left-right; inclusive boxes ``x1, x2 -> W - 1 - x2, W - 1 - x1``."""
    _, width = _image_size(example)
    out = dict(example)
    for key in IMAGE_KEYS:
        if key in example:
            out[key] = np.ascontiguousarray(np.asarray(example[key])[..., ::-1, :])
    for key, _ in BOX_KEYS:
        if key in example:
            out[key] = flip_boxes(_boxes(example, key), width)
    return out


def random_horizontal_flip(example: Example, rng: Rng, prob: float = 0.5) -> Example:
    """:func:`horizontal_flip` with probability ``prob``."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob: expected a probability in [0, 1], got {prob}")
    return horizontal_flip(example) if to_generator(rng).random() < prob else dict(example)


def normalize(example: Example, mean: Sequence[float] = KINETICS_MEAN, std: Sequence[float] = KINETICS_STD) -> Example:
    """``(frames / 255 - mean) / std`` per channel, float32, for every image key.

    ``mean`` and ``std`` are in [0, 1] units, one value per channel.
    """
    out = dict(example)
    for key in IMAGE_KEYS:
        if key not in example:
            continue
        frames = frames_of(example, key)
        channels = frames.shape[-1]
        mean_a = np.asarray(mean, np.float32).reshape(-1)
        std_a = np.asarray(std, np.float32).reshape(-1)
        if mean_a.shape != (channels,) or std_a.shape != (channels,):
            raise ValueError(
                f"mean/std: expected {channels} values (channels of {key!r}), got {mean_a.shape} and {std_a.shape}"
            )
        if np.any(std_a <= 0):
            raise ValueError(f"std: expected positive values, got {std_a.tolist()}")
        out[key] = (frames.astype(np.float32) / np.float32(255.0) - mean_a) / std_a
    return out
