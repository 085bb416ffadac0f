"""Multi-stage Fusion (Coarse-Fine Networks): fine-stream context mixed into the coarse stream.

Per fine level (X3D ``res2`` .. ``res5``, and ``conv5`` for the logits), a
:class:`FilterAlign` block (the official ``RewightLayer``) weighs the fine
steps with a learned sigmoid attention, aligns them with the coarse grid by
Gaussians centred at the grid positions (``ops.gaussian_alignment``),
aggregates them per coarse step (``ops.aligned_aggregate``, valid fine steps
only) and turns the result into a bias and a scale with two 2-layer MLPs.
:class:`MultiStageFusion` then, at each fusion depth of the coarse stream (the
official ``MixingLayer``), max-pools every level's bias and scale to the
current spatial size, concatenates them and mixes them in as
``x * sigmoid(conv(cat_scale)) + conv(cat_bias)``; a last gate does
``logits * sigmoid(scale) + bias`` with the spatially pooled ``conv5`` level.
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
    """Attention filter, Gaussian-aligned aggregation and bias / scale MLPs of one fine level.

    ``__call__(fine [B, Lf, h, w, C], fine_mask [B, Lf], weights [B, Lf, K + 1])
    -> (bias, scale)``, each ``[B, K + 1, h, w, F]`` (``[B, K + 1, F]`` with
    ``pool``), ``F = features`` (default ``C``). Per location (1x1 convs as
    Dense layers):

    - attention ``a = sigmoid(attention_out(relu(attention_hidden(fine))))``, one channel;
    - ``aligned[k] = sum_t a_t G[t, k] m_t f_t / (sum_t a_t G[t, k] m_t + 1e-6)``;
    - ``bias = bias_out(relu(bias_hidden(aligned)))``,
      ``scale = scale_out(relu(scale_hidden(aligned)))`` (no sigmoid here).

    ``pool`` averages ``aligned`` over space before the MLPs (the official
    ``pool=True`` of the logit gate ``rw6``: attention and aggregation stay per
    location). Official names: ``at1``, ``at2``, ``fc1``,
    ``fc2``, ``fc3``, ``fc4`` = ``attention_hidden``, ``attention_out``,
    ``bias_hidden``, ``bias_out``, ``scale_hidden``, ``scale_out``.
    """

    features: int | None = None
    pool: bool = False
    dtype: Any = None

    @nn.compact
    def __call__(self, fine, fine_mask, weights):
        channels = fine.shape[-1]
        features = self.features or channels

        def dense(width, name):
            return nn.Dense(width, dtype=self.dtype, name=name)

        attention = dense(1, "attention_out")(jax.nn.relu(dense(channels, "attention_hidden")(fine)))
        aligned = ops.aligned_aggregate(fine, jax.nn.sigmoid(attention), weights, fine_mask)
        if self.pool:
            aligned = jnp.mean(aligned, axis=(2, 3))
        bias = dense(features, "bias_out")(jax.nn.relu(dense(channels, "bias_hidden")(aligned)))
        scale = dense(features, "scale_out")(jax.nn.relu(dense(channels, "scale_hidden")(aligned)))
        return bias, scale


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
      normalize_over: Gaussian normalisation, ``"valid"`` (default: padded
        batches give each clip's own result) or ``"all"`` (the official code,
        padding included); see ``ops.gaussian_alignment``.

    Submodules (official ``rw2`` .. ``rw6``, ``mix2`` .. ``mix5``):
    ``filters_<level>`` (:class:`FilterAlign`, one per level), ``gate_filter``
    (``features=num_classes``, ``pool=True``), and per depth ``d``
    ``mix_bias_<d>`` (``conv_at``) and ``mix_scale_<d>`` (``conv_at2``).
    """

    depth_widths: Sequence[int]
    num_classes: int
    levels: Sequence[str] = ("res2", "res3", "res4", "res5")
    gate_level: str = "conv5"
    sigma: float = 1 / 8
    normalize_over: str = "valid"
    dtype: Any = None

    def setup(self):
        self.filters = {level: FilterAlign(dtype=self.dtype) for level in self.levels}
        self.gate_filter = FilterAlign(self.num_classes, pool=True, dtype=self.dtype)
        self.mix_scale = [nn.Dense(w, dtype=self.dtype) for w in self.depth_widths]
        self.mix_bias = [nn.Dense(w, dtype=self.dtype) for w in self.depth_widths]

    def align(self, fine: Mapping[str, Any], fine_mask, grid, offset, span):
        """Filters and aligns every fine level with the coarse grid.

        Args:
          fine: ``{level: [B, Lf, h_l, w_l, C_l]}`` for ``levels`` and ``gate_level``.
          fine_mask: ``[B, Lf]`` bool, valid fine steps first.
          grid: ``[B, K + 1]`` Grid Pool positions in ``[0, 1]``.
          offset: ``[B]`` fine step at which the coarse clip starts.
          span: length of the coarse clip in fine steps (scalar or ``[B]``).

        Returns:
          ``{"bias": [...], "scale": [...]}`` (one ``[B, K + 1, h_l, w_l, C_l]``
          per level), ``"gate_bias"`` and ``"gate_scale"`` (``[B, K + 1,
          num_classes]``, the scale before its sigmoid) and ``"alignment"``
          (the Gaussian weights ``[B, Lf, K + 1]``).
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
        weights = ops.gaussian_alignment(grid, fine_mask, offset, span, self.sigma, self.normalize_over)
        biases, scales = [], []
        for level in self.levels:
            bias, scale = self.filters[level](fine[level], fine_mask, weights.astype(fine[level].dtype))
            biases.append(bias)
            scales.append(scale)
        gate = fine[self.gate_level]
        gate_bias, gate_scale = self.gate_filter(gate, fine_mask, weights.astype(gate.dtype))
        return {"bias": biases, "scale": scales, "gate_bias": gate_bias, "gate_scale": gate_scale,
                "alignment": weights}

    def mix(self, depth: int, x, aligned):
        """``x * sigmoid(conv(cat_scale)) + conv(cat_bias)`` at fusion depth ``depth``.

        ``x: [B, K + 1, H, W, depth_widths[depth]]``. Every level's bias and
        scale are resized to ``H x W`` with ``ops.adaptive_max_pool`` (the
        official ``adaptive_max_pool2d``; for fine maps of 7x7 or 1x1 this is
        exactly the official route through its fixed 56/28/14/7 sizes at any
        crop size) and concatenated in ``levels`` order.
        """
        if x.shape[-1] != self.depth_widths[depth]:
            raise ValueError(
                f"x: expected {self.depth_widths[depth]} channels at fusion depth {depth}, got shape {x.shape}"
            )
        size = x.shape[2:4]
        scale = jnp.concatenate([ops.adaptive_max_pool(s, size) for s in aligned["scale"]], axis=-1)
        bias = jnp.concatenate([ops.adaptive_max_pool(b, size) for b in aligned["bias"]], axis=-1)
        return x * jax.nn.sigmoid(self.mix_scale[depth](scale)) + self.mix_bias[depth](bias)

    def gate_logits(self, logits, aligned):
        """``logits [B, K + 1, classes] * sigmoid(gate_scale) + gate_bias`` (official ``rw6``)."""
        return logits * jax.nn.sigmoid(aligned["gate_scale"]) + aligned["gate_bias"]
