"""Tubes: polynomial tubes and targets, anchor matching, splines vs scipy, key-timestamp labels,
local search, tube IoU and tube NMS."""

import functools

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from hypothesis import given
from scipy.interpolate import CubicSpline

from cfjax import ops
from cfjax.metrics import detection as detection_metrics
from tests.ops.test_boxes import _ref_iou

# --------------------------------------------------------------------------- NumPy references


def _ref_tube_iou(a, va, b, vb, plus_one):
    """ACT's tube IoU from the first/last valid frames, written as a loop."""
    fa, fb = np.flatnonzero(va), np.flatnonzero(vb)
    if len(fa) == 0 or len(fb) == 0:
        return 0.0
    lo, hi = max(fa[0], fb[0]), min(fa[-1], fb[-1])
    if hi < lo:
        return 0.0
    ious = [_ref_iou(a[t], b[t], plus_one) if va[t] and vb[t] else 0.0 for t in range(lo, hi + 1)]
    return (hi - lo + 1) / (max(fa[-1], fb[-1]) - min(fa[0], fb[0]) + 1) * sum(ious) / len(ious)


def _ref_match(anchors, gt, valid, k, pos, neg, plus_one, best_anchor=False):
    first = np.full((len(anchors), len(gt)), -1.0)
    best = np.zeros((len(anchors), len(gt)))
    for a, anchor in enumerate(anchors):
        for g in range(len(gt)):
            vals = [_ref_iou(anchor, gt[g, t], plus_one) for t in range(gt.shape[1]) if valid[g, t]]
            if not vals:
                continue
            # the disjoint K-box segments (a partial tail is dropped; a short tube is one segment)
            windows = [sum(vals[s : s + k]) / len(vals[s : s + k]) for s in range(0, max(len(vals) - k + 1, 1), k)]
            first[a, g], best[a, g] = windows[0], max(windows)
    positive = (first > pos).any(1)
    assigned = first.argmax(1)
    if best_anchor:
        chosen = {}  # anchor -> tube of highest first among the tubes it is the best anchor of
        for g in range(len(gt)):
            a = int(first[:, g].argmax())
            if first[a, g] > 0 and (a not in chosen or first[a, g] > first[a, chosen[a]]):
                chosen[a] = g
        for a, g in chosen.items():
            positive[a], assigned[a] = True, g
    negative = (best < neg).all(1) & ~positive
    return assigned, positive, negative


def _ref_spline(times, values, keys, query):
    t, v = times[keys], values[keys]
    if len(t) == 1:
        return np.broadcast_to(v[0], (len(query), v.shape[1]))
    return CubicSpline(t, v, bc_type="natural")(query)


def _ref_key_labels(boxes, eps, plus_one):
    """Greedy Eq. 5 with scipy's spline; returns the labels and the IoU before the last addition."""
    n = len(boxes)
    times = np.linspace(0, 1, n)

    def score(keys):
        interp = _ref_spline(times, boxes, keys, times)
        return np.mean([_ref_iou(interp[i], boxes[i], plus_one) for i in range(n)])

    keys = np.zeros(n, bool)
    keys[[0, -1]] = True
    current, before_last = score(keys), None
    while current <= eps and not keys.all():
        trials = [score(keys | (np.arange(n) == j)) if not keys[j] else -np.inf for j in range(n)]
        j = int(np.argmax(trials))
        keys[j], before_last, current = True, current, trials[j]
    return keys, before_last, current


def _ref_tube_nms(tubes, valid, scores, threshold, max_output, plus_one):
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        if not valid[i].any():
            continue
        if all(_ref_tube_iou(tubes[i], valid[i], tubes[k], valid[k], plus_one) <= threshold for k in keep):
            keep.append(i)
    return keep[:max_output]


def _wiggly_tube(seed, n, amplitude=30.0):
    """A box that moves and changes size smoothly but non-linearly over ``n`` steps."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)
    freq, phase = rng.uniform(1, 4, 4), rng.uniform(0, 2 * np.pi, 4)
    cx = 100 + amplitude * np.sin(freq[0] * 2 * t + phase[0])
    cy = 80 + amplitude * np.sin(freq[1] * 2 * t + phase[1])
    w = 40 + 10 * np.sin(freq[2] * 2 * t + phase[2])
    h = 60 + 10 * np.sin(freq[3] * 2 * t + phase[3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def _tube(box, frames, length):
    boxes = np.zeros((length, 4))
    valid = np.zeros(length, bool)
    boxes[list(frames)] = box
    valid[list(frames)] = True
    return boxes, valid


# Jitted once at module level: eager op-by-op dispatch compiles every primitive per shape, which
# costs seconds per call on CPU; the with/without-jit variants are kept where tracing could matter.
_jit_match = jax.jit(
    ops.match_anchors_to_tubes,
    static_argnames=("plus_one", "segment_length", "pos_threshold", "neg_threshold", "best_anchor_positive"),
)
_jit_spline = jax.jit(ops.spline_interpolate)
_jit_spline_masked = jax.jit(ops.spline_interpolate_masked)
_jit_labels = jax.jit(ops.key_timestamp_labels, static_argnames=("plus_one",))

# --------------------------------------------------------------------------- polynomial tubes


class PolynomialTubeTest(chex.TestCase):
    def test_normalised_time_and_basis(self):
        np.testing.assert_array_equal(ops.normalised_time(5, jnp.float64), [0, 0.25, 0.5, 0.75, 1])
        np.testing.assert_array_equal(ops.normalised_time(1), [0.0])
        basis = ops.polynomial_basis(jnp.asarray([0.0, 0.5, 2.0]), 3)
        np.testing.assert_array_equal(basis, [[1, 0, 0, 0], [1, 0.5, 0.25, 0.125], [1, 2, 4, 8]])
        with self.assertRaisesRegex(ValueError, "num_frames: expected a positive int"):
            ops.normalised_time(0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_evaluate_tube_hand_values(self):
        theta = jnp.zeros((2, 3, 4)).at[0, :, 0].set(jnp.asarray([1.0, 2.0, 3.0])).at[1, 1, 3].set(-1.0)
        out = self.variant(ops.evaluate_tube)(theta, jnp.asarray([0.0, 0.5, 1.0]))
        chex.assert_shape(out, (2, 3, 4))
        np.testing.assert_allclose(out[0, :, 0], [1.0, 1 + 1 + 0.75, 6.0], atol=1e-15)
        np.testing.assert_allclose(out[1, :, 3], [0.0, -0.5, -1.0], atol=1e-15)
        np.testing.assert_array_equal(out[0, :, 1:], 0.0)

    def test_zero_coefficients_give_the_anchor(self):
        anchors = jnp.asarray([[0.0, 0.0, 16.0, 32.0], [10.0, 20.0, 40.0, 30.0]])
        boxes = ops.tube_boxes(jnp.zeros((2, 5, 4)), anchors, ops.normalised_time(7, jnp.float64))
        chex.assert_shape(boxes, (2, 7, 4))
        np.testing.assert_allclose(boxes, np.broadcast_to(anchors[:, None], (2, 7, 4)), atol=1e-13)

    @chex.variants(with_jit=True, without_jit=True)
    def test_targets_of_a_polynomial_tube_are_fitted_exactly(self):
        # GT tube = a quadratic in delta space around the anchor, decoded; two frames missing.
        anchor = jnp.asarray([30.0, 40.0, 70.0, 120.0])
        theta = jnp.asarray(np.random.default_rng(0).normal(scale=0.3, size=(3, 4)))
        length = 12
        times = ops.normalised_time(length, jnp.float64)
        gt = ops.tube_boxes(theta, anchor, times)
        valid = jnp.ones(length, bool).at[jnp.asarray([3, 7])].set(False)
        gt = jnp.where(valid[:, None], gt, 0.0)  # padded frames hold zero boxes
        targets, t, v = self.variant(ops.tube_targets)(gt, valid, anchor)
        chex.assert_shape(targets, (length, 4))
        np.testing.assert_array_equal(t, times)
        np.testing.assert_array_equal(v, valid)
        self.assertTrue(np.all(np.isfinite(targets)))
        np.testing.assert_array_equal(targets[~np.asarray(valid)], 0.0)
        np.testing.assert_allclose(targets[valid], ops.evaluate_tube(theta, times)[valid], atol=1e-12)
        fitted = self.variant(functools.partial(ops.fit_polynomial, order=2))(targets, t, v)
        np.testing.assert_allclose(fitted, theta, atol=1e-9)
        np.testing.assert_allclose(ops.tube_boxes(fitted, anchor, times)[valid], gt[valid], atol=1e-8)

    def test_targets_broadcast_over_anchors(self):
        gt = jnp.asarray(np.tile(np.asarray([10.0, 10.0, 50.0, 50.0]), (3, 6, 1)))  # [G=3, L=6, 4]
        anchors = jnp.asarray([[0.0, 0.0, 20.0, 20.0], [5.0, 5.0, 45.0, 65.0], [10.0, 10.0, 50.0, 50.0]])
        targets, _, valid = ops.tube_targets(gt, jnp.ones((3, 6), bool), anchors)
        chex.assert_shape([targets, valid], [(3, 6, 4), (3, 6)])
        np.testing.assert_allclose(targets[2], 0.0, atol=1e-15)

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"theta: expected \[..., k\+1, 4\]"):
            ops.evaluate_tube(jnp.ones((3, 5)), jnp.ones(4))
        with self.assertRaisesRegex(TypeError, r"gt_valid: expected bool \[..., L\]"):
            ops.tube_targets(jnp.ones((6, 4)), jnp.ones(6), jnp.ones(4))
        with self.assertRaisesRegex(ValueError, r"gt_valid: expected shape \[..., L\]"):
            ops.tube_targets(jnp.ones((6, 4)), jnp.ones(5, bool), jnp.ones(4))


# --------------------------------------------------------------------------- matching

_MATCH_ARGS = {"pos_threshold": 0.5, "neg_threshold": 0.3, "plus_one": False}


class MatchingTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_hand_example(self):
        length = 10
        tube0 = np.zeros((length, 4))
        tube0[:6] = [0, 0, 10, 10]
        tube0[6:] = [100, 100, 110, 110]
        tube1, valid1 = _tube([50, 50, 60, 60], range(4, 10), length)
        gt = jnp.asarray(np.stack([tube0, tube1]))
        valid = jnp.asarray(np.stack([np.ones(length, bool), valid1]))
        anchors = jnp.asarray(
            [[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 110.0, 110.0], [50.0, 50.0, 60.0, 60.0], [200.0, 200, 210, 210]]
        )
        match = self.variant(functools.partial(ops.match_anchors_to_tubes, **_MATCH_ARGS))
        assigned, positive, negative = match(anchors, gt, valid)
        # Anchor 1 meets tube 0 only in its last 4 frames: tube 0's one disjoint 6-box segment is
        # frames 0..5 (the tail 6..9 is not a segment), mean IoU 0, so anchor 1 is negative (a sliding
        # window over frames 4..9 would give 4/6). Tube 1's six boxes start at frame 4.
        np.testing.assert_array_equal(positive, [True, False, True, False])
        np.testing.assert_array_equal(negative, [False, True, False, True])
        np.testing.assert_array_equal(np.asarray(assigned)[[0, 2]], [0, 1])
        self.assertEqual(assigned.dtype, jnp.int32)

    def test_negatives_use_the_disjoint_segments(self):
        # 12 boxes, K = 6: segments are boxes 0..5 and 6..11. The anchor sits on boxes 5 and 6 only:
        # each segment's mean IoU is 1/6 < 0.3, so it is negative; the sliding window 1..6 (2/6) was not.
        length = 12
        gt = np.tile(np.asarray([200.0, 200, 210, 210]), (length, 1))
        gt[[5, 6]] = [0, 0, 10, 10]
        anchors = jnp.asarray([[0.0, 0.0, 10.0, 10.0]])
        _, positive, negative = _jit_match(anchors, jnp.asarray(gt[None]), jnp.ones((1, length), bool), **_MATCH_ARGS)
        self.assertFalse(bool(positive[0]))
        self.assertTrue(bool(negative[0]))
        # The same two boxes inside segment 1 (boxes 6 and 7): 2/6 >= 0.3, not negative.
        gt[5], gt[7] = gt[0], gt[6]
        _, _, negative = _jit_match(anchors, jnp.asarray(gt[None]), jnp.ones((1, length), bool), **_MATCH_ARGS)
        self.assertFalse(bool(negative[0]))

    def test_segments_skip_missing_frames_and_short_tubes_use_all_boxes(self):
        # Boxes only at even frames: with K = 3 the first segment is frames 0, 2, 4.
        length = 12
        tube = np.tile(np.asarray([200.0, 200, 210, 210]), (length, 1))
        tube[[0, 2, 4]] = [0, 0, 10, 10]
        valid = np.arange(length) % 2 == 0
        short, short_valid = _tube([0, 0, 10, 10], [5, 9], length)  # 2 boxes < K
        gt = jnp.asarray(np.stack([tube, short]))
        valid = jnp.asarray(np.stack([valid, short_valid]))
        anchors = jnp.asarray([[0.0, 0.0, 10.0, 10.0]])
        _, positive, _ = _jit_match(anchors, gt[:1], valid[:1], segment_length=3, **_MATCH_ARGS)
        self.assertTrue(bool(positive[0]))  # mean IoU 1 over frames 0, 2, 4 (frames 1, 3 skipped)
        _, positive, _ = _jit_match(anchors, gt[1:], valid[1:], segment_length=3, **_MATCH_ARGS)
        self.assertTrue(bool(positive[0]))  # both of its 2 boxes

    def test_anchor_positive_for_two_tubes_goes_to_the_larger_segment_iou(self):
        length = 6
        a, _ = _tube([0, 0, 10, 10], range(length), length)
        b, _ = _tube([0, 0, 10, 12], range(length), length)  # IoU with the anchor 100/120
        gt = jnp.asarray(np.stack([b, a]))
        valid = jnp.ones((2, length), bool)
        assigned, positive, _ = _jit_match(jnp.asarray([[0.0, 0.0, 10.0, 10.0]]), gt, valid, **_MATCH_ARGS)
        self.assertTrue(bool(positive[0]))
        self.assertEqual(int(assigned[0]), 1)

    def test_no_gt_tubes_every_anchor_negative(self):
        anchors = jnp.asarray([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 9.0, 9.0]])
        for gt, valid in (
            (jnp.ones((2, 4, 4)), jnp.zeros((2, 4), bool)),
            (jnp.ones((0, 4, 4)), jnp.ones((0, 4), bool)),
        ):
            _, positive, negative = _jit_match(anchors, gt, valid, **_MATCH_ARGS)
            np.testing.assert_array_equal(positive, False)
            np.testing.assert_array_equal(negative, True)

    @given(st.integers(0, 10_000), st.booleans())
    def test_matches_reference(self, seed, plus_one):
        rng = np.random.default_rng(seed)
        corner = rng.integers(0, 30, (7, 2))
        anchors = np.concatenate([corner, corner + rng.integers(4, 20, (7, 2))], -1).astype(np.float64)
        start = rng.integers(0, 30, (3, 1, 2)) + np.cumsum(rng.integers(-3, 4, (3, 9, 2)), axis=1)
        gt = np.concatenate([start, start + rng.integers(4, 20, (3, 1, 2))], -1).astype(np.float64)
        valid = rng.uniform(size=(3, 9)) < 0.7
        args = {"pos_threshold": 0.4, "neg_threshold": 0.2, "plus_one": plus_one, "segment_length": 3}
        assigned, positive, negative = _jit_match(jnp.asarray(anchors), jnp.asarray(gt), jnp.asarray(valid), **args)
        ref_assigned, ref_pos, ref_neg = _ref_match(anchors, gt, valid, 3, 0.4, 0.2, plus_one)
        np.testing.assert_array_equal(positive, ref_pos)
        np.testing.assert_array_equal(negative, ref_neg)
        np.testing.assert_array_equal(np.asarray(assigned)[ref_pos], ref_assigned[ref_pos])

    def test_best_anchor_rule_gives_a_fast_tube_a_positive(self):
        # An actor moving 10 px a frame: no static anchor has a mean IoU above 0.5 over its
        # first six boxes; with the rule its best anchor (the one it starts on) is positive.
        length = 6
        x = 10.0 * np.arange(length)
        gt = jnp.asarray(np.stack([x, 0 * x, x + 10, 0 * x + 10], -1)[None])
        valid = jnp.ones((1, length), bool)
        anchors = jnp.asarray([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0], [300.0, 300, 310, 310]])
        _, positive, negative = _jit_match(anchors, gt, valid, **_MATCH_ARGS)
        np.testing.assert_array_equal(positive, False)
        np.testing.assert_array_equal(negative, [True, True, True])  # best 6-box windows: 1/6, 1/6 (< 0.3)
        assigned, positive, negative = _jit_match(anchors, gt, valid, best_anchor_positive=True, **_MATCH_ARGS)
        # first-six mean IoUs: anchor 0 (1 + 0 ...) / 6, anchor 1 the same from frame 2: ties go to anchor 0.
        np.testing.assert_array_equal(positive, [True, False, False])
        np.testing.assert_array_equal(negative, [False, True, True])
        self.assertEqual(int(assigned[0]), 0)

    @given(st.integers(0, 10_000), st.booleans())
    def test_best_anchor_rule_matches_reference(self, seed, plus_one):
        rng = np.random.default_rng(seed)
        corner = rng.uniform(0, 30, (7, 2))  # float corners: no ties between anchors
        anchors = np.concatenate([corner, corner + rng.uniform(4, 20, (7, 2))], -1)
        start = rng.integers(0, 30, (3, 1, 2)) + np.cumsum(rng.integers(-6, 7, (3, 9, 2)), axis=1)
        gt = np.concatenate([start, start + rng.integers(4, 20, (3, 1, 2))], -1).astype(np.float64)
        valid = rng.uniform(size=(3, 9)) < 0.7
        args = {"pos_threshold": 0.6, "neg_threshold": 0.2, "plus_one": plus_one, "segment_length": 3}
        assigned, positive, negative = _jit_match(
            jnp.asarray(anchors), jnp.asarray(gt), jnp.asarray(valid), best_anchor_positive=True, **args
        )
        ref_assigned, ref_pos, ref_neg = _ref_match(anchors, gt, valid, 3, 0.6, 0.2, plus_one, best_anchor=True)
        np.testing.assert_array_equal(positive, ref_pos)
        np.testing.assert_array_equal(negative, ref_neg)
        np.testing.assert_array_equal(np.asarray(assigned)[ref_pos], ref_assigned[ref_pos])

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"gt_boxes: expected \[G, L, 4\]"):
            ops.match_anchors_to_tubes(jnp.ones((2, 4)), jnp.ones((3, 4)), jnp.ones((3,), bool), **_MATCH_ARGS)
        with self.assertRaisesRegex(ValueError, r"gt_valid: expected shape \[G, L\]"):
            ops.match_anchors_to_tubes(jnp.ones((2, 4)), jnp.ones((3, 5, 4)), jnp.ones((3, 4), bool), **_MATCH_ARGS)


# --------------------------------------------------------------------------- splines


class SplineTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_scipy_natural_spline(self):
        rng = np.random.default_rng(0)
        times = np.sort(rng.uniform(0, 1, 7))
        boxes = rng.normal(size=(7, 4)) * 20
        query = np.linspace(-0.2, 1.2, 41)  # extrapolation too
        out = self.variant(ops.spline_interpolate)(jnp.asarray(times), jnp.asarray(boxes), jnp.asarray(query))
        chex.assert_shape(out, (41, 4))
        np.testing.assert_allclose(out, CubicSpline(times, boxes, bc_type="natural")(query), rtol=1e-10, atol=1e-9)

    @given(st.lists(st.booleans(), min_size=10, max_size=10), st.integers(0, 1000))
    def test_masked_matches_scipy_on_the_keys(self, keys, seed):
        keys = np.asarray(keys)
        rng = np.random.default_rng(seed)
        times = np.cumsum(rng.uniform(0.2, 1.0, 10))
        values = rng.normal(size=(10, 4)) * 10
        query = np.linspace(times[0] - 0.5, times[-1] + 0.5, 23)
        run = _jit_spline_masked
        out = np.asarray(run(jnp.asarray(times), jnp.asarray(values), jnp.asarray(keys), jnp.asarray(query)))
        self.assertTrue(np.all(np.isfinite(out)))
        if keys.sum() == 0:
            np.testing.assert_array_equal(out, 0.0)
        else:
            np.testing.assert_allclose(out, _ref_spline(times, values, keys, query), rtol=1e-9, atol=1e-9)
        # Key values come back exactly at the key times.
        at_keys = run(jnp.asarray(times), jnp.asarray(values), jnp.asarray(keys), jnp.asarray(times))
        np.testing.assert_array_equal(np.asarray(at_keys)[keys], values[keys])

    def test_two_keys_are_linear(self):
        times = jnp.asarray([0.2, 0.7])
        boxes = jnp.asarray([[0.0, 10.0, 20.0, 30.0], [5.0, 0.0, 45.0, 30.0]])
        query = np.linspace(0, 1, 11)
        out = _jit_spline(times, boxes, jnp.asarray(query))
        frac = (query - 0.2) / 0.5
        expected = boxes[0][None] + frac[:, None] * (boxes[1] - boxes[0])[None]
        np.testing.assert_allclose(out, expected, atol=1e-12)

    def test_one_key_is_constant(self):
        out = _jit_spline(jnp.asarray([0.3]), jnp.asarray([[1.0, 2.0, 3.0, 4.0]]), jnp.linspace(0, 1, 5))
        np.testing.assert_array_equal(out, np.tile([1.0, 2.0, 3.0, 4.0], (5, 1)))

    def test_gradient_finite_with_padded_keys(self):
        times = jnp.linspace(0, 1, 8, dtype=jnp.float32)
        values = jnp.asarray(np.random.default_rng(1).normal(size=(8, 4)), jnp.float32)
        keys = jnp.asarray([True, False, True, False, False, True, False, False])
        grad = jax.jit(jax.grad(lambda v: ops.spline_interpolate_masked(times, v, keys, times).sum()))(values)
        self.assertTrue(np.all(np.isfinite(grad)))
        np.testing.assert_array_equal(np.asarray(grad)[~np.asarray(keys)], 0.0)  # only keys shape the spline

    def test_float32(self):
        out = _jit_spline(
            jnp.linspace(0, 1, 4, dtype=jnp.float32), jnp.ones((4, 4), jnp.float32), jnp.linspace(0, 1, 9)
        )
        self.assertEqual(out.dtype, jnp.float32)
        np.testing.assert_allclose(out, 1.0, atol=1e-6)

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"values: expected \[N, C\] with N = 3"):
            ops.spline_interpolate_masked(jnp.ones(3), jnp.ones((4, 4)), jnp.ones(3, bool), jnp.ones(2))
        with self.assertRaisesRegex(TypeError, r"is_key: expected bool \[N\]"):
            ops.spline_interpolate_masked(jnp.ones(3), jnp.ones((3, 4)), jnp.ones(3), jnp.ones(2))
        with self.assertRaisesRegex(ValueError, "key_times: expected at least one key"):
            ops.spline_interpolate(jnp.ones(0), jnp.ones((0, 4)), jnp.ones(2))


# --------------------------------------------------------------------------- key timestamps


_ALL12 = jnp.ones(12, bool)


class KeyTimestampTest(chex.TestCase):
    def test_linear_motion_gives_the_two_ends(self):
        t = np.linspace(0, 1, 12)[:, None]
        boxes = jnp.asarray(np.asarray([10.0, 20.0, 50.0, 80.0]) + t * np.asarray([60.0, -10.0, 90.0, 5.0]))
        labels = _jit_labels(boxes, plus_one=True, valid=_ALL12)
        np.testing.assert_array_equal(labels, np.arange(12) % 11 == 0)

    @given(st.integers(0, 10_000), st.sampled_from([0.8, 0.9]))
    def test_matches_greedy_reference_and_stops_at_eps(self, seed, eps):
        boxes = _wiggly_tube(seed, 12)
        labels = np.asarray(_jit_labels(jnp.asarray(boxes), plus_one=True, eps=eps, valid=_ALL12))
        expected, before_last, final = _ref_key_labels(boxes, eps, plus_one=True)
        np.testing.assert_array_equal(labels, expected)
        self.assertTrue(labels[0] and labels[-1])
        # Stops as soon as the IoU is above eps: one key fewer (the last added) was at most eps.
        self.assertTrue(final > eps or labels.all())
        if labels.sum() > 2:
            self.assertLessEqual(before_last, eps)

    def test_unreachable_eps_makes_every_step_a_key(self):
        labels = _jit_labels(jnp.asarray(_wiggly_tube(3, 12)), plus_one=True, eps=1.0, valid=_ALL12)
        np.testing.assert_array_equal(labels, True)

    def test_valid_mask_moves_the_ends(self):
        boxes = _wiggly_tube(4, 12)
        valid = np.zeros(12, bool)
        valid[2:9] = True
        boxes[~valid] = 0.0
        labels = np.asarray(_jit_labels(jnp.asarray(boxes), plus_one=True, valid=jnp.asarray(valid)))
        self.assertTrue(labels[2] and labels[8])
        self.assertFalse(labels[~valid].any())
        self.assertFalse(np.asarray(_jit_labels(jnp.asarray(boxes), plus_one=True, valid=jnp.zeros(12, bool))).any())

    def test_vmap_over_a_batch(self):
        boxes = jnp.asarray(np.stack([_wiggly_tube(s, 12) for s in range(3)]))
        batched = jax.jit(jax.vmap(functools.partial(ops.key_timestamp_labels, plus_one=True)))(boxes)
        for b in range(3):
            np.testing.assert_array_equal(batched[b], _jit_labels(boxes[b], plus_one=True, valid=_ALL12))


# --------------------------------------------------------------------------- local search


class LocalSearchTest(chex.TestCase):
    COARSE = jnp.asarray([0.0, 0.0, 10.0, 20.0])  # centre (5, 10); window |dx| <= 8, |dy| <= 16 (Eq. 7)

    @staticmethod
    def _centred(cx, cy, half=2.0):
        return [cx - half, cy - half, cx + half, cy + half]

    @chex.variants(with_jit=True, without_jit=True)
    def test_best_scoring_proposal_inside_the_window(self):
        proposals = jnp.asarray(
            [
                self._centred(5, 10),  # inside, 0.5
                self._centred(13, 26, 5),  # inside at the corner (borders count), 0.7
                self._centred(13.5, 10),  # outside in x, 0.99
                self._centred(5, 10),  # inside but masked out, 0.95
                self._centred(5, 26.5),  # outside in y, 0.98
            ]
        )
        scores = jnp.asarray([0.5, 0.7, 0.99, 0.95, 0.98])
        mask = jnp.asarray([True, True, True, False, True])
        box, score, found = self.variant(ops.local_search)(self.COARSE, proposals, scores, mask=mask)
        np.testing.assert_array_equal(box, proposals[1])
        self.assertAlmostEqual(float(score), 0.7)
        self.assertTrue(bool(found))

    @chex.variants(with_jit=True, without_jit=True)
    def test_falls_back_to_the_coarse_box(self):
        proposals = jnp.asarray([self._centred(20, 10), self._centred(5, 40)])
        run = self.variant(functools.partial(ops.local_search, fallback_score=-1.0))
        box, score, found = run(self.COARSE, proposals, jnp.asarray([0.9, 0.8]))
        np.testing.assert_array_equal(box, self.COARSE)
        self.assertEqual(float(score), -1.0)
        self.assertFalse(bool(found))
        # sigma = 1.5: window |dx| <= 15, |dy| <= 30, both proposals on its border; the better one wins.
        box, _, found = ops.local_search(self.COARSE, proposals, jnp.asarray([0.9, 0.8]), sigma=1.5)
        self.assertTrue(bool(found))
        np.testing.assert_array_equal(box, proposals[0])

    def test_half_width_is_sigma_w(self):
        # Eq. 7: [x - sigma w, x + sigma w]. A proposal centred 0.6 w = 6 px right of the coarse
        # centre is inside the sigma = 0.8 window (half-width 8); the old half-width sigma w / 2 = 4
        # (the paper's sigma = 0.4 row) missed it.
        proposals = jnp.asarray([self._centred(11, 10), self._centred(5, 10 + 0.6 * 20)])
        search = jax.jit(jax.vmap(lambda c, p, s, sigma: ops.local_search(c, p, s, sigma=sigma), (0, 0, 0, None)))
        args = (jnp.stack([self.COARSE] * 2), proposals[:, None], jnp.asarray([[0.9], [0.8]]))
        box, score, found = search(*args, 0.8)
        np.testing.assert_array_equal(found, [True, True])
        np.testing.assert_array_equal(box, proposals)
        np.testing.assert_allclose(score, [0.9, 0.8])
        _, _, found = search(*args, 0.4)
        np.testing.assert_array_equal(found, [False, False])  # 6 > 4 and 12 > 8

    @given(st.integers(0, 10_000))
    def test_vmap_over_steps_matches_a_loop(self, seed):
        rng = np.random.default_rng(seed)
        corner = rng.uniform(0, 50, (6, 2))
        coarse = np.concatenate([corner, corner + rng.uniform(5, 30, (6, 2))], -1)
        pc = rng.uniform(0, 80, (6, 9, 2))
        proposals = np.concatenate([pc, pc + rng.uniform(2, 20, (6, 9, 2))], -1)
        scores = rng.uniform(size=(6, 9))
        box, score, found = _vmapped_search(jnp.asarray(coarse), jnp.asarray(proposals), jnp.asarray(scores))
        for i in range(6):
            centre = (proposals[i, :, :2] + proposals[i, :, 2:]) / 2
            c = (coarse[i, :2] + coarse[i, 2:]) / 2
            half = 0.8 * (coarse[i, 2:] - coarse[i, :2])
            inside = np.all(np.abs(centre - c) <= half, axis=1)
            self.assertEqual(bool(found[i]), inside.any())
            if inside.any():
                j = np.flatnonzero(inside)[np.argmax(scores[i][inside])]
                np.testing.assert_array_equal(box[i], proposals[i, j])
                self.assertEqual(float(score[i]), scores[i, j])
            else:
                np.testing.assert_array_equal(box[i], coarse[i])

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"coarse_box: expected shape \[4\]"):
            ops.local_search(jnp.ones((1, 4)), jnp.ones((3, 4)), jnp.ones(3))
        with self.assertRaisesRegex(ValueError, r"scores: expected shape \[P\]"):
            ops.local_search(jnp.ones(4), jnp.ones((3, 4)), jnp.ones(2))


_vmapped_search = jax.jit(jax.vmap(ops.local_search))
_jit_tube_iou = jax.jit(functools.partial(ops.tube_iou, plus_one=True))


# --------------------------------------------------------------------------- tube IoU and NMS


class TubeIouTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_hand_values(self):
        iou = self.variant(functools.partial(ops.tube_iou, plus_one=True))
        # Overlap in 5 of 10 frames, same boxes: temporal IoU 5 / 10.
        a, va = _tube([0, 0, 10, 10], range(10), 10)
        b, vb = _tube([0, 0, 10, 10], range(5, 10), 10)
        self.assertAlmostEqual(float(iou(a, va, b, vb)), 0.5, places=15)
        # Frames 0..9 and 5..14 of 15: 5 / 15, boxes with per-frame IoU 66 / 121 (+1) or 1/2 (continuous).
        a, va = _tube([0, 0, 10, 10], range(10), 15)
        b, vb = _tube([0, 0, 10, 5], range(5, 15), 15)
        self.assertAlmostEqual(float(iou(a, va, b, vb)), 5 / 15 * 66 / 121, places=15)
        self.assertAlmostEqual(float(ops.tube_iou(a, va, b, vb, plus_one=False)), 5 / 15 * 0.5, places=15)
        self.assertAlmostEqual(float(iou(a, va, a, va)), 1.0, places=15)

    def test_no_overlap_and_empty_give_zero(self):
        a, va = _tube([0, 0, 10, 10], range(5), 10)
        b, vb = _tube([0, 0, 10, 10], range(5, 10), 10)
        self.assertEqual(float(ops.tube_iou(a, va, b, vb, plus_one=True)), 0.0)
        empty = np.zeros(10, bool)
        self.assertEqual(float(ops.tube_iou(a, empty, a, empty, plus_one=True)), 0.0)
        self.assertEqual(float(ops.tube_iou(a, va, b, empty, plus_one=False)), 0.0)

    def test_hole_in_the_overlap_counts_as_zero(self):
        a, va = _tube([0, 0, 10, 10], range(4), 4)
        vb = va.copy()
        vb[1] = False  # extents are both 0..3; frame 1 has no box in b
        self.assertAlmostEqual(float(ops.tube_iou(a, va, a, vb, plus_one=True)), 3 / 4, places=15)

    @given(st.integers(0, 10_000))
    def test_agrees_with_the_evaluation_metric(self, seed):
        # The model's jnp tube IoU (dense frames + mask) and the ACT metric's numpy one
        # (rows of frame numbers) are two implementations of one definition.
        rng = np.random.default_rng(seed)
        corner = rng.integers(0, 20, (2, 10, 2))
        boxes = np.concatenate([corner, corner + rng.integers(0, 15, (2, 10, 2))], -1).astype(np.float64)
        valid = rng.uniform(size=(2, 10)) < 0.7
        valid[:, rng.integers(10)] = True  # no empty tube
        rows = [np.concatenate([np.flatnonzero(v)[:, None] + 1.0, b[v]], 1) for b, v in zip(boxes, valid)]
        want = detection_metrics.act_tube_iou(rows[0], rows[1])
        got = float(
            _jit_tube_iou(jnp.asarray(boxes[0]), jnp.asarray(valid[0]), jnp.asarray(boxes[1]), jnp.asarray(valid[1]))
        )
        self.assertAlmostEqual(got, want, places=6)

    @given(st.integers(0, 10_000), st.booleans())
    def test_matches_reference_and_broadcasts(self, seed, plus_one):
        rng = np.random.default_rng(seed)
        corner = rng.integers(0, 20, (4, 8, 2))
        tubes = np.concatenate([corner, corner + rng.integers(0, 15, (4, 8, 2))], -1).astype(np.float64)
        valid = rng.uniform(size=(4, 8)) < 0.6
        got = _jit_pairwise_tube_iou(jnp.asarray(tubes), jnp.asarray(valid), plus_one=plus_one)
        expected = [
            [_ref_tube_iou(tubes[i], valid[i], tubes[j], valid[j], plus_one) for j in range(4)] for i in range(4)
        ]
        np.testing.assert_allclose(got, expected, atol=1e-14)

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"valid_b: expected shape \[..., L\]"):
            ops.tube_iou(jnp.ones((5, 4)), jnp.ones(5, bool), jnp.ones((5, 4)), jnp.ones(4, bool), plus_one=True)
        with self.assertRaisesRegex(ValueError, r"boxes_b: expected \[..., L, 4\] on the frame axis"):
            ops.tube_iou(jnp.ones((5, 4)), jnp.ones(5, bool), jnp.ones((4, 4)), jnp.ones(4, bool), plus_one=True)


@functools.partial(jax.jit, static_argnames="plus_one")
def _jit_pairwise_tube_iou(tubes, valid, plus_one):
    return ops.tube_iou(tubes[:, None], valid[:, None], tubes[None], valid[None], plus_one=plus_one)


class TubeNmsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_keeps_the_best_and_drops_its_duplicates(self):
        length = 10
        tubes = np.stack(
            [
                _tube([0, 0, 10, 10], range(10), length)[0],
                _tube([0, 0, 10, 10], range(10), length)[0],  # duplicate of 0, higher score
                _tube([0, 0, 10, 10], range(9, 10), length)[0],  # same place, 1 frame: tube IoU 0.1
                _tube([50, 50, 60, 60], range(10), length)[0],  # elsewhere
                np.zeros((length, 4)),  # empty tube, best score
            ]
        )
        valid = np.stack(
            [np.ones(length, bool)] * 2 + [np.arange(length) == 9, np.ones(length, bool), np.zeros(length, bool)]
        )
        scores = jnp.asarray([0.8, 0.9, 0.5, 0.3, 1.0])
        run = self.variant(functools.partial(ops.tube_nms, iou_threshold=0.2, max_output=4, plus_one=True))
        indices, keep = run(jnp.asarray(tubes), jnp.asarray(valid), scores)
        np.testing.assert_array_equal(indices, [1, 2, 3, 0])
        np.testing.assert_array_equal(keep, [True, True, True, False])

    @given(st.integers(0, 10_000), st.sampled_from([0.0, 0.2, 0.5]))
    def test_matches_python_greedy_loop(self, seed, threshold):
        rng = np.random.default_rng(seed)
        corner = rng.integers(0, 10, (6, 1, 2)) + rng.integers(-1, 2, (6, 7, 2))
        tubes = np.concatenate([corner, corner + rng.integers(4, 10, (6, 1, 2))], -1).astype(np.float64)
        start, stop = np.sort(rng.integers(0, 8, (2, 6)), axis=0)
        valid = (np.arange(7)[None] >= start[:, None]) & (np.arange(7)[None] < stop[:, None])
        scores = rng.integers(0, 4, 6).astype(np.float64)
        indices, keep = _jit_tube_nms(jnp.asarray(tubes), jnp.asarray(valid), jnp.asarray(scores), threshold)
        expected = _ref_tube_nms(tubes, valid, scores, threshold, 5, plus_one=True)
        self.assertEqual(np.asarray(indices)[np.asarray(keep)].tolist(), expected)

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"scores: expected shape \[M\]"):
            ops.tube_nms(jnp.ones((3, 5, 4)), jnp.ones((3, 5), bool), jnp.ones(2), 0.2, 3, plus_one=True)


_jit_tube_nms = jax.jit(functools.partial(ops.tube_nms, max_output=5, plus_one=True))


if __name__ == "__main__":
    absltest.main()
