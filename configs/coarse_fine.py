r"""Coarse-Fine Networks, X3D-M streams, per-frame detection on Charades (Kahatapitiya & Ryoo, CVPR 2021).

    python -m experiments.train --config configs/coarse_fine.py[:variant=synthetic] --workdir DIR

Arguments: ``variant`` synthetic | smoke (default: the paper's full scale).

The paper (and docs/design.md) fixes: both streams X3D-M (width factor 2.0, depth factor 2.2),
157 classes; 224 crops; a coarse clip of 64 steps sampled at stride 10 from 24 fps frames,
Grid Pool to 64 / 4 + 1 = 17 steps (reduction 4); a fine view of the whole video at
stride 10 (first 128 steps); Multi-stage Fusion after Grid Pool and after res3, res4,
res5, and on the logits; loss = mean of the BCE on the temporal max and the per-frame
BCE; SGD momentum 0.9, weight decay 1e-5, lr 0.02 with the fusion parameters at x10
(``optimizer.lr_multipliers``: every parameter under ``fusion/``, the
MultiStageFusion module of the coarse stream); evaluation: Charades per-frame mAP at
25 points per video (paper: 25.1 mAP).

Data: ``cfjax_charades`` config ``default`` already stores 24 fps frames (short side
256), so ``data.builder_kwargs`` stays empty (an ``fps=24`` override would only rename
the prepared directory).

Assumed (not fixed by docs/design.md or the paper as far as known here): batch 16 clips,
cosine schedule over 100 epochs with 1 warm-up epoch, training short side jittered in
[256, 320] (X3D-M's recipe) with random 224 crops and flips of both views, test: the
centred coarse clip at short side 224, centre crop; dropout 0.5 before the classifier.
Differences from the paper: the paper starts both streams from Kinetics-400 X3D-M
weights and precomputes the fine features (``fine_mode="precomputed"``); the trainer
has no pretrained-weights key yet and its frame-detection task feeds the fine view, so
this config trains end to end (``fine_mode="end_to_end"``) from scratch.

``variant=synthetic``: a small Coarse-Fine network (X3D width 0.5, one block per stage,
128-wide head) on the synthetic Charades-like videos (96 frames, 1..3 overlapping segments of
8 classes); ``variant=smoke``: 3 steps of a tiny one (16-wide head).
"""

from cfjax.train.config import base_config, synthetic_data
from configs import common

ARGUMENTS = {"variant": (None, common.VARIANTS)}


def get_config(arg=None):
    a = common.parse_arg(arg, ARGUMENTS)
    c = base_config()
    c.task = "frame_detection"
    classes = common.set_dataset(c, "charades")
    c.model = {
        "name": "coarse_fine",
        "num_classes": classes,
        "width_factor": 2.0,
        "depth_factor": 2.2,
        "reduction": 4,
        "fine_mode": "end_to_end",
        "dropout_rate": 0.5,
    }
    c.input.sampling = "coarse_fine"
    c.input.clip_length, c.input.stride = 64, 10
    c.input.fine_length, c.input.fine_stride = 128, 10
    c.input.crop_size, c.input.scale_range = 224, (256, 320)
    c.eval_input = {"sampling": "coarse_fine", "num_clips": 1, "num_crops": 1, "short_side": 224}
    c.batch_size, c.eval_batch_size = 16, 16
    c.num_epochs = 100
    c.optimizer.name, c.optimizer.momentum, c.optimizer.weight_decay = "sgd", 0.9, 1e-5
    c.optimizer.lr_multipliers = ((r"^fusion/", 10.0),)
    c.schedule.name, c.schedule.base_lr = "cosine", 0.02
    c.schedule.warmup_steps = common.epochs_to_steps("charades", 1, c.batch_size)
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 50, 2500, 500

    if a.variant is not None:  # depth_factor 0.2 rounds every stage of X3D's (1, 2, 5, 3) up to one block
        c.model.update(num_classes=common.SYNTHETIC_CLASSES, width_factor=0.5, depth_factor=0.2, dropout_rate=0.2)
    if a.variant == "synthetic":
        c.model.head_width = 128
        synthetic_frame_detection(c, a.variant, clip_length=16, stride=4, fine_length=24, fine_stride=4, crop=32)
        common.synthetic_schedule(c, steps=600, batch=8, lr=1e-3)  # fusion x10: 1e-2
    elif a.variant == "smoke":
        c.model.head_width = 16
        synthetic_frame_detection(c, a.variant, clip_length=8, stride=4, fine_length=12, fine_stride=8, crop=32)
        common.smoke(c)
    return c


def synthetic_frame_detection(
    c, variant: str, *, clip_length: int, stride: int, fine_length: int, fine_stride: int, crop: int
) -> None:
    """Data and inputs of per-frame detection on the synthetic Charades-like videos (96 frames,
    1..3 overlapping segments): a coarse clip plus the fine view of the whole video."""
    synthetic_data(c, "temporal_detection", variant == "smoke", **common.SYNTHETIC_SIZES["temporal_detection"])
    c.input.sampling = "coarse_fine"
    c.input.clip_length, c.input.stride = clip_length, stride
    c.input.fine_length, c.input.fine_stride = fine_length, fine_stride
    common.synthetic_crop(c, crop)
    c.eval_input = {"sampling": "coarse_fine", "num_clips": 1, "num_crops": 1, "short_side": crop}
