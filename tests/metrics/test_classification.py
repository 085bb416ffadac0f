"""Top-k accuracy, multi-view averaging, per-class accuracy, confusion matrix."""

import math

import hypothesis.strategies as st
import numpy as np
from absl.testing import absltest
from hypothesis import given

from cfjax.metrics import average_views, confusion_matrix, per_class_accuracy, topk_accuracy, topk_correct

# Row 0: one class above the label; row 1: one above and one tied; row 2: label is last of 3.
SCORES = np.array([[0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
LABELS = np.array([2, 0, 0, 1])


@st.composite
def batches(draw, max_n=7, max_k=6):
    """(scores [N, K] with many ties, labels [N], mask [N])."""
    n = draw(st.integers(0, max_n))
    k = draw(st.integers(1, max_k))
    scores = np.array(draw(st.lists(st.integers(-2, 2), min_size=n * k, max_size=n * k)), float).reshape(n, k)
    labels = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), np.int64)
    mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    return scores, labels, mask


def _rank_loop(scores, labels):
    """1 + number of classes strictly above the label, by direct loop."""
    return [1 + sum(1 for c in range(len(row)) if row[c] > row[y]) for row, y in zip(scores.tolist(), labels)]


class TopkTest(absltest.TestCase):
    def test_hand_values(self):
        np.testing.assert_array_equal(topk_correct(SCORES, LABELS, 1), [False, False, False, True])
        np.testing.assert_array_equal(topk_correct(SCORES, LABELS, 2), [True, True, False, True])
        np.testing.assert_array_equal(topk_correct(SCORES, LABELS, 3), [True, True, True, True])
        self.assertEqual(topk_accuracy(SCORES, LABELS, ks=(1, 2)), {"top1": 0.25, "top2": 0.75})

    def test_ties_favour_the_label(self):
        for label in range(3):
            self.assertTrue(topk_correct(np.full((1, 3), 7.0), [label], 1)[0])

    def test_k_clipped_to_num_classes(self):
        self.assertEqual(topk_accuracy(SCORES, LABELS), {"top1": 0.25, "top5": 1.0})
        self.assertEqual(topk_accuracy(SCORES, LABELS, ks=7), {"top7": 1.0})

    def test_mask_ignores_padding_rows_and_their_labels(self):
        scores = np.concatenate([SCORES, np.zeros((2, 3))])
        labels = np.concatenate([LABELS, [-1, 99]])  # padding labels are out of range on purpose
        mask = np.array([True] * 4 + [False] * 2)
        self.assertEqual(topk_accuracy(scores, labels, ks=(1, 2), mask=mask), {"top1": 0.25, "top2": 0.75})
        mask[0] = False  # drop the row that is top-2 but not top-1
        self.assertEqual(topk_accuracy(scores, labels, ks=(1, 2), mask=mask), {"top1": 1 / 3, "top2": 2 / 3})

    def test_no_valid_rows_is_nan(self):
        self.assertTrue(math.isnan(topk_accuracy(SCORES, LABELS, mask=np.zeros(4, bool))["top1"]))
        self.assertTrue(math.isnan(topk_accuracy(np.zeros((0, 3)), np.zeros(0, int))["top5"]))

    @given(batches(), st.integers(1, 7))
    def test_matches_loop_definition(self, batch, k):
        scores, labels, mask = batch
        expected = np.array([r <= k for r in _rank_loop(scores, labels)], bool)
        np.testing.assert_array_equal(topk_correct(scores, labels, k), expected)
        acc = topk_accuracy(scores, labels, ks=(k,), mask=mask)[f"top{k}"]
        if mask.any():
            self.assertAlmostEqual(acc, expected[mask].mean(), places=12)
        else:
            self.assertTrue(math.isnan(acc))

    @given(st.integers(1, 6), st.integers(1, 8), st.integers(0, 10**6))
    def test_distinct_scores_match_argsort(self, n, k, seed):
        rng = np.random.default_rng(seed)
        scores = rng.permutation(n * k).reshape(n, k).astype(float)  # no ties
        labels = rng.integers(0, k, n)
        for kk in range(1, k + 1):
            top = np.argsort(-scores, axis=1)[:, :kk]
            np.testing.assert_array_equal(topk_correct(scores, labels, kk), (top == labels[:, None]).any(axis=1))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"scores: expected \[N, K\]"):
            topk_correct(np.zeros(3), [0], 1)
        with self.assertRaisesRegex(ValueError, r"labels: expected \[N\] = \(4,\)"):
            topk_correct(SCORES, LABELS[:3], 1)
        with self.assertRaisesRegex(ValueError, "labels: expected an integer dtype"):
            topk_correct(SCORES, LABELS.astype(float), 1)
        with self.assertRaisesRegex(ValueError, r"labels: expected values in \[0, 3\)"):
            topk_correct(SCORES, [0, 1, 2, 3], 1)
        with self.assertRaisesRegex(ValueError, "k: expected an int >= 1"):
            topk_correct(SCORES, LABELS, 0)
        with self.assertRaisesRegex(ValueError, "scores: expected no NaN"):
            topk_correct(np.full((4, 3), np.nan), LABELS, 1)
        with self.assertRaisesRegex(ValueError, "ks: expected an int >= 1"):
            topk_accuracy(SCORES, LABELS, ks=(1, 0))
        with self.assertRaisesRegex(ValueError, "ks: expected at least one"):
            topk_accuracy(SCORES, LABELS, ks=())
        with self.assertRaisesRegex(ValueError, r"mask: expected \[N\] = \(4,\)"):
            topk_accuracy(SCORES, LABELS, mask=np.ones(3, bool))
        with self.assertRaisesRegex(ValueError, "mask: expected dtype bool"):
            topk_accuracy(SCORES, LABELS, mask=np.ones(4))


class AverageViewsTest(absltest.TestCase):
    def test_manual_softmax_mean(self):
        logits = np.random.default_rng(0).normal(size=(3, 4, 5)) * 3
        manual = np.zeros((3, 5))
        for n in range(3):
            for v in range(4):
                e = [math.exp(x) for x in logits[n, v]]
                manual[n] += np.array(e) / sum(e) / 4
        np.testing.assert_allclose(average_views(logits), manual, rtol=1e-12)

    def test_hand_value_and_stability(self):
        # View 1: softmax(0, ln 3) = (1/4, 3/4); view 2 uniform -> mean (3/8, 5/8). Shifted by 1e4: same.
        logits = np.array([[[0.0, np.log(3.0)], [5.0, 5.0]]])
        np.testing.assert_allclose(average_views(logits), [[3 / 8, 5 / 8]], rtol=1e-14)
        np.testing.assert_allclose(average_views(logits + 1e4), [[3 / 8, 5 / 8]], rtol=1e-12)
        np.testing.assert_allclose(average_views(np.array([[[1000.0, 0.0]]])), [[1.0, 0.0]], atol=1e-300)

    @given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.floats(-50, 50), st.integers(0, 10**6))
    def test_rows_sum_to_one_and_per_view_shift_invariance(self, n, v, k, shift, seed):
        rng = np.random.default_rng(seed)
        logits = rng.normal(size=(n, v, k)) * 10
        probs = average_views(logits)
        self.assertEqual(probs.shape, (n, k))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
        shifts = rng.normal(size=(n, v, 1)) * shift
        np.testing.assert_allclose(average_views(logits + shifts), probs, rtol=1e-9, atol=1e-15)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"logits: expected \[N, V, K\]"):
            average_views(np.zeros((2, 3)))
        with self.assertRaisesRegex(ValueError, "V >= 1"):
            average_views(np.zeros((2, 0, 3)))
        with self.assertRaisesRegex(ValueError, "logits: expected finite"):
            average_views(np.array([[[np.inf, 0.0]]]))


class PerClassAndConfusionTest(absltest.TestCase):
    def test_per_class_hand_values(self):
        out = per_class_accuracy(SCORES, LABELS, 3)
        np.testing.assert_array_equal(out["count"], [2, 1, 1])
        np.testing.assert_array_equal(out["top1"], [0.0, 1.0, 0.0])
        out = per_class_accuracy(SCORES, LABELS, 3, mask=np.array([False, True, True, True]))
        np.testing.assert_array_equal(out["count"], [2, 1, 0])
        np.testing.assert_array_equal(out["top1"], [0.0, 1.0, np.nan])
        self.assertEqual(out["count"].dtype, np.int64)

    def test_confusion_hand_values(self):
        cm = confusion_matrix([0, 2, 2, 1, 0], [0, 2, 1, 1, 2], 3)
        np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 1, 1], [1, 0, 1]])  # rows = true label
        cm = confusion_matrix([0, 2, 5], [0, 2, -1], 3, mask=np.array([True, True, False]))
        np.testing.assert_array_equal(cm, np.diag([1, 0, 1]))

    @given(batches())
    def test_per_class_matches_loop(self, batch):
        scores, labels, mask = batch
        k = scores.shape[1]
        out = per_class_accuracy(scores, labels, k, mask=mask)
        ranks = _rank_loop(scores, labels)
        for c in range(k):
            rows = [i for i in range(len(labels)) if mask[i] and labels[i] == c]
            self.assertEqual(out["count"][c], len(rows))
            if rows:
                self.assertAlmostEqual(out["top1"][c], sum(ranks[i] == 1 for i in rows) / len(rows), places=12)
            else:
                self.assertTrue(np.isnan(out["top1"][c]))

    @given(batches())
    def test_confusion_matches_loop_and_per_class(self, batch):
        scores, labels, mask = batch
        k = scores.shape[1]
        preds = np.argmax(scores, axis=1) if scores.size else np.zeros(0, np.int64)
        cm = confusion_matrix(preds, labels, k, mask=mask)
        loop = np.zeros((k, k), np.int64)
        for p, y, m in zip(preds, labels, mask):
            loop[y, p] += m
        np.testing.assert_array_equal(cm, loop)
        out = per_class_accuracy(scores, labels, k, mask=mask)
        np.testing.assert_array_equal(cm.sum(axis=1), out["count"])
        # argmax picks the first maximum; the tie rule counts any maximum as correct.
        self.assertTrue(np.all(np.diag(cm) <= np.nan_to_num(out["top1"]) * out["count"] + 1e-9))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"scores: expected \[N, C\] with C = num_classes = 4"):
            per_class_accuracy(SCORES, LABELS, 4)
        with self.assertRaisesRegex(ValueError, "num_classes: expected an int >= 1"):
            per_class_accuracy(SCORES, LABELS, 0)
        with self.assertRaisesRegex(ValueError, r"predictions: expected \[N\]"):
            confusion_matrix(np.zeros((2, 2), int), [0, 1], 2)
        with self.assertRaisesRegex(ValueError, r"labels: expected \[N\] = \(2,\)"):
            confusion_matrix([0, 1], [0], 2)
        with self.assertRaisesRegex(ValueError, r"predictions: expected values in \[0, 2\)"):
            confusion_matrix([0, 2], [0, 1], 2)
        with self.assertRaisesRegex(ValueError, "predictions: expected an integer dtype"):
            confusion_matrix([0.0, 1.0], [0, 1], 2)


if __name__ == "__main__":
    absltest.main()
