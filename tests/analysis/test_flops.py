"""FLOP counter: hand-computed layers, nested jaxprs, the X3D reference table, SGS per-clip counts."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from cfjax.analysis import count_flops, jaxpr_flops, sgs_flops_per_clip
from cfjax.models import X3D, X3D_PRESETS, SGSConfig
from tests.models.util import video

# docs/design.md, section 3.7: GFLOPs at the reference input (T x crop).
X3D_GFLOPS = {"xs": 0.605, "s": 1.963, "m": 4.732, "l": 18.368, "xl": 48.407}


class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(6, (3, 3, 3), name="stem_conv")(x)  # 1*4*8*8*6 outputs x 27*2 MACs
        x = nn.Conv(6, (1, 3, 3), feature_group_count=3, name="res2_0")(x)  # x 9*2 MACs
        return nn.Dense(5, name="classifier")(jnp.mean(x, axis=(1, 2, 3)))  # 6*5 MACs


class HandComputedTest(absltest.TestCase):
    def test_conv_grouped_conv_and_dense(self):
        report = count_flops(Tiny(), None, (1, 4, 8, 8, 2))
        outputs = 1 * 4 * 8 * 8 * 6
        self.assertEqual(report.by_stage, {"stem": outputs * 27 * 2, "res2": outputs * 9 * 2, "classifier": 30})
        self.assertEqual(report.total, sum(report.by_stage.values()))
        self.assertIn("total", report.table())

    def test_nested_jaxprs(self):
        a, b = jnp.ones((3, 4)), jnp.ones((4, 5))

        def f(a, b):
            inner = jax.jit(lambda a, b: a @ b)(a, b)  # 3*5*4 = 60
            scanned, _ = jax.lax.scan(lambda c, _: (c @ jnp.eye(5), None), inner, None, length=7)  # 7 * 75
            small = lambda x: x  # noqa: E731
            big = lambda x: x @ jnp.ones((5, 5)) @ jnp.ones((5, 5))  # noqa: E731
            return jax.lax.cond(jnp.sum(a) > 0, big, small, scanned)  # max branch: 2 * 75

        flops = jaxpr_flops(jax.make_jaxpr(f)(a, b).jaxpr)
        self.assertEqual(sum(flops.values()), 60 + 7 * 75 + 150)

    def test_bad_shape(self):
        with self.assertRaisesRegex(ValueError, r"input_shape: expected \[B, T, H, W, C\]"):
            count_flops(Tiny(), None, (4, 8, 8, 2))


class X3DFlopsTest(parameterized.TestCase):
    @parameterized.parameters(*X3D_GFLOPS)
    def test_matches_reference_within_one_percent(self, name):
        p = X3D_PRESETS[name]
        gflops = count_flops(X3D.preset(name), None, (1, p.frames, p.crop, p.crop, 3)).total / 1e9
        self.assertLess(abs(gflops - X3D_GFLOPS[name]) / X3D_GFLOPS[name], 0.01)


class SGSFlopsTest(absltest.TestCase):
    def test_per_clip_flops_follow_active_bins(self):
        model = X3D(num_classes=5, width_factor=0.5, depth_factor=1.0, base_depths=(1, 1, 1, 1), head_width=16,
                    sgs=SGSConfig(num_bins=4, buckets=2))
        x = video(0, (4, 8, 16, 16, 3)).astype(jnp.float32)
        x = x.at[0].set(jnp.broadcast_to(x[0, :1], x[0].shape))
        variables = model.init(jax.random.key(1), x)
        flops, active = sgs_flops_per_clip(model, variables, x)
        self.assertEqual(flops.shape, (4,))
        self.assertGreater(len(set(active.tolist())), 1)
        dense = count_flops(model, variables, (1, 8, 16, 16, 3)).total
        # no temporal stride after SGS: the cost is affine in B' and reaches the dense count at B' = 4
        slope = (flops[np.argmax(active)] - flops[np.argmin(active)]) / (active.max() - active.min())
        np.testing.assert_allclose(flops, dense - slope * (4 - active), rtol=1e-12)
        self.assertTrue(np.all(flops[active < 4] < dense))
        with self.assertRaisesRegex(ValueError, "model: expected a backbone with sgs set"):
            sgs_flops_per_clip(model.clone(sgs=None), variables, x)


if __name__ == "__main__":
    absltest.main()
