r"""CFAD on UCF Sports (Li, Lin, See et al., ECCV 2020): T = 32 frames, N = 8 maps per proposal.

    python -m experiments.train --config configs/cfad_ucfsports.py[:synthetic|:smoke] --workdir DIR

**The full-scale config cannot run yet: cfjax has no UCF Sports builder.** It names the
dataset it expects, ``cfjax_ucfsports`` config ``default`` (10 classes, the usual 103 /
47 train / test split, frames + ACT-layout tubes like ``cfjax_ucf101_24``); training it
raises "unknown dataset" until that builder exists. The ``:synthetic`` and ``:smoke``
variants run on the synthetic tubes.

DESIGN.md fixes N = 8 for UCF Sports and T = 32 ("32 otherwise"); the polynomial order
is assumed to be k = 2 (the paper's value for the other short-video dataset, JHMDB-21).
The recipe, its other assumptions and the variants are documented in
:func:`configs.common.cfad`.
"""

from configs import common


def get_config(arg=None):
    return common.cfad("ucfsports", arg, clip_length=32, num_samples=8, poly_order=2)
