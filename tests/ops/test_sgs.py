"""Similarity Guided Sampling and the length-bucket helpers."""

import functools

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from hypothesis import given
from jax.test_util import check_grads

from cfjax import ops
from tests.ops import reference


def _random(seed, shape):
    return np.asarray(jax.random.normal(jax.random.key(seed), shape, jnp.float64))


def _sgs(kernel, num_bins=None):
    return functools.partial(ops.similarity_guided_sampling, kernel=kernel, num_bins=num_bins)


def _centred_distances(perm):
    """Distances that put frame t at the centre of bin perm[t]; the last bin's frame at its edge 2T.

    The maximum is 2T, so the rescaling is the identity.
    """
    length = len(perm)
    d = 2.0 * np.asarray(perm) + 1.0
    d[np.argmax(perm)] = 2.0 * length
    return d


class DistanceTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_reference(self):
        z = _random(0, (3, 10, 8))
        for measure in ops.sgs.MEASURES:
            d = self.variant(functools.partial(ops.similarity_distance, measure=measure))(jnp.asarray(z))
            np.testing.assert_allclose(d, reference.similarity_distance(z, measure), atol=1e-12)

    def test_hand_values(self):
        z = jnp.asarray([[[3.0, 4.0], [0.0, 0.0]]])
        np.testing.assert_allclose(ops.similarity_distance(z, "magnitude"), [[5.0, 0.0]])
        # mean = (1.5, 2); distances of (1.5 + 1e-6, 2 + 1e-6) and (-1.5 + 1e-6, -2 + 1e-6).
        expected = [np.hypot(1.5 - 1e-6, 2 - 1e-6), np.hypot(1.5 + 1e-6, 2 + 1e-6)]
        np.testing.assert_allclose(ops.similarity_distance(z)[0], expected, rtol=1e-14)

    @chex.variants(with_jit=True, without_jit=True)
    def test_padded_equals_alone(self):
        z = jnp.asarray(_random(1, (2, 7, 8)))
        mask = ops.lengths_to_mask(jnp.asarray([7, 4]), 7)
        d = self.variant(ops.similarity_distance)(z, mask=mask)
        chex.assert_trees_all_close(d[1:, :4], ops.similarity_distance(z[1:, :4]), atol=1e-14)
        np.testing.assert_array_equal(d[1, 4:], 0.0)

    def test_gradient_finite_at_zero(self):
        z = jnp.zeros((1, 3, 4)).at[0, 0].set(1.0)
        for measure in ops.sgs.MEASURES:
            g = jax.grad(lambda z: ops.similarity_distance(z, measure).sum())(z)
            self.assertTrue(np.all(np.isfinite(g)))
        z = jnp.asarray(_random(2, (2, 5, 8)))
        check_grads(jax.jit(ops.similarity_distance), (z,), order=2, modes=("fwd", "rev"))

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, "measure: expected one of"):
            ops.similarity_distance(jnp.ones((1, 4, 8)), "cosine")
        with self.assertRaisesRegex(ValueError, r"z: expected \[B, T, L\]"):
            ops.similarity_distance(jnp.ones((4, 8)))


class SimilarityGuidedSamplingTest(chex.TestCase, parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*ops.sgs.KERNELS)
    def test_matches_reference(self, kernel):
        x = _random(3, (3, 12, 2, 2, 3))
        d = np.abs(_random(4, (3, 12)))
        for num_bins in (None, 5):
            out, mask = self.variant(_sgs(kernel, num_bins))(jnp.asarray(x), jnp.asarray(d))
            ref_out, ref_mask = reference.similarity_guided_sampling(x, d, num_bins, kernel)
            np.testing.assert_array_equal(mask, ref_mask)
            np.testing.assert_allclose(out, ref_out, atol=1e-12)

    @chex.variants(with_jit=True, without_jit=True)
    @given(st.permutations(list(range(8))))
    def test_separated_distances_keep_every_frame(self, perm):
        x = _random(5, (1, 8, 3))
        d = _centred_distances(perm)[None]
        reordered = x[0, np.argsort(perm)]
        out, mask = self.variant(_sgs("kronecker"))(jnp.asarray(x), jnp.asarray(d))
        self.assertTrue(np.all(mask))
        np.testing.assert_allclose(out[0], reordered, atol=1e-15)
        # Linear kernel: weight 1 + 1e-7 at a centre, 1e-7 at the edge 2T of the last bin.
        out, mask = self.variant(_sgs("linear"))(jnp.asarray(x), jnp.asarray(d))
        self.assertTrue(np.all(mask))
        np.testing.assert_allclose(out[0, :-1], (1 + 1e-7) * reordered[:-1], atol=1e-14)
        np.testing.assert_allclose(out[0, -1], 1e-7 * reordered[-1], atol=1e-20)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*ops.sgs.KERNELS)
    def test_identical_frames_collapse_to_one_bin(self, kernel):
        frame = _random(6, (1, 1, 2, 2, 3))
        x = jnp.asarray(np.repeat(frame, 6, axis=1))
        z = jnp.asarray(np.repeat(_random(7, (1, 1, 8)), 6, axis=1))
        d = ops.similarity_distance(z)
        out, mask = self.variant(_sgs(kernel))(x, d)
        np.testing.assert_array_equal(ops.active_bin_count(mask), [1])
        np.testing.assert_array_equal(out[0, 1:], 0.0)
        # all six sit at 2T, the edge of the last bin
        scale = {"linear": 6e-7, "kronecker": 6.0, "kronecker_mean": 1.0, "linear_normalized": 1e-7}[kernel]
        np.testing.assert_allclose(out[0, 0], scale * frame[0, 0], rtol=1e-9)

    @chex.variants(with_jit=True, without_jit=True)
    def test_kronecker_sums_and_kronecker_mean_averages_by_hand(self):
        # T = 6 bins, centres 1, 3, ..., 11 on [0, 12] (the max is 12: no rescaling). Frame t holds t + 1.
        # Frame 1 (0.7) in bin 0; frames 0, 2, 5 (4.5, 5.5, 5.0) in bin 2; frames 3, 4 (11.2, 12.0) in bin 5.
        x = jnp.arange(1.0, 7.0)[None, :, None]
        d = jnp.asarray([[4.5, 0.7, 5.5, 11.2, 12.0, 5.0]])
        expected = {"kronecker": [2.0, 1 + 3 + 6, 4 + 5], "kronecker_mean": [2.0, 10 / 3, 9 / 2]}
        # a padded copy: 2 garbage frames (nan features, a distance larger than the max) must change nothing
        mask = ops.lengths_to_mask(jnp.asarray([6]), 8)
        x_pad = jnp.concatenate([x, jnp.full((1, 2, 1), jnp.nan)], axis=1)
        d_pad = jnp.concatenate([d, jnp.asarray([[100.0, 0.1]])], axis=1)
        for kernel, values in expected.items():
            out, out_mask = self.variant(_sgs(kernel))(x, d)
            np.testing.assert_array_equal(out_mask[0], [True] * 3 + [False] * 3)
            np.testing.assert_allclose(out[0, :, 0], values + [0.0] * 3, rtol=1e-15)
            out, out_mask = self.variant(_sgs(kernel, 6))(x_pad, d_pad, mask=mask)
            np.testing.assert_array_equal(out_mask[0], [True] * 3 + [False] * 3)
            np.testing.assert_allclose(out[0, :, 0], values + [0.0] * 3, rtol=1e-15)
        # sum = member count x mean, bin by bin
        total, _ = ops.similarity_guided_sampling(x, d, kernel="kronecker")
        mean, _ = ops.similarity_guided_sampling(x, d, kernel="kronecker_mean")
        np.testing.assert_allclose(total[0, :3, 0], np.asarray([1, 3, 2]) * mean[0, :3, 0], rtol=1e-15)

    @parameterized.parameters("kronecker", "kronecker_mean")
    def test_kronecker_gradients_finite_by_hand(self, kernel):
        # the case above, padded: d(sum O^2)/dx_t = 2 O_b * K[b, t]; K = 1 (sum) or 1 / count (mean); d gets 0
        x = jnp.concatenate([jnp.arange(1.0, 7.0), jnp.full((2,), jnp.nan)])[None, :, None]
        d = jnp.asarray([[4.5, 0.7, 5.5, 11.2, 12.0, 5.0, 100.0, 0.1]])
        mask = ops.lengths_to_mask(jnp.asarray([6]), 8)

        def loss(x, d):
            return jnp.sum(ops.similarity_guided_sampling(x, d, 6, kernel, mask)[0] ** 2)

        grad_x, grad_d = jax.grad(loss, argnums=(0, 1))(x, d)
        bins = {"kronecker": [(20.0, 1), (4.0, 1), (18.0, 1)], "kronecker_mean": [(20 / 3, 3), (4.0, 1), (9.0, 2)]}
        (g_mid, c_mid), (g_low, c_low), (g_high, c_high) = bins[kernel]
        expected = [g_mid / c_mid, g_low / c_low, g_mid / c_mid, g_high / c_high, g_high / c_high, g_mid / c_mid, 0, 0]
        np.testing.assert_allclose(grad_x[0, :, 0], expected, rtol=1e-14)
        np.testing.assert_array_equal(grad_d, 0.0)

    @chex.variants(with_jit=True, without_jit=True)
    @given(
        st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=6, max_size=6).filter(lambda v: max(v) > 0.05),
        st.sampled_from(ops.sgs.KERNELS),
    )
    def test_compaction_keeps_bin_order_and_valid_first(self, distances, kernel):
        d = jnp.asarray([distances])
        scaled = np.asarray(distances) / max(distances) * 12
        # frames carry their own scaled distance: a bin's output lies inside its own range
        x = jnp.asarray(scaled[None, :, None])
        out, mask = self.variant(_sgs("kronecker_mean"))(x, d)
        count = int(ops.active_bin_count(mask)[0])
        np.testing.assert_array_equal(mask[0], np.arange(6) < count)
        active = out[0, :count, 0]
        self.assertTrue(np.all(np.diff(active) > 0), msg=f"not in bin order: {active}")
        occupied = {min(int(s // 2), 5) for s in scaled} | {int(s // 2) - 1 for s in scaled if s % 2 == 0 and s > 0}
        self.assertEqual(count, len(occupied))
        out, mask = self.variant(_sgs(kernel))(x, d)
        np.testing.assert_array_equal(ops.active_bin_count(mask), [count])

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*ops.sgs.KERNELS)
    def test_padded_batch_equals_clips_alone(self, kernel):
        lengths = [9, 5, 2]
        x = _random(9, (3, 9, 1, 1, 2))
        z = jnp.asarray(_random(10, (3, 9, 8)))
        mask = ops.lengths_to_mask(jnp.asarray(lengths), 9)
        x = jnp.where(mask[:, :, None, None, None], jnp.asarray(x), jnp.nan)  # garbage padding

        def run(x, z, mask):
            return ops.similarity_guided_sampling(x, ops.similarity_distance(z, mask=mask), 6, kernel, mask=mask)

        out, out_mask = self.variant(run)(x, z, mask)
        for b, n in enumerate(lengths):
            alone, alone_mask = run(x[b : b + 1, :n], z[b : b + 1, :n], mask[b : b + 1, :n])
            chex.assert_trees_all_close(out[b : b + 1], alone, atol=1e-14)
            np.testing.assert_array_equal(out_mask[b : b + 1], alone_mask)

    def test_vmap_equals_loop(self):
        x = jnp.asarray(_random(11, (4, 8, 3)))
        d = jnp.abs(jnp.asarray(_random(12, (4, 8))))

        def one(a, dist):
            out, mask = ops.similarity_guided_sampling(a[None], dist[None], 5)
            return out[0], mask[0]

        batched = jax.vmap(one)(x, d)
        looped = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[one(x[b], d[b]) for b in range(4)])
        chex.assert_trees_all_close(batched, looped, atol=1e-15)

    @parameterized.parameters("linear", "linear_normalized")
    def test_gradients_reach_x_and_distances(self, kernel):
        x = jnp.asarray(_random(13, (2, 7, 1, 1, 2)))
        z = jnp.asarray(_random(14, (2, 7, 8)))

        def f(x, z):
            return ops.similarity_guided_sampling(x, ops.similarity_distance(z), 5, kernel)[0]

        check_grads(jax.jit(f), (x, z), order=1, modes=("fwd", "rev"))
        grad_z = jax.grad(lambda z: jnp.sum(f(x, z) ** 2))(z)
        self.assertTrue(np.any(grad_z != 0))

    def test_dtype_preserved(self):
        x = jnp.ones((1, 4, 3), jnp.bfloat16)
        out, mask = ops.similarity_guided_sampling(x, jnp.asarray([[1.0, 2.0, 3.0, 4.0]], jnp.float32))
        self.assertEqual(out.dtype, jnp.bfloat16)
        self.assertEqual(mask.dtype, jnp.bool_)

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, "kernel: expected one of"):
            ops.similarity_guided_sampling(jnp.ones((1, 4, 2)), jnp.ones((1, 4)), kernel="gauss")
        with self.assertRaisesRegex(ValueError, r"x: expected \[B, T, ...\] with \[B, T\] = \(1, 5\)"):
            ops.similarity_guided_sampling(jnp.ones((1, 4, 2)), jnp.ones((1, 5)))
        with self.assertRaisesRegex(ValueError, "mask: expected shape"):
            ops.similarity_guided_sampling(jnp.ones((1, 4, 2)), jnp.ones((1, 4)), mask=jnp.ones((1, 3), bool))


class LengthBucketTest(chex.TestCase):
    def test_length_buckets(self):
        self.assertEqual(ops.length_buckets(16, 4), (4, 8, 12, 16))
        self.assertEqual(ops.length_buckets(13, 4), (4, 7, 10, 13))
        self.assertEqual(ops.length_buckets(2, 4), (1, 2))

    @chex.variants(with_jit=True, without_jit=True)
    def test_bucket_index(self):
        index = self.variant(functools.partial(ops.bucket_index, buckets=(4, 8, 12, 16)))
        for counts, expected in (([1, 3], 0), ([4, 2], 0), ([5, 1], 1), ([12, 9], 2), ([16, 0], 3)):
            self.assertEqual(int(index(jnp.asarray(counts))), expected)

    def test_cut_follows_largest_count_without_retracing(self):
        buckets = (2, 4, 6, 8)

        def masked_mean_and_length(x, mask):
            return ops.masked_mean(x, mask), jnp.asarray(x.shape[1])

        @jax.jit
        @chex.assert_max_traces(n=1)
        def run(x, mask):
            return ops.apply_in_length_bucket(masked_mean_and_length, x, mask, buckets)

        x = jnp.asarray(_random(15, (3, 8, 4)))
        for lengths, cut in (([1, 2, 2], 2), ([3, 1, 0], 4), ([8, 5, 1], 8), ([5, 6, 2], 6)):
            mask = ops.lengths_to_mask(jnp.asarray(lengths), 8)
            mean, length = run(x, mask)
            self.assertEqual(int(length), cut)
            chex.assert_trees_all_close(mean, ops.masked_mean(x, mask), atol=1e-15)

    def test_data_parallel_mesh_equals_single_device(self):
        self.assertGreaterEqual(jax.device_count(), 8)
        mesh = jax.make_mesh((8,), ("data",))
        batch = jax.sharding.NamedSharding(mesh, jax.P("data"))
        x = jnp.asarray(_random(16, (8, 8, 2, 2, 3)))
        z = jnp.asarray(_random(17, (8, 8, 8)))

        def model(x, z):
            out, mask = ops.similarity_guided_sampling(x, ops.similarity_distance(z), kernel="kronecker")
            pooled = ops.apply_in_length_bucket(
                lambda a, m: ops.masked_mean(jnp.tanh(a), m), out, mask, ops.length_buckets(8, 4)
            )
            return pooled, ops.active_bin_count(mask)

        expected = jax.jit(model)(x, z)
        sharded = jax.jit(model, in_shardings=(batch, batch), out_shardings=(batch, batch))(
            jax.device_put(x, batch), jax.device_put(z, batch)
        )
        chex.assert_trees_all_close(sharded, expected, atol=1e-14)

    def test_switch_is_pluggable_and_skipped_for_one_bucket(self):
        calls = []

        def recording_switch(index, branches, operand):
            calls.append((int(index), len(branches)))
            return jax.lax.switch(index, branches, operand)

        def no_switch(*_):
            raise AssertionError("one bucket needs no switch")

        x, mask = jnp.ones((2, 8)), ops.lengths_to_mask(jnp.asarray([3, 5]), 8)
        length = lambda a, m: jnp.asarray(a.shape[1])
        self.assertEqual(int(ops.apply_in_length_bucket(length, x, mask, (2, 4, 6, 8), switch=recording_switch)), 6)
        self.assertEqual(calls, [(2, 4)])
        self.assertEqual(int(ops.apply_in_length_bucket(length, x, mask, (8,), switch=no_switch)), 8)

    def test_rejects_bad_buckets(self):
        with self.assertRaisesRegex(ValueError, "buckets: expected strictly increasing .* ending at the padded length 8"):
            ops.apply_in_length_bucket(lambda a, m: a.sum(), jnp.ones((1, 8)), jnp.ones((1, 8), bool), (4, 6))


if __name__ == "__main__":
    absltest.main()


def test_bin_assignment_by_hand():
    # 4 bins, distances rescaled by 8 / max = 2: scaled [0, 1.8, 4.2, 8, 6] -> bins 0, 0, 2, 3 (the max), 3.
    d = jnp.array([[0.0, 0.9, 2.1, 4.0, 3.0]])
    chex.assert_trees_all_equal(ops.sgs.bin_assignment(d, 4), jnp.array([[0, 0, 2, 3, 3]], jnp.int32))
    mask = jnp.array([[True, True, True, False, True]])  # the max is masked: the max becomes 3.0
    chex.assert_trees_all_equal(ops.sgs.bin_assignment(d, 4, mask), jnp.array([[0, 1, 2, -1, 3]], jnp.int32))


def test_bin_assignment_is_the_heaviest_kernel_weight():
    d = jax.random.uniform(jax.random.key(3), (2, 9))
    bins = ops.sgs.bin_assignment(d, 9)
    scaled = d / d.max(axis=1, keepdims=True) * 18
    weights = jax.nn.relu(1 + 1e-6 - jnp.abs(scaled[:, None, :] - jnp.arange(1, 18, 2)[None, :, None]))
    chex.assert_trees_all_equal(bins, jnp.argmax(weights, axis=1).astype(jnp.int32))
