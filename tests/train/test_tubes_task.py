"""The tubes task (CFAD): targets follow the pixels, a perfect detector scores 1 against the
whole video (interpolated between the resampled frames), a smoke config trains, evaluates
(both loss phases) and predicts a PNG."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from cfjax import metrics as metrics_lib
from cfjax.data import synthetic
from cfjax.data.records import example_from_record
from cfjax.data.sampling import resample_indices
from cfjax.data.transform import VideoTransform
from cfjax.train import loop, tasks
from cfjax.train.writers import read_metrics
from configs import cfad
from tests.train.smoke import _QuickCompileJax

FRAMES, SIZE = 16, 64


def record(seed):
    s = synthetic.tubes((7, seed), num_frames=FRAMES, height=SIZE, width=SIZE)
    return example_from_record(
        {
            "frames": s["frames"],
            "tube_labels": np.array([c for c, _ in s["tubes"]], np.int64),
            "tube_lengths": np.array([len(b) for _, b in s["tubes"]], np.int64),
            "tube_boxes": np.concatenate([b for _, b in s["tubes"]]),
        },
        max_actors=4,
    )


@pytest.mark.parametrize(
    "transform",
    [
        VideoTransform("resample", train=False, clip_length=12, crop_size=32, normalise=False),  # downscale, crop
        VideoTransform("resample", train=True, clip_length=12, crop_size=48, scale_range=(80, 96), normalise=False),
    ],
    ids=["eval_downscale", "train_upscale_crop_flip"],
)
def test_targets_cover_the_actors_pixels(transform):
    checked = 0
    for seed in range(6):
        targets = tasks.TubeTargets(transform, max_tubes=3, max_video_frames=0 if transform.train else FRAMES + 4)
        out = targets(record(seed), np.random.default_rng(seed))
        assert {"boxes", "box_mask", "tube_mask", "video_boxes", "video_box_mask"}.isdisjoint(out)
        if not transform.train:  # the whole-video GT at the sampled frames = the clip GT (same pixels)
            assert out["video_gt_boxes"].shape == (4, FRAMES + 4, 4) and int(out["num_video_frames"]) == FRAMES
            assert not out["video_gt_valid"][:, FRAMES:].any()
            for g in np.flatnonzero(out["gt_tube_valid"]):
                a = np.flatnonzero(out["video_gt_tube_valid"] & (out["video_gt_labels"] == out["gt_labels"][g]))
                at_steps = out["video_gt_boxes"][a][:, out["frame_indices"]]
                assert any(
                    np.array_equal(b[out["gt_valid"][g]], out["gt_boxes"][g][out["gt_valid"][g]]) for b in at_steps
                )
        frames = out["frames"]
        t = frames.shape[0]
        assert out["gt_boxes"].shape == (3, t, 4) and out["gt_valid"].shape == (3, t)
        assert out["gt_labels"].dtype == np.int32 and out["gt_tube_valid"].dtype == bool
        yy, xx = np.mgrid[0 : frames.shape[1], 0 : frames.shape[2]]
        for step in range(t):
            bright = frames[step].max(-1) >= 160  # actors have a channel >= 180, the background <= 100
            inside = np.zeros(bright.shape, bool)
            for g in np.flatnonzero(out["gt_tube_valid"] & out["gt_valid"][:, step]):
                x1, y1, x2, y2 = out["gt_boxes"][g, step]
                box = (xx >= x1 - 1) & (xx <= x2 + 1) & (yy >= y1 - 1) & (yy <= y2 + 1)
                assert (frames[step].max(-1)[box] >= 140).any(), (seed, step, g)  # the actor is in its box
                inside |= box
                checked += 1
            assert not (bright & ~inside).any(), (seed, step)  # every actor pixel is in a box
    assert checked > 20


def _fake_outputs(targets, shift=0.0, score=0.9):
    """Model outputs whose tubes are the ground truth (shifted right by ``shift`` pixels)."""
    ok = targets["gt_tube_valid"]
    boxes = targets["gt_boxes"] + np.array([shift, 0, shift, 0], np.float32)
    det = {
        "frame_boxes": jnp.asarray(boxes),
        "frame_valid": jnp.asarray(targets["gt_valid"] & ok[..., None]),
        "labels": jnp.asarray(np.where(ok, targets["gt_labels"], -1)),
        "scores": jnp.asarray(np.where(ok, score, 0.0)),
        "valid": jnp.asarray(ok),
    }
    return det


def _evaluate(task, examples, outputs_fn):
    keys = (*tasks.TUBE_TARGET_KEYS, *tasks.VIDEO_TARGET_KEYS, "frame_mask", "frame_indices")
    batch = {k: np.stack([e[k] for e in examples]) for k in keys}
    outputs = outputs_fn(batch)
    results = jax.device_get(task.eval_outputs(outputs, {k: jnp.asarray(v) for k, v in batch.items()}))
    results["index"] = np.arange(len(examples))
    return batch, results


def test_perfect_detections_score_one_and_shifted_coarse_less():
    c = cfad.get_config("data=jhmdb21,variant=synthetic")  # T = F = 16: every frame
    task = tasks.get_task(c)
    transform = task.transform(c, train=False)
    examples = [transform(record(seed), np.random.default_rng(0)) for seed in range(5)]
    batch, results = _evaluate(
        task, examples, lambda b: {"detections": _fake_outputs(b), "coarse_detections": _fake_outputs(b, shift=4.0)}
    )
    metrics, table = task.eval_metrics(results, list(synthetic.MOTION_CLASSES))
    names = ("video_map_20", "video_map_30", "video_map_50", "video_map_75", "video_map_50_95", "frame_map_50")
    for name in (*names, "video_mabo"):
        assert metrics[name] == pytest.approx(1.0), name
        assert metrics["coarse_" + name] <= 1.0, name
    assert metrics["error_true_positive"] == pytest.approx(1.0)
    assert metrics["error_background"] == pytest.approx(0.0)
    assert metrics["coarse_video_map_50_95"] < 1.0 and metrics["coarse_video_mabo"] < 1.0
    assert metrics["coarse_error_true_positive"] < 1.0
    assert metrics["num_examples"] == 5
    assert table["class"] == list(synthetic.MOTION_CLASSES)
    assert sum(table["gt_tubes"]) == int(batch["gt_tube_valid"].sum())
    assert task.best_metric in metrics


def long_video(num_frames=40):
    """Two actors moving linearly in a 64 x 64 video: one on every frame (label 2), one on frames 10..29 (label 5)."""
    t = np.arange(num_frames, dtype=np.float32)
    boxes = np.zeros((num_frames, 2, 4), np.float32)
    boxes[:, 0] = np.stack([2 + 0.5 * t, 4 + 0 * t, 21 + 0.5 * t, 30 + 0 * t], -1)
    boxes[:, 1] = np.stack([60 - t, 30 + 0.25 * t, 60 - t + 12, 50 + 0.25 * t], -1).clip(0, 63)
    mask = np.ones((num_frames, 2), bool)
    mask[:10, 1] = mask[30:, 1] = False
    frames = np.zeros((num_frames, 64, 64, 3), np.uint8)
    return {
        "frames": frames,
        "boxes": boxes,
        "box_mask": mask,
        "tube_labels": np.array([2, 5]),
        "tube_mask": mask.any(0),
    }


def test_whole_video_evaluation_interpolates_between_resampled_frames():
    """T = 8 frames of a 40-frame video: the detections placed at the sampled frames and interpolated cover the
    ground truth of every frame (v-mAP 1); the same boxes only on the 8 sampled frames would score nothing."""
    c = cfad.get_config("data=jhmdb21,variant=synthetic")
    c.input.clip_length, c.data.max_video_frames = 8, 48
    task = tasks.get_task(c)
    example = task.transform(c, train=False)(long_video(), np.random.default_rng(0))
    np.testing.assert_array_equal(example["frame_indices"], resample_indices(40, 8))  # 2, 7, ..., 37
    batch, results = _evaluate(
        task, [example], lambda b: {"detections": _fake_outputs(b), "coarse_detections": _fake_outputs(b, shift=3.0)}
    )
    metrics, _ = task.eval_metrics(results, list(synthetic.MOTION_CLASSES))
    for name in ("video_map_20", "video_map_30", "video_map_50"):
        assert metrics[name] == pytest.approx(1.0), name
    # tube IoU: actor 0 covers frames 3..38 of 1..40 (0.9), actor 1 frames 13..28 of 11..30 (0.8), boxes exact
    assert metrics["video_mabo"] == pytest.approx((0.9 + 0.8) / 2)
    assert metrics["video_map_75"] == pytest.approx(1.0) and 0.75 <= metrics["video_map_50_95"] <= 0.85
    assert metrics["frame_map_50"] == pytest.approx(52 / 60, abs=0.02)  # 36 + 16 of the 60 GT boxes are detected
    gt, video_dets, _ = metrics_lib.tube_act_layout(results, list(synthetic.MOTION_CLASSES))
    assert gt["nframes"] == {"video_000000": 40}
    assert [len(t) for t in gt["gttubes"]["video_000000"][2]] == [40]  # every frame, not only the sampled ones
    assert [len(t) for t in gt["gttubes"]["video_000000"][5]] == [20]
    sampled_only = {
        name: {
            label: [(tube[np.isin(tube[:, 0], batch["frame_indices"][0] + 1)], score) for tube, score in tubes]
            for label, tubes in dets.items()
        }
        for name, dets in video_dets.items()
    }
    assert metrics_lib.video_map(gt, sampled_only, iou_thresholds=(0.3,)).mean_ap[0] == 0.0


def test_whole_video_errors_name_the_key():
    c = cfad.get_config("data=jhmdb21,variant=synthetic")
    task = tasks.get_task(c)
    with pytest.raises(ValueError, match=r"^data.max_video_frames: expected at least the 40 frames .* got 16$"):
        task.transform(c, train=False)(long_video(), np.random.default_rng(0))
    c.eval_input.sampling = "clip"
    with pytest.raises(ValueError, match=r"^eval_input.sampling: .*'resample'.*got 'clip'$"):
        task.transform(c, train=False)
    c.input.sampling = "clip"
    with pytest.raises(ValueError, match=r"^input.sampling: "):
        task.transform(c, train=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The smoke CFAD config trained once (XLA level 0 and rbg keys, as test_configs' smoke runs)."""
    c = cfad.get_config("data=jhmdb21,variant=smoke")
    c.data.data_dir = str(tmp_path_factory.mktemp("tube_data"))
    workdir = tmp_path_factory.mktemp("tube_run")
    mp = pytest.MonkeyPatch()
    mp.setattr(loop, "jax", _QuickCompileJax())
    previous = jax.config.jax_default_prng_impl
    jax.config.update("jax_default_prng_impl", "rbg")
    try:
        metrics = loop.train(c, workdir, progress=False)
        evaluated, table = loop.evaluate(c, workdir, "best")
    finally:
        jax.config.update("jax_default_prng_impl", previous)
        mp.undo()
    return c, workdir, metrics, evaluated, table


def test_smoke_trains_both_phases_and_evaluates(trained):
    c, workdir, metrics, evaluated, _ = trained
    assert c.loss.tpn_steps == 1 and c.total_steps == 3
    assert math.isfinite(metrics["video_map_50"]) and math.isfinite(metrics["coarse_video_map_50"])
    assert evaluated["video_map_50"] == pytest.approx(metrics["video_map_50"])
    assert {"error_true_positive", "coarse_frame_map_50", "video_mabo"} <= set(evaluated)
    train = read_metrics(workdir, "train")
    assert [r["tpn_phase"] for r in train] == [1.0, 0.0, 0.0]  # TPN only, then end to end
    first = train[0]
    assert first["loss"] == pytest.approx(first["loss_tpn_cls"] + first["loss_tpn_reg"], rel=1e-5)
    later = train[1]
    assert later["loss"] > later["loss_tpn_cls"] + later["loss_tpn_reg"]
    assert (workdir / "eval_test_per_class.csv").read_text().startswith("class,gt_tubes,error_true_positive")


def test_predict_writes_tubes_png_and_json(trained):
    from cfjax.analysis import predict

    c, workdir, *_ = trained
    mp = pytest.MonkeyPatch()
    mp.setattr(loop, "jax", _QuickCompileJax())
    try:
        paths = predict.plot_eval_examples(c, workdir, 1)
    finally:
        mp.undo()
    png = [p for p in paths if p.name.endswith("_tubes.png")]
    assert png and png[0].stat().st_size > 1000
    record = json.loads(next(p for p in paths if p.suffix == ".json").read_text())
    assert record["task"] == "tubes" and {"detections", "coarse_detections", "ground_truth"} <= set(record)
    for tube in record["detections"] + record["ground_truth"]:
        frames = [row[0] for row in tube["boxes"]]
        assert frames == sorted(frames) and frames[0] >= 1 and len(tube["boxes"][0]) == 5


def test_plot_tubes_checks_shapes(tmp_path):
    from cfjax.analysis import plots

    frames = np.zeros((4, 16, 16, 3), np.uint8)
    boxes = np.tile(np.array([2.0, 2, 9, 9]), (1, 4, 1))
    path = plots.plot_tubes(
        frames, tmp_path / "t.png", refined=(boxes, np.ones((1, 4), bool)), coarse=(boxes + 1, np.ones((1, 4)))
    )
    assert path.exists()
    with pytest.raises(ValueError, match="refined boxes"):
        plots.plot_tubes(frames, tmp_path / "u.png", refined=(boxes[:, :3], np.ones((1, 3), bool)))


def test_diagnosis_runs_on_a_trained_model(trained):
    from cfjax.analysis import cfad_diagnosis

    c, workdir, *_ = trained
    mp = pytest.MonkeyPatch()
    mp.setattr(cfad_diagnosis, "jax", _QuickCompileJax())
    try:
        result = cfad_diagnosis.diagnose(c, workdir, "best")
    finally:
        mp.undo()
    assert result["gt_tubes"] > 0 and result["gt_steps"] > 0
    for key, _, _ in cfad_diagnosis.ROWS:
        assert 0.0 <= result[key] <= 1.0, key
    assert result["oracle_iou"] >= result["top_iou"]  # the oracle is the best anchor of the same proposal
    assert result["best_rpn_iou"] >= max(result["search_box_iou"], result["top_rpn_iou"])
    assert json.loads((workdir / "diagnosis_test.json").read_text()) == result
    with pytest.raises(ValueError, match="config.task"):
        cfad_diagnosis.diagnose(ml_collections.ConfigDict({"task": "classification"}), workdir)
