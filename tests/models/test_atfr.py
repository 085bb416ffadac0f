"""SGS layer and ATFR backbones: exact masking after SGS, length buckets, meshes, config errors."""

import dataclasses
from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from jax.sharding import NamedSharding

from cfjax import ops
from cfjax.layers import SimilarityGuidedSampling
from cfjax.models import ResNet3D, SGSConfig, X3D
from configs.common import SMOKE_X3D
from tests.models.util import perturbed_f64, video

T = 8
MODELS = {
    # X3D keeps T = 8 up to SGS, which merges into 4 bins (buckets 2/4); the 3D ResNet halves
    # time in the stem (4 bins, buckets 1/2/3/4) and again in res3..res5 after SGS.
    "x3d": X3D(**SMOKE_X3D, num_classes=5, dropout_rate=0.0, sgs=SGSConfig(num_bins=4, buckets=2)),  # the smoke X3D
    "resnet18": ResNet3D.preset(
        "resnet18", widths=(8, 8, 16, 16), stem_width=8, depths=(1, 1, 1, 1), num_classes=5, sgs=SGSConfig()
    ),
}


def clips():
    """Four clips with different redundancy: static, mostly static, zeros, random."""
    x = video(0, (4, T, 16, 16, 3))
    x = x.at[0].set(jnp.broadcast_to(x[0, :1], x[0].shape))
    x = x.at[1, :6].set(jnp.broadcast_to(x[1, :1], (6,) + x.shape[2:]))
    return x.at[2].set(0.0)


def with_buckets(model, buckets):
    return model.clone(sgs=dataclasses.replace(model.sgs, buckets=buckets))


def exact(model, bins):
    """The same model with one bucket per length: a clip alone runs at exactly its B'."""
    return with_buckets(model, tuple(range(1, bins + 1)))


class SGSLayerTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.layer = SimilarityGuidedSampling(num_bins=6)
        self.x = video(1, (2, T, 4, 4, 6))
        self.variables = perturbed_f64(self.layer.init(jax.random.key(0), self.x, False), 1)

    def test_outputs(self):
        out, mask, active = self.layer.apply(self.variables, self.x, False)
        chex.assert_shape(out, (2, 6, 4, 4, 6))
        np.testing.assert_array_equal(active, jnp.sum(mask, axis=1))
        # active bins first; nothing outside them
        np.testing.assert_array_equal(mask, ops.lengths_to_mask(active, 6))
        self.assertTrue(np.all(np.asarray(out)[~np.asarray(mask)] == 0))

    def test_gradient_reaches_similarity_net_through_linear_kernel_only(self):
        def loss(params, kernel):
            out, _, _ = self.layer.clone(kernel=kernel).apply({**self.variables, "params": params}, self.x, False)
            return jnp.sum(jnp.sin(out))

        linear = jax.grad(loss)(self.variables["params"], "linear")
        kronecker = jax.grad(loss)(self.variables["params"], "kronecker")
        self.assertGreater(float(jnp.max(jnp.abs(linear["fc1"]["kernel"]))), 0)
        # the Kronecker kernel is piecewise constant in d: no gradient reaches the net
        self.assertEqual(float(jnp.max(jnp.abs(kronecker["fc1"]["kernel"]))), 0)

    def test_padded_clip_equals_clip_alone(self):
        mask = ops.lengths_to_mask(jnp.asarray([5]), T)
        x = jnp.where(mask[:, :, None, None, None], self.x[:1], 1e3)
        for train in (False, True):
            run = lambda x, m: self.layer.apply(self.variables, x, train, m, mutable=["batch_stats"])  # noqa: E731
            (out_p, mask_p, active_p), stats_p = run(x, mask)
            (out_a, mask_a, active_a), stats_a = run(x[:, :5], None)
            chex.assert_trees_all_close((out_p, active_p, stats_p), (out_a, active_a, stats_a), atol=1e-10)
            np.testing.assert_array_equal(mask_p, mask_a)

    def test_bad_config(self):
        with self.assertRaisesRegex(ValueError, r"kernel: expected one of"):
            self.layer.clone(kernel="gaussian").init(jax.random.key(0), self.x, False)


class ATFRMaskingTest(parameterized.TestCase):
    """After SGS, a batch of clips with different B' gives each clip's result alone at its own B'."""

    @parameterized.parameters(*MODELS)
    def test_eval_batch_equals_each_clip_alone(self, name):
        model, x = MODELS[name], clips()
        variables = perturbed_f64(jax.jit(model.init)(jax.random.key(1), x), 2)
        batched, feats = jax.jit(lambda x: model.apply(variables, x, return_features=True))(x)
        counts = np.asarray(feats["active_bins"])
        self.assertGreater(len(set(counts)), 1, "the test needs clips with different active-bin counts")
        alone = exact(model, feats["res2_mask"].shape[1])
        run_alone = jax.jit(lambda x: alone.apply(variables, x, return_features=True))
        for b in range(len(x)):
            logits, f = run_alone(x[b : b + 1])
            self.assertEqual(int(f["active_bins"][0]), counts[b])
            chex.assert_trees_all_close(batched[b : b + 1], logits, atol=1e-9)

    @parameterized.parameters(*MODELS)
    def test_train_padded_equals_exact_length_with_gradients(self, name):
        model, x = MODELS[name], clips()
        variables = perturbed_f64(jax.jit(model.init)(jax.random.key(1), x), 2)
        x = x[1:2]  # mostly static: fewer active bins than B, so the padded run has padding to ignore
        feats = jax.jit(lambda x: model.apply(variables, x, return_features=True)[1])(x)
        bins, active = feats["res2_mask"].shape[1], int(feats["active_bins"][0])
        self.assertLess(active, bins)

        def loss(model, params, x):
            logits, updates = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
            return jnp.sum(jnp.sin(logits)), (logits, updates)

        # one bucket of all B bins (padded) against a bucket of exactly the clip's B' (cut)
        g_pad, aux_pad = jax.jit(jax.grad(partial(loss, with_buckets(model, 1)), has_aux=True))(variables["params"], x)
        cut = with_buckets(model, (active, bins))
        g_cut, aux_cut = jax.jit(jax.grad(partial(loss, cut), has_aux=True))(variables["params"], x)
        chex.assert_trees_all_close(aux_pad, aux_cut, atol=1e-9)
        chex.assert_trees_all_close(g_pad, g_cut, atol=1e-8, rtol=1e-6)


class ATFRBucketTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.model = MODELS["x3d"]
        self.x = clips()
        self.variables = jax.jit(self.model.init)(jax.random.key(1), self.x)

    def test_tail_runs_at_bucket_lengths(self):
        jaxpr = jax.make_jaxpr(lambda v, x: self.model.apply(v, x))(self.variables, self.x)
        conds = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "cond"]
        self.assertLen(conds, 1)
        lengths = []
        for branch in conds[0].params["branches"]:
            convs = [e for e in branch.jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
            lengths.append(convs[0].invars[0].aval.shape[1])
        self.assertEqual(lengths, [2, 4])

    def test_one_compilation_for_all_buckets(self):
        @jax.jit
        @chex.assert_max_traces(n=1)
        def forward(v, x):
            return self.model.apply(v, x, return_features=True)

        indices = set()
        for sl in (slice(0, 1), slice(1, 2), slice(2, 3), slice(0, 1)):
            x = jnp.concatenate([self.x[sl]] * 2)
            _, feats = forward(self.variables, x)
            indices.add(int(ops.bucket_index(feats["active_bins"], (2, 4))))
        self.assertGreater(len(indices), 1)

    def test_data_parallel_mesh_equals_one_device(self):
        mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
        x = jnp.concatenate([self.x, self.x[::-1]])  # 8 clips

        def step(variables, x):
            def loss(params):
                logits, updates = self.model.apply(
                    {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
                )
                return jnp.mean(jnp.sin(logits)), updates

            return jax.grad(loss, has_aux=True)(variables["params"])

        replicated = NamedSharding(mesh, jax.P())
        sharded = jax.jit(
            step,
            in_shardings=(replicated, NamedSharding(mesh, jax.P("data"))),
            out_shardings=replicated,
        )(self.variables, jax.device_put(x, NamedSharding(mesh, jax.P("data"))))
        single = jax.jit(step)(self.variables, x)
        chex.assert_trees_all_close(sharded, single, atol=1e-9, rtol=1e-7)


class SGSConfigTest(absltest.TestCase):
    def test_from_mapping_and_errors(self):
        self.assertEqual(SGSConfig.make({"kernel": "kronecker", "buckets": [2, 4]}).buckets, (2, 4))
        self.assertIsNone(SGSConfig.make(None))
        with self.assertRaisesRegex(ValueError, r"sgs: unknown keys \['bins'\]; known keys are"):
            SGSConfig.make({"bins": 8})
        x = jnp.zeros((1, T, 16, 16, 3))
        model = MODELS["x3d"]
        with self.assertRaisesRegex(ValueError, r"sgs.stage: expected one of \['res2', 'res3', 'res4', 'res5'\]"):
            model.clone(sgs=SGSConfig(stage="res6")).init(jax.random.key(0), x)
        with self.assertRaisesRegex(ValueError, r"buckets: expected strictly increasing"):
            model.clone(sgs=SGSConfig(buckets=(3, 2, 8))).init(jax.random.key(0), x)

    def test_sgs_after_another_stage(self):
        model = MODELS["x3d"].clone(sgs=SGSConfig(stage="res3", num_bins=4, buckets=1))
        x = clips()
        logits, feats = jax.jit(lambda x: model.apply(model.init(jax.random.key(0), x), x, return_features=True))(x)
        chex.assert_shape(logits, (4, 5))
        chex.assert_shape(feats["res3"], (4, 4, 2, 2, 16))
        chex.assert_shape(feats["res4_mask"], (4, 4))
        self.assertNotIn("res2_mask", feats)


if __name__ == "__main__":
    absltest.main()
