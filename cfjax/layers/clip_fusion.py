"""GCF-Net layers: bi-directional inter-clip fusion and gated clip-wise attention.

Clip descriptors are ``[B, N, D]`` with an optional ``clip_mask [B, N]``
(valid clips first); masked clips never influence valid ones.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn

from cfjax import ops

__all__ = ["GatedClipAttention", "InterClipFusion"]


class InterClipFusion(nn.Module):
    """One layer of scaled dot-product self-attention across the clips of a video.

    ``__call__(x [B, N, D], clip_mask [B, N] | None) -> [B, N, D]``: query, key
    and value projections, ``ops.inter_clip_attention`` (``num_heads`` heads),
    output projection; masked clips come out as zeros. No positional encoding:
    the layer is equivariant to permutations of the clips.
    """

    num_heads: int = 1
    dtype: Any = None

    @nn.compact
    def __call__(self, x, clip_mask=None):
        dim = x.shape[-1]
        q, k, v = (nn.Dense(dim, dtype=self.dtype, name=n)(x) for n in ("query", "key", "value"))
        fused = nn.Dense(dim, dtype=self.dtype, name="out")(ops.inter_clip_attention(q, k, v, self.num_heads, clip_mask))
        return fused if clip_mask is None else ops.zero_padded(fused, clip_mask)


class GatedClipAttention(nn.Module):
    """Squeeze-excite across clips: ``[B, N, D] -> gates [B, N]`` in (0, 1).

    ``s_n = mean_d x_n``, ``a = sigmoid(W2 relu(W1 s + b1) + b2)`` with
    ``W1: [N, hidden]``, ``W2: [hidden, N]`` (``hidden`` defaults to ``N``), so
    the number of clips ``N`` is fixed by the parameters. Masked clips get 0.
    """

    hidden: int | None = None
    dtype: Any = None

    @nn.compact
    def __call__(self, x, clip_mask=None):
        clips = x.shape[1]
        hidden = self.hidden or clips
        init = nn.initializers.lecun_normal()
        w1 = self.param("w1", init, (clips, hidden))
        b1 = self.param("b1", nn.initializers.zeros, (hidden,))
        w2 = self.param("w2", init, (hidden, clips))
        b2 = self.param("b2", nn.initializers.zeros, (clips,))
        w1, b1, w2, b2 = nn.dtypes.promote_dtype(w1, b1, w2, b2, dtype=self.dtype or x.dtype)
        return ops.clip_gates(x, w1, b1, w2, b2, clip_mask)
