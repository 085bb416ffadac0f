"""Controlled probes of trained adaptive models on fresh synthetic videos.

:func:`sgs_bins_by_redundancy`: how many SGS bins an ATFR model keeps as a clip gets more
static. The synthetic ``classification`` generator's ``redundancy`` r is the fraction of frame
transitions in which nothing moves (one contiguous hold), so r = 1 is a still video and r = 0
moves at every step.
"""

from __future__ import annotations

import jax
import numpy as np

from cfjax.data import synthetic
from cfjax.train.loop import Experiment

__all__ = ["sgs_bins_by_redundancy"]


def sgs_bins_by_redundancy(
    exp: Experiment, state, levels=(0.0, 0.25, 0.5, 0.75, 1.0), clips_per_level: int = 64, seed: int = 1
) -> list[dict]:
    """Mean active SGS bins and top-1 of ``exp``'s model per redundancy level.

    Each level gets ``clips_per_level`` new synthetic clips (seeds ``(seed, level index, i)``,
    8 classes in turn) of exactly the frames the model sees: ``(clip_length - 1) * stride + 1``
    frames, the centred clip of the evaluation transform, so the hold covers the fraction ``r``
    of the clip. Returns one row per level: ``redundancy``, ``active_bins`` (mean), ``std``,
    ``top1``.
    """
    if exp.config.task != "classification" or not exp.model_config.get("sgs"):
        raise ValueError(
            f"sgs_bins_by_redundancy: needs a classification model with SGS, got task "
            f"{exp.config.task!r} and model {exp.model_config.get('name')!r} without 'sgs'"
        )
    transform = exp.eval_transform
    num_frames = (transform.clip_length - 1) * transform.stride + 1
    variables = exp.variables(state)

    @jax.jit
    def run(frames, mask):
        logits, features = exp.model.apply(variables, frames, train=False, mask=mask, return_features=True)
        return logits.argmax(-1), features["active_bins"]

    rows = []
    for li, level in enumerate(levels):
        batch, labels = [], []
        for i in range(clips_per_level):
            label = i % synthetic.NUM_CLASSES
            video = synthetic.classification((seed, li, i), num_frames=num_frames, redundancy=level, label=label)
            example = transform(video, np.random.default_rng(0))
            batch.append(example["frames"])
            labels.append(label)
        frames = np.stack(batch)
        predicted, bins = jax.device_get(run(frames, np.ones(frames.shape[:2], bool)))
        bins = np.asarray(bins, np.float64)
        rows.append(
            {
                "redundancy": float(level),
                "active_bins": float(bins.mean()),
                "std": float(bins.std()),
                "top1": float(np.mean(np.asarray(predicted) == np.asarray(labels))),
            }
        )
    return rows
