"""The tubes task's evaluation outputs in the ACT layouts of :mod:`cfjax.metrics.detection` (numpy).

Whole-video protocol: the detected tubes, boxes at the sampled frames of a video, are interpolated
linearly to every frame between their first and last sampled frame (:func:`interpolate_tube`) and
laid out, with every annotated frame of the video's ground truth, as ACT's ground truth, video
detections and frame detections (:func:`tube_act_layout`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["interpolate_tube", "tube_act_layout"]


def _clean_boxes(boxes) -> np.ndarray:
    """Finite boxes with ``x2 >= x1``, ``y2 >= y1`` (an untrained model may emit anything)."""
    boxes = np.nan_to_num(np.asarray(boxes, np.float64), nan=0.0, posinf=1e6, neginf=-1e6)
    boxes[..., 2] = np.maximum(boxes[..., 2], boxes[..., 0])
    boxes[..., 3] = np.maximum(boxes[..., 3], boxes[..., 1])
    return boxes


def interpolate_tube(frames, boxes) -> tuple[np.ndarray, np.ndarray]:
    """Boxes at sampled frame numbers -> a box on every frame from the first to the last.

    Between sampled frames each coordinate is interpolated linearly; the boxes of a frame
    sampled more than once (a video shorter than ``T``) are averaged first.

    Args:
      frames: ``[n]`` integer frame numbers (any order, repeats allowed); boxes: ``[n, 4]``.

    Returns:
      ``(frames [L], boxes [L, 4])`` with ``frames = first, first + 1, ..., last``.
    """
    frames = np.asarray(frames, np.int64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if frames.shape != boxes.shape[:1] or not len(frames):
        raise ValueError(f"frames, boxes: expected [n] and [n, 4] with n >= 1, got {frames.shape} and {boxes.shape}")
    unique, inverse = np.unique(frames, return_inverse=True)
    sums = np.zeros((len(unique), 4))
    np.add.at(sums, inverse, boxes)
    mean = sums / np.bincount(inverse)[:, None]
    every = np.arange(unique[0], unique[-1] + 1)
    return every, np.stack([np.interp(every, unique, mean[:, j]) for j in range(4)], axis=1)


def tube_act_layout(results: dict, class_names, prefix: str = "") -> tuple[dict, dict, np.ndarray]:
    """Concatenated :meth:`cfjax.train.tasks.TubeDetectionTask.eval_outputs` -> the ACT layouts of
    :mod:`cfjax.metrics.detection`.

    Whole-video protocol: video ``v`` is named ``video_{index:06d}`` (its source index) and
    has ``num_video_frames`` frames numbered from 1. Its ground truth is every annotated frame
    (``video_gt_*``). A detected tube has boxes at the sampled steps (``frame_indices``);
    they are placed at frame ``frame_index + 1`` and interpolated linearly
    (:func:`interpolate_tube`), so the tube covers every frame from its first to its last
    sampled frame. Boxes are in the pixels of the evaluated (resized, cropped) frames.

    Args:
      results: ``video_gt_*``, ``num_video_frames``, ``frame_indices``, ``frame_mask``,
        ``index`` and ``{prefix}det_{boxes, frame_valid, labels, scores, valid}`` stacked
        over videos.
      prefix: ``""`` for the refined detections, ``"coarse_"`` for the coarse ones.

    Returns:
      ``(gt, video_detections, frame_detections [M, 8])``; ``gt`` has ``nframes``.
    """
    n = len(results["frame_mask"])
    index = results["index"] if "index" in results else np.arange(n)
    names = [f"video_{int(i):06d}" for i in index]
    gttubes, nframes, video_dets, frame_rows = {}, {}, {}, []
    for v, name in enumerate(names):
        nframes[name] = int(results["num_video_frames"][v])
        per_label: dict[int, list] = {}
        for g in range(results["video_gt_valid"].shape[1]):
            ok = np.asarray(results["video_gt_valid"][v, g], bool)
            if results["video_gt_tube_valid"][v, g] and ok.any():
                rows = np.concatenate([np.flatnonzero(ok)[:, None] + 1.0, results["video_gt_boxes"][v, g][ok]], axis=1)
                per_label.setdefault(int(results["video_gt_labels"][v, g]), []).append(rows)
        gttubes[name] = per_label
        frames = np.asarray(results["frame_indices"][v], np.int64) + 1
        mask = np.asarray(results["frame_mask"][v], bool)
        dets: dict[int, list] = {}
        for m in range(results[prefix + "det_valid"].shape[1]):
            label = int(results[prefix + "det_labels"][v, m])
            ok = np.asarray(results[prefix + "det_frame_valid"][v, m], bool) & mask
            if not results[prefix + "det_valid"][v, m] or label < 0 or not ok.any():
                continue
            score = float(np.nan_to_num(results[prefix + "det_scores"][v, m]))
            tube_frames, boxes = interpolate_tube(frames[ok], _clean_boxes(results[prefix + "det_boxes"][v, m][ok]))
            count = len(boxes)
            tube = np.concatenate([tube_frames[:, None], boxes, np.full((count, 1), score)], axis=1)
            dets.setdefault(label, []).append((tube, score))
            meta = np.tile(np.array([[v, 0, label, score]], np.float64), (count, 1))
            meta[:, 1] = tube_frames
            frame_rows.append(np.concatenate([meta, boxes], axis=1))
        video_dets[name] = dets
    gt = {"labels": list(class_names), "gttubes": gttubes, "nframes": nframes, "test_videos": [names]}
    frame_dets = np.concatenate(frame_rows) if frame_rows else np.zeros((0, 8))
    return gt, video_dets, frame_dets
