"""Spatio-temporal action detection metrics: the ACT protocol (UCF101-24, JHMDB-21), numpy only.

The protocol of Kalogeiton et al. (ACT detector, ICCV 2017), re-derived from its description:

- Boxes are ``(x1, y1, x2, y2)`` in *inclusive* pixel coordinates (see ``cfjax.data.boxes``):
  area ``(x2 - x1 + 1) * (y2 - y1 + 1)``, intersection width ``min(x2) - max(x1) + 1``
  clipped at 0 (:func:`act_box_iou`).
- Spatio-temporal tube IoU = temporal IoU (inclusive frame counts) x mean per-frame box IoU
  over the temporally overlapping frames (:func:`act_tube_iou`).
- AP = trapezoidal area under the precision/recall curve that starts at (recall 0,
  precision 1) (:func:`average_precision_pr`).
- frame-mAP (:func:`detection_frame_map`): per class, every detected box of every test frame, ranked
  by descending score, is greedily matched to the best still-unmatched ground-truth box of
  that class in the same video and frame with IoU >= threshold (0.5).
- video-mAP (:func:`video_map`): per test video and class, the detected tubes first pass a
  tube NMS at 0.3 (:func:`act_tube_nms`); then per class all remaining tubes, ranked by
  descending tube score, are greedily matched to the best still-unmatched ground-truth tube
  of that class in the same video with tube IoU >= threshold; thresholds 0.2, 0.5, 0.75 and
  the mean over 0.50:0.05:0.95.

Input layout (ACT's pickles, produced for synthetic data by
``cfjax.data.synthetic.act_ground_truth``):

- ``gt``: ``{"labels": [C names], "gttubes": {video: {label: [tube [n, 5], ...]}}, ...}``;
  ``label`` is a 0-based int index into ``labels``; tube rows are
  ``(frame, x1, y1, x2, y2)`` with **1-based** frame numbers. ``"nframes": {video: int}``
  is optional; when present, detected frames must lie in ``[1, nframes]``.
- ``test_videos``: the ordered list of evaluated video names; ``None`` means
  ``gt["test_videos"][0]`` (ACT stores one split, wrapped in a list).
- frame detections: ``[M, 8]`` rows ``(video_index, frame, label, score, x1, y1, x2, y2)``;
  ``video_index`` is 0-based into ``test_videos``, ``frame`` 1-based (as the ground truth),
  ``label`` 0-based.
- video detections: ``{video: {label: [(tube [L, 6], tube_score), ...]}}``, tube rows
  ``(frame, x1, y1, x2, y2, box_score)`` with 1-based frames; the per-box score is not used.
  Videos missing from the mapping have no detection; videos not in ``test_videos`` are ignored.
  (Unlike frame detections, tube frames are not checked against ``gt["nframes"]``.)

Names: the ``act_`` prefix (:func:`act_box_iou`, :func:`act_tube_iou`, :func:`act_tube_nms`) and
``detection_frame_map`` keep these apart from the jnp ops of :mod:`cfjax.ops` (``box_iou``,
``tube_iou``, ``tube_nms``: other signatures) and from the Charades per-frame mAP
(``cfjax.metrics.frame_map``).

Decisions where the protocol leaves room:

- Ranking is by descending score with a stable sort: tied detections keep their input order
  (for frame detections, row order; for tubes, video order in ``test_videos``, then label,
  then list order).
- Equal IoUs: the first ground truth in ``gttubes`` order (tube order, then row order) wins.
- A class with no ground truth among the test videos has AP ``nan`` (even if it has
  detections) and is left out of the mean; the mean is ``nan`` when no class has ground truth.
- Tube frames must be strictly increasing integers. A frame inside the temporal overlap of two
  tubes that one of them lacks counts as IoU 0 there (for contiguous tubes, ACT's case, this
  is exactly the mean over the overlap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from cfjax.metrics import _checks

__all__ = [
    "ERROR_CATEGORIES",
    "ErrorBreakdown",
    "VideoMap",
    "act_box_iou",
    "act_tube_iou",
    "act_tube_nms",
    "average_precision_pr",
    "detection_frame_map",
    "frame_error_breakdown",
    "video_mabo",
    "video_map",
]

ERROR_CATEGORIES = ("true_positive", "duplicate", "wrong_class", "localisation", "background")
VIDEO_MAP_THRESHOLDS = (0.2, 0.5, 0.75)
THRESHOLDS_50_95 = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))  # 0.50, 0.55, ..., 0.95


# ----------------------------------------------------------------------------------------------
# Input checks (ValueError naming the argument and the expected layout)


def _of_type(name: str, value, kind: type, layout: str):
    """``value`` if it is a ``kind`` (a ``str`` is not a sequence here), else ValueError."""
    if isinstance(value, kind) and not isinstance(value, str):
        return value
    raise ValueError(f"{name}: expected {layout}, got {type(value).__name__}")


def _check_boxes(name: str, boxes: np.ndarray) -> None:
    """``boxes [..., 4]`` must have positive +1 widths and heights."""
    bad = (boxes[..., 2] - boxes[..., 0] + 1 <= 0) | (boxes[..., 3] - boxes[..., 1] + 1 <= 0)
    if bad.any():
        row = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}: expected boxes (x1, y1, x2, y2) with x2 - x1 + 1 > 0 and y2 - y1 + 1 > 0 "
            f"(inclusive pixels), got {boxes[tuple(row)].tolist()} at {tuple(int(i) for i in row)}"
        )


def _tube(name: str, value, width: int) -> np.ndarray:
    """A tube ``[L, width]`` (``L >= 1``), strictly increasing integer frames >= 1, valid boxes."""
    text = "[L, 5] rows (frame, x1, y1, x2, y2)" if width == 5 else "[L, 6] rows (frame, x1, y1, x2, y2, score)"
    arr = _checks.real_array(name, value, text, 2)
    if arr.shape[1] != width or arr.shape[0] < 1:
        raise ValueError(f"{name}: expected {text} with L >= 1, got shape {arr.shape}")
    frames = arr[:, 0]
    if (frames != np.round(frames)).any() or (frames < 1).any():
        raise ValueError(f"{name}: expected integer 1-based frame numbers in column 0, got {frames[:5].tolist()}...")
    if (np.diff(frames) <= 0).any():
        raise ValueError(f"{name}: expected strictly increasing frame numbers in column 0")
    _check_boxes(name, arr[:, 1:5])
    return arr[:, :5]


def _ground_truth(gt, test_videos) -> tuple[int, list[str], list[dict[int, list[np.ndarray]]]]:
    """``(num_classes, test_videos, [per test video {label: [tube [n, 5] float64]}])``."""
    if not isinstance(gt, Mapping) or "labels" not in gt or "gttubes" not in gt:
        raise ValueError(
            "gt: expected a mapping with 'labels' (list of class names) and 'gttubes' "
            "({video: {label: [tube [n, 5]]}}), the layout of cfjax.data.synthetic.act_ground_truth"
        )
    num_classes = len(gt["labels"])
    if num_classes < 1:
        raise ValueError("gt['labels']: expected at least one class name")
    if test_videos is None:
        try:
            test_videos = gt["test_videos"][0]
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError("test_videos: None needs gt['test_videos'] = [list of video names]") from e
    test_videos = list(_of_type("test_videos", test_videos, Sequence, "a sequence of video names"))
    if len(set(test_videos)) != len(test_videos):
        raise ValueError("test_videos: expected distinct video names")
    gttubes = _of_type("gt['gttubes']", gt["gttubes"], Mapping, "{video: {label: [tube [n, 5]]}}")
    per_video = []
    for video in test_videos:
        if video not in gttubes:
            raise ValueError(f"gt['gttubes']: test video {video!r} is missing")
        labelled = _of_type(f"gt['gttubes'][{video!r}]", gttubes[video], Mapping, "{label: [tube [n, 5]]}")
        tubes: dict[int, list[np.ndarray]] = {}
        for label, label_tubes in labelled.items():
            label_int = _label(f"gt['gttubes'][{video!r}] key", label, num_classes)
            tubes[label_int] = [
                _tube(f"gt['gttubes'][{video!r}][{label!r}][{i}]", t, 5) for i, t in enumerate(label_tubes)
            ]
        per_video.append(tubes)
    return num_classes, test_videos, per_video


def _label(name: str, label, num_classes: int) -> int:
    is_int = isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_))
    if not is_int or not 0 <= label < num_classes:
        raise ValueError(f"{name}: expected an int class label in [0, {num_classes}), got {label!r}")
    return int(label)


def _nframes(gt, test_videos: list[str]) -> np.ndarray | None:
    nframes = gt.get("nframes") if isinstance(gt, Mapping) else None
    if nframes is None:
        return None
    try:
        return np.array([int(nframes[v]) for v in test_videos], np.int64)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError("gt['nframes']: expected {video: int} covering every test video") from e


def _frame_detections(value, num_videos: int, num_classes: int, nframes: np.ndarray | None) -> np.ndarray:
    text = "[M, 8] rows (video_index, frame, label, score, x1, y1, x2, y2)"
    if isinstance(value, (list, tuple, np.ndarray)) and np.size(value) == 0:
        return np.zeros((0, 8))
    dets = _checks.real_array("frame_detections", value, text, 2)
    if dets.shape[1] != 8:
        raise ValueError(f"frame_detections: expected {text}, got shape {dets.shape}")
    for col, what, hi in (
        (0, "video_index (0-based into test_videos)", num_videos),
        (2, "label (0-based)", num_classes),
    ):
        v = dets[:, col]
        bad = (v != np.round(v)) | (v < 0) | (v >= hi)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"frame_detections: column {col} {what} must be an int in [0, {hi}), got {v[i]} at row {i}"
            )
    frames = dets[:, 1]
    bad = (frames != np.round(frames)) | (frames < 1)
    if nframes is not None and len(dets):
        bad |= frames > nframes[dets[:, 0].astype(np.int64)]
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        limit = " <= gt['nframes'] of its video" if nframes is not None else ""
        raise ValueError(f"frame_detections: column 1 frame must be a 1-based int{limit}, got {frames[i]} at row {i}")
    _check_boxes("frame_detections[:, 4:8]", dets[:, 4:8])
    return dets


def _video_detections(value, test_videos: list[str], num_classes: int) -> list[list[tuple[int, np.ndarray, float]]]:
    """Per test video, a list of ``(label, tube [L, 5], score)`` in label then list order."""
    layout = "{label: [(tube [L, 6], tube_score), ...]}"
    value = _of_type("video_detections", value, Mapping, "{video: " + layout + "}")
    out = []
    for video in test_videos:
        per_label = _of_type(f"video_detections[{video!r}]", value.get(video, {}), Mapping, layout)
        dets = []
        for label in sorted(per_label, key=lambda k: (not isinstance(k, (int, np.integer)), k)):
            label_int = _label(f"video_detections[{video!r}] key", label, num_classes)
            for i, item in enumerate(per_label[label]):
                name = f"video_detections[{video!r}][{label!r}][{i}]"
                if not isinstance(item, Sequence) or len(item) != 2:
                    raise ValueError(f"{name}: expected a pair (tube [L, 6], tube_score)")
                tube = _tube(name + "[0]", item[0], 6)
                score = _checks.real_array(name + "[1]", item[1], "a real scalar tube score", 0)
                dets.append((label_int, tube, float(score)))
        out.append(dets)
    return out


def _threshold(name: str, value, low_open: bool = False) -> float:
    is_real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not is_real or not 0 <= value <= 1 or (low_open and value == 0):
        raise ValueError(f"{name}: expected a float in {'(0' if low_open else '[0'}, 1], got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------------
# Geometry


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise (broadcasting) IoU of boxes ``[..., 4]``, +1 convention."""
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1, 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1, 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    return inter / (area_a + area_b - inter)


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _iou(a[:, None, :], b[None, :, :])


def act_box_iou(boxes_a, boxes_b) -> np.ndarray:
    """Pairwise IoU of inclusive-pixel boxes (the +1 convention).

    ``area = (x2 - x1 + 1) * (y2 - y1 + 1)``; intersection width
    ``max(0, min(x2a, x2b) - max(x1a, x1b) + 1)`` (same for height).

    Args:
      boxes_a: ``[N, 4]`` ``(x1, y1, x2, y2)``.
      boxes_b: ``[K, 4]``.

    Returns:
      ``[N, K]`` float64 IoU in ``[0, 1]``.
    """
    a = _checks.real_array("boxes_a", boxes_a, "[N, 4] (x1, y1, x2, y2)", 2)
    b = _checks.real_array("boxes_b", boxes_b, "[K, 4] (x1, y1, x2, y2)", 2)
    for name, arr in (("boxes_a", a), ("boxes_b", b)):
        if arr.shape[1] != 4:
            raise ValueError(f"{name}: expected [*, 4] (x1, y1, x2, y2), got shape {arr.shape}")
        _check_boxes(name, arr)
    return _box_iou(a, b)


def _tube_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Tube IoU of checked tubes ``[L, 5]`` (frames strictly increasing)."""
    t_inter = min(a[-1, 0], b[-1, 0]) - max(a[0, 0], b[0, 0]) + 1
    if t_inter <= 0:
        return 0.0
    t_union = max(a[-1, 0], b[-1, 0]) - min(a[0, 0], b[0, 0]) + 1
    _, ia, ib = np.intersect1d(a[:, 0], b[:, 0], assume_unique=True, return_indices=True)
    if len(ia) == 0:
        return 0.0
    per_frame = _iou(a[ia, 1:5], b[ib, 1:5])
    # temporal IoU * mean over the t_inter overlapping frames = (t_inter / t_union) * (sum / t_inter)
    return float(per_frame.sum() / t_union)


def act_tube_iou(tube_a, tube_b) -> float:
    """Spatio-temporal IoU of two tubes (ACT's ``iou3dt``).

    ``temporal IoU x mean per-frame box IoU over the overlap``, where the overlap is the
    frames ``max(first) .. min(last)`` (inclusive counts: ``t_inter = min(last) - max(first) + 1``,
    ``t_union = max(last) - min(first) + 1``). Equals ``sum of per-frame IoUs / t_union``.
    A frame of the overlap missing from one tube contributes IoU 0.

    Args:
      tube_a: ``[L, >=5]`` rows ``(frame, x1, y1, x2, y2, ...)``; strictly increasing integer
        frames; extra columns (a box score) are ignored.
      tube_b: ``[L', >=5]``, same layout.

    Returns:
      IoU in ``[0, 1]``; 0 when the tubes do not overlap in time.
    """
    tubes = []
    for name, value in (("tube_a", tube_a), ("tube_b", tube_b)):
        arr = _checks.real_array(name, value, "[L, >=5] rows (frame, x1, y1, x2, y2, ...)", 2)
        if arr.shape[1] < 5:
            raise ValueError(f"{name}: expected [L, >=5] rows (frame, x1, y1, x2, y2, ...), got shape {arr.shape}")
        tubes.append(_tube(name, arr[:, :5], 5))
    return _tube_iou(*tubes)


def _nms(tubes: Sequence[np.ndarray], scores: np.ndarray, threshold: float) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    keep = []
    alive = np.ones(len(order), bool)
    for i, idx in enumerate(order):
        if not alive[i]:
            continue
        keep.append(idx)
        for j in range(i + 1, len(order)):
            if alive[j] and _tube_iou(tubes[idx], tubes[order[j]]) > threshold:
                alive[j] = False
    return np.asarray(keep, np.int64)


def act_tube_nms(tubes, scores, threshold: float = 0.3) -> np.ndarray:
    """Greedy tube non-maximum suppression (ACT's ``nms3dt``).

    Repeatedly keeps the highest-scoring remaining tube and drops every remaining tube whose
    :func:`act_tube_iou` with it is ``> threshold``. Ties in score keep input order.

    Args:
      tubes: sequence of ``N`` tubes ``[L_i, >=5]`` rows ``(frame, x1, y1, x2, y2, ...)``.
      scores: ``[N]`` tube scores.
      threshold: IoU above which a lower-scored tube is suppressed (ACT: 0.3).

    Returns:
      ``[K]`` int64 indices into ``tubes`` of the kept tubes, by descending score.
    """
    scores = _checks.real_array("scores", scores, "[N] tube scores", 1)
    if len(tubes) != len(scores):
        raise ValueError(f"scores: expected [N] = ({len(tubes)},) (one per tube), got shape {scores.shape}")
    threshold = _threshold("threshold", threshold)
    checked = []
    for i, t in enumerate(tubes):
        arr = _checks.real_array(f"tubes[{i}]", t, "[L, >=5] rows (frame, x1, y1, x2, y2, ...)", 2)
        if arr.shape[1] < 5:
            raise ValueError(f"tubes[{i}]: expected [L, >=5] rows (frame, x1, y1, x2, y2, ...), got shape {arr.shape}")
        checked.append(_tube(f"tubes[{i}]", arr[:, :5], 5))
    return _nms(checked, scores, threshold)


# ----------------------------------------------------------------------------------------------
# Average precision


def _ap(tp: np.ndarray, num_positives: int) -> float:
    if num_positives == 0:
        return float("nan")
    tp_cum = np.cumsum(tp)
    precision = np.concatenate([[1.0], tp_cum / np.arange(1, len(tp) + 1)])
    recall = np.concatenate([[0.0], tp_cum / num_positives])
    return float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2))


def average_precision_pr(tp_flags, num_positives: int) -> float:
    """AP as the trapezoidal area under the precision/recall curve (ACT's ``pr_to_ap``).

    The curve has one point per detection, ``(recall_i, precision_i) = (TP_i / P, TP_i / i)``
    after the ``i``-th detection, preceded by ``(0, 1)``; AP =
    ``sum_i (recall_i - recall_{i-1}) * (precision_i + precision_{i-1}) / 2``. Only true
    positives move recall, so each contributes ``(1 / P) * (precision_i + precision_{i-1}) / 2``
    and false positives ranked below the last true positive change nothing.

    Args:
      tp_flags: ``[D]`` bool or 0/1, detections already sorted by descending score; 1 marks a
        true positive.
      num_positives: ``P``, the number of ground-truth instances (``>= sum(tp_flags)``).

    Returns:
      AP in ``[0, 1]``; 0 with no detection; ``nan`` when ``num_positives == 0``.
    """
    tp = np.asarray(tp_flags)
    if tp.ndim != 1:
        raise ValueError(f"tp_flags: expected [D] bool or 0/1 in score order, got shape {tp.shape}")
    if tp.dtype != bool:
        numeric = np.issubdtype(tp.dtype, np.integer) or np.issubdtype(tp.dtype, np.floating)
        if tp.size and (not numeric or not np.isin(tp, (0, 1)).all()):
            raise ValueError(f"tp_flags: expected bool or 0/1 values, got dtype {tp.dtype}")
    tp = tp.astype(bool)
    is_int = isinstance(num_positives, (int, np.integer)) and not isinstance(num_positives, (bool, np.bool_))
    if not is_int or num_positives < tp.sum():
        raise ValueError(
            f"num_positives: expected an int >= the number of true positives ({int(tp.sum())}), got {num_positives!r}"
        )
    return _ap(tp, int(num_positives))


def _mean_ap(ap: np.ndarray) -> float:
    present = ~np.isnan(ap)
    return float(ap[present].mean()) if present.any() else float("nan")


# ----------------------------------------------------------------------------------------------
# Frame level


def _frame_gt(
    per_video: list[dict[int, list[np.ndarray]]], num_classes: int
) -> list[dict[tuple[int, int], np.ndarray]]:
    """Per class, ``{(video_index, frame): boxes [k, 4]}`` in gttubes order."""
    lists: list[dict[tuple[int, int], list[np.ndarray]]] = [{} for _ in range(num_classes)]
    for iv, tubes in enumerate(per_video):
        for label, label_tubes in tubes.items():
            for tube in label_tubes:
                for row in tube:
                    lists[label].setdefault((iv, int(row[0])), []).append(row[1:5])
    return [{k: np.stack(v) for k, v in d.items()} for d in lists]


def _frame_match(gt_c: dict, dets_c: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one class: ``(order, tp)``, the rows by descending score (stable)
    and, in that order, whether each row matched a ground-truth box."""
    order = np.argsort(-dets_c[:, 3], kind="stable")
    matched = {k: np.zeros(len(v), bool) for k, v in gt_c.items()}
    tp = np.zeros(len(order), bool)
    for r, idx in enumerate(order):
        key = (int(dets_c[idx, 0]), int(dets_c[idx, 1]))
        if key not in gt_c:
            continue
        free = np.where(matched[key], -np.inf, _box_iou(dets_c[idx, None, 4:8], gt_c[key])[0])
        best = int(np.argmax(free))
        if free[best] >= threshold:
            matched[key][best] = True
            tp[r] = True
    return order, tp


def detection_frame_map(gt, frame_detections, test_videos=None, iou_threshold: float = 0.5) -> tuple[float, np.ndarray]:
    """Frame-mAP of the ACT protocol.

    Per class ``c``: the detections of class ``c`` are ranked by descending score (stable);
    each is a true positive iff, among the ground-truth boxes of class ``c`` in the same
    video and frame that no higher-ranked detection has matched, the one of highest IoU
    (:func:`act_box_iou`) has IoU ``>= iou_threshold``; it is then matched. AP =
    :func:`average_precision_pr` with ``P`` = the number of ground-truth boxes of class
    ``c`` in the test videos (every row of every tube is one box).

    Args:
      gt: ACT ground truth (module docstring).
      frame_detections: ``[M, 8]`` rows ``(video_index, frame, label, score, x1, y1, x2, y2)``;
        ``video_index`` 0-based into ``test_videos``, ``frame`` 1-based, ``label`` 0-based.
      test_videos: ordered test video names; ``None``: ``gt["test_videos"][0]``.
      iou_threshold: match threshold (0.5).

    Returns:
      ``(mAP, ap)``: ``ap`` ``[C]`` float64, ``nan`` for classes with no ground-truth box;
      ``mAP`` the mean over the other classes (``nan`` if none).
    """
    num_classes, test_videos, per_video = _ground_truth(gt, test_videos)
    dets = _frame_detections(frame_detections, len(test_videos), num_classes, _nframes(gt, test_videos))
    threshold = _threshold("iou_threshold", iou_threshold, low_open=True)
    gt_frames = _frame_gt(per_video, num_classes)
    ap = np.full(num_classes, np.nan)
    labels = dets[:, 2].astype(np.int64)
    for c in range(num_classes):
        num_pos = sum(len(v) for v in gt_frames[c].values())
        _, tp = _frame_match(gt_frames[c], dets[labels == c], threshold)
        ap[c] = _ap(tp, num_pos)
    return _mean_ap(ap), ap


class ErrorBreakdown(NamedTuple):
    """Frame-level error breakdown (see :func:`frame_error_breakdown`).

    Attributes:
      categories: the names of the columns, :data:`ERROR_CATEGORIES`.
      counts: ``[C, 5]`` int64 detections of each class per category.
      fractions: ``[C, 5]`` ``counts / detections of the class`` (``nan`` rows for classes
        without detections).
      total_counts: ``[5]`` int64 over all classes.
      total_fractions: ``[5]`` over all detections (``nan`` when there is none).
      missed: ``[C]`` int64 ground-truth boxes no detection matched (false negatives).
    """

    categories: tuple[str, ...]
    counts: np.ndarray
    fractions: np.ndarray
    total_counts: np.ndarray
    total_fractions: np.ndarray
    missed: np.ndarray


def _best_overlaps(gt_frames: list[dict], dets: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per detection, the highest IoU with a ground-truth box in its video and frame of its own
    class and of any other class (-1 where there is none)."""
    keys, gt_labels, gt_boxes = [], [], []
    for c, frames in enumerate(gt_frames):
        for (iv, f), boxes in frames.items():
            keys.extend([(iv, f)] * len(boxes))
            gt_labels.extend([c] * len(boxes))
            gt_boxes.append(boxes)
    best_same, best_other = np.full(len(dets), -1.0), np.full(len(dets), -1.0)
    if not keys or not len(dets):
        return best_same, best_other
    span = int(max(max(f for _, f in keys), dets[:, 1].max())) + 1
    gt_code = np.array([iv * span + f for iv, f in keys], np.int64)
    det_code = dets[:, 0].astype(np.int64) * span + dets[:, 1].astype(np.int64)
    by_code = np.argsort(gt_code, kind="stable")
    gt_code, gt_labels, gt_boxes = gt_code[by_code], np.asarray(gt_labels)[by_code], np.concatenate(gt_boxes)[by_code]
    start = np.searchsorted(gt_code, det_code, "left")
    n = np.searchsorted(gt_code, det_code, "right") - start
    d = np.repeat(np.arange(len(dets)), n)  # every (detection, GT box in its frame) pair
    g = np.repeat(start - np.cumsum(n) + n, n) + np.arange(n.sum())
    iou = _iou(dets[d, 4:8], gt_boxes[g])
    same = gt_labels[g] == labels[d]
    np.maximum.at(best_same, d[same], iou[same])
    np.maximum.at(best_other, d[~same], iou[~same])
    return best_same, best_other


def frame_error_breakdown(
    gt,
    frame_detections,
    test_videos=None,
    iou_threshold: float = 0.5,
    localisation_threshold: float = 0.1,
) -> ErrorBreakdown:
    """Classifies every frame detection as a hit or one kind of error (CFAD Fig. 5, ACT style).

    Per class, detections are processed in the order and with the matching state of
    :func:`detection_frame_map` (so ``true_positive`` counts equal the frame-mAP true positives). With
    ``IoU`` taken against ground-truth boxes in the detection's video and frame, the first
    rule that applies names the category:

    1. ``true_positive``: matched (best unmatched same-class box, ``IoU >= iou_threshold``).
    2. ``duplicate``: a same-class box with ``IoU >= iou_threshold`` exists, but each such box
       was already matched by a higher-scored detection.
    3. ``wrong_class``: a box of another class has ``IoU >= iou_threshold``.
    4. ``localisation``: a same-class box has ``localisation_threshold <= IoU < iou_threshold``.
    5. ``background``: everything else (no same-class box with ``IoU >= localisation_threshold``,
       no other-class box with ``IoU >= iou_threshold``; includes frames without ground truth,
       so a box in the right video but outside the ground truth's time span, which ACT's
       analysis calls a time error, is counted here).

    Fractions are over the detections as given (all of them, not a top-k per class).

    Args:
      gt, frame_detections, test_videos, iou_threshold: as for :func:`detection_frame_map`.
      localisation_threshold: lower IoU bound of a localisation error (0.1), ``<= iou_threshold``.

    Returns:
      :class:`ErrorBreakdown`.
    """
    num_classes, test_videos, per_video = _ground_truth(gt, test_videos)
    dets = _frame_detections(frame_detections, len(test_videos), num_classes, _nframes(gt, test_videos))
    threshold = _threshold("iou_threshold", iou_threshold, low_open=True)
    loc = _threshold("localisation_threshold", localisation_threshold)
    if loc > threshold:
        raise ValueError(f"localisation_threshold: expected <= iou_threshold {threshold}, got {loc}")
    gt_frames = _frame_gt(per_video, num_classes)
    labels = dets[:, 2].astype(np.int64)
    num_gt = np.array([sum(len(v) for v in gt_frames[c].values()) for c in range(num_classes)], np.int64)
    hit = np.zeros(len(dets), bool)
    for c in range(num_classes):
        rows = np.flatnonzero(labels == c)
        order, tp = _frame_match(gt_frames[c], dets[rows], threshold)
        hit[rows[order]] = tp
    best_same, best_other = _best_overlaps(gt_frames, dets, labels)
    category = np.select(
        [hit, best_same >= threshold, best_other >= threshold, best_same >= loc],
        [0, 1, 2, 3],
        default=4,
    )  # not a hit but a same-class box at >= threshold: every such box was already matched
    counts = np.zeros((num_classes, len(ERROR_CATEGORIES)), np.int64)
    np.add.at(counts, (labels, category), 1)
    missed = num_gt - counts[:, 0]
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.full(counts.shape, np.nan)
    np.divide(counts, totals, out=fractions, where=totals > 0)
    total_counts = counts.sum(axis=0)
    n = total_counts.sum()
    total_fractions = total_counts / n if n else np.full(len(ERROR_CATEGORIES), np.nan)
    return ErrorBreakdown(ERROR_CATEGORIES, counts, fractions, total_counts, total_fractions, missed)


# ----------------------------------------------------------------------------------------------
# Video level


class VideoMap(NamedTuple):
    """Video-mAP results (see :func:`video_map`).

    Attributes:
      thresholds: ``[K]`` the requested tube-IoU thresholds.
      mean_ap: ``[K]`` v-mAP at each threshold (``nan`` if no class has ground truth).
      ap: ``[K, C]`` per-class AP (``nan`` for classes without ground-truth tubes).
      mean_ap_50_95: v-mAP averaged over the thresholds 0.50, 0.55, ..., 0.95.
      ap_50_95: ``[C]`` per-class AP averaged over those ten thresholds.
    """

    thresholds: np.ndarray
    mean_ap: np.ndarray
    ap: np.ndarray
    mean_ap_50_95: float
    ap_50_95: np.ndarray


def _nms_per_video(dets: list[list[tuple[int, np.ndarray, float]]], nms_threshold: float | None):
    if nms_threshold is None:
        return dets
    out = []
    for video_dets in dets:
        kept = []
        for label in sorted({d[0] for d in video_dets}):
            group = [d for d in video_dets if d[0] == label]
            keep = _nms([d[1] for d in group], np.array([d[2] for d in group]), nms_threshold)
            kept.extend(group[i] for i in np.sort(keep))  # keep input order; ranking happens later
        out.append(kept)
    return out


def video_map(
    gt,
    video_detections,
    test_videos=None,
    iou_thresholds: Sequence[float] = VIDEO_MAP_THRESHOLDS,
    nms_threshold: float | None = 0.3,
) -> VideoMap:
    """Video-mAP of the ACT protocol.

    Per test video and class, the detected tubes first pass :func:`act_tube_nms` at
    ``nms_threshold`` (0.3; ``None`` skips it). Then per class ``c``, all remaining tubes of
    class ``c`` over the test videos are ranked by descending tube score (stable: video order,
    then list order); each is a true positive iff, among the ground-truth tubes of class ``c``
    in its video that no higher-ranked tube has matched, the one of highest :func:`act_tube_iou`
    has tube IoU ``>= threshold``; it is then matched. AP = :func:`average_precision_pr` with
    ``P`` = the number of ground-truth tubes of class ``c`` in the test videos.

    Args:
      gt: ACT ground truth (module docstring).
      video_detections: ``{video: {label: [(tube [L, 6], tube_score), ...]}}``; tube rows
        ``(frame, x1, y1, x2, y2, box_score)``, frames 1-based, labels 0-based.
      test_videos: ordered test video names; ``None``: ``gt["test_videos"][0]``.
      iou_thresholds: tube-IoU thresholds reported one by one (0.2, 0.5, 0.75).
      nms_threshold: per-video, per-class tube NMS threshold.

    Returns:
      :class:`VideoMap` (per-threshold mAP and per-class AP, plus the 0.50:0.05:0.95 mean).
    """
    num_classes, test_videos, per_video = _ground_truth(gt, test_videos)
    dets = _video_detections(video_detections, test_videos, num_classes)
    thresholds = np.asarray(
        [_threshold(f"iou_thresholds[{i}]", t, low_open=True) for i, t in enumerate(iou_thresholds)], np.float64
    )
    if nms_threshold is not None:
        nms_threshold = _threshold("nms_threshold", nms_threshold)
    dets = _nms_per_video(dets, nms_threshold)
    all_thresholds = np.concatenate([thresholds, THRESHOLDS_50_95])
    ap = np.full((len(all_thresholds), num_classes), np.nan)
    for c in range(num_classes):
        num_pos = sum(len(tubes.get(c, [])) for tubes in per_video)
        ranked = [
            (iv, tube, score) for iv, video_dets in enumerate(dets) for lab, tube, score in video_dets if lab == c
        ]
        order = np.argsort(-np.array([r[2] for r in ranked], np.float64), kind="stable")
        # IoUs with the same-class GT tubes of the detection's video, computed once for all thresholds.
        ious = [np.array([_tube_iou(ranked[i][1], g) for g in per_video[ranked[i][0]].get(c, [])]) for i in order]
        for k, thr in enumerate(all_thresholds):
            matched = [np.zeros(len(tubes.get(c, [])), bool) for tubes in per_video]
            tp = np.zeros(len(order), bool)
            for r, i in enumerate(order):
                iv, iou = ranked[i][0], ious[r]
                if len(iou) == 0:
                    continue
                free = np.where(matched[iv], -np.inf, iou)
                best = int(np.argmax(free))
                if free[best] >= thr:
                    matched[iv][best] = True
                    tp[r] = True
            ap[k, c] = _ap(tp, num_pos)
    k = len(thresholds)
    ap_50_95 = ap[k:].mean(axis=0)  # nan exactly for classes without GT tubes
    mean_ap = np.array([_mean_ap(row) for row in ap[:k]])
    return VideoMap(thresholds, mean_ap, ap[:k], _mean_ap(ap_50_95), ap_50_95)


def video_mabo(gt, video_detections, test_videos=None, nms_threshold: float | None = None) -> tuple[float, np.ndarray]:
    """Video mean average best overlap (v-MABO).

    For every ground-truth tube of class ``c``: the best :func:`act_tube_iou` with any detected
    tube of class ``c`` in the same video (0 if there is none). Per class, the average over
    its ground-truth tubes (ABO); v-MABO is the mean of ABO over classes with ground truth.
    Detections are used as given (no NMS, which could only lower the best overlaps) unless
    ``nms_threshold`` is set. Scores play no part.

    Args:
      gt, video_detections, test_videos: as for :func:`video_map`.
      nms_threshold: optional per-video, per-class tube NMS first (``None``: none).

    Returns:
      ``(mabo, abo)``: ``abo`` ``[C]`` float64, ``nan`` for classes without ground-truth
      tubes; ``mabo`` the mean over the other classes (``nan`` if none).
    """
    num_classes, test_videos, per_video = _ground_truth(gt, test_videos)
    dets = _video_detections(video_detections, test_videos, num_classes)
    if nms_threshold is not None:
        nms_threshold = _threshold("nms_threshold", nms_threshold)
    dets = _nms_per_video(dets, nms_threshold)
    best: list[list[float]] = [[] for _ in range(num_classes)]
    for tubes, video_dets in zip(per_video, dets):
        for c, gt_tubes in tubes.items():
            cands = [tube for lab, tube, _ in video_dets if lab == c]
            for g in gt_tubes:
                best[c].append(max((_tube_iou(g, d) for d in cands), default=0.0))
    abo = np.array([np.mean(b) if b else np.nan for b in best], np.float64)
    return _mean_ap(abo), abo
