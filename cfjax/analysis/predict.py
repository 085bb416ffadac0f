"""A trained model on one video: predictions (JSON) and plots (PNG).

- every task: the top classes; classification models also score sliding windows
  over the whole video (class scores over time);
- Coarse-Fine (``frame_detection``): per-frame scores and the Grid Pool's sampling
  positions over the clip's frame strip;
- SGS models: the frames of the central window grouped into their bins;
- GCF-Net (``clip_set``): the gate of each clip and, with a backbone, 3D Grad-CAM on the
  clips whose gate exceeds 0.5 (the paper's localisation; when none does, on the top-gated
  clip, labelled as such, and one line says so);
- a converted classifier without a training config (:func:`predict_pretrained`): class
  scores of sliding windows over the whole video, with the checkpoint's class names;
- CFAD (``tubes``): the refined and coarse tubes of the clip (JSON: per tube its class,
  score and boxes with the video's 1-based frame numbers, in the pixels of the evaluated
  frames), drawn on a strip of frames (coarse green, refined red, ground truth dotted).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from cfjax import ops
from cfjax.analysis import plots
from cfjax.data.augment import normalize
from cfjax.data.transform import multi_view
from cfjax.data.video import decode_video
from cfjax.train.loop import Experiment, restore_state
from cfjax.train.partitioning import is_numeric
from cfjax.train.writers import report

__all__ = [
    "explain_pretrained",
    "plot_eval_examples",
    "predict_example",
    "predict_file",
    "predict_pretrained",
    "write_prediction",
]

MAX_WINDOWS = 16
MAX_CAM_CLIPS = 4  # GCF-Net: Grad-CAM rows (the highest gates first)


def _forward(exp: Experiment):
    if not hasattr(exp, "_predict_fn"):
        def run(variables, batch):
            outputs, _ = exp.task.forward(exp.model, variables, batch, train=False)
            return outputs

        exp._predict_fn = jax.jit(run)
    return exp._predict_fn


def _batch(example: dict) -> dict:
    return {k: np.asarray(v)[None] for k, v in example.items() if is_numeric(v)}


def _sgs_bins(exp: Experiment, variables, frames, mask) -> np.ndarray | None:
    """The SGS bin of each frame of one clip ``[T, H, W, 3]`` (None without SGS)."""
    if not exp.model_config.get("sgs"):
        return None
    _, state = exp.model.apply(variables, frames[None], train=False, mask=mask[None], mutable=["intermediates"])
    leaves = [v for p, v in jax.tree_util.tree_leaves_with_path(state) if "distance" in jax.tree_util.keystr(p)]
    if not leaves:
        return None
    bins = np.asarray(ops.sgs.bin_assignment(leaves[0]))[0]  # per step at the SGS stage
    steps = np.minimum(np.arange(frames.shape[0]) * bins.shape[0] // frames.shape[0], bins.shape[0] - 1)
    return np.where(mask, bins[steps], -1)


def _top(scores: np.ndarray, names, k: int = 5) -> list[dict]:
    order = np.argsort(-scores, kind="stable")[:k]  # the order of the plots' legends
    return [{"class": names[i] if i < len(names) else str(i), "index": int(i), "score": float(scores[i])} for i in order]


def _segments(frame_labels: np.ndarray) -> np.ndarray:
    """Runs of frames where any class is present -> ``[S, 2]`` inclusive (start, end)."""
    active = np.asarray(frame_labels).max(-1) > 0
    edges = np.diff(np.concatenate([[0], active.astype(int), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1], axis=1)


def _tube_list(d: dict, frame_numbers: np.ndarray, names) -> list[dict]:
    """Valid tubes of one clip's detections as JSON-able dicts (boxes rows ``frame, x1, y1, x2, y2``)."""
    tubes = []
    for m in np.flatnonzero(d["valid"]):
        ok = d["frame_valid"][m]
        label = int(d["labels"][m])
        rows = np.concatenate([frame_numbers[ok, None], d["frame_boxes"][m][ok]], axis=1)
        tubes.append(
            {
                "label": label,
                "class": names[label] if label < len(names) else str(label),
                "score": float(d["scores"][m]),
                "boxes": np.round(rows, 2).tolist(),
            }
        )
    return tubes


def _predict_tubes(exp: Experiment, variables, example: dict, raw) -> dict:
    """CFAD on the evaluated clip of ``example``: tubes (JSON) and what :func:`plots.plot_tubes` draws."""
    from cfjax.train.tasks import tube_clip_targets

    names = exp.dataset.class_names
    shown = raw(dict(example), np.random.default_rng(0))
    if "boxes" in shown:
        shown = tube_clip_targets(shown, int(exp.config.data.max_actors))
    transform = getattr(exp.eval_transform, "base", exp.eval_transform)
    batch = _batch(normalize(shown, transform.mean, transform.std))
    outputs = _forward(exp)(variables, batch)
    mask = np.asarray(shown["frame_mask"], bool)
    frame_numbers = np.asarray(shown["frame_indices"], np.int64) + 1
    out = {"frames": shown["frames"], "frame_numbers": frame_numbers}
    scores = np.zeros(max(len(names), exp.model.num_classes))
    for key in ("detections", "coarse_detections"):
        d = {k: np.asarray(v)[0] for k, v in outputs[key].items()}
        d["frame_boxes"] = np.nan_to_num(d["frame_boxes"].astype(np.float64), posinf=1e6, neginf=-1e6)
        d["frame_valid"] = d["frame_valid"].astype(bool) & mask[None]
        d["valid"] = d["valid"].astype(bool) & d["frame_valid"].any(-1)
        out[key] = _tube_list(d, frame_numbers, names)
        out[f"_{key}"] = (d["frame_boxes"][d["valid"]], d["frame_valid"][d["valid"]])
        if key == "detections":
            for m in np.flatnonzero(d["valid"]):
                scores[d["labels"][m]] = max(scores[d["labels"][m]], float(d["scores"][m]))
            out["_labels"] = [f"{t['class']} {plots.score_text(t['score'])}" for t in out[key]]
    out["scores"] = scores
    if "gt_boxes" in shown:
        keep = np.asarray(shown["gt_tube_valid"], bool)
        out["_gt"] = (shown["gt_boxes"][keep], shown["gt_valid"][keep])
        gt = {
            "valid": keep[keep],
            "frame_valid": shown["gt_valid"][keep],
            "labels": shown["gt_labels"][keep],
            "scores": np.ones(int(keep.sum())),
            "frame_boxes": shown["gt_boxes"][keep].astype(np.float64),
        }
        out["ground_truth"] = _tube_list(gt, frame_numbers, names)
    return out


def _gated_cams(exp: Experiment, variables, batch: dict, shown: dict) -> dict:
    """GCF-Net's localisation on one video: Grad-CAM of the predicted class on the clips with
    gate > 0.5 (at most :data:`MAX_CAM_CLIPS`, highest gates first), or on the top-gated clip
    when none passes; ``localisation`` is the one line that says which."""
    from cfjax.analysis import gated_clip_cam

    clip_mask = batch.get("clip_mask")
    cam = gated_clip_cam(exp.model, variables, batch["frames"], clip_mask, top_if_none=True)
    gates, selected, shown_clips = (np.asarray(cam[k])[0] for k in ("gates", "selected", "shown"))
    order = [int(i) for i in np.argsort(-gates, kind="stable") if shown_clips[i]][:MAX_CAM_CLIPS]
    valid = int(np.sum(clip_mask)) if clip_mask is not None else gates.size
    picked = [int(i) for i in np.flatnonzero(selected)]
    if picked:
        line = f"localisation: {len(picked)} of {valid} clips have gate > 0.5 (clips {picked})"
        if len(picked) > MAX_CAM_CLIPS:
            line += f"; Grad-CAM on the {MAX_CAM_CLIPS} highest"
    else:
        line = (
            f"localisation: no clip has gate > 0.5 (highest {gates[order[0]]:.2f}, clip {order[0]}); "
            "Grad-CAM on that top-gated clip"
        )
    return {
        "localisation": line,
        "cam_clips": order,
        "cam_class": int(np.asarray(cam["class_index"])[0]),
        "_cam_frames": np.asarray(shown["frames"])[order],
        "_cams": np.asarray(cam["cams"], np.float64)[0, order],
        "_cam_gates": gates[order],
        "_cam_selected": selected[order],
        "_cam_frame_indices": np.asarray(shown["frame_indices"])[order],
    }


def predict_example(exp: Experiment, state, example: dict) -> dict:
    """Runs the model of ``exp`` on a whole-video example (``frames [F, H, W, 3]`` uint8, + labels if any).

    Returns a dict of numpy arrays / lists, task-dependent (see the module docstring);
    ``frames`` holds the uint8 frames the plots show.
    """
    variables = jax.device_get(exp.variables(state))
    names = exp.dataset.class_names
    task = exp.config.task
    transform = exp.eval_transform
    transform = getattr(transform, "base", transform)
    raw = dataclasses.replace(transform, normalise=False)  # the frames the plots show
    out: dict = {"task": task, "num_video_frames": int(np.shape(example["frames"])[0])}
    if example.get("fps") is not None:
        out["fps"] = float(np.asarray(example["fps"]))
    if task == "classification":
        num_frames = out["num_video_frames"]
        span = (transform.clip_length - 1) * transform.stride + 1
        windows = int(np.clip(num_frames // max(span // 2, 1), 1, MAX_WINDOWS))
        views = multi_view(
            {"frames": example["frames"]}, transform.clip_length, transform.stride, num_clips=windows, num_crops=1,
            crop_size=transform.crop_size, short_side=transform.short_side,
        )
        batch = _batch(normalize(views, transform.mean, transform.std))
        logits = np.asarray(_forward(exp)(variables, batch)["logits"])[0]  # [W, K]
        window_scores = np.asarray(jax.nn.softmax(logits, -1))
        centres = views["frame_indices"][:, [0, -1]].mean(1)
        out.update(window_scores=window_scores, window_centres=centres, scores=window_scores.mean(0))
        middle = windows // 2
        out["frames"] = views["frames"][middle]
        bins = _sgs_bins(exp, variables, batch["frames"][0, middle], views["frame_mask"][middle])
        if bins is not None:
            out["bins"] = bins
            out["bins_frame_indices"] = np.where(views["frame_mask"][middle], views["frame_indices"][middle], -1)
    elif task == "tubes":
        out.update(_predict_tubes(exp, variables, example, raw))
    else:
        shown = raw(dict(example), np.random.default_rng(0))
        batch = _batch(normalize(shown, transform.mean, transform.std))
        outputs = {k: np.asarray(v)[0] for k, v in _forward(exp)(variables, batch).items()}
        if task == "frame_detection":
            frame_scores = 1 / (1 + np.exp(-outputs["logits"]))
            out.update(frame_scores=frame_scores, scores=frame_scores.max(0), frames=shown["frames"],
                       frame_indices=shown["frame_indices"])
            out["_clip_frame_indices"] = np.where(shown["frame_mask"], shown["frame_indices"], -1)
            if "grid" in outputs:
                out["grid"] = outputs["grid"]
            if "frame_labels" in shown:
                out["frame_labels"] = shown["frame_labels"]
        else:
            out["scores"] = np.asarray(jax.nn.softmax(outputs["logits"], -1))
            clips = shown["frames"]  # [N, L, H, W, 3]
            out["frames"] = clips[:, clips.shape[1] // 2]
            if "gates" in outputs:
                out["gates"] = outputs["gates"]
                if getattr(exp.model, "backbone", None) is not None:
                    out.update(_gated_cams(exp, variables, batch, shown))
            if "relevant_clips" in shown:
                out["relevant_clips"] = np.asarray(shown["relevant_clips"], bool)
    out["top"] = _top(np.asarray(out["scores"]), names)
    if "label" in example:
        out["label"] = int(np.asarray(example["label"]))
    return out


_SCORE_MEANING = {  # task: what result["scores"] (and so result["top"]) holds per class
    "classification": "mean window score",
    "frame_detection": "max frame score",
    "clip_set": "video score",
    "tubes": "best tube score",
}


def _title(result: dict, stem: str, class_names) -> str:
    """``"STEM: top-3 by mean window score: walking 0.81, running 0.10, ...; true: walking"``."""
    meaning = _SCORE_MEANING.get(result.get("task"), "score")
    top = result["top"][:3]
    if result.get("task") == "tubes":
        top = [t for t in top if t["score"] > 0]  # classes without a detected tube score 0
    if top:
        title = f"{stem}: top-{len(top)} by {meaning}: "
        title += ", ".join(f"{t['class']} {plots.score_text(t['score'])}" for t in top)
    else:
        title = f"{stem}: no tubes detected"
    label = result.get("label")
    if label is not None:
        title += f"; true: {class_names[label] if label < len(class_names) else label}"
    return title


def write_prediction(result: dict, out_dir, stem: str, class_names) -> list[Path]:
    """Writes ``stem.json`` (top classes and the per-task arrays) and the PNGs; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fps = result.get("fps")
    title = _title(result, stem, class_names)
    if "window_scores" in result:
        paths.append(plots.plot_frame_scores(
            result["window_scores"], out_dir / f"{stem}_scores.png", class_names=list(class_names) or None,
            times=result["window_centres"], title=title, fps=fps, rank_by="mean",
        ))
    if "bins" in result:
        paths.append(plots.plot_sgs_bins(
            result["frames"], result["bins"], out_dir / f"{stem}_sgs_bins.png", title=f"{stem}: SGS bins of the middle window",
            frame_indices=result.get("bins_frame_indices"), num_video_frames=result.get("num_video_frames"), fps=fps,
        ))
    if "frame_scores" in result:
        real = np.asarray(result.get("_clip_frame_indices", result["frame_indices"])) >= 0  # not loop padding
        labels = result.get("frame_labels")
        paths.append(plots.plot_frame_scores(
            result["frame_scores"][real], out_dir / f"{stem}_scores.png", class_names=list(class_names) or None,
            times=result["frame_indices"][real].astype(float), ground_truth=None if labels is None else labels[real],
            title=title, fps=fps, rank_by="max",
        ))
    if "grid" in result:
        segments = _segments(result["frame_labels"]) if "frame_labels" in result else None
        paths.append(plots.plot_grid_positions(
            result["frames"], np.clip(result["grid"], 0, 1), out_dir / f"{stem}_grid.png", segments=segments,
            title=f"{stem}: Coarse-Fine grid pool sampling positions", frame_indices=result.get("_clip_frame_indices"),
            num_video_frames=result.get("num_video_frames"), fps=fps,
        ))
    if "_detections" in result:
        paths.append(
            plots.plot_tubes(
                result["frames"],
                out_dir / f"{stem}_tubes.png",
                refined=result["_detections"],
                coarse=result["_coarse_detections"],
                gt=result.get("_gt"),
                labels=result["_labels"],
                frame_numbers=result["frame_numbers"],
                title=title,
            )
        )
    if "gates" in result:
        paths.append(plots.plot_clip_gates(
            result["frames"], result["gates"], out_dir / f"{stem}_gates.png", relevant=result.get("relevant_clips"),
            title=title,
        ))
    if "_cams" in result:
        k = result["cam_class"]
        name = class_names[k] if k < len(class_names) else str(k)
        which = "the clips with gate > 0.5" if result["_cam_selected"].all() else "the top-gated clip (no gate > 0.5)"
        paths.append(
            plots.plot_clip_cams(
                result["_cam_frames"],
                result["_cams"],
                out_dir / f"{stem}_gradcam.png",
                clip_indices=result["cam_clips"],
                gates=result["_cam_gates"],
                selected=result["_cam_selected"],
                frame_indices=result["_cam_frame_indices"],
                fps=fps,
                title=f"{stem}: Grad-CAM of the predicted class ({name}) on {which}",
            )
        )
    record = {
        k: (v.tolist() if isinstance(v, np.ndarray) else v)
        for k, v in result.items() if k != "frames" and not k.startswith("_")
    }
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(record, indent=1))
    return [json_path, *paths]


def plot_eval_examples(config, workdir, count: int, checkpoint: str | int = "best") -> list[Path]:
    """Predictions of the first ``count`` evaluation videos, written to ``workdir/plots``."""
    exp = Experiment(config, workdir)
    state, _ = restore_state(exp, checkpoint)
    source = exp.dataset.source(config.data.eval_split)
    paths = []
    for i in range(min(count, len(source))):
        result = predict_example(exp, state, dict(source[i]))
        paths += write_prediction(result, Path(workdir) / "plots", f"eval_{i:03d}", exp.dataset.class_names)
    return paths


def predict_file(config, workdir, video, out_dir=None, checkpoint: str | int = "best", fps: float | None = None):
    """Decodes ``video`` (any FFmpeg format) and writes its predictions to ``out_dir`` (default ``workdir/predict``)."""
    frames, fps = decode_video(video, fps=fps)
    exp = Experiment(config, workdir)
    state, _ = restore_state(exp, checkpoint)
    result = predict_example(exp, state, {"frames": frames, "fps": fps})
    if "localisation" in result:
        report(result["localisation"])
    return write_prediction(result, out_dir or Path(workdir) / "predict", Path(video).stem, exp.dataset.class_names)


def predict_pretrained(directory, video, out_dir=None, checkpoint: str | int = "best", fps: float | None = None):
    """A classifier from ``directory`` (``experiments.convert`` output) on one video, no training config.

    Reads the model, class names and input format (``frames``, ``stride``, ``short_side``,
    ``crop``, ``mean``, ``std``) from ``directory/model.json``, scores up to 16 windows spread
    over the video (centre crops) and writes ``STEM.json`` (top classes by name, per-window
    scores) and ``STEM_scores.png`` to ``out_dir`` (default ``directory/predict``).
    """
    from cfjax.models import build
    from cfjax.train.checkpoints import load_weights, weights_info

    info = weights_info(directory, checkpoint, "checkpoint_dir")  # checks the directory before decoding anything
    spec = info.get("input")
    if not spec:
        raise ValueError(
            f"checkpoint_dir: {info['directory']} has no input format in its model.json (frames, stride, "
            "short_side, crop, mean, std); predict a trained run with --config and --workdir instead"
        )
    frames, fps = decode_video(video, fps=fps)
    variables, info = load_weights(directory, checkpoint, "checkpoint_dir")
    model = build(info["model"])
    names = list(info.get("class_names") or [])
    span = (spec["frames"] - 1) * spec["stride"] + 1
    windows = int(np.clip(frames.shape[0] // max(span // 2, 1), 1, MAX_WINDOWS))
    views = multi_view(
        {"frames": frames}, spec["frames"], spec["stride"], num_clips=windows, num_crops=1,
        crop_size=spec["crop"], short_side=spec["short_side"],
    )
    clips = normalize(views, tuple(spec["mean"]), tuple(spec["std"]))["frames"]  # [W, T, crop, crop, 3]
    logits = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, clips))
    window_scores = np.asarray(jax.nn.softmax(logits, -1))
    result = {
        "task": "classification",
        "window_scores": window_scores,
        "window_centres": views["frame_indices"][:, [0, -1]].mean(1),
        "scores": window_scores.mean(0),
        "frames": views["frames"][windows // 2],
        "fps": float(fps),
        "num_video_frames": int(frames.shape[0]),
    }
    result["top"] = _top(result["scores"], names)
    out_dir = out_dir or Path(info["directory"]) / "predict"
    return write_prediction(result, out_dir, Path(video).stem, names)


def explain_pretrained(
    directory,
    video,
    out_dir=None,
    checkpoint: str | int = "best",
    fps: float | None = None,
    num_clips: int = 10,
    num_crops: int = 3,
    batch_size: int = 6,
):
    """A converted classifier's multi-view prediction on one video, and Grad-CAM of its top class.

    The model's published test protocol: ``num_clips`` uniform clips x ``num_crops`` crops
    (10 x 3 by default; the input format from ``directory/model.json``), softmax averaged over
    the views. Writes ``STEM.json`` (``top``: the top-5 classes by name, ``view_scores
    [V, K]``), ``STEM_scores.png`` (scores of each clip, crops averaged) and
    ``STEM_gradcam.png`` (3D Grad-CAM of the top class on the middle clip's centre crop).
    Returns the paths (JSON first). ``batch_size``: views per forward pass.
    """
    from cfjax.analysis.gradcam import grad_cam
    from cfjax.models import build
    from cfjax.train.checkpoints import load_weights, weights_info

    for name, value in (("num_clips", num_clips), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops: expected 1 or 3, got {num_crops!r}")
    info = weights_info(directory, checkpoint, "checkpoint_dir")
    spec = info.get("input")
    if not spec:
        raise ValueError(f"checkpoint_dir: {info['directory']} has no input format in its model.json")
    frames, fps = decode_video(video, fps=fps)
    variables, info = load_weights(directory, checkpoint, "checkpoint_dir")
    model = build(info["model"])
    names = list(info.get("class_names") or [])
    views = multi_view(
        {"frames": frames}, spec["frames"], spec["stride"], num_clips=num_clips, num_crops=num_crops,
        crop_size=spec["crop"], short_side=spec["short_side"],
    )
    clips = normalize(views, tuple(spec["mean"]), tuple(spec["std"]))["frames"]  # [V, T, S, S, 3]
    forward = jax.jit(lambda v, x: model.apply(v, x, train=False))
    logits = np.concatenate([np.asarray(forward(variables, clips[i : i + batch_size]))
                             for i in range(0, clips.shape[0], batch_size)])
    view_scores = np.asarray(jax.nn.softmax(logits, -1))  # [V, K]
    clip_scores = view_scores.reshape(num_clips, num_crops, -1).mean(1)
    scores = view_scores.mean(0)
    top = _top(scores, names)
    middle = (num_clips // 2) * num_crops + num_crops // 2  # the middle clip's centre crop
    cam = grad_cam(model, variables, clips[middle : middle + 1], top[0]["index"], mask=views["frame_mask"][middle][None])
    stem = Path(video).stem
    out_dir = Path(out_dir or Path(info["directory"]) / "predict")
    result = {
        "task": "classification",
        "views": f"{num_clips} clips x {num_crops} crops",
        "window_scores": clip_scores,
        "window_centres": views["frame_indices"][::num_crops, [0, -1]].mean(1),
        "view_scores": view_scores,
        "scores": scores,
        "top": top,
        "fps": float(fps),
        "num_video_frames": int(frames.shape[0]),
    }
    paths = write_prediction(result, out_dir, stem, names)
    paths.append(
        plots.plot_clip_cams(
            views["frames"][middle][None],
            np.asarray(cam, np.float64),
            out_dir / f"{stem}_gradcam.png",
            clip_indices=[num_clips // 2],
            frame_indices=views["frame_indices"][middle][None],
            fps=fps,
            title=f"{stem}: Grad-CAM of the top class ({top[0]['class']}) on the middle clip's centre crop",
        )
    )
    return paths
