"""A tiny classification config for trainer tests (X3D, 4 blocks, 8 frames of 32 x 32).

    python -m experiments.train --config tests/train/tiny_config.py --workdir DIR --config.data.data_dir=D
"""

from cfjax.train.config import base_config, synthetic_data
from configs.common import SMOKE_X3D


def get_config(arg=None):
    del arg
    c = base_config()
    c.task = "classification"
    c.model = {"name": "x3d_s", **SMOKE_X3D, "num_classes": 8, "dropout_rate": 0.0}  # the smoke configs' X3D
    synthetic_data(c, "classification", False, num_frames=8, num_train=16, num_test=4, height=32, width=32)
    c.input.clip_length, c.input.stride, c.input.crop_size = 4, 2, 32
    c.eval_input.short_side = 32
    c.batch_size, c.eval_batch_size = 8, 8
    c.total_steps = 4
    c.schedule.base_lr, c.schedule.warmup_steps = 0.01, 1
    c.log_every_steps, c.checkpoint_every_steps, c.eval_every_steps = 1, 2, 0
    c.num_plots = 0
    return c
