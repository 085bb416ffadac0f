"""Builder records -> pipeline examples (the glue between TFDS sources and grain loaders).

A record read from any cfjax builder (``builder.as_data_source()[split][i]``)
is turned into the example format of :mod:`cfjax.data.sampling` by
:func:`example_from_record`; :class:`AdaptedSource` applies it lazily to a
whole random-access source, so that::

    source = AdaptedSource(builder.as_data_source()["train"])
    loader = make_train_loader(source, VideoTransform(...), batch_size, seed)

Example keys (present when the record has what they come from):

- ``frames`` uint8 ``[T, H, W, 3]``: raw tensors pass through; a
  ``Sequence(Image)`` record (a list of decoded ``[H, W, 3]`` frames, or of
  JPEG/PNG bytes) is stacked (bytes decoded with PIL).
- ``video_id`` str; ``label`` int64; ``fps`` float32; ``frame_labels``
  ``[T', C]`` (as stored); other scalar or fixed-shape keys (``redundancy``,
  ``relevant_clips``, ``duration``) pass through as numpy arrays.
- ``segments`` float32 ``[max_segments, 3]`` (rows as stored: ``class, start,
  end``; frames for the synthetic suite, seconds for Charades) padded with
  zeros, and ``segment_mask`` bool ``[max_segments]`` (valid rows first).
- tube datasets (``tube_labels`` / ``tube_lengths`` / ``tube_boxes``):
  ``boxes`` float32 ``[T, A, 4]`` (inclusive pixels, see
  :mod:`cfjax.data.boxes`), ``box_mask`` bool ``[T, A]`` (actor ``a`` has a box
  on frame ``t``), ``tube_labels`` int64 ``[A]`` (-1 for padding actors) and
  ``tube_mask`` bool ``[A]``, with ``A = max_actors``.

Padding to ``max_segments`` / ``max_actors`` makes every example of a dataset
the same shape, so they batch; a record with more raises a ValueError naming it
and the option. ``max_segments=None`` / ``max_actors=None`` keep each record's
own count (only batchable when all records agree).

Frame numbers: the first column of ``tube_boxes`` is 1-based in every builder,
as in ACT's ground truth: row ``(f, x1, y1, x2, y2)`` is the box on
``frames[f - 1]``. Real ACT data (UCF101-24, JHMDB-21: ``00001.jpg`` is frame 1)
and the synthetic ``tubes`` config (``cfjax.data.synthetic.tubes`` writes
``start + i + 1`` for frame ``start + i``) use the same numbering, so one
conversion, ``t = f - 1``, serves both. A frame number outside ``1..T`` raises.

Pure numpy (+ PIL for encoded frames); importing this module does not import
tensorflow_datasets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cfjax.data.video import decode_jpeg

__all__ = ["AdaptedSource", "example_from_record"]

_TUBE_KEYS = ("tube_labels", "tube_lengths", "tube_boxes")
_HANDLED = {"frames", "video_id", "label", "fps", "frame_labels", "segments", *_TUBE_KEYS}


def _name(record: Mapping[str, Any]) -> str:
    video_id = record.get("video_id")
    if video_id is None:
        return "record"
    return f"record {_text(video_id)!r}"


def _text(value) -> str:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


def _frames(frames, where: str) -> np.ndarray:
    if isinstance(frames, np.ndarray) and frames.dtype != object:
        out = frames
    else:
        items = list(frames)
        if not items:
            raise ValueError(f"{where}: 'frames' is an empty sequence")
        decoded = [decode_jpeg(bytes(f)) if isinstance(f, (bytes, np.bytes_)) else np.asarray(f) for f in items]
        shapes = {f.shape for f in decoded}
        if len(shapes) != 1:
            raise ValueError(f"{where}: 'frames' holds frames of different shapes {sorted(shapes)}")
        out = np.stack(decoded)
    if out.ndim != 4 or out.shape[-1] != 3 or out.shape[0] < 1:
        raise ValueError(f"{where}: 'frames' expected uint8 [T, H, W, 3] with T >= 1, got shape {out.shape}")
    if out.dtype != np.uint8:
        raise ValueError(f"{where}: 'frames' expected uint8, got {out.dtype}")
    return out


def _pad_rows(rows: np.ndarray, size: int | None, option: str, what: str, where: str):
    count = rows.shape[0]
    if size is None:
        return rows, np.ones(count, bool)
    if count > size:
        raise ValueError(f"{where}: {count} {what}, more than {option}={size}; raise {option}")
    padded = np.zeros((size,) + rows.shape[1:], rows.dtype)
    padded[:count] = rows
    return padded, np.arange(size) < count


def _tubes(record: Mapping[str, Any], num_frames: int, max_actors: int | None, where: str) -> dict[str, np.ndarray]:
    missing = [k for k in _TUBE_KEYS if k not in record]
    if missing:
        raise KeyError(f"{where}: has {sorted(set(_TUBE_KEYS) - set(missing))} but not {missing}")
    labels = np.asarray(record["tube_labels"], np.int64).reshape(-1)
    lengths = np.asarray(record["tube_lengths"], np.int64).reshape(-1)
    rows = np.asarray(record["tube_boxes"], np.float32)
    if labels.shape != lengths.shape or rows.shape != (int(lengths.sum()), 5) or np.any(lengths < 0):
        raise ValueError(
            f"{where}: tube_boxes {rows.shape} does not match tube_lengths {lengths.tolist()} "
            f"/ tube_labels {labels.shape} (expected [sum(tube_lengths), 5])"
        )
    num_actors = labels.shape[0]
    width = num_actors if max_actors is None else max_actors
    if num_actors > width:
        raise ValueError(f"{where}: {num_actors} tubes, more than max_actors={max_actors}; raise max_actors")
    boxes = np.zeros((num_frames, width, 4), np.float32)
    box_mask = np.zeros((num_frames, width), bool)
    actor = np.repeat(np.arange(num_actors), lengths)
    frame = np.rint(rows[:, 0]).astype(np.int64) - 1  # 1-based frame numbers (ACT and synthetic alike)
    bad = (frame < 0) | (frame >= num_frames)
    if np.any(bad):
        raise ValueError(
            f"{where}: tube_boxes frame {rows[bad][0, 0]:g} outside 1..{num_frames} "
            "(frame numbers are 1-based: row f is the box on frames[f - 1])"
        )
    if len(set(zip(frame.tolist(), actor.tolist()))) != len(frame):
        raise ValueError(f"{where}: a tube has two boxes on one frame")
    boxes[frame, actor] = rows[:, 1:]
    box_mask[frame, actor] = True
    tube_labels = np.full(width, -1, np.int64)
    tube_labels[:num_actors] = labels
    return {
        "boxes": boxes,
        "box_mask": box_mask,
        "tube_labels": tube_labels,
        "tube_mask": np.arange(width) < num_actors,
    }


def example_from_record(
    record: Mapping[str, Any], *, max_actors: int | None = 16, max_segments: int | None = 64
) -> dict[str, Any]:
    """A builder record as a pipeline example (keys and shapes in the module docstring).

    Args:
      record: one record of any cfjax builder (a dict of numpy arrays / lists).
      max_actors: tube datasets: the actor axis ``A`` of ``boxes``, ``box_mask``,
        ``tube_labels``, ``tube_mask`` (``None``: the record's own tube count).
      max_segments: rows of ``segments`` / ``segment_mask`` (``None``: the
        record's own count).

    Raises:
      ValueError / KeyError naming the record (by ``video_id``) for malformed
      frames, inconsistent tubes, or more tubes/segments than allowed.
    """
    if not isinstance(record, Mapping):
        raise TypeError(f"record: expected a dict of arrays, got {type(record).__name__}")
    where = _name(record)
    if "frames" not in record:
        raise KeyError(f"{where}: no 'frames' key (keys: {sorted(record)})")
    frames = _frames(record["frames"], where)
    out: dict[str, Any] = {"frames": frames}
    if "video_id" in record:
        out["video_id"] = _text(record["video_id"])
    if "label" in record:
        out["label"] = np.int64(record["label"])
    if "fps" in record:
        out["fps"] = np.float32(record["fps"])
    if "frame_labels" in record:
        out["frame_labels"] = np.asarray(record["frame_labels"])
    if "segments" in record:
        segments = np.asarray(record["segments"], np.float32).reshape(-1, 3)
        out["segments"], out["segment_mask"] = _pad_rows(segments, max_segments, "max_segments", "segments", where)
    if any(k in record for k in _TUBE_KEYS):
        out.update(_tubes(record, frames.shape[0], max_actors, where))
    for key, value in record.items():
        if key not in _HANDLED:
            out[key] = np.asarray(value)
    return out


class AdaptedSource:
    """Random-access view of ``source`` whose items are ``example_from_record(source[i])``.

    ``len`` and integer indexing (negative too) as the wrapped source; picklable
    when the source is (grain workers), options forwarded to
    :func:`example_from_record`.
    """

    def __init__(self, source, *, max_actors: int | None = 16, max_segments: int | None = 64):
        if not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
            raise TypeError(
                f"source: expected a random-access source (__len__, __getitem__), got {type(source).__name__}"
            )
        for name, value in (("max_actors", max_actors), ("max_segments", max_segments)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"{name}: expected a positive int or None, got {value!r}")
        self.source = source
        self.max_actors = max_actors
        self.max_segments = max_segments

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index) -> dict[str, Any]:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        n = len(self.source)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a source of {n} records")
        return example_from_record(
            self.source[int(index) % n], max_actors=self.max_actors, max_segments=self.max_segments
        )

    def __repr__(self) -> str:
        return f"AdaptedSource({self.source!r}, max_actors={self.max_actors}, max_segments={self.max_segments})"
