"""CFAD's loss parts on hand-made outputs: TPN, coarse anchors (the best-anchor rule, badly covered
tubes), refine module (importance and RPN labels)."""

import chex
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from cfjax import ops
from cfjax.train.losses import coarse_anchor_terms, refine_step_terms, tpn_loss


class CFADLossPartsTest(chex.TestCase):
    def test_tpn_loss_is_zero_for_perfect_outputs(self):
        anchors = jnp.array([[0.0, 4.0], [4.0, 8.0], [0.0, 8.0], [2.0, 6.0]])
        valid = jnp.zeros((1, 1, 8), bool).at[0, 0, :4].set(True)  # GT extent [0, 4)
        target = ops.encode_segments(jnp.array([0.0, 4.0]), anchors)[None]
        # anchor 0 positive (tIoU 1), 1 negative (0), 2 and 3 ignored (0.5, 1/3): their logits do not count
        logits = jnp.array([[20.0, -20.0, 20.0, 20.0]])
        cls, reg = tpn_loss(logits, target, anchors, valid)
        self.assertLess(float(cls), 1e-8)
        self.assertEqual(float(reg), 0.0)
        cls_bad, reg_bad = tpn_loss(-logits, target + 1.0, anchors, valid)
        self.assertGreater(float(cls_bad), 10)
        np.testing.assert_allclose(float(reg_bad), 1.0)  # two offsets off by 1 at the positive: 2 x 0.5

    def test_coarse_terms_vanish_at_the_fitted_polynomial(self):
        f = np.arange(8.0)
        gt = np.stack([10 + f, np.full(8, 10.0), 20 + f, np.full(8, 20.0)], -1)[None]  # 1 px / frame to the right
        gt_boxes = jnp.asarray(gt)
        gt_valid = jnp.ones((1, 8), bool)
        anchors = jnp.array([[10.0, 10.0, 20.0, 20.0], [100.0, 100.0, 110.0, 110.0]])
        theta = jnp.zeros((2, 3, 4)).at[0, 1, 0].set(0.7)  # dx = f / 10 = 0.7 t over the proposal [0, 8)
        logits = jnp.array([[-10.0, 0, 0, 10.0], [10.0, 0, 0, -10.0]])  # anchor 0 -> label 2 (+1), 1 -> background
        kw = {"pos_iou": 0.5, "neg_iou": 0.3, "segment_length": 6}
        ce, pos, neg, poly = coarse_anchor_terms(
            logits, theta, anchors, jnp.array([0.0, 8.0]), True, gt_boxes, gt_valid, jnp.array([2]), **kw
        )
        np.testing.assert_array_equal(pos, [True, False])
        np.testing.assert_array_equal(neg, [False, True])
        self.assertLess(float(jnp.max(ce)), 1e-4)
        self.assertLess(float(poly[0]), 1e-12)
        # theta = 0 (the anchor itself): error (f / 10)^2 averaged over the 8 GT frames
        _, _, _, poly0 = coarse_anchor_terms(
            logits,
            jnp.zeros_like(theta),
            anchors,
            jnp.array([0.0, 8.0]),
            True,
            gt_boxes,
            gt_valid,
            jnp.array([2]),
            **kw,
        )
        np.testing.assert_allclose(float(poly0[0]), np.mean((f / 10) ** 2), rtol=1e-12)
        # a proposal over frames 4..7 only: times restart at its first frame, T_A = 4
        theta_half = jnp.zeros((2, 3, 4)).at[0, 0, 0].set(0.4).at[0, 1, 0].set(0.3)  # dx = (4 + 3 t) / 10
        _, _, _, poly_half = coarse_anchor_terms(
            logits,
            theta_half,
            anchors,
            jnp.array([4.0, 8.0]),
            True,
            gt_boxes,
            gt_valid,
            jnp.array([2]),
            pos_iou=0.3,
            neg_iou=0.1,
            segment_length=6,
        )
        self.assertLess(float(poly_half[0]), 1e-12)

    def test_best_anchor_rule_and_badly_covered_tubes(self):
        # An actor moving 4 px a frame (its width is 11 px): no anchor passes 0.5 mean IoU over
        # the first six boxes, so without the rule the proposal has no positive at all.
        f = np.arange(8.0)
        gt_boxes = jnp.asarray(np.stack([4 * f, np.zeros(8), 4 * f + 10, np.full(8, 10.0)], -1)[None])
        gt_valid = jnp.ones((1, 8), bool)
        anchors = jnp.array([[0.0, 0.0, 10.0, 10.0], [12.0, 0.0, 22.0, 10.0], [100.0, 100.0, 110.0, 110.0]])
        logits, theta = jnp.zeros((3, 4)), jnp.zeros((3, 3, 4))
        kw = {"pos_iou": 0.5, "neg_iou": 0.3, "segment_length": 6}

        def labels(anchors, proposal, **options):
            _, pos, neg, _ = coarse_anchor_terms(
                logits, theta, anchors, jnp.array(proposal), True, gt_boxes, gt_valid, jnp.array([1]), **kw, **options
            )
            return np.asarray(pos), np.asarray(neg)

        pos, _ = labels(anchors, [0.0, 8.0], min_tiou=0.5)
        np.testing.assert_array_equal(pos, False)
        # first-six mean IoUs (+1 pixels): anchor 0 0.271 (frames 0..2), anchor 1 0.375 (frames 1..5)
        pos, neg = labels(anchors, [0.0, 8.0], min_tiou=0.5, best_anchor_positive=True)
        np.testing.assert_array_equal(pos, [False, True, False])
        self.assertTrue(bool(neg[2]))
        # a proposal with tIoU 2/8 with the tube is background for every anchor, even the
        # one that sits on the tube's boxes inside it (frames 6 and 7) ...
        anchors_late = anchors.at[2].set(jnp.array([24.0, 0.0, 34.0, 10.0]))
        pos, neg = labels(anchors_late, [6.0, 8.0], min_tiou=0.5, best_anchor_positive=True)
        np.testing.assert_array_equal(pos, False)
        np.testing.assert_array_equal(neg, True)
        # ... which without min_tiou is positive
        pos, _ = labels(anchors_late, [6.0, 8.0])
        np.testing.assert_array_equal(pos, [False, False, True])

    def test_refine_terms_label_rpn_anchors_at_every_gt_step(self):
        # A static 10 x 10 actor on frames 2..5 of 8; proposal [2, 6) sampled at 4 steps.
        gt_boxes = jnp.tile(jnp.array([10.0, 10.0, 19.0, 19.0]), (1, 8, 1))
        gt_valid = jnp.asarray(np.isin(np.arange(8), [2, 3, 4, 5])[None])
        # IoUs (+1 pixels) with the GT box: 1, 64/136 = 0.47 (shifted 2, 2), 36/164 = 0.22 (shifted 4, 4), 0
        anchors = jnp.array(
            [[10.0, 10.0, 19.0, 19.0], [12.0, 12.0, 21.0, 21.0], [14.0, 14.0, 23.0, 23.0], [40.0, 40.0, 49.0, 49.0]]
        )
        n, a, c = 4, 4, 3
        kw = {"key_eps": 0.8, "rpn_neg_iou": 0.3}

        def terms(proposal, times, deltas=None, **options):
            deltas = jnp.zeros((n, a, c, 4)) if deltas is None else deltas
            out = refine_step_terms(
                jnp.zeros(n), jnp.zeros((n, a, c)), deltas, anchors, jnp.array(proposal), True,
                jnp.array(times), gt_boxes, gt_valid, jnp.array([2]), **kw, **options,
            )  # fmt: skip
            return [np.asarray(v) for v in out]

        _, imp_mask, bce, pos, neg, reg = terms(
            [2.0, 6.0], [2.0, 3.0, 4.0, 5.0], proposal_pos_tiou=0.5, rpn_pos_iou=0.5
        )
        np.testing.assert_array_equal(imp_mask, True)
        np.testing.assert_array_equal(pos, np.tile([True, False, False, False], (n, 1)))  # at every step, keys or not
        np.testing.assert_array_equal(neg, np.tile([False, False, True, True], (n, 1)))
        np.testing.assert_allclose(bce[pos | neg], np.log(2.0), rtol=1e-6)  # logits 0
        np.testing.assert_allclose(reg[:, 0], 0, atol=1e-6)  # anchor 0 is the GT box: zero deltas are right
        _, _, _, pos, _, _ = terms([2.0, 6.0], [2.0, 3.0, 4.0, 5.0], proposal_pos_tiou=0.5, rpn_pos_iou=0.45)
        np.testing.assert_array_equal(pos, np.tile([True, True, False, False], (n, 1)))
        # steps off the tube (frames 6, 7) and a proposal covering the tube badly train nothing
        _, imp_mask, _, pos, neg, _ = terms([4.0, 8.0], [4.0, 5.0, 6.0, 7.0], proposal_pos_tiou=0.2, rpn_pos_iou=0.5)
        np.testing.assert_array_equal(imp_mask, [True, True, False, False])
        np.testing.assert_array_equal(pos.any(1) | neg.any(1), [True, True, False, False])
        _, imp_mask, _, pos, neg, _ = terms([4.0, 8.0], [4.0, 5.0, 6.0, 7.0], proposal_pos_tiou=0.5, rpn_pos_iou=0.5)
        self.assertFalse(imp_mask.any() or pos.any() or neg.any())  # tIoU 2/6 < 0.5


if __name__ == "__main__":
    absltest.main()
