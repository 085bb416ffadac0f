"""Boxes: hand-computed IoUs in both conventions, encoding round trip, NMS against a Python loop."""

import functools
import math

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from hypothesis import given

from cfjax import ops

# Integer-valued boxes (x1, y1, w, h) so that overlaps, ties and empty boxes are common. A fixed
# count keeps compilations to one per variant (subsets come from masks).
NUM_BOXES = 10
INT_BOXES = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 12), st.integers(0, 12)),
    min_size=NUM_BOXES,
    max_size=NUM_BOXES,
).map(lambda v: np.asarray([[x, y, x + w, y + h] for x, y, w, h in v], np.float64))


def _ref_iou(a, b, plus_one):
    """One pair, straight from the definition (no shared code with cfjax.ops)."""
    off = 1.0 if plus_one else 0.0
    iw = max(min(a[2], b[2]) - max(a[0], b[0]) + off, 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]) + off, 0.0)
    inter = iw * ih
    area_a = max(a[2] - a[0] + off, 0.0) * max(a[3] - a[1] + off, 0.0)
    area_b = max(b[2] - b[0] + off, 0.0) * max(b[3] - b[1] + off, 0.0)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _ref_nms(boxes, scores, threshold, max_output, plus_one, mask=None):
    """Plain greedy loop: by descending score (ties: lower index), keep unless IoU > threshold with a kept box."""
    idx = [i for i in range(len(scores)) if mask is None or mask[i]]
    keep = []
    for i in sorted(idx, key=lambda i: (-scores[i], i)):
        if all(_ref_iou(boxes[i], boxes[k], plus_one) <= threshold for k in keep):
            keep.append(i)
    return keep[:max_output]


_jit_box_iou = jax.jit(ops.box_iou, static_argnames="plus_one")


class BoxIouTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_hand_values_both_conventions(self):
        a = jnp.asarray([[0.0, 0.0, 9.0, 9.0], [5.0, 5.0, 14.0, 14.0], [10.0, 0.0, 19.0, 9.0]])
        plus = np.asarray(self.variant(functools.partial(ops.box_iou, plus_one=True))(a, a))
        cont = np.asarray(self.variant(functools.partial(ops.box_iou, plus_one=False))(a, a))
        # +1: 10 x 10 boxes, overlap 5 x 5 -> 25 / 175; boxes 0 and 2 are adjacent: no shared pixel.
        np.testing.assert_allclose(plus[0], [1.0, 25 / 175, 0.0], atol=1e-15)
        # continuous: 9 x 9 boxes, overlap 4 x 4 -> 16 / 146.
        np.testing.assert_allclose(cont[0], [1.0, 16 / 146, 0.0], atol=1e-15)
        # Boxes 1 and 2: +1 overlap x 10..14 (5 px) by y 5..9 (5 px) = 25; continuous 4 x 4 = 16.
        np.testing.assert_allclose([plus[1, 2], cont[1, 2]], [25 / 175, 16 / 146], atol=1e-15)
        np.testing.assert_allclose(plus, plus.T, atol=0)

    def test_touching_boxes_share_a_pixel_column_only_with_plus_one(self):
        a = jnp.asarray([[0.0, 0.0, 10.0, 10.0]])
        b = jnp.asarray([[10.0, 0.0, 20.0, 10.0]])
        self.assertEqual(float(ops.box_iou(a, b, plus_one=False)[0, 0]), 0.0)
        # +1: one shared column 1 x 11 = 11 pixels, union 121 + 121 - 11.
        np.testing.assert_allclose(ops.box_iou(a, b, plus_one=True), [[11 / 231]], atol=1e-15)

    def test_areas(self):
        boxes = jnp.asarray([[0.0, 0.0, 9.0, 4.0], [3.0, 3.0, 3.0, 3.0], [5.0, 5.0, 2.0, 8.0]])
        np.testing.assert_array_equal(ops.box_area(boxes, plus_one=True), [50.0, 1.0, 0.0])
        np.testing.assert_array_equal(ops.box_area(boxes, plus_one=False), [36.0, 0.0, 0.0])

    @chex.variants(with_jit=True, without_jit=True)
    def test_degenerate_boxes_give_zero_never_nan(self):
        empty = jnp.asarray([[5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 0.0, 0.0], [8.0, 8.0, 2.0, 2.0]])
        iou = self.variant(functools.partial(ops.box_iou, plus_one=False))(empty, empty)
        np.testing.assert_array_equal(iou, np.zeros((3, 3)))
        # +1: a point box is one pixel (IoU 1 with itself); an inverted box is empty.
        iou = self.variant(functools.partial(ops.box_iou, plus_one=True))(empty, empty)
        np.testing.assert_array_equal(iou, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
        grad = jax.grad(lambda b: ops.box_iou(b, b, plus_one=False).sum())(empty)
        self.assertTrue(np.all(np.isfinite(grad)))

    @given(INT_BOXES, INT_BOXES, st.booleans())
    def test_matches_reference(self, a, b, plus_one):
        iou = np.asarray(_jit_box_iou(jnp.asarray(a), jnp.asarray(b[:7]), plus_one=plus_one))
        b = b[:7]
        chex.assert_shape(iou, (len(a), len(b)))
        expected = [[_ref_iou(x, y, plus_one) for y in b] for x in a]
        np.testing.assert_allclose(iou, expected, atol=1e-15)
        self.assertTrue(np.all((iou >= 0) & (iou <= 1)))

    def test_elementwise_broadcasts(self):
        a = jnp.asarray([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0]])
        b = jnp.asarray([0.0, 0.0, 4.0, 2.0])
        np.testing.assert_allclose(ops.elementwise_box_iou(a, b, plus_one=False), [0.5, 0.5], atol=1e-15)

    def test_float32_keeps_dtype(self):
        a = jnp.ones((2, 4), jnp.float32).at[:, 2:].set(5.0)
        self.assertEqual(ops.box_iou(a, a, plus_one=True).dtype, jnp.float32)

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"a: expected \[N, 4\]"):
            ops.box_iou(jnp.ones(4), jnp.ones((2, 4)), plus_one=True)
        with self.assertRaisesRegex(ValueError, r"b: expected boxes \[M, 4\]"):
            ops.box_iou(jnp.ones((2, 4)), jnp.ones((2, 5)), plus_one=True)
        with self.assertRaisesRegex(TypeError, "boxes: expected a floating dtype"):
            ops.box_area(jnp.ones((2, 4), jnp.int32), plus_one=True)
        with self.assertRaises(TypeError):
            ops.box_iou(jnp.ones((2, 4)), jnp.ones((2, 4)))  # the convention is mandatory


class BoxCodingTest(chex.TestCase):
    def test_hand_values(self):
        anchor = jnp.asarray([10.0, 10.0, 30.0, 50.0])  # centre (20, 30), size 20 x 40
        box = jnp.asarray([20.0, 10.0, 60.0, 30.0])  # centre (40, 20), size 40 x 20
        d = ops.encode_boxes(box, anchor)
        np.testing.assert_allclose(d, [1.0, -0.25, math.log(2.0), math.log(0.5)], atol=1e-15)
        d = ops.encode_boxes(box, anchor, weights=(10.0, 10.0, 5.0, 5.0))
        np.testing.assert_allclose(d, [10.0, -2.5, 5 * math.log(2.0), 5 * math.log(0.5)], atol=1e-14)

    @chex.variants(with_jit=True, without_jit=True)
    @given(
        st.lists(st.floats(0.0, 200.0), min_size=4, max_size=4),
        st.lists(st.floats(4.0, 100.0), min_size=4, max_size=4),
        st.sampled_from([(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]),
    )
    def test_round_trip(self, corners, sizes, weights):
        # Sizes within a factor of 25 of each other: below the 1000 / 16 clamp.
        boxes = jnp.asarray([[corners[0], corners[1], corners[0] + sizes[0], corners[1] + sizes[1]]])
        anchors = jnp.asarray([[corners[2], corners[3], corners[2] + sizes[2], corners[3] + sizes[3]]])
        encode = self.variant(functools.partial(ops.encode_boxes, weights=weights))
        decode = self.variant(functools.partial(ops.decode_boxes, weights=weights))
        np.testing.assert_allclose(decode(encode(boxes, anchors), anchors), boxes, atol=1e-10)

    def test_broadcasting_anchors(self):
        anchors = jnp.asarray([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 25.0, 15.0]])
        boxes = jnp.asarray([[[1.0, 2.0, 8.0, 9.0]] * 2] * 3)  # [3, 2, 4]
        d = ops.encode_boxes(boxes, anchors)
        chex.assert_shape(d, (3, 2, 4))
        np.testing.assert_allclose(ops.decode_boxes(d, anchors), boxes, atol=1e-12)

    def test_decode_clamps_scale(self):
        anchor = jnp.asarray([0.0, 0.0, 16.0, 16.0])
        box = ops.decode_boxes(jnp.asarray([0.0, 0.0, 50.0, 1e4]), anchor)
        np.testing.assert_allclose(box, [8 - 500, 8 - 500, 8 + 500, 8 + 500], rtol=1e-12)
        self.assertEqual(ops.boxes.DEFAULT_MAX_LOG_SCALE, math.log(1000 / 16))

    def test_degenerate_box_encodes_finite(self):
        d = ops.encode_boxes(jnp.zeros((4,)), jnp.asarray([0.0, 0.0, 10.0, 10.0]))
        self.assertTrue(np.all(np.isfinite(d)))
        d32 = ops.encode_boxes(jnp.zeros((4,), jnp.float32), jnp.asarray([0.0, 0.0, 10.0, 10.0], jnp.float32))
        self.assertTrue(np.all(np.isfinite(d32)))
        self.assertEqual(d32.dtype, jnp.float32)

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"anchors: expected boxes"):
            ops.encode_boxes(jnp.ones((2, 4)), jnp.ones((2, 3)))
        with self.assertRaisesRegex(ValueError, r"weights: expected shape \[4\]"):
            ops.decode_boxes(jnp.ones((2, 4)), jnp.ones((2, 4)), weights=(1.0, 1.0))


class NmsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @given(
        INT_BOXES,
        st.data(),
        st.sampled_from([0.0, 0.3, 0.5, 0.7]),
        st.sampled_from([3, 12]),
        st.booleans(),
    )
    def test_matches_python_greedy_loop(self, boxes, data, threshold, max_output, plus_one):
        n = len(boxes)
        scores = np.asarray(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), np.float64)
        mask = np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        run = self.variant(functools.partial(ops.nms, max_output=max_output, plus_one=plus_one))
        for m in (None, mask):
            indices, valid = run(jnp.asarray(boxes), jnp.asarray(scores), threshold, mask=None if m is None else m)
            chex.assert_shape([indices, valid], (max_output,))
            self.assertEqual(indices.dtype, jnp.int32)
            expected = _ref_nms(boxes, scores, threshold, max_output, plus_one, m)
            self.assertEqual(np.asarray(indices)[np.asarray(valid)].tolist(), expected)
            self.assertTrue(np.all(np.asarray(valid) == (np.arange(max_output) < len(expected))))
            np.testing.assert_array_equal(np.asarray(indices)[~np.asarray(valid)], 0)

    def test_hand_example(self):
        boxes = jnp.asarray(
            [[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 9.0]]
        )
        scores = jnp.asarray([0.9, 0.95, 0.3, 0.8])
        indices, valid = jax.jit(ops.nms, static_argnums=3, static_argnames="plus_one")(
            boxes, scores, 0.5, 5, plus_one=False
        )
        # 1 first; 0 (IoU 81/119 > 0.5) and 3 go; 2 stays.
        np.testing.assert_array_equal(indices, [1, 2, 0, 0, 0])
        np.testing.assert_array_equal(valid, [True, True, False, False, False])

    def test_vmap_over_batches(self):
        rng = np.random.default_rng(0)
        corner, size = rng.uniform(0, 50, (3, 10, 2)), rng.uniform(5, 20, (3, 10, 2))
        boxes = jnp.asarray(np.concatenate([corner, corner + size], axis=-1))
        scores = jnp.asarray(np.random.default_rng(1).uniform(size=(3, 10)))
        run = functools.partial(ops.nms, iou_threshold=0.3, max_output=4, plus_one=True)
        batched = jax.vmap(run)(boxes, scores)
        for b in range(3):
            one = run(boxes[b], scores[b])
            np.testing.assert_array_equal(batched[0][b], one[0])
            np.testing.assert_array_equal(batched[1][b], one[1])

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"scores: expected shape \[N\]"):
            ops.nms(jnp.ones((3, 4)), jnp.ones(2), 0.5, 2, plus_one=True)
        with self.assertRaisesRegex(TypeError, r"mask: expected bool \[N\]"):
            ops.nms(jnp.ones((3, 4)), jnp.ones(3), 0.5, 2, plus_one=True, mask=jnp.ones(3))


if __name__ == "__main__":
    absltest.main()
