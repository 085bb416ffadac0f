"""Pixel-box geometry shared by the dataset builders and the input pipeline.

One convention everywhere in ``cfjax.data``: boxes ``[..., 4]`` are
``(x1, y1, x2, y2)`` in *inclusive* pixel coordinates, as in ACT's ground truth
(UCF101-24, JHMDB-21) and the synthetic ``tubes``: ``x2`` is the last pixel
column inside the box, ``y2`` the last row, and the area is
``(x2 - x1 + 1) * (y2 - y1 + 1)``. Pixel ``i`` covers the continuous interval
``[i, i + 1)``, so a box covers ``[x1, x2 + 1) x [y1, y2 + 1)``; after a resize,
coordinates may be fractional and keep that meaning.

- resize by ``s``: ``x1 -> x1 * s``, ``x2 -> (x2 + 1) * s - 1`` (:func:`rescale_boxes`);
- horizontal flip of a ``W``-wide frame: ``x1' = W - 1 - x2``, ``x2' = W - 1 - x1``
  (:func:`flip_boxes`);
- crop at ``(top, left)`` of size ``h x w``: shift by ``(left, top)`` and clip to
  ``[0, w - 1] x [0, h - 1]``; a box whose covered area misses the crop keeps no
  pixel and is reported dead (:func:`crop_boxes`).

Pure numpy; no TensorFlow, no TFDS.
"""

from __future__ import annotations

import numpy as np

__all__ = ["crop_boxes", "flip_boxes", "rescale_boxes"]


def _check(boxes, name: str = "boxes") -> np.ndarray:
    boxes = np.asarray(boxes)
    if boxes.shape[-1:] != (4,):
        raise ValueError(f"{name!r}: expected [..., 4] (x1, y1, x2, y2), got shape {boxes.shape}")
    return boxes


def rescale_boxes(boxes, scale_x: float, scale_y: float) -> np.ndarray:
    """Rescales inclusive-pixel boxes ``[..., 4]`` to a frame resized by ``(scale_x, scale_y)``.

    The covered interval ``[x1, x2 + 1)`` is scaled, so ``x1' = x1 * sx`` and
    ``x2' = (x2 + 1) * sx - 1`` (the same for y). Returns float32.
    """
    b = _check(boxes).astype(np.float64)  # a copy
    b[..., 0] *= scale_x
    b[..., 1] *= scale_y
    b[..., 2] = (b[..., 2] + 1) * scale_x - 1
    b[..., 3] = (b[..., 3] + 1) * scale_y - 1
    return b.astype(np.float32)


def flip_boxes(boxes, width: int) -> np.ndarray:
    """Inclusive-pixel boxes after mirroring a ``width``-wide frame left-right.

    Column ``c`` moves to ``width - 1 - c``: ``x1' = W - 1 - x2``, ``x2' = W - 1 - x1``.
    Returns float32.
    """
    b = _check(boxes).astype(np.float32)
    last = np.float32(width - 1)
    return np.stack([last - b[..., 2], b[..., 1], last - b[..., 0], b[..., 3]], axis=-1)


def crop_boxes(boxes, top: int, left: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive-pixel boxes in the frame of a crop at ``(top, left)`` of ``height x width``.

    Boxes are shifted by ``(left, top)`` and clipped to ``[0, width - 1] x
    [0, height - 1]``.

    Returns:
      ``(boxes float32 [..., 4], alive bool [...])``; ``alive`` is False for a
      box that keeps no pixel of the crop (its covered area ``[x1, x2 + 1) x
      [y1, y2 + 1)`` misses ``[0, width) x [0, height)``, or is empty:
      ``x2 + 1 <= x1``).
    """
    b = _check(boxes).astype(np.float32) - np.array([left, top, left, top], np.float32)
    alive = (
        (b[..., 0] < width)
        & (b[..., 2] + 1 > 0)
        & (b[..., 1] < height)
        & (b[..., 3] + 1 > 0)
        & (b[..., 2] + 1 > b[..., 0])
        & (b[..., 3] + 1 > b[..., 1])
    )
    hi = np.array([width - 1, height - 1, width - 1, height - 1], np.float32)
    return np.clip(b, 0.0, hi), alive
