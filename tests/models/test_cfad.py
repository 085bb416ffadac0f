"""CFAD: shapes, the loss and its gradients, detections, refinement, anchors (the loss's parts:
tests/train/test_cfad_losses.py).

One tiny model (X3D trunk of width 8-16, clips 2 x 8 x 32 x 32, res3 features 8 x 4 x 4)
is traced or compiled a few times only: shapes via eval_shape, one jitted loss+gradients
program for both stages, one jitted and one eager inference.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from cfjax import ops
from cfjax.data import synthetic
from cfjax.data.sampling import sample_clip
from cfjax.models import CFAD, build
from cfjax.models.cfad import refine_tube, sample_times
from cfjax.models.cfad_anchors import kmeans_anchor_sizes, spatial_anchors
from cfjax.train.losses import cfad_loss
from cfjax.train.tasks import TubeDetectionTask, tube_clip_targets
from tests.train.test_tube_targets import whole_video

B, T, H, W, CLASSES, N, P, G = 2, 8, 32, 32, 8, 4, 4, 3
CONFIG = {
    "name": "cfad",
    "num_classes": CLASSES,
    "backbone": {
        "name": "x3d_xs",
        "width_factor": 0.5,
        "depth_factor": 1.0,
        "base_depths": [1, 1, 1, 1],
        "head_width": 8,
    },
    "feature_stage": "res3",
    "num_samples": N,
    "max_proposals": P,
    "temporal_scales": [0.25, 0.5, 1.0],
    "tpn_width": 8,
    "width": 8,
    "hourglass_width": 8,
    "rpn_width": 8,
    "poly_order": 2,
    "pre_nms_tubes": 8,
    "anchor_sizes": [[4, 4], [6, 6], [8, 8], [6, 10], [10, 6], [12, 12]],
}
USED_BACKBONE = ("stem_xy", "stem_t", "res2_0", "res3_0")  # the layers up to feature_stage
UNUSED_BACKBONE = ("res4_0", "res5_0", "head_conv", "head_proj")
TPN = ("tpn_conv", "tpn_head")


def _fill(tree, rng, scale):
    return jax.tree_util.tree_map(lambda s: jnp.asarray(scale * rng.standard_normal(s.shape), jnp.float32), tree)


class CFADModelTest(chex.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = build(CONFIG)
        examples = [synthetic.tubes(seed, num_frames=T, height=H, width=W) for seed in range(B)]
        cls.video = jnp.asarray(np.stack([e["frames"] for e in examples]), jnp.float32) / 255
        clips = [sample_clip(whole_video(e), T, start=0) for e in examples]
        per_video = [TubeDetectionTask.targets(tube_clip_targets(clip, max_tubes=G)) for clip in clips]
        cls.targets = {k: jnp.asarray(np.stack([t[k] for t in per_video])) for k in per_video[0]}
        # Parameters from the shapes (no compiled init): numpy noise, unit BN statistics.
        shapes = jax.eval_shape(
            lambda x: cls.model.init(jax.random.key(0), x, train=True, targets=cls.targets), cls.video
        )
        rng = np.random.default_rng(0)
        stats = jax.tree_util.tree_map(
            lambda s: jnp.zeros(s.shape, jnp.float32) if s.shape else jnp.float32(0), shapes["batch_stats"]
        )
        stats = jax.tree_util.tree_map_with_path(lambda path, x: x + 1 if path[-1].key == "var" else x, stats)
        cls.variables = {"params": _fill(shapes["params"], rng, 0.2), "batch_stats": stats}
        cls.infer = jax.jit(lambda v, x: cls.model.apply(v, x, train=False))
        cls.detections = cls.infer(cls.variables, cls.video)

    def test_built_from_config(self):
        self.assertIsInstance(self.model, CFAD)
        self.assertEqual(self.model.anchor_sizes[3], (6.0, 10.0))

    def test_shapes(self):
        train_out = jax.eval_shape(
            lambda v, x: self.model.apply(v, x, train=True, targets=self.targets, mutable=["batch_stats"])[0],
            self.variables,
            self.video,
        )
        a_t, a = T * 3, 4 * 4 * 6  # temporal anchors: 8 steps x 3 scales; spatial: 4 x 4 cells x 6
        expected = {
            "tpn_logits": (B, a_t),
            "tpn_offsets": (B, a_t, 2),
            "tpn_anchors": (a_t, 2),
            "proposals": (B, P, 2),
            "proposal_valid": (B, P),
            "proposal_scores": (B, P),
            "sample_times": (B, P, N),
            "anchors": (a, 4),
            "class_logits": (B, P, a, CLASSES + 1),
            "theta": (B, P, a, 3, 4),
            "importance_logits": (B, P, N),
            "rpn_logits": (B, P, N, a, CLASSES),
            "rpn_deltas": (B, P, N, a, CLASSES, 4),
        }
        self.assertEqual({k: v.shape for k, v in train_out.items()}, expected)
        for name in ("detections", "coarse_detections"):
            d = self.detections[name]
            chex.assert_shape(d["boxes"], (B, 3, N, 4))
            chex.assert_shape(d["frames"], (B, 3, N))
            chex.assert_shape((d["labels"], d["scores"], d["valid"]), (B, 3))
            chex.assert_shape(d["frame_boxes"], (B, 3, T, 4))
            chex.assert_shape(d["frame_valid"], (B, 3, T))
        chex.assert_shape(self.detections["detections"]["keys"], (B, 3, N))

    def test_loss_finite_and_gradients_reach_each_stage(self):
        def stage_loss(params, targets, stage):
            out, _ = self.model.apply(
                {**self.variables, "params": params},
                self.video,
                train=True,
                targets=targets,
                mutable=["batch_stats"],
            )
            total, parts = cfad_loss(out, targets, {"stage": stage})
            return total, (parts, out["proposals"], out["proposal_valid"])

        @jax.jit
        def both(params, targets):
            tpn = jax.value_and_grad(lambda p: stage_loss(p, targets, "tpn"), has_aux=True)(params)
            e2e = jax.value_and_grad(lambda p: stage_loss(p, targets, "end_to_end"), has_aux=True)(params)
            return tpn, e2e

        ((tpn_total, (tpn_parts, _, _)), tpn_grads), ((total, (parts, proposals, valid)), grads) = both(
            self.variables["params"], self.targets
        )
        # videos without any tube: every part and gradient stays finite (same compiled program)
        empty = {**self.targets, "tube_valid": jnp.zeros_like(self.targets["tube_valid"])}
        for result in both(self.variables["params"], empty):
            for leaf in jax.tree_util.tree_leaves(result):
                self.assertTrue(np.all(np.isfinite(np.asarray(leaf, float))))
        # training with targets: the GT extents [first, last + 1) fill the first G proposal slots
        for b in range(B):
            for g in range(G):
                frames = np.flatnonzero(self.targets["valid"][b, g])
                self.assertEqual(bool(valid[b, g]), bool(self.targets["tube_valid"][b, g]))
                if len(frames):
                    np.testing.assert_allclose(proposals[b, g], [frames[0], frames[-1] + 1])
        self.assertEqual(set(tpn_parts), {"tpn_cls", "tpn_reg"})
        self.assertEqual(
            set(parts), {"tpn_cls", "tpn_reg", "coarse_cls", "coarse_poly", "importance", "rpn_cls", "rpn_reg"}
        )
        for value in [tpn_total, total, *parts.values()]:
            self.assertTrue(np.isfinite(float(value)))
        self.assertGreater(float(parts["coarse_poly"]), 0)
        np.testing.assert_allclose(float(total), sum(float(v) for v in parts.values()), rtol=1e-5)

        def norm(tree):
            return float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree_util.tree_leaves(tree)))

        heads = [k for k in grads if k != "backbone"]
        for name in heads:
            self.assertGreater(norm(grads[name]), 0, f"end_to_end: no gradient reaches {name}")
            if name in TPN:
                self.assertGreater(norm(tpn_grads[name]), 0, f"tpn stage: no gradient reaches {name}")
            else:
                self.assertEqual(norm(tpn_grads[name]), 0, f"tpn stage: {name} should not train")
        for layer in USED_BACKBONE:
            self.assertGreater(norm(grads["backbone"][layer]), 0, layer)
            self.assertGreater(norm(tpn_grads["backbone"][layer]), 0, layer)
        for layer in UNUSED_BACKBONE:  # after feature_stage: computed by the zoo backbone, unused
            self.assertEqual(norm(grads["backbone"][layer]), 0, layer)

    def test_jit_matches_eager(self):
        eager = self.model.apply(self.variables, self.video, train=False)
        chex.assert_trees_all_close(eager, self.detections, atol=1e-4, rtol=1e-4)

    def test_detections_are_few_sorted_and_disjoint(self):
        for name in ("detections", "coarse_detections"):
            d = jax.tree_util.tree_map(np.asarray, self.detections[name])
            for b in range(B):
                valid = d["valid"][b]
                self.assertLessEqual(valid.sum(), 3)
                self.assertTrue(valid.any())
                self.assertTrue(np.all(valid[: valid.sum()]))  # valid first
                scores = d["scores"][b][valid]
                self.assertTrue(np.all(np.diff(scores) <= 0), scores)
                self.assertTrue(np.all((d["labels"][b][valid] >= 0) & (d["labels"][b][valid] < CLASSES)))
                self.assertTrue(np.all(d["frames"][b] >= 0) & np.all(d["frames"][b] < T))
                boxes = d["frame_boxes"][b][valid]
                fv = d["frame_valid"][b][valid]
                for i in range(len(boxes)):
                    for j in range(i + 1, len(boxes)):
                        iou = float(ops.tube_iou(boxes[i], fv[i], boxes[j], fv[j], plus_one=True))
                        self.assertLessEqual(iou, 0.2 + 1e-6)
                # a refined tube's boxes at key steps lie inside the frame
                self.assertTrue(np.all(d["boxes"][b] >= 0) and np.all(d["boxes"][b] <= W - 1))


class CFADPiecesTest(chex.TestCase):
    def test_sample_times_span_the_proposal(self):
        np.testing.assert_allclose(sample_times(jnp.array([[2.0, 10.0]]), 5), [[2.0, 3.75, 5.5, 7.25, 9.0]])

    def test_spatial_anchors_are_inclusive_and_centred(self):
        a = spatial_anchors(2, 2, 8, [[5, 3]])
        np.testing.assert_allclose(a[0], [1.5, 2.5, 5.5, 4.5])  # centre (3.5, 3.5), 5 x 3 inclusive pixels
        np.testing.assert_allclose(a[1, [0, 2]], a[0, [0, 2]] + 8)  # x moves first

    def test_refinement_moves_to_the_proposal_in_the_window(self):
        n = 4
        coarse = jnp.tile(jnp.array([[10.0, 10.0, 20.0, 20.0]]), (n, 1))
        shifted = jnp.array([12.0, 11.0, 22.0, 21.0])  # centre moved (2, 1): inside the 16 x 16 window
        far = jnp.array([50.0, 50.0, 60.0, 60.0])  # higher score, outside the window
        weaker = jnp.array([9.0, 9.0, 19.0, 19.0])
        proposals = jnp.tile(jnp.stack([shifted, far, weaker])[None], (n, 1, 1))
        scores = jnp.tile(jnp.array([0.9, 0.99, 0.5]), (n, 1))
        boxes, step_scores, keys = refine_tube(coarse, jnp.ones(n), proposals, scores, 0.7)
        np.testing.assert_allclose(boxes, jnp.tile(shifted, (n, 1)), atol=1e-6)
        np.testing.assert_allclose(step_scores, np.full(n, 0.8), rtol=1e-6)
        np.testing.assert_array_equal(keys, np.ones(n, bool))
        # importance 0, ablations: the two ends are refined, the middle follows the spline (here constant)
        for interpolation in ("key_spline", "residual"):
            boxes, step_scores, keys = refine_tube(
                coarse, jnp.zeros(n), proposals, scores, 0.7, interpolation=interpolation
            )
            np.testing.assert_array_equal(keys, [True, False, False, True])
            np.testing.assert_allclose(boxes, jnp.tile(shifted, (n, 1)), atol=1e-5)
            np.testing.assert_allclose(step_scores, [0.8, 0.7, 0.7, 0.8], rtol=1e-6)
        # ... the default forces no key: with importance 0 the tube is the coarse tube
        boxes, step_scores, keys = refine_tube(coarse, jnp.zeros(n), proposals, scores, 0.7)
        np.testing.assert_array_equal(keys, False)
        np.testing.assert_allclose(boxes, coarse)
        np.testing.assert_allclose(step_scores, np.full(n, 0.7))
        # nothing inside the window: the coarse box stays, the score is the class score
        boxes, step_scores, _ = refine_tube(coarse, jnp.ones(n), proposals[:, 1:2], scores[:, 1:2], 0.7)
        np.testing.assert_allclose(boxes, coarse)
        np.testing.assert_allclose(step_scores, np.full(n, 0.7))

    def test_final_tube_follows_the_coarse_boxes_between_keys(self):
        # Coarse boxes on an arc (x up 20 px at the middle); keys only at the ends, where the RPN
        # finds a box shifted 2 px right. The paper's tube: refined ends, coarse boxes in between.
        n = 5
        t = np.linspace(0, 1, n)
        bump = 80 * t * (1 - t)  # 0, 15, 20, 15, 0
        coarse = jnp.asarray(np.stack([10 + bump, np.full(n, 10.0), 30 + bump, np.full(n, 40.0)], -1))
        proposals = (coarse + jnp.array([2.0, 0.0, 2.0, 0.0]))[:, None]
        scores = jnp.full((n, 1), 0.9)
        importance = jnp.array([0.9, 0.1, 0.2, 0.1, 0.3])  # alpha 0.25: keys at the ends only
        refine = jax.jit(refine_tube, static_argnames="interpolation")
        boxes, step_scores, keys = refine(coarse, importance, proposals, scores, 0.5)
        np.testing.assert_array_equal(keys, [True, False, False, False, True])
        np.testing.assert_allclose(boxes[1:-1], coarse[1:-1])  # on the coarse arc
        np.testing.assert_allclose(boxes[np.array([0, -1])], proposals[np.array([0, -1]), 0])
        np.testing.assert_allclose(step_scores, [0.7, 0.5, 0.5, 0.5, 0.7])
        # the old default, a spline through the two refined ends: a straight line off the arc by 15-20 px
        boxes, _, _ = refine(coarse, importance, proposals, scores, 0.5, interpolation="key_spline")
        np.testing.assert_allclose(boxes[:, 0], np.full(n, 12.0), atol=1e-5)
        # keys are the steps with importance >= alpha only: the last step (0.2 < 0.25) is not forced in
        _, _, keys = refine(coarse, importance.at[-1].set(0.2), proposals, scores, 0.5)
        np.testing.assert_array_equal(keys, [True, False, False, False, False])
        _, _, keys = refine(coarse, importance.at[-1].set(0.2), proposals, scores, 0.5, interpolation="residual")
        np.testing.assert_array_equal(keys, [True, False, False, False, True])

    def test_synthetic_config_anchors_are_the_kmeans_of_its_training_boxes(self):
        from configs import cfad as cfad_config
        from configs import common

        sizes = common.SYNTHETIC_SIZES["tubes"]
        wh = []
        for i in range(sizes["num_train"]):  # the builder's seeds: (config seed 0, train split 0, i)
            video = synthetic.tubes((0, 0, i), num_frames=sizes["num_frames"], object_size=sizes["object_size"])
            wh += [np.stack([b[:, 3] - b[:, 1] + 1, b[:, 4] - b[:, 2] + 1], -1) for _, b in video["tubes"]]
        np.testing.assert_allclose(
            kmeans_anchor_sizes(np.concatenate(wh), 6), cfad_config.SYNTHETIC_TUBE_ANCHORS, atol=0.005
        )

    def test_kmeans_is_deterministic_and_finds_two_clusters(self):
        rng = np.random.default_rng(3)
        small = rng.normal([10, 20], 0.5, (40, 2))
        large = rng.normal([60, 40], 1.0, (25, 2))
        boxes = np.concatenate([small, large])[rng.permutation(65)]
        centres = kmeans_anchor_sizes(boxes, k=2)
        np.testing.assert_allclose(centres[0], small.mean(0), rtol=1e-12)
        np.testing.assert_allclose(centres[1], large.mean(0), rtol=1e-12)
        six = kmeans_anchor_sizes(boxes, k=6)
        np.testing.assert_array_equal(six, kmeans_anchor_sizes(boxes.copy(), k=6))
        self.assertEqual(six.shape, (6, 2))
        self.assertTrue(np.all(np.diff(six.prod(1)) >= 0))
        with self.assertRaises(ValueError):
            kmeans_anchor_sizes(boxes[:3], k=6)


if __name__ == "__main__":
    absltest.main()
