"""Masked reductions: exact on padded batches, hand values, gradients."""

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from hypothesis import given
from jax.test_util import check_grads

from cfjax import ops

LENGTHS = st.lists(st.integers(0, 6), min_size=1, max_size=4)


def _random(seed, shape):
    return jnp.asarray(jax.random.normal(jax.random.key(seed), shape, jnp.float64))


class MaskingTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @given(LENGTHS)
    def test_padded_equals_alone(self, lengths):
        x = _random(sum(lengths), (len(lengths), 6, 2, 3))
        mask = ops.lengths_to_mask(jnp.asarray(lengths), 6)
        garbage = jnp.where(mask[:, :, None, None], x, jnp.inf)
        mean = self.variant(ops.masked_mean)(garbage, mask)
        var = self.variant(ops.masked_variance)(garbage, mask)
        for b, n in enumerate(lengths):
            alone = np.asarray(x[b, :n])
            np.testing.assert_allclose(mean[b], alone.mean(0) if n else 0.0, atol=1e-14)
            np.testing.assert_allclose(var[b], alone.var(0) if n else 0.0, atol=1e-14)

    @chex.variants(with_jit=True, without_jit=True)
    def test_batchnorm_axes(self):
        x = _random(1, (3, 5, 2, 2, 4))
        mask = ops.lengths_to_mask(jnp.asarray([5, 2, 1]), 5)
        valid = np.concatenate([np.asarray(x[0]), np.asarray(x[1, :2]), np.asarray(x[2, :1])]).reshape(-1, 4)
        mean = self.variant(lambda a, m: ops.masked_mean(a, m, axis=(0, 1, 2, 3)))(x, mask)
        var = self.variant(lambda a, m: ops.masked_variance(a, m, axis=(0, 1, 2, 3), keepdims=True))(x, mask)
        np.testing.assert_allclose(mean, valid.mean(0), atol=1e-14)
        chex.assert_shape(var, (1, 1, 1, 1, 4))
        np.testing.assert_allclose(var.reshape(-1), valid.var(0), atol=1e-14)

    @chex.variants(with_jit=True, without_jit=True)
    def test_zero_padded(self):
        x = jnp.full((2, 3, 2), jnp.nan)
        mask = jnp.asarray([[True, False, False], [True, True, True]])
        out = self.variant(ops.zero_padded)(x, mask)
        self.assertTrue(np.all(np.isnan(out[0, 0])) and np.all(np.isnan(out[1])))
        np.testing.assert_array_equal(out[0, 1:], 0.0)

    def test_hand_values(self):
        x = jnp.asarray([[1.0, 3.0, 100.0]])
        mask = jnp.asarray([[True, True, False]])
        np.testing.assert_allclose(ops.masked_mean(x, mask), [2.0])
        np.testing.assert_allclose(ops.masked_variance(x, mask), [1.0])
        np.testing.assert_array_equal(ops.lengths_to_mask(jnp.asarray([2, 0]), 3), [[True, True, False], [False] * 3])

    def test_gradients_and_empty_clip(self):
        x = _random(2, (2, 4, 3))
        mask = ops.lengths_to_mask(jnp.asarray([3, 0]), 4)
        check_grads(jax.jit(lambda a: ops.masked_variance(a, mask)), (x,), order=2, modes=("fwd", "rev"))
        g = jax.grad(lambda a: ops.masked_mean(a, mask).sum())(x)
        np.testing.assert_allclose(g[0, :3], 1 / 3)
        np.testing.assert_array_equal(g[0, 3:], 0.0)
        np.testing.assert_array_equal(g[1], 0.0)

    @given(LENGTHS, st.integers(1, 3))
    def test_downsample_mask_counts_match_strided_length(self, lengths, stride):
        # a clip of n valid steps has ceil(n / stride) outputs after a stride, valid first
        mask = ops.downsample_mask(ops.lengths_to_mask(jnp.asarray(lengths), 7), stride)
        expected = ops.lengths_to_mask(-(-jnp.asarray(lengths) // stride), -(-7 // stride))
        np.testing.assert_array_equal(mask, expected)
        with self.assertRaisesRegex(ValueError, r"mask: expected bool \[B, T\]"):
            ops.downsample_mask(jnp.ones((2, 3)), stride)

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(TypeError, "mask: expected bool"):
            ops.masked_mean(jnp.ones((1, 3)), jnp.ones((1, 3)))
        with self.assertRaisesRegex(ValueError, "must include the time axis 1"):
            ops.masked_mean(jnp.ones((1, 3, 2)), jnp.ones((1, 3), bool), axis=2)


if __name__ == "__main__":
    absltest.main()
