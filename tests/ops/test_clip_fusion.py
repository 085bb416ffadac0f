"""GCF-Net clip fusion ops: equivariance, masking, gates, hand values, gradients."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from jax.test_util import check_grads

from cfjax import ops


def _random(seed, shape, scale=1.0):
    return jnp.asarray(jax.random.normal(jax.random.key(seed), shape, jnp.float64)) * scale


def _gate_params(seed, clips, hidden=3):
    keys = jax.random.split(jax.random.key(seed), 4)
    return (
        jax.random.normal(keys[0], (clips, hidden), jnp.float64),
        jax.random.normal(keys[1], (hidden,), jnp.float64),
        jax.random.normal(keys[2], (hidden, clips), jnp.float64),
        jax.random.normal(keys[3], (clips,), jnp.float64),
    )


def _attention_reference(q, k, v, heads, mask):
    """Loop over batch, head and query clip."""
    q, k, v, mask = (np.asarray(a) for a in (q, k, v, mask))
    batch, clips, dim = q.shape
    hd = dim // heads
    out = np.zeros_like(v)
    for b in range(batch):
        for h in range(heads):
            sl = slice(h * hd, (h + 1) * hd)
            for i in range(clips):
                if not mask[b, i]:
                    continue
                logits = np.array([q[b, i, sl] @ k[b, j, sl] / np.sqrt(hd) for j in range(clips)])
                logits = np.where(mask[b], logits, -np.inf)
                p = np.exp(logits - logits.max())
                p /= p.sum()
                out[b, i, sl] = p @ v[b, :, sl]
    return out


class InterClipAttentionTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_loop_reference(self):
        q, k, v = _random(0, (2, 5, 8)), _random(1, (2, 5, 8)), _random(2, (2, 5, 8))
        mask = ops.lengths_to_mask(jnp.asarray([5, 3]), 5)
        out = self.variant(functools.partial(ops.inter_clip_attention, num_heads=2))(q, k, v, clip_mask=mask)
        np.testing.assert_allclose(out, _attention_reference(q, k, v, 2, mask), atol=1e-12)

    @chex.variants(with_jit=True, without_jit=True)
    def test_equivariant_to_clip_permutation(self):
        x = _random(3, (2, 6, 8))
        perm = np.asarray([3, 0, 5, 1, 4, 2])
        attend = self.variant(functools.partial(ops.inter_clip_attention, num_heads=4))
        chex.assert_trees_all_close(attend(x, x, x)[:, perm], attend(x[:, perm], x[:, perm], x[:, perm]), atol=1e-13)

    @chex.variants(with_jit=True, without_jit=True)
    def test_masked_clips_have_no_influence(self):
        x = _random(4, (1, 6, 4))
        mask = jnp.asarray([[True, False, True, True, False, True]])
        changed = x.at[:, jnp.asarray([1, 4])].set(1e3)
        attend = self.variant(functools.partial(ops.inter_clip_attention, num_heads=2))
        out, out_changed = attend(x, x, x, clip_mask=mask), attend(changed, changed, changed, clip_mask=mask)
        chex.assert_trees_all_close(out, out_changed, atol=1e-14)
        np.testing.assert_array_equal(out[0, jnp.asarray([1, 4])], 0.0)
        # and equals running the valid clips alone
        valid = x[:, jnp.asarray([0, 2, 3, 5])]
        chex.assert_trees_all_close(out[:, jnp.asarray([0, 2, 3, 5])], attend(valid, valid, valid), atol=1e-14)

    def test_vmap_equals_loop_and_gradients(self):
        q, k, v = _random(5, (3, 4, 6)), _random(6, (3, 4, 6)), _random(7, (3, 4, 6))

        def one(q, k, v):
            return ops.inter_clip_attention(q[None], k[None], v[None], num_heads=3)[0]

        looped = jnp.stack([one(q[b], k[b], v[b]) for b in range(3)])
        chex.assert_trees_all_close(jax.vmap(one)(q, k, v), looped, atol=1e-15)
        mask = ops.lengths_to_mask(jnp.asarray([4, 2, 3]), 4)
        attention = jax.jit(lambda q, k, v: ops.inter_clip_attention(q, k, v, 3, mask))
        check_grads(attention, (q, k, v), order=1, modes=("rev",))

    def test_rejects_bad_input(self):
        x = jnp.ones((1, 4, 6))
        with self.assertRaisesRegex(ValueError, "num_heads: must divide D = 6"):
            ops.inter_clip_attention(x, x, x, num_heads=4)
        with self.assertRaisesRegex(ValueError, r"clip_mask: expected shape \[B, T\] = \(1, 4\)"):
            ops.inter_clip_attention(x, x, x, clip_mask=jnp.ones((1, 3), bool))


class GatesTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_gates_in_open_unit_interval_and_hand_value(self):
        features = _random(8, (4, 5, 16), scale=3.0)
        params = _gate_params(9, 5)
        gates = self.variant(ops.clip_gates)(features, *params)
        chex.assert_shape(gates, (4, 5))
        self.assertTrue(np.all((np.asarray(gates) > 0) & (np.asarray(gates) < 1)))
        s = np.asarray(features).mean(-1)
        w1, b1, w2, b2 = (np.asarray(p) for p in params)
        expected = 1 / (1 + np.exp(-(np.maximum(s @ w1 + b1, 0) @ w2 + b2)))
        np.testing.assert_allclose(gates, expected, atol=1e-14)

    @chex.variants(with_jit=True, without_jit=True)
    def test_masked_clips_have_no_influence(self):
        features = _random(10, (1, 5, 4))
        mask = jnp.asarray([[True, True, False, True, False]])
        params = _gate_params(11, 5)
        gate = self.variant(ops.clip_gates)
        changed = features.at[:, jnp.asarray([2, 4])].set(-7.0)
        chex.assert_trees_all_close(gate(features, *params, clip_mask=mask), gate(changed, *params, clip_mask=mask))
        np.testing.assert_array_equal(gate(features, *params, clip_mask=mask)[0, jnp.asarray([2, 4])], 0.0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_fusion_hand_value_and_mask(self):
        features = jnp.asarray([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])
        residual = jnp.asarray([[[0.5, 0.5], [1.0, 0.0], [9.0, 9.0]]])
        gates = jnp.asarray([[0.5, 0.25, 0.9]])
        mask = jnp.asarray([[True, True, False]])
        video = self.variant(ops.gated_clip_fusion)(features, gates, residual, clip_mask=mask)
        # ((0.5 + 0.5, 1 + 0.5) + (0.75 + 1, 1 + 0)) / 2
        np.testing.assert_allclose(video, [[1.375, 1.25]], atol=1e-15)
        chex.assert_trees_all_close(video, ops.gated_clip_fusion(features[:, :2], gates[:, :2], residual[:, :2]))

    @chex.variants(with_jit=True, without_jit=True)
    def test_sparsity_loss(self):
        gates = jnp.asarray([[0.5, 0.25, 0.9], [0.1, 0.2, 0.3]])
        mask = jnp.asarray([[True, True, False], [True, True, True]])
        loss = self.variant(ops.sparsity_loss)
        np.testing.assert_allclose(loss(gates), (1.65 + 0.6) / 2, atol=1e-15)
        np.testing.assert_allclose(loss(gates, clip_mask=mask), (0.75 + 0.6) / 2, atol=1e-15)

    def test_vmap_equals_loop(self):
        features, residual = _random(16, (3, 4, 5)), _random(17, (3, 4, 5))
        params = _gate_params(18, 4)

        def one(f, r):
            gates = ops.clip_gates(f[None], *params)
            return ops.gated_clip_fusion(f[None], gates, r[None])[0], gates[0]

        looped = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[one(features[b], residual[b]) for b in range(3)])
        chex.assert_trees_all_close(jax.vmap(one)(features, residual), looped, atol=1e-15)

    def test_gradients(self):
        features, residual = _random(12, (2, 4, 3)), _random(13, (2, 4, 3))
        params = _gate_params(14, 4)
        mask = ops.lengths_to_mask(jnp.asarray([4, 3]), 4)

        def f(features, residual, w1, b1, w2, b2):
            gates = ops.clip_gates(features, w1, b1, w2, b2, clip_mask=mask)
            video = ops.gated_clip_fusion(features, gates, residual, clip_mask=mask)
            return jnp.sum(video**2) + 0.1 * ops.sparsity_loss(gates, mask)

        check_grads(jax.jit(f), (features, residual, *params), order=1, modes=("fwd", "rev"))

    def test_rejects_bad_input(self):
        features = jnp.ones((1, 5, 4))
        w1, b1, w2, b2 = _gate_params(15, 4)
        with self.assertRaisesRegex(ValueError, "w1: expected shapes .* N = 5"):
            ops.clip_gates(features, w1, b1, w2, b2)
        with self.assertRaisesRegex(ValueError, r"gates: expected \[B, N\]"):
            ops.gated_clip_fusion(features, jnp.ones((1, 4)), features)


if __name__ == "__main__":
    absltest.main()
