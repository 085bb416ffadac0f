"""GCF-Net: head on clip descriptors, ablation switches, the head's cost at the paper's setting, the shared backbone."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from cfjax import ops
from cfjax.analysis import count_flops
from cfjax.models import X3D, GCFNet, build
from tests.models.util import count_params, perturbed_f64, video

B, N, D0, D, CLASSES = 2, 5, 12, 8, 4
LENGTHS = jnp.array([5, 3])


def symmetric_gates(params, a=0.7, b=-0.2):
    """Gate weights ``a I + b 1 1^T`` and constant biases: the gate network is permutation-equivariant."""
    eye, ones = jnp.eye(N), jnp.ones((N, N))
    gates = {"w1": a * eye + b * ones, "b1": jnp.full((N,), 0.1), "w2": -a * eye + 0.3 * ones, "b2": jnp.full((N,), 0.2)}
    return {**params, "gates": jax.tree_util.tree_map(lambda x: x.astype(jnp.float64), gates)}


class GCFHeadTest(chex.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.model = GCFNet(num_classes=CLASSES, dim=D, fusion_layers=2, num_heads=2)
        self.x = video(0, (B, N, D0))
        self.mask = ops.lengths_to_mask(LENGTHS, N)
        self.variables = perturbed_f64(self.model.init(jax.random.key(0), self.x, self.mask), 0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_shapes_gates_and_jit(self):
        out = self.variant(self.model.apply)(self.variables, self.x, self.mask)
        chex.assert_shape(out["logits"], (B, CLASSES))
        chex.assert_shape(out["gates"], (B, N))
        gates = np.asarray(out["gates"])
        self.assertTrue(np.all((gates[np.asarray(self.mask)] > 0) & (gates[np.asarray(self.mask)] < 1)))
        np.testing.assert_array_equal(gates[~np.asarray(self.mask)], 0)
        chex.assert_trees_all_close(out, jax.jit(self.model.apply)(self.variables, self.x, self.mask), rtol=1e-12)

    def test_matches_the_formula(self):
        out = self.model.apply(self.variables, self.x, self.mask)
        p = self.variables["params"]

        def dense(q, a):
            return a @ q["kernel"] + q["bias"]

        def fusion(q, h, m):
            heads = lambda a: a.reshape(B, N, 2, D // 2)
            qh, kh, vh = (heads(dense(q[n], h)) for n in ("query", "key", "value"))
            logits = jnp.einsum("bqhd,bkhd->bhqk", qh, kh) / jnp.sqrt(D / 2)
            logits = jnp.where(m[:, None, None, :], logits, -jnp.inf)
            att = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, -1), vh).reshape(B, N, D)
            return jnp.where(m[..., None], dense(q["out"], att), 0)

        m = self.mask
        proj = jnp.where(m[..., None], dense(p["project"], self.x), 0)
        fused = fusion(p["fusion_1"], fusion(p["fusion_0"], proj, m), m)
        s = jnp.where(m, jnp.mean(fused, -1), 0)
        g = p["gates"]
        gates = jnp.where(m, jax.nn.sigmoid(jax.nn.relu(s @ g["w1"] + g["b1"]) @ g["w2"] + g["b2"]), 0)
        video_ = jnp.sum(jnp.where(m[..., None], gates[..., None] * fused + proj, 0), 1) / LENGTHS[:, None]
        np.testing.assert_allclose(out["gates"], gates, rtol=1e-10)
        np.testing.assert_allclose(out["logits"], dense(p["classifier"], video_), rtol=1e-10)

    def test_invariant_to_clip_order_when_gating_is_equivariant(self):
        variables = {**self.variables, "params": symmetric_gates(self.variables["params"])}
        x = self.x[:1]
        perm = jnp.array([3, 0, 4, 1, 2])
        out = self.model.apply(variables, x)
        shuffled = self.model.apply(variables, x[:, perm])
        np.testing.assert_allclose(shuffled["logits"], out["logits"], rtol=1e-10)
        np.testing.assert_allclose(shuffled["gates"], out["gates"][:, perm], rtol=1e-10)
        # learned (position-specific) gates are not equivariant: the test can fail
        learned = self.model.apply(self.variables, x[:, perm])["logits"]
        self.assertGreater(float(jnp.max(jnp.abs(learned - self.model.apply(self.variables, x)["logits"]))), 1e-6)

    def test_masked_clips_change_nothing(self):
        out = self.model.apply(self.variables, self.x, self.mask)
        garbage = self.x.at[1, 3:].set(100.0)
        # masked descriptors are zeroed, so even clip_features are unchanged
        chex.assert_trees_all_close(self.model.apply(self.variables, garbage, self.mask), out, rtol=1e-12)
        # without gates (whose weights fix N) a padded video equals its valid clips alone
        model = self.model.clone(gating=False)
        params = {k: v for k, v in self.variables["params"].items() if k != "gates"}
        padded = model.apply({"params": params}, garbage, self.mask)["logits"][1]
        alone = model.apply({"params": params}, self.x[1:, :3])["logits"][0]
        np.testing.assert_allclose(padded, alone, rtol=1e-10)

    @parameterized.named_parameters(
        ("full", {}, {"project", "fusion_0", "gates", "classifier"}, True),
        ("two_fusion_layers", {"fusion_layers": 2}, {"project", "fusion_0", "fusion_1", "gates", "classifier"}, True),
        ("gating_only", {"fusion_layers": 0}, {"project", "gates", "classifier"}, True),
        ("fusion_only", {"gating": False}, {"project", "fusion_0", "classifier"}, False),
        ("mean_fusion", {"head": "mean_fusion"}, {"classifier"}, False),
        ("central", {"head": "central"}, {"classifier"}, False),
    )
    def test_ablation_switches_remove_parts(self, fields, expected, has_gates):
        model = GCFNet(num_classes=CLASSES, dim=D, **fields)
        variables = model.init(jax.random.key(0), self.x, self.mask)
        self.assertEqual(set(variables["params"]), expected)
        self.assertEqual("gates" in model.apply(variables, self.x, self.mask), has_gates)

    def test_mean_fusion_and_central_heads(self):
        for head, pick in (
            ("mean_fusion", lambda x: jnp.stack([x[0].mean(0), x[1, :3].mean(0)])),
            ("central", lambda x: jnp.stack([x[0, 2], x[1, 1]])),
        ):
            model = GCFNet(num_classes=CLASSES, head=head)
            variables = perturbed_f64(model.init(jax.random.key(0), self.x, self.mask), 1)
            q = variables["params"]["classifier"]
            np.testing.assert_allclose(model.apply(variables, self.x, self.mask)["logits"],
                                       pick(self.x) @ q["kernel"] + q["bias"], rtol=1e-10, err_msg=head)

    def test_head_params_and_flops_by_hand(self):
        model = GCFNet(num_classes=CLASSES, dim=D, fusion_layers=2)
        variables = model.init(jax.random.key(0), self.x)
        hidden = N  # default gate width
        params = D0 * D + D + 2 * 4 * (D * D + D) + (N * hidden + hidden + hidden * N + N) + D * CLASSES + CLASSES
        self.assertEqual(count_params(variables["params"]), params)
        inputs = (jax.ShapeDtypeStruct((1, N, D0), jnp.float32),)
        flops = count_flops(model, None, inputs)
        attention = 2 * N * N * D  # q k^T and a v
        expected = N * D0 * D + 2 * (4 * N * D * D + attention) + 2 * N * hidden + D * CLASSES
        self.assertEqual(flops.total, expected)
        self.assertEqual(flops.total_2x, 2 * expected)

    def test_default_head_has_the_papers_cost(self):
        """The paper's head: 0.86 M parameters, 15 MFLOPs (2 per multiply-add) on 10 clips of 2048-d, 600 classes.
        D = 240 with one fusion layer (Q, K, V, output projections) gives 867,940 and 2 x 7,411,400 (docs/design.md)."""
        n, d0, k = 10, 2048, 600
        model = GCFNet(num_classes=k)
        d, layers = model.dim, model.fusion_layers
        self.assertEqual((d, layers, model.gate_hidden, model.dropout_rate), (240, 1, None, 0.0))
        x = jax.ShapeDtypeStruct((1, n, d0), jnp.float32)
        params = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)["params"]
        formula = (d0 + 1) * d + layers * 4 * (d + 1) * d + 2 * (n * n + n) + (d + 1) * k
        self.assertEqual(count_params(params), formula)
        self.assertEqual(formula, 867_940)
        macs = n * d0 * d + layers * (4 * n * d * d + 2 * n * n * d) + 2 * n * n + d * k
        self.assertEqual(count_flops(model, None, (x,)).total, macs)
        self.assertEqual(macs, 7_411_400)
        self.assertLess(abs(formula / 0.86e6 - 1), 0.01)
        self.assertLess(abs(2 * macs / 15e6 - 1), 0.02)

    def test_no_dropout_train_equals_eval(self):
        out = self.model.apply(self.variables, self.x, self.mask)
        trained = self.model.apply(self.variables, self.x, self.mask, train=True, rngs={"dropout": jax.random.key(1)})
        chex.assert_trees_all_close(trained, out, rtol=1e-12)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"head: expected one of"):
            GCFNet(head="max").init(jax.random.key(0), self.x)
        with self.assertRaisesRegex(ValueError, r"'average' is now 'mean_fusion'"):
            GCFNet(head="average").init(jax.random.key(0), self.x)
        with self.assertRaisesRegex(ValueError, r"expects clip descriptors \[B, N, D0\]"):
            GCFNet().init(jax.random.key(0), jnp.zeros((1, 2, 4, 8, 8, 3)))
        with self.assertRaisesRegex(ValueError, "clip_mask"):
            self.model.apply(self.variables, self.x, self.mask[:, :3])


class GCFBackboneTest(chex.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        backbone = X3D(num_classes=0, width_factor=0.5, depth_factor=0.2, head_width=6)
        cls.backbone = backbone
        cls.model = GCFNet(num_classes=CLASSES, backbone=backbone, dim=D)
        cls.clips = video(0, (2, 3, 4, 16, 16, 3))
        cls.mask = ops.lengths_to_mask(jnp.array([3, 2]), 3)
        cls.variables = perturbed_f64(jax.jit(cls.model.init)(jax.random.key(0), cls.clips, cls.mask), 0)

    def test_shared_backbone_equals_a_loop_over_clips(self):
        out = jax.jit(self.model.apply)(self.variables, self.clips)
        backbone_vars = {k: v["backbone"] for k, v in self.variables.items()}
        apply = jax.jit(self.backbone.apply)
        for n in range(3):
            np.testing.assert_allclose(out["clip_features"][:, n], apply(backbone_vars, self.clips[:, n]), rtol=1e-10)

    def test_masked_clips_change_nothing_in_training(self):
        def run(variables, clips):
            def loss(params):
                out, state = self.model.apply({**variables, "params": params}, clips, self.mask, train=True,
                                              mutable=["batch_stats"])
                return jnp.sum(out["logits"] ** 2), (out, state)

            return jax.grad(loss, has_aux=True)(variables["params"])

        run = jax.jit(run)
        grads, (out, state) = run(self.variables, self.clips)
        garbage = self.clips.at[1, 2].set(7.0)
        grads2, (out2, state2) = run(self.variables, garbage)
        chex.assert_trees_all_close((grads, out["logits"], state), (grads2, out2["logits"], state2), rtol=1e-10)
        chex.assert_tree_all_finite(grads)
        self.assertGreater(float(jnp.max(jnp.abs(grads["backbone"]["res2_0"]["a"]["conv"]["kernel"]))), 0)

    def test_registry_builds_a_feature_extractor_backbone(self):
        model = build({"name": "gcf_net", "num_classes": 600, "backbone": {"name": "resnext101"}})
        self.assertEqual(model.backbone.num_classes, 0)
        self.assertEqual(build({"name": "gcf_net"}).backbone, None)
        with self.assertRaisesRegex(ValueError, "num_classes=0"):
            GCFNet(backbone=X3D(num_classes=10)).init(jax.random.key(0), self.clips)


if __name__ == "__main__":
    absltest.main()
