"""Shared machinery of the real-dataset TFDS builders (array_record, no TensorFlow).

Every real builder reads a *manual directory* (``download_config.manual_dir``, or
``build_dataset(..., manual_dir=...)``) laid out as its docstring says, decodes
videos with ``cfjax.data.video.decode_video`` (or reads frame folders with PIL),
and writes array_record readable by ``builder.as_data_source()``.

Options shared by every config (``RealConfig``):

- ``fps``: output frame rate; ``None`` keeps the native frames. Resampling picks,
  for output time ``k / fps``, the source frame nearest in time (as
  ``decode_video`` does for files; frame folders use their ``source_fps``).
- ``short_side``: resize so that ``min(H, W) == short_side`` (aspect kept,
  bilinear); ``None`` keeps the source size.
- ``jpeg_quality``: ``None`` stores frames raw, ``tfds.features.Tensor(shape=(None,
  None, None, 3), dtype=uint8)`` (a record holds ``uint8 [T, H, W, 3]``); an int
  in [1, 95] stores one JPEG per frame, ``Sequence(Image(encoding_format="jpeg"))``
  (a record holds a list of ``uint8 [H, W, 3]``, decoded with PIL, no TF; use
  ``frames_array`` to stack). JPEGs are encoded by ``encode_jpeg`` and handed to
  TFDS as bytes, because TFDS's own encoder needs TensorFlow.

Skipping: a video that is missing or cannot be decoded (``VideoDecodeError``, an
unreadable image in a frame folder) is skipped, logged, and listed; after the
build ``builder.skipped`` is ``{split: [{"video", "path", "reason"}]}`` and the
same is written as ``skipped.json`` next to the dataset (in ``builder.data_path``).
A split where nothing survives raises ``EmptySplitError`` naming the split and
the manual directory. A missing annotation file (CSV, split list, pickle) raises
``FileNotFoundError`` naming the expected path before anything is decoded.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import inspect
import json
import logging
import math
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from cfjax.data.boxes import rescale_boxes  # re-exported: the one inclusive-pixel box rescaling
from cfjax.data.video import VideoDecodeError, decode_video, encode_jpeg, resize_short_side

__all__ = [
    "EmptySplitError",
    "RealConfig",
    "RealVideoBuilder",
    "SkipVideo",
    "frames_array",
    "read_frame_folder",
    "resample_indices",
    "rescale_boxes",
]

log = logging.getLogger(__name__)


class SkipVideo(Exception):
    """Raised by a builder's ``_make_example`` for a video to skip (missing, unreadable)."""

    def __init__(self, path, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class EmptySplitError(RuntimeError):
    """A split has no example left after skipping missing or corrupt videos."""


@dataclasses.dataclass
class RealConfig(tfds.core.BuilderConfig):
    """Options of a real-dataset build (see the module docstring).

    ``split`` selects the official train/test split (1..3) where a dataset has
    several; ``source`` picks videos or frame folders where both exist.
    """

    fps: float | None = None
    short_side: int | None = 256
    jpeg_quality: int | None = 90
    split: int = 1
    source: str = "auto"

    def __post_init__(self):
        if self.fps is not None and (isinstance(self.fps, bool) or not self.fps > 0):
            raise ValueError(f"{type(self).__name__}.fps: expected a positive number or None, got {self.fps!r}")
        if self.short_side is not None and (
            isinstance(self.short_side, bool) or not isinstance(self.short_side, int) or self.short_side < 1
        ):
            raise ValueError(
                f"{type(self).__name__}.short_side: expected a positive int or None, got {self.short_side!r}"
            )
        if self.jpeg_quality is not None and (
            isinstance(self.jpeg_quality, bool)
            or not isinstance(self.jpeg_quality, int)
            or not 1 <= self.jpeg_quality <= 95
        ):
            raise ValueError(
                f"{type(self).__name__}.jpeg_quality: expected an int in [1, 95] or None (raw), got {self.jpeg_quality!r}"
            )
        if self.split not in (1, 2, 3):
            raise ValueError(f"{type(self).__name__}.split: expected 1, 2 or 3, got {self.split!r}")
        if self.source not in ("auto", "videos", "frames"):
            raise ValueError(
                f"{type(self).__name__}.source: expected 'auto', 'videos' or 'frames', got {self.source!r}"
            )


def frames_array(record) -> np.ndarray:
    """``record["frames"]`` as uint8 ``[T, H, W, 3]`` whether stored raw or as JPEGs."""
    frames = record["frames"]
    if isinstance(frames, np.ndarray):
        return frames
    return np.stack([np.asarray(f, np.uint8) for f in frames])


def resample_indices(num_frames: int, source_fps: float, fps: float | None) -> np.ndarray:
    """Source frame indices (0-based) of the output frames at ``fps``.

    Frame ``j`` of the source is shown at ``j / source_fps``; output frame ``k``
    is the source frame nearest to ``k / fps`` (ties to the earlier frame, as in
    ``decode_video``); there are ``ceil(num_frames / source_fps * fps)`` of them.
    ``fps=None`` returns ``arange(num_frames)``.
    """
    if fps is None:
        return np.arange(num_frames)
    count = max(1, math.ceil(num_frames / source_fps * fps - 1e-9))
    k = np.arange(count)
    j = np.ceil(k * source_fps / fps - 0.5 - 1e-9).astype(np.int64)
    return np.clip(j, 0, num_frames - 1)


def read_frame_folder(paths, short_side: int | None) -> np.ndarray:
    """Reads image files to uint8 ``[T, H, W, 3]`` RGB, resized to ``short_side``.

    Raises ``SkipVideo`` for a missing or unreadable file.
    """
    frames = []
    for p in paths:
        p = os.fspath(p)
        if not os.path.isfile(p):
            raise SkipVideo(p, "missing frame file")
        try:
            with Image.open(p) as image:
                frame = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError) as e:
            raise SkipVideo(p, f"unreadable image: {e}") from e
        frames.append(frame if short_side is None else resize_short_side(frame, short_side))
    if not frames:
        raise SkipVideo("<none>", "no frames")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise SkipVideo(os.fspath(paths[0]), f"frames of different sizes {sorted(shapes)}")
    return np.stack(frames)


def require_file(path, what: str, layout_hint: str) -> epath.Path:
    """Returns ``path`` if it is a file, else raises ``FileNotFoundError`` naming it."""
    path = epath.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: expected file {path} (missing). {layout_hint}")
    return path


class RealVideoBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base class: frames feature, skip-and-count, empty-split check, ``skipped.json``.

    Subclasses define ``_features(cfg)`` (everything but ``frames`` and
    ``video_id``), ``_split_items(manual_dir) -> {split: [(video_id, item)]}`` and
    ``_make_example(item) -> dict`` (raising ``SkipVideo`` / ``VideoDecodeError``
    for videos to skip).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First version."}

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # See builders/synthetic.py: TFDS's default needs importlib_resources.
        return epath.Path(inspect.getfile(cls))

    # ------------------------------------------------------------------ subclass API
    def _features(self, cfg) -> dict:
        raise NotImplementedError

    def _split_items(self, manual_dir: epath.Path) -> dict:
        raise NotImplementedError

    def _make_example(self, item) -> dict:
        raise NotImplementedError

    # ------------------------------------------------------------------ TFDS hooks
    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        if cfg.jpeg_quality is None:
            frames = tfds.features.Tensor(shape=(None, None, None, 3), dtype=np.uint8, encoding="bytes")
        else:
            frames = tfds.features.Sequence(tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"))
        features = {"video_id": tfds.features.Text(), "frames": frames, **self._features(cfg)}
        return tfds.core.DatasetInfo(
            builder=self,
            description=inspect.getdoc(type(self)),
            features=tfds.features.FeaturesDict(features),
            homepage="https://github.com/cfjax",
        )

    def _split_generators(self, dl_manager):
        manual_dir = epath.Path(dl_manager.manual_dir)
        self._manual_dir = manual_dir
        self._skipped = {}
        items = self._split_items(manual_dir)
        return {split: self._generate_examples(split, split_items) for split, split_items in items.items()}

    def __init__(self, *, num_workers: int = 1, **kwargs):
        """``num_workers``: threads decoding videos while building (FFmpeg and PIL
        release the GIL); the output does not depend on it."""
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            raise ValueError(f"num_workers: expected a positive int, got {num_workers!r}")
        self.num_workers = num_workers
        super().__init__(**kwargs)

    def _load(self, item):
        """``_make_example`` + frame encoding; a skipped video returns the exception."""
        try:
            record = self._make_example(item)
        except (SkipVideo, VideoDecodeError) as e:
            return e
        record["frames"] = self._encode_frames(record["frames"])
        return record

    def _generate_examples(self, split, items):
        skipped = self._skipped.setdefault(split, [])
        count = 0
        if self.num_workers == 1:
            results = (self._load(item) for _, item in items)
        else:  # in order, at most 2 * num_workers videos in flight
            pool = concurrent.futures.ThreadPoolExecutor(self.num_workers)
            window = collections.deque()
            pending = iter(items)

            def ordered():
                with pool:
                    for _, item in pending:
                        window.append(pool.submit(self._load, item))
                        if len(window) >= 2 * self.num_workers:
                            yield window.popleft().result()
                    while window:
                        yield window.popleft().result()

            results = ordered()
        for (video_id, _), record in zip(items, results):
            if isinstance(record, Exception):
                skipped.append({"video": video_id, "path": record.path, "reason": record.reason})
                log.warning("%s/%s: skipping %s: %s", self.name, split, video_id, record)
                continue
            count += 1
            yield video_id, {"video_id": video_id, **record}
        if count == 0:
            raise EmptySplitError(
                f"{self.name}: split {split!r} is empty: none of its {len(items)} videos could be read "
                f"({len(skipped)} skipped, e.g. {skipped[:3]}); check the manual directory {self._manual_dir}"
            )

    def _encode_frames(self, frames):
        q = self.builder_config.jpeg_quality
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        if q is None:
            return frames
        return [encode_jpeg(f, q) for f in frames]

    def download_and_prepare(self, *args, **kwargs):
        self._skipped = None
        super().download_and_prepare(*args, **kwargs)
        path = epath.Path(self.data_path) / "skipped.json"
        if self._skipped is not None:  # built now (not already on disk)
            path.write_text(json.dumps(self._skipped, indent=1, sort_keys=True))
            total = sum(len(v) for v in self._skipped.values())
            counts = {s: len(v) for s, v in self._skipped.items()}
            log.warning("%s: %d videos skipped %s; listed in %s", self.name, total, counts, path)

    @property
    def skipped(self) -> dict:
        """``{split: [{"video", "path", "reason"}]}`` of the build (read from ``skipped.json``)."""
        if getattr(self, "_skipped", None) is not None:
            return self._skipped
        path = epath.Path(self.data_path) / "skipped.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # ------------------------------------------------------------------ helpers
    def _set_class_names(self, names, source) -> None:
        """Sets the ``label`` ClassLabel names (count must match the feature)."""
        feature = self.info.features["label"]
        names = list(names)
        if len(names) != feature.num_classes:
            raise ValueError(f"{source}: expected {feature.num_classes} classes, found {len(names)}")
        feature.names = names

    def _decode(self, path):
        cfg = self.builder_config
        return decode_video(path, fps=cfg.fps, short_side=cfg.short_side)
