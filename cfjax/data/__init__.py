"""Data: video decoding, synthetic videos, TFDS builders (array_record, no TensorFlow), grain pipelines.

Pure numpy; imports no model. The TFDS builders (``build_dataset``,
``CfjaxSynthetic``, ``SyntheticConfig``, ``tubes_from_record``) load lazily, so
importing this package does not import tensorflow_datasets. Input pipelines:
temporal sampling (:mod:`cfjax.data.sampling`), spatial augmentation
(:mod:`cfjax.data.augment`), the composed :class:`~cfjax.data.transform.VideoTransform`
(:mod:`cfjax.data.transform`) and grain loaders with resumable state
(:mod:`cfjax.data.loaders`); :func:`example_from_record` / :class:`AdaptedSource`
(:mod:`cfjax.data.records`) turn builder records into pipeline examples. Boxes
everywhere are inclusive pixels (:mod:`cfjax.data.boxes`).
"""

from cfjax.data.boxes import crop_boxes, flip_boxes, rescale_boxes
from cfjax.data.records import AdaptedSource, example_from_record
from cfjax.data.synthetic import (
    MOTION_CLASSES,
    NUM_CLASSES,
    act_ground_truth,
    classification,
    clip_set,
    motion_path,
    temporal_detection,
    tubes,
)
from cfjax.data.video import VideoDecodeError, decode_jpeg, decode_video, encode_jpeg, resize_short_side

_LAZY = ("build_dataset", "CfjaxSynthetic", "SyntheticConfig", "tubes_from_record")

__all__ = [
    "AdaptedSource",
    "MOTION_CLASSES",
    "NUM_CLASSES",
    "VideoDecodeError",
    "act_ground_truth",
    "classification",
    "clip_set",
    "crop_boxes",
    "decode_jpeg",
    "decode_video",
    "encode_jpeg",
    "example_from_record",
    "flip_boxes",
    "motion_path",
    "rescale_boxes",
    "resize_short_side",
    "temporal_detection",
    "tubes",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        from cfjax.data import builders

        return getattr(builders, name)
    raise AttributeError(f"module 'cfjax.data' has no attribute {name!r}")
