"""Input checks shared by the ops: fail at the boundary with a clear message."""

from __future__ import annotations

import jax.numpy as jnp


def check_rank(name: str, x, rank: int | tuple[int, ...], layout: str) -> None:
    """Raises ValueError unless ``x.ndim`` is ``rank`` (or one of ``rank``)."""
    ranks = (rank,) if isinstance(rank, int) else rank
    if jnp.ndim(x) not in ranks:
        raise ValueError(f"{name}: expected {layout}, got shape {jnp.shape(x)}")


def check_floating(name: str, x) -> None:
    """Raises TypeError unless ``x`` has a floating dtype."""
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise TypeError(f"{name}: expected a floating dtype, got {jnp.result_type(x)}")


def check_mask(mask, x, name: str = "mask") -> None:
    """Raises unless ``mask`` is a bool ``[B, T]`` matching the leading axes of ``x``."""
    if jnp.result_type(mask) != jnp.bool_:
        raise TypeError(f"{name}: expected bool [B, T], got dtype {jnp.result_type(mask)}")
    if jnp.ndim(mask) != 2 or jnp.ndim(x) < 2 or tuple(jnp.shape(mask)) != tuple(jnp.shape(x)[:2]):
        raise ValueError(
            f"{name}: expected shape [B, T] = {tuple(jnp.shape(x)[:2])} (the leading axes of the "
            f"input {tuple(jnp.shape(x))}), got {tuple(jnp.shape(mask))}"
        )


def check_boxes(name: str, x, layout: str = "[..., 4]") -> None:
    """Raises unless ``x`` is a floating array whose last axis has 4 coordinates."""
    if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != 4:
        raise ValueError(f"{name}: expected boxes {layout} (x1, y1, x2, y2), got shape {jnp.shape(x)}")
    check_floating(name, x)


def check_bool(name: str, x, shape: tuple[int, ...], layout: str) -> None:
    """Raises unless ``x`` is a bool array of exactly ``shape``."""
    if jnp.result_type(x) != jnp.bool_:
        raise TypeError(f"{name}: expected bool {layout}, got dtype {jnp.result_type(x)}")
    if tuple(jnp.shape(x)) != tuple(shape):
        raise ValueError(f"{name}: expected shape {layout} = {tuple(shape)}, got {tuple(jnp.shape(x))}")


def check_shape(name: str, x, shape: tuple[int, ...], layout: str) -> None:
    """Raises ValueError unless ``x`` has exactly ``shape``."""
    if tuple(jnp.shape(x)) != tuple(shape):
        raise ValueError(f"{name}: expected shape {layout} = {tuple(shape)}, got {tuple(jnp.shape(x))}")
