"""Charades per-frame mAP: time points, average precision, mAP, reading clip steps at points."""

import math
from fractions import Fraction

import hypothesis.strategies as st
import numpy as np
from absl.testing import absltest
from hypothesis import given

from cfjax.metrics import average_precision, charades_points, frame_map, scores_at_points


def _ap_loop(scores, labels):
    """AP by definition: rank of row i = rows scoring higher + tied rows up to and including i."""
    precisions = []
    for i, (s_i, y_i) in enumerate(zip(scores, labels)):
        if not y_i:
            continue
        above = [j for j, s_j in enumerate(scores) if s_j > s_i or (s_j == s_i and j <= i)]
        precisions.append(sum(labels[j] for j in above) / len(above))
    return sum(precisions) / len(precisions) if precisions else math.nan


@st.composite
def ranked(draw, max_m=12):
    """(scores [M] small ints, many ties; labels [M] 0/1)."""
    m = draw(st.integers(0, max_m))
    scores = draw(st.lists(st.integers(-3, 3), min_size=m, max_size=m))
    labels = draw(st.lists(st.integers(0, 1), min_size=m, max_size=m))
    return np.array(scores, float), np.array(labels, np.int64)


class CharadesPointsTest(absltest.TestCase):
    def test_hand_values(self):
        np.testing.assert_array_equal(charades_points(100), np.arange(0, 100, 4))
        np.testing.assert_array_equal(
            charades_points(10), [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 8, 9, 9]
        )
        np.testing.assert_array_equal(charades_points(7, num_points=3), [0, 2, 4])
        self.assertEqual(charades_points(1).tolist(), [0] * 25)
        self.assertEqual(charades_points(100).dtype, np.int64)

    @given(st.integers(1, 10**6), st.integers(1, 40))
    def test_floor_of_exact_time_point(self, num_frames, num_points):
        points = charades_points(num_frames, num_points)
        expected = [math.floor(Fraction(j - 1, num_points) * num_frames) for j in range(1, num_points + 1)]
        self.assertEqual(points.tolist(), expected)
        self.assertTrue(np.all(np.diff(points) >= 0) and points[-1] < num_frames)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "num_frames: expected an int >= 1"):
            charades_points(0)
        with self.assertRaisesRegex(ValueError, "num_frames: expected an int >= 1"):
            charades_points(10.0)
        with self.assertRaisesRegex(ValueError, "num_points: expected an int >= 1"):
            charades_points(10, num_points=True)


class AveragePrecisionTest(absltest.TestCase):
    def test_hand_values(self):
        self.assertAlmostEqual(average_precision([4, 3, 2, 1], [1, 0, 1, 0]), (1 / 1 + 2 / 3) / 2, places=15)
        self.assertAlmostEqual(average_precision([1, 2, 3, 4], [1, 0, 1, 0]), (1 / 2 + 2 / 4) / 2, places=15)
        self.assertEqual(average_precision([0.9, 0.1, 0.5], [True, False, True]), 1.0)
        self.assertAlmostEqual(average_precision([3, 2, 1], [0, 0, 1]), 1 / 3, places=15)
        self.assertEqual(average_precision([1, 2], [1, 1]), 1.0)

    def test_ties_keep_input_order(self):
        self.assertEqual(average_precision([5, 5], [1, 0]), 1.0)
        self.assertEqual(average_precision([5, 5], [0, 1]), 0.5)
        self.assertAlmostEqual(average_precision([1, 5, 5, 5], [1, 0, 1, 0]), (1 / 2 + 2 / 4) / 2, places=15)

    def test_no_positive_is_nan(self):
        self.assertTrue(math.isnan(average_precision([1, 2, 3], [0, 0, 0])))
        self.assertTrue(math.isnan(average_precision(np.zeros(0), np.zeros(0, bool))))

    @given(ranked())
    def test_matches_loop_definition(self, case):
        scores, labels = case
        ap, expected = average_precision(scores, labels), _ap_loop(scores.tolist(), labels.tolist())
        if math.isnan(expected):
            self.assertTrue(math.isnan(ap))
        else:
            self.assertAlmostEqual(ap, expected, places=12)
            self.assertTrue(0 < ap <= 1)

    @given(ranked(), st.integers(0, 10**6))
    def test_invariant_to_monotone_map_and_permutation_without_ties(self, case, seed):
        _, labels = case
        rng = np.random.default_rng(seed)
        scores = rng.permutation(len(labels)).astype(float)  # distinct scores
        ap = average_precision(scores, labels)
        perm = rng.permutation(len(labels))
        np.testing.assert_equal(average_precision(np.exp(scores / 4) - 3, labels), ap)
        np.testing.assert_allclose(average_precision(scores[perm], labels[perm]), ap, rtol=1e-15)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"scores: expected \[M\]"):
            average_precision(np.zeros((2, 2)), [0, 1])
        with self.assertRaisesRegex(ValueError, r"labels: expected \[M\] = \(3,\)"):
            average_precision([1, 2, 3], [0, 1])
        with self.assertRaisesRegex(ValueError, "labels: expected bool or 0/1"):
            average_precision([1, 2, 3], [0, 1, 2])
        with self.assertRaisesRegex(ValueError, "scores: expected no NaN"):
            average_precision([1, np.nan], [0, 1])
        with self.assertRaisesRegex(ValueError, "scores: expected real"):
            average_precision([True, False], [0, 1])


class FrameMapTest(absltest.TestCase):
    def test_hand_values_and_absent_class(self):
        scores = np.array([[4, 0.1, 9], [3, 0.9, 8], [2, 0.5, 7], [1, 0.3, 6]])
        labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
        # Class 0: ranks 1 and 3 -> (1 + 2/3) / 2. Class 1: order rows 1, 2, 3, 0 -> (1 + 2/3) / 2. Class 2: none.
        m, ap = frame_map(scores, labels, empty_classes="skip")
        np.testing.assert_allclose(ap[:2], [5 / 6, 5 / 6], rtol=1e-15)
        self.assertTrue(np.isnan(ap[2]))
        self.assertAlmostEqual(m, 5 / 6, places=15)  # mean over the C - 1 = 2 classes with a positive
        m, ap = frame_map(scores, np.zeros_like(labels, bool), empty_classes="skip")
        self.assertTrue(math.isnan(m) and np.isnan(ap).all())

    def test_empty_class_scores_zero_by_default(self):
        # the case above under the official rule: class 2 gets AP 0 and the mean is over all C = 3
        scores = np.array([[4, 0.1, 9], [3, 0.9, 8], [2, 0.5, 7], [1, 0.3, 6]])
        labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
        for m, ap in (frame_map(scores, labels), frame_map(scores, labels, empty_classes="zero")):
            np.testing.assert_allclose(ap, [5 / 6, 5 / 6, 0.0], rtol=1e-15)
            self.assertAlmostEqual(m, (5 / 6 + 5 / 6 + 0) / 3, places=15)
        m, ap = frame_map(scores, np.zeros_like(labels, bool))
        self.assertEqual(m, 0.0)
        np.testing.assert_array_equal(ap, 0.0)

    @given(st.integers(0, 10), st.integers(1, 5), st.integers(0, 10**6))
    def test_columns_are_average_precision(self, m, c, seed):
        rng = np.random.default_rng(seed)
        scores = rng.integers(-2, 3, (m, c)).astype(float)
        labels = rng.random((m, c)) < 0.3
        mean_ap, ap = frame_map(scores, labels, empty_classes="skip")
        per_class = np.array([average_precision(scores[:, j], labels[:, j]) for j in range(c)])
        np.testing.assert_allclose(ap, per_class, rtol=1e-15)
        kept = labels.any(axis=0)
        np.testing.assert_array_equal(np.isnan(ap), ~kept)
        if kept.any():
            self.assertAlmostEqual(mean_ap, per_class[kept].mean(), places=14)
        else:
            self.assertTrue(math.isnan(mean_ap))
        zero_map, zero_ap = frame_map(scores, labels)
        np.testing.assert_array_equal(zero_ap, np.where(kept, ap, 0.0))
        self.assertAlmostEqual(zero_map, np.nan_to_num(per_class).mean(), places=14)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"scores: expected \[M, C\]"):
            frame_map(np.zeros(3), np.zeros(3))
        with self.assertRaisesRegex(ValueError, r"labels: expected \[M, C\] = \(3, 2\)"):
            frame_map(np.zeros((3, 2)), np.zeros((3, 3)))
        with self.assertRaisesRegex(ValueError, r"empty_classes: expected one of \('zero', 'skip'\), got 'nan'"):
            frame_map(np.zeros((3, 2)), np.zeros((3, 2)), empty_classes="nan")


class ScoresAtPointsTest(absltest.TestCase):
    LOGITS = np.arange(12.0).reshape(4, 3)  # row t = (3t, 3t + 1, 3t + 2)

    def test_hand_values(self):
        frames = np.array([0, 8, 16, 24])
        out = scores_at_points(self.LOGITS, frames, np.ones(4, bool), [0, 3, 4, 5, 12, 30, -5])
        # 4 and 12 are equidistant from two steps: the earlier step wins.
        np.testing.assert_array_equal(out, self.LOGITS[[0, 0, 0, 1, 1, 3, 0]])
        out = scores_at_points(self.LOGITS, frames, np.array([True, False, True, False]), [5, 23])
        np.testing.assert_array_equal(out, self.LOGITS[[0, 2]])  # 5 -> frame 0 (dist 5 < 11)

    def test_tie_goes_to_earlier_step_not_smaller_frame(self):
        out = scores_at_points(self.LOGITS[:2], [8, 0], [True, True], [4])
        np.testing.assert_array_equal(out, self.LOGITS[[0]])

    def test_charades_points_of_a_strided_clip(self):
        # 64-frame video, 8 steps at frames 0, 8, ..., 56; the last point (frame 61) lies past the last step.
        logits = np.arange(8.0)[:, None]
        out = scores_at_points(logits, np.arange(0, 64, 8), np.ones(8, bool), charades_points(64))
        expected = np.round(np.arange(25) * 64 // 25 / 8 - 1e-9).clip(0, 7)  # nearest step, ties down
        np.testing.assert_array_equal(out[:, 0], expected)

    @given(st.integers(1, 8), st.integers(0, 6), st.integers(0, 10**6))
    def test_matches_loop(self, t, p, seed):
        rng = np.random.default_rng(seed)
        logits = rng.normal(size=(t, 2)).astype(np.float32)
        frames = rng.integers(0, 20, t)
        mask = rng.random(t) < 0.7
        mask[rng.integers(t)] = True
        points = rng.integers(-5, 25, p)
        out = scores_at_points(logits, frames, mask, points)
        self.assertEqual((out.shape, out.dtype), ((p, 2), np.float32))
        for i, q in enumerate(points):
            best = None
            for s in range(t):
                if mask[s] and (best is None or abs(frames[s] - q) < abs(frames[best] - q)):
                    best = s
            np.testing.assert_array_equal(out[i], logits[best])

    def test_errors(self):
        ones = np.ones(4, bool)
        with self.assertRaisesRegex(ValueError, r"logits: expected \[T, C\]"):
            scores_at_points(np.zeros(4), np.arange(4), ones, [0])
        with self.assertRaisesRegex(ValueError, r"frame_indices: expected \[T\] = \(4,\)"):
            scores_at_points(self.LOGITS, np.arange(3), ones, [0])
        with self.assertRaisesRegex(ValueError, "frame_indices: expected an integer dtype"):
            scores_at_points(self.LOGITS, np.arange(4.0), ones, [0])
        with self.assertRaisesRegex(ValueError, "frame_mask: expected at least one valid step"):
            scores_at_points(self.LOGITS, np.arange(4), np.zeros(4, bool), [0])
        with self.assertRaisesRegex(ValueError, "frame_mask: expected dtype bool"):
            scores_at_points(self.LOGITS, np.arange(4), np.ones(4), [0])
        with self.assertRaisesRegex(ValueError, r"points: expected \[P\]"):
            scores_at_points(self.LOGITS, np.arange(4), ones, [[0]])
        with self.assertRaisesRegex(ValueError, "points: expected an integer dtype"):
            scores_at_points(self.LOGITS, np.arange(4), ones, [0.5])


if __name__ == "__main__":
    absltest.main()
