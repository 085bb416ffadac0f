"""Helpers shared by the model tests."""

import jax
import jax.numpy as jnp
import numpy as np


def count_params(tree) -> int:
    return sum(x.size for x in jax.tree_util.tree_leaves(tree))


def video(seed, shape):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float64)


def perturbed_f64(variables, seed):
    """float64 copy with every parameter nudged off its initial value (no zero biases at ReLU kinks).

    The noise comes from numpy: no per-shape compilation of random ops.
    """
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(
        lambda a: jnp.asarray(np.asarray(a, np.float64) + 0.1 * rng.standard_normal(a.shape)), variables["params"]
    )
    stats = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), variables.get("batch_stats", {}))
    return {"params": params, "batch_stats": stats}
