"""Evaluation metrics (pure numpy / jnp; no models)."""

from cfjax.metrics.classification import (
    average_views,
    confusion_matrix,
    per_class_accuracy,
    topk_accuracy,
    topk_correct,
)
from cfjax.metrics.localisation import gate_intervals

__all__ = [
    "average_views",
    "confusion_matrix",
    "gate_intervals",
    "per_class_accuracy",
    "topk_accuracy",
    "topk_correct",
]
