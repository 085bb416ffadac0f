"""Grid Pool / Unpool / Gaussian alignment: properties, reference values, gradients."""

import functools

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from hypothesis import given
from jax.test_util import check_grads

from cfjax import ops
from tests.ops import reference

SCORES = st.lists(
    st.floats(-60.0, 60.0, allow_nan=False), min_size=1, max_size=8
).map(lambda v: np.asarray(v)[None, :])


def _random(seed, shape):
    return np.asarray(jax.random.normal(jax.random.key(seed), shape, jnp.float64))


def _random_grid(seed, batch, num):
    return np.asarray(ops.sampling_grid(jnp.asarray(_random(seed, (batch, num)) * 2)))


class SamplingGridTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @given(SCORES)
    def test_monotone_with_exact_end_points(self, scores):
        grid = np.asarray(self.variant(ops.sampling_grid)(jnp.asarray(scores)))
        chex.assert_shape(grid, (1, scores.shape[1] + 1))
        self.assertEqual(grid[0, 0], 0.0)
        self.assertEqual(grid[0, -1], 1.0)
        self.assertTrue(np.all(np.diff(grid, axis=-1) >= 0))
        self.assertTrue(np.all(np.isfinite(grid)))

    @chex.variants(with_jit=True, without_jit=True)
    def test_float32_monotone_exact_ends(self):
        scores = jnp.asarray(_random(0, (4, 16)) * 30, jnp.float32)
        grid = np.asarray(self.variant(ops.sampling_grid)(scores))
        self.assertEqual(grid.dtype, np.float32)
        np.testing.assert_array_equal(grid[:, 0], 0.0)
        np.testing.assert_array_equal(grid[:, -1], 1.0)
        self.assertTrue(np.all(np.diff(grid, axis=-1) >= 0))

    @chex.variants(with_jit=True, without_jit=True)
    def test_uniform_scores_give_uniform_grid(self):
        grid = self.variant(ops.sampling_grid)(jnp.full((2, 4), 3.7))
        chex.assert_trees_all_close(grid, jnp.tile(jnp.linspace(0, 1, 5), (2, 1)), atol=1e-15)

    def test_hand_computed_two_steps(self):
        # s = (0, ln 3 * 2): w = (1 - 1/2, 1 - 3/4) = (1/2, 1/4) -> normalised (2/3, 1/3).
        grid = ops.sampling_grid(jnp.asarray([[0.0, 2 * np.log(3.0)]]))
        np.testing.assert_allclose(grid, [[0.0, 2 / 3, 1.0]], atol=1e-15)

    def test_temperature_scales_scores(self):
        s = jnp.asarray(_random(1, (2, 6)))
        chex.assert_trees_all_close(
            ops.sampling_grid(s, temperature=1.5), ops.sampling_grid(3 * s), atol=1e-14
        )

    def test_matches_reference(self):
        s = _random(2, (3, 16))
        np.testing.assert_allclose(ops.sampling_grid(jnp.asarray(s)), reference.sampling_grid(s), atol=1e-12)

    def test_gradient(self):
        check_grads(jax.jit(ops.sampling_grid), (jnp.asarray(_random(3, (2, 5))),), order=2, modes=("fwd", "rev"))

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"scores: expected \[B, K\]"):
            ops.sampling_grid(jnp.ones(4))
        with self.assertRaisesRegex(TypeError, "scores: expected a floating dtype"):
            ops.sampling_grid(jnp.ones((1, 4), jnp.int32))


class GridPoolTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_uniform_grid_equals_linear_resampling(self):
        x = _random(4, (2, 13, 3))
        grid = ops.sampling_grid(jnp.zeros((2, 4)))
        out = np.asarray(self.variant(ops.grid_pool)(jnp.asarray(x), grid))
        times = np.linspace(0, 12, 5)
        expected = np.stack(
            [np.stack([np.interp(times, np.arange(13), x[b, :, c]) for c in range(3)], -1) for b in range(2)]
        )
        np.testing.assert_allclose(out, expected, atol=1e-12)

    @chex.variants(with_jit=True, without_jit=True)
    @given(st.integers(1, 9), st.integers(1, 6), st.floats(-5, 5))
    def test_constant_stays_constant(self, length, num, value):
        x = jnp.full((2, length, 1, 1, 2), value)
        grid = _random_grid(length + num, 2, num)
        out = self.variant(ops.grid_pool)(x, jnp.asarray(grid))
        chex.assert_shape(out, (2, num + 1, 1, 1, 2))
        np.testing.assert_array_equal(out, value)

    @chex.variants(with_jit=True, without_jit=True)
    def test_unpool_of_pooled_ramp_is_ramp_at_uniform_times(self):
        length, num = 64, 16
        ramp = 3.0 - 2.0 * np.arange(length) / (length - 1)
        x = jnp.asarray(np.broadcast_to(ramp[None, :, None], (3, length, 2)))
        grid = jnp.asarray(_random_grid(5, 3, num))
        y = self.variant(ops.grid_pool)(x, grid)
        back = self.variant(ops.grid_unpool)(y, grid)
        expected = 3.0 - 2.0 * np.arange(num + 1) / num
        np.testing.assert_allclose(back, np.broadcast_to(expected[None, :, None], (3, num + 1, 2)), atol=1e-12)

    @chex.variants(with_jit=True, without_jit=True)
    def test_unpool_inverts_pool_on_uniform_grid(self):
        y = jnp.asarray(_random(6, (2, 5, 3)))
        grid = jnp.tile(jnp.linspace(0, 1, 5), (2, 1))
        chex.assert_trees_all_close(self.variant(ops.grid_unpool)(y, grid), y, atol=1e-14)

    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_reference(self):
        x = _random(7, (3, 20, 2, 2, 3))
        grid = _random_grid(8, 3, 5)
        pooled = self.variant(ops.grid_pool)(jnp.asarray(x), jnp.asarray(grid))
        np.testing.assert_allclose(pooled, reference.grid_pool(x, grid), atol=1e-12)
        y = _random(9, (3, 6, 4))
        unpooled = self.variant(ops.grid_unpool)(jnp.asarray(y), jnp.asarray(grid))
        np.testing.assert_allclose(unpooled, reference.grid_unpool(y, grid), atol=1e-12)
        up = self.variant(functools.partial(ops.upsample_linear, length=24))(jnp.asarray(y))
        np.testing.assert_allclose(up, reference.upsample_linear(y, 24), atol=1e-12)

    @chex.variants(with_jit=True, without_jit=True)
    def test_inverse_grid_hand_values(self):
        # phi through (0, 0), (1/2, 3/4), (1, 1): phi^-1(1/2) = 1/3.
        inv = self.variant(ops.inverse_grid)(jnp.asarray([[0.0, 0.75, 1.0]]))
        np.testing.assert_allclose(inv, [[0.0, 1 / 3, 1.0]], atol=1e-15)

    @chex.variants(with_jit=True, without_jit=True)
    def test_interpolate_time_hand_values(self):
        x = jnp.asarray([[[0.0], [10.0], [30.0]]])
        out = self.variant(ops.interpolate_time)(x, jnp.asarray([[0.0, 0.25, 1.5, 2.0]]))
        np.testing.assert_allclose(out[0, :, 0], [0.0, 2.5, 20.0, 30.0], atol=1e-15)

    def test_inverse_grid_handles_zero_width_steps(self):
        inv = ops.inverse_grid(jnp.asarray([[0.0, 0.0, 0.5, 1.0, 1.0]]))
        np.testing.assert_allclose(inv, [[0.25, 0.375, 0.5, 0.625, 1.0]], atol=1e-15)
        self.assertTrue(np.all(np.isfinite(jax.jacobian(ops.inverse_grid)(jnp.asarray([[0.0, 0.0, 0.5, 1.0, 1.0]])))))

    @chex.variants(with_jit=True, without_jit=True)
    def test_upsample_linear_shapes_and_ends(self):
        y = jnp.asarray(_random(10, (2, 17, 5)))
        up = self.variant(functools.partial(ops.upsample_linear, length=64))(y)
        chex.assert_shape(up, (2, 64, 5))
        chex.assert_trees_all_close(up[:, 0], y[:, 0], atol=1e-15)
        chex.assert_trees_all_close(up[:, -1], y[:, -1], atol=1e-14)
        same = self.variant(functools.partial(ops.upsample_linear, length=17))(y)
        chex.assert_trees_all_close(same, y, atol=1e-14)

    def test_vmap_equals_loop(self):
        x = jnp.asarray(_random(11, (4, 10, 3)))
        grid = jnp.asarray(_random_grid(12, 4, 3))

        def one(fn):
            return lambda a, g: fn(a[None], g[None])[0]

        for fn, arg in ((ops.grid_pool, x), (ops.grid_unpool, x[:, :4])):
            batched = jax.vmap(one(fn))(arg, grid)
            looped = jnp.stack([one(fn)(arg[b], grid[b]) for b in range(4)])
            chex.assert_trees_all_close(batched, looped, atol=1e-15)
            chex.assert_trees_all_close(fn(arg, grid), looped, atol=1e-15)

    def test_gradients_x_scores_grid(self):
        x = jnp.asarray(_random(13, (2, 9, 1, 1, 2)))  # H = W = 1
        scores = jnp.asarray(_random(14, (2, 4)))
        pool = jax.jit(lambda a, s: ops.grid_pool(a, ops.sampling_grid(s)))
        check_grads(pool, (x, scores), order=1, modes=("fwd", "rev"))
        grid = jnp.asarray(_random_grid(15, 2, 4))
        check_grads(jax.jit(ops.grid_pool), (x, grid), order=1, modes=("fwd", "rev"))
        y = jnp.asarray(_random(16, (2, 5, 3)))
        check_grads(jax.jit(ops.grid_unpool), (y, grid), order=1, modes=("fwd", "rev"))
        unpool = jax.jit(lambda a, s: ops.grid_unpool(a, ops.sampling_grid(s)))
        check_grads(unpool, (y, scores), order=1, modes=("fwd", "rev"))
        check_grads(jax.jit(lambda a: ops.upsample_linear(a, 11)), (y,), order=1, modes=("fwd", "rev"))

    def test_gradient_to_grid_is_nonzero_and_finite_for_1x1(self):
        x = jnp.asarray(_random(17, (1, 8, 1, 1, 4)))
        scores = jnp.asarray(_random(18, (1, 4)))
        g = jax.grad(lambda s: jnp.sum(ops.grid_pool(x, ops.sampling_grid(s)) ** 2))(scores)
        self.assertTrue(np.all(np.isfinite(g)) and np.any(g != 0))

    def test_float32_and_bfloat16_keep_dtype(self):
        grid = ops.sampling_grid(jnp.zeros((1, 4), jnp.float32))
        for dtype in (jnp.float32, jnp.bfloat16):
            self.assertEqual(ops.grid_pool(jnp.ones((1, 8, 3), dtype), grid).dtype, dtype)
            self.assertEqual(ops.grid_unpool(jnp.ones((1, 5, 3), dtype), grid).dtype, dtype)

    def test_bfloat16_positions_stay_exact_on_long_clips(self):
        # bfloat16 cannot represent 299.x; positions are computed in float32 or wider.
        ramp = jnp.arange(300, dtype=jnp.float32).reshape(1, 300, 1)
        up = ops.upsample_linear(jnp.asarray([[[0.0], [1.0]]], jnp.bfloat16), 300)
        np.testing.assert_allclose(np.asarray(up[0, :, 0], np.float64), np.linspace(0, 1, 300), atol=4e-3)
        grid = jnp.linspace(0, 1, 4, dtype=jnp.bfloat16)[None]
        pooled = ops.grid_pool(ramp, grid)
        np.testing.assert_allclose(pooled[0, :, 0], np.asarray(grid[0], np.float64) * 299, atol=1e-3)

    def test_rejects_bad_input(self):
        grid = ops.sampling_grid(jnp.zeros((2, 4)))
        with self.assertRaisesRegex(ValueError, r"x: expected \[B, T, ...\] with B = 2"):
            ops.grid_pool(jnp.ones((3, 8, 2)), grid)
        with self.assertRaisesRegex(ValueError, "y: expected .* K\\+1 = 5"):
            ops.grid_unpool(jnp.ones((2, 4, 2)), grid)
        with self.assertRaisesRegex(ValueError, "grid: expected"):
            ops.grid_pool(jnp.ones((2, 8, 2)), jnp.ones(5))


class GaussianAlignmentTest(chex.TestCase):
    def _inputs(self, seed, lengths, fine_length, num=4):
        grid = jnp.asarray(_random_grid(seed, len(lengths), num))
        mask = ops.lengths_to_mask(jnp.asarray(lengths), fine_length)
        offset = jnp.asarray(np.arange(len(lengths), dtype=np.float64) * 2)
        return grid, mask, offset

    def test_hand_computed(self):
        # Lf = 8 valid -> sigma = 1; centres 0 * 4 + 1 = 1 and 1 * 4 + 1 = 5.
        grid = jnp.asarray([[0.0, 1.0]])
        mask = jnp.ones((1, 8), bool)
        weights = ops.gaussian_alignment(grid, mask, jnp.asarray([1.0]), 4.0)
        t = np.arange(8)
        expected = np.stack([np.exp(-((t - 1) ** 2) / (2 + 1e-16)), np.exp(-((t - 5) ** 2) / (2 + 1e-16))], -1)
        np.testing.assert_allclose(weights[0], expected, rtol=1e-14)

    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_reference_and_ignores_padding(self):
        grid, mask, offset = self._inputs(19, [12, 7, 4], 12)
        fn = self.variant(functools.partial(ops.gaussian_alignment, coarse_length=8.0))
        weights = np.asarray(fn(grid, mask, offset))
        np.testing.assert_allclose(
            weights, reference.gaussian_alignment(np.asarray(grid), np.asarray(mask), np.asarray(offset), 8.0), atol=1e-12
        )
        np.testing.assert_array_equal(weights[~np.asarray(mask)], 0.0)
        np.testing.assert_allclose(weights.max(axis=1), 1.0)

    def test_official_normalisation_over_all_steps(self):
        # centres up to 8 + 2 * 2 = 12 lie past the valid steps of clips 1 and 2: their maximum is at padding
        grid, mask, offset = self._inputs(19, [12, 7, 4], 14)
        weights = np.asarray(ops.gaussian_alignment(grid, mask, offset, 8.0, normalize_over="all"))
        expected = reference.gaussian_alignment_all_steps(np.asarray(grid), np.asarray(mask), np.asarray(offset), 8.0)
        np.testing.assert_allclose(weights, expected, atol=1e-12)
        valid = np.asarray(ops.gaussian_alignment(grid, mask, offset, 8.0))
        m = np.asarray(mask)[:, :, None]
        self.assertGreater(np.max(np.abs(np.where(m, weights - valid, 0))), 1e-3)  # differs where the max is padding
        np.testing.assert_allclose(np.where(m, weights, 0)[0], valid[0], atol=1e-12)  # not for the unpadded clip
        with self.assertRaisesRegex(ValueError, "normalize_over: expected one of"):
            ops.gaussian_alignment(grid, mask, offset, 8.0, normalize_over="max")

    @chex.variants(with_jit=True, without_jit=True)
    def test_padded_batch_equals_clips_alone(self):
        lengths = [10, 6, 3]
        grid, mask, offset = self._inputs(20, lengths, 10)
        fine = jnp.asarray(_random(21, (3, 10, 2, 2, 3)))
        attention = jax.nn.sigmoid(jnp.asarray(_random(22, (3, 10, 2, 2, 1))))
        fine = jnp.where(mask[:, :, None, None, None], fine, 1e3)  # garbage in padding

        def pipeline(f, a, g, m, o):
            return ops.aligned_aggregate(f, a, ops.gaussian_alignment(g, m, o, 8.0), m)

        batched = self.variant(pipeline)(fine, attention, grid, mask, offset)
        for b, n in enumerate(lengths):
            alone = pipeline(
                fine[b : b + 1, :n], attention[b : b + 1, :n], grid[b : b + 1], mask[b : b + 1, :n], offset[b : b + 1]
            )
            chex.assert_trees_all_close(batched[b : b + 1], alone, atol=1e-13)

    @chex.variants(with_jit=True, without_jit=True)
    def test_aggregate_matches_reference(self):
        grid, mask, offset = self._inputs(23, [9, 5], 9, num=3)
        weights = ops.gaussian_alignment(grid, mask, offset, 6.0)
        fine = _random(24, (2, 9, 1, 1, 4))
        attention = np.asarray(jax.nn.sigmoid(jnp.asarray(_random(25, (2, 9, 1, 1, 1)))))
        out = self.variant(ops.aligned_aggregate)(jnp.asarray(fine), jnp.asarray(attention), weights, mask)
        chex.assert_shape(out, (2, 4, 1, 1, 4))
        expected = reference.aligned_aggregate(fine, attention, np.asarray(weights), np.asarray(mask))
        np.testing.assert_allclose(out, expected, atol=1e-12)

    def test_aggregate_of_constant_features_is_constant(self):
        grid, mask, offset = self._inputs(26, [8, 4], 8)
        weights = ops.gaussian_alignment(grid, mask, offset, 8.0)
        attention = jax.nn.sigmoid(jnp.asarray(_random(27, (2, 8, 1))))
        out = ops.aligned_aggregate(jnp.full((2, 8, 3), 2.5), attention, weights, mask)
        # sum w c / (sum w + 1e-6) = c (1 - 1e-6 / (sum w + 1e-6))
        np.testing.assert_allclose(out, 2.5, rtol=1e-5)

    def test_gradients(self):
        grid, mask, offset = self._inputs(28, [7, 4], 7, num=3)
        fine = jnp.asarray(_random(29, (2, 7, 1, 1, 2)))
        attention = jax.nn.sigmoid(jnp.asarray(_random(30, (2, 7, 1, 1, 1))))
        scores = jnp.asarray(_random(31, (2, 3)))

        def f(fine, attention, scores, offset):
            g = ops.sampling_grid(scores)
            return ops.aligned_aggregate(fine, attention, ops.gaussian_alignment(g, mask, offset, 5.0), mask)

        check_grads(jax.jit(f), (fine, attention, scores, offset + 0.3), order=1, modes=("fwd", "rev"))

    def test_vmap_equals_loop(self):
        grid, mask, offset = self._inputs(35, [8, 5, 3], 8, num=3)
        fine = jnp.asarray(_random(36, (3, 8, 1, 1, 2)))
        attention = jax.nn.sigmoid(jnp.asarray(_random(37, (3, 8, 1, 1, 1))))

        def one(f, a, g, m, o):
            w = ops.gaussian_alignment(g[None], m[None], o[None], 6.0)
            return ops.aligned_aggregate(f[None], a[None], w, m[None])[0]

        looped = jnp.stack([one(fine[b], attention[b], grid[b], mask[b], offset[b]) for b in range(3)])
        chex.assert_trees_all_close(jax.vmap(one)(fine, attention, grid, mask, offset), looped, atol=1e-15)

    def test_far_centres_do_not_underflow(self):
        # One valid step, sigma = 1/8: exp(-q) underflows to 0 for every centre, but
        # normalised by the maximum the single valid step has weight 1 for every k.
        grid = jnp.asarray(_random_grid(34, 1, 3))
        weights = ops.gaussian_alignment(grid, ops.lengths_to_mask(jnp.asarray([1]), 5), jnp.zeros(1), 50.0)
        np.testing.assert_array_equal(weights[0, 0], 1.0)
        np.testing.assert_array_equal(weights[0, 1:], 0.0)

    def test_no_valid_steps_is_finite_zero(self):
        grid = jnp.asarray(_random_grid(32, 1, 3))
        mask = jnp.zeros((1, 6), bool)
        weights = ops.gaussian_alignment(grid, mask, jnp.zeros(1), 6.0)
        np.testing.assert_array_equal(weights, 0.0)
        out = ops.aligned_aggregate(jnp.ones((1, 6, 2)), jnp.ones((1, 6, 1)), weights, mask)
        np.testing.assert_array_equal(out, 0.0)

    def test_rejects_bad_input(self):
        grid = jnp.asarray(_random_grid(33, 2, 3))
        with self.assertRaisesRegex(TypeError, "fine_mask: expected bool"):
            ops.gaussian_alignment(grid, jnp.ones((2, 6)), jnp.zeros(2), 6.0)
        mask = jnp.ones((2, 6), bool)
        weights = ops.gaussian_alignment(grid, mask, jnp.zeros(2), 6.0)
        with self.assertRaisesRegex(ValueError, "attention: expected"):
            ops.aligned_aggregate(jnp.ones((2, 6, 1, 1, 3)), jnp.ones((2, 6, 1)), weights, mask)


if __name__ == "__main__":
    absltest.main()
