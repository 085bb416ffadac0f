"""GCF-Net clip fusion: inter-clip attention, clip gates, gated fusion, sparsity.

Clip descriptors are ``[B, N, D]`` (N clips per video) with an optional
``clip_mask [B, N]`` (valid clips first). Masked clips have no influence on the
valid ones and come out as zeros. Parameters are passed in as arrays; the Flax
layers own them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfjax.ops._checks import check_floating, check_mask, check_rank
from cfjax.ops.masking import masked_mean, zero_padded

__all__ = ["clip_gates", "gated_clip_fusion", "inter_clip_attention", "sparsity_loss"]


def _clip_mask(clip_mask, x):
    if clip_mask is None:
        return jnp.ones(x.shape[:2], bool)
    check_mask(clip_mask, x, "clip_mask")
    return clip_mask


def inter_clip_attention(query, key, value, num_heads: int = 1, clip_mask=None):
    """Multi-head scaled dot-product attention over the clip axis.

    Args:
      query, key, value: ``[B, N, D]`` projected clip descriptors; ``D`` is
        split into ``num_heads`` heads of ``D / num_heads``.
      num_heads: number of heads.
      clip_mask: optional ``[B, N]`` bool; masked clips are not attended to
        and their outputs are zero.

    Returns:
      ``[B, N, D]``: per head ``softmax(q k^T / sqrt(D / num_heads)) v``, heads
      concatenated (the output projection belongs to the layer).
    """
    for name, a in (("query", query), ("key", key), ("value", value)):
        check_rank(name, a, 3, "[B, N, D]")
        check_floating(name, a)
    if not (query.shape == key.shape and key.shape[:2] == value.shape[:2]):
        raise ValueError(
            f"query, key, value: expected [B, N, D] with equal B, N (and D for query, key), "
            f"got {query.shape}, {key.shape}, {value.shape}"
        )
    if query.shape[-1] % num_heads or value.shape[-1] % num_heads:
        raise ValueError(
            f"num_heads: must divide D = {query.shape[-1]} and {value.shape[-1]}, got {num_heads}"
        )
    mask = _clip_mask(clip_mask, query)
    batch, clips = query.shape[:2]

    def heads(a):
        return a.reshape(batch, clips, num_heads, a.shape[-1] // num_heads)

    # Written out rather than jax.nn.dot_product_attention, whose softmax is
    # always float32: float64 runs must stay exact.
    q, k, v = heads(query), heads(key), heads(value)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.asarray(q.shape[-1], q.dtype))
    logits = jnp.where(mask[:, None, None, :], logits, jnp.finfo(logits.dtype).min)
    probs = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs, v)
    return zero_padded(out.reshape(batch, clips, value.shape[-1]), mask)


def clip_gates(features, w1, b1, w2, b2, clip_mask=None):
    """Squeeze-excite across clips: one gate in (0, 1) per clip.

    ``s_n = mean_d features[n]``; ``a = sigmoid(relu(s W1 + b1) W2 + b2)``.

    Args:
      features: ``[B, N, D]`` fused clip descriptors.
      w1: ``[N, R]``, b1: ``[R]``, w2: ``[R, N]``, b2: ``[N]`` excitation weights.
      clip_mask: optional ``[B, N]`` bool; masked clips enter as ``s_n = 0``
        and get gate 0.

    Returns:
      ``[B, N]`` gates.
    """
    check_rank("features", features, 3, "[B, N, D]")
    check_floating("features", features)
    clips = features.shape[1]
    expected = {"w1": (clips, None), "b1": (None,), "w2": (None, clips), "b2": (clips,)}
    for name, a in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)):
        want = expected[name]
        if jnp.ndim(a) != len(want) or any(w is not None and s != w for s, w in zip(jnp.shape(a), want)):
            raise ValueError(
                f"{name}: expected shapes w1 [N, R], b1 [R], w2 [R, N], b2 [N] with N = {clips}, "
                f"got {name} {jnp.shape(a)}"
            )
    mask = _clip_mask(clip_mask, features)
    squeeze = jnp.where(mask, jnp.mean(features, axis=-1), 0)
    gates = jax.nn.sigmoid(jax.nn.relu(squeeze @ w1 + b1) @ w2 + b2)
    return jnp.where(mask, gates, 0)


def gated_clip_fusion(features, gates, residual, clip_mask=None):
    """Gates each clip, adds the residual, averages over the valid clips.

    ``video = mean_n (a_n * b_n + x_n)`` over valid clips.

    Args:
      features: ``[B, N, D]`` fused clip descriptors ``b``.
      gates: ``[B, N]`` clip gates ``a``.
      residual: ``[B, N, D]`` (projected) input descriptors ``x``.
      clip_mask: optional ``[B, N]`` bool.

    Returns:
      ``[B, D]`` video descriptor.
    """
    check_rank("features", features, 3, "[B, N, D]")
    if gates.shape != features.shape[:2]:
        raise ValueError(f"gates: expected [B, N] = {features.shape[:2]}, got {gates.shape}")
    if residual.shape != features.shape:
        raise ValueError(f"residual: expected {features.shape} (as features), got {residual.shape}")
    mask = _clip_mask(clip_mask, features)
    return masked_mean(gates[..., None] * features + residual, mask)


def sparsity_loss(gates, clip_mask=None):
    """L1 norm of the gates per video (valid clips), averaged over the batch.

    Args:
      gates: ``[B, N]``.
      clip_mask: optional ``[B, N]`` bool.

    Returns:
      scalar ``mean_b sum_n |a_bn|``.
    """
    check_rank("gates", gates, 2, "[B, N]")
    mask = _clip_mask(clip_mask, gates)
    return jnp.mean(jnp.sum(jnp.where(mask, jnp.abs(gates), 0), axis=1))
