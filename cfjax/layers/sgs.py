"""Similarity Guided Sampling as a layer: the learned similarity net around ``cfjax.ops.sgs``."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfjax import ops
from cfjax.layers.common import MaskedBatchNorm

__all__ = ["SimilarityGuidedSampling"]


class SimilarityGuidedSampling(nn.Module):
    """SGS (Fayyaz et al., CVPR 2021): merges redundant frames into ``num_bins`` bins.

    Similarity net: spatial mean -> Dense(C / 2) -> ReLU -> Dense(``embed_dim``)
    -> BatchNorm over batch and valid time -> ``z [B, T, L]``; then
    ``ops.similarity_distance(z, measure)`` and
    ``ops.similarity_guided_sampling(x, d, num_bins, kernel)``. ``kernel`` is one of
    ``ops.sgs.KERNELS``: ``"kronecker"`` sums a bin's members (official code),
    ``"kronecker_mean"`` averages them.

    ``__call__(x [B, T, H, W, C], train, mask [B, T] | None)`` returns
    ``(out [B, num_bins, H, W, C], out_mask [B, num_bins] bool, active [B] int32)``:
    active bins first, zeros after them, and the per-clip count of active bins.
    """

    num_bins: int | None = None
    kernel: str = "linear"
    measure: str = "mean_distance"
    embed_dim: int = 8
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool, mask=None):
        if x.ndim != 5:
            raise ValueError(f"x: expected video [B, T, H, W, C], got shape {x.shape}")
        if self.kernel not in ops.sgs.KERNELS:
            raise ValueError(f"kernel: expected one of {ops.sgs.KERNELS}, got {self.kernel!r}")
        if self.measure not in ops.sgs.MEASURES:
            raise ValueError(f"measure: expected one of {ops.sgs.MEASURES}, got {self.measure!r}")
        channels = x.shape[-1]
        pooled = jnp.mean(x, axis=(2, 3))  # [B, T, C]
        h = jax.nn.relu(nn.Dense(max(channels // 2, 1), dtype=self.dtype, name="fc1")(pooled))
        z = nn.Dense(self.embed_dim, dtype=self.dtype, name="fc2")(h)
        z = MaskedBatchNorm(dtype=self.dtype, name="norm")(z, train, mask)
        d = ops.similarity_distance(z.astype(jnp.promote_types(z.dtype, jnp.float32)), self.measure, mask)
        self.sow("intermediates", "distance", d)  # for plots: ops.sgs.bin_assignment(d)
        out, out_mask = ops.similarity_guided_sampling(x, d, self.num_bins, self.kernel, mask)
        return out, out_mask, ops.active_bin_count(out_mask)
