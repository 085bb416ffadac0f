r"""CFAD on JHMDB-21 (Li, Lin, See et al., ECCV 2020): T = 32 frames, N = 6 maps per proposal, k = 2.

    python -m experiments.train --config configs/cfad_jhmdb21.py[:synthetic|:smoke] --workdir DIR

Paper (RGB only): 83.7 video-mAP@0.5 on JHMDB-21, the mean over ACT's 3 splits
(docs/design.md). Data: ``cfjax_jhmdb`` config ``split1`` (``split2``, ``split3`` with
``--config.data.config=splitK``; 30 fps frames, 320 x 240; one tube per video, videos of
15-40 frames, each resampled to 32 frames: shorter ones repeat frames). The mean over the
splits: train one model per split in ``DIR/split1``, ``DIR/split2``, ``DIR/split3``, then

    python -m experiments.evaluate --config configs/cfad_jhmdb21.py --workdir DIR --all_splits

The recipe, its assumptions and the ``:synthetic`` / ``:smoke`` variants are documented in
:func:`configs.common.cfad`.
"""

from configs import common


def get_config(arg=None):
    return common.cfad("jhmdb21", arg, clip_length=32, num_samples=6, poly_order=2)
