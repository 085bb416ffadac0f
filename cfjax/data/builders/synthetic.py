"""TFDS builder for the synthetic datasets of ``cfjax.data.synthetic`` (array_record).

Frames are stored as ``tfds.features.Tensor(shape=(None, H, W, 3), dtype=uint8)``:
raw bytes, no image codec. This was chosen after checking that Tensor features
encode and decode with ``file_format="array_record"`` and ``as_data_source()``
without TensorFlow installed (``Sequence(Image)`` needs an image codec per
frame and gains nothing on 64x64 synthetic frames). Nothing here imports TF.

Record schemas (``T``, ``H``, ``W`` from the config; ``C = NUM_CLASSES = 8``):

- ``classification``: ``frames`` uint8 [T, H, W, 3]; ``label`` int64 (ClassLabel,
  ``MOTION_CLASSES``); ``redundancy`` float32 scalar.
- ``temporal_detection``: ``frames`` uint8 [T, H, W, 3]; ``frame_labels`` uint8
  [T, C]; ``segments`` float32 [S, 3] (class, start_frame, end_frame inclusive).
- ``clip_set``: ``frames`` uint8 [N * L, H, W, 3]; ``label`` int64 (ClassLabel);
  ``relevant_clips`` bool [N].
- ``tubes``: ``frames`` uint8 [T, H, W, 3]; ``tube_labels`` int64 [A];
  ``tube_lengths`` int64 [A]; ``tube_boxes`` float32 [sum(tube_lengths), 5]
  (rows ``frame (1-based), x1, y1, x2, y2``, tubes concatenated in order); use
  ``tubes_from_record`` to split them.

Every record also has ``video_id`` (text, ``"{split}_{index:06d}"``). Example
``i`` of split ``s`` is generated from seed ``(config.seed, split_index, i)``,
so a build is reproducible and independent of worker order.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from cfjax.data import synthetic

__all__ = ["CfjaxSynthetic", "SyntheticConfig", "tubes_from_record"]

_KINDS = ("classification", "temporal_detection", "clip_set", "tubes")
_SPLITS = ("train", "test")


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
    """Sizes of one synthetic dataset. ``kind`` picks the generator (default: ``name``).

    ``num_frames`` is the video length (for ``clip_set``: ``num_clips * clip_length``
    is used instead). ``object_size`` (``tubes`` only): the actors' largest side in
    pixels, 0 for the generator's default (``min(height, width) // 6``).
    """

    kind: str = ""
    num_train: int = 64
    num_test: int = 16
    num_frames: int = 32
    height: int = 64
    width: int = 64
    num_clips: int = 8
    clip_length: int = 8
    object_size: int = 0
    seed: int = 0

    def __post_init__(self):
        if not self.kind:
            self.kind = self.name
        if self.kind not in _KINDS:
            raise ValueError(f"SyntheticConfig.kind: expected one of {_KINDS}, got {self.kind!r}")
        for f in ("num_train", "num_test", "num_frames", "height", "width", "num_clips", "clip_length", "object_size"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < (0 if f.startswith("num_t") or f == "object_size" else 1):
                raise ValueError(f"SyntheticConfig.{f}: expected a non-negative int, got {v!r}")

    @property
    def video_length(self) -> int:
        return self.num_clips * self.clip_length if self.kind == "clip_set" else self.num_frames


class CfjaxSynthetic(tfds.core.GeneratorBasedBuilder):
    """Procedural videos with motion-defined classes (see ``cfjax.data.synthetic``)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First version."}
    BUILDER_CONFIGS = [
        SyntheticConfig(name="classification", description="one moving object, class = motion"),
        SyntheticConfig(
            name="temporal_detection",
            description="Charades-like: 1..3 overlapping segments, per-frame multi-label targets",
            num_frames=96,
        ),
        SyntheticConfig(name="clip_set", description="GCF-Net-like: action in 1..3 of N clips"),
        SyntheticConfig(name="tubes", description="UCF101-24-like: 1..3 actor tubes with boxes"),
    ]

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS's default resolves the package through `importlib_resources`, which
        # is not installed here (and not needed on Python >= 3.9); the module file
        # is the same path.
        return epath.Path(inspect.getfile(cls))

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        frames = tfds.features.Tensor(shape=(None, cfg.height, cfg.width, 3), dtype=np.uint8)
        features = {"video_id": tfds.features.Text(), "frames": frames}
        if cfg.kind == "classification":
            features["label"] = tfds.features.ClassLabel(names=synthetic.MOTION_CLASSES)
            features["redundancy"] = tfds.features.Scalar(dtype=np.float32)
        elif cfg.kind == "temporal_detection":
            features["frame_labels"] = tfds.features.Tensor(shape=(None, synthetic.NUM_CLASSES), dtype=np.uint8)
            features["segments"] = tfds.features.Tensor(shape=(None, 3), dtype=np.float32)
        elif cfg.kind == "clip_set":
            features["label"] = tfds.features.ClassLabel(names=synthetic.MOTION_CLASSES)
            features["relevant_clips"] = tfds.features.Tensor(shape=(cfg.num_clips,), dtype=np.bool_)
        else:
            features["tube_labels"] = tfds.features.Tensor(shape=(None,), dtype=np.int64)
            features["tube_lengths"] = tfds.features.Tensor(shape=(None,), dtype=np.int64)
            features["tube_boxes"] = tfds.features.Tensor(shape=(None, 5), dtype=np.float32)
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(features),
            homepage="https://github.com/cfjax",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        cfg = self.builder_config
        return {
            split: self._generate_examples(split, i, cfg.num_train if split == "train" else cfg.num_test)
            for i, split in enumerate(_SPLITS)
        }

    def _generate_examples(self, split, split_index, count):
        for i in range(count):
            video_id = f"{split}_{i:06d}"
            yield video_id, {"video_id": video_id, **make_record(self.builder_config, (split_index, i))}


def make_record(cfg: SyntheticConfig, index) -> dict:
    """The record (without ``video_id``) of example ``index = (split_index, i)`` of ``cfg``."""
    seed = (cfg.seed, *index)
    size = dict(height=cfg.height, width=cfg.width)
    if cfg.kind == "classification":
        s = synthetic.classification(seed, num_frames=cfg.num_frames, **size)
        return {"frames": s["frames"], "label": s["label"], "redundancy": np.float32(s["redundancy"])}
    if cfg.kind == "temporal_detection":
        s = synthetic.temporal_detection(seed, num_frames=cfg.num_frames, **size)
        return {"frames": s["frames"], "frame_labels": s["frame_labels"], "segments": s["segments"]}
    if cfg.kind == "clip_set":
        s = synthetic.clip_set(seed, num_clips=cfg.num_clips, clip_length=cfg.clip_length, **size)
        return {"frames": s["frames"], "label": s["label"], "relevant_clips": s["relevant_clips"]}
    s = synthetic.tubes(seed, num_frames=cfg.num_frames, object_size=cfg.object_size or None, **size)
    return {
        "frames": s["frames"],
        "tube_labels": np.array([c for c, _ in s["tubes"]], np.int64),
        "tube_lengths": np.array([len(b) for _, b in s["tubes"]], np.int64),
        "tube_boxes": np.concatenate([b for _, b in s["tubes"]]).astype(np.float32),
    }


def tubes_from_record(record) -> list[tuple[int, np.ndarray]]:
    """Splits a ``tubes`` record into ``[(label, boxes float32 [n, 5])]``."""
    for key in ("tube_labels", "tube_lengths", "tube_boxes"):
        if key not in record:
            raise KeyError(f"record: missing key {key!r} (not a 'tubes' record?)")
    labels = np.asarray(record["tube_labels"])
    lengths = np.asarray(record["tube_lengths"])
    boxes = np.asarray(record["tube_boxes"], np.float32)
    if labels.shape != lengths.shape or boxes.shape != (int(lengths.sum()), 5):
        raise ValueError(
            f"record: tube_boxes {boxes.shape} does not match tube_lengths {lengths.tolist()} "
            f"/ tube_labels {labels.shape}"
        )
    parts = np.split(boxes, np.cumsum(lengths)[:-1])
    return [(int(c), b) for c, b in zip(labels, parts)]
