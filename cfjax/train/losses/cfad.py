"""CFAD's training losses (Li, Lin, See et al., ECCV 2020): :func:`cfad_loss` and its parts.

The TPN terms (:func:`tpn_loss`), the coarse module's per-anchor terms (:func:`coarse_anchor_terms`,
Eq. 2) and the refine module's per-step terms (:func:`refine_step_terms`, Eq. 3), averaged over a
batch of :class:`cfjax.models.CFAD` training outputs by :func:`cfad_loss` with the settings of
:class:`CFADLossConfig`. Boxes are inclusive pixels (``plus_one=True``), as in the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp

from cfjax.ops.boxes import elementwise_box_iou, encode_boxes
from cfjax.ops.segments import elementwise_segment_iou, encode_segments, gt_segments
from cfjax.ops.tubes import evaluate_tube, key_timestamp_labels, match_anchors_to_tubes, tube_targets

__all__ = ["CFADLossConfig", "cfad_loss", "coarse_anchor_terms", "refine_step_terms", "tpn_loss"]

STAGES = ("tpn", "end_to_end")


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
      outputs: :class:`cfjax.models.CFAD` outputs of a ``train=True`` call (with ``targets``).
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
