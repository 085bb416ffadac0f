"""Composed per-example transforms: multi-view evaluation and :class:`VideoTransform`.

A transform is a pure numpy function ``(example, rng) -> example`` (``rng`` an
``np.random.Generator`` or an int seed); :class:`VideoTransform` is the picklable one
the loaders (:mod:`cfjax.data.loaders`) run: temporal sampling (:mod:`cfjax.data.sampling`),
then resize, crop, flip and normalisation (:mod:`cfjax.data.augment`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cfjax.data._checks import (
    IMAGE_KEYS,
    LABEL_KEY,
    TIME_KEYS,
    Example,
    Rng,
    num_frames_of,
    positive_int,
    to_generator,
)
from cfjax.data.augment import (
    KINETICS_MEAN,
    KINETICS_STD,
    centre_crop,
    normalize,
    random_crop,
    random_horizontal_flip,
    random_resize_short_side,
    resize_short_side,
    three_crop,
)
from cfjax.data.sampling import (
    SHORT_VIDEO,
    clip_indices,
    gather_frames,
    sample_clip,
    sample_clips,
    sample_coarse_fine,
    sample_resampled,
    uniform_clip_starts,
)

__all__ = ["VideoTransform", "multi_view"]


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
    num_frames = num_frames_of(example)
    starts = uniform_clip_starts(num_frames, num_clips, clip_length, stride)
    pairs = [clip_indices(num_frames, clip_length, stride, start=int(s)) for s in starts]
    indices = np.stack([p[0] for p in pairs])
    masks = np.stack([p[1] for p in pairs])
    clips = gather_frames(example, indices, num_frames)
    clips = resize_short_side(clips, crop_size if short_side is None else short_side)
    crops = three_crop(clips, crop_size) if num_crops == 3 else [centre_crop(clips, crop_size)]
    out = dict(example)
    views = num_clips * num_crops
    for key in IMAGE_KEYS[:1] + TIME_KEYS[1:] + (LABEL_KEY,):
        if key in clips:
            stacked = np.stack([c[key] for c in crops], axis=1)  # [clips, crops, T, ...]
            out[key] = stacked.reshape((views,) + stacked.shape[2:])
    out["frame_mask"] = np.repeat(masks, num_crops, axis=0)
    out["frame_indices"] = np.repeat(indices, num_crops, axis=0)
    return out


_SAMPLINGS = ("clip", "clips", "coarse_fine", "multi_view", "resample")


@dataclasses.dataclass(frozen=True)
class VideoTransform:
    """A whole per-example transform ``(example, rng) -> example`` (picklable).

    ``sampling``: ``"clip"`` (one clip of ``clip_length`` at ``stride``), ``"clips"``
    (GCF-Net: ``num_clips`` clips; a shorter video's clips loop, or are masked with
    ``short_video="mask"``), ``"coarse_fine"`` (coarse clip + fine view of
    ``fine_length`` steps at ``fine_stride``), ``"multi_view"`` (eval only:
    ``num_clips`` x ``num_crops`` views), ``"resample"`` (CFAD: the whole video
    resampled to ``clip_length`` frames, :func:`~cfjax.data.sampling.resample_indices`;
    ``stride`` must be 1).
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
            positive_int(getattr(self, name), name)
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
        rng = to_generator(rng)
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
