"""ACT detection protocol: +1 box IoU, tube IoU, tube NMS, trapezoidal AP, frame-/video-mAP, v-MABO, errors."""

import itertools
import math
from fractions import Fraction

import hypothesis.strategies as st
import numpy as np
from absl.testing import absltest
from hypothesis import given

from cfjax.data import synthetic
from cfjax.metrics import (
    ERROR_CATEGORIES,
    act_box_iou,
    act_tube_iou,
    act_tube_nms,
    average_precision_pr,
    detection_frame_map,
    frame_error_breakdown,
    video_mabo,
    video_map,
)

A = [0, 0, 9, 9]  # 10 x 10 = 100 pixels
B = [5, 5, 14, 14]  # 100 pixels; A & B = 5 x 5 = 25 -> IoU 25 / 175 = 1 / 7
FAR = [100, 100, 110, 110]


def tube(first, last, box, score=None, frames=None):
    """Tube rows (frame, x1, y1, x2, y2[, score]) over frames first..last (or ``frames``) at a fixed box."""
    frames = np.arange(first, last + 1) if frames is None else np.asarray(frames)
    rows = np.concatenate([frames[:, None], np.tile(np.asarray(box, float), (len(frames), 1))], axis=1)
    return rows if score is None else np.concatenate([rows, np.full((len(frames), 1), score)], axis=1)


def ground_truth(gttubes, num_classes=3, nframes=30):
    return {
        "labels": [f"c{i}" for i in range(num_classes)],
        "gttubes": gttubes,
        "nframes": dict.fromkeys(gttubes, nframes),
        "resolution": dict.fromkeys(gttubes, (240, 320)),
        "train_videos": [[]],
        "test_videos": [sorted(gttubes)],
    }


def fdet(video_index, frame, label, score, box):
    return [video_index, frame, label, score, *box]


def gt_frame_dets(gt, test_videos, score=1.0):
    """A perfect frame detector: one detection per ground-truth box."""
    rows = []
    for iv, v in enumerate(test_videos):
        for label, tubes in gt["gttubes"][v].items():
            for t in tubes:
                rows.extend(fdet(iv, r[0], label, score, r[1:5]) for r in t)
    return np.array(rows, float).reshape(-1, 8)


def _ap_fractions(tp, num_positives):
    """Trapezoidal AP in exact arithmetic, point by point, for the property tests."""
    points = [(Fraction(0), Fraction(1))]
    hits = 0
    for i, t in enumerate(tp, start=1):
        hits += int(t)
        points.append((Fraction(hits, num_positives), Fraction(hits, i)))
    return sum((r1 - r0) * (p1 + p0) / 2 for (r0, p0), (r1, p1) in itertools.pairwise(points))


class BoxIouTest(absltest.TestCase):
    def test_hand_values_plus_one_convention(self):
        # A, B: 100 px each, intersection x 5..9 and y 5..9 = 5 * 5 = 25 -> 25 / (100 + 100 - 25) = 1/7.
        self.assertAlmostEqual(act_box_iou([A], [B])[0, 0], 1 / 7, places=15)
        # Sharing one column: widths 5 (0..4, 4..8), intersection 1 x 5 = 5 -> 5 / (25 + 25 - 5) = 1/9.
        self.assertAlmostEqual(act_box_iou([[0, 0, 4, 4]], [[4, 0, 8, 4]])[0, 0], 1 / 9, places=15)
        # Adjacent but not sharing a column: min(x2) - max(x1) + 1 = 4 - 5 + 1 = 0.
        self.assertEqual(act_box_iou([[0, 0, 4, 4]], [[5, 0, 9, 4]])[0, 0], 0.0)
        # A single pixel is a 1 x 1 box (area 1, not 0).
        self.assertEqual(act_box_iou([[3, 3, 3, 3]], [[3, 3, 3, 3]])[0, 0], 1.0)
        # Pixel 3 inside A (100 px) -> 1 / 100.
        self.assertAlmostEqual(act_box_iou([[3, 3, 3, 3]], [A])[0, 0], 1 / 100, places=15)
        out = act_box_iou([A, B, FAR], [A, B])
        self.assertEqual(out.shape, (3, 2))
        np.testing.assert_allclose(out, [[1, 1 / 7], [1 / 7, 1], [0, 0]], rtol=1e-15)

    @given(st.lists(st.integers(0, 20), min_size=8, max_size=8))
    def test_symmetric_bounded_self_one(self, c):
        a = [min(c[0], c[2]), min(c[1], c[3]), max(c[0], c[2]), max(c[1], c[3])]
        b = [min(c[4], c[6]), min(c[5], c[7]), max(c[4], c[6]), max(c[5], c[7])]
        ab, ba = act_box_iou([a], [b])[0, 0], act_box_iou([b], [a])[0, 0]
        self.assertEqual(ab, ba)
        self.assertTrue(0 <= ab <= 1)
        self.assertEqual(act_box_iou([a], [a])[0, 0], 1.0)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"boxes_a: expected \[\*, 4\]"):
            act_box_iou(np.zeros((2, 3)), [A])
        with self.assertRaisesRegex(ValueError, r"boxes_b: expected \[K, 4\]"):
            act_box_iou([A], A)
        with self.assertRaisesRegex(ValueError, "boxes_b: expected boxes .* x2 - x1 \\+ 1 > 0"):
            act_box_iou([A], [[5, 0, 3, 9]])
        with self.assertRaisesRegex(ValueError, "boxes_a: expected finite"):
            act_box_iou([[0, 0, np.nan, 1]], [A])


class TubeIouTest(absltest.TestCase):
    def test_hand_values(self):
        # Frames 1..10 vs 6..15: t_inter = 10 - 6 + 1 = 5, t_union = 15 - 1 + 1 = 15; per-frame IoU 1/7.
        self.assertAlmostEqual(act_tube_iou(tube(1, 10, A), tube(6, 15, B)), 5 / 15 * 1 / 7, places=15)
        # Same box, frames 1..4 vs 3..8: t_inter 2, t_union 8, spatial 1 -> 1/4.
        self.assertEqual(act_tube_iou(tube(1, 4, A), tube(3, 8, A)), 0.25)
        # Disjoint in time (4 < 5): 0 whatever the boxes.
        self.assertEqual(act_tube_iou(tube(1, 4, A), tube(5, 8, A)), 0.0)
        # Touching in one frame: t_inter 1, t_union 8 -> 1/8.
        self.assertEqual(act_tube_iou(tube(1, 4, A), tube(4, 8, A)), 1 / 8)
        # The score column (6th) is ignored; identical boxes -> 1.
        self.assertEqual(act_tube_iou(tube(2, 5, A, score=0.3), tube(2, 5, A)), 1.0)
        # Frame 2 missing from the second tube: overlap 1..4 (4 frames), IoUs 1, 0, 1, 1 -> 3/4.
        self.assertEqual(act_tube_iou(tube(1, 4, A), tube(0, 0, A, frames=[1, 3, 4])), 0.75)

    def test_single_frame_is_box_iou(self):
        self.assertAlmostEqual(act_tube_iou(tube(7, 7, A), tube(7, 7, B)), act_box_iou([A], [B])[0, 0], places=15)

    @given(st.integers(1, 8), st.integers(0, 6), st.integers(1, 8), st.integers(0, 6), st.integers(0, 12))
    def test_symmetric_and_bounded(self, s1, n1, s2, n2, shift):
        a, b = tube(s1, s1 + n1, A), tube(s2, s2 + n2, [shift, 0, 9 + shift, 9])
        self.assertEqual(act_tube_iou(a, b), act_tube_iou(b, a))
        self.assertTrue(0 <= act_tube_iou(a, b) <= 1)
        self.assertEqual(act_tube_iou(a, a), 1.0)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"tube_a: expected \[L, >=5\]"):
            act_tube_iou(np.zeros((3, 4)), tube(1, 3, A))
        with self.assertRaisesRegex(ValueError, "tube_b: expected strictly increasing frame"):
            act_tube_iou(tube(1, 3, A), tube(0, 0, A, frames=[1, 3, 2]))
        with self.assertRaisesRegex(ValueError, "tube_a: expected integer 1-based frame"):
            act_tube_iou(tube(0, 2, A), tube(1, 3, A))
        with self.assertRaisesRegex(ValueError, "tube_a: expected integer 1-based frame"):
            act_tube_iou(tube(0, 0, A, frames=[1.5, 2.5]), tube(1, 3, A))


class TubeNmsTest(absltest.TestCase):
    def test_suppresses_near_duplicate(self):
        # 1 vs 0: frames 1..10 vs 2..10, same box -> 9 / 10 > 0.3: suppressed. 2 is disjoint in time.
        tubes = [tube(1, 10, A), tube(2, 10, A), tube(20, 25, A)]
        np.testing.assert_array_equal(act_tube_nms(tubes, [0.9, 0.5, 0.1]), [0, 2])
        np.testing.assert_array_equal(act_tube_nms(tubes, [0.1, 0.5, 0.9]), [2, 1])  # by descending score
        np.testing.assert_array_equal(act_tube_nms(tubes, [0.9, 0.5, 0.1], threshold=0.95), [0, 1, 2])

    def test_threshold_is_strict(self):
        # Frames 1..3 vs 1..10, same box: IoU = 3 / 10 = 0.3 exactly, which is not > 0.3: kept.
        tubes = [tube(1, 10, A), tube(1, 3, A), tube(1, 4, A)]  # the last: 4 / 10 > 0.3
        self.assertEqual(act_tube_iou(tubes[0], tubes[1]), 0.3)
        np.testing.assert_array_equal(act_tube_nms(tubes, [3, 2, 1]), [0, 1])

    def test_ties_keep_input_order_and_empty(self):
        np.testing.assert_array_equal(act_tube_nms([tube(1, 3, A), tube(1, 3, A)], [1, 1]), [0])
        self.assertEqual(act_tube_nms([], []).shape, (0,))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"scores: expected \[N\] = \(2,\)"):
            act_tube_nms([tube(1, 3, A), tube(1, 3, B)], [1.0])
        with self.assertRaisesRegex(ValueError, r"threshold: expected a float in \[0, 1\]"):
            act_tube_nms([tube(1, 3, A)], [1.0], threshold=2)


class AveragePrecisionPrTest(absltest.TestCase):
    def test_hand_values(self):
        # P = 2, flags 1 0 1: points (r, p) = (0, 1), (1/2, 1), (1/2, 1/2), (1, 2/3).
        # Area = 1/2 * (1 + 1) / 2 + 0 + 1/2 * (1/2 + 2/3) / 2 = 1/2 + 7/24 = 19/24.
        self.assertAlmostEqual(average_precision_pr([1, 0, 1], 2), 19 / 24, places=15)
        # P = 1, flags 0 1: (0, 1), (0, 0), (1, 1/2) -> 1 * (0 + 1/2) / 2 = 1/4 (the start point's
        # precision 1 is lost once a false positive comes first).
        self.assertEqual(average_precision_pr([0, 1], 1), 0.25)
        # P = 4, flags 1 1: (0, 1), (1/4, 1), (1/2, 1) -> 1/2 (recall never reaches 1).
        self.assertEqual(average_precision_pr([True, True], 4), 0.5)
        # All hits -> 1; trailing false positives do not change the area.
        self.assertEqual(average_precision_pr([1, 1, 1], 3), 1.0)
        self.assertEqual(average_precision_pr([1, 1, 1, 0, 0], 3), 1.0)
        self.assertEqual(average_precision_pr([], 3), 0.0)
        self.assertEqual(average_precision_pr([0, 0], 3), 0.0)

    def test_no_positive_is_nan(self):
        self.assertTrue(math.isnan(average_precision_pr([0, 0], 0)))
        self.assertTrue(math.isnan(average_precision_pr([], 0)))

    @given(st.lists(st.booleans(), max_size=15), st.integers(0, 5))
    def test_matches_exact_arithmetic_and_is_bounded(self, tp, extra):
        num_positives = sum(tp) + extra
        ap = average_precision_pr(tp, num_positives)
        if num_positives == 0:
            self.assertTrue(math.isnan(ap))
            return
        self.assertAlmostEqual(ap, float(_ap_fractions(tp, num_positives)), places=12)
        self.assertTrue(0 <= ap <= 1)

    @given(st.lists(st.booleans(), max_size=15), st.integers(1, 5), st.integers(0, 15))
    def test_inserting_a_false_positive_never_raises_ap(self, tp, extra, position):
        num_positives = sum(tp) + extra
        ap = average_precision_pr(tp, num_positives)
        position = min(position, len(tp))
        worse = average_precision_pr(tp[:position] + [False] + tp[position:], num_positives)
        self.assertLessEqual(worse, ap + 1e-12)
        self.assertEqual(average_precision_pr([*tp, False], num_positives), ap)  # at the end: unchanged

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"tp_flags: expected \[D\]"):
            average_precision_pr(np.zeros((2, 2)), 2)
        with self.assertRaisesRegex(ValueError, "tp_flags: expected bool or 0/1"):
            average_precision_pr([0, 2], 2)
        with self.assertRaisesRegex(ValueError, "num_positives: expected an int >= the number of true positives"):
            average_precision_pr([1, 1, 1], 2)
        with self.assertRaisesRegex(ValueError, "num_positives"):
            average_precision_pr([1], 1.0)


# Videos "a", "b": class 0 in "a" at frames 1-2 (box A), class 1 in "b" at frames 1-3 (box G1).
G1 = [10, 10, 29, 29]
FRAME_GT = ground_truth({"a": {0: [tube(1, 2, A)]}, "b": {1: [tube(1, 3, G1)]}})
VIDEOS = ["a", "b"]
FRAME_DETS = np.array(
    [
        fdet(0, 1, 0, 0.9, A),  # class 0: true positive
        fdet(0, 1, 0, 0.8, A),  # class 0: duplicate of the box just matched -> false positive
        fdet(0, 2, 0, 0.7, B),  # class 0: IoU 1/7 with A -> localisation error
        fdet(1, 1, 0, 0.1, FAR),  # class 0: nothing near -> background
        fdet(1, 3, 1, 0.95, G1),  # class 1: true positive
        fdet(1, 2, 1, 0.6, G1),  # class 1: true positive
        fdet(1, 1, 2, 0.5, G1),  # class 2 (no ground truth anywhere): on a class-1 box -> wrong class
    ],
    float,
)


class FrameMapTest(absltest.TestCase):
    def test_hand_values(self):
        m, ap = detection_frame_map(FRAME_GT, FRAME_DETS, VIDEOS)
        # Class 0, P = 2 boxes, ranked flags 1 0 0 0: (0, 1), (1/2, 1), then recall stays 1/2 -> AP 1/2.
        # Class 1, P = 3 boxes, flags 1 1: (0, 1), (1/3, 1), (2/3, 1) -> AP 2/3.
        # Class 2 has no ground truth: nan, left out of the mean (its detection does not crash).
        np.testing.assert_allclose(ap[:2], [1 / 2, 2 / 3], rtol=1e-15)
        self.assertTrue(np.isnan(ap[2]))
        self.assertAlmostEqual(m, (1 / 2 + 2 / 3) / 2, places=15)
        # test_videos=None reads gt["test_videos"][0] (here the same sorted list).
        np.testing.assert_array_equal(detection_frame_map(FRAME_GT, FRAME_DETS)[1], ap)

    def test_duplicate_is_a_false_positive_when_ranked_above_a_hit(self):
        dets = np.array([fdet(0, 1, 0, 0.9, A), fdet(0, 1, 0, 0.8, A), fdet(0, 2, 0, 0.7, A)], float)
        # Flags 1 0 1 with P = 2 -> 19/24 (see AveragePrecisionPrTest).
        self.assertAlmostEqual(detection_frame_map(FRAME_GT, dets, VIDEOS)[1][0], 19 / 24, places=15)

    def test_matches_best_unmatched_box(self):
        # Two class-0 boxes in frame 1: A = columns 0..9 and G2 = columns 3..12 (rows 0..9 both).
        # Detection D1 = columns 2..11: IoU with A = 8 cols * 10 / (200 - 80) = 2/3, with G2 = 90 / 110 = 9/11.
        # Detection D2 = columns 6..15: IoU with A = 40 / 160 = 1/4, with G2 = 70 / 130 = 7/13.
        g2, d1, d2 = [3, 0, 12, 9], [2, 0, 11, 9], [6, 0, 15, 9]
        np.testing.assert_allclose(act_box_iou([d1, d2], [A, g2]), [[2 / 3, 9 / 11], [1 / 4, 7 / 13]], rtol=1e-15)
        gt = ground_truth({"a": {0: [tube(1, 1, A), tube(1, 1, g2)]}})
        dets = np.array([fdet(0, 1, 0, 0.9, d1), fdet(0, 1, 0, 0.8, d2)], float)
        # D1 takes its best box G2 (not A, the first above 0.5); D2 is left with A at 1/4: flags 1 0, P = 2
        # -> (0, 1), (1/2, 1), (1/2, 1/2) -> 1/2. (Taking the first box above 0.5 would have given 1.)
        self.assertEqual(detection_frame_map(gt, dets, ["a"])[0], 0.5)
        # Matched boxes are skipped: a second detection on G2 itself falls back to A (IoU 7/13 >= 0.5), a hit.
        dets = np.array([fdet(0, 1, 0, 0.9, g2), fdet(0, 1, 0, 0.8, g2)], float)
        self.assertEqual(detection_frame_map(gt, dets, ["a"])[0], 1.0)

    def test_perfect_detector_and_no_detection(self):
        m, ap = detection_frame_map(FRAME_GT, gt_frame_dets(FRAME_GT, VIDEOS), VIDEOS)
        self.assertEqual(m, 1.0)
        np.testing.assert_array_equal(ap[:2], [1, 1])
        m, ap = detection_frame_map(FRAME_GT, np.zeros((0, 8)), VIDEOS)
        self.assertEqual(m, 0.0)
        self.assertEqual(detection_frame_map(FRAME_GT, [], VIDEOS)[0], 0.0)

    def test_no_ground_truth_at_all_is_nan(self):
        gt = ground_truth({"a": {}})
        m, ap = detection_frame_map(gt, np.array([fdet(0, 1, 0, 0.5, A)], float), ["a"])
        self.assertTrue(math.isnan(m) and np.isnan(ap).all())

    def test_only_test_videos_count(self):
        # Restricting to "a": class 1 (only in "b") has no positive; video_index 0 is "a".
        _, ap = detection_frame_map(FRAME_GT, FRAME_DETS[:3], ["a"])
        self.assertEqual(ap[0], 0.5)
        self.assertTrue(np.isnan(ap[1]))

    @given(st.integers(0, 10**6))
    def test_permuting_rows_with_distinct_scores_changes_nothing(self, seed):
        rng = np.random.default_rng(seed)
        gt = ground_truth(
            {
                "a": {0: [tube(1, 4, A)], 1: [tube(2, 6, B)]},
                "b": {0: [tube(3, 5, B), tube(1, 3, A)]},
            },
            num_classes=2,
        )
        n = 25
        boxes = rng.integers(0, 12, (n, 2))
        dets = np.stack(
            [
                rng.integers(0, 2, n),
                rng.integers(1, 7, n),
                rng.integers(0, 2, n),
                rng.permutation(n) / n,  # distinct scores
                boxes[:, 0],
                boxes[:, 1],
                boxes[:, 0] + 9,
                boxes[:, 1] + 9,
            ],
            axis=1,
        ).astype(float)
        _, ap = detection_frame_map(gt, dets, ["a", "b"])
        _, ap2 = detection_frame_map(gt, dets[rng.permutation(n)], ["a", "b"])
        np.testing.assert_array_equal(ap, ap2)
        self.assertTrue(np.all((ap >= 0) & (ap <= 1)))
        # A false positive scored below everything (a frame without ground truth) never raises AP.
        lower = np.concatenate([dets, [fdet(0, 30, 0, -1.0, A), fdet(1, 30, 1, -1.0, A)]])
        self.assertTrue(np.all(detection_frame_map(gt, lower, ["a", "b"])[1] <= ap + 1e-12))
        # The breakdown's true positives are the frame-mAP matches: no more than the ground truth.
        br = frame_error_breakdown(gt, dets, ["a", "b"])
        np.testing.assert_array_equal(br.counts.sum(axis=1), np.bincount(dets[:, 2].astype(int), minlength=2))
        np.testing.assert_array_equal(br.counts[:, 0] + br.missed, [4 + 3 + 3, 5])

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"frame_detections: expected \[M, 8\] rows \(video_index, frame"):
            detection_frame_map(FRAME_GT, np.zeros((2, 7)), VIDEOS)
        with self.assertRaisesRegex(ValueError, r"column 0 video_index .* in \[0, 2\), got 2.0 at row 0"):
            detection_frame_map(FRAME_GT, np.array([fdet(2, 1, 0, 0.5, A)], float), VIDEOS)
        with self.assertRaisesRegex(ValueError, r"column 2 label \(0-based\) must be an int in \[0, 3\)"):
            detection_frame_map(FRAME_GT, np.array([fdet(0, 1, 3, 0.5, A)], float), VIDEOS)
        with self.assertRaisesRegex(ValueError, "column 1 frame must be a 1-based int <= gt\\['nframes'\\]"):
            detection_frame_map(FRAME_GT, np.array([fdet(0, 0, 0, 0.5, A)], float), VIDEOS)
        with self.assertRaisesRegex(ValueError, "column 1 frame must be a 1-based int"):
            detection_frame_map(FRAME_GT, np.array([fdet(0, 31, 0, 0.5, A)], float), VIDEOS)
        with self.assertRaisesRegex(ValueError, r"frame_detections\[:, 4:8\]: expected boxes"):
            detection_frame_map(FRAME_GT, np.array([fdet(0, 1, 0, 0.5, [5, 5, 2, 9])], float), VIDEOS)
        with self.assertRaisesRegex(ValueError, "frame_detections: expected finite"):
            detection_frame_map(FRAME_GT, np.array([fdet(0, 1, 0, np.nan, A)], float), VIDEOS)
        with self.assertRaisesRegex(ValueError, "gt\\['gttubes'\\]: test video 'zz' is missing"):
            detection_frame_map(FRAME_GT, FRAME_DETS, ["a", "zz"])
        with self.assertRaisesRegex(ValueError, "test_videos: expected a sequence of video names, got str"):
            detection_frame_map(FRAME_GT, FRAME_DETS, "ab")
        with self.assertRaisesRegex(ValueError, "test_videos: expected distinct"):
            detection_frame_map(FRAME_GT, FRAME_DETS, ["a", "a"])
        with self.assertRaisesRegex(ValueError, "gt: expected a mapping with 'labels'"):
            detection_frame_map({"gttubes": {}}, FRAME_DETS, VIDEOS)
        with self.assertRaisesRegex(ValueError, r"iou_threshold: expected a float in \(0, 1\]"):
            detection_frame_map(FRAME_GT, FRAME_DETS, VIDEOS, iou_threshold=0)
        bad = ground_truth({"a": {0: [tube(1, 2, A)[:, :4]]}})
        with self.assertRaisesRegex(ValueError, r"gt\['gttubes'\]\['a'\]\[0\]\[0\]: expected \[L, 5\] rows"):
            detection_frame_map(bad, [], ["a"])
        bad = ground_truth({"a": {"run": [tube(1, 2, A)]}})
        with self.assertRaisesRegex(ValueError, r"gt\['gttubes'\]\['a'\] key: expected an int class label"):
            detection_frame_map(bad, [], ["a"])
        bad = ground_truth({"a": {5: [tube(1, 2, A)]}})
        with self.assertRaisesRegex(ValueError, r"key: expected an int class label in \[0, 3\), got 5"):
            detection_frame_map(bad, [], ["a"])


class ErrorBreakdownTest(absltest.TestCase):
    def test_hand_case(self):
        br = frame_error_breakdown(FRAME_GT, FRAME_DETS, VIDEOS)
        self.assertEqual(br.categories, ERROR_CATEGORIES)
        self.assertEqual(ERROR_CATEGORIES, ("true_positive", "duplicate", "wrong_class", "localisation", "background"))
        # Rows = classes; columns = TP, duplicate, wrong class, localisation, background (see FRAME_DETS).
        np.testing.assert_array_equal(br.counts, [[1, 1, 0, 1, 1], [2, 0, 0, 0, 0], [0, 0, 1, 0, 0]])
        np.testing.assert_allclose(br.fractions, [[1 / 4, 1 / 4, 0, 1 / 4, 1 / 4], [1, 0, 0, 0, 0], [0, 0, 1, 0, 0]])
        np.testing.assert_array_equal(br.total_counts, [3, 1, 1, 1, 1])
        np.testing.assert_allclose(br.total_fractions, np.array([3, 1, 1, 1, 1]) / 7)
        # Missed boxes: class 0 has 2, 1 matched; class 1 has 3, 2 matched; class 2 has none.
        np.testing.assert_array_equal(br.missed, [1, 1, 0])

    def test_thresholds_and_precedence(self):
        # B vs A: IoU 1/7 ~ 0.143: localisation at the 0.1 default, background at 0.2.
        dets = np.array([fdet(0, 2, 0, 0.7, B)], float)
        self.assertEqual(frame_error_breakdown(FRAME_GT, dets, VIDEOS).counts[0].tolist(), [0, 0, 0, 1, 0])
        br = frame_error_breakdown(FRAME_GT, dets, VIDEOS, localisation_threshold=0.2)
        self.assertEqual(br.counts[0].tolist(), [0, 0, 0, 0, 1])
        # A class-0 box on the class-1 box of a frame also holding a class-0 box it overlaps a little:
        # wrong class (IoU 1 with another class) wins over localisation (IoU 1/7 with its own class).
        gt = ground_truth({"a": {0: [tube(1, 1, A)], 1: [tube(1, 1, B)]}})
        br = frame_error_breakdown(gt, np.array([fdet(0, 1, 0, 0.5, B)], float), ["a"])
        self.assertEqual(br.counts[0].tolist(), [0, 0, 1, 0, 0])
        # Classes without detections: nan fractions; no detections at all: nan totals.
        br = frame_error_breakdown(FRAME_GT, np.zeros((0, 8)), VIDEOS)
        self.assertTrue(np.isnan(br.fractions).all() and np.isnan(br.total_fractions).all())
        np.testing.assert_array_equal(br.missed, [2, 3, 0])

    @given(st.integers(0, 10**6))
    def test_matches_the_rules_applied_one_detection_at_a_time(self, seed):
        rng = np.random.default_rng(seed)
        gt = ground_truth(
            {"a": {0: [tube(1, 3, A)], 1: [tube(2, 4, B)], 2: [tube(1, 2, [2, 2, 11, 11])]}, "b": {0: [tube(1, 4, B)]}},
            nframes=5,
        )
        n = 30
        xy = rng.integers(0, 9, (n, 2))
        dets = np.concatenate(
            [rng.integers(0, 2, (n, 1)), rng.integers(1, 6, (n, 1)), rng.integers(0, 3, (n, 1)),
             rng.integers(0, 5, (n, 1)), xy, xy + 9],  # few distinct scores: ties keep row order
            axis=1,
        ).astype(float)  # fmt: skip
        br = frame_error_breakdown(gt, dets, ["a", "b"], localisation_threshold=0.2)
        # The rules, one detection at a time in (label, descending score, row) order.
        boxes = {}  # (video index, frame) -> [(label, box, matched?)]
        for iv, v in enumerate(["a", "b"]):
            for c, tubes in gt["gttubes"][v].items():
                for t in tubes:
                    for r in t:
                        boxes.setdefault((iv, int(r[0])), []).append([c, r[1:5], False])
        counts = np.zeros((3, 5), int)
        for i in sorted(range(n), key=lambda i: (dets[i, 2], -dets[i, 3], i)):
            c, here = int(dets[i, 2]), boxes.get((int(dets[i, 0]), int(dets[i, 1])), [])
            iou = [act_box_iou([dets[i, 4:8]], [b[1]])[0, 0] for b in here]
            free = [k for k, b in enumerate(here) if b[0] == c and not b[2]]
            best = max(free, key=lambda k: (iou[k], -k), default=None)
            if best is not None and iou[best] >= 0.5:
                here[best][2], category = True, 0
            elif any(b[0] == c and iou[k] >= 0.5 for k, b in enumerate(here)):
                category = 1
            elif any(b[0] != c and iou[k] >= 0.5 for k, b in enumerate(here)):
                category = 2
            elif any(b[0] == c and iou[k] >= 0.2 for k, b in enumerate(here)):
                category = 3
            else:
                category = 4
            counts[c, category] += 1
        np.testing.assert_array_equal(br.counts, counts)
        matched = [sum(b[2] for bs in boxes.values() for b in bs if b[0] == c) for c in range(3)]
        np.testing.assert_array_equal(br.missed, np.array([3 + 4, 3, 2]) - matched)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "localisation_threshold: expected <= iou_threshold"):
            frame_error_breakdown(FRAME_GT, FRAME_DETS, VIDEOS, localisation_threshold=0.6)


# Videos "a", "b", "c" with 100 x 100 boxes; class 0 in "a" and "b", class 1 in "c".
BIG = [0, 0, 99, 99]
VIDEO_GT = ground_truth(
    {"a": {0: [tube(1, 20, BIG)]}, "b": {0: [tube(1, 20, BIG)]}, "c": {1: [tube(5, 24, BIG)]}},
    num_classes=3,
)
VIDEOS3 = ["a", "b", "c"]


def perfect_video_dets(gt, videos, score=1.0):
    return {
        v: {c: [(np.c_[t, np.ones(len(t))], score) for t in ts] for c, ts in gt["gttubes"][v].items()} for v in videos
    }


def shifted(dx):
    """Box BIG shifted right by dx: per-frame IoU (100 - dx) * 100 / (2 * 100 * 100 - (100 - dx) * 100)."""
    return [dx, 0, 99 + dx, 99]


class VideoMapTest(absltest.TestCase):
    def test_perfect_detector_is_one_everywhere(self):
        res = video_map(VIDEO_GT, perfect_video_dets(VIDEO_GT, VIDEOS3), VIDEOS3)
        np.testing.assert_array_equal(res.thresholds, [0.2, 0.5, 0.75])
        np.testing.assert_array_equal(res.mean_ap, [1, 1, 1])
        np.testing.assert_array_equal(res.ap[:, :2], np.ones((3, 2)))
        self.assertTrue(np.isnan(res.ap[:, 2]).all())  # class 2: no ground truth
        self.assertEqual(res.mean_ap_50_95, 1.0)
        self.assertEqual(res.ap_50_95[:2].tolist(), [1, 1])

    def test_shifted_boxes_fail_075_before_05(self):
        # dx = 20: per-frame IoU 80 / 120 = 2/3 over the whole tube (temporal IoU 1) -> tube IoU 2/3.
        dets = {v: {0: [(tube(1, 20, shifted(20), score=1), 0.9)]} for v in ("a", "b")}
        dets["c"] = {1: [(tube(5, 24, shifted(20), score=1), 0.9)]}
        self.assertAlmostEqual(act_tube_iou(dets["a"][0][0][0], VIDEO_GT["gttubes"]["a"][0][0]), 2 / 3, places=15)
        res = video_map(VIDEO_GT, dets, VIDEOS3)
        np.testing.assert_array_equal(res.mean_ap, [1, 1, 0])
        # 0.50:0.05:0.95: 2/3 >= 0.50, 0.55, 0.60, 0.65 only -> 4 / 10.
        self.assertAlmostEqual(res.mean_ap_50_95, 0.4, places=15)
        # dx = 40: IoU 60 / 140 = 3/7 ~ 0.43 < 0.5: only the 0.2 threshold passes.
        dets = {v: {0: [(tube(1, 20, shifted(40), score=1), 0.9)]} for v in ("a", "b")}
        np.testing.assert_array_equal(video_map(VIDEO_GT, dets, VIDEOS3).mean_ap, [0.5, 0, 0])  # class 1: AP 0

    def test_hand_ranked_case(self):
        # Class 0, P = 2: "b" has a wrong tube scored 0.9, "a" the right tube scored 0.5.
        # Flags 0 1: (0, 1), (0, 0), (1/2, 1/2) -> 1/2 * (0 + 1/2) / 2 = 1/8.
        dets = {"a": {0: [(tube(1, 20, BIG, score=1), 0.5)]}, "b": {0: [(tube(1, 20, FAR, score=1), 0.9)]}}
        res = video_map(VIDEO_GT, dets, VIDEOS3, iou_thresholds=[0.5])
        self.assertEqual(res.ap[0, 0], 0.125)
        self.assertEqual(res.ap[0, 1], 0.0)  # class 1 has ground truth, no detection
        self.assertEqual(res.mean_ap[0], (0.125 + 0) / 2)

    def test_duplicates_are_false_positives_unless_nms_removes_them(self):
        # "a": exact tube 0.9 and a duplicate 0.8; "b": exact tube 0.7. Class 0, P = 2.
        dets = {
            "a": {0: [(tube(1, 20, BIG, score=1), 0.9), (tube(1, 20, BIG, score=1), 0.8)]},
            "b": {0: [(tube(1, 20, BIG, score=1), 0.7)]},
        }
        # Without NMS the duplicate is a false positive: flags 1 0 1 -> 19/24.
        res = video_map(VIDEO_GT, dets, VIDEOS3, nms_threshold=None)
        np.testing.assert_allclose(res.ap[:, 0], [19 / 24] * 3, rtol=1e-15)
        # The default tube NMS at 0.3 removes it (IoU 1 > 0.3): flags 1 1 -> 1.
        np.testing.assert_array_equal(video_map(VIDEO_GT, dets, VIDEOS3).ap[:, 0], [1, 1, 1])
        # A duplicate overlapping only 5 / 20 = 0.25 <= 0.3 in time survives NMS and is a false positive.
        dets["a"][0][1] = (tube(16, 20, BIG, score=1), 0.8)
        np.testing.assert_allclose(video_map(VIDEO_GT, dets, VIDEOS3).ap[:, 0], [19 / 24] * 3, rtol=1e-15)

    def test_nms_is_per_class(self):
        # The same tube labelled 0 and 2 in "a": NMS does not compare them across classes.
        dets = {"a": {0: [(tube(1, 20, BIG, score=1), 0.9)], 2: [(tube(1, 20, BIG, score=1), 0.95)]}}
        res = video_map(VIDEO_GT, dets, VIDEOS3, iou_thresholds=[0.5])
        self.assertEqual(res.ap[0, 0], 0.5)  # one of the two class-0 tubes found, flags 1 -> (1/2, 1)
        self.assertTrue(np.isnan(res.ap[0, 2]))  # class 2 has detections but no ground truth: nan, no crash

    def test_no_ground_truth_at_all(self):
        gt = ground_truth({"a": {}})
        res = video_map(gt, {"a": {1: [(tube(1, 3, A, score=1), 0.5)]}}, ["a"])
        self.assertTrue(np.isnan(res.mean_ap).all() and math.isnan(res.mean_ap_50_95))

    @given(st.integers(0, 10**6))
    def test_list_order_with_distinct_scores_and_lower_false_positive(self, seed):
        rng = np.random.default_rng(seed)
        items = []
        scores = rng.permutation(12) / 12
        for i in range(12):
            v = VIDEOS3[rng.integers(0, 3)]
            first = int(rng.integers(1, 10))
            items.append((v, int(rng.integers(0, 2)), tube(first, first + 14, shifted(int(rng.integers(0, 50))), 1)))
        dets, rev = {}, {}
        for (v, c, t), s in zip(items, scores):
            dets.setdefault(v, {}).setdefault(c, []).append((t, s))
        for (v, c, t), s in reversed(list(zip(items, scores))):
            rev.setdefault(v, {}).setdefault(c, []).append((t, s))
        res, res2 = video_map(VIDEO_GT, dets, VIDEOS3), video_map(VIDEO_GT, rev, VIDEOS3)
        np.testing.assert_array_equal(res.ap, res2.ap)
        self.assertTrue(np.all((res.ap[:, :2] >= 0) & (res.ap[:, :2] <= 1)))
        # A false-positive tube (far away) scored below everything never raises AP.
        dets.setdefault("c", {}).setdefault(0, []).append((tube(1, 5, FAR, 1), -1.0))
        self.assertTrue(np.all(video_map(VIDEO_GT, dets, VIDEOS3).ap[:, :2] <= res.ap[:, :2] + 1e-12))

    def test_errors(self):
        good = tube(1, 3, A, score=1)
        with self.assertRaisesRegex(ValueError, r"video_detections\['a'\]\[0\]\[0\]\[0\]: expected \[L, 6\] rows"):
            video_map(VIDEO_GT, {"a": {0: [(tube(1, 3, A), 0.5)]}}, VIDEOS3)
        with self.assertRaisesRegex(ValueError, r"video_detections\['a'\]\[0\]\[0\]: expected a pair"):
            video_map(VIDEO_GT, {"a": {0: [good]}}, VIDEOS3)
        with self.assertRaisesRegex(ValueError, r"video_detections\['a'\]\[0\]\[0\]\[1\]: expected finite"):
            video_map(VIDEO_GT, {"a": {0: [(good, np.nan)]}}, VIDEOS3)
        with self.assertRaisesRegex(ValueError, r"video_detections\['a'\] key: expected an int class label"):
            video_map(VIDEO_GT, {"a": {7: [(good, 0.5)]}}, VIDEOS3)
        with self.assertRaisesRegex(ValueError, r"video_detections\['a'\]: expected \{label"):
            video_map(VIDEO_GT, {"a": [(good, 0.5)]}, VIDEOS3)
        with self.assertRaisesRegex(ValueError, r"video_detections: expected \{video"):
            video_map(VIDEO_GT, [], VIDEOS3)
        with self.assertRaisesRegex(ValueError, r"iou_thresholds\[1\]: expected a float in \(0, 1\]"):
            video_map(VIDEO_GT, {}, VIDEOS3, iou_thresholds=[0.5, 1.5])
        with self.assertRaisesRegex(ValueError, r"nms_threshold: expected a float in \[0, 1\]"):
            video_map(VIDEO_GT, {}, VIDEOS3, nms_threshold=-0.1)


class VideoMaboTest(absltest.TestCase):
    def test_hand_values(self):
        gt = ground_truth({"a": {0: [tube(1, 10, A)]}, "b": {0: [tube(1, 10, A)], 1: [tube(1, 10, B)]}})
        dets = {
            # Class 0 in "a": IoU 1/7 (same frames, box B) and 5/15 = 1/3 (frames 6..15, box A) -> best 1/3.
            "a": {0: [(tube(1, 10, B, score=1), 0.9), (tube(6, 15, A, score=1), 0.1)], 2: [(tube(1, 3, A, 1), 1.0)]},
            # Class 0 in "b": no class-0 detection there -> 0. Class 1 in "b": exact -> 1.
            "b": {1: [(tube(1, 10, B, score=1), 0.2)]},
        }
        mabo, abo = video_mabo(gt, dets, ["a", "b"])
        # ABO class 0 = (1/3 + 0) / 2 = 1/6; class 1 = 1; class 2 (no ground truth) nan.
        np.testing.assert_allclose(abo[:2], [1 / 6, 1], rtol=1e-15)
        self.assertTrue(np.isnan(abo[2]))
        self.assertAlmostEqual(mabo, (1 / 6 + 1) / 2, places=15)
        # With NMS at 0.3 first, the 0.9 tube (IoU 1/21 with the other) does not suppress it: same result.
        self.assertAlmostEqual(video_mabo(gt, dets, ["a", "b"], nms_threshold=0.3)[0], mabo, places=15)

    def test_perfect_detector(self):
        mabo, abo = video_mabo(VIDEO_GT, perfect_video_dets(VIDEO_GT, VIDEOS3), VIDEOS3)
        self.assertEqual(mabo, 1.0)
        self.assertEqual(abo[:2].tolist(), [1, 1])
        self.assertEqual(video_mabo(VIDEO_GT, {}, VIDEOS3)[0], 0.0)


class SyntheticGroundTruthTest(absltest.TestCase):
    """The layout ``cfjax.data.synthetic.act_ground_truth`` writes is the layout read here."""

    def test_perfect_and_jittered_detectors(self):
        videos = {f"v{i}": synthetic.tubes(i, num_frames=16, height=48, width=48) for i in range(5)}
        gt = synthetic.act_ground_truth(videos, ["v0"], ["v1", "v2", "v3", "v4"])
        test_videos = gt["test_videos"][0]
        frame_dets = gt_frame_dets(gt, test_videos)
        m, _ = detection_frame_map(gt, frame_dets)
        self.assertEqual(m, 1.0)
        self.assertEqual(frame_error_breakdown(gt, frame_dets).missed.sum(), 0)
        # No NMS here: two actors of one class may overlap by more than 0.3 and one would be suppressed.
        perfect = perfect_video_dets(gt, test_videos)
        self.assertEqual(video_map(gt, perfect, nms_threshold=None).mean_ap.tolist(), [1, 1, 1])
        self.assertEqual(video_mabo(gt, perfect)[0], 1.0)
        # Every box 3 pixels to the right: here v-mAP does not rise with the threshold and drops at 0.95.
        moved = {
            v: {c: [(t + [0, 3, 0, 3, 0, 0], s) for t, s in ts] for c, ts in d.items()} for v, d in perfect.items()
        }
        res = video_map(gt, moved, nms_threshold=None, iou_thresholds=[0.2, 0.5, 0.75, 0.95])
        self.assertTrue(np.all(np.diff(res.mean_ap) <= 0))
        self.assertLess(res.mean_ap[-1], 1.0)


if __name__ == "__main__":
    absltest.main()
