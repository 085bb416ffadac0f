"""Per-frame multi-label detection (``config.task = "frame_detection"``): Coarse-Fine Networks,
Charades per-frame mAP at 25 time points."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from cfjax import metrics as metrics_lib
from cfjax.data.sampling import resample_frame_labels
from cfjax.data.transform import VideoTransform
from cfjax.train import losses
from cfjax.train.tasks.base import Task, _per_class_table, _require, video_transform

__all__ = ["FrameDetectionTask", "WithTimePoints", "grid_density"]


@dataclasses.dataclass(frozen=True)
class WithTimePoints:
    """Wraps an eval transform: adds the video's 25 Charades time points before sampling.

    Adds ``point_frames [P]`` int64 (source frame of ``t_j = (j - 1) * len / P``) and
    ``point_labels [P, C]`` (the whole video's ``frame_labels`` there).
    """

    base: VideoTransform
    num_points: int = 25

    def __call__(self, example, rng):
        num_frames = int(np.shape(example["frames"])[0])
        points = metrics_lib.charades_points(num_frames, self.num_points)
        labels = resample_frame_labels(example["frame_labels"], points, num_frames)
        out = self.base(example, rng)
        out["point_frames"] = points.astype(np.int64)
        out["point_labels"] = np.asarray(labels, np.uint8)
        return out


@dataclasses.dataclass(frozen=True)
class FrameDetectionTask(Task):
    """Per-frame multi-label detection (Coarse-Fine Networks; Charades per-frame mAP).

    Batch: coarse ``frames [B, T, H, W, 3]``, ``frame_mask``, ``frame_labels [B, T, C]``,
    ``fine_frames [B, Lf, ...]``, ``fine_mask``, ``fine_offset``. Evaluation reads the
    clip's per-step scores at the video's 25 time points (nearest clip step) and also
    measures how much denser the learned Grid Pool samples inside action segments.

    ``coarse_span``: the coarse clip's length in fine steps (``input.clip_length * input.stride
    / input.fine_stride``); ``empty_classes``: the Charades mAP rule for a class without
    positives (``eval_protocol.empty_classes``).
    """

    name = "frame_detection"
    best_metric = "frame_map"
    coarse_span: float | None = None
    empty_classes: str = "zero"

    @classmethod
    def from_config(cls, config) -> FrameDetectionTask:
        span = config.input.clip_length * config.input.stride / config.input.fine_stride
        rule = config.get("eval_protocol", {}).get("empty_classes", "zero")
        if rule not in metrics_lib.charades.EMPTY_CLASSES:
            raise ValueError(
                f"eval_protocol.empty_classes: expected one of {metrics_lib.charades.EMPTY_CLASSES}, got {rule!r}"
            )
        return cls(coarse_span=span, empty_classes=rule)

    def transform(self, config, train):
        base = video_transform(config, train)
        return base if train else WithTimePoints(base)

    def inputs(self, model, batch):
        _require(batch, ("frames", "fine_frames", "fine_mask", "fine_offset"), self.name)
        kwargs = {"fine_mask": batch["fine_mask"], "fine_offset": batch["fine_offset"], "coarse_span": self.coarse_span}
        return (batch["frames"], batch["fine_frames"]), kwargs

    def loss(self, outputs, batch, config, step=None):
        _require(batch, ("frame_labels", "frame_mask"), self.name)
        loss = losses.charades_loss(outputs["logits"], batch["frame_labels"], batch["frame_mask"])
        return loss, {"loss": loss}

    def eval_outputs(self, outputs, batch):
        out = {k: batch[k] for k in ("frame_indices", "frame_mask", "frame_labels", "point_frames", "point_labels")}
        out["logits"] = outputs["logits"].astype(jnp.float32)
        if "grid" in outputs:
            out["grid"] = outputs["grid"]
        return out

    def eval_metrics(self, results, class_names):
        rows = [
            metrics_lib.scores_at_points(logits, idx, mask, points)
            for logits, idx, mask, points in zip(
                results["logits"], results["frame_indices"], results["frame_mask"], results["point_frames"]
            )
        ]
        scores = np.concatenate(rows)
        labels = np.concatenate(list(results["point_labels"]))
        mean_ap, ap = metrics_lib.frame_map(scores, labels, self.empty_classes)
        out = {
            "frame_map": float(mean_ap),
            # the rule behind frame_map, so that the number is never quoted without it
            "frame_map_empty_classes": self.empty_classes,
            "frame_map_num_empty_classes": int(np.sum(~labels.any(axis=0))),
            "num_examples": int(results["logits"].shape[0]),
        }
        if "grid" in results:
            out.update(grid_density(results["grid"], results["frame_labels"], results["frame_mask"]))
        return out, _per_class_table({"ap": ap}, class_names)


def grid_density(grid, frame_labels, frame_mask) -> dict:
    """How the Grid Pool's samples fall on action frames, over a set of clips.

    Sample ``k`` of a clip sits at step ``g_k * (T - 1)`` (rounded); it is *inside*
    when some class is present at that step. ``grid_density_ratio`` = (fraction of
    samples inside) / (fraction of valid steps inside): 1 for uniform sampling,
    > 1 when sampling is denser inside action segments.
    """
    grid = np.asarray(grid)
    active = np.asarray(frame_labels).max(-1) > 0  # [N, T]
    mask = np.asarray(frame_mask, bool)
    steps = np.rint(grid * (active.shape[1] - 1)).astype(int)
    inside = np.take_along_axis(active, steps, axis=1)
    sample_fraction = float(inside.mean())
    frame_fraction = float((active & mask).sum() / max(mask.sum(), 1))
    ratio = sample_fraction / frame_fraction if frame_fraction > 0 else float("nan")
    return {
        "grid_inside_fraction": sample_fraction,
        "frames_inside_fraction": frame_fraction,
        "grid_density_ratio": ratio,
    }
