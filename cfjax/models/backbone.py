"""What every zoo backbone shares: stages, optional SGS (ATFR) and length buckets after it.

A backbone is a stem, a list of :class:`Stage` (``res2`` .. ``res5``) and a head.
:func:`run_backbone` runs them; with an :class:`SGSConfig` it inserts
:class:`~cfjax.layers.SimilarityGuidedSampling` at the end of one stage (before
that stage's last ReLU, as in the paper) and runs everything after it on a time
axis cut to the smallest length bucket that holds the batch's largest active-bin
count. Buckets are :func:`cfjax.ops.apply_in_length_bucket` with a lifted
``flax.linen.switch`` (``lax.switch``): every bucket is compiled once, only the
chosen one runs, and all clips in the batch take the same branch, so it works
unchanged under ``jax.jit`` with a data-parallel mesh.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from cfjax import ops
from cfjax.layers import SimilarityGuidedSampling

__all__ = ["SGSConfig", "Stage", "pool_time_space", "run_backbone", "run_stages"]

# A block: (x [B, T, H, W, C], mask [B, T] | None, activate) -> (x', mask').
# ``activate=False`` leaves out the block's final ReLU (SGS goes there).
Block = Callable[[Any, Any, bool], tuple[Any, Any]]


@dataclasses.dataclass(frozen=True)
class SGSConfig:
    """Where and how a backbone runs Similarity Guided Sampling.

    Attributes:
      stage: SGS runs after this stage's last block, before its final ReLU
        (``"res2"`` in the paper).
      kernel: ``"linear"`` | ``"kronecker"`` (sum of a bin's members, official) |
        ``"kronecker_mean"`` (their mean) | ``"linear_normalized"`` (``ops.sgs.KERNELS``).
      measure: ``"mean_distance"`` (official code) | ``"magnitude"`` (paper text).
      num_bins: number of bins; ``None`` means the temporal length at ``stage``.
      buckets: an int ``n`` for ``n`` evenly spaced lengths
        (``ops.length_buckets``), or explicit increasing lengths ending at
        ``num_bins``. ``1`` turns bucketing off (always the full length).
      embed_dim: width ``L`` of the similarity embedding.
    """

    stage: str = "res2"
    kernel: str = "linear"
    measure: str = "mean_distance"
    num_bins: int | None = None
    buckets: int | tuple[int, ...] = 4
    embed_dim: int = 8

    @classmethod
    def make(cls, sgs) -> SGSConfig | None:
        """From ``None``, an ``SGSConfig``, or a mapping (dict / ConfigDict) of its fields."""
        if sgs is None or isinstance(sgs, cls):
            return sgs
        if not isinstance(sgs, Mapping) and hasattr(sgs, "to_dict"):
            sgs = sgs.to_dict()
        if not isinstance(sgs, Mapping):
            raise TypeError(f"sgs: expected None, SGSConfig or a mapping, got {type(sgs).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(sgs) - known)
        if unknown:
            raise ValueError(f"sgs: unknown keys {unknown}; known keys are {sorted(known)}")
        values = dict(sgs)
        if isinstance(values.get("buckets"), (list, tuple)):
            values["buckets"] = tuple(int(b) for b in values["buckets"])
        return cls(**values)

    def bucket_lengths(self, length: int) -> tuple[int, ...]:
        """The padded lengths after SGS for ``length`` bins, checked."""
        if isinstance(self.buckets, int):
            return ops.length_buckets(length, self.buckets)
        return ops.check_buckets(self.buckets, length)


@dataclasses.dataclass(frozen=True)
class Stage:
    """A named list of blocks; ``temporal_stride`` is the product of its blocks' strides."""

    name: str
    blocks: tuple[Block, ...]
    temporal_stride: int = 1


def pool_time_space(x, mask):
    """Mean over time and space (valid steps only): ``[B, T, H, W, C] -> [B, C]``."""
    if mask is None:
        return jnp.mean(x, axis=(1, 2, 3))
    return ops.masked_mean(x, mask, axis=(1, 2, 3))


def run_stages(stages, x, mask, features: dict, sgs_stage: str | None = None):
    """Runs ``stages`` in order, storing each output (and mask) in ``features``; returns ``(x, mask)``."""
    for stage in stages:
        for i, block in enumerate(stage.blocks):
            activate = not (stage.name == sgs_stage and i == len(stage.blocks) - 1)
            x, mask = block(x, mask, activate)
        features[stage.name] = x
        if mask is not None:
            features[f"{stage.name}_mask"] = mask
    return x, mask


def _pad_time(a, length: int):
    return jnp.pad(a, [(0, 0), (0, length - a.shape[1])] + [(0, 0)] * (a.ndim - 2))


def run_backbone(
    module: nn.Module,
    x,
    mask,
    train: bool,
    *,
    stem: Callable,
    stages: list[Stage],
    head: Callable,
    sgs: SGSConfig | None,
    dtype: DTypeLike | None = None,
):
    """Runs stem -> stages (-> SGS -> bucketed rest) -> head inside ``module``'s compact call.

    Args:
      module: the calling module (``self``); the bucket switch is lifted over it.
      x: ``[B, T, H, W, C]`` video; mask: ``[B, T]`` bool or ``None``.
      stem: ``(x, mask) -> (x, mask)``; head: ``(x, mask) -> (logits [B, K], pooled [B, D])``.
      stages: ``res2`` .. ``res5`` in order.
      sgs: ``None`` for the plain backbone.
      dtype: computation dtype of the SGS layer.

    Returns:
      ``(logits, features)``: ``features`` holds ``stem`` and each stage's output
      ``[B, T', H', W', C']`` (after SGS padded back to the full bin count),
      ``{name}_mask`` where a mask exists, ``head`` (pooled ``[B, D]``), and for
      SGS models ``active_bins [B]`` (the SGS stage's output and mask are the
      ``num_bins`` bins, active first).
    """
    if x.ndim != 5:
        raise ValueError(f"x: expected video [B, T, H, W, C], got shape {x.shape}")
    if mask is not None:
        x = ops.zero_padded(x, mask)  # also checks the mask against x
    features = {}
    x, mask = stem(x, mask)
    features["stem"] = x
    if mask is not None:
        features["stem_mask"] = mask
    if sgs is None:
        x, mask = run_stages(stages, x, mask, features)
        logits, features["head"] = head(x, mask)
        return logits, features

    names = [s.name for s in stages]
    if sgs.stage not in names:
        raise ValueError(f"sgs.stage: expected one of {names}, got {sgs.stage!r}")
    split = names.index(sgs.stage) + 1
    x, mask = run_stages(stages[:split], x, mask, features, sgs_stage=sgs.stage)
    x, mask, active = SimilarityGuidedSampling(
        sgs.num_bins, sgs.kernel, sgs.measure, sgs.embed_dim, dtype=dtype, name="sgs"
    )(x, train, mask)
    x = jax.nn.relu(x)  # the activation SGS was placed before
    features[sgs.stage], features[f"{sgs.stage}_mask"], features["active_bins"] = x, mask, active
    full = x.shape[1]
    buckets = sgs.bucket_lengths(full)

    # Every branch must return equal shapes: stage outputs are padded back to the
    # length they have at the full bin count.
    stride = 1
    full_lengths = {}
    for stage in stages[split:]:
        stride *= stage.temporal_stride
        full_lengths[stage.name] = math.ceil(full / stride)

    def rest(x, mask):
        tail = {}
        y, m = run_stages(stages[split:], x, mask, tail)
        logits, pooled = head(y, m)
        tail = {k: _pad_time(v, full_lengths[k.removesuffix("_mask")]) for k, v in tail.items()}
        return logits, pooled, tail

    def lifted_switch(index, branches, operand):
        # the blocks attach to the lifted module through flax's context, so the branches ignore it
        return nn.switch(index, [lambda _, o, b=b: b(o) for b in branches], module, operand)

    logits, pooled, tail = ops.apply_in_length_bucket(rest, x, mask, buckets, switch=lifted_switch)
    features.update(tail)
    features["head"] = pooled
    return logits, features
