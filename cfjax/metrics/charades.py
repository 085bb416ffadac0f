"""Charades per-frame mAP (localisation protocol, numpy only).

Each test video is scored at 25 time points ``t_j = (j - 1) * length / 25``, ``j = 1..25``.
Every (video, point) pair is one row; per class, the rows are ranked by score and the
non-interpolated average precision is taken; the mAP is the mean over classes. A class with
no positive row gets AP 0 and still counts in the mean, as in the official evaluation
(``empty_classes="zero"``); ``empty_classes="skip"`` drops such classes from the mean instead.
"""

from __future__ import annotations

import numpy as np

from cfjax.metrics import _checks

__all__ = ["EMPTY_CLASSES", "average_precision", "charades_points", "frame_map", "scores_at_points"]

EMPTY_CLASSES = ("zero", "skip")  # frame_map's rules for a class without a positive row


def charades_points(num_frames: int, num_points: int = 25) -> np.ndarray:
    """Frame indices of the evaluation time points of a ``num_frames``-frame video.

    Returns:
      ``[num_points]`` int64 ``floor(j * num_frames / num_points)`` for ``j = 0..num_points-1``
      (non-decreasing, in ``[0, num_frames)``; repeats when ``num_frames < num_points``).
    """
    num_frames = _checks.positive_int("num_frames", num_frames)
    num_points = _checks.positive_int("num_points", num_points)
    return np.arange(num_points, dtype=np.int64) * num_frames // num_points


def _ap_columns(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``[C]`` AP of each column of ``scores [M, C]`` / bool ``labels [M, C]`` (nan: no positive)."""
    order = np.argsort(-scores, axis=0, kind="stable")
    hits = np.take_along_axis(labels, order, axis=0)
    precision = np.cumsum(hits, axis=0) / np.arange(1, scores.shape[0] + 1)[:, None]
    num_pos = hits.sum(axis=0)
    ap = np.full(scores.shape[1], np.nan)
    np.divide(np.sum(precision * hits, axis=0), num_pos, out=ap, where=num_pos > 0)
    return ap


def average_precision(scores, labels) -> float:
    """Non-interpolated average precision of one class.

    Rows are ranked by descending score; tied rows keep their input order (stable sort),
    so with ties the result depends on row order. AP is the mean, over the positive rows,
    of the precision at each positive's rank.

    Args:
      scores: ``[M]`` real scores.
      labels: ``[M]`` bool or 0/1 ground truth.

    Returns:
      AP in ``[0, 1]``; ``nan`` when there is no positive.
    """
    scores = _checks.real_array("scores", scores, "[M]", ndim=1, allow_inf=True)
    labels = _checks.binary_array("labels", labels, scores.shape, "[M]")
    return float(_ap_columns(scores[:, None], labels[:, None])[0])


def frame_map(scores, labels, empty_classes: str = "zero") -> tuple[float, np.ndarray]:
    """Charades per-frame mAP over all (video, time point) rows.

    Args:
      scores: ``[M, C]`` real scores, one row per (video, point).
      labels: ``[M, C]`` bool or 0/1: class active at that point.
      empty_classes: a class without a positive row: ``"zero"`` (official Charades evaluation)
        gives it AP 0 and the mean is over all ``C`` classes; ``"skip"`` gives it ``nan`` and
        the mean is over the classes that have a positive (``nan`` if none has).

    Returns:
      ``(mAP, ap)``: ``ap`` is ``[C]`` float64 per-class AP (:func:`average_precision`,
      same tie rule), 0 or ``nan`` for classes without a positive row (``empty_classes``).
    """
    if empty_classes not in EMPTY_CLASSES:
        raise ValueError(f"empty_classes: expected one of {EMPTY_CLASSES}, got {empty_classes!r}")
    scores = _checks.real_array("scores", scores, "[M, C]", ndim=2, allow_inf=True)
    labels = _checks.binary_array("labels", labels, scores.shape, "[M, C]")
    ap = _ap_columns(scores, labels)
    present = ~np.isnan(ap)
    if empty_classes == "zero":
        ap[~present] = 0.0
        return (float(ap.mean()) if ap.size else float("nan")), ap
    return (float(ap[present].mean()) if present.any() else float("nan")), ap


def scores_at_points(logits, frame_indices, frame_mask, points) -> np.ndarray:
    """Read a clip's per-step predictions at requested source frames.

    For each point, takes the row of the valid step whose source frame index is nearest;
    ties go to the earlier step (lower step index). Points outside the clip get the nearest
    clip step.

    Args:
      logits: ``[T, C]`` per-step predictions.
      frame_indices: ``[T]`` int source frame index of each step.
      frame_mask: ``[T]`` bool valid steps (at least one).
      points: ``[P]`` int source frame indices to read (e.g. :func:`charades_points`).

    Returns:
      ``[P, C]`` rows of ``logits`` (same dtype).
    """
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits: expected [T, C], got shape {logits.shape}")
    t = logits.shape[0]
    frame_indices = _checks.int_array("frame_indices", frame_indices, (t,), "[T]")
    frame_mask = _checks.bool_mask("frame_mask", frame_mask, t)
    if not frame_mask.any():
        raise ValueError("frame_mask: expected at least one valid step, got none")
    points = np.asarray(points)
    if points.ndim != 1:
        raise ValueError(f"points: expected [P], got shape {points.shape}")
    points = _checks.int_array("points", points, points.shape, "[P]")
    valid = np.flatnonzero(frame_mask)
    dist = np.abs(points[:, None] - frame_indices[valid][None, :])  # [P, T_valid]
    return logits[valid[np.argmin(dist, axis=1)]]  # argmin: first (earliest) of equal distances
