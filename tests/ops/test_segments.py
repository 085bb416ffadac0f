"""Temporal segments: IoU, offset coding, greedy NMS against a NumPy loop."""

import chex
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from cfjax import ops


def numpy_nms(segments, scores, threshold):
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        ok = True
        for j in keep:
            inter = max(0.0, min(segments[i, 1], segments[j, 1]) - max(segments[i, 0], segments[j, 0]))
            union = (segments[i, 1] - segments[i, 0]) + (segments[j, 1] - segments[j, 0]) - inter
            if union > 0 and inter / union > threshold:
                ok = False
        if ok:
            keep.append(i)
    return keep


class SegmentsTest(chex.TestCase):
    def test_iou(self):
        a = jnp.array([[0.0, 4.0], [2.0, 6.0], [5.0, 5.0]])
        iou = ops.segment_iou(a, a)
        np.testing.assert_allclose(iou, [[1, 1 / 3, 0], [1 / 3, 1, 0], [0, 0, 0]])
        np.testing.assert_allclose(ops.elementwise_segment_iou(a[0], jnp.array([1.0, 3.0])), 0.5)

    def test_coding_round_trip(self):
        rng = np.random.default_rng(0)
        anchors = np.sort(rng.uniform(0, 50, (20, 2)), axis=1) + [0, 1]
        segments = np.sort(rng.uniform(0, 50, (20, 2)), axis=1) + [0, 1]
        deltas = ops.encode_segments(jnp.asarray(segments), jnp.asarray(anchors))
        np.testing.assert_allclose(ops.decode_segments(deltas, jnp.asarray(anchors)), segments, rtol=1e-10)
        np.testing.assert_allclose(ops.encode_segments(jnp.array([2.0, 6.0]), jnp.array([0.0, 8.0])), [0, np.log(0.5)])

    def test_nms_matches_a_loop(self):
        rng = np.random.default_rng(1)
        for seed in range(3):
            starts = rng.uniform(0, 30, 25)
            segments = np.stack([starts, starts + rng.uniform(1, 15, 25)], 1)
            scores = rng.uniform(size=25)
            expected = numpy_nms(segments, scores, 0.5)
            idx, valid = ops.segment_nms(jnp.asarray(segments), jnp.asarray(scores), 0.5, 25)
            np.testing.assert_array_equal(np.asarray(idx)[np.asarray(valid)], expected, err_msg=str(seed))
        mask = np.arange(25) % 2 == 0
        idx, valid = ops.segment_nms(jnp.asarray(segments), jnp.asarray(scores), 0.5, 4, mask=jnp.asarray(mask))
        self.assertTrue(np.all(mask[np.asarray(idx)[np.asarray(valid)]]))
        self.assertLessEqual(int(valid.sum()), 4)


if __name__ == "__main__":
    absltest.main()
