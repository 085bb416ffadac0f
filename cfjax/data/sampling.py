"""Temporal sampling: which frames of a whole video make a clip, and the ``sample_*`` transforms.

An *example* is a dict of numpy arrays (a source's ``source[i]``). Keys:

- ``"frames"``: uint8 ``[F, H, W, 3]`` (the whole decoded video, F frames);
- ``"label"``: int (classification);
- ``"frame_labels"``: ``[F', C]`` per-frame multi-label targets (F' = F, or any
  other rate: they are resampled proportionally to the sampled frames);
- ``"boxes"``: float ``[F, A, 4]`` (x1, y1, x2, y2 in pixels, per frame per actor)
  with ``"box_mask"`` bool ``[F, A]``;
- ``"video_boxes"`` / ``"video_box_mask"`` (optional, same layout): boxes the temporal
  samplers leave alone while the spatial transforms (:mod:`cfjax.data.augment`) move
  them like ``"boxes"`` (the tubes task's whole-video ground truth).

The ``*_indices`` functions compute frame indices (and masks) from the video length;
the ``sample_*`` functions apply them to an example, gathering every per-frame key at
the same steps. Random choices take an explicit ``np.random.Generator`` (or an int
seed); ``rng=None`` gives the centred, deterministic evaluation choice.
"""

from __future__ import annotations

import numpy as np

from cfjax.data._checks import LABEL_KEY, TIME_KEYS, Example, Rng, num_frames_of, positive_int, to_generator

__all__ = [
    "SHORT_VIDEO",
    "clip_indices",
    "coarse_fine_indices",
    "gather_frames",
    "multi_clip_indices",
    "resample_frame_labels",
    "resample_indices",
    "sample_clip",
    "sample_clips",
    "sample_coarse_fine",
    "sample_resampled",
    "uniform_clip_starts",
]


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
    num_frames = positive_int(num_frames, "num_frames")
    clip_length = positive_int(clip_length, "clip_length")
    stride = positive_int(stride, "stride")
    span = (clip_length - 1) * stride + 1
    if start is None:
        max_start = max(num_frames - span, 0)
        start = int(to_generator(rng).integers(0, max_start + 1)) if rng is not None else max_start // 2
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
    num_frames = positive_int(num_frames, "num_frames")
    num_steps = positive_int(num_steps, "num_steps")
    steps = np.arange(num_steps, dtype=np.int64)
    if rng is None:
        return (2 * steps + 1) * num_frames // (2 * num_steps)  # exact integer floor
    position = steps + to_generator(rng).random(num_steps)
    return np.minimum(np.floor(position * (num_frames / num_steps)).astype(np.int64), num_frames - 1)


def uniform_clip_starts(num_frames: int, num_clips: int, clip_length: int, stride: int = 1) -> np.ndarray:
    """Start frames of ``num_clips`` clips whose centres are uniform over the video.

    Clip ``i`` is centred at ``(i + 1/2) * num_frames / num_clips`` and shifted to
    lie inside the video (all start at 0 when the video is shorter than a clip).

    Returns:
      ``[num_clips]`` int64.
    """
    num_frames = positive_int(num_frames, "num_frames")
    num_clips = positive_int(num_clips, "num_clips")
    span = (positive_int(clip_length, "clip_length") - 1) * positive_int(stride, "stride") + 1
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
    num_frames = positive_int(num_frames, "num_frames")
    num_clips = positive_int(num_clips, "num_clips")
    clip_length = positive_int(clip_length, "clip_length")
    stride = positive_int(stride, "stride")
    window = clip_length * stride
    offsets = stride * np.arange(clip_length, dtype=np.int64)
    if num_frames >= num_clips * window:
        bounds = np.floor(np.arange(num_clips + 1) * (num_frames / num_clips)).astype(np.int64)
        room = bounds[1:] - bounds[:-1] - window
        if rng is not None:
            shift = to_generator(rng).integers(0, room + 1)
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
    num_frames = positive_int(num_frames, "num_frames")
    coarse_length = positive_int(coarse_length, "coarse_length")
    coarse_stride = positive_int(coarse_stride, "coarse_stride")
    fine_stride = positive_int(fine_stride, "fine_stride")
    fine_indices, fine_mask = clip_indices(num_frames, fine_length, fine_stride, start=0)
    num_fine = int(fine_mask.sum())
    span = (coarse_length - 1) * coarse_stride + 1
    max_step = min(max(num_frames - span, 0) // fine_stride, num_fine - 1)
    if start_step is not None:
        if not 0 <= start_step < num_fine:
            raise ValueError(f"start_step: expected a valid fine step in [0, {num_fine}), got {start_step}")
        step = int(start_step)
    elif rng is not None:
        step = int(to_generator(rng).integers(0, max_step + 1))
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
        raise ValueError(f"{LABEL_KEY!r}: expected [F, C] with F >= 1, got shape {frame_labels.shape}")
    num_labels = frame_labels.shape[0]
    indices = np.asarray(indices)
    if num_labels != num_frames:
        indices = np.floor((indices + 0.5) * (num_labels / num_frames)).astype(np.int64)
        indices = np.clip(indices, 0, num_labels - 1)
    return np.take(frame_labels, indices, axis=0)


def gather_frames(example: Example, indices: np.ndarray, num_frames: int) -> Example:
    """The per-frame keys of a whole-video example at ``indices`` (any shape ``I``).

    ``frames [F, H, W, 3] -> [*I, H, W, 3]``, ``boxes`` / ``box_mask`` likewise,
    ``frame_labels`` through :func:`resample_frame_labels`; other keys unchanged.
    """
    out = dict(example)
    for key in TIME_KEYS:
        if key in example:
            out[key] = np.take(np.asarray(example[key]), indices, axis=0)
    if LABEL_KEY in example:
        out[LABEL_KEY] = resample_frame_labels(example[LABEL_KEY], indices, num_frames)
    return out


def sample_clip(
    example: Example, clip_length: int, stride: int = 1, rng: Rng | None = None, *, start: int | None = None
) -> Example:
    """One clip from a whole-video example (see :func:`clip_indices`).

    ``frames [F, H, W, 3] -> [T, H, W, 3]``; ``boxes``, ``box_mask`` and
    ``frame_labels`` are gathered at the same steps; adds ``frame_mask [T]`` bool
    and ``frame_indices [T]`` int64.
    """
    num_frames = num_frames_of(example)
    indices, mask = clip_indices(num_frames, clip_length, stride, rng, start=start)
    out = gather_frames(example, indices, num_frames)
    out["frame_mask"] = mask
    out["frame_indices"] = indices
    return out


def sample_resampled(example: Example, num_steps: int, rng: Rng | None = None) -> Example:
    """The whole video resampled to ``num_steps`` frames (see :func:`resample_indices`).

    ``frames [F, H, W, 3] -> [T, H, W, 3]``; ``boxes``, ``box_mask`` and ``frame_labels``
    are gathered at the same frames; adds ``frame_mask [T]`` (all True) and
    ``frame_indices [T]`` int64.
    """
    num_frames = num_frames_of(example)
    indices = resample_indices(num_frames, num_steps, rng)
    out = gather_frames(example, indices, num_frames)
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
    num_frames = num_frames_of(example)
    indices, clip_mask, frame_mask = multi_clip_indices(num_frames, num_clips, clip_length, stride, rng, short_video)
    out = gather_frames(example, indices, num_frames)
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
    num_frames = num_frames_of(example)
    idx = coarse_fine_indices(
        num_frames, coarse_length, coarse_stride, fine_length, fine_stride, rng, start_step=start_step
    )
    out = gather_frames(example, idx["coarse_indices"], num_frames)
    out["frame_mask"] = idx["coarse_mask"]
    out["frame_indices"] = idx["coarse_indices"]
    out["fine_frames"] = np.take(np.asarray(example["frames"]), idx["fine_indices"], axis=0)
    out["fine_mask"] = idx["fine_mask"]
    out["fine_offset"] = idx["offset"]
    return out
