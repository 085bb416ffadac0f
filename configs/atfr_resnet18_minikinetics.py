r"""ATFR: the SGS paper's modified 3DResNet-18 + SGS after res2 on Mini-Kinetics (Fayyaz et al., CVPR 2021).

    python -m experiments.train --config configs/atfr_resnet18_minikinetics.py[:synthetic|:smoke] --workdir DIR

The 3DResNet-18 baseline without SGS: add ``--config.adaptive=False`` (``cfjax.models.non_adaptive``).

"3DResNet-18 + ATFR" in the paper is its modified 3DResNet-18 (Table A.1): conv1 5x7x7 to
8 channels, 1x3x3 max pool, bottleneck blocks with temporal kernels only in res2 and res5,
no temporal stride, 32 x 224 input, 14.0 GFLOPs on average with SGS (docs/design.md). That is
the zoo's ``sgs_resnet18`` preset (18.1 GFLOPs dense at 32 x 224 with 200 classes), not
Hara's ``resnet18`` (65.7 GFLOPs at 32 x 224), so this file uses ``sgs_resnet18``.

Specified: the backbone and its 32 x 224 input; SGS after res2, before its last ReLU, with
the official defaults (linear kernel, distance to the clip mean, B = T bins, L = 8);
Mini-Kinetics-200 = ``cfjax_kinetics`` / ``mini200`` (200 classes).

Assumed (the Mini-Kinetics recipe is not in docs/design.md, nor known here from the paper):
frame stride 2 (32 frames span ~2 s of 30 fps video); SGD momentum 0.9, batch 128, lr 0.2,
cosine over 120 epochs after 5 linear warm-up epochs, weight decay 1e-4, dropout 0.5;
training short side in [256, 320], random 224 crops and flips; test 10 clips x 3 crops
(left, centre, right) at short side 224; 4 SGS length buckets (a speed knob that changes
no output). The recipe is ``common.atfr_resnet``.

``:synthetic``: a narrow ``sgs_resnet18`` (two blocks per stage) + SGS on the synthetic
motion classes (``redundancy``: static stretches); ``:smoke``: a few steps of a tiny one.
"""

from configs import common


def get_config(arg=None):
    return common.atfr_resnet("sgs_resnet18", "minikinetics", arg, frames=32, stride=2, crop=224, scale=(256, 320))
