"""Similarity Guided Sampling (SGS) and the length buckets that make it pay off.

SGS (Fayyaz et al., CVPR 2021) merges redundant frames: each frame gets a
scalar distance from a learned embedding, distances are spread over
``num_bins`` bins, and frames that fall into the same bin are summed with
kernel weights. Empty bins are dropped, so the number of active bins ``B'``
varies per clip; the output is a padded array plus a mask, active bins first.

Pure jnp, channels-last, time on axis 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from cfjax.ops._checks import check_floating, check_mask, check_rank
from cfjax.ops.masking import masked_mean, zero_padded

__all__ = [
    "KERNELS",
    "MEASURES",
    "active_bin_count",
    "apply_in_length_bucket",
    "bin_assignment",
    "bucket_index",
    "check_buckets",
    "length_buckets",
    "similarity_distance",
    "similarity_guided_sampling",
]

MEASURES = ("mean_distance", "magnitude")
KERNELS = ("linear", "kronecker", "kronecker_mean", "linear_normalized")


def _norm(v):
    """Euclidean norm over the last axis with a finite gradient at 0."""
    sq = jnp.sum(v * v, axis=-1)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1)), 0)


def similarity_distance(z, measure: str = "mean_distance", mask=None):
    """Per-frame scalar distance from the similarity embedding.

    ``"mean_distance"`` (official code): ``d_t = || mean_t(z) - z_t + 1e-6 ||_2``,
    the mean taken over valid frames. ``"magnitude"`` (paper text):
    ``d_t = || z_t ||_2``.

    Args:
      z: ``[B, T, L]`` embeddings.
      measure: one of ``MEASURES``.
      mask: optional ``[B, T]`` bool, valid frames first.

    Returns:
      ``[B, T]`` non-negative distances, 0 at padded frames.
    """
    check_rank("z", z, 3, "[B, T, L]")
    check_floating("z", z)
    if measure not in MEASURES:
        raise ValueError(f"measure: expected one of {MEASURES}, got {measure!r}")
    if mask is None:
        mask = jnp.ones(z.shape[:2], bool)
    check_mask(mask, z)
    if measure == "mean_distance":
        mean = masked_mean(z, mask)
        d = _norm(mean[:, None, :] - z + 1e-6)
    else:
        d = _norm(z)
    return jnp.where(mask, d, 0)


def similarity_guided_sampling(x, d, num_bins: int | None = None, kernel: str = "linear", mask=None):
    """Merges frames with similar distances into bins; active bins first.

    Distances are rescaled to ``d * 2 B / max_t d`` (``B = num_bins``) and
    compared with bin centres ``c_b = 1, 3, ..., 2B - 1``. Kernels
    ``K[b, t]``: ``"linear"`` ``max(0, 1 + 1e-7 - |d_t - c_b|)``;
    ``"kronecker"`` ``1`` if ``|d_t - c_b| <= 1`` (the sum of the bin's
    members, as the official "delta" kernel); ``"kronecker_mean"`` the same
    divided by the bin's member count (the mean of its members: a cfjax
    variant whose scale does not grow with the bin); ``"linear_normalized"``
    the linear kernel divided by the bin's count of non-zero weights.
    ``O_b = sum_t K[b, t] x_t``. Gradients reach ``x`` and, through the
    (linear) kernels, ``d``; the Kronecker kernels pass none to ``d``.

    Args:
      x: ``[B, T, ...]`` features.
      d: ``[B, T]`` non-negative distances (:func:`similarity_distance`).
      num_bins: number of bins ``B``; defaults to ``T``.
      kernel: one of ``KERNELS``.
      mask: optional ``[B, T]`` bool of valid input frames; padded frames
        join no bin and do not enter the maximum.

    Returns:
      ``(out, out_mask)``: ``out [B, num_bins, ...]`` with the active bins first
      in bin order and zeros after them; ``out_mask [B, num_bins]`` bool, True
      for the active bins.
    """
    check_floating("x", x)
    check_rank("d", d, 2, "[B, T]")
    check_floating("d", d)
    if jnp.ndim(x) < 2 or x.shape[:2] != d.shape:
        raise ValueError(f"x: expected [B, T, ...] with [B, T] = {d.shape} (from d), got {jnp.shape(x)}")
    if kernel not in KERNELS:
        raise ValueError(f"kernel: expected one of {KERNELS}, got {kernel!r}")
    nbins = d.shape[1] if num_bins is None else int(num_bins)
    if nbins < 1:
        raise ValueError(f"num_bins: expected a positive int, got {num_bins}")
    if mask is None:
        mask = jnp.ones(d.shape, bool)
    check_mask(mask, x)

    d = jnp.where(mask, d, 0)
    d_max = jnp.max(d, axis=1, keepdims=True)
    d_max = jnp.where(d_max > 0, d_max, 1)
    scaled = d / d_max * (2 * nbins)  # [B, T] in [0, 2B]; d / d_max is exactly 1 at the max
    centres = jnp.arange(1, 2 * nbins, 2, dtype=d.dtype)
    delta = jnp.abs(scaled[:, None, :] - centres[None, :, None])  # [B, nbins, T]
    if kernel in ("kronecker", "kronecker_mean"):
        weights = (delta <= 1).astype(d.dtype)
    else:
        weights = jax.nn.relu(1 + 1e-7 - delta)
    weights = jnp.where(mask[:, None, :], weights, 0)
    count = jnp.sum(weights > 0, axis=-1)  # [B, nbins]
    if kernel in ("kronecker_mean", "linear_normalized"):
        weights = weights / jnp.maximum(count, 1)[..., None].astype(weights.dtype)

    batch, length = x.shape[:2]
    out = jnp.einsum(
        "bnt,btf->bnf",
        weights.astype(x.dtype),
        zero_padded(x, mask).reshape(batch, length, -1),
        precision=jax.lax.Precision.HIGHEST,
    ).reshape((batch, nbins) + x.shape[2:])

    active = count > 0
    order = jnp.argsort(jnp.logical_not(active).astype(jnp.int32), axis=1, stable=True)
    out_mask = jnp.take_along_axis(active, order, axis=1)
    out = jnp.take_along_axis(out, order.reshape(order.shape + (1,) * (x.ndim - 2)), axis=1)
    return zero_padded(out, out_mask), out_mask


def bin_assignment(d, num_bins: int | None = None, mask=None):
    """The bin each frame weighs most in (nearest centre): ``d [B, T] -> int32 [B, T]``, -1 where masked.

    Bin indices are before compaction (bin ``b`` has centre ``2b + 1`` on the rescaled
    distance of :func:`similarity_guided_sampling`).
    """
    check_rank("d", d, 2, "[B, T]")
    nbins = d.shape[1] if num_bins is None else int(num_bins)
    if mask is None:
        mask = jnp.ones(d.shape, bool)
    d = jnp.where(mask, d, 0)
    d_max = jnp.max(d, axis=1, keepdims=True)
    scaled = d / jnp.where(d_max > 0, d_max, 1) * (2 * nbins)
    bins = jnp.clip(jnp.floor(scaled / 2), 0, nbins - 1).astype(jnp.int32)
    return jnp.where(mask, bins, -1)


def active_bin_count(mask):
    """Number of active bins per clip: ``[B, T]`` bool -> ``[B]`` int32."""
    if jnp.ndim(mask) != 2 or jnp.result_type(mask) != jnp.bool_:
        raise ValueError(f"mask: expected bool [B, T], got {jnp.result_type(mask)} {jnp.shape(mask)}")
    return jnp.sum(mask, axis=1, dtype=jnp.int32)


def length_buckets(length: int, num_buckets: int = 4) -> tuple[int, ...]:
    """Evenly spaced padded lengths ``ceil(length * i / num_buckets)``, i = 1..num_buckets.

    ``length_buckets(16, 4) == (4, 8, 12, 16)``. Duplicates are dropped.
    """
    if length < 1 or num_buckets < 1:
        raise ValueError(f"length and num_buckets: expected positive ints, got {length}, {num_buckets}")
    return tuple(sorted({-(-length * i // num_buckets) for i in range(1, num_buckets + 1)}))


def check_buckets(buckets: Sequence[int], length: int) -> tuple[int, ...]:
    """Validates static bucket lengths: strictly increasing, positive, the last equal to ``length``."""
    buckets = tuple(int(b) for b in buckets)
    if not buckets or list(buckets) != sorted(set(buckets)) or buckets[0] < 1 or buckets[-1] != length:
        raise ValueError(
            f"buckets: expected strictly increasing positive lengths ending at the padded length "
            f"{length}, got {buckets}"
        )
    return buckets


def bucket_index(counts, buckets: Sequence[int]):
    """Index of the smallest bucket that holds the batch's largest count.

    Args:
      counts: ``[B]`` int active lengths (:func:`active_bin_count`).
      buckets: increasing static lengths; the last must cover every count.

    Returns:
      scalar int32 index into ``buckets`` (traceable, no host sync).
    """
    largest = jnp.max(counts)
    index = jnp.sum(jnp.asarray(buckets) < largest, dtype=jnp.int32)
    return jnp.minimum(index, len(buckets) - 1)


def apply_in_length_bucket(fn: Callable, x, mask, buckets: Sequence[int], switch: Callable = jax.lax.switch):
    """Runs ``fn`` on the time axis cut to the smallest bucket that holds all valid steps.

    With ``L`` the chosen bucket, returns ``fn(x[:, :L], mask[:, :L])`` where the
    cut applies to every leaf of the pytree ``x``. Under ``jax.jit`` every bucket
    is compiled once (``lax.switch``) and only the chosen one runs, so the cost
    of ``fn`` follows the batch's largest active length. ``fn`` must return the
    same shapes for every ``L`` (e.g. time-pooled outputs). Under ``vmap`` the
    switch becomes a select and all buckets run: call it on the whole batch.
    With one bucket ``fn`` runs directly, without a switch.

    Args:
      fn: ``(x_cut, mask_cut) -> outputs``.
      x: pytree of ``[B, T, ...]`` arrays.
      mask: ``[B, T]`` bool, valid steps first (e.g. from SGS).
      buckets: static increasing lengths ending at ``T`` (:func:`length_buckets`).
      switch: ``(index, branches, operand) -> branches[index](operand)``; ``jax.lax.switch``,
        or a lifted switch when ``fn`` creates parameters (a flax module passes ``nn.switch``
        over itself, as :func:`cfjax.models.backbone.run_backbone` does).
    """
    length = mask.shape[1]
    buckets = check_buckets(buckets, length)
    for leaf in jax.tree_util.tree_leaves(x):
        check_mask(mask, leaf)

    def branch(cut):
        def run(operands):
            xs, m = operands
            return fn(jax.tree_util.tree_map(lambda a: a[:, :cut], xs), m[:, :cut])

        return run

    if len(buckets) == 1:
        return branch(length)((x, mask))
    index = bucket_index(active_bin_count(mask), buckets)
    return switch(index, [branch(cut) for cut in buckets], (x, mask))
