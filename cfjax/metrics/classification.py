"""Clip / video classification metrics: top-k accuracy, multi-view averaging, per-class
accuracy, confusion matrix (numpy only).

Tie rule (all top-k functions): a label is in the top ``k`` iff fewer than ``k`` classes score
strictly higher than it. Ties are therefore resolved in the label's favour; a row of equal
scores counts as correct for every label and every ``k``.
"""

from __future__ import annotations

import numpy as np

from cfjax.metrics import _checks

__all__ = ["average_views", "confusion_matrix", "per_class_accuracy", "topk_accuracy", "topk_correct"]


def _scores_labels(scores, labels, mask):
    """Validated ``(scores [N, K] float64, labels [N] int64 (masked rows -> 0), mask [N] bool)``."""
    scores = _checks.real_array("scores", scores, "[N, K]", ndim=2, allow_inf=True)
    n, k = scores.shape
    if k < 1:
        raise ValueError(f"scores: expected [N, K] with K >= 1, got shape {scores.shape}")
    labels = _checks.int_array("labels", labels, (n,), "[N]")
    mask = _checks.bool_mask("mask", mask, n)
    return scores, _checks.labels_in_range("labels", labels, mask, k), mask


def _num_greater(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``[N]`` count of classes scoring strictly above the label."""
    label_scores = np.take_along_axis(scores, labels[:, None], axis=1)
    return np.sum(scores > label_scores, axis=1)


def topk_correct(scores, labels, k: int) -> np.ndarray:
    """Whether each label is among the ``k`` highest scores.

    Args:
      scores: ``[N, K]`` class scores (logits or probabilities).
      labels: ``[N]`` int labels in ``[0, K)``.
      k: int >= 1 (``k >= K`` makes every row correct).

    Returns:
      ``[N]`` bool: ``#{c : scores[n, c] > scores[n, labels[n]]} < k`` (ties favour the label).
    """
    k = _checks.positive_int("k", k)
    scores, labels, _ = _scores_labels(scores, labels, None)
    return _num_greater(scores, labels) < k


def topk_accuracy(scores, labels, ks=(1, 5), mask=None) -> dict[str, float]:
    """Fraction of valid rows whose label is in the top ``k``, for each ``k`` in ``ks``.

    Args:
      scores: ``[N, K]`` class scores.
      labels: ``[N]`` int labels; only valid rows must lie in ``[0, K)`` (padding may hold anything).
      ks: ints >= 1; each ``k`` is clipped to ``K`` (the key keeps the requested ``k``).
      mask: ``[N]`` bool valid rows (e.g. padded eval batches); ``None`` = all rows.

    Returns:
      ``{"top{k}": float}``; ``nan`` when no row is valid.
    """
    ks = tuple(_checks.positive_int("ks", k) for k in ((ks,) if np.isscalar(ks) else ks))
    if not ks:
        raise ValueError("ks: expected at least one int >= 1, got none")
    scores, labels, mask = _scores_labels(scores, labels, mask)
    greater = _num_greater(scores, labels)[mask]
    num_valid = greater.shape[0]
    out = {}
    for k in ks:
        kk = min(k, scores.shape[1])
        out[f"top{k}"] = float(np.sum(greater < kk) / num_valid) if num_valid else float("nan")
    return out


def average_views(logits) -> np.ndarray:
    """Multi-view testing: mean over views of the per-view softmax.

    Args:
      logits: ``[N, V, K]`` finite logits of ``V`` views (clips x crops) per video.

    Returns:
      ``[N, K]`` float64 class probabilities (rows sum to 1).
    """
    logits = _checks.real_array("logits", logits, "[N, V, K]", ndim=3)
    if logits.shape[1] < 1 or logits.shape[2] < 1:
        raise ValueError(f"logits: expected [N, V, K] with V >= 1 and K >= 1, got shape {logits.shape}")
    shifted = logits - logits.max(axis=2, keepdims=True)
    expd = np.exp(shifted)
    probs = expd / expd.sum(axis=2, keepdims=True)
    return probs.mean(axis=1)


def per_class_accuracy(scores, labels, num_classes: int, mask=None) -> dict[str, np.ndarray]:
    """Top-1 accuracy of the valid rows of each true class.

    Args:
      scores: ``[N, C]`` class scores, ``C == num_classes``.
      labels: ``[N]`` int labels in ``[0, C)`` on valid rows.
      num_classes: ``C``.
      mask: ``[N]`` bool valid rows; ``None`` = all rows.

    Returns:
      ``{"count": int64 [C] valid rows per class, "top1": float64 [C]}`` with ``top1 = nan``
      where ``count == 0``. Uses the module's tie rule (ties favour the label).
    """
    num_classes = _checks.positive_int("num_classes", num_classes)
    arr = np.asarray(scores)
    if arr.ndim != 2 or arr.shape[1] != num_classes:
        raise ValueError(f"scores: expected [N, C] with C = num_classes = {num_classes}, got shape {arr.shape}")
    scores, labels, mask = _scores_labels(scores, labels, mask)
    correct = _num_greater(scores, labels) < 1
    count = np.bincount(labels[mask], minlength=num_classes).astype(np.int64)
    hits = np.bincount(labels[mask], weights=correct[mask].astype(np.float64), minlength=num_classes)
    top1 = np.full(num_classes, np.nan)
    np.divide(hits, count, out=top1, where=count > 0)
    return {"count": count, "top1": top1}


def confusion_matrix(predictions, labels, num_classes: int, mask=None) -> np.ndarray:
    """Counts of (true label, predicted class) pairs over the valid rows.

    Args:
      predictions: ``[N]`` int predicted classes in ``[0, C)`` on valid rows.
      labels: ``[N]`` int true labels in ``[0, C)`` on valid rows.
      num_classes: ``C``.
      mask: ``[N]`` bool valid rows; ``None`` = all rows.

    Returns:
      ``[C, C]`` int64, ``out[true, predicted]`` (rows = true label).
    """
    num_classes = _checks.positive_int("num_classes", num_classes)
    predictions = np.asarray(predictions)
    if predictions.ndim != 1:
        raise ValueError(f"predictions: expected [N], got shape {predictions.shape}")
    n = predictions.shape[0]
    predictions = _checks.int_array("predictions", predictions, (n,), "[N]")
    labels = _checks.int_array("labels", labels, (n,), "[N]")
    mask = _checks.bool_mask("mask", mask, n)
    predictions = _checks.labels_in_range("predictions", predictions, mask, num_classes)
    labels = _checks.labels_in_range("labels", labels, mask, num_classes)
    flat = labels[mask] * num_classes + predictions[mask]
    return np.bincount(flat, minlength=num_classes * num_classes).astype(np.int64).reshape(num_classes, num_classes)
