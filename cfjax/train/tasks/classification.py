"""Video classification (``config.task = "classification"``): top-1 / top-5 over views."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cfjax import metrics as metrics_lib
from cfjax.models.registry import returns_features
from cfjax.train import losses
from cfjax.train.tasks.base import Task, _eval_nll, _per_class_table, _require

__all__ = ["ClassificationTask"]


def _pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@dataclasses.dataclass(frozen=True)
class ClassificationTask(Task):
    """Video classification: softmax CE; top-1 / top-5, multi-view softmax averaging; the eval
    ``loss`` is the cross-entropy of that averaged prediction (no label smoothing).

    Batch: ``frames [B, T, H, W, 3]`` (or ``[B, V, T, H, W, 3]`` views), ``frame_mask``,
    ``label [B]``. SGS models also report active bins (and, when the data has a
    ``redundancy``, how they vary with it).

    ``return_features``: call the model with ``return_features=True`` (a zoo backbone,
    :func:`cfjax.models.registry.returns_features` of ``model.name``), for its active bins.
    """

    name = "classification"
    best_metric = "top1"
    eval_loss = True
    return_features: bool = False

    @classmethod
    def from_config(cls, config) -> ClassificationTask:
        return cls(return_features=returns_features(config.model.get("name")))

    def inputs(self, model, batch):
        _require(batch, ("frames",), self.name)
        frames, mask = batch["frames"], batch.get("frame_mask")
        if frames.ndim == 6:  # views -> one batch of B * V clips
            frames = frames.reshape((-1,) + frames.shape[2:])
            mask = None if mask is None else mask.reshape((-1,) + mask.shape[2:])
        kwargs = {"mask": mask}
        if self.return_features:
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
