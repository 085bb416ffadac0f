"""GCF-Net (Hsiao, Chen, Ho, 2021): gated fusion of many clips of a video.

A shared zoo backbone describes each of the ``N`` clips; the head projects the
descriptors to ``dim``, fuses them with ``fusion_layers`` layers of
bi-directional inter-clip attention, gates each clip with a squeeze-excite
across clips, adds the projected input back, averages the valid clips into a
video descriptor and classifies it. The gates localise the action: clips with
``gate > 0.5`` (see :func:`cfjax.metrics.gate_intervals`).

Ablations of the paper are field switches: ``fusion_layers=0`` (gating only),
``gating=False`` (fusion only); two more heads replace fusion and gates:
``head="mean_fusion"`` (the mean of the ``N`` clip descriptors, classified) and
``head="central"`` (the central clip's descriptor only), both trained on ``N``
clips like GCF-Net. They are not the paper's C-Clip / D-Clips baselines, which are
single-clip classifiers whose predictions are averaged at test time (the
``baseline=cclip`` / ``dclips`` variants of ``configs/gcf.py``). ``backbone=None`` is the
head-only mode on precomputed clip descriptors.

The default ``dim = 240`` is the width at which this head (one fusion layer, 2048-d
descriptors of 10 clips, 600 classes) has the paper's cost: 0.868 M parameters and
7.41 M multiply-adds (14.8 MFLOPs at 2 FLOPs per multiply-add) against 0.86 M and
15 MFLOPs (docs/design.md, "GCF-Net head cost").
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
from jax.typing import DTypeLike

from cfjax import ops
from cfjax.layers import GatedClipAttention, InterClipFusion

__all__ = ["HEADS", "GCFNet"]

HEADS = ("gcf", "mean_fusion", "central")


class GCFNet(nn.Module):
    """Video classifier over ``N`` clips.

    ``__call__(inputs, clip_mask=None, train=False)``

    Args (of ``__call__``):
      inputs: clips ``[B, N, T, H, W, C]`` (with a ``backbone``) or clip
        descriptors ``[B, N, D0]`` (``backbone=None``).
      clip_mask: ``[B, N]`` bool, valid clips first (default: all valid).
        Masked clips change nothing: not the descriptors, gates or logits of
        the valid ones, nor the backbone's BatchNorm statistics.

    Returns:
      ``{"logits": [B, num_classes], "clip_features": [B, N, D0]}`` and, when
      gating, ``"gates": [B, N]`` (0 at masked clips).

    Attributes:
      num_classes: video classes.
      backbone: a zoo model built with ``num_classes=0`` (a feature extractor,
        e.g. ``build({"name": "resnext101", "num_classes": 0})``), shared by
        all clips, or ``None``.
      dim: width ``D`` of the projected descriptors (240: the paper's head cost).
      fusion_layers: stacked :class:`~cfjax.layers.InterClipFusion` layers (0: none).
      num_heads: attention heads per fusion layer.
      gating: use :class:`~cfjax.layers.GatedClipAttention`.
      gate_hidden: hidden width of the gate network (default ``N``).
      head: ``"gcf"``, or an ablation without fusion and gates: ``"mean_fusion"``,
        ``"central"``.
      dropout_rate: dropout on the video descriptor before the classifier; 0 (the
        paper describes none). Kept as a field so older configs still build.
      dtype: computation dtype, e.g. ``jnp.bfloat16``; ``None`` promotes the inputs' and the float32 parameters' dtypes.
    """

    num_classes: int = 600
    backbone: nn.Module | None = None
    dim: int = 240
    fusion_layers: int = 1
    num_heads: int = 1
    gating: bool = True
    gate_hidden: int | None = None
    head: str = "gcf"
    dropout_rate: float = 0.0
    dtype: DTypeLike | None = None

    @nn.compact
    def __call__(self, inputs, clip_mask=None, train: bool = False):
        if self.head not in HEADS:
            renamed = " ('average' is now 'mean_fusion')" if self.head == "average" else ""
            raise ValueError(f"head: expected one of {HEADS}, got {self.head!r}{renamed}")
        if clip_mask is not None and (clip_mask.dtype != jnp.bool_ or clip_mask.shape != inputs.shape[:2]):
            raise ValueError(
                f"clip_mask: expected bool [B, N] = {inputs.shape[:2]}, got {clip_mask.dtype} {clip_mask.shape}"
            )
        x = self._describe(inputs, clip_mask, train)
        batch, clips = x.shape[:2]
        mask = jnp.ones((batch, clips), bool) if clip_mask is None else clip_mask
        out = {"clip_features": x}
        if self.head == "mean_fusion":
            video = ops.masked_mean(x, mask)
        elif self.head == "central":
            central = (jnp.sum(mask, axis=1) - 1) // 2  # middle of the valid clips
            video = jnp.take_along_axis(x, jnp.maximum(central, 0)[:, None, None], axis=1)[:, 0]
        else:
            projected = ops.zero_padded(nn.Dense(self.dim, dtype=self.dtype, name="project")(x), mask)
            fused = projected
            for i in range(self.fusion_layers):
                fused = InterClipFusion(self.num_heads, self.dtype, name=f"fusion_{i}")(fused, mask)
            gates = jnp.ones((batch, clips), fused.dtype)
            if self.gating:
                gates = GatedClipAttention(self.gate_hidden, self.dtype, name="gates")(fused, mask)
                out["gates"] = gates
            video = ops.gated_clip_fusion(fused, gates, projected, mask)
        if self.dropout_rate:
            video = nn.Dropout(self.dropout_rate, deterministic=not train, name="dropout")(video)
        out["logits"] = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(video)
        return out

    def _describe(self, inputs, clip_mask, train):
        """Clip descriptors ``[B, N, D0]``: the inputs, or the shared backbone on every clip."""
        if self.backbone is None:
            if inputs.ndim != 3:
                raise ValueError(
                    f"inputs: GCFNet without a backbone expects clip descriptors [B, N, D0], got shape {inputs.shape}"
                )
            return inputs if clip_mask is None else ops.zero_padded(inputs, clip_mask)
        if inputs.ndim != 6:
            raise ValueError(
                f"inputs: GCFNet with a backbone expects clips [B, N, T, H, W, C], got shape {inputs.shape}"
            )
        if getattr(self.backbone, "num_classes", 0):
            raise ValueError(
                f"backbone: expected a feature extractor built with num_classes=0, got "
                f"{type(self.backbone).__name__} with num_classes={self.backbone.num_classes}"
            )
        if clip_mask is not None:
            inputs = ops.zero_padded(inputs, clip_mask)
        batch, clips, length = inputs.shape[:3]
        frames = inputs.reshape((batch * clips,) + inputs.shape[2:])
        # One batch of B * N clips (the same weights for every clip, as vmap would give);
        # masked clips become fully padded clips, so they stay out of BatchNorm statistics.
        time_mask = None
        if clip_mask is not None:
            time_mask = jnp.repeat(clip_mask.reshape(-1, 1), length, axis=1)
        features = self.backbone(frames, train=train, mask=time_mask)
        features = features.reshape(batch, clips, -1)
        return features if clip_mask is None else ops.zero_padded(features, clip_mask)
