"""Masks for padded variable-length time axes.

A variable-length batch is a padded array ``x: [B, T, ...]`` plus a boolean
``mask: [B, T]`` (valid steps first). The functions here make reductions over
such a batch exact: a clip padded to ``T`` gives the same result as the clip
alone at its own length.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from cfjax.ops._checks import check_mask

__all__ = [
    "downsample_mask",
    "expand_mask",
    "lengths_to_mask",
    "masked_mean",
    "masked_variance",
    "zero_padded",
]


def lengths_to_mask(lengths, max_length: int):
    """Boolean mask of the first ``lengths[b]`` steps.

    Args:
      lengths: ``[B]`` integer number of valid steps per clip.
      max_length: padded length ``T`` (static).

    Returns:
      ``[B, T]`` bool, ``mask[b, t] = t < lengths[b]``.
    """
    lengths = jnp.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths: expected shape [B], got {lengths.shape}")
    return jnp.arange(max_length)[None, :] < lengths[:, None]


def expand_mask(mask, x):
    """Reshapes ``mask [B, T]`` to broadcast against ``x [B, T, ...]``.

    Returns:
      ``mask`` as ``[B, T, 1, ..., 1]`` with ``x.ndim`` axes.
    """
    check_mask(mask, x)
    return mask.reshape(mask.shape + (1,) * (x.ndim - 2))


def downsample_mask(mask, stride: int):
    """Mask after a temporal stride: ``[B, T] -> [B, ceil(T / stride)]``.

    For a convolution or pooling with symmetric ``k // 2`` padding and odd
    kernel ``k``, output step ``t`` is centred on input step ``stride * t``; it
    is valid iff that step is. A clip of length ``n`` alone gives
    ``ceil(n / stride)`` outputs, which is exactly the count kept here.
    """
    if jnp.ndim(mask) != 2 or jnp.result_type(mask) != jnp.bool_:
        raise ValueError(f"mask: expected bool [B, T], got {jnp.result_type(mask)} {jnp.shape(mask)}")
    if int(stride) < 1:
        raise ValueError(f"stride: expected a positive int, got {stride}")
    return mask[:, :: int(stride)]


def zero_padded(x, mask):
    """Re-zeroes padded steps: ``x [B, T, ...]`` -> ``[B, T, ...]``.

    Uses ``where`` rather than a product, so NaN or Inf in padding never leaks.
    """
    return jnp.where(expand_mask(mask, x), x, jnp.zeros((), x.dtype))


def _reduce_axes(x, axis) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(sorted(a % x.ndim for a in axes))
    if 1 not in axes:
        raise ValueError(f"axis: a masked reduction must include the time axis 1, got {axis}")
    return axes


def masked_mean(x, mask, axis: int | Sequence[int] = 1, keepdims: bool = False):
    """Mean over the valid steps of ``x [B, T, ...]``.

    Args:
      x: ``[B, T, ...]`` floating array.
      mask: ``[B, T]`` bool, True for valid steps.
      axis: axes to reduce; must include the time axis 1. ``1`` gives a
        per-clip mean ``[B, ...]``; ``(0, 1, 2, 3)`` on ``[B, T, H, W, C]``
        gives per-channel statistics over all valid positions (BatchNorm).
      keepdims: keep reduced axes with size 1.

    Returns:
      The mean with ``axis`` reduced. A reduction with no valid step gives 0.
    """
    axes = _reduce_axes(x, axis)
    m = jnp.broadcast_to(expand_mask(mask, x), x.shape)
    total = jnp.sum(jnp.where(m, x, jnp.zeros((), x.dtype)), axis=axes, keepdims=keepdims)
    count = jnp.sum(m, axis=axes, keepdims=keepdims).astype(total.dtype)
    return total / jnp.maximum(count, 1)


def masked_variance(x, mask, axis: int | Sequence[int] = 1, keepdims: bool = False):
    """Biased variance over the valid steps of ``x [B, T, ...]`` (two-pass).

    Same arguments and output shape as :func:`masked_mean`; empty reductions
    give 0.
    """
    mean = masked_mean(x, mask, axis=axis, keepdims=True)
    centred = zero_padded(x - mean, mask)
    return masked_mean(centred * centred, mask, axis=axis, keepdims=keepdims)
