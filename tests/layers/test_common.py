"""The shared layers of ``cfjax.layers.common`` against hand-written numpy formulas.

MaskedBatchNorm: eval mode normalises with the running statistics, train mode with the
batch's and moves the running ones by ``momentum``; with a mask only valid steps count.
ConvBN: a padded clip computes what the clip alone computes; every ``feature_group_count``
(the depthwise one through DepthwiseConv) equals ``lax.conv_general_dilated``.
SqueezeExcite: ``x * sigmoid(W2 relu(W1 mean(x)))``, the mean over valid steps.
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from hypothesis import given
from hypothesis import strategies as st

from cfjax import ops
from cfjax.layers.common import BN_EPSILON, BN_MOMENTUM, ConvBN, DepthwiseConv, MaskedBatchNorm, SqueezeExcite
from tests.models.util import perturbed_f64, video

T = 4


def normalised(x, mean, var, params):
    """BatchNorm's formula in numpy."""
    return (x - mean) / np.sqrt(var + BN_EPSILON) * np.asarray(params["scale"]) + np.asarray(params["bias"])


def with_running_stats(variables, seed, channels):
    """Running statistics away from their initial 0 / 1, so that eval and train modes differ."""
    rng = np.random.default_rng(seed)
    stats = {"mean": jnp.asarray(rng.standard_normal(channels)), "var": jnp.asarray(rng.uniform(0.5, 2.0, channels))}

    def replace(tree):  # every BatchNorm ("bn") of the tree
        return {k: stats if k == "bn" else replace(v) for k, v in tree.items()}

    return {**variables, "batch_stats": replace(variables["batch_stats"])}


def padded_with_garbage(x, mask, value=1e3):
    return jnp.where(ops.expand_mask(mask, x), x, value)


class MaskedBatchNormTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.layer = MaskedBatchNorm()
        self.x = video(0, (2, T, 3, 3, 5))
        self.variables = with_running_stats(perturbed_f64(self.layer.init(jax.random.key(0), self.x, False), 1), 2, 5)
        self.params = self.variables["params"]["bn"]
        self.stats = self.variables["batch_stats"]["bn"]

    def test_eval_uses_the_running_statistics_and_keeps_them(self):
        out, updated = self.layer.apply(self.variables, self.x, False, mutable=["batch_stats"])
        expected = normalised(np.asarray(self.x), self.stats["mean"], self.stats["var"], self.params)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
        chex.assert_trees_all_equal(updated["batch_stats"], self.variables["batch_stats"])

    def test_train_uses_batch_statistics_and_moves_the_running_ones(self):
        out, updated = self.layer.apply(self.variables, self.x, True, mutable=["batch_stats"])
        x = np.asarray(self.x)
        # the biased variance (flax's) normalises and also enters the running variance
        mean, var = x.mean(axis=(0, 1, 2, 3)), x.var(axis=(0, 1, 2, 3))
        np.testing.assert_allclose(out, normalised(x, mean, var, self.params), rtol=1e-10, atol=1e-10)
        self.assertEqual(BN_MOMENTUM, 0.9)  # PyTorch's momentum 0.1 on the new value
        new = updated["batch_stats"]["bn"]
        np.testing.assert_allclose(new["mean"], 0.9 * np.asarray(self.stats["mean"]) + 0.1 * mean, rtol=1e-12)
        np.testing.assert_allclose(new["var"], 0.9 * np.asarray(self.stats["var"]) + 0.1 * var, rtol=1e-12)

    @given(st.integers(1, T), st.integers(1, T))
    def test_masked_statistics_use_valid_steps_only(self, first, second):
        mask = ops.lengths_to_mask(jnp.asarray([first, second]), T)
        x = padded_with_garbage(self.x, mask)
        valid = np.asarray(x)[np.asarray(mask)]  # [valid steps, H, W, C]
        mean, var = valid.mean(axis=(0, 1, 2)), valid.var(axis=(0, 1, 2))
        for train in (False, True):
            out, updated = self.layer.apply(self.variables, x, train, mask, mutable=["batch_stats"])
            out = np.asarray(out)
            self.assertTrue(np.all(out[~np.asarray(mask)] == 0))
            if train:
                expected = normalised(valid, mean, var, self.params)
                new_mean = 0.9 * np.asarray(self.stats["mean"]) + 0.1 * mean
                np.testing.assert_allclose(updated["batch_stats"]["bn"]["mean"], new_mean, rtol=1e-10, atol=1e-12)
            else:
                expected = normalised(valid, self.stats["mean"], self.stats["var"], self.params)
            np.testing.assert_allclose(out[np.asarray(mask)], expected, rtol=1e-9, atol=1e-9)

    def test_padded_clip_equals_clip_alone(self):
        mask = ops.lengths_to_mask(jnp.asarray([3]), T)
        x = padded_with_garbage(self.x[:1], mask)
        for train in (False, True):
            padded, stats_p = self.layer.apply(self.variables, x, train, mask, mutable=["batch_stats"])
            alone, stats_a = self.layer.apply(self.variables, x[:, :3], train, mutable=["batch_stats"])
            chex.assert_trees_all_close((padded[:, :3], stats_p), (alone, stats_a), atol=1e-10)
            self.assertTrue(np.all(np.asarray(padded[:, 3:]) == 0))


class ConvBNTest(parameterized.TestCase):
    def test_padded_clip_equals_clip_alone(self):
        """The input is zero at padded steps (as every block leaves it); a temporal stride of 2."""
        layer = ConvBN(6, (3, 3, 3), (2, 2, 2))
        x = video(1, (1, 5, 6, 6, 4))
        variables = perturbed_f64(layer.init(jax.random.key(0), x, False), 3)
        mask = ops.lengths_to_mask(jnp.asarray([3]), 5)
        x = ops.zero_padded(x, mask)
        for train in (False, True):
            padded, stats_p = layer.apply(variables, x, train, mask, mutable=["batch_stats"])
            alone, stats_a = layer.apply(variables, x[:, :3], train, mutable=["batch_stats"])
            chex.assert_shape(padded, (1, 3, 3, 3, 6))  # ceil(5 / 2) steps, 2 of them valid
            chex.assert_trees_all_close((padded[:, :2], stats_p), (alone, stats_a), atol=1e-10)
            self.assertTrue(np.all(np.asarray(padded[:, 2:]) == 0))

    @parameterized.parameters(1, 2, 4)
    def test_equals_grouped_convolution_then_batchnorm(self, groups):
        """``feature_group_count = features = channels`` (4) is the depthwise path, DepthwiseConv."""
        layer = ConvBN(4, (3, 3, 3), (1, 2, 2), feature_group_count=groups)
        x = video(2, (2, T, 5, 5, 4))
        variables = with_running_stats(perturbed_f64(layer.init(jax.random.key(0), x, False), 4), 5, 4)
        kernel = variables["params"]["conv"]["kernel"]
        chex.assert_shape(kernel, (3, 3, 3, 4 // groups, 4))  # nn.Conv's parameter, whichever path
        self.assertEqual(sorted(variables["params"]["conv"]), ["kernel"])
        conv = jax.lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(1, 2, 2),
            padding=((1, 1),) * 3,
            dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
            feature_group_count=groups,
            precision=jax.lax.Precision.HIGHEST,
        )
        stats = variables["batch_stats"]["norm"]["bn"]
        expected = np.maximum(
            normalised(np.asarray(conv), stats["mean"], stats["var"], variables["params"]["norm"]["bn"]), 0
        )
        np.testing.assert_allclose(layer.apply(variables, x, False), expected, rtol=1e-10, atol=1e-10)
        if groups == 4 and jax.default_backend() == "cpu":  # the depthwise path is a sum of shifts on CPUs
            jaxpr = str(jax.make_jaxpr(lambda v, x: layer.apply(v, x, False))(variables, x))
            self.assertNotIn("conv_general_dilated", jaxpr)

    def test_even_temporal_kernel_with_a_mask_is_refused(self):
        x = jnp.zeros((1, T, 4, 4, 2))
        with self.assertRaisesRegex(ValueError, r"kernel_size: a masked input needs an odd temporal kernel"):
            ConvBN(2, (2, 1, 1)).init(jax.random.key(0), x, False, jnp.ones((1, T), bool))


class DepthwiseConvTest(chex.TestCase):
    def test_layer_matches_flax_grouped_conv(self):
        """Same parameter tree, same initial values and same output as the nn.Conv it replaces."""
        x = jax.random.normal(jax.random.key(3), (2, 4, 6, 6, 4))
        kw = {"strides": (1, 2, 2), "padding": ((1, 1),) * 3, "feature_group_count": 4, "use_bias": False}
        conv, dw = nn.Conv(4, (3, 3, 3), **kw), DepthwiseConv(4, (3, 3, 3), **kw)
        params = conv.init(jax.random.key(4), x)
        chex.assert_trees_all_equal(params, dw.init(jax.random.key(4), x))
        chex.assert_trees_all_close(dw.apply(params, x), conv.apply(params, x), rtol=1e-5, atol=1e-5)
        with self.assertRaisesRegex(ValueError, "DepthwiseConv"):
            DepthwiseConv(4, (3, 3, 3), feature_group_count=2).init(jax.random.key(0), x)


class SqueezeExciteTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.layer = SqueezeExcite(3)
        self.x = video(5, (2, T, 3, 3, 6))
        self.params = perturbed_f64(self.layer.init(jax.random.key(0), self.x), 6)["params"]

    def formula(self, x, pooled):
        p = jax.tree_util.tree_map(np.asarray, self.params)
        hidden = np.maximum(pooled @ p["fc1"]["kernel"] + p["fc1"]["bias"], 0)
        gate = 1 / (1 + np.exp(-(hidden @ p["fc2"]["kernel"] + p["fc2"]["bias"])))
        return x * gate[:, None, None, None, :]

    def test_formula(self):
        x = np.asarray(self.x)
        out = self.layer.apply({"params": self.params}, self.x)
        np.testing.assert_allclose(out, self.formula(x, x.mean(axis=(1, 2, 3))), rtol=1e-12, atol=1e-12)

    @given(st.integers(1, T), st.integers(1, T))
    def test_masked_mean_over_valid_steps(self, first, second):
        lengths = (first, second)
        mask = ops.lengths_to_mask(jnp.asarray(lengths), T)
        x = padded_with_garbage(self.x, mask)
        out = np.asarray(self.layer.apply({"params": self.params}, x, mask))
        pooled = np.stack([np.asarray(x)[b, :n].mean(axis=(0, 1, 2)) for b, n in enumerate(lengths)])
        expected = self.formula(np.asarray(x), pooled)
        valid = np.asarray(mask)
        np.testing.assert_allclose(out[valid], expected[valid], rtol=1e-12, atol=1e-12)


if __name__ == "__main__":
    absltest.main()
