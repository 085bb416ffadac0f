"""Helpers shared by the model tests."""

import jax
import jax.numpy as jnp


def count_params(tree) -> int:
    return sum(x.size for x in jax.tree_util.tree_leaves(tree))


def video(seed, shape):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float64)


def perturbed_f64(variables, seed):
    """float64 copy with every parameter nudged off its initial value (no zero biases at ReLU kinks)."""
    params = variables["params"]
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [a.astype(jnp.float64) + 0.1 * jax.random.normal(k, a.shape, jnp.float64) for a, k in zip(leaves, keys)]
    stats = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), variables["batch_stats"])
    return {"params": jax.tree_util.tree_unflatten(tree, noisy), "batch_stats": stats}
