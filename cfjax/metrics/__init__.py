"""Evaluation metrics (pure numpy / jnp; no models)."""

from cfjax.metrics.charades import average_precision, charades_points, frame_map, scores_at_points
from cfjax.metrics.classification import (
    average_views,
    confusion_matrix,
    per_class_accuracy,
    topk_accuracy,
    topk_correct,
)
from cfjax.metrics.localisation import gate_intervals

__all__ = [
    "average_precision",
    "average_views",
    "charades_points",
    "confusion_matrix",
    "frame_map",
    "gate_intervals",
    "per_class_accuracy",
    "scores_at_points",
    "topk_accuracy",
    "topk_correct",
]
