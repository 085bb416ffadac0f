"""Action tubes (CFAD, Li et al., ECCV 2020): polynomial tubes, anchor matching,
spline interpolation, key-timestamp labels, local search, tube IoU and tube NMS.

A tube is a box per frame: ``[..., L, 4]`` boxes ``(x1, y1, x2, y2)`` in pixels
plus a bool ``[..., L]`` frame-valid mask over a common frame axis. Areas and
IoUs take the same explicit ``plus_one`` keyword as :mod:`cfjax.ops.boxes`.

Time along a tube: ``t_j = j / (L - 1)`` for the ``L`` frames (or sampled
steps) of the tube, so its first frame is ``t = 0`` and its last ``t = 1``
(see :func:`normalised_time`). The paper writes ``t / T_A``; read literally
with 0-based frames that never reaches 1, so cfjax aligns the ends instead,
and uses the same times for training targets and for decoding.

Everything here is pure jnp, jit- and vmap-safe (output sizes are static
arguments), and float64-exact where the inputs are float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from cfjax.ops._checks import check_bool, check_boxes, check_floating, check_rank, check_shape
from cfjax.ops.boxes import DEFAULT_MAX_LOG_SCALE, decode_boxes, elementwise_box_iou, encode_boxes, greedy_select

__all__ = [
    "evaluate_tube",
    "fit_polynomial",
    "key_timestamp_labels",
    "local_search",
    "match_anchors_to_tubes",
    "normalised_time",
    "polynomial_basis",
    "spline_interpolate",
    "spline_interpolate_masked",
    "tube_boxes",
    "tube_iou",
    "tube_nms",
    "tube_targets",
]

_UNIT_WEIGHTS = (1.0, 1.0, 1.0, 1.0)


# --------------------------------------------------------------------------- polynomial tubes


def normalised_time(num_frames: int, dtype=jnp.float32):
    """``[num_frames]`` times ``j / (num_frames - 1)`` in ``[0, 1]`` (``[0]`` for one frame)."""
    num_frames = int(num_frames)
    if num_frames < 1:
        raise ValueError(f"num_frames: expected a positive int, got {num_frames}")
    return jnp.arange(num_frames, dtype=dtype) / max(num_frames - 1, 1)


def polynomial_basis(t, order: int):
    """``t [L] -> [L, order + 1]``, rows ``[1, t, t^2, ..., t^order]``."""
    check_rank("t", t, 1, "[L]")
    check_floating("t", t)
    if int(order) < 0:
        raise ValueError(f"order: expected a non-negative int, got {order}")
    return t[:, None] ** jnp.arange(int(order) + 1, dtype=t.dtype)[None, :]


def evaluate_tube(theta, t):
    """Polynomial tube ``A(t; theta)`` in encoded (delta) space.

    Args:
      theta: ``[..., k + 1, 4]`` coefficients, row ``i`` multiplies ``t^i``;
        column ``c`` is the polynomial of delta ``c`` of ``(dx, dy, dw, dh)``.
      t: ``[L]`` normalised times.

    Returns:
      ``[..., L, 4]`` deltas ``A(t_l) = [theta_x^T tvec, theta_y^T tvec, ...]``.
    """
    if jnp.ndim(theta) < 2 or jnp.shape(theta)[-1] != 4:
        raise ValueError(f"theta: expected [..., k+1, 4], got shape {jnp.shape(theta)}")
    check_floating("theta", theta)
    basis = polynomial_basis(jnp.asarray(t, theta.dtype), theta.shape[-2] - 1)
    return jnp.einsum("lk,...kc->...lc", basis, theta)


def tube_boxes(
    theta,
    anchors,
    t,
    weights: Sequence[float] = _UNIT_WEIGHTS,
    max_log_scale: float = DEFAULT_MAX_LOG_SCALE,
):
    """Decodes a polynomial tube to boxes.

    Args:
      theta: ``[..., k + 1, 4]`` coefficients (see :func:`evaluate_tube`).
      anchors: ``[..., 4]`` the anchor of each tube (leading axes broadcast with ``theta``'s).
      t: ``[L]`` normalised times.
      weights, max_log_scale: as in :func:`~cfjax.ops.boxes.decode_boxes`.

    Returns:
      ``[..., L, 4]`` boxes (continuous convention).
    """
    check_boxes("anchors", anchors)
    return decode_boxes(evaluate_tube(theta, t), anchors[..., None, :], weights, max_log_scale)


def tube_targets(gt_boxes, gt_valid, anchors, weights: Sequence[float] = _UNIT_WEIGHTS):
    """Regression targets for the polynomial tube loss.

    The GT boxes of each frame of the tube window are encoded relative to the
    (static) anchor; the loss is the squared error between
    ``evaluate_tube(theta, times)`` and ``targets`` at the valid frames.

    Args:
      gt_boxes: ``[..., L, 4]`` GT boxes on the tube's ``L`` frames (``T_A = L``).
      gt_valid: ``[..., L]`` bool, frames that have a GT box.
      anchors: ``[..., 4]`` anchors, leading axes broadcast with ``gt_boxes``'s.
      weights: box-encoding weights.

    Returns:
      ``(targets [..., L, 4], times [L], valid [..., L])``: encoded deltas (0 at
      invalid frames, finite even for zero-padded boxes), the normalised
      frame times ``normalised_time(L)``, and the broadcast valid mask.
    """
    check_boxes("gt_boxes", gt_boxes, "[..., L, 4]")
    check_boxes("anchors", anchors)
    if jnp.ndim(gt_boxes) < 2:
        raise ValueError(f"gt_boxes: expected [..., L, 4], got shape {jnp.shape(gt_boxes)}")
    check_bool("gt_valid", gt_valid, gt_boxes.shape[:-1], "[..., L]")
    deltas = encode_boxes(gt_boxes, anchors[..., None, :], weights)
    valid = jnp.broadcast_to(gt_valid, deltas.shape[:-1])
    targets = jnp.where(valid[..., None], deltas, 0)
    return targets, normalised_time(gt_boxes.shape[-2], deltas.dtype), valid


def fit_polynomial(targets, times, valid, order: int):
    """Least-squares polynomial coefficients through the valid targets.

    Useful as an oracle (the best tube of a given order) and for analysis.

    Args:
      targets: ``[..., L, C]`` values (e.g. encoded deltas, ``C = 4``).
      times: ``[L]`` normalised times.
      valid: ``[..., L]`` bool.
      order: polynomial order ``k``.

    Returns:
      ``[..., k + 1, C]`` minimum-norm least-squares coefficients.
    """
    check_floating("targets", targets)
    check_bool("valid", valid, targets.shape[:-1], "[..., L]")
    basis = polynomial_basis(jnp.asarray(times, targets.dtype), order)  # [L, k+1]
    w = valid[..., None].astype(targets.dtype)
    return jnp.linalg.pinv(basis * w) @ (targets * w)


# --------------------------------------------------------------------------- matching


def match_anchors_to_tubes(
    anchors,
    gt_boxes,
    gt_valid,
    *,
    pos_threshold,
    neg_threshold,
    plus_one: bool,
    segment_length: int = 6,
    best_anchor_positive: bool = False,
):
    """Segment-wise anchor-to-tube matching (CFAD, training).

    Per anchor ``a`` and GT tube ``g``, with the valid GT boxes of ``g`` taken
    in frame order (frames without a box are skipped, so "consecutive" means
    consecutive among the boxes that exist) and ``K = segment_length``:

    * ``first[a, g]``: mean IoU of the anchor with the first ``K`` GT boxes;
    * ``best[a, g]``: max of the mean IoU over the ``floor(n / K)`` disjoint
      segments of the tube's ``n`` boxes, segment ``j`` being boxes
      ``j K .. j K + K - 1`` (the paper's segments; a partial tail segment is
      not used, so segment 0 is the one ``first`` uses).

    A tube with fewer than ``K`` boxes has a single segment: all of its boxes.
    A tube with no box (``gt_valid[g]`` all False, i.e. padding) is ignored.

    * positive: ``first[a, g] > pos_threshold`` for some tube;
    * negative: not positive and ``best[a, g] < neg_threshold`` for every tube
      (so an anchor with no GT tube at all is negative);
    * assigned: ``argmax_g first[a, g]`` over existing tubes (ties: lower
      ``g``). When an anchor is positive for several tubes it goes to the one
      it overlaps most on the first-``K`` segment, the segment that made it
      positive. Defined for every anchor, meaningful for positives.

    Both thresholds are strict. With ``best_anchor_positive`` (Faster R-CNN's
    rule, not in the paper) the anchor of highest ``first`` IoU (> 0) of each
    tube is also positive and assigned to that tube (to the one of highest
    ``first`` when it is the best anchor of several; ties: lower anchor index),
    so every tube that overlaps some anchor trains the detector even when its
    actor moves too fast for any static anchor to pass ``pos_threshold``.

    Args:
      anchors: ``[A, 4]``.
      gt_boxes: ``[G, L, 4]`` GT tubes on the frames of the tube window (frame 0 is
        the first frame of the proposal, so "the first K boxes" are the first K
        boxes inside it; cropping to the proposal is the caller's job).
      gt_valid: ``[G, L]`` bool.
      pos_threshold, neg_threshold: scalars.
      plus_one: IoU convention.
      segment_length: ``K`` (static, 6 in the paper).
      best_anchor_positive: also make each tube's best anchor positive (static, see above).

    Returns:
      ``(assigned int32 [A], positive bool [A], negative bool [A])``.
    """
    anchors, gt_boxes, gt_valid = jnp.asarray(anchors), jnp.asarray(gt_boxes), jnp.asarray(gt_valid)
    check_rank("anchors", anchors, 2, "[A, 4]")
    check_boxes("anchors", anchors, "[A, 4]")
    check_rank("gt_boxes", gt_boxes, 3, "[G, L, 4]")
    check_boxes("gt_boxes", gt_boxes, "[G, L, 4]")
    check_bool("gt_valid", gt_valid, gt_boxes.shape[:2], "[G, L]")
    k = int(segment_length)
    if k < 1:
        raise ValueError(f"segment_length: expected a positive int, got {segment_length}")
    num_anchors = anchors.shape[0]
    num_gt, length = gt_valid.shape
    if num_gt == 0:
        return jnp.zeros((num_anchors,), jnp.int32), jnp.zeros((num_anchors,), bool), jnp.ones((num_anchors,), bool)

    iou = elementwise_box_iou(anchors[:, None, None, :], gt_boxes[None], plus_one=plus_one)  # [A, G, L]
    # Valid boxes to the front of each tube, in frame order.
    order = jnp.argsort(~gt_valid, axis=1, stable=True)
    count = jnp.sum(gt_valid, axis=1)  # [G]
    packed_valid = jnp.arange(length)[None, :] < count[:, None]
    packed = jnp.where(packed_valid[None], jnp.take_along_axis(iou, order[None], axis=2), 0)
    # Window sums by K shifted adds (no cumsum cancellation): window s covers boxes s .. s+K-1.
    padded = jnp.pad(packed, ((0, 0), (0, 0), (0, k - 1)))
    window_sum = sum(padded[..., i : i + length] for i in range(k))
    window_mean = window_sum / jnp.maximum(jnp.minimum(count, k), 1)[None, :, None].astype(window_sum.dtype)
    # The disjoint segments start at s = 0, K, 2K, ... with s + K <= count (window 0 when count < K).
    starts = jnp.arange(length)[None, :]
    in_range = ((starts % k == 0) & (starts + k <= count[:, None])) | (starts == 0)
    in_range = in_range[None]  # [1, G, L]
    exists = (count > 0)[None, :]  # [1, G]
    first = jnp.where(exists, window_mean[..., 0], -1)
    best = jnp.where(exists, jnp.max(jnp.where(in_range, window_mean, 0), axis=-1), 0)

    positive = jnp.any(first > pos_threshold, axis=1)
    assigned = jnp.argmax(first, axis=1).astype(jnp.int32)
    if best_anchor_positive:
        is_best = (jnp.arange(num_anchors)[:, None] == jnp.argmax(first, axis=0)[None, :]) & (first > 0)  # [A, G]
        forced = jnp.any(is_best, axis=1)
        positive = positive | forced
        assigned = jnp.where(forced, jnp.argmax(jnp.where(is_best, first, -2), axis=1), assigned).astype(jnp.int32)
    negative = jnp.all(best < neg_threshold, axis=1) & ~positive
    return assigned, positive, negative


# --------------------------------------------------------------------------- splines


def spline_interpolate_masked(times, values, is_key, query_times):
    """Natural cubic spline through the key steps, evaluated at ``query_times``.

    Fixed shapes: the keys are the steps with ``is_key``; their times must be
    strictly increasing. The spline has zero second derivative at the first and
    last key (natural boundary, as ``scipy.interpolate.CubicSpline(bc_type=
    "natural")``); outside the key range the end cubics are extended (scipy's
    default ``extrapolate=True``). With two keys it is the straight line through
    them; with one key it is constant; with none it is 0. A query equal to a
    key time returns that key's value exactly.

    Args:
      times: ``[N]`` step times.
      values: ``[N, C]`` values at the steps (boxes: ``C = 4``).
      is_key: ``[N]`` bool.
      query_times: ``[Q]``.

    Returns:
      ``[Q, C]``.
    """
    times, values, is_key = jnp.asarray(times), jnp.asarray(values), jnp.asarray(is_key)
    check_rank("times", times, 1, "[N]")
    check_floating("times", times)
    check_rank("values", values, 2, "[N, C]")
    check_floating("values", values)
    num = times.shape[0]
    if values.shape[0] != num:
        raise ValueError(f"values: expected [N, C] with N = {num} (the length of times), got shape {values.shape}")
    check_bool("is_key", is_key, (num,), "[N]")
    check_rank("query_times", query_times, 1, "[Q]")
    dtype = jnp.result_type(times, values)
    times, values = times.astype(dtype), values.astype(dtype)
    query = jnp.asarray(query_times, dtype)

    order = jnp.argsort(~is_key, stable=True)
    n = jnp.sum(is_key).astype(jnp.int32)
    slot = jnp.arange(num)
    key = slot < n
    x = times[order]
    y = values[order]
    x_last = x[jnp.maximum(n - 1, 0)]
    x = jnp.where(key, x, x_last)  # padded slots repeat the last key: finite, zero gaps
    y = jnp.where(key[:, None], y, 0)

    has_next = slot < n - 1
    x_next = jnp.concatenate([x[1:], x[-1:]])
    y_next = jnp.concatenate([y[1:], y[-1:]])
    h = jnp.where(has_next, x_next - x, 1)
    slope = jnp.where(has_next[:, None], (y_next - y) / h[:, None], 0)
    h_prev = jnp.concatenate([jnp.ones((1,), dtype), h[:-1]])
    slope_prev = jnp.concatenate([jnp.zeros((1, y.shape[1]), dtype), slope[:-1]])
    interior = (slot >= 1) & has_next
    dl = jnp.where(interior, h_prev, 0)
    du = jnp.where(interior, h, 0)
    diag = jnp.where(interior, 2 * (h_prev + h), 1)
    rhs = jnp.where(interior[:, None], 6 * (slope - slope_prev), 0)
    m = jax.lax.linalg.tridiagonal_solve(dl, diag, du, rhs)  # second derivatives, 0 at the ends

    seg = jnp.searchsorted(jnp.where(key, x, jnp.inf), query, side="right") - 1
    seg = jnp.clip(seg, 0, jnp.maximum(n - 2, 0))
    nxt = jnp.minimum(seg + 1, num - 1)
    hs, m0, m1 = h[seg][:, None], m[seg], m[nxt]
    y0, y1 = y[seg], y[nxt]
    dt = (query - x[seg])[:, None]
    b = (y1 - y0) / hs - hs * (2 * m0 + m1) / 6
    out = y0 + dt * (b + dt * (m0 / 2 + dt * (m1 - m0) / (6 * hs)))
    out = jnp.where(((query == x[nxt]) & (nxt < n))[:, None], y1, out)
    return jnp.where(n >= 2, out, jnp.where(n == 1, y[0], 0))


def spline_interpolate(key_times, key_boxes, query_times):
    """Natural cubic spline through ``K >= 1`` key points.

    Args:
      key_times: ``[K]`` strictly increasing.
      key_boxes: ``[K, C]`` (boxes: ``C = 4``).
      query_times: ``[Q]``.

    Returns:
      ``[Q, C]``; linear for ``K = 2``. See :func:`spline_interpolate_masked`.
    """
    check_rank("key_times", key_times, 1, "[K]")
    if jnp.shape(key_times)[0] < 1:
        raise ValueError("key_times: expected at least one key, got shape (0,)")
    return spline_interpolate_masked(key_times, key_boxes, jnp.ones(jnp.shape(key_times), bool), query_times)


# --------------------------------------------------------------------------- tube IoU and NMS


def tube_iou(boxes_a, valid_a, boxes_b, valid_b, *, plus_one: bool):
    """Spatio-temporal tube IoU (the ACT protocol).

    With ``[s_a, e_a]`` the first and last valid frame of tube ``a`` (same for
    ``b``): temporal IoU ``(min(e) - max(s) + 1) / (max(e) - min(s) + 1)``
    (inclusive frame counts) times the mean per-frame IoU over the frames of
    the overlap ``[max(s), min(e)]``; 0 when the tubes do not overlap in time
    or either is empty. A frame inside the overlap where either tube has no box
    (a hole in the mask; ACT's tubes have none) counts as per-frame IoU 0.

    Args:
      boxes_a: ``[..., L, 4]``; valid_a: ``[..., L]`` bool.
      boxes_b: ``[..., L, 4]``; valid_b: ``[..., L]`` bool (leading axes broadcast).
      plus_one: per-frame IoU convention.

    Returns:
      ``[...]`` tube IoUs in ``[0, 1]``.
    """
    boxes_a, valid_a, boxes_b, valid_b = map(jnp.asarray, (boxes_a, valid_a, boxes_b, valid_b))
    check_boxes("boxes_a", boxes_a, "[..., L, 4]")
    check_boxes("boxes_b", boxes_b, "[..., L, 4]")
    check_bool("valid_a", valid_a, boxes_a.shape[:-1], "[..., L]")
    check_bool("valid_b", valid_b, boxes_b.shape[:-1], "[..., L]")
    if boxes_a.ndim < 2 or boxes_b.ndim < 2 or boxes_a.shape[-2] != boxes_b.shape[-2]:
        raise ValueError(
            f"boxes_b: expected [..., L, 4] on the frame axis of boxes_a (L = {boxes_a.shape[-2:-1]}), "
            f"got shape {boxes_b.shape}"
        )
    length = boxes_a.shape[-2]
    frames = jnp.arange(length)

    def extent(valid):
        start = jnp.min(jnp.where(valid, frames, length), axis=-1)
        end = jnp.max(jnp.where(valid, frames, -1), axis=-1)
        return start, end

    sa, ea = extent(valid_a)
    sb, eb = extent(valid_b)
    lo, hi = jnp.maximum(sa, sb), jnp.minimum(ea, eb)
    inter = hi - lo + 1
    union = jnp.maximum(ea, eb) - jnp.minimum(sa, sb) + 1
    overlap = inter > 0
    frame_iou = elementwise_box_iou(boxes_a, boxes_b, plus_one=plus_one)
    in_overlap = (frames >= lo[..., None]) & (frames <= hi[..., None]) & valid_a & valid_b
    dtype = frame_iou.dtype
    mean_iou = jnp.sum(jnp.where(in_overlap, frame_iou, 0), axis=-1) / jnp.maximum(inter, 1).astype(dtype)
    temporal = inter.astype(dtype) / jnp.maximum(union, 1).astype(dtype)
    return jnp.where(overlap, temporal * mean_iou, 0)


def tube_nms(tubes, valid, scores, iou_threshold, max_output: int, *, plus_one: bool):
    """Greedy tube NMS: the best-scoring tube first, then any tube whose tube IoU
    with every kept tube is at most ``iou_threshold``.

    Args:
      tubes: ``[M, L, 4]``; valid: ``[M, L]`` bool (tubes with no valid frame
        never come out); scores: ``[M]``.
      iou_threshold: scalar (0.2 for CFAD's final tubes, 0.3 in the ACT protocol).
      max_output: static int.
      plus_one: per-frame IoU convention.

    Returns:
      ``(indices int32 [max_output], valid bool [max_output])`` in descending
      score order; padded entries have index 0 and valid False.
    """
    tubes, valid, scores = jnp.asarray(tubes), jnp.asarray(valid), jnp.asarray(scores)
    check_rank("tubes", tubes, 3, "[M, L, 4]")
    check_boxes("tubes", tubes, "[M, L, 4]")
    check_bool("valid", valid, tubes.shape[:2], "[M, L]")
    check_shape("scores", scores, tubes.shape[:1], "[M]")
    check_floating("scores", scores)
    return greedy_select(
        scores,
        jnp.any(valid, axis=1),
        lambda i: tube_iou(tubes[i], valid[i], tubes, valid, plus_one=plus_one),
        iou_threshold,
        max_output,
    )


# --------------------------------------------------------------------------- refine module


def key_timestamp_labels(boxes, *, plus_one: bool, eps: float = 0.8, valid=None, times=None):
    """Greedy key-timestamp labels (CFAD Eq. 5) for the refine module's importance.

    Keys start as the first and last valid step. While the tube IoU between
    the natural-cubic-spline tube through the keys (evaluated at every step)
    and the GT tube is ``<= eps`` and a valid non-key step is left, the step
    whose addition gives the highest tube IoU is added (ties: lower index),
    even if no step raises it. Both tubes span the same steps, so the tube IoU
    is the mean per-step IoU over the valid steps.

    Runs as a ``lax.while_loop`` (jit- and vmap-safe, ``O(N^2)`` spline
    solves in the worst case): it reuses the exact spline of inference, and
    can be vmapped over a batch on device or called per example in the data
    pipeline.

    Args:
      boxes: ``[N, 4]`` GT boxes at the ``N`` sampled steps.
      plus_one: IoU convention.
      eps: stopping tube IoU (0.8 in the paper).
      valid: optional ``[N]`` bool, steps with a GT box (default all); only
        those can be keys and enter the IoU.
      times: optional ``[N]`` strictly increasing step times (default
        ``normalised_time(N)``; a natural spline does not depend on an affine
        change of time, so only non-uniform sampling needs them).

    Returns:
      ``[N]`` bool, True at key steps (all False if no step is valid).
    """
    boxes = jnp.asarray(boxes)
    check_rank("boxes", boxes, 2, "[N, 4]")
    check_boxes("boxes", boxes, "[N, 4]")
    num = boxes.shape[0]
    valid = jnp.ones((num,), bool) if valid is None else jnp.asarray(valid)
    check_bool("valid", valid, (num,), "[N]")
    times = normalised_time(num, boxes.dtype) if times is None else jnp.asarray(times, boxes.dtype)
    check_shape("times", times, (num,), "[N]")
    steps = jnp.arange(num)

    def score(keys):
        interp = spline_interpolate_masked(times, boxes, keys, times)
        return tube_iou(interp, valid, boxes, valid, plus_one=plus_one)

    first = jnp.argmax(valid)
    last = num - 1 - jnp.argmax(valid[::-1])
    keys = ((steps == first) | (steps == last)) & valid

    def cond(state):
        keys, iou = state
        return (iou <= eps) & jnp.any(valid & ~keys)

    def body(state):
        keys, _ = state
        candidates = keys[None, :] | (steps[:, None] == steps[None, :])  # [N (added step), N]
        ious = jax.vmap(score)(candidates)
        ious = jnp.where(valid & ~keys, ious, -jnp.inf)
        best = jnp.argmax(ious)
        return keys | (steps == best), ious[best]

    keys, _ = jax.lax.while_loop(cond, body, (keys, score(keys)))
    return keys


def local_search(coarse_box, proposals, scores, *, sigma: float = 0.8, mask=None, fallback_score=0.0):
    """Local refinement of one coarse box by the best proposal near it (CFAD Eq. 7).

    The search window is ``[cx - sigma w, cx + sigma w] x [cy - sigma h, cy + sigma h]``
    around the coarse box's centre ``(cx, cy)`` (half-width ``sigma * w``,
    ``w = x2 - x1``, continuous). Among the proposals whose centre lies in the
    window (borders included) and in ``mask``, the best-scoring one is taken
    (ties: lower index); if there is none, the coarse box is kept. vmap over
    steps for a tube.

    Args:
      coarse_box: ``[4]``.
      proposals: ``[P, 4]``; scores: ``[P]``; mask: optional ``[P]`` bool.
      sigma: half-width of the window in box widths / heights (0.8 in the paper).
      fallback_score: score returned when nothing is found.

    Returns:
      ``(box [4], score [], found bool [])``.
    """
    coarse_box, proposals, scores = jnp.asarray(coarse_box), jnp.asarray(proposals), jnp.asarray(scores)
    check_shape("coarse_box", coarse_box, (4,), "[4]")
    check_boxes("coarse_box", coarse_box, "[4]")
    check_rank("proposals", proposals, 2, "[P, 4]")
    check_boxes("proposals", proposals, "[P, 4]")
    num = proposals.shape[0]
    check_shape("scores", scores, (num,), "[P]")
    check_floating("scores", scores)
    mask = jnp.ones((num,), bool) if mask is None else jnp.asarray(mask)
    check_bool("mask", mask, (num,), "[P]")
    cx, cy = (coarse_box[0] + coarse_box[2]) / 2, (coarse_box[1] + coarse_box[3]) / 2
    half_w = sigma * (coarse_box[2] - coarse_box[0])
    half_h = sigma * (coarse_box[3] - coarse_box[1])
    px, py = (proposals[:, 0] + proposals[:, 2]) / 2, (proposals[:, 1] + proposals[:, 3]) / 2
    inside = mask & (jnp.abs(px - cx) <= half_w) & (jnp.abs(py - cy) <= half_h)
    if num == 0:
        return coarse_box, jnp.asarray(fallback_score, scores.dtype), jnp.asarray(False)
    key = jnp.where(inside, scores, -jnp.inf)
    best = jnp.argmax(inside & (key == jnp.max(key)))  # first inside proposal with the top score
    found = jnp.any(inside)
    dtype = jnp.result_type(coarse_box, proposals)
    box = jnp.where(found, proposals[best].astype(dtype), coarse_box.astype(dtype))
    return box, jnp.where(found, scores[best], jnp.asarray(fallback_score, scores.dtype)), found
