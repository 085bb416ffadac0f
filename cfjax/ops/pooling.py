"""Adaptive average and max pooling over the spatial axes of channels-last features."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

__all__ = ["adaptive_average_pool", "adaptive_max_pool"]


def _bins(size_in: int, size_out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive bins: output ``i`` covers cells ``floor(i n / m) .. ceil((i + 1) n / m) - 1``."""
    return [((i * size_in) // size_out, -(-((i + 1) * size_in) // size_out)) for i in range(size_out)]


def _bin_matrix(size_in: int, size_out: int) -> np.ndarray:
    """``[size_out, size_in]``: row ``i`` averages the cells of bin ``i``."""
    matrix = np.zeros((size_out, size_in))
    for i, (start, stop) in enumerate(_bins(size_in, size_out)):
        matrix[i, start:stop] = 1.0 / (stop - start)
    return matrix


def _check(x, size) -> tuple[tuple[int, int], tuple[int, int]]:
    if jnp.ndim(x) < 3:
        raise ValueError(f"x: expected [..., H, W, C], got shape {jnp.shape(x)}")
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size: expected (h, w) of positive ints, got {tuple(size)}")
    return tuple(x.shape[-3:-1]), (int(size[0]), int(size[1]))


def _resize_simple(x, height: int, width: int, h: int, w: int, reduce):
    """The cases both adaptive pools share, or None: same size; equal bins (a reshape and
    ``reduce``); every cell repeated."""
    if (height, width) == (h, w):
        return x
    if height % h == 0 and width % w == 0:
        blocks = x.reshape(x.shape[:-3] + (h, height // h, w, width // w, x.shape[-1]))
        return reduce(blocks, axis=(-4, -2))
    if h % height == 0 and w % width == 0:
        return jnp.repeat(jnp.repeat(x, h // height, axis=-3), w // width, axis=-2)
    return None


def adaptive_average_pool(x, size: Sequence[int]):
    """Resizes the two spatial axes to ``size`` by averaging over adaptive bins.

    Output cell ``(i, j)`` is the mean of input rows ``floor(i H / h) ..
    ceil((i + 1) H / h) - 1`` and the same for columns (PyTorch's
    ``adaptive_avg_pool`` bins). Shrinking averages; growing repeats cells
    (nearest neighbour), so a ``1 x 1`` map broadcasts to any size.

    Args:
      x: ``[..., H, W, C]``.
      size: ``(h, w)`` output spatial size.

    Returns:
      ``[..., h, w, C]``, linear in ``x``.
    """
    (height, width), (h, w) = _check(x, size)
    simple = _resize_simple(x, height, width, h, w, jnp.mean)
    if simple is not None:
        return simple
    rows = jnp.asarray(_bin_matrix(height, h), x.dtype)
    cols = jnp.asarray(_bin_matrix(width, w), x.dtype)
    return jnp.einsum("ih,jw,...hwc->...ijc", rows, cols, x)


def _max_over_bins(x, size_in: int, size_out: int, axis: int):
    """Maximum over each adaptive bin along ``axis``: one gather of ``[size_out, longest bin]`` indices."""
    bins = _bins(size_in, size_out)
    longest = max(stop - start for start, stop in bins)
    # short bins repeat their last cell, which leaves their maximum unchanged
    index = np.array([[min(start + j, stop - 1) for j in range(longest)] for start, stop in bins])
    return jnp.max(jnp.take(x, index, axis=axis), axis=axis % x.ndim + 1)


def adaptive_max_pool(x, size: Sequence[int]):
    """Resizes the two spatial axes to ``size`` by the maximum over adaptive bins.

    The bins are :func:`adaptive_average_pool`'s (PyTorch's
    ``adaptive_max_pool2d``): shrinking takes the maximum of each bin, growing
    repeats cells (nearest neighbour). Max pooling a map that was first
    repeated ``n`` times along an axis equals max pooling the map itself, so
    ``adaptive_max_pool(adaptive_max_pool(x, (n H, n W)), size)`` is
    ``adaptive_max_pool(x, size)`` for any ``size``.

    Args:
      x: ``[..., H, W, C]``.
      size: ``(h, w)`` output spatial size.

    Returns:
      ``[..., h, w, C]``.
    """
    (height, width), (h, w) = _check(x, size)
    simple = _resize_simple(x, height, width, h, w, jnp.max)
    if simple is not None:
        return simple
    # a bin is a rectangle, so the maximum separates into rows, then columns
    return _max_over_bins(_max_over_bins(x, height, h, -3), width, w, -2)
