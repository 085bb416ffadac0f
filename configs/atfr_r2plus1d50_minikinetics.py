r"""ATFR: R(2+1)D-50 + SGS after res2 on Mini-Kinetics (Fayyaz et al., CVPR 2021).

    python -m experiments.train --config configs/atfr_r2plus1d50_minikinetics.py[:synthetic|:smoke] --workdir DIR

The R(2+1)D-50 baseline without SGS: add ``--config.adaptive=False`` (``cfjax.models.non_adaptive``).

Specified: R(2+1)D is one of the paper's backbones (docs/design.md); SGS after res2, before its
last ReLU, with the official defaults (linear kernel, distance to the clip mean, B = T
bins, L = 8); Mini-Kinetics-200 = ``cfjax_kinetics`` / ``mini200`` (200 classes).
Backbone: the zoo's ``r2plus1d_50`` (bottleneck R(2+1)D, every 3x3x3 conv factorised into
1x3x3 + 3x1x1 with Tran et al.'s middle widths, 1x7x7 + 3x1x1 stem, temporal stride 2 at
res3..res5).

Assumed (neither docs/design.md nor the paper as known here fixes them): input 32 frames at
stride 2, 112 crops (Tran et al.'s final clip length; 115 GFLOPs per view dense);
SGD momentum 0.9, batch 128, lr 0.2, cosine over 120 epochs after 5 linear warm-up epochs,
weight decay 1e-4, dropout 0.5; training short side in [128, 160], random 112 crops and
flips; test 10 clips x 3 crops (left, centre, right) at short side 112; 4 SGS length
buckets (a speed knob that changes no output). The recipe is ``common.atfr_resnet``.

``:synthetic``: a narrow factorised bottleneck network (two blocks per stage) + SGS on the
synthetic motion classes (``redundancy``: static stretches); ``:smoke``: a few steps of a
tiny one.
"""

from configs import common


def get_config(arg=None):
    return common.atfr_resnet("r2plus1d_50", "minikinetics", arg, frames=32, stride=2, crop=112, scale=(128, 160))
