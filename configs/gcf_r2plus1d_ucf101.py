r"""GCF-Net over R(2+1)D on UCF101 split 1 (Hsiao, Chen, Ho, 2021: "Gated Clip Fusion Network").

    python -m experiments.train --config configs/gcf_r2plus1d_ucf101.py[:synthetic|:smoke] --workdir DIR
    python -m experiments.train --config configs/gcf_r2plus1d_ucf101.py:[synthetic,]dclips --workdir DIR  # or cclip

The paper's baselines are single-clip classifiers, the backbone trained on one random clip per
video: ``dclips`` (D-Clips) averages the softmax over 10 clips at test (N at ``:synthetic``),
``cclip`` (C-Clip) tests the central clip (``common.gcf_baseline``). ``--config.adaptive=False``
keeps the clip-set training and swaps fusion and gates for ``head="mean_fusion"`` (the mean of
the clip descriptors, classified): an ablation, not the paper's baseline. On UCF101 a baseline
is fine-tuned like GCF-Net (last layer only): ``--config.init_from`` a Kinetics-600 run of the
same baseline.

Specified (docs/design.md): clip descriptors from a shared backbone, here ``r2plus1d_18``,
built as a feature extractor; projected to D = 240 (the width at which the head has the paper's
0.86 M parameters and 15 MFLOPs); one bi-directional inter-clip fusion layer (scaled
dot-product self-attention over the clips); gated clip-wise attention (squeeze-excite across
clips); residual, mean over clips, softmax classifier; loss = cross-entropy + lambda *
L1(gates); clips of 16 frames, 10 clips at test (a shorter video's clips loop); data
``cfjax_ucf101`` / ``split1`` (101 classes).

Which R(2+1)D depth the paper uses is not fixed by docs/design.md; ``r2plus1d_18`` is assumed: of
the zoo's two presets it is the standard, publicly pretrained R(2+1)D (torchvision's, 16 x
112, the same input as the ResNeXt), while ``r2plus1d_50`` is a bottleneck variant with no
published weights.

Training (the paper): the Kinetics-600 GCF-Net frozen, only its last layer trained on UCF101:
``optimizer.freeze`` = every parameter but ``classifier/``, SGD batch 128 (read as videos),
momentum 0.9, dampening 0.9, lr 0.01 divided by 10 when the validation loss has not improved
for more than 10 epochs (``schedule.name = "plateau"``), weight decay 1e-3; the factor,
patience and weight decay come from Köpüklü et al.'s training code, which the paper's training
paragraph follows (docs/design.md, section 3.3). Pass the Kinetics-600 run (the same backbone)::

    python -m experiments.train --config configs/gcf_r2plus1d_ucf101.py --workdir DIR --config.init_from=K600_WORKDIR

Its best checkpoint is loaded and the 600-class classifier re-initialised for 101 classes; a
new run without ``init_from`` stops with a line asking for it.

Assumed (neither docs/design.md nor the paper as known here fixes them): N = 10 clips in
training as well as at test (the gate network's weights are [N, N], so N cannot change between
them); 16 consecutive frames per clip (stride 1, Hara et al.'s input), 112 crops;
``loss.sparsity_weight`` 0.01 (the L1 term sums 10 gates per video, so it adds at most 0.1 to
the loss: a gentle push towards sparse gates); one attention head, no dropout (the paper
describes none); 100 epochs, the first 5 a linear warm-up; training short side in [128, 160],
random 112 crops and flips (the same for every clip of a video); test: 10 centred clips at
short side 128, centre crop. The recipe is ``common.gcf``.

``:synthetic``: GCF-Net over a tiny ``r2plus1d_18``-like backbone (two blocks per stage) on the
synthetic clip sets (8 clips x 8 frames, the action in 1..3 of them; the gates are scored
against the relevant clips); ``:smoke``: a few steps of a tinier one.
"""

from configs import common


def get_config(arg=None):
    return common.gcf("r2plus1d_18", "ucf101", arg)
