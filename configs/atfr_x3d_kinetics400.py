r"""ATFR: X3D + Similarity Guided Sampling after res2 on Kinetics-400 (Fayyaz et al., CVPR 2021).

    python -m experiments.train --config configs/atfr_x3d_kinetics400.py[:synthetic|:smoke] --workdir DIR \
        [--config.model.name=x3d_m] [--config.model.sgs=None]   # X3D-M; the baseline without SGS

Full scale follows X3D's recipe (the SGS paper trains its backbones with their original
schedules): SGD momentum 0.9, lr 1.6 for batch 1024 (linear scaling), cosine over 256 epochs
with 35 warm-up epochs, weight decay 5e-5, dropout 0.5; X3D-S input 13 frames at stride 6,
random short side in [182, 228], 160 crops; test 10 clips x 3 crops at short side 160.
``:synthetic`` trains a small X3D + SGS on the synthetic motion classes, whose clips hold
the object static for a random fraction of the time (``redundancy``).
"""

from cfjax.train.config import base_config, check_variant, synthetic_data


def get_config(arg=None):
    variant = check_variant(arg)
    c = base_config()
    c.task = "classification"
    c.model = {"name": "x3d_s", "num_classes": 400, "sgs": {"stage": "res2", "buckets": 4}}
    c.data.dataset, c.data.config = "cfjax_kinetics", "k400"
    c.input.sampling, c.input.clip_length, c.input.stride = "clip", 13, 6
    c.input.crop_size, c.input.scale_range = 160, (182, 228)
    c.eval_input.sampling, c.eval_input.num_clips, c.eval_input.num_crops = "multi_view", 10, 3
    c.eval_input.short_side = 160
    c.batch_size, c.eval_batch_size = 1024, 64
    c.num_epochs = 256
    c.optimizer.name, c.optimizer.momentum, c.optimizer.weight_decay = "sgd", 0.9, 5e-5
    c.schedule.name, c.schedule.base_lr = "cosine", 1.6
    c.schedule.warmup_steps = 35 * 240_000 // 1024  # 35 epochs of ~240k clips
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 100, 5000, 1000
    if variant is None:
        return c

    small = {"name": "x3d_s", "num_classes": 8, "width_factor": 1.0, "depth_factor": 1.0, "head_width": 128,
             "dropout_rate": 0.2, "sgs": {"stage": "res2", "buckets": 4}}
    c.model = small
    synthetic_data(c, "classification", variant == "smoke", num_frames=32, num_train=512, num_test=128)
    c.input.clip_length, c.input.stride = 16, 2
    c.input.crop_size, c.input.scale_range = 56, (56, 64)
    c.eval_input.sampling, c.eval_input.num_clips, c.eval_input.num_crops = "clip", 1, 1
    c.eval_input.short_side = 64
    c.batch_size, c.eval_batch_size = 32, 32
    c.total_steps, c.schedule.warmup_steps = 400, 20
    c.schedule.base_lr, c.optimizer.weight_decay = 0.1, 5e-5
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 20, 200, 100
    if variant == "smoke":
        c.model.update(width_factor=0.5, head_width=16)
        c.input.clip_length, c.input.crop_size, c.input.scale_range = 8, 32, (32, 40)
        c.eval_input.short_side = 32
        c.batch_size, c.eval_batch_size = 4, 4
        c.total_steps, c.schedule.warmup_steps = 3, 1
        c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 1, 0, 2
        c.num_plots = 1
    return c
