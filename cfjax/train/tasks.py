"""Tasks: how a batch feeds a model, the loss, and the evaluation protocol (``config.task``).

A task is the one place that knows the keys of a batch. The trainer calls, in order:

- ``transform(config, train)``: the per-example input transform;
- ``forward(model, variables, batch, train, rngs)`` -> ``(outputs, updates)`` (jitted);
- ``loss(outputs, batch, config, step)`` -> ``(loss, metrics)`` (jitted, training; ``step``
  is the traced train step, for losses that change over training such as CFAD's TPN-first phase);
- ``eval_outputs(outputs, batch)`` -> per-example device arrays ``[B, ...]`` (jitted);
- ``eval_metrics(results, class_names)`` -> ``(metrics, per_class)`` on the host, where
  ``results`` holds the concatenated ``eval_outputs`` of valid examples.

New tasks subclass :class:`Task` and :func:`register_task` themselves.
"""

from __future__ import annotations

import dataclasses
import inspect

import jax
import jax.numpy as jnp
import numpy as np

from cfjax import metrics as metrics_lib
from cfjax.data.pipeline import SHORT_VIDEO, VideoTransform
from cfjax.models.cfad import CFADLossConfig, cfad_loss
from cfjax.train import losses

__all__ = [
    "TASKS",
    "ClassificationTask",
    "ClipSetTask",
    "FrameDetectionTask",
    "Task",
    "TubeDetectionTask",
    "TubeTargets",
    "get_task",
    "interpolate_tube",
    "register_task",
    "short_video_mode",
    "tube_act_layout",
    "tube_clip_targets",
    "tube_video_targets",
]

_TRANSFORM_FIELDS = {f.name for f in dataclasses.fields(VideoTransform)}


def _input_fields(config, train: bool) -> dict:
    fields = dict(config.input)
    if not train:
        fields.update(dict(config.eval_input))
    return fields


def short_video_mode(config, train: bool) -> str:
    """``input.short_video`` (or ``eval_input``'s): what the repeated clips of a short video are
    for ``sampling="clips"``: ``"loop"`` (real clips, the default) or ``"mask"`` (padding)."""
    fields = _input_fields(config, train)
    mode = fields.get("short_video", "loop")
    if mode not in SHORT_VIDEO:
        raise ValueError(f"input.short_video: expected one of {SHORT_VIDEO}, got {mode!r}")
    if "short_video" in fields and fields.get("sampling") != "clips":
        raise ValueError(
            f"input.short_video: only for sampling='clips' (GCF-Net's clip sets), got sampling={fields.get('sampling')!r}"
        )
    return mode


def video_transform(config, train: bool) -> VideoTransform:
    """``config.input`` (+ ``config.eval_input`` when evaluating) -> :class:`VideoTransform`."""
    short_video_mode(config, train)
    fields = _input_fields(config, train)
    unknown = sorted(set(fields) - _TRANSFORM_FIELDS)
    if unknown:
        where = "input / eval_input"
        raise ValueError(f"{where}: unknown VideoTransform field(s) {unknown}; known: {sorted(_TRANSFORM_FIELDS)}")
    if fields.get("scale_range") is not None:
        fields["scale_range"] = tuple(fields["scale_range"])
    if not train:
        fields.pop("scale_range", None)
    return VideoTransform(train=train, **fields)


def _mutable(variables, train: bool):
    return ["batch_stats"] if train and "batch_stats" in variables else False


def _apply(model, variables, args, kwargs, train, rngs):
    mutable = _mutable(variables, train)
    out = model.apply(variables, *args, train=train, rngs=rngs, mutable=mutable, **kwargs)
    return out if mutable else (out, {})


class Task:
    """Base class; see the module docstring for the protocol."""

    name = ""
    best_metric = ""  # higher is better
    eval_loss = False  # whether eval_metrics reports the validation "loss" (schedule "plateau" needs it)

    def transform(self, config, train: bool):
        return video_transform(config, train)

    def inputs(self, model, batch) -> tuple[tuple, dict]:
        """``(args, kwargs)`` of the model call (``train`` is added by the caller)."""
        raise NotImplementedError

    def outputs(self, raw, batch) -> dict:
        """The model's return value -> a dict with at least ``logits``."""
        return dict(raw) if isinstance(raw, dict) else {"logits": raw}

    def init(self, model, rngs, batch):
        args, kwargs = self.inputs(model, batch)
        return model.init(rngs, *args, train=False, **kwargs)

    def forward(self, model, variables, batch, train: bool, rngs=None):
        """``(outputs, updated collections)``; BatchNorm statistics are updated when ``train``."""
        args, kwargs = self.inputs(model, batch)
        raw, updates = _apply(model, variables, args, kwargs, train, rngs)
        return self.outputs(raw, batch), updates

    def loss(self, outputs, batch, config, step=None):
        """``(loss, metrics)``; ``step`` is the traced train step (``None`` outside the trainer)."""
        raise NotImplementedError

    def eval_outputs(self, outputs, batch) -> dict:
        raise NotImplementedError

    def eval_metrics(self, results: dict, class_names) -> tuple[dict, dict]:
        raise NotImplementedError


def _require(batch, keys, task):
    missing = [k for k in keys if k not in batch]
    if missing:
        raise KeyError(f"batch: task {task!r} needs key(s) {missing}; the batch has {sorted(batch)}")


def _per_class_table(table: dict, class_names) -> dict:
    out = {"class": list(class_names)}
    for key, values in table.items():
        out[key] = [None if isinstance(v, float) and np.isnan(v) else v for v in np.asarray(values).tolist()]
    return out


def _eval_nll(logits, labels):
    """Per-example validation loss ``[B]``: ``-log p(label)``, with ``p`` the mean softmax over
    views when ``logits`` is ``[B, V, K]`` (the prediction that is scored); no label smoothing."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), -1)
    if logp.ndim == 3:
        logp = jax.nn.logsumexp(logp, axis=1) - jnp.log(logp.shape[1])
    return -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]


def _pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


class ClassificationTask(Task):
    """Video classification: softmax CE; top-1 / top-5, multi-view softmax averaging; the eval
    ``loss`` is the cross-entropy of that averaged prediction (no label smoothing).

    Batch: ``frames [B, T, H, W, 3]`` (or ``[B, V, T, H, W, 3]`` views), ``frame_mask``,
    ``label [B]``. SGS models also report active bins (and, when the data has a
    ``redundancy``, how they vary with it).
    """

    name = "classification"
    best_metric = "top1"
    eval_loss = True

    def inputs(self, model, batch):
        _require(batch, ("frames",), self.name)
        frames, mask = batch["frames"], batch.get("frame_mask")
        if frames.ndim == 6:  # views -> one batch of B * V clips
            frames = frames.reshape((-1,) + frames.shape[2:])
            mask = None if mask is None else mask.reshape((-1,) + mask.shape[2:])
        kwargs = {"mask": mask}
        if "return_features" in inspect.signature(type(model).__call__).parameters:
            kwargs["return_features"] = True
        return (frames,), kwargs

    def outputs(self, raw, batch):
        logits, feats = raw if isinstance(raw, tuple) else (raw, {})
        outputs = {"logits": logits}
        if "active_bins" in feats:
            outputs["active_bins"] = feats["active_bins"]
        if batch["frames"].ndim == 6:
            views = batch["frames"].shape[1]
            outputs = {k: v.reshape((-1, views) + v.shape[1:]) for k, v in outputs.items()}
        return outputs

    def loss(self, outputs, batch, config, step=None):
        _require(batch, ("label",), self.name)
        logits = outputs["logits"]
        loss = losses.softmax_cross_entropy(logits, batch["label"], config.loss.label_smoothing)
        metrics = {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}
        if "active_bins" in outputs:
            metrics["active_bins"] = jnp.mean(outputs["active_bins"].astype(jnp.float32))
        return loss, metrics

    def eval_outputs(self, outputs, batch):
        logits = outputs["logits"]
        if logits.ndim == 3:  # views: mean softmax
            scores = jnp.mean(jax.nn.softmax(logits.astype(jnp.float32), -1), axis=1)
        else:
            scores = jax.nn.softmax(logits.astype(jnp.float32), -1)
        out = {"scores": scores, "label": batch["label"], "loss": _eval_nll(logits, batch["label"])}
        if "active_bins" in outputs:
            bins = outputs["active_bins"].astype(jnp.float32)
            out["active_bins"] = jnp.mean(bins, axis=1) if bins.ndim == 2 else bins
        if "redundancy" in batch:
            out["redundancy"] = batch["redundancy"]
        return out

    def eval_metrics(self, results, class_names):
        scores, labels = results["scores"], results["label"]
        out = metrics_lib.topk_accuracy(scores, labels, ks=(1, 5))
        table = metrics_lib.per_class_accuracy(scores, labels, len(class_names))
        out["num_examples"] = int(labels.shape[0])
        out["loss"] = float(np.mean(results["loss"]))
        if "active_bins" in results:
            bins = results["active_bins"]
            out["active_bins"] = float(np.mean(bins))
            if "redundancy" in results:
                red = results["redundancy"]
                low = red <= np.median(red)
                out["active_bins_low_redundancy"] = float(np.mean(bins[low]))
                out["active_bins_high_redundancy"] = float(np.mean(bins[~low])) if np.any(~low) else float("nan")
                out["active_bins_redundancy_corr"] = _pearson(bins, red)
        return out, _per_class_table({"count": table["count"], "top1": table["top1"]}, class_names)


@dataclasses.dataclass(frozen=True)
class WithTimePoints:
    """Wraps an eval transform: adds the video's 25 Charades time points before sampling.

    Adds ``point_frames [P]`` int64 (source frame of ``t_j = (j - 1) * len / P``) and
    ``point_labels [P, C]`` (the whole video's ``frame_labels`` there).
    """

    base: VideoTransform
    num_points: int = 25

    def __call__(self, example, rng):
        from cfjax.data.pipeline import resample_frame_labels

        num_frames = int(np.shape(example["frames"])[0])
        points = metrics_lib.charades_points(num_frames, self.num_points)
        labels = resample_frame_labels(example["frame_labels"], points, num_frames)
        out = self.base(example, rng)
        out["point_frames"] = points.astype(np.int64)
        out["point_labels"] = np.asarray(labels, np.uint8)
        return out


class FrameDetectionTask(Task):
    """Per-frame multi-label detection (Coarse-Fine Networks; Charades per-frame mAP).

    Batch: coarse ``frames [B, T, H, W, 3]``, ``frame_mask``, ``frame_labels [B, T, C]``,
    ``fine_frames [B, Lf, ...]``, ``fine_mask``, ``fine_offset``. Evaluation reads the
    clip's per-step scores at the video's 25 time points (nearest clip step) and also
    measures how much denser the learned Grid Pool samples inside action segments.
    """

    name = "frame_detection"
    best_metric = "frame_map"

    def transform(self, config, train):
        base = video_transform(config, train)
        return base if train else WithTimePoints(base)

    coarse_span = None  # coarse clip length in fine steps (set by get_task from the strides)
    empty_classes = "zero"  # Charades mAP rule for a class without positives (get_task: eval_protocol.empty_classes)

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
    return {"grid_inside_fraction": sample_fraction, "frames_inside_fraction": frame_fraction, "grid_density_ratio": ratio}


class ClipSetTask(Task):
    """Clip-set classification (GCF-Net): CE + sparsity of the gates; accuracy, gate localisation;
    the eval ``loss`` is the same objective (no label smoothing).

    Batch: ``frames [B, N, L, H, W, 3]``, ``clip_mask [B, N]``, ``label [B]``, and for
    localisation ``relevant_clips [B, N]`` (clips with gate > 0.5 are predicted relevant).
    A short video's clips loop (all valid, the paper's padding) unless ``input.short_video``
    is ``"mask"`` (:class:`~cfjax.data.pipeline.VideoTransform`).
    """

    name = "clip_set"
    best_metric = "top1"
    eval_loss = True
    sparsity_weight = 0.0  # loss.sparsity_weight (set by get_task): the eval loss is the training objective

    def inputs(self, model, batch):
        _require(batch, ("frames",), self.name)
        return (batch["frames"],), {"clip_mask": batch.get("clip_mask")}

    def loss(self, outputs, batch, config, step=None):
        _require(batch, ("label",), self.name)
        logits = outputs["logits"]
        if "gates" in outputs:
            loss = losses.gcf_loss(
                logits, batch["label"], outputs["gates"], config.loss.sparsity_weight,
                batch.get("clip_mask"), config.loss.label_smoothing,
            )
        else:
            loss = losses.softmax_cross_entropy(logits, batch["label"], config.loss.label_smoothing)
        metrics = {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}
        if "gates" in outputs:
            metrics["gate_mean"] = jnp.mean(outputs["gates"])
        return loss, metrics

    def eval_outputs(self, outputs, batch):
        out = {"scores": jax.nn.softmax(outputs["logits"].astype(jnp.float32), -1), "label": batch["label"]}
        out["loss"] = _eval_nll(outputs["logits"], batch["label"])
        if "gates" in outputs:
            out["gates"] = outputs["gates"].astype(jnp.float32)
            out["clip_mask"] = batch["clip_mask"] if "clip_mask" in batch else jnp.ones(out["gates"].shape, bool)
            valid = out["clip_mask"].astype(jnp.float32)
            out["loss"] = out["loss"] + self.sparsity_weight * jnp.sum(jnp.abs(out["gates"]) * valid, axis=-1)
            if "relevant_clips" in batch:
                out["relevant_clips"] = batch["relevant_clips"]
        return out

    def eval_metrics(self, results, class_names):
        out = metrics_lib.topk_accuracy(results["scores"], results["label"], ks=(1, 5))
        out["num_examples"] = int(results["label"].shape[0])
        out["loss"] = float(np.mean(results["loss"]))
        if "gates" in results:
            gates, valid = results["gates"], results["clip_mask"].astype(bool)
            out["gate_mean"] = float(gates[valid].mean())
            if "relevant_clips" in results:
                relevant = results["relevant_clips"].astype(bool) & valid
                irrelevant = ~relevant & valid
                predicted = (gates > 0.5) & valid
                hits = (predicted & relevant).sum()
                out["gate_relevant"] = float(gates[relevant].mean()) if relevant.any() else float("nan")
                out["gate_irrelevant"] = float(gates[irrelevant].mean()) if irrelevant.any() else float("nan")
                out["localisation_precision"] = float(hits / predicted.sum()) if predicted.any() else float("nan")
                out["localisation_recall"] = float(hits / relevant.sum()) if relevant.any() else float("nan")
                out["localisation_iou"] = float(hits / (predicted | relevant).sum()) if (predicted | relevant).any() else float("nan")
        table = metrics_lib.per_class_accuracy(results["scores"], results["label"], len(class_names))
        return out, _per_class_table({"count": table["count"], "top1": table["top1"]}, class_names)


# ------------------------------------------------------------------------------------ tubes

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
    """Concatenated :meth:`TubeDetectionTask.eval_outputs` -> the ACT layouts of :mod:`cfjax.metrics.detection`.

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


class TubeDetectionTask(Task):
    """Spatio-temporal action tubes (CFAD) with the ACT protocol (UCF101-24, JHMDB-21).

    Batch: ``frames [B, T, H, W, 3]`` (the whole video resampled to ``T = clip_length``
    frames, ``sampling="resample"``: :func:`cfjax.data.pipeline.resample_indices`),
    ``frame_mask``, ``frame_indices`` and the targets of :func:`tube_clip_targets` on the
    ``T`` steps (``G = data.max_tubes`` in training, ``data.max_actors``, i.e. every tube,
    in evaluation); in evaluation also the whole-video ground truth of
    :func:`tube_video_targets` (padded to ``data.max_video_frames`` frames).

    Training: :func:`cfjax.models.cfad.cfad_loss` of stage ``loss.cfad_stage`` (fields of
    ``loss.cfad`` override :class:`~cfjax.models.cfad.CFADLossConfig`). With stage
    ``"end_to_end"`` and ``loss.tpn_steps > 0`` the first ``tpn_steps`` steps count only
    the TPN terms: the non-TPN terms are multiplied by a traced ``step >= tpn_steps``, so
    the trainer's single compiled step serves both phases (in the first phase the other
    heads get zero gradients but are still computed; weight decay still applies to them).

    Evaluation is ACT's whole-video protocol (:func:`tube_act_layout`): the detections
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
    num_classes = 0  # fallback when the dataset has no class names (set by get_task)

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
        """The batch's targets in the layout of :func:`cfjax.models.cfad.cfad_loss`."""
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
            gt, video_dets, frame_dets = tube_act_layout(results, class_names, prefix)
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


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Makes ``config.task = cls.name`` select ``cls``."""
    TASKS[cls.name] = cls
    return cls


for _cls in (ClassificationTask, FrameDetectionTask, ClipSetTask, TubeDetectionTask):
    register_task(_cls)


def get_task(config) -> Task:
    """The task of ``config.task``; Coarse-Fine's coarse span comes from the input strides."""
    if config.task not in TASKS:
        raise ValueError(f"task: unknown task {config.task!r}; known: {sorted(TASKS)}")
    task = TASKS[config.task]()
    if isinstance(task, FrameDetectionTask):
        span = config.input.clip_length * config.input.stride / config.input.fine_stride
        task.coarse_span = span
        rule = config.get("eval_protocol", {}).get("empty_classes", "zero")
        if rule not in metrics_lib.charades.EMPTY_CLASSES:
            raise ValueError(f"eval_protocol.empty_classes: expected one of {metrics_lib.charades.EMPTY_CLASSES}, got {rule!r}")
        task.empty_classes = rule
    if isinstance(task, ClipSetTask):
        task.sparsity_weight = float(config.loss.get("sparsity_weight", 0.0))
    if isinstance(task, TubeDetectionTask):
        task.num_classes = int(config.model.get("num_classes", 0))
    return task
