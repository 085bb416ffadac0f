r"""CFAD on JHMDB-21 (Li, Lin, See et al., ECCV 2020): T = 32 frames, N = 6 maps per proposal, k = 2.

    python -m experiments.train --config configs/cfad_jhmdb21.py[:synthetic|:smoke] --workdir DIR

Paper (RGB only): 83.7 video-mAP@0.5 on JHMDB-21 (docs/design.md). Data: ``cfjax_jhmdb``
config ``split1`` (ACT's split 1 of 3, 30 fps frames, 320 x 240; one tube per video,
videos of 15-40 frames, so the 32-frame clip covers most of each video and shorter ones
are loop-padded and masked). The recipe, its assumptions and the ``:synthetic`` /
``:smoke`` variants are documented in :func:`configs.common.cfad`.
"""

from configs import common


def get_config(arg=None):
    return common.cfad("jhmdb21", arg, clip_length=32, num_samples=6, poly_order=2)
