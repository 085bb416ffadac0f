"""Adaptive average pooling over the spatial axes of channels-last features."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

__all__ = ["adaptive_average_pool"]


def _bin_matrix(size_in: int, size_out: int) -> np.ndarray:
    """``[size_out, size_in]``: row ``i`` averages cells ``floor(i n / m) .. ceil((i + 1) n / m) - 1``."""
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        start = (i * size_in) // size_out
        stop = -(-((i + 1) * size_in) // size_out)
        matrix[i, start:stop] = 1.0 / (stop - start)
    return matrix


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
    if jnp.ndim(x) < 3:
        raise ValueError(f"x: expected [..., H, W, C], got shape {jnp.shape(x)}")
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size: expected (h, w) of positive ints, got {tuple(size)}")
    (height, width), (h, w) = x.shape[-3:-1], (int(size[0]), int(size[1]))
    if (height, width) == (h, w):
        return x
    lead = x.shape[:-3]
    if height % h == 0 and width % w == 0:  # equal bins: a reshape and a mean
        blocks = x.reshape(lead + (h, height // h, w, width // w, x.shape[-1]))
        return jnp.mean(blocks, axis=(-4, -2))
    if h % height == 0 and w % width == 0:  # every cell repeated
        return jnp.repeat(jnp.repeat(x, h // height, axis=-3), w // width, axis=-2)
    rows = jnp.asarray(_bin_matrix(height, h), x.dtype)
    cols = jnp.asarray(_bin_matrix(width, w), x.dtype)
    return jnp.einsum("ih,jw,...hwc->...ijc", rows, cols, x)
