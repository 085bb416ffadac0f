"""Spatio-temporal action tubes (``config.task = "tubes"``): CFAD with ACT's whole-video protocol.

The clip targets of a tube dataset (:func:`tube_clip_targets`), the whole video's ground truth
(:func:`tube_video_targets`), the transform that adds both (:class:`TubeTargets`), and the task.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from cfjax import metrics as metrics_lib
from cfjax.data.transform import VideoTransform
from cfjax.train.losses import CFADLossConfig, cfad_loss
from cfjax.train.tasks.base import Task, _apply, _per_class_table, _require, video_transform

__all__ = [
    "TUBE_TARGET_KEYS",
    "VIDEO_TARGET_KEYS",
    "TubeDetectionTask",
    "TubeTargets",
    "tube_clip_targets",
    "tube_video_targets",
]

TUBE_TARGET_KEYS = ("gt_boxes", "gt_valid", "gt_labels", "gt_tube_valid")
VIDEO_TARGET_KEYS = ("video_gt_boxes", "video_gt_valid", "video_gt_labels", "video_gt_tube_valid", "num_video_frames")
_TUBE_KEYS = ("boxes", "box_mask", "tube_labels", "tube_mask")
_TPN_PARTS = ("tpn_cls", "tpn_reg")
# v-mAP thresholds reported one by one (metric suffix: tube IoU); 0.3 is CFAD's UCF101-24 table.
_VIDEO_MAP_THRESHOLDS = {"20": 0.2, "30": 0.3, "50": 0.5, "75": 0.75}


def _require_tube_keys(example: dict, keys=_TUBE_KEYS) -> None:
    missing = [k for k in keys if k not in example]
    if missing:
        raise KeyError(
            f"example: the tubes task needs a tube dataset (boxes per actor); missing {missing}, has {sorted(example)}"
        )


def tube_clip_targets(example: dict, max_tubes: int) -> dict:
    """A sampled clip's actor boxes -> per-example CFAD targets on the clip's frame axis.

    Reads what :class:`VideoTransform` (``sampling="resample"``, or any one-clip sampling)
    leaves of a tube dataset's example: ``boxes [T, A, 4]`` and ``box_mask [T, A]`` (already
    moved by the pipeline's resize / crop / flip, inclusive pixels), ``tube_labels [A]`` (-1
    for padding actors), ``tube_mask [A]`` and ``frame_mask [T]``. Replaces them by

    - ``gt_boxes`` float32 ``[G, T, 4]``, ``gt_valid`` bool ``[G, T]`` (a box on that clip
      step; never on loop-padded steps), ``gt_labels`` int32 ``[G]`` (0 for padding),
      ``gt_tube_valid`` bool ``[G]``, with ``G = max_tubes``:

    the tubes with at least one box in the clip, in record order, valid first. When more
    than ``G`` tubes are in the clip, the ``G`` with the most boxes in it are kept (ties:
    record order); the others are dropped from the targets.
    """
    _require_tube_keys(example, (*_TUBE_KEYS, "frame_mask"))
    out = dict(example)
    boxes = np.asarray(out.pop("boxes"), np.float32)
    mask = np.asarray(out.pop("box_mask"), bool) & np.asarray(out["frame_mask"], bool)[:, None]
    labels = np.asarray(out.pop("tube_labels"), np.int64)
    tube_mask = np.asarray(out.pop("tube_mask"), bool)
    t = boxes.shape[0]
    counts = np.where(tube_mask, mask.sum(axis=0), 0)
    present = np.flatnonzero(counts > 0)
    if len(present) > max_tubes:
        present = np.sort(present[np.argsort(-counts[present], kind="stable")[:max_tubes]])
    out["gt_boxes"] = np.zeros((max_tubes, t, 4), np.float32)
    out["gt_valid"] = np.zeros((max_tubes, t), bool)
    out["gt_labels"] = np.zeros((max_tubes,), np.int32)
    out["gt_tube_valid"] = np.zeros((max_tubes,), bool)
    for g, a in enumerate(present):
        out["gt_boxes"][g] = np.where(mask[:, a, None], boxes[:, a], 0)
        out["gt_valid"][g] = mask[:, a]
        out["gt_labels"][g] = labels[a]
        out["gt_tube_valid"][g] = True
    return out


def tube_video_targets(boxes, box_mask, tube_labels, tube_mask, max_frames: int) -> dict:
    """The whole video's ground truth, every annotated frame, padded to ``max_frames`` frames.

    Args:
      boxes: ``[F, A, 4]`` (every frame of the video, moved by the same resize / crop / flip
        as the sampled frames); box_mask: ``[F, A]``; tube_labels, tube_mask: ``[A]``.
      max_frames: the padded frame axis ``F_max >= F`` (``data.max_video_frames``).

    Returns:
      ``video_gt_boxes`` float32 ``[A, F_max, 4]``, ``video_gt_valid`` bool ``[A, F_max]``
      (a box on that frame; False past ``F``), ``video_gt_labels`` int32 ``[A]``,
      ``video_gt_tube_valid`` bool ``[A]`` (a real tube with at least one box) and
      ``num_video_frames`` int32 ``F``. Frame ``f`` (0-based) is frame number ``f + 1``.
    """
    boxes = np.asarray(boxes, np.float32)
    mask = np.asarray(box_mask, bool) & np.asarray(tube_mask, bool)[None, :]
    num_frames, num_actors = mask.shape
    if num_frames > max_frames:
        raise ValueError(
            f"data.max_video_frames: expected at least the {num_frames} frames of this video "
            f"(the whole-video ground truth is padded to it), got {max_frames}"
        )
    out_boxes = np.zeros((num_actors, max_frames, 4), np.float32)
    out_valid = np.zeros((num_actors, max_frames), bool)
    out_boxes[:, :num_frames] = np.where(mask[..., None], boxes, 0).transpose(1, 0, 2)
    out_valid[:, :num_frames] = mask.T
    return {
        "video_gt_boxes": out_boxes,
        "video_gt_valid": out_valid,
        "video_gt_labels": np.asarray(tube_labels, np.int32),
        "video_gt_tube_valid": out_valid.any(axis=1),
        "num_video_frames": np.int32(num_frames),
    }


@dataclasses.dataclass(frozen=True)
class TubeTargets:
    """Wraps a clip transform: adds the CFAD targets of :func:`tube_clip_targets`.

    With ``max_video_frames > 0`` (evaluation) it also adds the whole video's ground truth of
    :func:`tube_video_targets`: the video's boxes ride through ``base`` as ``video_boxes``,
    which the temporal samplers leave alone and the resize / crop / flip move like ``boxes``.
    """

    base: VideoTransform
    max_tubes: int = 3
    max_video_frames: int = 0

    def __call__(self, example, rng):
        if not self.max_video_frames:
            return tube_clip_targets(self.base(example, rng), self.max_tubes)
        _require_tube_keys(example)
        example = {**example, "video_boxes": example["boxes"], "video_box_mask": example["box_mask"]}
        out = self.base(example, rng)
        boxes, mask = out.pop("video_boxes"), out.pop("video_box_mask")
        video = tube_video_targets(boxes, mask, out["tube_labels"], out["tube_mask"], self.max_video_frames)
        return {**tube_clip_targets(out, self.max_tubes), **video}


@dataclasses.dataclass(frozen=True)
class TubeDetectionTask(Task):
    """Spatio-temporal action tubes (CFAD) with the ACT protocol (UCF101-24, JHMDB-21).

    Batch: ``frames [B, T, H, W, 3]`` (the whole video resampled to ``T = clip_length``
    frames, ``sampling="resample"``: :func:`cfjax.data.sampling.resample_indices`),
    ``frame_mask``, ``frame_indices`` and the targets of :func:`tube_clip_targets` on the
    ``T`` steps (``G = data.max_tubes`` in training, ``data.max_actors``, i.e. every tube,
    in evaluation); in evaluation also the whole-video ground truth of
    :func:`tube_video_targets` (padded to ``data.max_video_frames`` frames).

    Training: :func:`cfjax.train.losses.cfad_loss` of stage ``loss.cfad_stage`` (fields of
    ``loss.cfad`` override :class:`~cfjax.train.losses.CFADLossConfig`). With stage
    ``"end_to_end"`` and ``loss.tpn_steps > 0`` the first ``tpn_steps`` steps count only
    the TPN terms: the non-TPN terms are multiplied by a traced ``step >= tpn_steps``, so
    the trainer's single compiled step serves both phases (in the first phase the other
    heads get zero gradients but are still computed; weight decay still applies to them).

    Evaluation is ACT's whole-video protocol (:func:`cfjax.metrics.tube_act_layout`): the detections
    (refined and coarse, at most ``max_tubes`` per video) at the ``T`` sampled frames are
    interpolated linearly to every frame between their first and last sampled frame and
    compared with every annotated frame of the video, in the evaluated frames' pixels (the
    pipeline's resize and centre crop applied to the ground truth as to the frames).

    Metrics (refined; ``coarse_`` prefix: coarse tubes only, "without refinement"):
    ``video_map_20``, ``video_map_30``, ``video_map_50``, ``video_map_75``, ``video_map_50_95``,
    ``frame_map_50``, ``video_mabo``, and the error breakdown of the frame detections
    (every tube box is a frame detection with the tube's score; CFAD Fig. 5):
    ``error_{true_positive, duplicate, wrong_class, localisation, background}`` fractions.
    The per-class table has the per-class APs, ABOs and error fractions.
    """

    name = "tubes"
    best_metric = "video_map_50"
    num_classes: int = 0  # model.num_classes: the class names when the dataset has none

    @classmethod
    def from_config(cls, config) -> TubeDetectionTask:
        return cls(num_classes=int(config.model.get("num_classes", 0)))

    def transform(self, config, train):
        base = video_transform(config, train)
        if base.sampling != "resample":
            key = "eval_input.sampling" if not train and "sampling" in config.eval_input else "input.sampling"
            raise ValueError(
                f"{key}: the tubes task resamples the whole video to clip_length frames ('resample'), "
                f"got {base.sampling!r}"
            )
        if train:
            return TubeTargets(base, int(config.data.max_tubes))
        max_frames = config.data.get("max_video_frames")
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
            raise ValueError(
                f"data.max_video_frames: expected a positive int (the longest evaluated video), got {max_frames!r}"
            )
        return TubeTargets(base, int(config.data.max_actors), max_frames)

    def inputs(self, model, batch):
        _require(batch, ("frames",), self.name)
        return (batch["frames"],), {}

    @staticmethod
    def targets(batch) -> dict:
        """The batch's targets in the layout of :func:`cfjax.train.losses.cfad_loss`."""
        _require(batch, TUBE_TARGET_KEYS, "tubes")
        return {
            "boxes": batch["gt_boxes"],
            "valid": batch["gt_valid"],
            "labels": batch["gt_labels"],
            "tube_valid": batch["gt_tube_valid"],
        }

    def forward(self, model, variables, batch, train: bool, rngs=None):
        args, kwargs = self.inputs(model, batch)
        if train:  # the GT extents fill the first proposal slots (CFAD docstring)
            kwargs["targets"] = self.targets(batch)
        raw, updates = _apply(model, variables, args, kwargs, train, rngs)
        return dict(raw), updates

    @staticmethod
    def loss_config(config) -> CFADLossConfig:
        overrides = dict(config.loss.get("cfad") or {})
        if "stage" in overrides:
            raise ValueError("loss.cfad.stage: set loss.cfad_stage instead")
        return CFADLossConfig.make({**overrides, "stage": config.loss.get("cfad_stage", "end_to_end")})

    def loss(self, outputs, batch, config, step=None):
        loss_config = self.loss_config(config)
        _, parts = cfad_loss(outputs, self.targets(batch), loss_config)
        weights = dict(loss_config.weights)
        tpn = sum(weights.get(k, 1.0) * parts[k] for k in _TPN_PARTS)
        rest = [weights.get(k, 1.0) * v for k, v in parts.items() if k not in _TPN_PARTS]
        tpn_steps = int(config.loss.get("tpn_steps", 0))
        if rest and tpn_steps > 0 and step is not None:
            on = (jnp.asarray(step) >= tpn_steps).astype(tpn.dtype)
        else:
            on = jnp.ones((), tpn.dtype)
        total = tpn + on * sum(rest) if rest else tpn
        metrics = {"loss": total, "tpn_phase": 1 - on, **{f"loss_{k}": v for k, v in parts.items()}}
        return total, metrics

    def eval_outputs(self, outputs, batch):
        _require(batch, ("frame_mask", "frame_indices", *VIDEO_TARGET_KEYS), self.name)
        out = {k: batch[k] for k in VIDEO_TARGET_KEYS}
        frame_mask = batch["frame_mask"].astype(bool)
        out["frame_mask"] = frame_mask
        out["frame_indices"] = batch["frame_indices"]
        for prefix, key in (("", "detections"), ("coarse_", "coarse_detections")):
            d = outputs[key]
            out[prefix + "det_boxes"] = d["frame_boxes"].astype(jnp.float32)
            out[prefix + "det_frame_valid"] = d["frame_valid"] & frame_mask[:, None, :]
            out[prefix + "det_labels"] = d["labels"]
            out[prefix + "det_scores"] = d["scores"].astype(jnp.float32)
            out[prefix + "det_valid"] = d["valid"]
        return out

    def eval_metrics(self, results, class_names):
        class_names = list(class_names) or [str(i) for i in range(self.num_classes)]
        out = {"num_examples": len(results["frame_mask"])}
        table = {}
        for prefix in ("", "coarse_"):
            gt, video_dets, frame_dets = metrics_lib.tube_act_layout(results, class_names, prefix)
            vmap = metrics_lib.video_map(gt, video_dets, iou_thresholds=tuple(_VIDEO_MAP_THRESHOLDS.values()))
            for thr, value in zip(_VIDEO_MAP_THRESHOLDS, vmap.mean_ap):
                out[f"{prefix}video_map_{thr}"] = float(value)
            out[f"{prefix}video_map_50_95"] = float(vmap.mean_ap_50_95)
            fmap, fap = metrics_lib.detection_frame_map(gt, frame_dets, iou_threshold=0.5)
            out[f"{prefix}frame_map_50"] = float(fmap)
            mabo, abo = metrics_lib.video_mabo(gt, video_dets)
            out[f"{prefix}video_mabo"] = float(mabo)
            errors = metrics_lib.frame_error_breakdown(gt, frame_dets)
            for j, category in enumerate(errors.categories):
                out[f"{prefix}error_{category}"] = float(errors.total_fractions[j])
                table[f"{prefix}error_{category}"] = errors.fractions[:, j]
            table[f"{prefix}video_ap_50"] = vmap.ap[list(_VIDEO_MAP_THRESHOLDS).index("50")]
            table[f"{prefix}video_ap_50_95"] = vmap.ap_50_95
            table[f"{prefix}frame_ap_50"] = fap
            table[f"{prefix}abo"] = abo
            if not prefix:
                counts = [sum(len(t.get(c, [])) for t in gt["gttubes"].values()) for c in range(len(class_names))]
                table = {"gt_tubes": counts, **table}
        return out, _per_class_table(table, class_names)
