"""CFAD's anchors (pure numpy, static shapes): temporal anchors of the proposal network, spatial
anchor boxes of the coarse module, and their sizes by k-means of training boxes.

Boxes are inclusive pixels (``x2 - x1 + 1`` wide). The run-time side, the k-means anchors a
prepared dataset keeps in ``cfad_anchors.json``, is :mod:`cfjax.train.anchors`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["kmeans_anchor_sizes", "spatial_anchors", "temporal_anchors"]


def temporal_anchors(num_steps: int, stride: float, scales: Sequence[float], num_frames: int) -> np.ndarray:
    """``[num_steps * S, 2]`` anchor segments ``[start, end)`` in frames, step-major.

    Anchor ``(j, s)`` is centred at ``(j + 0.5) * stride`` with length ``scales[s] * num_frames``.
    """
    centres = (np.arange(num_steps) + 0.5) * float(stride)
    lengths = np.asarray(scales, np.float64) * float(num_frames)
    return np.stack([centres[:, None] - lengths / 2, centres[:, None] + lengths / 2], axis=-1).reshape(-1, 2)


def spatial_anchors(height: int, width: int, stride: float, sizes: Sequence[Sequence[float]]) -> np.ndarray:
    """``[height * width * A, 4]`` inclusive-pixel anchor boxes, ordered (y, x, anchor).

    The anchor of size ``(w, h)`` (inclusive: ``x2 - x1 + 1 = w``) at feature
    cell ``(i, j)`` is centred at pixel ``((j + 0.5) stride - 0.5, (i + 0.5) stride - 0.5)``.
    """
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    cy = (np.arange(height) + 0.5) * stride - 0.5
    cx = (np.arange(width) + 0.5) * stride - 0.5
    cy, cx = np.meshgrid(cy, cx, indexing="ij")
    half_w, half_h = (sizes[:, 0] - 1) / 2, (sizes[:, 1] - 1) / 2
    boxes = np.stack(
        [cx[..., None] - half_w, cy[..., None] - half_h, cx[..., None] + half_w, cy[..., None] + half_h], axis=-1
    )
    return boxes.reshape(-1, 4)


def _wh_iou(wh, centres):
    inter = np.minimum(wh[:, None, 0], centres[None, :, 0]) * np.minimum(wh[:, None, 1], centres[None, :, 1])
    union = (wh[:, 0] * wh[:, 1])[:, None] + (centres[:, 0] * centres[:, 1])[None, :] - inter
    return inter / union


def kmeans_anchor_sizes(boxes_wh, k: int = 6, iterations: int = 100) -> np.ndarray:
    """Anchor sizes by k-means of training box sizes (YOLOv2's ``1 - IoU`` distance), deterministic.

    Boxes are compared as if they shared a centre. Initial centres are the
    boxes at the ``(i + 0.5) / k`` quantiles of area; each iteration assigns
    every box to the centre of highest IoU (ties: lower index) and moves each
    centre to the mean ``(w, h)`` of its boxes (an empty cluster keeps its
    centre); it stops when no centre moves.

    Args:
      boxes_wh: ``[M, 2]`` positive widths and heights (e.g. ``x2 - x1 + 1``), ``M >= k``.
      k: number of anchors (6 in the paper).

    Returns:
      ``[k, 2]`` float64 ``(w, h)`` sorted by area.
    """
    wh = np.asarray(boxes_wh, np.float64)
    if wh.ndim != 2 or wh.shape[1] != 2:
        raise ValueError(f"boxes_wh: expected [M, 2] (w, h), got shape {wh.shape}")
    if not np.all(np.isfinite(wh)) or np.any(wh <= 0):
        raise ValueError("boxes_wh: expected finite, positive widths and heights")
    if not 1 <= int(k) <= len(wh):
        raise ValueError(f"k: expected 1 <= k <= M = {len(wh)}, got {k}")
    k = int(k)
    order = np.argsort(wh[:, 0] * wh[:, 1], kind="stable")
    centres = wh[order[((np.arange(k) + 0.5) * len(wh) / k).astype(int)]].copy()
    for _ in range(int(iterations)):
        assign = np.argmax(_wh_iou(wh, centres), axis=1)
        new = centres.copy()
        for j in range(k):
            members = wh[assign == j]
            if len(members):
                new[j] = members.mean(axis=0)
        if np.array_equal(new, centres):
            break
        centres = new
    return centres[np.argsort(centres[:, 0] * centres[:, 1], kind="stable")]
