"""X3D: exact parameter counts, shapes, jit == no-jit, BatchNorm modes, exact masking."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from cfjax import ops
from cfjax.models import X3D
from tests.models.util import count_params as _count
from tests.models.util import perturbed_f64 as _perturbed_f64
from tests.models.util import video as _video

# A tiny X3D: widths 8/16/24/48, (1, 2, 5, 3) blocks, small head.
TINY = dict(num_classes=5, width_factor=0.5, depth_factor=1.0, head_width=16, dropout_rate=0.5)


class X3DSizeTest(parameterized.TestCase):
    @parameterized.parameters(("xs", 3_794_274), ("s", 3_794_274), ("m", 3_794_274), ("l", 6_153_384), ("xl", 11_095_840))
    def test_parameter_counts_match_reference(self, name, expected):
        model = X3D.preset(name)
        variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 4, 32, 32, 3))))
        self.assertEqual(_count(variables["params"]), expected)

    def test_shortcut_norm_always_adds_the_res2_0_batchnorm(self):
        # the official Coarse-Fine X3D: layer1.0.downsample is conv + BN although it keeps 24 channels
        x = jnp.zeros((1, 4, 32, 32, 3))
        default = jax.eval_shape(lambda: X3D.preset("m").init(jax.random.key(0), x))
        always = jax.eval_shape(lambda: X3D.preset("m", shortcut_norm="always").init(jax.random.key(0), x))
        self.assertEqual(_count(always["params"]), 3_794_274 + 2 * 24)
        self.assertNotIn("shortcut_norm", default["params"]["res2_0"])
        self.assertEqual(sorted(always["batch_stats"]["res2_0"]["shortcut_norm"]["bn"]), ["mean", "var"])
        with self.assertRaisesRegex(ValueError, "shortcut_norm: expected one of"):
            X3D(**TINY, shortcut_norm="never").init(jax.random.key(0), x)

    def test_unknown_preset(self):
        with self.assertRaisesRegex(ValueError, r"X3D preset: expected one of \['l', 'm', 's', 'xl', 'xs'\]"):
            X3D.preset("xxl")


class X3DTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.model = X3D(**TINY)
        self.x = _video(0, (2, 8, 32, 32, 3))
        self.variables = self.model.init(jax.random.key(1), self.x)

    def test_shapes(self):
        logits, feats = self.model.apply(self.variables, self.x, return_features=True)
        chex.assert_shape(logits, (2, 5))
        chex.assert_shape(feats["stem"], (2, 8, 16, 16, 8))
        chex.assert_shape(feats["res2"], (2, 8, 8, 8, 8))
        chex.assert_shape(feats["res3"], (2, 8, 4, 4, 16))
        chex.assert_shape(feats["res4"], (2, 8, 2, 2, 24))
        chex.assert_shape(feats["res5"], (2, 8, 1, 1, 48))
        chex.assert_shape(feats["head"], (2, 16))
        with self.assertRaisesRegex(ValueError, r"x: expected video \[B, T, H, W, C\]"):
            self.model.apply(self.variables, self.x[0])

    @chex.variants(with_jit=True, without_jit=True)
    def test_jit_equals_no_jit_in_train_and_eval(self):
        def train_step(variables, x, rng):
            return self.model.apply(variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": rng})

        logits, updates = self.variant(train_step)(self.variables, self.x, jax.random.key(2))
        ref_logits, ref_updates = train_step(self.variables, self.x, jax.random.key(2))
        chex.assert_trees_all_close((logits, updates), (ref_logits, ref_updates), atol=1e-10)
        evaluated = self.variant(lambda v, x: self.model.apply(v, x))(self.variables, self.x)
        chex.assert_trees_all_close(evaluated, self.model.apply(self.variables, self.x), atol=1e-10)

    def test_gradients_finite_and_nonzero(self):
        @jax.jit
        def loss(params):
            logits, _ = self.model.apply(
                {**self.variables, "params": params}, self.x, train=True, mutable=["batch_stats"],
                rngs={"dropout": jax.random.key(3)},
            )
            return jnp.sum(jax.nn.log_softmax(logits)[:, 0])

        grads = jax.jit(jax.grad(loss))(self.variables["params"])
        leaves = jax.tree_util.tree_leaves(grads)
        self.assertTrue(all(np.all(np.isfinite(g)) for g in leaves))
        self.assertTrue(np.any(np.asarray(grads["stem_xy"]["kernel"]) != 0))

    def test_batchnorm_train_uses_batch_statistics_eval_uses_running(self):
        other = _video(4, (1, 8, 32, 32, 3)) * 5 + 3
        batch = jnp.concatenate([self.x[:1], other])
        evaluate = jax.jit(lambda x: self.model.apply(self.variables, x))
        # eval: a clip's logits do not depend on the rest of the batch
        chex.assert_trees_all_close(evaluate(batch)[:1], evaluate(self.x[:1]), atol=1e-12)

        # train: they do (batch statistics), and the running statistics move
        @jax.jit
        def train(x):
            return self.model.apply(self.variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(5)})

        (alone, _), (together, updates) = train(self.x[:1]), train(batch)
        self.assertGreater(float(jnp.max(jnp.abs(alone - together[:1]))), 1e-6)
        before = self.variables["batch_stats"]["stem_t"]["norm"]["bn"]["mean"]
        after = updates["batch_stats"]["stem_t"]["norm"]["bn"]["mean"]
        self.assertGreater(float(jnp.max(jnp.abs(after - before))), 0)


class X3DMaskingTest(chex.TestCase):
    """A padded clip computes exactly what it computes alone (float64)."""

    def setUp(self):
        super().setUp()
        self.model = X3D(**{**TINY, "dropout_rate": 0.0})
        self.lengths = [8, 5, 3]
        x = _video(6, (3, 8, 16, 16, 3))
        self.mask = ops.lengths_to_mask(jnp.asarray(self.lengths), 8)
        self.x = jnp.where(self.mask[:, :, None, None, None], x, 1e3)  # garbage padding
        self.variables = _perturbed_f64(jax.jit(self.model.init)(jax.random.key(7), x), 8)

    def test_eval_padded_batch_equals_clips_alone(self):
        evaluate = jax.jit(lambda x, mask: self.model.apply(self.variables, x, mask=mask))
        batched = evaluate(self.x, self.mask)
        for b, n in enumerate(self.lengths):
            alone = evaluate(self.x[b : b + 1, :n], None)
            chex.assert_trees_all_close(batched[b : b + 1], alone, atol=1e-9)

    def test_train_padded_clip_equals_clip_alone_with_gradients(self):
        def loss(params, x, mask):
            logits, updates = self.model.apply(
                {**self.variables, "params": params}, x, train=True, mask=mask, mutable=["batch_stats"]
            )
            return jnp.sum(jnp.sin(logits)), (logits, updates)

        grad = jax.jit(jax.grad(loss, has_aux=True))
        b, n = len(self.lengths) - 1, self.lengths[-1]  # the most padded clip (each length compiles once)
        g_pad, (l_pad, u_pad) = grad(self.variables["params"], self.x[b : b + 1], self.mask[b : b + 1])
        g_alone, (l_alone, u_alone) = grad(self.variables["params"], self.x[b : b + 1, :n], None)
        chex.assert_trees_all_close(l_pad, l_alone, atol=1e-9)
        chex.assert_trees_all_close(u_pad, u_alone, atol=1e-9)
        # BatchNorm over one small clip amplifies gradients to ~1e4: compare relatively
        chex.assert_trees_all_close(g_pad, g_alone, atol=1e-8, rtol=1e-6)

    def test_train_padding_content_has_no_influence(self):
        other = jnp.where(self.mask[:, :, None, None, None], self.x, -7.0)

        @jax.jit
        def run(x):
            return self.model.apply(self.variables, x, train=True, mask=self.mask, mutable=["batch_stats"])

        chex.assert_trees_all_close(run(self.x), run(other), atol=1e-10)


if __name__ == "__main__":
    absltest.main()
