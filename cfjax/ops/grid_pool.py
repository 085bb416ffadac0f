"""Grid Pool, Grid Unpool and Gaussian alignment (Coarse-Fine Networks).

Pure jnp, channels-last, time on axis 1: ``x: [B, T, ...]`` where ``...`` is any
trailing shape (``H, W, C`` for features, ``C`` for logits). Every function is
differentiable in all of its floating inputs, the grid included, and works for
``H = W = 1``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfjax.ops._checks import check_floating, check_mask, check_rank
from cfjax.ops.masking import zero_padded

__all__ = [
    "aligned_aggregate",
    "gaussian_alignment",
    "grid_pool",
    "grid_unpool",
    "interpolate_time",
    "inverse_grid",
    "sampling_grid",
    "upsample_linear",
]


def sampling_grid(scores, temperature: float = 0.5):
    """Monotone sampling grid from per-step confidence scores.

    ``w_k = 1 - sigmoid(temperature * s_k)``, normalised to sum to one, and
    ``g = [0, cumsum(w)]``: a confident step is a short step, so the grid is
    denser there. The default ``temperature = 0.5`` is the paper's ``s / 2``.

    Args:
      scores: ``[B, K]`` floating confidences, one per coarse output step.
      temperature: factor applied to the scores before the sigmoid.

    Returns:
      ``[B, K + 1]`` grid, non-decreasing, with ``g[:, 0] = 0`` and
      ``g[:, K] = 1`` exactly.
    """
    check_rank("scores", scores, 2, "[B, K]")
    check_floating("scores", scores)
    # log(1 - sigmoid(a)) = log_sigmoid(-a); softmax of the logs is w / sum(w),
    # which stays finite for any score (no 0 / 0 when every w underflows).
    w = jax.nn.softmax(jax.nn.log_sigmoid(-temperature * scores), axis=-1)
    c = jnp.cumsum(w, axis=-1)
    c = c / c[:, -1:]  # exact 1 at the end, monotone preserved
    return jnp.concatenate([jnp.zeros_like(c[:, :1]), c], axis=1)


def interpolate_time(x, positions):
    """Linear interpolation along time at fractional indices.

    Args:
      x: ``[B, T, ...]`` values at integer times ``0 .. T-1``.
      positions: ``[B, M]`` fractional time indices, normally in ``[0, T-1]``
        (outside it the end segments are extended linearly).

    Returns:
      ``[B, M, ...]`` with ``out[b, m] = x[b, p]`` interpolated at
      ``p = positions[b, m]``. Differentiable in ``x`` and ``positions``.
    """
    check_rank("positions", positions, 2, "[B, M]")
    if jnp.ndim(x) < 2 or jnp.shape(x)[0] != jnp.shape(positions)[0]:
        raise ValueError(
            f"x: expected [B, T, ...] with B = {jnp.shape(positions)[0]}, got shape {jnp.shape(x)}"
        )
    batch, length = x.shape[:2]
    if length == 1:
        return jnp.broadcast_to(x, (batch, positions.shape[1]) + x.shape[2:])
    i0 = jnp.clip(jnp.floor(positions), 0, length - 2).astype(jnp.int32)
    frac = (positions - i0).astype(x.dtype)
    frac = frac.reshape(frac.shape + (1,) * (x.ndim - 2))
    gather = jax.vmap(lambda xb, ib: xb[ib])
    x0, x1 = gather(x, i0), gather(x, i0 + 1)
    return x0 + frac * (x1 - x0)


def _check_grid(grid, x=None) -> None:
    check_rank("grid", grid, 2, "[B, K+1]")
    check_floating("grid", grid)
    if grid.shape[1] < 2:
        raise ValueError(f"grid: expected [B, K+1] with K >= 1, got shape {grid.shape}")
    if x is not None and (jnp.ndim(x) < 2 or x.shape[0] != grid.shape[0]):
        raise ValueError(f"x: expected [B, T, ...] with B = {grid.shape[0]}, got shape {jnp.shape(x)}")


def _at_least_f32(a):
    """Positions need float32 or wider: bfloat16 cannot index past a few frames."""
    return a.astype(jnp.promote_types(a.dtype, jnp.float32))


def grid_pool(x, grid):
    """Re-samples ``x`` along time at the grid positions.

    Args:
      x: ``[B, T, ...]`` features.
      grid: ``[B, K + 1]`` positions in ``[0, 1]`` (from :func:`sampling_grid`).

    Returns:
      ``[B, K + 1, ...]``: frame ``k`` is ``x`` linearly interpolated at time
      ``grid[:, k] * (T - 1)`` (align corners).
    """
    _check_grid(grid, x)
    return interpolate_time(x, _at_least_f32(grid) * (x.shape[1] - 1))


def inverse_grid(grid):
    """Inverse of the piecewise-linear map ``k / K -> grid[k]`` at ``u_j = j / K``.

    Args:
      grid: ``[B, K + 1]`` non-decreasing, from 0 to 1.

    Returns:
      ``[B, K + 1]`` values ``v_j`` in ``[0, 1]`` with ``phi(v_j) = j / K`` for
      the piecewise-linear ``phi`` through ``(k / K, grid[k])``. Intervals of
      zero width are skipped (the right-most knot with ``grid[k] <= u`` is used).
    """
    _check_grid(grid)
    num = grid.shape[1] - 1
    u = (jnp.arange(num + 1) / num).astype(grid.dtype)
    knot = jax.vmap(lambda g: jnp.searchsorted(g, u, side="right"))(grid) - 1
    idx = jnp.clip(knot, 0, num - 1)  # interval [idx, idx + 1]
    g0 = jnp.take_along_axis(grid, idx, axis=1)
    g1 = jnp.take_along_axis(grid, idx + 1, axis=1)
    width = g1 - g0
    positive = width > 0
    # A zero-width interval only arises at the clipped ends: land on the knot itself.
    at_knot = jnp.clip(knot - idx, 0, 1).astype(grid.dtype)
    frac = jnp.where(positive, (u - g0) / jnp.where(positive, width, 1), at_knot)
    return (idx + frac) / num


def grid_unpool(y, grid):
    """Maps values on the grid back to uniform times (inverse of Grid Pool).

    Args:
      y: ``[B, K + 1, ...]`` values at the grid positions (e.g. logits).
      grid: ``[B, K + 1]`` the grid ``y`` was pooled with.

    Returns:
      ``[B, K + 1, ...]``: ``y`` linearly interpolated at the fractional
      indices ``K * inverse_grid(grid)``, i.e. the values at uniform times
      ``j / K``. Differentiable in ``y`` and ``grid``.
    """
    _check_grid(grid, y)
    if y.shape[1] != grid.shape[1]:
        raise ValueError(
            f"y: expected [B, K+1, ...] with K+1 = {grid.shape[1]} (the grid length), "
            f"got shape {y.shape}"
        )
    return interpolate_time(y, (grid.shape[1] - 1) * inverse_grid(_at_least_f32(grid)))


def upsample_linear(y, length: int):
    """Align-corners linear resize along time: ``[B, L, ...] -> [B, length, ...]``."""
    if jnp.ndim(y) < 2:
        raise ValueError(f"y: expected [B, L, ...], got shape {jnp.shape(y)}")
    if int(length) < 1:
        raise ValueError(f"length: expected a positive int, got {length}")
    old = y.shape[1]
    dtype = jnp.promote_types(y.dtype, jnp.float32)
    step = (old - 1) / max(int(length) - 1, 1)
    pos = jnp.arange(int(length), dtype=dtype) * jnp.asarray(step, dtype)
    return interpolate_time(y, jnp.broadcast_to(pos, (y.shape[0], int(length))))


GAUSSIAN_NORMALISATIONS = ("valid", "all")


def gaussian_alignment(grid, fine_mask, offset, coarse_length, width: float = 1 / 8, normalize_over: str = "valid"):
    """Gaussian weights that align fine steps with the coarse grid positions.

    Centre of coarse step ``k`` on the fine time axis: ``mu_k = coarse_length *
    grid[k] + offset``; width ``sigma = width * (number of valid fine steps)``;
    ``G[t, k] = exp(-(t - mu_k)^2 / (2 sigma^2 + 1e-16))``, divided by its
    maximum over ``t``.

    ``normalize_over="valid"`` (default) takes the maximum over the valid fine
    steps and sets padded steps to 0, so a padded clip gets the weights of the
    clip alone. ``"all"`` is the official code's normalisation (x3d_coarse.py
    L283): the maximum over all ``Lf`` steps, padding included, and padded steps
    keep their Gaussian value (:func:`aligned_aggregate` masks them). The two
    differ only where the step nearest a centre is padding, and then the
    aggregate only through its ``1e-6``; but with ``"all"`` a clip's result
    depends on how far its batch is padded.

    Args:
      grid: ``[B, K + 1]`` coarse sampling grid in ``[0, 1]``.
      fine_mask: ``[B, Lf]`` bool, valid fine steps first.
      offset: ``[B]`` fine step at which the coarse clip starts.
      coarse_length: span of the coarse clip in fine steps (``T``), scalar or ``[B]``.
      width: ``sigma`` as a fraction of the number of valid fine steps.
      normalize_over: ``"valid"`` or ``"all"`` (see above).

    Returns:
      ``[B, Lf, K + 1]`` weights in ``[0, 1]``; with ``"valid"``, 1 at the
      nearest valid step to each centre and 0 at padded steps.
    """
    _check_grid(grid)
    check_mask(fine_mask, fine_mask, "fine_mask")
    if fine_mask.shape[0] != grid.shape[0]:
        raise ValueError(f"fine_mask: expected [B, Lf] with B = {grid.shape[0]}, got {fine_mask.shape}")
    if normalize_over not in GAUSSIAN_NORMALISATIONS:
        raise ValueError(f"normalize_over: expected one of {GAUSSIAN_NORMALISATIONS}, got {normalize_over!r}")
    dtype = grid.dtype
    offset = jnp.broadcast_to(jnp.asarray(offset, dtype), (grid.shape[0],))
    coarse_length = jnp.broadcast_to(jnp.asarray(coarse_length, dtype), (grid.shape[0],))
    sigma = width * jnp.sum(fine_mask, axis=1).astype(dtype)
    mu = coarse_length[:, None] * grid + offset[:, None]  # [B, K+1]
    t = jnp.arange(fine_mask.shape[1], dtype=dtype)
    q = (t[None, :, None] - mu[:, None, :]) ** 2 / (2 * sigma**2 + 1e-16)[:, None, None]
    if normalize_over == "all":
        return jnp.exp(-(q - jnp.min(q, axis=1, keepdims=True)))
    valid = fine_mask[:, :, None]
    # max_t exp(-q_t) = exp(-min_t q_t): normalise in log space (no underflow).
    q_min = jnp.min(jnp.where(valid, q, jnp.inf), axis=1, keepdims=True)
    q_min = jnp.where(jnp.isfinite(q_min), q_min, 0)
    return jnp.where(valid, jnp.exp(-(jnp.where(valid, q, q_min) - q_min)), 0)


def aligned_aggregate(fine, attention, weights, fine_mask):
    """Per coarse step, the attention- and alignment-weighted mean of fine features.

    ``out[k] = sum_t a_t G[t, k] m_t f_t / (sum_t a_t G[t, k] m_t + 1e-6)``.

    Args:
      fine: ``[B, Lf, ...]`` fine features (e.g. ``[B, Lf, H, W, C]``).
      attention: ``[B, Lf, ...]`` non-negative attention, same rank as
        ``fine`` and broadcastable to it (e.g. ``[B, Lf, H, W, 1]``).
      weights: ``[B, Lf, K + 1]`` alignment (from :func:`gaussian_alignment`).
      fine_mask: ``[B, Lf]`` bool, valid fine steps.

    Returns:
      ``[B, K + 1, ...]`` aggregated fine features, same trailing shape as ``fine``.
    """
    check_mask(fine_mask, fine, "fine_mask")
    check_rank("weights", weights, 3, "[B, Lf, K+1]")
    if weights.shape[:2] != fine.shape[:2]:
        raise ValueError(
            f"weights: expected [B, Lf, K+1] with [B, Lf] = {fine.shape[:2]}, got {weights.shape}"
        )
    if jnp.ndim(attention) != fine.ndim or attention.shape[:2] != fine.shape[:2]:
        raise ValueError(
            f"attention: expected shape {fine.shape[:2]} + trailing axes broadcastable to "
            f"{fine.shape[2:]}, got {jnp.shape(attention)}"
        )
    batch, length = fine.shape[:2]
    trailing = jnp.broadcast_shapes(fine.shape[2:], attention.shape[2:])
    w = jnp.where(fine_mask[:, :, None], weights, 0)
    attended = jnp.broadcast_to(zero_padded(attention * fine, fine_mask), (batch, length) + trailing)
    att = zero_padded(attention, fine_mask)
    num = jnp.einsum("btk,btf->bkf", w, attended.reshape(batch, length, -1))
    den = jnp.einsum("btk,btf->bkf", w, att.reshape(batch, length, -1))
    num = num.reshape((batch, -1) + trailing)
    den = den.reshape((batch, -1) + attention.shape[2:])
    return num / (den + 1e-6)
