"""Temporal localisation from GCF-Net clip gates."""

from __future__ import annotations

import numpy as np

__all__ = ["gate_intervals"]


def gate_intervals(gates, clip_bounds, threshold: float = 0.5, clip_mask=None, max_gap: float = 0.0):
    """Time intervals covered by the clips whose gate exceeds ``threshold``.

    Selected clips are taken in time order; a clip that starts at most
    ``max_gap`` after the current interval ends extends it, otherwise it
    opens a new interval.

    Args:
      gates: ``[N]`` gates of one video.
      clip_bounds: ``[N, 2]`` ``(start, end)`` of each clip (frames or seconds).
      threshold: a clip is selected iff ``gate > threshold`` (paper: 0.5).
      clip_mask: ``[N]`` bool valid clips (masked ones are never selected).
      max_gap: largest gap between selected clips that is bridged.

    Returns:
      ``[M, 2]`` float array of disjoint intervals in increasing order
      (``M = 0`` when no clip is selected).
    """
    gates = np.asarray(gates, np.float64)
    bounds = np.asarray(clip_bounds, np.float64)
    if gates.ndim != 1:
        raise ValueError(f"gates: expected [N] for one video, got shape {gates.shape}")
    if bounds.shape != (gates.shape[0], 2) or np.any(bounds[:, 1] < bounds[:, 0]):
        raise ValueError(
            f"clip_bounds: expected [N, 2] = {(gates.shape[0], 2)} (start, end) with start <= end, "
            f"got shape {bounds.shape}"
        )
    selected = gates > threshold
    if clip_mask is not None:
        clip_mask = np.asarray(clip_mask, bool)
        if clip_mask.shape != gates.shape:
            raise ValueError(f"clip_mask: expected [N] = {gates.shape}, got shape {clip_mask.shape}")
        selected &= clip_mask
    intervals: list[list[float]] = []
    for start, end in sorted(map(tuple, bounds[selected])):
        if intervals and start <= intervals[-1][1] + max_gap:
            intervals[-1][1] = max(intervals[-1][1], end)
        else:
            intervals.append([start, end])
    return np.asarray(intervals, np.float64).reshape(-1, 2)
