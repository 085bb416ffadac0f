"""Classification losses: softmax classification with optional label smoothing, multi-label
per-frame detection (Coarse-Fine on Charades), and GCF-Net's cross-entropy plus the L1 sparsity of
its clip gates. Every loss returns a scalar mean over the batch.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from cfjax import ops

__all__ = ["charades_loss", "gcf_loss", "softmax_cross_entropy"]


def softmax_cross_entropy(logits, labels, label_smoothing: float = 0.0):
    """Mean softmax cross-entropy.

    Args:
      logits: ``[B, K]``.
      labels: ``[B]`` integer classes or ``[B, K]`` target distributions.
      label_smoothing: ``eps``; targets become ``(1 - eps) y + eps / K``.

    Returns:
      scalar.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"logits: expected [B, K], got shape {logits.shape}")
    classes = logits.shape[-1]
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"labels: expected [B] = {logits.shape[:1]} integer classes, got shape {labels.shape}")
        if not label_smoothing:
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
        labels = (labels[:, None] == jnp.arange(classes)).astype(logits.dtype)
    elif labels.shape != logits.shape:
        raise ValueError(f"labels: expected [B] integers or [B, K] = {logits.shape} targets, got shape {labels.shape}")
    if label_smoothing:
        labels = optax.smooth_labels(labels, label_smoothing)
    return jnp.mean(optax.softmax_cross_entropy(logits, labels))


def charades_loss(logits, labels, mask=None):
    """Per-frame multi-label loss of Coarse-Fine Networks on Charades.

    ``0.5 * (BCE(max_t logits, max_t labels) + mean_{valid t} BCE(logits_t, labels_t))``:
    the video-level term scores the temporal max over valid frames against
    the video's labels (any frame positive), the frame term averages over
    valid frames and classes.

    Args:
      logits: ``[B, T, C]`` per-frame logits.
      labels: ``[B, T, C]`` per-frame targets in ``{0, 1}`` (or ``[0, 1]``).
      mask: ``[B, T]`` bool valid frames (default: all).

    Returns:
      scalar.
    """
    if logits.ndim != 3 or labels.shape != logits.shape:
        raise ValueError(f"logits, labels: expected equal shapes [B, T, C], got {logits.shape} and {labels.shape}")
    if mask is None:
        mask = jnp.ones(logits.shape[:2], bool)
    labels = labels.astype(logits.dtype)
    valid = ops.expand_mask(mask, logits)  # also checks the mask
    low = jnp.finfo(logits.dtype).min
    video_logits = jnp.max(jnp.where(valid, logits, low), axis=1)
    video_labels = jnp.max(jnp.where(valid, labels, 0), axis=1)
    video_term = jnp.mean(optax.sigmoid_binary_cross_entropy(video_logits, video_labels))
    per_frame = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels), axis=-1)  # [B, T]
    frame_term = jnp.sum(jnp.where(mask, per_frame, 0)) / jnp.maximum(jnp.sum(mask), 1)
    return 0.5 * (video_term + frame_term)


def gcf_loss(logits, labels, gates, sparsity_weight: float, clip_mask=None, label_smoothing: float = 0.0):
    """GCF-Net: ``cross_entropy + sparsity_weight * mean_b sum_n |a_bn|`` (valid clips).

    Args:
      logits: ``[B, K]``; labels: ``[B]`` or ``[B, K]`` (see :func:`softmax_cross_entropy`).
      gates: ``[B, N]`` clip gates; clip_mask: ``[B, N]`` bool or ``None``.
      sparsity_weight: ``lambda``.
    """
    return softmax_cross_entropy(logits, labels, label_smoothing) + sparsity_weight * ops.sparsity_loss(
        gates, clip_mask
    )
