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

The training losses are :func:`cfjax.train.losses.cfad_loss` (documented there); targets come
from :func:`cfjax.train.tasks.tube_clip_targets`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfjax import ops
from cfjax.layers import ConvBN, NonLocal
from cfjax.models.cfad_anchors import spatial_anchors, temporal_anchors
from cfjax.ops.boxes import decode_boxes
from cfjax.ops.segments import decode_segments, gt_segments, segment_nms
from cfjax.ops.tubes import (
    local_search,
    normalised_time,
    spline_interpolate_masked,
    tube_boxes,
    tube_nms,
)

__all__ = [
    "CFAD",
    "clip_boxes",
    "refine_tube",
    "sample_times",
    "tube_to_frames",
]

INTERPOLATIONS = ("coarse", "key_spline", "residual")  # refine_tube's final tube; the first is the paper's


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

    ``targets`` (training only, see :func:`cfjax.train.losses.cfad_loss`) puts the GT extents in
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
