"""Tasks: how a batch feeds a model, the loss, and the evaluation protocol (``config.task``).

A task is the one place that knows the keys of a batch. The trainer calls, in order:

- ``transform(config, train)``: the per-example input transform;
- ``forward(model, variables, batch, train, rngs)`` -> ``(outputs, updates)`` (jitted);
- ``loss(outputs, batch, config)`` -> ``(loss, metrics)`` (jitted, training);
- ``eval_outputs(outputs, batch)`` -> per-example device arrays ``[B, ...]`` (jitted);
- ``eval_metrics(results, class_names)`` -> ``(metrics, per_class)`` on the host, where
  ``results`` holds the concatenated ``eval_outputs`` of valid examples.

New tasks (spatio-temporal tubes with CFAD) subclass :class:`Task` and
:func:`register_task` themselves.
"""

from __future__ import annotations

import dataclasses
import inspect

import jax
import jax.numpy as jnp
import numpy as np

from cfjax import metrics as metrics_lib
from cfjax.data.pipeline import VideoTransform
from cfjax.train import losses

__all__ = ["TASKS", "ClassificationTask", "ClipSetTask", "FrameDetectionTask", "Task", "get_task", "register_task"]

_TRANSFORM_FIELDS = {f.name for f in dataclasses.fields(VideoTransform)}


def video_transform(config, train: bool) -> VideoTransform:
    """``config.input`` (+ ``config.eval_input`` when evaluating) -> :class:`VideoTransform`."""
    fields = dict(config.input)
    if not train:
        fields.update(dict(config.eval_input))
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

    def loss(self, outputs, batch, config):
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


def _pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


class ClassificationTask(Task):
    """Video classification: softmax CE; top-1 / top-5, multi-view softmax averaging.

    Batch: ``frames [B, T, H, W, 3]`` (or ``[B, V, T, H, W, 3]`` views), ``frame_mask``,
    ``label [B]``. SGS models also report active bins (and, when the data has a
    ``redundancy``, how they vary with it).
    """

    name = "classification"
    best_metric = "top1"

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

    def loss(self, outputs, batch, config):
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
        out = {"scores": scores, "label": batch["label"]}
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

    def inputs(self, model, batch):
        _require(batch, ("frames", "fine_frames", "fine_mask", "fine_offset"), self.name)
        kwargs = {"fine_mask": batch["fine_mask"], "fine_offset": batch["fine_offset"], "coarse_span": self.coarse_span}
        return (batch["frames"], batch["fine_frames"]), kwargs

    def loss(self, outputs, batch, config):
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
        mean_ap, ap = metrics_lib.frame_map(scores, labels)
        out = {"frame_map": float(mean_ap), "num_examples": int(results["logits"].shape[0])}
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
    """Clip-set classification (GCF-Net): CE + sparsity of the gates; accuracy, gate localisation.

    Batch: ``frames [B, N, L, H, W, 3]``, ``clip_mask [B, N]``, ``label [B]``, and for
    localisation ``relevant_clips [B, N]`` (clips with gate > 0.5 are predicted relevant).
    """

    name = "clip_set"
    best_metric = "top1"

    def inputs(self, model, batch):
        _require(batch, ("frames",), self.name)
        return (batch["frames"],), {"clip_mask": batch.get("clip_mask")}

    def loss(self, outputs, batch, config):
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
        if "gates" in outputs:
            out["gates"] = outputs["gates"].astype(jnp.float32)
            out["clip_mask"] = batch["clip_mask"] if "clip_mask" in batch else jnp.ones(out["gates"].shape, bool)
            if "relevant_clips" in batch:
                out["relevant_clips"] = batch["relevant_clips"]
        return out

    def eval_metrics(self, results, class_names):
        out = metrics_lib.topk_accuracy(results["scores"], results["label"], ks=(1, 5))
        out["num_examples"] = int(results["label"].shape[0])
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


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Makes ``config.task = cls.name`` select ``cls``."""
    TASKS[cls.name] = cls
    return cls


for _cls in (ClassificationTask, FrameDetectionTask, ClipSetTask):
    register_task(_cls)


def get_task(config) -> Task:
    """The task of ``config.task``; Coarse-Fine's coarse span comes from the input strides."""
    if config.task not in TASKS:
        raise ValueError(f"task: unknown task {config.task!r}; known: {sorted(TASKS)}")
    task = TASKS[config.task]()
    if isinstance(task, FrameDetectionTask):
        span = config.input.clip_length * config.input.stride / config.input.fine_stride
        task.coarse_span = span
    return task
