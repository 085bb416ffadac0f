"""Where a trained CFAD loses its tubes: proposals, anchors, classes and the refine module's RPN.

For every ground-truth tube of the split it takes the TPN proposal of highest tIoU with
the tube and, in it, the anchor whose coarse tube has the highest tube IoU with the GT
(the "oracle" anchor), and measures, as means over the GT tubes (and, for the refine
module, over the sampled steps that carry a GT box):

* the proposal's tIoU;
* the tube IoU of the oracle anchor and of the anchor the detector ranks first
  (highest class probability), and whether each has the GT class;
* per step, against the GT box (RPN of the GT class, search window around the oracle
  anchor's coarse box): the IoU of the coarse box, of the local-search box (the refined
  box at a key step), of the best RPN box (an oracle) and of the top-scoring RPN box;
  and the fraction of the steps the importance head keeps (``p >= alpha``).

:func:`diagnose` runs the model in evaluation mode, as ``experiments.evaluate`` does, on
the task's evaluation clips; ``python -m experiments.diagnose_cfad`` prints its table.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cfjax import ops
from cfjax.models.cfad import clip_boxes, tube_to_frames
from cfjax.ops.segments import gt_segments
from cfjax.train import partitioning
from cfjax.train.loop import Experiment, restore_state

__all__ = ["ROWS", "diagnose", "diagnose_video"]

# (key, per "tube" or "step", what the printed row says)
ROWS = (
    ("proposal_tiou", "tube", "best TPN proposal: tIoU with the GT tube"),
    ("oracle_iou", "tube", "oracle anchor: coarse tube IoU"),
    ("top_iou", "tube", "top-ranked anchor: coarse tube IoU"),
    ("oracle_class_ok", "tube", "oracle anchor: GT class ranked first"),
    ("top_class_ok", "tube", "top-ranked anchor: GT class ranked first"),
    ("coarse_box_iou", "step", "oracle anchor's coarse box: IoU"),
    ("search_box_iou", "step", "local-search (refined) box: IoU"),
    ("best_rpn_iou", "step", "best RPN box (oracle): IoU"),
    ("top_rpn_iou", "step", "top-scoring RPN box: IoU"),
    ("key_step", "step", "steps kept by the importance head"),
)


def diagnose_video(model, outputs, gt_boxes, gt_valid, gt_labels, *, height: int, width: int) -> dict:
    """The diagnosis of one video's GT tubes (pure, jit-able).

    Args:
      model: the :class:`cfjax.models.CFAD` (for ``sigma`` and ``alpha``).
      outputs: the model's ``train=False`` outputs for this video (batch axis removed).
      gt_boxes: ``[G, T, 4]``; gt_valid: ``[G, T]`` bool (frames with a box); gt_labels: ``[G]``.

    Returns:
      ``{key: [G]}`` for the "tube" rows of :data:`ROWS` and ``{key: [G, N]}`` plus
      ``"step_valid" [G, N]`` for the "step" rows.
    """
    num_frames = gt_valid.shape[-1]
    anchors, times = outputs["anchors"], outputs["sample_times"]
    n = times.shape[-1]
    t = ops.normalised_time(n, outputs["theta"].dtype)

    def one(boxes, valid, label):
        seg, _ = gt_segments(valid)
        tiou = ops.elementwise_segment_iou(outputs["proposals"], seg.astype(times.dtype))
        tiou = jnp.where(outputs["proposal_valid"], tiou, -1)
        p = jnp.argmax(tiou)
        coarse = clip_boxes(ops.tube_boxes(outputs["theta"][p], anchors, t), height, width)  # [A, N, 4]
        dense, dense_valid = jax.vmap(lambda bx: tube_to_frames(bx, times[p], num_frames))(coarse)
        ious = ops.tube_iou(dense, dense_valid, boxes, valid, plus_one=True)  # [A]
        class_probs = jax.nn.softmax(outputs["class_logits"][p], axis=-1)
        oracle, top = jnp.argmax(ious), jnp.argmax(jnp.max(class_probs[:, 1:], axis=-1))
        ranked_first = lambda a: jnp.argmax(class_probs[a, 1:]) == label
        frames = jnp.clip(jnp.round(times[p]), 0, num_frames - 1).astype(jnp.int32)
        gt_step, step_valid = boxes[frames], valid[frames]  # [N, 4], [N]
        rpn_scores = jax.nn.sigmoid(outputs["rpn_logits"][p][..., label])  # [N, A]
        rpn_boxes = clip_boxes(ops.decode_boxes(outputs["rpn_deltas"][p][..., label, :], anchors), height, width)
        rpn_iou = ops.elementwise_box_iou(rpn_boxes, gt_step[:, None], plus_one=True)  # [N, A]
        searched, _, _ = jax.vmap(lambda c, b, s: ops.local_search(c, b, s, sigma=model.sigma))(
            coarse[oracle], rpn_boxes, rpn_scores
        )
        importance = jax.nn.sigmoid(outputs["importance_logits"][p])
        return {
            "proposal_tiou": tiou[p],
            "oracle_iou": ious[oracle],
            "top_iou": ious[top],
            "oracle_class_ok": ranked_first(oracle),
            "top_class_ok": ranked_first(top),
            "coarse_box_iou": ops.elementwise_box_iou(coarse[oracle], gt_step, plus_one=True),
            "search_box_iou": ops.elementwise_box_iou(searched, gt_step, plus_one=True),
            "best_rpn_iou": jnp.max(rpn_iou, axis=-1),
            "top_rpn_iou": jnp.take_along_axis(rpn_iou, jnp.argmax(rpn_scores, axis=-1)[:, None], axis=-1)[:, 0],
            "key_step": importance >= model.alpha,
            "step_valid": step_valid,
        }

    return jax.vmap(one)(gt_boxes, gt_valid, gt_labels)


def diagnose(config, workdir, checkpoint: str | int = "best", split: str | None = None) -> dict:
    """Runs :func:`diagnose_video` over ``split``; returns ``{key: mean}`` (plus ``gt_tubes``, ``gt_steps``)
    and writes ``workdir/diagnosis_<split>.json``."""
    if config.task != "tubes":
        raise ValueError(f"config.task: expected 'tubes' (a CFAD config), got {config.task!r}")
    workdir = Path(workdir)
    exp = Experiment(config, workdir)
    state, step = restore_state(exp, checkpoint)
    split = split or config.data.eval_split
    model = exp.model

    @jax.jit
    def run(state, batch):
        outputs, _ = exp.task.forward(model, exp.variables(state), batch, train=False)
        h, w = batch["frames"].shape[2:4]
        keys = [k for k in outputs if k not in ("detections", "coarse_detections", "tpn_anchors", "anchors")]
        per_video = {k: outputs[k] for k in keys}
        fn = lambda o, boxes, valid, labels: diagnose_video(
            model, {**o, "anchors": outputs["anchors"]}, boxes, valid, labels, height=h, width=w
        )
        return jax.vmap(fn)(per_video, batch["gt_boxes"], batch["gt_valid"], batch["gt_labels"])

    loader = exp.dataset.eval_loader(config, exp.eval_transform, split)
    tubes = {key: [] for key, kind, _ in ROWS if kind == "tube"}
    steps = {key: [] for key, kind, _ in ROWS if kind == "step"}
    for batch in loader:
        batch = partitioning.host_to_global(batch, exp.mesh)
        out = jax.device_get(run(state, batch))
        have = np.asarray(batch["batch_mask"]).astype(bool)[:, None] & np.asarray(batch["gt_tube_valid"])
        for key, kind, _ in ROWS:
            if kind == "tube":
                tubes[key].append(out[key][have])
            else:
                steps[key].append(out[key][have][out["step_valid"][have]])
    loader.close()
    values = {key: np.concatenate(v or [np.zeros(0)]).astype(np.float64) for key, v in {**tubes, **steps}.items()}
    if not values["proposal_tiou"].size:
        raise ValueError(f"split: {split!r} has no ground-truth tubes to diagnose")
    result = {"step": step, "split": split, "gt_tubes": values["proposal_tiou"].size}
    result["gt_steps"] = values["coarse_box_iou"].size
    for key, _, _ in ROWS:
        result[key] = float(values[key].mean()) if values[key].size else float("nan")
    if jax.process_index() == 0:
        (workdir / f"diagnosis_{split}.json").write_text(json.dumps(result, indent=1))
    return result
