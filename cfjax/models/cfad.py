"""CFAD: Coarse-to-Fine Action Detector (Li, Lin, See et al., ECCV 2020), static shapes throughout.

Pipeline of :class:`CFAD` (every step jit-able; fixed maxima plus validity masks):

1. **Backbone**: any zoo model built with ``num_classes=0``, called with
   ``return_features=True``; its ``feature_stage`` output ``[B, T', H', W', C]``
   is the 3D feature map. Temporal and spatial strides are read off the shapes
   (``T / T'``, ``H / H'``).
2. **Temporal proposal network** (R-C3D style): 3x3x3 ConvBN, spatial mean,
   a dense layer predicting per temporal anchor an actionness logit and two
   offsets ``(dc, dl)`` (:func:`cfjax.ops.encode_segments`). Temporal anchors
   are centred on every feature step with lengths ``temporal_scales x T``
   frames. Decoded segments are clipped to the clip and reduced by 1D NMS
   (IoU ``tpn_nms_iou``) to ``max_proposals`` proposals ``[start, end)`` in frame
   units. Proposal boundaries carry no gradient (as in R-C3D's second stage).
   In training with targets, the ground-truth extents take the first ``G``
   proposal slots and the TPN fills the rest (Faster R-CNN's "add GT to the
   proposals"; it keeps the later modules fed with useful windows while the
   TPN is still poor). *Choice: the paper does not say how proposals are
   mixed in end-to-end training.*
3. **Sampling**: ``N = num_samples`` frame positions uniformly over each
   proposal, the first at ``start`` and the last at ``end - 1`` (its last
   frame); the 2D maps at those positions are linear interpolations in time of
   the 3D features (feature step ``j`` is centred at frame ``(j + 0.5) T/T' - 0.5``).
   Normalised tube time ``t = i / (N - 1)`` at step ``i``, so for a frame
   ``f`` of the proposal ``t = (f - start) / (end - 1 - start)``.
4. **Coarse module**: a direct branch on the ``N`` maps and a difference branch
   on ``F_{i+1} - F_i``, each ``NonLocal`` + one 3x3x3 ConvBN (``width``);
   the two temporal means are summed into a 2D map; a 1x1 conv predicts for
   each of the ``len(anchor_sizes)`` anchors per location ``num_classes + 1``
   class logits (0 = background) and ``theta [(k + 1), 4]`` (order ``k =
   poly_order``). Coarse tube of an anchor: ``tube_boxes(theta, anchor, t)``.
   Padded (invalid) proposals are masked out of the non-local attention and
   of BatchNorm statistics.
5. **Refine module**: spatial mean of the ``N`` maps, a 1D hourglass (3-conv
   in, stride-2 conv down, nearest 2x up + 3-conv, skip from the input level,
   1-conv out) gives importance logits ``[N]``. A 3x3 conv + ReLU and a 1x1
   class-specific RPN head on each step's map give per anchor and class a
   score logit and 4 box deltas. Inference: :func:`refine_tube`.
6. **Detections** (``train=False``): the ``pre_nms_tubes`` best (proposal,
   anchor) candidates by class probability are decoded to coarse tubes and
   refined; coarse and refined tubes each go through tube NMS (IoU
   ``tube_nms_iou``, ``max_tubes`` kept). For NMS and evaluation a tube lives
   on the clip's frame axis: boxes are linearly interpolated between the
   sampled steps for the frames from the first to the last sampled frame.

Boxes are inclusive pixel coordinates (ACT convention, ``plus_one=True`` for
every IoU); Faster R-CNN encoding parametrises them (see :mod:`cfjax.ops.boxes`).

Losses are :func:`cfad_loss` (documented there); targets come from
:func:`cfjax.train.tasks.tube_clip_targets`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cfjax import ops
from cfjax.layers import ConvBN, NonLocal
from cfjax.ops.boxes import decode_boxes, elementwise_box_iou, encode_boxes
from cfjax.ops.segments import decode_segments, elementwise_segment_iou, encode_segments, segment_nms
from cfjax.ops.tubes import (
    evaluate_tube,
    key_timestamp_labels,
    local_search,
    match_anchors_to_tubes,
    normalised_time,
    spline_interpolate_masked,
    tube_boxes,
    tube_nms,
    tube_targets,
)

__all__ = [
    "CFAD",
    "CFADLossConfig",
    "cfad_loss",
    "clip_boxes",
    "gt_segments",
    "kmeans_anchor_sizes",
    "refine_tube",
    "sample_times",
    "spatial_anchors",
    "temporal_anchors",
    "tube_to_frames",
]

INTERPOLATIONS = ("coarse", "key_spline", "residual")  # refine_tube's final tube; the first is the paper's
STAGES = ("tpn", "end_to_end")


# --------------------------------------------------------------------------- anchors (numpy, static)


def temporal_anchors(num_steps: int, stride: float, scales: Sequence[float], num_frames: int) -> np.ndarray:
    """``[num_steps * S, 2]`` anchor segments ``[start, end)`` in frames, step-major.

    Anchor ``(j, s)`` is centred at ``(j + 0.5) * stride`` with length ``scales[s] * num_frames``.
    """
    centres = (np.arange(num_steps) + 0.5) * float(stride)
    lengths = np.asarray(scales, np.float64) * float(num_frames)
    return np.stack([centres[:, None] - lengths / 2, centres[:, None] + lengths / 2], axis=-1).reshape(-1, 2)


def spatial_anchors(height: int, width: int, stride: float, sizes: Sequence[Sequence[float]]) -> np.ndarray:
    """``[height * width * A, 4]`` inclusive-pixel anchor boxes, ordered (y, x, anchor).

    The anchor of size ``(w, h)`` (inclusive: ``x2 - x1 + 1 = w``) at feature
    cell ``(i, j)`` is centred at pixel ``((j + 0.5) stride - 0.5, (i + 0.5) stride - 0.5)``.
    """
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    cy = (np.arange(height) + 0.5) * stride - 0.5
    cx = (np.arange(width) + 0.5) * stride - 0.5
    cy, cx = np.meshgrid(cy, cx, indexing="ij")
    half_w, half_h = (sizes[:, 0] - 1) / 2, (sizes[:, 1] - 1) / 2
    boxes = np.stack(
        [cx[..., None] - half_w, cy[..., None] - half_h, cx[..., None] + half_w, cy[..., None] + half_h], axis=-1
    )
    return boxes.reshape(-1, 4)


def _wh_iou(wh, centres):
    inter = np.minimum(wh[:, None, 0], centres[None, :, 0]) * np.minimum(wh[:, None, 1], centres[None, :, 1])
    union = (wh[:, 0] * wh[:, 1])[:, None] + (centres[:, 0] * centres[:, 1])[None, :] - inter
    return inter / union


def kmeans_anchor_sizes(boxes_wh, k: int = 6, iterations: int = 100) -> np.ndarray:
    """Anchor sizes by k-means of training box sizes (YOLOv2's ``1 - IoU`` distance), deterministic.

    Boxes are compared as if they shared a centre. Initial centres are the
    boxes at the ``(i + 0.5) / k`` quantiles of area; each iteration assigns
    every box to the centre of highest IoU (ties: lower index) and moves each
    centre to the mean ``(w, h)`` of its boxes (an empty cluster keeps its
    centre); it stops when no centre moves.

    Args:
      boxes_wh: ``[M, 2]`` positive widths and heights (e.g. ``x2 - x1 + 1``), ``M >= k``.
      k: number of anchors (6 in the paper).

    Returns:
      ``[k, 2]`` float64 ``(w, h)`` sorted by area.
    """
    wh = np.asarray(boxes_wh, np.float64)
    if wh.ndim != 2 or wh.shape[1] != 2:
        raise ValueError(f"boxes_wh: expected [M, 2] (w, h), got shape {wh.shape}")
    if not np.all(np.isfinite(wh)) or np.any(wh <= 0):
        raise ValueError("boxes_wh: expected finite, positive widths and heights")
    if not 1 <= int(k) <= len(wh):
        raise ValueError(f"k: expected 1 <= k <= M = {len(wh)}, got {k}")
    k = int(k)
    order = np.argsort(wh[:, 0] * wh[:, 1], kind="stable")
    centres = wh[order[((np.arange(k) + 0.5) * len(wh) / k).astype(int)]].copy()
    for _ in range(int(iterations)):
        assign = np.argmax(_wh_iou(wh, centres), axis=1)
        new = centres.copy()
        for j in range(k):
            members = wh[assign == j]
            if len(members):
                new[j] = members.mean(axis=0)
        if np.array_equal(new, centres):
            break
        centres = new
    return centres[np.argsort(centres[:, 0] * centres[:, 1], kind="stable")]


# --------------------------------------------------------------------------- pure helpers


def sample_times(proposals, num_samples: int):
    """``proposals [..., 2]`` (``[start, end)`` frames) ``-> [..., N]`` frame positions ``start .. end - 1``."""
    start = proposals[..., 0]
    span = jnp.maximum(proposals[..., 1] - 1 - start, 0)
    return start[..., None] + span[..., None] * normalised_time(num_samples, proposals.dtype)


def _sample_maps(features, times, temporal_stride: float):
    """Linear interpolation in time: ``features [B, T', H, W, C]``, ``times [B, P, N] -> [B, P, N, H, W, C]``."""
    steps = features.shape[1]
    u = jnp.clip((times + 0.5) / temporal_stride - 0.5, 0, steps - 1)
    lo = jnp.floor(u).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, steps - 1)
    w = (u - lo).astype(features.dtype)[..., None, None, None]
    take = jax.vmap(lambda f, i: jnp.take(f, i, axis=0))
    return (1 - w) * take(features, lo) + w * take(features, hi)


def tube_to_frames(boxes, times, num_frames: int):
    """A tube sampled at frame positions on the clip's frame axis.

    Args:
      boxes: ``[N, 4]`` at ``times [N]`` (non-decreasing frame positions).
      num_frames: ``T``.

    Returns:
      ``(boxes [T, 4], valid [T])``: frames ``round(times[0]) .. round(times[-1])``
      are valid, their boxes linearly interpolated between the steps.
    """
    n = times.shape[0]
    times = times + jnp.arange(n, dtype=times.dtype) * 1e-3  # strictly increasing for interp
    frames = jnp.arange(num_frames, dtype=times.dtype)
    out = jnp.stack([jnp.interp(frames, times, boxes[:, c]) for c in range(4)], axis=-1)
    first, last = jnp.round(times[0]), jnp.round(times[-1])
    return out, (frames >= first) & (frames <= last)


def clip_boxes(boxes, height: int, width: int):
    """Inclusive pixel boxes ``[..., 4]`` clipped to a ``height x width`` frame."""
    limits = jnp.asarray([width - 1, height - 1, width - 1, height - 1], boxes.dtype)
    return jnp.clip(boxes, 0, limits)


def refine_tube(
    coarse_boxes,
    importance,
    proposals,
    proposal_scores,
    class_score,
    *,
    alpha: float = 0.25,
    sigma: float = 0.8,
    interpolation: str = "coarse",
    proposal_mask=None,
):
    """Refine module inference for one tube (CFAD Sec. 3.4).

    At each key step :func:`cfjax.ops.local_search` (Eq. 7: a window of
    half-width ``sigma w`` by ``sigma h`` around the coarse box's centre) picks
    the best-scoring RPN proposal whose centre is inside; when there is none
    the coarse box stays. The final tube, by ``interpolation``:

    * ``"coarse"`` (default, the paper's "interpolation over all refined boxes
      and unrefined bounding boxes"): keys are the steps with ``importance >=
      alpha``; the knots are the refined boxes at key steps and the coarse
      (Eq. 6) boxes at every other step. Every sampled step is a knot, so the
      tube passes through them and interpolation only fills the frames between
      sampled steps (:func:`tube_to_frames`). No key: the coarse tube.
    * ``"key_spline"`` (ablation; cfjax's earlier default): keys are also both
      ends; the natural cubic spline through the refined key boxes only.
    * ``"residual"`` (ablation): keys as ``"key_spline"``; the coarse box plus
      the spline of the key corrections ``refined - coarse``.

    Step score: ``(class_score + proposal score) / 2`` at a key step where a
    proposal was found, ``class_score`` elsewhere.

    Args:
      coarse_boxes: ``[N, 4]``; importance: ``[N]`` probabilities.
      proposals: ``[N, R, 4]``; proposal_scores: ``[N, R]`` probabilities.
      class_score: scalar.
      alpha: importance threshold of a key step (a choice from the paper's 0.15..0.45).
      sigma: Eq. 7's window half-width in box widths / heights (0.8).
      proposal_mask: optional ``[N, R]`` bool.

    Returns:
      ``(boxes [N, 4], step_scores [N], is_key bool [N])``.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation: expected one of {INTERPOLATIONS}, got {interpolation!r}")
    n = coarse_boxes.shape[0]
    steps = jnp.arange(n)
    is_key = importance >= alpha
    if interpolation != "coarse":  # a spline through the keys needs them at the ends
        is_key = is_key | (steps == 0) | (steps == n - 1)
    if proposal_mask is None:
        proposal_mask = jnp.ones(proposal_scores.shape, bool)
    boxes, scores, found = jax.vmap(lambda c, p, s, m: local_search(c, p, s, sigma=sigma, mask=m))(
        coarse_boxes, proposals, proposal_scores, proposal_mask
    )
    times = normalised_time(n, boxes.dtype)
    if interpolation == "coarse":
        out = coarse_boxes.astype(boxes.dtype)
    elif interpolation == "key_spline":
        out = spline_interpolate_masked(times, boxes, is_key, times)
    else:
        out = coarse_boxes + spline_interpolate_masked(times, boxes - coarse_boxes, is_key, times)
    out = jnp.where(is_key[:, None], boxes, out)
    class_score = jnp.asarray(class_score, scores.dtype)
    step_scores = jnp.where(is_key & found, (class_score + scores) / 2, class_score)
    return out, step_scores, is_key


def gt_segments(valid):
    """GT temporal extents: ``valid [..., G, T] -> (segments [..., G, 2], exists [..., G])``.

    ``[first, last + 1)`` over the frames with a box (holes are inside the extent).
    """
    t = valid.shape[-1]
    first = jnp.argmax(valid, axis=-1)
    last = t - 1 - jnp.argmax(valid[..., ::-1], axis=-1)
    seg = jnp.stack([first, last + 1], axis=-1).astype(jnp.float32)
    exists = jnp.any(valid, axis=-1)
    return jnp.where(exists[..., None], seg, 0), exists


# --------------------------------------------------------------------------- the model


class CFAD(nn.Module):
    """Coarse-to-Fine Action Detector (see the module docstring for every step).

    ``__call__(video [B, T, H, W, 3], train=False, targets=None) -> dict``:

    * ``tpn_logits [B, A_t]``, ``tpn_offsets [B, A_t, 2]``, ``tpn_anchors [A_t, 2]``;
    * ``proposals [B, P, 2]`` (``[start, end)`` frames), ``proposal_valid [B, P]``,
      ``proposal_scores [B, P]`` (actionness; 1 for GT slots), ``sample_times [B, P, N]``;
    * ``anchors [A, 4]`` (spatial, ``A = H' W' len(anchor_sizes)``),
      ``class_logits [B, P, A, C + 1]``, ``theta [B, P, A, k + 1, 4]``;
    * ``importance_logits [B, P, N]``, ``rpn_logits [B, P, N, A, C]``,
      ``rpn_deltas [B, P, N, A, C, 4]``;
    * with ``train=False`` also ``detections`` and ``coarse_detections``, each
      ``{"boxes" [B, M, N, 4], "frames" int32 [B, M, N], "labels" int32 [B, M]
      (-1 if invalid), "scores" [B, M] (descending, 0 if invalid), "valid" [B, M],
      "frame_boxes" [B, M, T, 4], "frame_valid" [B, M, T]}`` with ``M = max_tubes``;
      ``detections`` also has ``"keys" [B, M, N]`` (the refined steps).

    ``targets`` (training only, see :func:`cfad_loss`) puts the GT extents in
    the first proposal slots. Needs ``max_proposals > G``.
    """

    num_classes: int = 24
    backbone: nn.Module | None = None
    feature_stage: str = "res4"
    num_samples: int = 16
    max_proposals: int = 8
    temporal_scales: tuple[float, ...] = (0.125, 0.25, 0.5, 0.75, 1.0)
    tpn_width: int = 256
    tpn_nms_iou: float = 0.7
    anchor_sizes: tuple[tuple[float, float], ...] = ((16, 32), (24, 48), (32, 64), (48, 96), (64, 128), (96, 160))
    poly_order: int = 4
    width: int = 256
    nonlocal_pool: int = 1
    hourglass_width: int = 128
    rpn_width: int = 256
    alpha: float = 0.25
    sigma: float = 0.8
    interpolation: str = "coarse"
    max_tubes: int = 3
    tube_nms_iou: float = 0.2
    pre_nms_tubes: int = 32
    dtype: Any = None

    @nn.compact
    def __call__(self, video, train: bool = False, targets=None):
        self._check(video)
        b, t, h, w, _ = video.shape
        _, features = self.backbone(video, train=train, return_features=True)
        if self.feature_stage not in features:
            raise ValueError(f"feature_stage: expected one of {sorted(features)}, got {self.feature_stage!r}")
        feats = features[self.feature_stage]
        _, tf, hf, wf, _ = feats.shape
        tstride, sstride = t / tf, h / hf
        if w / wf != sstride:
            raise ValueError(f"backbone: unequal spatial strides {h}/{hf} and {w}/{wf}")
        dtype = jnp.result_type(feats.dtype, jnp.float32)
        num_c, n, p = self.num_classes, self.num_samples, self.max_proposals

        # temporal proposal network
        x = ConvBN(self.tpn_width, (3, 3, 3), dtype=self.dtype, name="tpn_conv")(feats, train)
        x = jnp.mean(x, axis=(2, 3))
        ns = len(self.temporal_scales)
        out = nn.Dense(3 * ns, dtype=self.dtype, name="tpn_head")(x).reshape(b, tf * ns, 3)
        tpn_logits, tpn_offsets = out[..., 0], out[..., 1:]
        t_anchors = jnp.asarray(temporal_anchors(tf, tstride, self.temporal_scales, t), dtype)
        segs = decode_segments(jax.lax.stop_gradient(tpn_offsets), t_anchors)
        start = jnp.clip(segs[..., 0], 0, t - 1)
        segs = jnp.stack([start, jnp.clip(segs[..., 1], start + 1, t)], axis=-1)
        actionness = jax.nn.sigmoid(jax.lax.stop_gradient(tpn_logits))
        idx, pvalid = jax.vmap(lambda s, c: segment_nms(s, c, self.tpn_nms_iou, p))(segs, actionness)
        proposals = jnp.take_along_axis(segs, idx[..., None], axis=1)
        pscores = jnp.where(pvalid, jnp.take_along_axis(actionness, idx, axis=1), 0)
        if train and targets is not None:
            gvalid = jnp.asarray(targets["valid"]) & jnp.asarray(targets["tube_valid"])[..., None]
            gseg, gok = gt_segments(gvalid)
            g = gseg.shape[1]
            if g >= p:
                raise ValueError(f"max_proposals: expected more than G = {g} (GT tubes per video), got {p}")
            proposals = jnp.concatenate([gseg.astype(dtype), proposals[:, : p - g]], axis=1)
            pvalid = jnp.concatenate([gok, pvalid[:, : p - g]], axis=1)
            pscores = jnp.concatenate([gok.astype(dtype), pscores[:, : p - g]], axis=1)
        proposals = jax.lax.stop_gradient(proposals)
        times = sample_times(proposals, n)

        # N 2D maps per proposal, as a batch of B * P clips masked by proposal validity
        maps = _sample_maps(feats, times, tstride).reshape(b * p, n, hf, wf, -1)
        mask = jnp.repeat(pvalid.reshape(-1, 1), n, axis=1)
        maps = ops.zero_padded(maps, mask)

        # coarse module
        direct = NonLocal(pool=self.nonlocal_pool, dtype=self.dtype, name="coarse_direct_nl")(maps, train, mask)
        direct = ConvBN(self.width, (3, 3, 3), dtype=self.dtype, name="coarse_direct_conv")(direct, train, mask)
        diff_mask = mask[:, 1:]
        diff = ops.zero_padded(maps[:, 1:] - maps[:, :-1], diff_mask)
        diff = NonLocal(pool=self.nonlocal_pool, dtype=self.dtype, name="coarse_diff_nl")(diff, train, diff_mask)
        diff = ConvBN(self.width, (3, 3, 3), dtype=self.dtype, name="coarse_diff_conv")(diff, train, diff_mask)
        coarse = ops.masked_mean(direct, mask) + ops.masked_mean(diff, diff_mask)  # [B P, H', W', width]
        na, k1 = len(self.anchor_sizes), self.poly_order + 1
        head = nn.Conv(na * (num_c + 1 + 4 * k1), (1, 1), dtype=self.dtype, name="coarse_head")(coarse)
        head = head.reshape(b, p, hf * wf * na, num_c + 1 + 4 * k1)
        class_logits = head[..., : num_c + 1]
        theta = head[..., num_c + 1 :].reshape(b, p, hf * wf * na, k1, 4)
        anchors = jnp.asarray(spatial_anchors(hf, wf, sstride, self.anchor_sizes), dtype)

        # refine module: importance (1D hourglass) and class-specific RPN
        s = jnp.mean(maps, axis=(2, 3))  # [B P, N, C]; zero at padded proposals
        hw = self.hourglass_width
        h0 = jax.nn.relu(nn.Conv(hw, (3,), dtype=self.dtype, name="hourglass_in")(s))
        down = jax.nn.relu(nn.Conv(hw, (3,), strides=(2,), dtype=self.dtype, name="hourglass_down")(h0))
        up = jnp.repeat(down, 2, axis=1)[:, :n]
        up = jax.nn.relu(nn.Conv(hw, (3,), dtype=self.dtype, name="hourglass_up")(up))
        importance_logits = nn.Conv(1, (1,), dtype=self.dtype, name="hourglass_out")(up + h0).reshape(b, p, n)
        r = maps.reshape(b * p * n, hf, wf, -1)
        r = jax.nn.relu(nn.Conv(self.rpn_width, (3, 3), dtype=self.dtype, name="rpn_conv")(r))
        r = nn.Conv(na * num_c * 5, (1, 1), dtype=self.dtype, name="rpn_head")(r)
        r = r.reshape(b, p, n, hf * wf * na, num_c, 5)

        outputs = {
            "tpn_logits": tpn_logits,
            "tpn_offsets": tpn_offsets,
            "tpn_anchors": t_anchors,
            "proposals": proposals,
            "proposal_valid": pvalid,
            "proposal_scores": pscores,
            "sample_times": times,
            "anchors": anchors,
            "class_logits": class_logits,
            "theta": theta,
            "importance_logits": importance_logits,
            "rpn_logits": r[..., 0],
            "rpn_deltas": r[..., 1:],
        }
        if not train:
            outputs.update(self.detect(outputs, num_frames=t, height=h, width=w))
        return outputs

    def _check(self, video):
        if self.backbone is None:
            raise ValueError("backbone: CFAD needs a zoo backbone (a module or a model config with num_classes=0)")
        if getattr(self.backbone, "num_classes", 0):
            raise ValueError(f"backbone: expected num_classes=0, got {self.backbone.num_classes}")
        if video.ndim != 5:
            raise ValueError(f"video: expected [B, T, H, W, 3], got shape {video.shape}")
        if self.num_samples < 2:
            raise ValueError(f"num_samples: expected >= 2, got {self.num_samples}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation: expected one of {INTERPOLATIONS}, got {self.interpolation!r}")

    def detect(self, outputs, *, num_frames: int, height: int, width: int):
        """Coarse and refined detections from the head outputs (pure; see the class docstring)."""
        anchors = outputs["anchors"]

        def one(class_logits, theta, times, pvalid, imp_logits, rpn_logits, rpn_deltas):
            p, a = class_logits.shape[:2]
            probs = jax.nn.softmax(class_logits, axis=-1)[..., 1:]
            labels = jnp.argmax(probs, axis=-1).astype(jnp.int32)
            scores = jnp.where(pvalid[:, None], jnp.max(probs, axis=-1), 0)
            k = min(self.pre_nms_tubes, p * a)
            top_scores, top = jax.lax.top_k(scores.reshape(-1), k)
            pi, ai = top // a, top % a
            cand_valid = pvalid[pi]
            lab = labels[pi, ai]
            n = times.shape[-1]
            coarse = clip_boxes(tube_boxes(theta[pi, ai], anchors[ai], normalised_time(n, theta.dtype)), height, width)
            ctimes = times[pi]
            sel = lab[:, None, None, None]
            rpn_scores = jax.nn.sigmoid(jnp.take_along_axis(rpn_logits[pi], sel, axis=3)[..., 0])  # [K, N, A]
            deltas = jnp.take_along_axis(rpn_deltas[pi], sel[..., None], axis=3)[..., 0, :]  # [K, N, A, 4]
            rpn_boxes = clip_boxes(decode_boxes(deltas, anchors), height, width)
            refine = jax.vmap(
                lambda c, i, pb, ps, cs: refine_tube(
                    c, i, pb, ps, cs, alpha=self.alpha, sigma=self.sigma, interpolation=self.interpolation
                )
            )
            refined, step_scores, keys = refine(
                coarse, jax.nn.sigmoid(imp_logits[pi]), rpn_boxes, rpn_scores, top_scores
            )
            refined = clip_boxes(refined, height, width)  # a key spline (ablations) may overshoot the frame
            refined_scores = jnp.where(cand_valid, jnp.mean(step_scores, axis=-1), 0)
            top_scores = jnp.where(cand_valid, top_scores, 0)
            to_frames = jax.vmap(lambda bx, tm: tube_to_frames(bx, tm, num_frames))

            def pack(boxes, tube_scores, extra=None):
                dense, dvalid = to_frames(boxes, ctimes)
                dvalid = dvalid & cand_valid[:, None]
                keep, ok = tube_nms(dense, dvalid, tube_scores, self.tube_nms_iou, self.max_tubes, plus_one=True)
                z = lambda v: jnp.where(ok.reshape((-1,) + (1,) * (v.ndim - 1)), v[keep], jnp.zeros((), v.dtype))
                frames = jnp.clip(jnp.round(ctimes), 0, num_frames - 1).astype(jnp.int32)
                out = {
                    "boxes": z(boxes),
                    "frames": z(frames),
                    "labels": jnp.where(ok, lab[keep], -1),
                    "scores": z(tube_scores),
                    "valid": ok,
                    "frame_boxes": z(dense),
                    "frame_valid": z(dvalid),
                }
                if extra is not None:
                    out.update({name: z(v) for name, v in extra.items()})
                return out

            return pack(refined, refined_scores, {"keys": keys}), pack(coarse, top_scores)

        refined, coarse = jax.vmap(one)(
            outputs["class_logits"],
            outputs["theta"],
            outputs["sample_times"],
            outputs["proposal_valid"],
            outputs["importance_logits"],
            outputs["rpn_logits"],
            outputs["rpn_deltas"],
        )
        return {"detections": refined, "coarse_detections": coarse}


# --------------------------------------------------------------------------- losses


@dataclasses.dataclass(frozen=True)
class CFADLossConfig:
    """Settings of :func:`cfad_loss` (a mapping of these fields works too).

    Attributes:
      stage: ``"tpn"`` (TPN losses only: the paper's first stage) or
        ``"end_to_end"`` (everything).
      tpn_pos_iou, tpn_neg_iou: temporal anchor positive at tIoU >= 0.7 with a
        GT extent (or the best anchor of a GT), negative below 0.3.
      match_pos_iou, match_neg_iou: thresholds of the segment-wise matching.
      segment_length: ``K`` of the segment-wise matching (6).
      match_best_anchor: in a proposal, each matched GT tube's best anchor (highest
        mean IoU over its first ``K`` boxes in the proposal) is positive too,
        Faster R-CNN's rule.
        *Choice: the paper gives only the thresholds; without the rule an actor
        that moves more than about half its size over ``K`` frames has no
        positive anchor at all and never trains the coarse module.*
      neg_ratio: hard negatives kept per positive anchor in the coarse
        classification (at least ``neg_ratio`` per video).
      proposal_pos_tiou: a proposal is matched only against the GT tubes whose
        extent it covers with at least this tIoU (anchors on other tubes are
        background there), and trains the refine module when its best tIoU is at
        least this. *Choice (R-C3D's second stage): without it the coarse class
        head learns nothing about the temporal fit of a proposal.*
      key_eps: ``eps`` of the key-timestamp labels (0.8).
      rpn_pos_iou, rpn_neg_iou: RPN anchor labels (best anchor also positive) at every
        step with a GT box of a proposal that trains the refine module. *Choice: the
        paper does not say where the RPN is trained. At inference it runs at key steps,
        which the importance head picks, so it is trained at all steps; and since the
        local search takes the top-scoring decoded box as the refined box, every anchor
        that can score high needs trained deltas: positives from IoU 0.5 (Fast R-CNN's
        detection-head value), not the 0.7 of Faster R-CNN's RPN. With 0.7 at key steps
        the local-search box had a mean IoU of 0.52 with the GT against 0.71 for the
        coarse box; with these rules 0.71 against 0.72 (``experiments.diagnose_cfad``;
        README, "CFAD on the synthetic tubes").*
      weights: multipliers of the parts (missing names weigh 1).
    """

    stage: str = "end_to_end"
    tpn_pos_iou: float = 0.7
    tpn_neg_iou: float = 0.3
    match_pos_iou: float = 0.5
    match_neg_iou: float = 0.3
    segment_length: int = 6
    match_best_anchor: bool = True
    neg_ratio: int = 3
    proposal_pos_tiou: float = 0.5
    key_eps: float = 0.8
    rpn_pos_iou: float = 0.5
    rpn_neg_iou: float = 0.3
    weights: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def make(cls, config) -> CFADLossConfig:
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if hasattr(config, "to_dict"):
            config = config.to_dict()
        if not isinstance(config, Mapping):
            raise TypeError(f"config: expected a CFADLossConfig or a mapping, got {type(config).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"cfad loss config: unknown keys {unknown}; known keys are {sorted(known)}")
        out = cls(**config)
        if out.stage not in STAGES:
            raise ValueError(f"stage: expected one of {STAGES}, got {out.stage!r}")
        return out


def _bce(logits, labels):
    return jax.nn.softplus(logits) - logits * labels


def _smooth_l1(x):
    ax = jnp.abs(x)
    return jnp.where(ax < 1, 0.5 * x * x, ax - 0.5)


def _ratio(total, count):
    return jnp.sum(total) / jnp.maximum(jnp.sum(count), 1)


def _balanced_bce(logits, pos, neg):
    """``(mean BCE over positives + mean BCE over negatives) / 2`` (a 1:1 sampled batch in expectation)."""
    return 0.5 * _ratio(jnp.where(pos, _bce(logits, 1.0), 0), pos) + 0.5 * _ratio(
        jnp.where(neg, _bce(logits, 0.0), 0), neg
    )


def tpn_loss(tpn_logits, tpn_offsets, tpn_anchors, gt_valid, *, pos_iou=0.7, neg_iou=0.3):
    """TPN losses: ``(actionness BCE, offset smooth-L1)``.

    Temporal anchor ``a`` is positive if its tIoU with some GT extent is
    ``>= pos_iou`` or it is the anchor of highest tIoU (> 0) for some GT;
    negative if its best tIoU is ``< neg_iou`` and it is not positive.
    Actionness: balanced BCE (mean over positives and mean over negatives,
    averaged, over the batch). Offsets: smooth-L1 (beta 1) of ``(dc, dl)``
    against the encoded extent of its best GT, summed over the two offsets,
    averaged over positives in the batch.

    Args:
      tpn_logits: ``[B, A_t]``; tpn_offsets: ``[B, A_t, 2]``; tpn_anchors: ``[A_t, 2]``.
      gt_valid: ``[B, G, T]`` bool, frames with a GT box.
    """
    gseg, gok = gt_segments(gt_valid)
    gseg = gseg.astype(tpn_offsets.dtype)
    iou = elementwise_segment_iou(tpn_anchors[None, :, None, :], gseg[:, None, :, :])  # [B, A_t, G]
    iou = jnp.where(gok[:, None, :], iou, -1)
    best_iou = jnp.max(iou, axis=2)
    assigned = jnp.argmax(iou, axis=2)
    best_anchor = jnp.argmax(iou, axis=1)  # [B, G]
    is_best = (jnp.arange(iou.shape[1])[None, :, None] == best_anchor[:, None, :]) & (gok & (jnp.max(iou, axis=1) > 0))[
        :, None, :
    ]
    pos = (best_iou >= pos_iou) | jnp.any(is_best, axis=2)
    neg = (best_iou < neg_iou) & ~pos
    cls = _balanced_bce(tpn_logits, pos, neg)
    target = encode_segments(jnp.take_along_axis(gseg, assigned[..., None], axis=1), tpn_anchors[None])
    reg = _ratio(jnp.where(pos, jnp.sum(_smooth_l1(tpn_offsets - target), -1), 0), pos)
    return cls, reg


def coarse_anchor_terms(
    class_logits,
    theta,
    anchors,
    proposal,
    proposal_valid,
    gt_boxes,
    gt_valid,
    gt_labels,
    *,
    pos_iou,
    neg_iou,
    segment_length,
    min_tiou=None,
    best_anchor_positive: bool = False,
):
    """Per-anchor coarse terms for one proposal (CFAD Eq. 2, before averaging).

    GT frames "inside the proposal" are the frames ``f`` with
    ``start - 0.5 <= f <= end - 0.5`` (those whose nearest sampled step is
    in it); their normalised time is ``(f - start) / (end - 1 - start)``.
    Matching: :func:`cfjax.ops.match_anchors_to_tubes` over those frames, against
    the GT tubes whose extent has tIoU ``>= min_tiou`` with the proposal (all
    when ``None``): in a proposal that covers a tube badly, anchors on that tube
    are background (R-C3D's second stage). ``best_anchor_positive``: Faster
    R-CNN's rule, each of those tubes' best anchor is positive too.

    Args:
      class_logits: ``[A, C + 1]``; theta: ``[A, k + 1, 4]``; anchors: ``[A, 4]``.
      proposal: ``[2]``; proposal_valid: scalar bool.
      gt_boxes: ``[G, T, 4]``; gt_valid: ``[G, T]``; gt_labels: ``[G]``.

    Returns:
      ``(ce [A], positive [A], negative [A], poly [A])``: cross-entropy
      against the anchor's label (GT label + 1, or 0 background), and for
      positives the squared error ``sum_c (A_c(t) - GT_c(t))^2`` averaged over
      the ``T_A`` GT frames of the matched tube inside the proposal.
    """
    t = gt_valid.shape[-1]
    frames = jnp.arange(t, dtype=theta.dtype)
    start, last = proposal[0], proposal[0] + jnp.maximum(proposal[1] - 1 - proposal[0], 0)
    inside = (frames >= start - 0.5) & (frames <= last + 0.5)
    if min_tiou is not None:
        gseg, gok = gt_segments(gt_valid)
        covered = gok & (elementwise_segment_iou(proposal[None, :], gseg.astype(proposal.dtype)) >= min_tiou)
        gt_valid = gt_valid & covered[:, None]
    window = gt_valid & inside[None, :]
    assigned, pos, neg = match_anchors_to_tubes(
        anchors,
        gt_boxes,
        window,
        pos_threshold=pos_iou,
        neg_threshold=neg_iou,
        plus_one=True,
        segment_length=segment_length,
        best_anchor_positive=best_anchor_positive,
    )
    pos, neg = pos & proposal_valid, neg & proposal_valid
    label = jnp.where(pos, gt_labels[assigned] + 1, 0)
    ce = jax.nn.logsumexp(class_logits, axis=-1) - jnp.take_along_axis(class_logits, label[:, None], axis=-1)[:, 0]
    targets, _, tv = tube_targets(gt_boxes[assigned], window[assigned], anchors)
    tf = jnp.clip((frames - start) / jnp.maximum(last - start, 1), -0.5, 1.5)
    pred = evaluate_tube(theta, tf)  # [A, T, 4]
    err = jnp.sum(jnp.where(tv[..., None], pred - targets, 0) ** 2, axis=-1)
    poly = jnp.sum(err, axis=-1) / jnp.maximum(jnp.sum(tv, axis=-1), 1)
    return ce, pos, neg, poly


def _hard_negatives(ce, neg, num_pos, ratio: int):
    """Per video the ``max(ratio * num_pos, ratio)`` negatives of highest loss: ``ce, neg [B, M]``."""
    key = jnp.where(neg, jax.lax.stop_gradient(ce), -jnp.inf)
    rank = jnp.argsort(jnp.argsort(-key, axis=1, stable=True), axis=1, stable=True)
    keep = jnp.maximum(ratio * num_pos, ratio)
    return neg & (rank < keep[:, None])


def refine_step_terms(
    importance_logits,
    rpn_logits,
    rpn_deltas,
    anchors,
    proposal,
    proposal_valid,
    times,
    gt_boxes,
    gt_valid,
    gt_labels,
    *,
    proposal_pos_tiou,
    key_eps,
    rpn_pos_iou,
    rpn_neg_iou,
):
    """Refine-module terms for one proposal (CFAD Eq. 3, before averaging).

    The proposal's GT tube is the one of highest tIoU with it; the proposal
    trains the refine module if that tIoU is ``>= proposal_pos_tiou``. Labels
    of the importance: :func:`cfjax.ops.key_timestamp_labels` of that tube's
    boxes at the sampled frames (``eps = key_eps``), at steps with a GT box.
    At every step with a GT box (not only at key steps), RPN anchors with IoU
    ``>= rpn_pos_iou`` with the step's GT box (and the best anchor) are
    positive, ``< rpn_neg_iou`` negative; only the GT class's score and deltas
    are trained.

    Returns:
      ``(imp_bce [N], imp_mask [N], rpn_bce [N, A], rpn_pos [N, A], rpn_neg [N, A], rpn_reg [N, A])``.
    """
    t = gt_valid.shape[-1]
    gseg, gok = gt_segments(gt_valid)
    tiou = jnp.where(gok, elementwise_segment_iou(proposal[None, :], gseg.astype(proposal.dtype)), -1)
    g = jnp.argmax(tiou)
    trains = proposal_valid & (tiou[g] >= proposal_pos_tiou)
    frames = jnp.clip(jnp.round(times), 0, t - 1).astype(jnp.int32)
    boxes, valid = gt_boxes[g][frames], gt_valid[g][frames] & trains
    keys = key_timestamp_labels(boxes, plus_one=True, eps=key_eps, valid=valid)
    imp_bce = _bce(importance_logits, keys.astype(importance_logits.dtype))
    step = valid
    iou = elementwise_box_iou(anchors[None], boxes[:, None], plus_one=True)  # [N, A]
    best = jnp.argmax(iou, axis=1)
    pos = ((iou >= rpn_pos_iou) | (jnp.arange(iou.shape[1])[None] == best[:, None])) & step[:, None]
    neg = (iou < rpn_neg_iou) & ~pos & step[:, None]
    label = gt_labels[g]
    logit = rpn_logits[..., label]
    deltas = rpn_deltas[..., label, :]
    rpn_bce = jnp.where(pos, _bce(logit, 1.0), _bce(logit, 0.0))
    rpn_reg = jnp.sum(_smooth_l1(deltas - encode_boxes(boxes[:, None], anchors[None])), axis=-1)
    return imp_bce, valid, rpn_bce, pos, neg, rpn_reg


def cfad_loss(outputs, targets, config=None):
    """CFAD training loss: ``(total, parts)``.

    Args:
      outputs: :class:`CFAD` outputs of a ``train=True`` call (with ``targets``).
      targets: ``{"boxes": [B, G, T, 4] inclusive pixels, "valid": bool [B, G, T],
        "labels": int [B, G] (0 .. C - 1), "tube_valid": bool [B, G]}`` on the
        clip's frame axis: :func:`cfjax.train.tasks.tube_clip_targets`'s ``gt_*`` stacked
        (:meth:`cfjax.train.tasks.TubeDetectionTask.targets`).
      config: :class:`CFADLossConfig` or a mapping of its fields.

    Parts (each a scalar; ``total = sum weights[name] * part`` over the parts of the stage):

    * ``tpn_cls``, ``tpn_reg``: :func:`tpn_loss`.
    * ``coarse_cls``: cross-entropy over positive anchors and hard negatives
      (``neg_ratio`` per positive, by loss, per video) of valid proposals,
      averaged over those anchors in the batch. *Choice: the paper samples
      negatives; hard-negative mining is deterministic.*
    * ``coarse_poly``: Eq. 2's ``(1 / T_A) sum_t ||A(t) - GT(t)||^2`` per
      positive anchor (:func:`coarse_anchor_terms`), averaged over positives.
    * ``importance``: BCE over the steps with a GT box of the proposals that
      train the refine module, averaged over those steps.
    * ``rpn_cls``: balanced BCE (positive mean + negative mean, halved) of the
      GT class's RPN score over anchors at the steps with a GT box; ``rpn_reg``: smooth-L1
      of the GT class's deltas at positive anchors, averaged over them.
    """
    config = CFADLossConfig.make(config)
    gt_boxes = jnp.asarray(targets["boxes"])
    gt_valid = jnp.asarray(targets["valid"]) & jnp.asarray(targets["tube_valid"])[..., None]
    gt_labels = jnp.asarray(targets["labels"]).astype(jnp.int32)
    if gt_boxes.ndim != 4 or gt_boxes.shape[:3] != gt_valid.shape:
        raise ValueError(
            f"targets['boxes']: expected [B, G, T, 4] matching valid {gt_valid.shape}, got {gt_boxes.shape}"
        )
    dtype = outputs["theta"].dtype
    gt_boxes = gt_boxes.astype(dtype)
    parts = {}
    parts["tpn_cls"], parts["tpn_reg"] = tpn_loss(
        outputs["tpn_logits"],
        outputs["tpn_offsets"],
        outputs["tpn_anchors"],
        gt_valid,
        pos_iou=config.tpn_pos_iou,
        neg_iou=config.tpn_neg_iou,
    )
    if config.stage == "end_to_end":
        anchors = outputs["anchors"]
        per_proposal = jax.vmap(  # over proposals
            lambda cl, th, pr, pv, gb, gv, gl: coarse_anchor_terms(
                cl,
                th,
                anchors,
                pr,
                pv,
                gb,
                gv,
                gl,
                pos_iou=config.match_pos_iou,
                neg_iou=config.match_neg_iou,
                segment_length=config.segment_length,
                min_tiou=config.proposal_pos_tiou,
                best_anchor_positive=config.match_best_anchor,
            ),
            in_axes=(0, 0, 0, 0, None, None, None),
        )
        ce, pos, neg, poly = jax.vmap(per_proposal)(
            outputs["class_logits"],
            outputs["theta"],
            outputs["proposals"],
            outputs["proposal_valid"],
            gt_boxes,
            gt_valid,
            gt_labels,
        )
        b = ce.shape[0]
        ce, pos, neg, poly = (v.reshape(b, -1) for v in (ce, pos, neg, poly))
        neg = _hard_negatives(ce, neg, jnp.sum(pos, axis=1), config.neg_ratio)
        used = pos | neg
        parts["coarse_cls"] = _ratio(jnp.where(used, ce, 0), used)
        parts["coarse_poly"] = _ratio(jnp.where(pos, poly, 0), pos)

        refine = jax.vmap(
            lambda il, rl, rd, pr, pv, tm, gb, gv, gl: refine_step_terms(
                il,
                rl,
                rd,
                anchors,
                pr,
                pv,
                tm,
                gb,
                gv,
                gl,
                proposal_pos_tiou=config.proposal_pos_tiou,
                key_eps=config.key_eps,
                rpn_pos_iou=config.rpn_pos_iou,
                rpn_neg_iou=config.rpn_neg_iou,
            ),
            in_axes=(0, 0, 0, 0, 0, 0, None, None, None),
        )
        imp, imp_mask, rpn_bce, rpos, rneg, rreg = jax.vmap(refine)(
            outputs["importance_logits"],
            outputs["rpn_logits"],
            outputs["rpn_deltas"],
            outputs["proposals"],
            outputs["proposal_valid"],
            outputs["sample_times"],
            gt_boxes,
            gt_valid,
            gt_labels,
        )
        parts["importance"] = _ratio(jnp.where(imp_mask, imp, 0), imp_mask)
        parts["rpn_cls"] = 0.5 * _ratio(jnp.where(rpos, rpn_bce, 0), rpos) + 0.5 * _ratio(
            jnp.where(rneg, rpn_bce, 0), rneg
        )
        parts["rpn_reg"] = _ratio(jnp.where(rpos, rreg, 0), rpos)
    weights = dict(config.weights)
    total = sum(weights.get(name, 1.0) * value for name, value in parts.items())
    return total, parts
