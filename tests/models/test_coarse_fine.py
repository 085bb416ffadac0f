"""Coarse-Fine Networks: Grid Pool / Unpool layers, Multi-stage Fusion, the model in both modes."""

import tempfile

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from cfjax import ops
from cfjax.layers import GridPool, GridUnpool, MultiStageFusion
from cfjax.models import X3D, CoarseFineNetwork, FineFeatureCache, build, extract_fine_features
from cfjax.models.x3d import x3d_widths
from tests.models.util import perturbed_f64, video
from tests.ops import reference

T, FINE, CLASSES = 8, 10, 3
# X3D with every stage one block, widths 8/16/24/48 and conv5 108.
SIZE = dict(width_factor=0.5, depth_factor=0.2, head_width=16, num_classes=CLASSES, dropout_rate=0.0)
LEVELS = ("res2", "res3", "res4", "res5", "conv5")


def fine_features(seed, batch=2, length=FINE):
    widths = x3d_widths(X3D(width_factor=0.5, depth_factor=0.2, parent=None))
    sizes = (4, 2, 1, 1, 1)
    keys = jax.random.split(jax.random.key(seed), len(LEVELS))
    return {
        level: jax.random.normal(k, (batch, length, s, s, w), jnp.float64)
        for level, k, s, w in zip(LEVELS, keys, sizes, widths)
    }


def f64(tree):
    return jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


class GridPoolLayerTest(chex.TestCase):
    def test_uniform_scores_give_fixed_linear_resampling(self):
        layer = GridPool(reduction=4)
        x = video(0, (2, 8, 4, 4, 3))
        variables = f64(layer.init(jax.random.key(0), x, False))
        # a zero output kernel makes every score equal to the bias: the grid is uniform
        params = variables["params"]
        params = {**params, "score_out": {**params["score_out"], "kernel": jnp.zeros_like(params["score_out"]["kernel"])}}
        pooled, grid = layer.apply({**variables, "params": params}, x, False)
        np.testing.assert_allclose(grid, [[0, 0.5, 1]] * 2, atol=1e-12)
        # K = 2: frames at 0, 3.5 and 7 of 0..7
        expected = jnp.stack([x[:, 0], 0.5 * (x[:, 3] + x[:, 4]), x[:, 7]], axis=1)
        np.testing.assert_allclose(pooled, expected, atol=1e-12)

    def test_shapes_and_grid(self):
        layer = GridPool(reduction=2, hidden=5)
        x = video(1, (3, 8, 4, 4, 6))
        variables = f64(perturbed_f64(jax.jit(layer.init, static_argnums=2)(jax.random.key(0), x, False), 0))
        pooled, grid = jax.jit(layer.apply, static_argnums=2)(variables, x, False)
        chex.assert_shape(pooled, (3, 5, 4, 4, 6))
        chex.assert_shape(grid, (3, 5))
        np.testing.assert_array_equal(grid[:, 0], 0)
        np.testing.assert_allclose(grid[:, -1], 1, atol=1e-12)
        self.assertTrue(np.all(np.diff(np.asarray(grid), axis=1) > 0))
        self.assertFalse(np.allclose(grid, np.linspace(0, 1, 5)))  # learned, not uniform
        self.assertEqual(
            sorted(variables["params"]), ["score_0", "score_out"]
        )  # log2(2) strided conv, then the 1x3x3 conv
        self.assertEqual(sorted(variables["params"]["score_0"]["conv"]), ["bias", "kernel"])  # official: with bias

    def test_errors(self):
        x = jnp.zeros((1, 6, 4, 4, 3))
        with self.assertRaisesRegex(ValueError, "divisible by reduction = 4"):
            GridPool().init(jax.random.key(0), x, False)
        with self.assertRaisesRegex(ValueError, "power of two"):
            GridPool(reduction=3).init(jax.random.key(0), x, False)

    def test_unpool_inverts_the_grid_and_restores_the_length(self):
        grid = ops.sampling_grid(jax.random.normal(jax.random.key(2), (2, 4), jnp.float64))
        # values equal to their own grid positions unpool to the uniform positions j / K,
        # and upsample to the input length as the ramp t / (T - 1)
        out = GridUnpool(16).apply({}, grid[..., None], grid)
        chex.assert_shape(out, (2, 16, 1))
        np.testing.assert_allclose(out[..., 0], np.broadcast_to(np.linspace(0, 1, 16), (2, 16)), atol=1e-12)


class FusionLayerTest(chex.TestCase):
    def test_mix_and_gate_follow_the_formula(self):
        fusion = MultiStageFusion((6,), 4, levels=("a", "b"), gate_level="c")
        fine = {"a": video(0, (2, 5, 4, 4, 3)), "b": video(1, (2, 5, 1, 1, 5)), "c": video(2, (2, 5, 2, 2, 7))}
        mask = ops.lengths_to_mask(jnp.array([5, 3]), 5)
        grid = ops.sampling_grid(video(3, (2, 2)))
        x, logits = video(4, (2, 3, 2, 2, 6)), video(5, (2, 3, 4))

        def run(module, fine, x, logits):
            aligned = module.align(fine, mask, grid, jnp.array([0.0, 1.0]), 4)
            return module.mix(0, x, aligned), module.gate_logits(logits, aligned), aligned

        init = jax.jit(lambda *a: fusion.init(jax.random.key(0), *a, method=run))
        variables = perturbed_f64({"params": init(fine, x, logits)["params"], "batch_stats": {}}, 0)
        mixed, gated, aligned = jax.jit(lambda *a: fusion.apply(*a, method=run))(variables, fine, x, logits)
        p = variables["params"]
        dense = lambda q, a: a @ q["kernel"] + q["bias"]
        relu = jax.nn.relu

        def filter_align(q, f, pool):
            # official RewightLayer: per-location attention, Gaussian-weighted masked mean, (spatial mean), 2 MLPs
            a = jax.nn.sigmoid(dense(q["attention_out"], relu(dense(q["attention_hidden"], f))))
            w = reference.gaussian_alignment(np.asarray(grid), np.asarray(mask), np.array([0.0, 1.0]), 4)
            agg = reference.aligned_aggregate(np.asarray(f), np.asarray(a), w, np.asarray(mask))
            agg = agg.mean(axis=(2, 3)) if pool else agg
            bias = dense(q["bias_out"], relu(dense(q["bias_hidden"], agg)))
            return bias, dense(q["scale_out"], relu(dense(q["scale_hidden"], agg)))

        for i, level in enumerate(("a", "b")):
            chex.assert_trees_all_close(
                (aligned["bias"][i], aligned["scale"][i]), filter_align(p[f"filters_{level}"], fine[level], False),
                rtol=1e-10,
            )
        gate_bias, gate_scale = filter_align(p["gate_filter"], fine["c"], True)
        chex.assert_trees_all_close((aligned["gate_bias"], aligned["gate_scale"]), (gate_bias, gate_scale), rtol=1e-10)
        # projections are max-pooled to the coarse size (4x4 -> 2x2: a 2x2 max; 1x1 -> 2x2: repeated)
        scale = jnp.concatenate([ops.adaptive_max_pool(s, (2, 2)) for s in aligned["scale"]], -1)
        bias = jnp.concatenate([ops.adaptive_max_pool(b, (2, 2)) for b in aligned["bias"]], -1)
        np.testing.assert_allclose(scale[..., :3], jnp.max(aligned["scale"][0].reshape(2, 3, 2, 2, 2, 2, 3), (3, 5)))
        expected = x * jax.nn.sigmoid(dense(p["mix_scale_0"], scale)) + dense(p["mix_bias_0"], bias)
        np.testing.assert_allclose(mixed, expected, rtol=1e-12)
        np.testing.assert_allclose(gated, logits * jax.nn.sigmoid(gate_scale) + gate_bias, rtol=1e-10)
        chex.assert_shape(aligned["scale"][0], (2, 3, 4, 4, 3))
        chex.assert_shape(aligned["gate_bias"], (2, 3, 4))
        chex.assert_shape(aligned["alignment"], (2, 5, 3))

    def test_missing_level_is_named(self):
        fusion = MultiStageFusion((6,), 4, levels=("a",), gate_level="c")
        with self.assertRaisesRegex(ValueError, r"missing levels \['c'\]"):
            fusion.init(jax.random.key(0), {"a": jnp.zeros((1, 2, 1, 1, 3))}, jnp.ones((1, 2), bool),
                        jnp.zeros((1, 3)) + jnp.array([0.0, 0.5, 1.0]), 0, 2, method=MultiStageFusion.align)


class CoarseFineTest(chex.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = CoarseFineNetwork(fine_mode="precomputed", **SIZE)
        cls.x = video(0, (2, T, 32, 32, 3))
        cls.fine = fine_features(1)
        cls.mask = ops.lengths_to_mask(jnp.array([FINE, 6]), FINE)
        cls.offset = jnp.array([0.0, 1.0])
        variables = jax.jit(cls.model.init)(jax.random.key(0), cls.x, cls.fine, cls.mask, cls.offset)
        cls.variables = perturbed_f64(variables, 1)

    def apply(self, variables, x, fine, mask, offset, **kw):
        return self.model.apply(variables, x, fine, mask, offset, **kw)

    @chex.variants(with_jit=True, without_jit=True)
    def test_shapes_and_jit(self):
        out = self.variant(self.apply)(self.variables, self.x, self.fine, self.mask, self.offset)
        chex.assert_shape(out["logits"], (2, T, CLASSES))
        chex.assert_shape(out["grid"], (2, T // 4 + 1))
        chex.assert_shape(out["grid_logits"], (2, T // 4 + 1, CLASSES))
        chex.assert_tree_all_finite(out)
        reference = jax.jit(self.apply)(self.variables, self.x, self.fine, self.mask, self.offset)
        chex.assert_trees_all_close(out, reference, rtol=1e-10, atol=1e-12)

    def test_gradients_reach_score_network_and_fusion(self):
        weights = video(3, (2, T, CLASSES))

        def loss(params):
            out, _ = self.model.apply({**self.variables, "params": params}, self.x, self.fine, self.mask,
                                      self.offset, train=True, mutable=["batch_stats"])
            return jnp.sum(out["logits"] * weights)

        grads = jax.jit(jax.grad(loss))(self.variables["params"])
        chex.assert_tree_all_finite(grads)
        # the score network only changes the grid: its gradient flows through the grid
        for name in ("grid_pool", "fusion"):
            for path, g in jax.tree_util.tree_leaves_with_path(grads[name]):
                self.assertGreater(float(jnp.max(jnp.abs(g))), 0, f"{name}{jax.tree_util.keystr(path)}")

    def test_padding_of_fine_features_changes_nothing(self):
        out = jax.jit(self.apply)(self.variables, self.x, self.fine, self.mask, self.offset)
        garbage = {k: v.at[1, 6:].set(1e3) for k, v in self.fine.items()}
        padded = jax.jit(self.apply)(self.variables, self.x, garbage, self.mask, self.offset)
        chex.assert_trees_all_close(out, padded, rtol=1e-10, atol=1e-12)
        # ... and equals clip 1 alone with only its valid fine steps
        alone = jax.jit(self.apply)(self.variables, self.x[1:], {k: v[1:, :6] for k, v in self.fine.items()},
                                    jnp.ones((1, 6), bool), self.offset[1:])
        chex.assert_trees_all_close(jax.tree_util.tree_map(lambda a: a[1:], out), alone, rtol=1e-10, atol=1e-12)

    def test_fine_context_matters(self):
        out = jax.jit(self.apply)(self.variables, self.x, self.fine, self.mask, self.offset)
        other = jax.jit(self.apply)(self.variables, self.x, fine_features(7), self.mask, self.offset)
        shifted = jax.jit(self.apply)(self.variables, self.x, self.fine, self.mask, self.offset + 3)
        self.assertGreater(float(jnp.max(jnp.abs(out["logits"] - other["logits"]))), 1e-6)
        self.assertGreater(float(jnp.max(jnp.abs(out["logits"] - shifted["logits"]))), 1e-6)

    def test_end_to_end_equals_extracted_features_and_padding_is_ignored(self):
        model = CoarseFineNetwork(**SIZE)
        fine_video = video(4, (2, FINE, 32, 32, 3))
        variables = perturbed_f64(jax.jit(model.init)(jax.random.key(0), self.x, fine_video, self.mask), 2)
        out = jax.jit(lambda v, f: model.apply(v, self.x, f, self.mask, self.offset))(variables, fine_video)
        fine_vars = {k: v["fine"] for k, v in variables.items()}
        features = extract_fine_features(model, fine_vars, fine_video, self.mask)
        self.assertEqual(sorted(features), sorted(LEVELS))
        head_vars = {k: {n: a for n, a in v.items() if n != "fine"} for k, v in variables.items()}
        pre = jax.jit(self.apply)(head_vars, self.x, features, self.mask, self.offset)
        chex.assert_trees_all_close(out, pre, rtol=1e-10, atol=1e-12)
        garbage = fine_video.at[1, 6:].set(5.0)
        padded = jax.jit(lambda v, f: model.apply(v, self.x, f, self.mask, self.offset))(variables, garbage)
        chex.assert_trees_all_close(out, padded, rtol=1e-10, atol=1e-12)

    def test_x3d_weights_load_by_name(self):
        # the official Coarse-Fine X3D: a BatchNorm on every projected shortcut (res2_0's too)
        x3d = jax.eval_shape(X3D(**SIZE, shortcut_norm="always").init, jax.random.key(0), self.x)["params"]
        params = self.variables["params"]
        coarse = {k: v for k, v in params.items() if k not in ("grid_pool", "fusion")}
        self.assertEqual(set(coarse), set(x3d))
        chex.assert_trees_all_equal_shapes(coarse, x3d)

    def test_input_errors(self):
        with self.assertRaisesRegex(ValueError, "fine_mode='precomputed' expects a dict"):
            self.apply(self.variables, self.x, jnp.zeros((2, FINE, 32, 32, 3)), self.mask, self.offset)
        with self.assertRaisesRegex(ValueError, "fine_mode='end_to_end' expects the fine video"):
            CoarseFineNetwork(**SIZE).init(jax.random.key(0), self.x, self.fine)
        with self.assertRaisesRegex(ValueError, r"fine: missing levels \['conv5'\]"):
            self.apply(self.variables, self.x, {k: v for k, v in self.fine.items() if k != "conv5"}, self.mask,
                       self.offset)
        with self.assertRaisesRegex(ValueError, r"fine_mask: expected \[B, Lf\]"):
            self.apply(self.variables, self.x, self.fine, self.mask[:, :4], self.offset)
        with self.assertRaisesRegex(ValueError, "fine_mode: expected one of"):
            CoarseFineNetwork(fine_mode="cached").init(jax.random.key(0), self.x, self.fine)

    def test_registry(self):
        model = build({"name": "coarse_fine", "num_classes": 157, "fine_mode": "precomputed", "dtype": "bfloat16"})
        self.assertIsInstance(model, CoarseFineNetwork)
        self.assertEqual((model.num_classes, model.dtype), (157, jnp.bfloat16))


class FineFeatureCacheTest(chex.TestCase):
    def test_round_trip_keeps_valid_steps(self):
        directory = self.enter_context(tempfile.TemporaryDirectory())
        cache = FineFeatureCache(directory, dtype=np.float32)
        features = {k: np.asarray(v[1], np.float32) for k, v in fine_features(0).items()}
        mask = np.arange(FINE) < 6
        self.assertNotIn("vid_01", cache)
        cache.put("vid_01", features, mask)
        self.assertIn("vid_01", cache)
        loaded, steps = cache.get("vid_01")
        self.assertEqual(steps, 6)
        chex.assert_trees_all_equal(loaded, {k: v[:6] for k, v in features.items()})
        with self.assertRaisesRegex(FileNotFoundError, "vid_02"):
            cache.get("vid_02")
        with self.assertRaisesRegex(ValueError, "video_id"):
            cache.put("../escape", features)
        with self.assertRaisesRegex(ValueError, r"expected \{level: \[Lf, h, w, C\]\}"):
            cache.put("bad", {"res2": np.zeros((3, 1, 1, 2)), "res3": np.zeros((4, 1, 1, 2))})


if __name__ == "__main__":
    absltest.main()
