"""Non-local block (Wang et al., CVPR 2018), embedded-Gaussian form, mask-aware."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfjax import ops

__all__ = ["NonLocal"]


class NonLocal(nn.Module):
    """Self-attention over all space-time positions, added back as a residual.

    ``y = x + BN(W_out softmax(theta(x) phi(x)^T / sqrt(inner)) g(x))`` with
    1x1x1 convolutions ``theta``, ``phi``, ``g`` to ``inner`` channels (default
    ``C / 2``). ``pool`` max-pools ``phi`` and ``g`` spatially (e.g. 2 in the
    paper) to cut the cost. The output BN's scale starts at zero, so a new block
    is the identity. With a mask, padded time steps are never attended to and
    the output is zero there.

    ``__call__(x [B, T, H, W, C], train, mask [B, T] | None) -> [B, T, H, W, C]``.
    """

    inner: int | None = None
    pool: int = 1
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool, mask=None):
        if x.ndim != 5:
            raise ValueError(f"x: expected video [B, T, H, W, C], got shape {x.shape}")
        b, t, h, w, c = x.shape
        inner = self.inner or max(c // 2, 1)

        def proj(name):
            return nn.Conv(inner, (1, 1, 1), dtype=self.dtype, name=name)

        theta = proj("theta")(x).reshape(b, t * h * w, inner)
        keys_in = x
        if self.pool > 1:
            window = (1, self.pool, self.pool)
            keys_in = nn.max_pool(x, window, strides=window, padding="SAME")
        kt, kh, kw = keys_in.shape[1:4]
        phi = proj("phi")(keys_in).reshape(b, kt * kh * kw, inner)
        g = proj("g")(keys_in).reshape(b, kt * kh * kw, inner)

        logits = jnp.einsum("bqd,bkd->bqk", theta, phi) * (inner**-0.5)
        if mask is not None:
            key_valid = jnp.broadcast_to(ops.expand_mask(mask, keys_in)[..., 0], (b, kt, kh, kw))
            logits = jnp.where(key_valid.reshape(b, 1, -1), logits, jnp.finfo(logits.dtype).min)
        # at least float32 (bfloat16 logits lose the softmax), float64 stays exact
        attention = jax.nn.softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), axis=-1).astype(g.dtype)
        y = jnp.einsum("bqk,bkd->bqd", attention, g).reshape(b, t, h, w, inner)
        y = nn.Conv(c, (1, 1, 1), dtype=self.dtype, name="out")(y)
        y = nn.BatchNorm(
            use_running_average=not train,
            momentum=0.9,
            epsilon=1e-5,
            dtype=self.dtype,
            use_fast_variance=False,
            scale_init=nn.initializers.zeros,
            name="norm",
        )(y, mask=None if mask is None else ops.expand_mask(mask, y))
        y = x + y
        return y if mask is None else ops.zero_padded(y, mask)
