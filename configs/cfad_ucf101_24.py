r"""CFAD on UCF101-24 (Li, Lin, See et al., ECCV 2020): T = 96 frames, N = 16 maps per proposal, k = 4.

    python -m experiments.train --config configs/cfad_ucf101_24.py[:synthetic|:smoke] --workdir DIR

Paper (RGB only): 62.7 video-mAP@0.5 on UCF101-24 (docs/design.md). Data: ``cfjax_ucf101_24``
config ``split1`` (ACT's corrected annotations, 25 fps frames, 320 x 240). The recipe,
its assumptions (backbone, optimiser, schedule, anchors) and the
``:synthetic`` / ``:smoke`` variants are documented in :func:`configs.common.cfad`.
"""

from configs import common


def get_config(arg=None):
    return common.cfad("ucf101_24", arg, clip_length=96, num_samples=16, poly_order=4)
