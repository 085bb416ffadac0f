"""Evaluation metrics (pure numpy / jnp; no models).

``frame_map`` is the Charades per-frame mAP; ``detection_frame_map`` the ACT frame-mAP of
spatio-temporal detection. The ACT protocol's numpy IoUs and NMS are ``act_box_iou``,
``act_tube_iou`` and ``act_tube_nms`` (``cfjax.ops`` has the jnp ``box_iou``, ``tube_iou``, ``tube_nms``).
"""

from cfjax.metrics.act_layout import interpolate_tube, tube_act_layout
from cfjax.metrics.charades import average_precision, charades_points, frame_map, scores_at_points
from cfjax.metrics.classification import (
    average_views,
    confusion_matrix,
    per_class_accuracy,
    topk_accuracy,
    topk_correct,
)
from cfjax.metrics.detection import (
    ERROR_CATEGORIES,
    ErrorBreakdown,
    VideoMap,
    act_box_iou,
    act_tube_iou,
    act_tube_nms,
    average_precision_pr,
    detection_frame_map,
    frame_error_breakdown,
    video_mabo,
    video_map,
)
from cfjax.metrics.localisation import gate_intervals

__all__ = [
    "ERROR_CATEGORIES",
    "ErrorBreakdown",
    "VideoMap",
    "act_box_iou",
    "act_tube_iou",
    "act_tube_nms",
    "average_precision",
    "average_precision_pr",
    "average_views",
    "charades_points",
    "confusion_matrix",
    "detection_frame_map",
    "frame_error_breakdown",
    "frame_map",
    "gate_intervals",
    "interpolate_tube",
    "per_class_accuracy",
    "scores_at_points",
    "topk_accuracy",
    "topk_correct",
    "tube_act_layout",
    "video_mabo",
    "video_map",
]
