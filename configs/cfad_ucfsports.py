r"""CFAD on UCF Sports (Li, Lin, See et al., ECCV 2020): T = 32 frames, N = 8 maps per proposal.

    python -m experiments.train --config configs/cfad_ucfsports.py[:synthetic|:smoke] --workdir DIR

Data: ``cfjax_ucfsports`` config ``split1`` (ACT's split: 103 training and 47 test
videos of 10 classes, 10 fps frames, one tube per video; every video is resampled to 32
frames and evaluated against its whole ground truth, see
:class:`cfjax.train.tasks.TubeDetectionTask`). docs/design.md gives no reference number for
UCF Sports.

docs/design.md fixes N = 8 for UCF Sports and T = 32 ("32 otherwise"); the polynomial order
is assumed to be k = 2 (the paper's value for the other short-video dataset, JHMDB-21).
The recipe, its other assumptions and the variants are documented in
:func:`configs.common.cfad`.
"""

from configs import common


def get_config(arg=None):
    return common.cfad("ucfsports", arg, clip_length=32, num_samples=8, poly_order=2)
