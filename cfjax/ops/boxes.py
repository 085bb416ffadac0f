"""Boxes: areas, IoU, Faster R-CNN box encoding, greedy NMS.

Boxes are ``[..., 4] = (x1, y1, x2, y2)`` in pixels. Two area conventions
exist and every function that measures an area takes it as an explicit,
keyword-only ``plus_one`` with no default:

* ``plus_one=True``: inclusive pixel coordinates, a box covers
  ``(x2 - x1 + 1) * (y2 - y1 + 1)`` pixels. This is the ACT / UCF101-24 /
  JHMDB evaluation protocol (docs/design.md, section 3.6).
* ``plus_one=False``: continuous coordinates, area ``(x2 - x1) * (y2 - y1)``
  (torchvision, COCO).

There is no default because the two disagree by several IoU points on the
small boxes of UCF101-24, and a silent mismatch between training and
evaluation is exactly the bug a default would hide.

Box encoding (:func:`encode_boxes`, :func:`decode_boxes`) always uses the
continuous convention (centre and size ``w = x2 - x1``), as Faster R-CNN does;
``plus_one`` only concerns areas and IoU.

Every function is jit- and vmap-safe; :func:`nms` needs a static ``max_output``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from cfjax.ops._checks import check_bool, check_boxes, check_floating, check_rank, check_shape

__all__ = [
    "DEFAULT_MAX_LOG_SCALE",
    "box_area",
    "box_iou",
    "decode_boxes",
    "elementwise_box_iou",
    "encode_boxes",
    "nms",
]

# torchvision's bbox_xform_clip: a box at most 1000/16 times its anchor's size.
DEFAULT_MAX_LOG_SCALE = math.log(1000.0 / 16)


def _extent(lo, hi, plus_one: bool):
    return jnp.maximum(hi - lo + (1 if plus_one else 0), 0)


def box_area(boxes, *, plus_one: bool):
    """Areas of ``boxes [..., 4] -> [...]``; empty or inverted boxes have area 0.

    ``plus_one=True``: ``(x2 - x1 + 1)(y2 - y1 + 1)`` (inclusive pixels, ACT);
    ``plus_one=False``: ``(x2 - x1)(y2 - y1)`` (continuous).
    """
    check_boxes("boxes", boxes)
    return _extent(boxes[..., 0], boxes[..., 2], plus_one) * _extent(boxes[..., 1], boxes[..., 3], plus_one)


def elementwise_box_iou(a, b, *, plus_one: bool):
    """IoU of broadcast pairs: ``a [..., 4]``, ``b [..., 4] -> [...]``.

    Degenerate pairs (zero union, e.g. two empty boxes) give 0, never NaN.
    """
    check_boxes("a", a)
    check_boxes("b", b)
    iw = _extent(jnp.maximum(a[..., 0], b[..., 0]), jnp.minimum(a[..., 2], b[..., 2]), plus_one)
    ih = _extent(jnp.maximum(a[..., 1], b[..., 1]), jnp.minimum(a[..., 3], b[..., 3]), plus_one)
    inter = iw * ih
    union = box_area(a, plus_one=plus_one) + box_area(b, plus_one=plus_one) - inter
    positive = union > 0
    return jnp.where(positive, inter / jnp.where(positive, union, 1), 0)


def box_iou(a, b, *, plus_one: bool):
    """Pairwise IoU: ``a [N, 4]``, ``b [M, 4] -> [N, M]``.

    ``plus_one`` picks the area convention (see the module docstring). Empty
    boxes have IoU 0 with everything, themselves included.
    """
    check_rank("a", a, 2, "[N, 4]")
    check_rank("b", b, 2, "[M, 4]")
    check_boxes("a", a, "[N, 4]")
    check_boxes("b", b, "[M, 4]")
    return elementwise_box_iou(a[:, None, :], b[None, :, :], plus_one=plus_one)


def _weights(weights, dtype):
    w = jnp.asarray(weights, dtype)
    check_shape("weights", w, (4,), "[4] (wx, wy, ww, wh)")
    return w


def _centre_size(boxes):
    """``(cx, cy, w, h)``, sizes floored at machine epsilon so logs and ratios stay finite."""
    tiny = jnp.finfo(boxes.dtype).eps
    w = jnp.maximum(boxes[..., 2] - boxes[..., 0], tiny)
    h = jnp.maximum(boxes[..., 3] - boxes[..., 1], tiny)
    return (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2, w, h


def encode_boxes(boxes, anchors, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)):
    """Faster R-CNN deltas of ``boxes`` relative to ``anchors`` (continuous convention).

    ``dx = wx (cx - cx_a) / w_a``, ``dy = wy (cy - cy_a) / h_a``,
    ``dw = ww log(w / w_a)``, ``dh = wh log(h / h_a)`` with ``w = x2 - x1``.
    Widths and heights are floored at the dtype's machine epsilon, so a
    degenerate (e.g. zero-padded) box encodes to large but finite deltas.

    Args:
      boxes: ``[..., 4]`` target boxes.
      anchors: ``[..., 4]`` anchors, broadcastable against ``boxes``.
      weights: ``(wx, wy, ww, wh)``.

    Returns:
      ``[..., 4]`` deltas ``(dx, dy, dw, dh)`` (broadcast shape).
    """
    check_boxes("boxes", boxes)
    check_boxes("anchors", anchors)
    dtype = jnp.result_type(boxes, anchors)
    boxes, anchors = boxes.astype(dtype), anchors.astype(dtype)
    w = _weights(weights, dtype)
    cx, cy, bw, bh = _centre_size(boxes)
    ax, ay, aw, ah = _centre_size(anchors)
    return jnp.stack(
        [w[0] * (cx - ax) / aw, w[1] * (cy - ay) / ah, w[2] * jnp.log(bw / aw), w[3] * jnp.log(bh / ah)],
        axis=-1,
    )


def decode_boxes(
    deltas,
    anchors,
    weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    max_log_scale: float = DEFAULT_MAX_LOG_SCALE,
):
    """Inverse of :func:`encode_boxes`: ``deltas [..., 4]``, ``anchors [..., 4] -> boxes [..., 4]``.

    ``dw / ww`` and ``dh / wh`` are clamped from above at ``max_log_scale``
    (default ``log(1000 / 16)``, torchvision's choice) before the ``exp``, so
    a box is at most ``1000 / 16`` times its anchor's size and never ``inf``.
    The clamp is applied after dividing by the weights, as torchvision does.
    """
    check_boxes("deltas", deltas)
    check_boxes("anchors", anchors)
    dtype = jnp.result_type(deltas, anchors)
    deltas, anchors = deltas.astype(dtype), anchors.astype(dtype)
    w = _weights(weights, dtype)
    ax, ay, aw, ah = _centre_size(anchors)
    cx = deltas[..., 0] / w[0] * aw + ax
    cy = deltas[..., 1] / w[1] * ah + ay
    bw = jnp.exp(jnp.minimum(deltas[..., 2] / w[2], max_log_scale)) * aw
    bh = jnp.exp(jnp.minimum(deltas[..., 3] / w[3], max_log_scale)) * ah
    return jnp.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)


def greedy_select(
    scores,
    mask,
    overlap_with: Callable[[jax.Array], jax.Array],
    iou_threshold,
    max_output: int,
):
    """Greedy non-maximum suppression on any overlap measure (shared by box and tube NMS).

    Candidates are visited in descending score order (ties: lower index
    first); a candidate is kept unless an already kept one overlaps it by
    more than ``iou_threshold`` (strictly); the loop stops after
    ``max_output`` keeps.

    Args:
      scores: ``[N]`` floating scores.
      mask: ``[N]`` bool, which candidates take part.
      overlap_with: ``i -> [N]`` overlap of candidate ``i`` with every candidate.
      iou_threshold: scalar (may be traced).
      max_output: static int.

    Returns:
      ``(indices int32 [max_output], valid bool [max_output])``: kept indices
      in descending score order; padded entries have index 0 and valid False.
    """
    scores, mask = jnp.asarray(scores), jnp.asarray(mask)
    n = scores.shape[0]
    max_output = int(max_output)
    order = jnp.lexsort((-scores, ~mask)).astype(jnp.int32)  # masked out last; stable on ties

    def cond(state):
        i, count, _, _ = state
        return (i < n) & (count < max_output)

    def body(state):
        i, count, suppressed, out = state
        j = order[i]
        take = mask[j] & ~suppressed[j]
        suppressed = suppressed | (take & (overlap_with(j) > iou_threshold))
        out = out.at[count].set(jnp.where(take, j, out[count]))
        return i + 1, count + take.astype(jnp.int32), suppressed, out

    if max_output <= 0 or n == 0:
        return jnp.zeros((max(max_output, 0),), jnp.int32), jnp.zeros((max(max_output, 0),), bool)
    init = (jnp.int32(0), jnp.int32(0), jnp.zeros((n,), bool), jnp.zeros((max_output,), jnp.int32))
    _, count, _, out = jax.lax.while_loop(cond, body, init)
    return out, jnp.arange(max_output) < count


def nms(boxes, scores, iou_threshold, max_output: int, *, plus_one: bool, mask=None):
    """Greedy NMS with a static output size.

    Visits boxes by descending score (ties: lower index first) and drops a box
    whose IoU with an already kept box is strictly above ``iou_threshold``,
    the same as a plain Python greedy loop. Memory is ``O(N)`` (IoUs are
    computed one row at a time, no ``N x N`` matrix).

    Args:
      boxes: ``[N, 4]``.
      scores: ``[N]`` floating.
      iou_threshold: scalar, may be traced.
      max_output: static int, the length of the outputs.
      plus_one: area convention (see the module docstring).
      mask: optional ``[N]`` bool, which boxes take part (default all).

    Returns:
      ``(indices int32 [max_output], valid bool [max_output])`` in descending
      score order; padded entries have index 0 and valid False.
    """
    boxes, scores = jnp.asarray(boxes), jnp.asarray(scores)
    check_rank("boxes", boxes, 2, "[N, 4]")
    check_boxes("boxes", boxes, "[N, 4]")
    check_shape("scores", scores, boxes.shape[:1], "[N]")
    check_floating("scores", scores)
    n = boxes.shape[0]
    mask = jnp.ones((n,), bool) if mask is None else jnp.asarray(mask)
    check_bool("mask", mask, (n,), "[N]")
    return greedy_select(
        scores,
        mask,
        lambda i: elementwise_box_iou(boxes[i], boxes, plus_one=plus_one),
        iou_threshold,
        max_output,
    )
