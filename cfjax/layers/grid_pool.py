"""Grid Pool and Grid Unpool (Coarse-Fine Networks) as Flax modules."""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfjax import ops
from cfjax.layers.common import ConvBN

__all__ = ["GridPool", "GridUnpool"]


class GridPool(nn.Module):
    """Learned temporal re-sampling: ``[B, T, H, W, C] -> [B, T / r + 1, H, W, C]`` and the grid.

    A score network predicts one confidence per output step: ``log2(r)``
    conv 3x3x3 stride 2 (with bias) + BN + ReLU blocks (``score_i``; two for
    the paper's ``r = 4``), a conv 1x3x3 with spatial stride 2 to one channel
    (``score_out``), and a spatial mean, giving ``s: [B, T / r]``. These are the
    official ``pool_1.conv1``/``bn1``, ``conv2``/``bn2`` and ``conv3``
    (x3d_coarse.py L362-391).
    ``ops.sampling_grid`` turns it into a monotone grid ``[B, T / r + 1]`` in
    ``[0, 1]`` (denser where confident) and ``ops.grid_pool`` linearly samples
    the input there. Everything is differentiable, the grid included.

    Attributes:
      reduction: ``r``, a power of two dividing ``T``.
      hidden: channels of the score network (default: the input's).
      temperature: scores are scaled by it before the sigmoid (paper: 1/2).
    """

    reduction: int = 4
    hidden: int | None = None
    temperature: float = 0.5
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool):
        """Returns ``(pooled [B, K + 1, H, W, C], grid [B, K + 1])`` with ``K = T / reduction``."""
        if x.ndim != 5:
            raise ValueError(f"x: expected [B, T, H, W, C], got shape {x.shape}")
        r = self.reduction
        if r < 2 or r & (r - 1):
            raise ValueError(f"reduction: expected a power of two >= 2, got {r}")
        if x.shape[1] % r:
            raise ValueError(f"x: the temporal length {x.shape[1]} must be divisible by reduction = {r}")
        hidden = self.hidden or x.shape[-1]
        s = x
        for i in range(int(math.log2(r))):
            s = ConvBN(hidden, (3, 3, 3), (2, 2, 2), use_bias=True, dtype=self.dtype, name=f"score_{i}")(s, train)
        s = nn.Conv(
            1, (1, 3, 3), strides=(1, 2, 2), padding=((0, 0), (1, 1), (1, 1)), dtype=self.dtype, name="score_out"
        )(s)
        scores = jnp.mean(s[..., 0], axis=(2, 3)).astype(jnp.promote_types(s.dtype, jnp.float32))
        grid = ops.sampling_grid(scores, self.temperature)
        return ops.grid_pool(x, grid).astype(x.dtype), grid


class GridUnpool(nn.Module):
    """Per-step values on the grid back to uniform time, at ``length`` steps.

    ``__call__(y [B, K + 1, ...], grid [B, K + 1]) -> [B, length, ...]``:
    ``ops.grid_unpool`` (values at uniform times ``j / K``) followed by
    align-corners linear upsampling to ``length`` (the input length ``T``).
    No parameters; differentiable in ``y`` and ``grid``.
    """

    length: int

    @nn.compact
    def __call__(self, y, grid):
        uniform = ops.grid_unpool(y, grid)
        return ops.upsample_linear(uniform, self.length).astype(jax.dtypes.result_type(y))
