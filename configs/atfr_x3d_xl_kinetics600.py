r"""ATFR: X3D-XL + Similarity Guided Sampling on Kinetics-600 (Fayyaz et al., CVPR 2021).

    python -m experiments.train --config configs/atfr_x3d_xl_kinetics600.py[:synthetic|:smoke] --workdir DIR

The X3D-XL baseline without SGS: add ``--config.adaptive=False`` (``cfjax.models.non_adaptive``).

Specified by the papers (the SGS paper trains each backbone with its original recipe;
docs/design.md's X3D facts): X3D-XL (``x3d_xl``); data ``cfjax_kinetics`` / ``k600`` (600
classes); SGS after res2, before its last ReLU, with the official defaults (linear kernel,
distance to the clip mean, B = T bins, L = 8); X3D's recipe: SGD momentum 0.9, lr 1.6 for
batch 1024 (linear scaling), half-period cosine over 256 epochs with 35 linear warm-up
epochs, weight decay 5e-5 (not on biases or BatchNorm), dropout 0.5 before the classifier;
input 16 frames at stride 5, training short side in [407, 509], random 356 crops and flips;
test 10 clips x 3 crops (left, centre, right) at short side 356 (docs/design.md's X3D-XL, 16 x
356).

The default Kinetics build stores frames at short side 256, so XL's 356 crops are upsampled
from it; for the paper's resolution, prepare the data with a larger ``--short_side`` and set
``data.builder_kwargs`` to match in a copy of this file.

Assumed: X3D's Kinetics-400 schedule is applied to Kinetics-600 unchanged (256 epochs, 35
warm-up epochs, lr 1.6 at batch 1024); XL's training short-side range (PySlowFast's [8/7,
10/7] x crop rule, as for S, M and L); 4 SGS length buckets (a cfjax speed knob: the padded
length after SGS is rounded up to T/4, T/2, 3T/4 or T and masked, which changes no output);
warm-up steps from the usual training-set size in ``common.DATASETS``. The recipe is
``common.atfr_x3d``.

``:synthetic``: a small X3D (width factor 1.0, depth factor 1.0) + SGS on the synthetic
motion classes, whose clips hold the object static for a random fraction of the time
(``redundancy``); ``:smoke``: a few steps of a tiny one. Both are the same for every X3D
size and dataset.
"""

from configs import common


def get_config(arg=None):
    return common.atfr_x3d("xl", "kinetics600", arg)
