"""Video input pipelines: numpy transforms and grain loaders.

A *source* is any random-access collection: ``len(source)`` and
``source[i] -> dict`` of numpy arrays (``tfds.data_source`` returns one; so does
a list of dicts). Record conventions:

- ``"frames"``: uint8 ``[F, H, W, 3]`` (the whole decoded video, F frames);
- ``"label"``: int (classification);
- ``"frame_labels"``: ``[F', C]`` per-frame multi-label targets (F' = F, or any
  other rate: they are resampled proportionally to the sampled frames);
- ``"boxes"``: float ``[F, A, 4]`` (x1, y1, x2, y2 in pixels, per frame per actor)
  with ``"box_mask"`` bool ``[F, A]``;
- ``"video_boxes"`` / ``"video_box_mask"`` (optional, same layout): boxes the temporal
  samplers leave alone while the spatial transforms move them like ``"boxes"`` (the
  tubes task's whole-video ground truth, :class:`cfjax.train.tasks.TubeTargets`).

Transforms are pure numpy functions ``example -> example`` that take an explicit
``np.random.Generator`` (or an int seed) when they are random.

Boxes use the inclusive-pixel convention of the datasets (ACT ground truth, the
synthetic ``tubes``; see :mod:`cfjax.data.boxes`): ``x2`` is the last pixel
column inside the box, ``y2`` the last row, area ``(x2 - x1 + 1) * (y2 - y1 + 1)``.
A horizontal flip maps ``x1' = W - 1 - x2``, ``x2' = W - 1 - x1``; a crop shifts
boxes and clips them to ``[0, w - 1] x [0, h - 1]`` (a box with no pixel left gets
``box_mask`` False); a resize by ``s`` maps ``x1 -> x1 * s``,
``x2 -> (x2 + 1) * s - 1`` (the builders' :func:`~cfjax.data.boxes.rescale_boxes`).
Flips and crops are exact on integer boxes; after a resize a box matches the
resampled object within a pixel.

Records read from the TFDS builders are turned into this format by
:func:`cfjax.data.records.example_from_record` (:class:`~cfjax.data.records.AdaptedSource`).

Loaders (:func:`make_train_loader`, :func:`make_eval_loader`) are grain
``MapDataset`` pipelines; every random transform is seeded from
``(seed, epoch, source index)``, so a batch depends on nothing else (not on the
worker count, nor on where a run was resumed). They return a
:class:`PipelineIterator` whose ``get_state()`` / ``set_state()`` restore the exact
next batch, and which Orbax saves through grain's checkpoint handler
(:func:`checkpoint_save_args` / :func:`checkpoint_restore_args`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grain
import numpy as np
from PIL import Image

from cfjax.data.boxes import crop_boxes, flip_boxes, rescale_boxes

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "PipelineIterator",
    "VideoTransform",
    "centre_crop",
    "checkpoint_restore_args",
    "checkpoint_save_args",
    "clip_indices",
    "coarse_fine_indices",
    "crop",
    "horizontal_flip",
    "make_eval_loader",
    "make_train_loader",
    "multi_clip_indices",
    "multi_view",
    "normalize",
    "random_crop",
    "random_horizontal_flip",
    "random_resize_short_side",
    "resample_frame_labels",
    "resample_indices",
    "resize_short_side",
    "sample_clip",
    "sample_clips",
    "sample_coarse_fine",
    "sample_resampled",
    "stack_examples",
    "three_crop",
    "uniform_clip_starts",
]

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)

# Keys holding images (spatial transforms apply to all present), and per-frame keys
# (temporal sampling gathers them with the frames).
IMAGE_KEYS = ("frames", "fine_frames")
_TIME_KEYS = ("frames", "boxes", "box_mask")
# (boxes, mask) key pairs the spatial transforms move; the video_* pair is not sampled in time.
_BOX_KEYS = (("boxes", "box_mask"), ("video_boxes", "video_box_mask"))
_LABEL_KEY = "frame_labels"

Example = dict[str, Any]
Rng = np.random.Generator | int


# ----------------------------------------------------------------------------- checks


def _generator(rng: Rng, name: str = "rng") -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name}: expected a np.random.Generator or an int seed, got {type(rng).__name__}")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def _size2(size, name: str) -> tuple[int, int]:
    """``size`` as ``(height, width)`` from an int or a pair."""
    if isinstance(size, (int, np.integer)):
        size = (size, size)
    if len(size) != 2:
        raise ValueError(f"{name}: expected an int or (height, width), got {size!r}")
    return _positive_int(size[0], name), _positive_int(size[1], name)


def _frames(example: Mapping[str, Any], key: str = "frames") -> np.ndarray:
    if not isinstance(example, Mapping):
        raise TypeError(f"example: expected a dict of arrays, got {type(example).__name__}")
    if key not in example:
        raise KeyError(f"example has no {key!r} key (keys: {sorted(example)})")
    frames = np.asarray(example[key])
    if frames.ndim < 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"{key!r}: expected [..., T, H, W, 3], got shape {frames.shape}")
    return frames


def _num_frames(example: Mapping[str, Any]) -> int:
    frames = _frames(example)
    if frames.ndim != 4:
        raise ValueError(f"'frames': expected a whole video [F, H, W, 3], got shape {frames.shape}")
    if frames.shape[0] < 1:
        raise ValueError("'frames': the video has no frames")
    for key in _TIME_KEYS[1:]:
        if key in example and np.shape(example[key])[:1] != (frames.shape[0],):
            raise ValueError(
                f"{key!r}: expected {frames.shape[0]} frames on axis 0 like 'frames', "
                f"got shape {np.shape(example[key])}"
            )
    if "boxes" in example and np.shape(example["boxes"])[-1:] != (4,):
        raise ValueError(f"'boxes': expected [F, A, 4], got shape {np.shape(example['boxes'])}")
    return frames.shape[0]


def _image_size(example: Mapping[str, Any]) -> tuple[int, int]:
    """``(H, W)`` shared by every image key."""
    height, width = _frames(example).shape[-3:-1]
    for key in IMAGE_KEYS[1:]:
        if key in example and _frames(example, key).shape[-3:-1] != (height, width):
            raise ValueError(
                f"{key!r}: expected frames of {height}x{width} like 'frames', got shape {np.shape(example[key])}"
            )
    return int(height), int(width)


# --------------------------------------------------------------------------- temporal


def clip_indices(
    num_frames: int, clip_length: int, stride: int = 1, rng: Rng | None = None, *, start: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of one clip of ``T = clip_length`` steps at ``stride``.

    The clip starts at ``start`` if given, else at a random frame (``rng`` given,
    training) or centred in the video (``rng=None``, evaluation). A video too short
    for the clip is loop-padded: the ``n`` in-range steps repeat cyclically and the
    mask marks them (valid steps first).

    Returns:
      ``indices [T]`` int64 into the video's frames, ``mask [T]`` bool.
    """
    num_frames = _positive_int(num_frames, "num_frames")
    clip_length = _positive_int(clip_length, "clip_length")
    stride = _positive_int(stride, "stride")
    span = (clip_length - 1) * stride + 1
    if start is None:
        max_start = max(num_frames - span, 0)
        start = int(_generator(rng).integers(0, max_start + 1)) if rng is not None else max_start // 2
    elif not 0 <= start < num_frames:
        raise ValueError(f"start: expected a frame in [0, {num_frames}), got {start}")
    steps = start + stride * np.arange(clip_length, dtype=np.int64)
    num_valid = int(np.sum(steps < num_frames))
    t = np.arange(clip_length)
    return steps[t % num_valid], t < num_valid


def resample_indices(num_frames: int, num_steps: int, rng: Rng | None = None) -> np.ndarray:
    """``T = num_steps`` frame indices spread over the whole video (CFAD's "resampled to T").

    The video is cut into ``T`` equal segments ``[i F / T, (i + 1) F / T)``; step ``i`` takes
    the frame at the segment's centre, ``floor((i + 1/2) F / T)`` (``rng=None``, evaluation),
    or at a uniformly random position inside it, ``floor((i + u_i) F / T)`` (``rng`` given,
    training). Indices never decrease. A video shorter than ``T`` repeats frames (every
    step is a real frame, nothing to mask): ``F = 3, T = 8`` gives ``0 0 0 1 1 2 2 2``.

    Returns:
      ``indices [T]`` int64.
    """
    num_frames = _positive_int(num_frames, "num_frames")
    num_steps = _positive_int(num_steps, "num_steps")
    steps = np.arange(num_steps, dtype=np.int64)
    if rng is None:
        return (2 * steps + 1) * num_frames // (2 * num_steps)  # exact integer floor
    position = steps + _generator(rng).random(num_steps)
    return np.minimum(np.floor(position * (num_frames / num_steps)).astype(np.int64), num_frames - 1)


def uniform_clip_starts(num_frames: int, num_clips: int, clip_length: int, stride: int = 1) -> np.ndarray:
    """Start frames of ``num_clips`` clips whose centres are uniform over the video.

    Clip ``i`` is centred at ``(i + 1/2) * num_frames / num_clips`` and shifted to
    lie inside the video (all start at 0 when the video is shorter than a clip).

    Returns:
      ``[num_clips]`` int64.
    """
    num_frames = _positive_int(num_frames, "num_frames")
    num_clips = _positive_int(num_clips, "num_clips")
    span = (_positive_int(clip_length, "clip_length") - 1) * _positive_int(stride, "stride") + 1
    centres = (np.arange(num_clips) + 0.5) * num_frames / num_clips
    starts = np.floor(centres - span / 2 + 0.5).astype(np.int64)
    return np.clip(starts, 0, max(num_frames - span, 0))


SHORT_VIDEO = ("loop", "mask")


def multi_clip_indices(
    num_frames: int,
    num_clips: int,
    clip_length: int,
    stride: int = 1,
    rng: Rng | None = None,
    short_video: str = "loop",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``N`` non-overlapping clips of ``L`` steps spread uniformly over a video (GCF-Net).

    A clip covers a window of ``L * stride`` frames. If the video holds ``N``
    windows, it is cut into ``N`` equal segments and each clip lies inside its own
    segment (random position with ``rng``, centred without). Otherwise the first
    ``k = ceil(F / (L * stride))`` clips are consecutive windows from frame 0 (the
    last one loops past the end to frame 0) and the remaining clips repeat them
    cyclically. ``short_video`` says what the repeats are:

    - ``"loop"`` (GCF-Net's loop padding): real clips, every clip and step valid;
    - ``"mask"``: padding, ``clip_mask`` False on the repeats (valid clips first) and
      ``frame_mask`` False on them and on the looped steps of the last window.

    The indices are the same for both.

    Returns:
      ``indices [N, L]`` int64, ``clip_mask [N]`` bool, ``frame_mask [N, L]`` bool.
    """
    if short_video not in SHORT_VIDEO:
        raise ValueError(f"short_video: expected one of {SHORT_VIDEO}, got {short_video!r}")
    num_frames = _positive_int(num_frames, "num_frames")
    num_clips = _positive_int(num_clips, "num_clips")
    clip_length = _positive_int(clip_length, "clip_length")
    stride = _positive_int(stride, "stride")
    window = clip_length * stride
    offsets = stride * np.arange(clip_length, dtype=np.int64)
    if num_frames >= num_clips * window:
        bounds = np.floor(np.arange(num_clips + 1) * (num_frames / num_clips)).astype(np.int64)
        room = bounds[1:] - bounds[:-1] - window
        if rng is not None:
            shift = _generator(rng).integers(0, room + 1)
        else:
            shift = room // 2
        starts = bounds[:-1] + shift
        indices = starts[:, None] + offsets[None, :]
        clip_mask = np.ones(num_clips, bool)
        return indices, clip_mask, np.ones((num_clips, clip_length), bool)
    num_valid = -(-num_frames // window)
    raw = window * np.arange(num_valid, dtype=np.int64)[:, None] + offsets[None, :]
    source = np.arange(num_clips) % num_valid
    indices = (raw % num_frames)[source]
    if short_video == "loop":
        return indices, np.ones(num_clips, bool), np.ones((num_clips, clip_length), bool)
    clip_mask = np.arange(num_clips) < num_valid
    frame_mask = (raw < num_frames)[source] & clip_mask[:, None]
    return indices, clip_mask, frame_mask


def coarse_fine_indices(
    num_frames: int,
    coarse_length: int,
    coarse_stride: int,
    fine_length: int,
    fine_stride: int,
    rng: Rng | None = None,
    *,
    start_step: int | None = None,
) -> dict[str, np.ndarray]:
    """Indices for Coarse-Fine Networks: a coarse clip plus the fine view of the whole video.

    The fine view takes every ``fine_stride``-th frame from frame 0, truncated to
    ``Lf = fine_length`` steps (loop-padded and masked when the video is shorter).
    The coarse clip (``T = coarse_length`` steps at ``coarse_stride``) starts at
    frame ``fine_stride * offset``: ``offset`` is a fine step, random with ``rng``,
    ``start_step`` if given, else the centre of the admissible range; it always lies
    among the valid fine steps, so fine step ``offset`` is the coarse clip's first
    frame.

    Returns:
      dict with ``coarse_indices [T]`` int64, ``coarse_mask [T]`` bool,
      ``fine_indices [Lf]`` int64, ``fine_mask [Lf]`` bool, ``offset`` int64 scalar.
    """
    num_frames = _positive_int(num_frames, "num_frames")
    coarse_length = _positive_int(coarse_length, "coarse_length")
    coarse_stride = _positive_int(coarse_stride, "coarse_stride")
    fine_stride = _positive_int(fine_stride, "fine_stride")
    fine_indices, fine_mask = clip_indices(num_frames, fine_length, fine_stride, start=0)
    num_fine = int(fine_mask.sum())
    span = (coarse_length - 1) * coarse_stride + 1
    max_step = min(max(num_frames - span, 0) // fine_stride, num_fine - 1)
    if start_step is not None:
        if not 0 <= start_step < num_fine:
            raise ValueError(f"start_step: expected a valid fine step in [0, {num_fine}), got {start_step}")
        step = int(start_step)
    elif rng is not None:
        step = int(_generator(rng).integers(0, max_step + 1))
    else:
        step = max_step // 2
    coarse_indices, coarse_mask = clip_indices(num_frames, coarse_length, coarse_stride, start=step * fine_stride)
    return {
        "coarse_indices": coarse_indices,
        "coarse_mask": coarse_mask,
        "fine_indices": fine_indices,
        "fine_mask": fine_mask,
        "offset": np.int64(step),
    }


def resample_frame_labels(frame_labels: np.ndarray, indices: np.ndarray, num_frames: int) -> np.ndarray:
    """Per-frame labels at sampled frames: ``[F', C]`` -> ``indices.shape + [C]``.

    Labels stored at another rate than the frames (``F' != num_frames``) are mapped
    proportionally: frame ``f`` takes label row ``floor((f + 1/2) * F' / F)``.
    """
    frame_labels = np.asarray(frame_labels)
    if frame_labels.ndim < 1 or frame_labels.shape[0] < 1:
        raise ValueError(f"{_LABEL_KEY!r}: expected [F, C] with F >= 1, got shape {frame_labels.shape}")
    num_labels = frame_labels.shape[0]
    indices = np.asarray(indices)
    if num_labels != num_frames:
        indices = np.floor((indices + 0.5) * (num_labels / num_frames)).astype(np.int64)
        indices = np.clip(indices, 0, num_labels - 1)
    return np.take(frame_labels, indices, axis=0)


def _gather_time(example: Example, indices: np.ndarray, num_frames: int) -> Example:
    out = dict(example)
    for key in _TIME_KEYS:
        if key in example:
            out[key] = np.take(np.asarray(example[key]), indices, axis=0)
    if _LABEL_KEY in example:
        out[_LABEL_KEY] = resample_frame_labels(example[_LABEL_KEY], indices, num_frames)
    return out


def sample_clip(
    example: Example, clip_length: int, stride: int = 1, rng: Rng | None = None, *, start: int | None = None
) -> Example:
    """One clip from a whole-video example (see :func:`clip_indices`).

    ``frames [F, H, W, 3] -> [T, H, W, 3]``; ``boxes``, ``box_mask`` and
    ``frame_labels`` are gathered at the same steps; adds ``frame_mask [T]`` bool
    and ``frame_indices [T]`` int64.
    """
    num_frames = _num_frames(example)
    indices, mask = clip_indices(num_frames, clip_length, stride, rng, start=start)
    out = _gather_time(example, indices, num_frames)
    out["frame_mask"] = mask
    out["frame_indices"] = indices
    return out


def sample_resampled(example: Example, num_steps: int, rng: Rng | None = None) -> Example:
    """The whole video resampled to ``num_steps`` frames (see :func:`resample_indices`).

    ``frames [F, H, W, 3] -> [T, H, W, 3]``; ``boxes``, ``box_mask`` and ``frame_labels``
    are gathered at the same frames; adds ``frame_mask [T]`` (all True) and
    ``frame_indices [T]`` int64.
    """
    num_frames = _num_frames(example)
    indices = resample_indices(num_frames, num_steps, rng)
    out = _gather_time(example, indices, num_frames)
    out["frame_mask"] = np.ones(len(indices), bool)
    out["frame_indices"] = indices
    return out


def sample_clips(
    example: Example,
    num_clips: int,
    clip_length: int,
    stride: int = 1,
    rng: Rng | None = None,
    short_video: str = "loop",
) -> Example:
    """``N`` clips for GCF-Net (see :func:`multi_clip_indices`; a short video's clips loop
    by default, ``short_video="mask"`` masks the repeats).

    ``frames [F, H, W, 3] -> [N, L, H, W, 3]`` (per-frame keys likewise); adds
    ``clip_mask [N]`` and ``frame_mask [N, L]`` bool, ``frame_indices [N, L]``.
    """
    num_frames = _num_frames(example)
    indices, clip_mask, frame_mask = multi_clip_indices(num_frames, num_clips, clip_length, stride, rng, short_video)
    out = _gather_time(example, indices, num_frames)
    out.update(clip_mask=clip_mask, frame_mask=frame_mask, frame_indices=indices)
    return out


def sample_coarse_fine(
    example: Example,
    coarse_length: int,
    coarse_stride: int,
    fine_length: int,
    fine_stride: int,
    rng: Rng | None = None,
    *,
    start_step: int | None = None,
) -> Example:
    """Coarse clip + fine long view (see :func:`coarse_fine_indices`).

    ``frames [F, H, W, 3] -> [T, H, W, 3]`` (coarse; per-frame keys gathered with it,
    ``frame_mask [T]``), ``fine_frames [Lf, H, W, 3]`` with ``fine_mask [Lf]``, and
    ``fine_offset`` int64: the fine step of the coarse clip's first frame.
    """
    num_frames = _num_frames(example)
    idx = coarse_fine_indices(
        num_frames, coarse_length, coarse_stride, fine_length, fine_stride, rng, start_step=start_step
    )
    out = _gather_time(example, idx["coarse_indices"], num_frames)
    out["frame_mask"] = idx["coarse_mask"]
    out["frame_indices"] = idx["coarse_indices"]
    out["fine_frames"] = np.take(np.asarray(example["frames"]), idx["fine_indices"], axis=0)
    out["fine_mask"] = idx["fine_mask"]
    out["fine_offset"] = idx["offset"]
    return out


# ---------------------------------------------------------------------------- spatial


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
    short_side = _positive_int(short_side, "short_side")
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
    for key, _ in _BOX_KEYS:
        if key in example:
            out[key] = rescale_boxes(_boxes(example, key), new_w / width, new_h / height)
    return out


def random_resize_short_side(example: Example, size_range: tuple[int, int], rng: Rng) -> Example:
    """Scale jitter: short side uniform in ``[size_range[0], size_range[1]]`` (integers)."""
    if len(size_range) != 2 or not 1 <= size_range[0] <= size_range[1]:
        raise ValueError(f"size_range: expected (min, max) with 1 <= min <= max, got {size_range!r}")
    size = int(_generator(rng).integers(size_range[0], size_range[1] + 1))
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
    for key, mask_key in _BOX_KEYS:
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
    rng = _generator(rng)
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
    for key, _ in _BOX_KEYS:
        if key in example:
            out[key] = flip_boxes(_boxes(example, key), width)
    return out


def random_horizontal_flip(example: Example, rng: Rng, prob: float = 0.5) -> Example:
    """:func:`horizontal_flip` with probability ``prob``."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob: expected a probability in [0, 1], got {prob}")
    return horizontal_flip(example) if _generator(rng).random() < prob else dict(example)


def normalize(example: Example, mean: Sequence[float] = KINETICS_MEAN, std: Sequence[float] = KINETICS_STD) -> Example:
    """``(frames / 255 - mean) / std`` per channel, float32, for every image key.

    ``mean`` and ``std`` are in [0, 1] units, one value per channel.
    """
    out = dict(example)
    for key in IMAGE_KEYS:
        if key not in example:
            continue
        frames = _frames(example, key)
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


def multi_view(
    example: Example,
    clip_length: int,
    stride: int = 1,
    *,
    num_clips: int = 10,
    num_crops: int = 3,
    crop_size: int = 224,
    short_side: int | None = None,
) -> Example:
    """Multi-view evaluation: ``num_clips`` uniform clips x ``num_crops`` crops.

    Each clip is resized to ``short_side`` (default ``crop_size``) then cropped
    (``num_crops`` 3: left/centre/right along the long side; 1: centre). Views are
    clip-major: view ``v`` is clip ``v // num_crops``, crop ``v % num_crops``.

    Returns:
      ``frames [V, T, S, S, 3]`` (``V = num_clips * num_crops``), ``frame_mask [V, T]``,
      ``frame_indices [V, T]``; ``boxes``, ``box_mask``, ``frame_labels`` with a
      leading ``V``; other keys unchanged.
    """
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops: expected 1 or 3, got {num_crops!r}")
    num_frames = _num_frames(example)
    starts = uniform_clip_starts(num_frames, num_clips, clip_length, stride)
    pairs = [clip_indices(num_frames, clip_length, stride, start=int(s)) for s in starts]
    indices = np.stack([p[0] for p in pairs])
    masks = np.stack([p[1] for p in pairs])
    clips = _gather_time(example, indices, num_frames)
    clips = resize_short_side(clips, crop_size if short_side is None else short_side)
    crops = three_crop(clips, crop_size) if num_crops == 3 else [centre_crop(clips, crop_size)]
    out = dict(example)
    views = num_clips * num_crops
    for key in IMAGE_KEYS[:1] + _TIME_KEYS[1:] + (_LABEL_KEY,):
        if key in clips:
            stacked = np.stack([c[key] for c in crops], axis=1)  # [clips, crops, T, ...]
            out[key] = stacked.reshape((views,) + stacked.shape[2:])
    out["frame_mask"] = np.repeat(masks, num_crops, axis=0)
    out["frame_indices"] = np.repeat(indices, num_crops, axis=0)
    return out


# ------------------------------------------------------------------ composed transforms

_SAMPLINGS = ("clip", "clips", "coarse_fine", "multi_view", "resample")


@dataclasses.dataclass(frozen=True)
class VideoTransform:
    """A whole per-example transform ``(example, rng) -> example`` (picklable).

    ``sampling``: ``"clip"`` (one clip of ``clip_length`` at ``stride``), ``"clips"``
    (GCF-Net: ``num_clips`` clips; a shorter video's clips loop, or are masked with
    ``short_video="mask"``), ``"coarse_fine"`` (coarse clip + fine view of
    ``fine_length`` steps at ``fine_stride``), ``"multi_view"`` (eval only:
    ``num_clips`` x ``num_crops`` views), ``"resample"`` (CFAD: the whole video
    resampled to ``clip_length`` frames, :func:`resample_indices`; ``stride`` must be 1).
    Training (``train=True``): random temporal position, scale jitter of the short
    side in ``scale_range`` (or a fixed ``short_side``), random crop, random flip.
    Evaluation: centred sampling,
    ``short_side`` resize (default ``crop_size``), centre crop. Then normalisation
    with ``mean``/``std`` unless ``normalise=False`` (frames stay uint8).
    """

    sampling: str = "clip"
    train: bool = True
    clip_length: int = 16
    stride: int = 1
    num_clips: int = 1
    num_crops: int = 1
    fine_length: int = 128
    fine_stride: int = 1
    short_video: str = "loop"
    crop_size: int = 224
    scale_range: tuple[int, int] | None = None
    short_side: int | None = None
    flip: bool = True
    normalise: bool = True
    mean: tuple[float, ...] = KINETICS_MEAN
    std: tuple[float, ...] = KINETICS_STD

    def __post_init__(self):
        if self.sampling not in _SAMPLINGS:
            raise ValueError(f"sampling: expected one of {_SAMPLINGS}, got {self.sampling!r}")
        if self.short_video not in SHORT_VIDEO:
            raise ValueError(f"short_video: expected one of {SHORT_VIDEO}, got {self.short_video!r}")
        if self.sampling == "multi_view" and self.train:
            raise ValueError("sampling='multi_view' is for evaluation: set train=False")
        if self.sampling == "resample" and self.stride != 1:
            raise ValueError(
                f"stride: sampling='resample' spreads clip_length frames over the whole video, expected 1, got {self.stride!r}"
            )
        for name in ("clip_length", "stride", "num_clips", "fine_length", "fine_stride", "crop_size"):
            _positive_int(getattr(self, name), name)
        if self.scale_range is not None:
            lo, hi = self.scale_range
            if not self.crop_size <= lo <= hi:
                raise ValueError(
                    f"scale_range: expected (min, max) with crop_size={self.crop_size} <= min <= max, "
                    f"got {self.scale_range!r}"
                )
        if self.short_side is not None and self.short_side < self.crop_size:
            raise ValueError(f"short_side: expected >= crop_size={self.crop_size}, got {self.short_side}")

    def __call__(self, example: Example, rng: Rng) -> Example:
        rng = _generator(rng)
        sample_rng = rng if self.train else None
        if self.sampling == "multi_view":
            out = multi_view(
                example,
                self.clip_length,
                self.stride,
                num_clips=self.num_clips,
                num_crops=self.num_crops,
                crop_size=self.crop_size,
                short_side=self.short_side,
            )
            return normalize(out, self.mean, self.std) if self.normalise else out
        if self.sampling == "clip":
            out = sample_clip(example, self.clip_length, self.stride, sample_rng)
        elif self.sampling == "resample":
            out = sample_resampled(example, self.clip_length, sample_rng)
        elif self.sampling == "clips":
            out = sample_clips(
                example, self.num_clips, self.clip_length, self.stride, sample_rng, short_video=self.short_video
            )
        else:
            out = sample_coarse_fine(
                example, self.clip_length, self.stride, self.fine_length, self.fine_stride, sample_rng
            )
        if self.train and self.scale_range is not None:
            out = random_resize_short_side(out, self.scale_range, rng)
        else:
            out = resize_short_side(out, self.short_side or self.crop_size)
        if self.train:
            out = random_crop(out, self.crop_size, rng)
            if self.flip:
                out = random_horizontal_flip(out, rng)
        else:
            out = centre_crop(out, self.crop_size)
        return normalize(out, self.mean, self.std) if self.normalise else out


# --------------------------------------------------------------------------- batching


def stack_examples(examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stacks examples into a batch: each key ``[...] -> [B, ...]`` (nested dicts too).

    Raises a ValueError naming the key when examples disagree on keys or shapes.
    """
    if not examples:
        raise ValueError("examples: expected at least one example to batch")

    def stack(items, path):
        first = items[0]
        if isinstance(first, Mapping):
            keys = set(first)
            for i, item in enumerate(items):
                if not isinstance(item, Mapping) or set(item) != keys:
                    got = sorted(item) if isinstance(item, Mapping) else type(item).__name__
                    raise ValueError(f"{path or 'example'}: example {i} has keys {got}, expected {sorted(keys)}")
            return {k: stack([item[k] for item in items], f"{path}.{k}" if path else k) for k in first}
        arrays = [np.asarray(item) for item in items]
        for i, array in enumerate(arrays):
            if array.shape != arrays[0].shape:
                raise ValueError(
                    f"{path!r}: example {i} has shape {array.shape}, example 0 has {arrays[0].shape}; "
                    "batched examples need equal shapes (sample fixed-size clips and crops)"
                )
        return np.stack(arrays)

    return stack(list(examples), "")


# ---------------------------------------------------------------------------- loaders

Transform = Callable[[Example, np.random.Generator], Example]


def _load(position_key, *, source, transform, seed):
    """``(epoch, source index, valid) -> transformed example`` with ``index`` and ``batch_mask``."""
    epoch, key, valid = position_key
    example = source[int(key)]
    if not isinstance(example, Mapping):
        raise TypeError(f"source[{key}]: expected a dict of arrays, got {type(example).__name__}")
    example = dict(example)
    if transform is not None:
        example = transform(example, np.random.default_rng([seed, int(epoch), int(key)]))
        if not isinstance(example, Mapping):
            raise TypeError(f"transform: expected it to return a dict, got {type(example).__name__}")
        example = dict(example)
    for reserved in ("index", "batch_mask"):
        if reserved in example:
            raise ValueError(f"{reserved!r}: key reserved by the loader, found in example {key}")
    example["index"] = np.int64(key if valid else -1)
    example["batch_mask"] = np.bool_(valid)
    return example


def _with_epoch(index, position, *, permutation, per_shard, shard_index, shard_count):
    """Position ``index`` of this shard's stream -> ``(epoch, source index, True)``."""
    epoch = index // per_shard
    key = permutation[epoch * len(permutation) + position * shard_count + shard_index]
    return epoch, key, True


def _shard(shard_index, shard_count) -> tuple[int, int]:
    if shard_index is None and shard_count is None:
        options = grain.sharding.ShardByJaxProcess()
        return options.shard_index, options.shard_count
    if shard_index is None or shard_count is None:
        raise ValueError("shard_index, shard_count: give both or neither (neither: one shard per JAX process)")
    shard_count = _positive_int(shard_count, "shard_count")
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index: expected in [0, {shard_count}), got {shard_index}")
    return int(shard_index), shard_count


def _check_common(source, batch_size, seed, worker_count) -> int:
    if not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
        raise TypeError(f"source: expected a random-access source (__len__, __getitem__), got {type(source).__name__}")
    num_records = len(source)
    if num_records < 1:
        raise ValueError("source: it is empty")
    _positive_int(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed: expected an int in [0, 2**32), got {seed!r}")
    if isinstance(worker_count, bool) or not isinstance(worker_count, (int, np.integer)) or worker_count < 0:
        raise ValueError(f"worker_count: expected an int >= 0, got {worker_count!r}")
    return num_records


def _allow_unparsed_absl_flags() -> None:
    """grain 0.2.18 reads an absl flag in multiprocess prefetch and raises when the
    program did not parse flags (google/grain#1355, fixed upstream by #1362). Outside
    ``absl.app`` we mark flags parsed, which leaves every flag at its default."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class PipelineIterator(grain.DatasetIterator):
    """Iterator over the batches of a loader, checkpointable at any batch boundary.

    ``get_state()`` is a small JSON-able dict: the number of batches consumed and
    the loader settings it belongs to; ``set_state`` on an iterator from the same
    settings makes the next batch the one that followed when the state was taken
    (the worker count may differ). Being a ``grain.DatasetIterator``, it is saved
    by grain's Orbax checkpoint handler (:func:`checkpoint_save_args`).
    """

    def __init__(
        self, batches: grain.MapDataset, config: dict[str, Any], *, worker_count: int, read_options: grain.ReadOptions
    ):
        super().__init__()
        self._batches = batches
        self._config = config
        self._worker_count = worker_count
        self._read_options = read_options
        self._next_batch = 0
        self._inner = None

    @property
    def num_batches(self) -> int | None:
        """Batches per full pass (None when the loader repeats forever)."""
        return self._config["num_batches"]

    def _start(self):
        if self._inner is None:
            ds = self._batches.slice(slice(self._next_batch, None)).to_iter_dataset(self._read_options)
            if self._worker_count > 0:
                _allow_unparsed_absl_flags()
                ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self._worker_count))
            self._inner = iter(ds)
        return self._inner

    def __next__(self) -> dict[str, Any]:
        batch = next(self._start())
        self._next_batch += 1
        return batch

    def start_prefetch(self) -> None:
        self._start()

    def get_state(self) -> dict[str, Any]:
        return {"next_batch": self._next_batch, **self._config}

    def set_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, Mapping) or "next_batch" not in state:
            raise ValueError(f"state: expected a dict from PipelineIterator.get_state(), got {state!r}")
        for name, value in self._config.items():
            if state.get(name) != value:
                raise ValueError(f"state: saved with {name}={state.get(name)!r}, but this loader has {name}={value!r}")
        next_batch = int(state["next_batch"])
        if next_batch < 0:
            raise ValueError(f"state: next_batch must be >= 0, got {next_batch}")
        self.close_inner()
        self._next_batch = next_batch

    def close_inner(self) -> None:
        if self._inner is not None:
            if hasattr(self._inner, "close"):
                self._inner.close()
            self._inner = None

    def close(self) -> None:
        self.close_inner()
        super().close()


def make_train_loader(
    source,
    transform: Transform | None,
    batch_size: int,
    seed: int,
    num_epochs: int | None = None,
    shard_index: int | None = None,
    shard_count: int | None = None,
    worker_count: int = 0,
    *,
    num_threads: int = 1,
    prefetch_buffer_size: int = 2,
) -> PipelineIterator:
    """Shuffled, repeated, sharded training batches.

    This process reads shard ``shard_index`` of ``shard_count`` (default: one per
    JAX process). Each epoch shuffles the whole source afresh and deals it
    round-robin: shard ``i`` takes permuted positions ``i::shard_count``, truncated
    so every shard has ``len(source) // shard_count`` examples (equal step counts on
    all hosts; the ``len % shard_count`` left over change every epoch). Shards are
    disjoint within an epoch. ``transform(example, rng)`` gets ``rng = default_rng([seed, epoch, index])``. Batches never straddle
    a dropped remainder: the last incomplete batch of the whole run is dropped.

    Returns:
      a :class:`PipelineIterator` of dicts: every example key stacked to
      ``[batch_size, ...]``, plus ``index [B]`` int64 (source index) and
      ``batch_mask [B]`` bool (all True).
    """
    num_records = _check_common(source, batch_size, seed, worker_count)
    if num_epochs is not None:
        num_epochs = _positive_int(num_epochs, "num_epochs")
    shard_index, shard_count = _shard(shard_index, shard_count)
    per_shard = num_records // shard_count
    if per_shard < 1:
        raise ValueError(f"source: {num_records} examples cannot fill {shard_count} shards")
    # One global permutation per epoch (grain reseeds a shuffle at index // len), dealt
    # round-robin to the shards: disjoint within an epoch, and the few examples left over
    # (len % shard_count) differ from epoch to epoch.
    permutation = grain.MapDataset.range(num_records).shuffle(seed=int(seed))
    positions = grain.MapDataset.range(per_shard).repeat(num_epochs)
    deal = functools.partial(
        _with_epoch,
        permutation=permutation,
        per_shard=per_shard,
        shard_index=shard_index,
        shard_count=shard_count,
    )
    examples = positions.map_with_index(deal)
    examples = examples.map(functools.partial(_load, source=source, transform=transform, seed=int(seed)))
    batches = examples.batch(batch_size, drop_remainder=True, batch_fn=stack_examples)
    num_batches = None if num_epochs is None else per_shard * num_epochs // batch_size
    if num_batches == 0:
        raise ValueError(
            f"batch_size: {batch_size} exceeds the {per_shard * num_epochs} examples of this shard's "
            f"{num_epochs} epoch(s); no batch would be produced"
        )
    config = {
        "kind": "train",
        "seed": int(seed),
        "batch_size": int(batch_size),
        "num_records": num_records,
        "shard_index": shard_index,
        "shard_count": shard_count,
        "num_epochs": num_epochs,
        "num_batches": num_batches,
    }
    return PipelineIterator(
        batches,
        config,
        worker_count=int(worker_count),
        read_options=grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch_buffer_size),
    )


def _eval_position(position, *, keys, pad_key):
    if position < len(keys):
        return 0, keys[position], True
    return 0, pad_key, False


def make_eval_loader(
    source,
    transform: Transform | None,
    batch_size: int,
    seed: int = 0,
    shard_index: int | None = None,
    shard_count: int | None = None,
    worker_count: int = 0,
    *,
    num_threads: int = 1,
    prefetch_buffer_size: int = 2,
) -> PipelineIterator:
    """One ordered pass over this shard; every example appears exactly once overall.

    Shard ``i`` reads source indices ``i::shard_count``. All shards yield the same
    number of batches, ``ceil(ceil(len(source) / shard_count) / batch_size)``;
    slots past the shard's end are filled with a copy of one of its examples with
    ``batch_mask`` False and ``index`` -1. ``transform`` gets
    ``rng = default_rng([seed, 0, index])``.

    Returns:
      a finite :class:`PipelineIterator` of dicts as in :func:`make_train_loader`.
    """
    num_records = _check_common(source, batch_size, seed, worker_count)
    shard_index, shard_count = _shard(shard_index, shard_count)
    keys = list(range(shard_index, num_records, shard_count))
    per_shard = -(-num_records // shard_count)
    num_batches = -(-per_shard // batch_size)
    positions = grain.MapDataset.range(num_batches * batch_size)
    positions = positions.map(functools.partial(_eval_position, keys=keys, pad_key=keys[0] if keys else 0))
    examples = positions.map(functools.partial(_load, source=source, transform=transform, seed=int(seed)))
    batches = examples.batch(batch_size, drop_remainder=True, batch_fn=stack_examples)
    config = {
        "kind": "eval",
        "seed": int(seed),
        "batch_size": int(batch_size),
        "num_records": num_records,
        "shard_index": shard_index,
        "shard_count": shard_count,
        "num_epochs": 1,
        "num_batches": num_batches,
    }
    return PipelineIterator(
        batches,
        config,
        worker_count=int(worker_count),
        read_options=grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch_buffer_size),
    )


# ----------------------------------------------------------------------------- orbax


def checkpoint_save_args(iterator: PipelineIterator):
    """Orbax args saving ``iterator``'s state (grain's handler: one JSON file per process).

    Use inside ``ocp.args.Composite(..., data=checkpoint_save_args(it))`` with an
    ``ocp.CheckpointManager``.
    """
    if not isinstance(iterator, grain.DatasetIterator):
        raise TypeError(f"iterator: expected a PipelineIterator, got {type(iterator).__name__}")
    return grain.checkpoint.CheckpointSave(iterator)


def checkpoint_restore_args(iterator: PipelineIterator):
    """Orbax args restoring a saved state into ``iterator`` (a fresh loader with the same settings)."""
    if not isinstance(iterator, grain.DatasetIterator):
        raise TypeError(f"iterator: expected a PipelineIterator, got {type(iterator).__name__}")
    return grain.checkpoint.CheckpointRestore(iterator)
