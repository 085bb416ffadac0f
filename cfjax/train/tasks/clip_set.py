"""Clip-set classification (``config.task = "clip_set"``): GCF-Net's gated clip sets."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cfjax import metrics as metrics_lib
from cfjax.train import losses
from cfjax.train.tasks.base import Task, _eval_nll, _per_class_table, _require

__all__ = ["ClipSetTask"]


@dataclasses.dataclass(frozen=True)
class ClipSetTask(Task):
    """Clip-set classification (GCF-Net): CE + sparsity of the gates; accuracy, gate localisation;
    the eval ``loss`` is the same objective (no label smoothing).

    Batch: ``frames [B, N, L, H, W, 3]``, ``clip_mask [B, N]``, ``label [B]``, and for
    localisation ``relevant_clips [B, N]`` (clips with gate > 0.5 are predicted relevant).
    A short video's clips loop (all valid, the paper's padding) unless ``input.short_video``
    is ``"mask"`` (:class:`~cfjax.data.transform.VideoTransform`).

    ``sparsity_weight``: ``loss.sparsity_weight``, for the eval loss (the training objective).
    """

    name = "clip_set"
    best_metric = "top1"
    eval_loss = True
    sparsity_weight: float = 0.0

    @classmethod
    def from_config(cls, config) -> ClipSetTask:
        return cls(sparsity_weight=float(config.loss.get("sparsity_weight", 0.0)))

    def inputs(self, model, batch):
        _require(batch, ("frames",), self.name)
        return (batch["frames"],), {"clip_mask": batch.get("clip_mask")}

    def loss(self, outputs, batch, config, step=None):
        _require(batch, ("label",), self.name)
        logits = outputs["logits"]
        if "gates" in outputs:
            loss = losses.gcf_loss(
                logits,
                batch["label"],
                outputs["gates"],
                config.loss.sparsity_weight,
                batch.get("clip_mask"),
                config.loss.label_smoothing,
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
                out["localisation_iou"] = (
                    float(hits / (predicted | relevant).sum()) if (predicted | relevant).any() else float("nan")
                )
        table = metrics_lib.per_class_accuracy(results["scores"], results["label"], len(class_names))
        return out, _per_class_table({"count": table["count"], "top1": table["top1"]}, class_names)
