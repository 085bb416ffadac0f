"""Multi-stage Fusion (Coarse-Fine Networks): fine-stream context mixed into the coarse stream.

Per fine level (X3D ``res2`` .. ``res5``, and ``conv5`` for the logits), a
:class:`FilterAlign` block weighs the fine steps with a learned sigmoid
attention, aligns them with the coarse grid by Gaussians centred at the grid
positions (``ops.gaussian_alignment``) and aggregates them per coarse step
(``ops.aligned_aggregate``, valid fine steps only). :class:`MultiStageFusion`
then, at each fusion depth of the coarse stream, pools every level's scale and
bias projections to the current spatial size, concatenates them and mixes them
in as ``x * sigmoid(conv(cat_scale)) + conv(cat_bias)``; a last gate does the
same to the per-step logits with the aligned fine ``conv5`` features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfjax import ops

__all__ = ["FilterAlign", "MultiStageFusion"]


class FilterAlign(nn.Module):
    """Attention filter + Gaussian-aligned aggregation of one fine level.

    ``__call__(fine [B, Lf, h, w, C], fine_mask [B, Lf], weights [B, Lf, K + 1])
    -> (aligned [B, K + 1, h, w, C], (scale, bias) | None)``. The attention is
    ``sigmoid(conv1x1(relu(conv1x1(fine))))`` with one output channel; with
    ``project``, ``scale`` and ``bias`` are 1x1x1 projections of ``aligned`` to
    ``C`` channels each.
    """

    project: bool = True
    dtype: Any = None

    @nn.compact
    def __call__(self, fine, fine_mask, weights):
        channels = fine.shape[-1]
        attention = nn.Dense(channels, dtype=self.dtype, name="attention_hidden")(fine)
        attention = nn.Dense(1, dtype=self.dtype, name="attention_out")(jax.nn.relu(attention))
        aligned = ops.aligned_aggregate(fine, jax.nn.sigmoid(attention), weights, fine_mask)
        if not self.project:
            return aligned, None
        scale = nn.Dense(channels, dtype=self.dtype, name="scale")(aligned)
        bias = nn.Dense(channels, dtype=self.dtype, name="bias")(aligned)
        return aligned, (scale, bias)


class MultiStageFusion(nn.Module):
    """All fusion parameters of a Coarse-Fine network; used through three methods.

    1. ``aligned = fusion.align(fine, fine_mask, grid, offset, span)`` once per clip;
    2. ``x = fusion.mix(depth, x, aligned)`` at each fusion depth of the coarse stream;
    3. ``logits = fusion.gate_logits(logits, aligned)`` on the per-step logits.

    Attributes:
      depth_widths: coarse channels at each fusion depth (X3D-M: 24, 48, 96, 192).
      num_classes: width of the logits that :meth:`gate_logits` gates.
      levels: fine levels mixed at every depth (their widths sum to the
        concatenation's channels: 360 for X3D-M).
      gate_level: fine level that gates the logits.
      sigma: Gaussian width as a fraction of the number of valid fine steps.
    """

    depth_widths: Sequence[int]
    num_classes: int
    levels: Sequence[str] = ("res2", "res3", "res4", "res5")
    gate_level: str = "conv5"
    sigma: float = 1 / 8
    dtype: Any = None

    def setup(self):
        self.filters = {level: FilterAlign(True, self.dtype) for level in self.levels}
        self.gate_filter = FilterAlign(False, self.dtype)
        self.mix_scale = [nn.Dense(w, dtype=self.dtype) for w in self.depth_widths]
        self.mix_bias = [nn.Dense(w, dtype=self.dtype) for w in self.depth_widths]
        self.logit_scale = nn.Dense(self.num_classes, dtype=self.dtype)
        self.logit_bias = nn.Dense(self.num_classes, dtype=self.dtype)

    def align(self, fine: Mapping[str, Any], fine_mask, grid, offset, span):
        """Filters and aligns every fine level with the coarse grid.

        Args:
          fine: ``{level: [B, Lf, h_l, w_l, C_l]}`` for ``levels`` and ``gate_level``.
          fine_mask: ``[B, Lf]`` bool, valid fine steps first.
          grid: ``[B, K + 1]`` Grid Pool positions in ``[0, 1]``.
          offset: ``[B]`` fine step at which the coarse clip starts.
          span: length of the coarse clip in fine steps (scalar or ``[B]``).

        Returns:
          ``{"scale": [...], "bias": [...]}`` (one ``[B, K + 1, h_l, w_l, C_l]``
          per level) and ``"gate"``: the aligned gate level pooled over space,
          ``[B, K + 1, C]``.
        """
        missing = [k for k in (*self.levels, self.gate_level) if k not in fine]
        if missing:
            raise ValueError(f"fine: missing levels {missing}; expected keys {[*self.levels, self.gate_level]}")
        for level in (*self.levels, self.gate_level):
            f = fine[level]
            if f.ndim != 5 or f.shape[:2] != fine_mask.shape:
                raise ValueError(
                    f"fine[{level!r}]: expected [B, Lf, h, w, C] with [B, Lf] = {fine_mask.shape} "
                    f"(the fine mask), got shape {f.shape}"
                )
        weights = ops.gaussian_alignment(grid, fine_mask, offset, span, self.sigma)
        scales, biases = [], []
        for level in self.levels:
            _, (scale, bias) = self.filters[level](fine[level], fine_mask, weights.astype(fine[level].dtype))
            scales.append(scale)
            biases.append(bias)
        gate, _ = self.gate_filter(fine[self.gate_level], fine_mask, weights.astype(fine[self.gate_level].dtype))
        return {"scale": scales, "bias": biases, "gate": jnp.mean(gate, axis=(2, 3))}

    def mix(self, depth: int, x, aligned):
        """``x * sigmoid(conv(cat_scale)) + conv(cat_bias)`` at fusion depth ``depth``.

        ``x: [B, K + 1, H, W, depth_widths[depth]]``; every level's projections
        are average-pooled (or repeated) to ``H x W`` before concatenation.
        """
        if x.shape[-1] != self.depth_widths[depth]:
            raise ValueError(
                f"x: expected {self.depth_widths[depth]} channels at fusion depth {depth}, got shape {x.shape}"
            )
        size = x.shape[2:4]
        scale = jnp.concatenate([ops.adaptive_average_pool(s, size) for s in aligned["scale"]], axis=-1)
        bias = jnp.concatenate([ops.adaptive_average_pool(b, size) for b in aligned["bias"]], axis=-1)
        return x * jax.nn.sigmoid(self.mix_scale[depth](scale)) + self.mix_bias[depth](bias)

    def gate_logits(self, logits, aligned):
        """``logits [B, K + 1, classes] * sigmoid(W_s g) + W_b g`` with the aligned gate features ``g``."""
        gate = aligned["gate"]
        return logits * jax.nn.sigmoid(self.logit_scale(gate)) + self.logit_bias(gate)
