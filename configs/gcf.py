r"""GCF-Net on Kinetics-600 / UCF101 (Hsiao, Chen, Ho, 2021: "Gated Clip Fusion Network").

    python -m experiments.train --config configs/gcf.py:backbone=resnext101,data=kinetics600 --workdir DIR
    python -m experiments.train --config configs/gcf.py:data=ucf101,variant=synthetic,baseline=dclips --workdir DIR

Arguments: ``backbone`` resnext101 | r2plus1d (default ``resnext101``), ``data`` kinetics600 |
ucf101 (default ``kinetics600``; UCF101 split 1), ``baseline`` cclip | dclips (default: GCF-Net
itself), ``variant`` synthetic | smoke (default: the paper's full scale).

Specified (docs/design.md): clip descriptors from a shared backbone built as a feature
extractor (``num_classes=0``): ``resnext101`` (Hara et al.'s 3D ResNeXt-101: 32-group 3x3x3
bottleneck middles, 16 x 112 input) or ``r2plus1d`` (the zoo's ``r2plus1d_18``, see Assumed);
projected to D = 240 (the width at which the head has the paper's 0.86 M parameters and 15
MFLOPs); one bi-directional inter-clip fusion layer (scaled dot-product self-attention over
the clips); gated clip-wise attention (squeeze-excite across clips); residual, mean over
clips, softmax classifier; loss = cross-entropy + lambda * L1(gates); clips of 16 frames, 10
clips at test; data ``cfjax_kinetics`` / ``k600`` (600 classes) or ``cfjax_ucf101`` /
``split1`` (101 classes). The paper's headline: +3.67 top-1 over dense-clip averaging on
Kinetics-600 with 3D-ResNeXt-101.

Training (the paper): on Kinetics-600 from scratch, SGD batch 128 (read as videos: 1,280
clips), momentum 0.9, dampening 0.9, lr 0.1 divided by 10 when the validation loss has not
improved for more than 10 epochs (``schedule.name = "plateau"``, one evaluation per epoch),
weight decay 1e-3; the factor, patience (relative threshold 1e-4, no cooldown) and weight decay
come from Köpüklü et al.'s training code ("Resource Efficient 3D CNNs", torch's
ReduceLROnPlateau), which the paper's training paragraph follows (docs/design.md, section
3.3). On UCF101 the Kinetics-600 GCF-Net is frozen and only its last layer trained, at lr 0.01
(``optimizer.freeze`` = every parameter but ``classifier/``); pass the Kinetics-600 run of the
same backbone::

    python -m experiments.train --config configs/gcf.py:data=ucf101 --workdir DIR --config.init_from=K600_WORKDIR

Its best checkpoint is loaded and the 600-class classifier re-initialised for 101 classes; a
new run without ``init_from`` stops with a line asking for it.

Assumed (neither docs/design.md nor the paper as known here fixes them): ``r2plus1d`` is
``r2plus1d_18``: of the zoo's two R(2+1)D presets it is the standard, publicly pretrained one
(torchvision's, 16 x 112, the same input as the ResNeXt), while ``r2plus1d_50`` is a
bottleneck variant with no published weights; N = 10 clips in training as well as at test (the
gate network's weights are [N, N], so N cannot change between them); a video shorter than N
clips loops (``input.short_video = "loop"``: its clips repeat as real clips; ``"mask"`` makes
the repeats padding); 16 consecutive frames per clip (stride 1, Hara et al.'s input), 112
crops; ``loss.sparsity_weight`` 0.01 (the L1 term sums 10 gates per video, so it adds at most
0.1 to the loss: a gentle push towards sparse gates); one attention head, no dropout (the
paper describes none); 100 epochs, the first 5 a linear warm-up; training short side in [128,
160], random 112 crops and flips (the same for every clip of a video); test: 10 centred clips at
short side 128, centre crop.

``baseline``: the paper's baselines, single-clip classifiers (:func:`single_clip_baseline`):
the backbone with a classifier (``model`` = the backbone config and ``num_classes``) trained by
the ``classification`` task on one random clip per video (same clip length, stride, crops and
training recipe; on UCF101 fine-tuned like GCF-Net, ``--config.init_from`` a Kinetics-600 run
of the same baseline), tested with the multi-view path, softmax averaged over 1 centre crop of
the central clip (``cclip``: C-Clip) or of N clips spread over the video (``dclips``: D-Clips,
N = 10, 8 at ``variant=synthetic``). ``--config.adaptive=False`` instead keeps the clip-set
training and swaps fusion and gates for ``head="mean_fusion"`` (the mean of the clip
descriptors, classified): an ablation, not the paper's baseline.

``variant=synthetic``: GCF-Net (D = 64) over a tiny backbone of the same blocks (two per stage,
``common.small_resnet``) on the synthetic clip sets (8 clips x 8 frames, the action in 1..3 of
them; the gates are scored against the relevant clips), trained from scratch with AdamW and a
cosine schedule for every dataset; ``variant=smoke``: 3 steps of a tinier one (D = 16).
"""

from cfjax.train.config import base_config, synthetic_data
from configs import common

BACKBONES = {"resnext101": "resnext101", "r2plus1d": "r2plus1d_18"}  # argument: zoo preset
ARGUMENTS = {
    "backbone": ("resnext101", tuple(BACKBONES)),
    "data": ("kinetics600", ("kinetics600", "ucf101")),
    "baseline": (None, ("cclip", "dclips")),
    "variant": (None, common.VARIANTS),
}
CLIPS = 10  # N, in training and at test


def get_config(arg=None):
    a = common.parse_arg(arg, ARGUMENTS)
    backbone = BACKBONES[a.backbone]
    c = base_config()
    c.task = "clip_set"
    classes = common.set_dataset(c, a.data)
    c.model = {
        "name": "gcf_net",
        "num_classes": classes,
        "backbone": {"name": backbone},
        "dim": 240,
        "fusion_layers": 1,
        "gating": True,
        "head": "gcf",
    }
    c.loss.sparsity_weight = 0.01
    c.input.sampling, c.input.num_clips, c.input.short_video = "clips", CLIPS, "loop"
    c.input.clip_length, c.input.stride = 16, 1
    c.input.crop_size, c.input.scale_range = 112, (128, 160)
    c.eval_input = {"sampling": "clips", "num_clips": CLIPS, "num_crops": 1, "short_side": 128}
    c.batch_size, c.eval_batch_size = 128, 16
    c.num_epochs = 100
    c.optimizer.name, c.optimizer.momentum, c.optimizer.dampening = "sgd", 0.9, 0.9
    c.optimizer.weight_decay = 1e-3
    c.schedule.name, c.schedule.base_lr = "plateau", 0.1
    c.schedule.decay_factor, c.schedule.plateau_patience = 0.1, 10
    c.schedule.warmup_steps = common.epochs_to_steps(a.data, 5, c.batch_size)
    c.log_every_steps, c.checkpoint_every_steps = 100, 1000
    c.eval_every_steps = common.epochs_to_steps(a.data, 1, c.batch_size)  # the plateau's patience counts epochs
    if a.data == "ucf101":  # fine-tune the last layer of a Kinetics-600 GCF (--config.init_from=DIR)
        c.schedule.base_lr, c.optimizer.freeze = 0.01, (r"^(?!classifier/)",)

    if a.variant is not None:  # one synthetic recipe for every dataset (AdamW, cosine), from scratch
        c.optimizer.weight_decay, c.optimizer.dampening, c.optimizer.freeze = 1e-4, 0.0, ()
        c.schedule.name = "cosine"
        c.model.update(num_classes=common.SYNTHETIC_CLASSES, backbone=common.small_resnet(backbone, a.variant))
    if a.variant == "synthetic":
        c.model.dim = 64
        synthetic_clip_set(c, a.variant, clip_length=4, stride=2, crop=32)
        common.synthetic_schedule(c, steps=600, batch=8)
    elif a.variant == "smoke":
        c.model.dim = 16
        synthetic_clip_set(c, a.variant, clip_length=2, stride=4, crop=32)
        common.smoke(c)
    return single_clip_baseline(c, a.baseline) if a.baseline else c


def synthetic_clip_set(c, variant: str, *, clip_length: int, stride: int, crop: int) -> None:
    """Data and inputs of clip-set classification on the synthetic videos of 8 clips x 8 frames,
    the action in 1..3 of them. The model sees all 8 clips (``num_clips`` must equal the
    data's, whose ``relevant_clips`` score the gates), ``clip_length`` frames of each."""
    synthetic_data(c, "clip_set", variant == "smoke", **common.SYNTHETIC_SIZES["clip_set"])
    c.input.sampling, c.input.num_clips = "clips", 8
    c.input.clip_length, c.input.stride = clip_length, stride
    common.synthetic_crop(c, crop)
    c.eval_input = {"sampling": "clips", "num_clips": 8, "num_crops": 1, "short_side": crop}


def single_clip_baseline(c, baseline: str):
    """The paper's ``baseline`` (``"cclip"`` / ``"dclips"``) of GCF-Net config ``c`` (changed in
    place and returned): the backbone as a classifier, trained on one clip, tested on 1 / N clips."""
    clips = c.input.num_clips if baseline == "dclips" else 1
    model = c.model.to_dict()
    c.task = "classification"
    c.model = {**model["backbone"], "num_classes": model["num_classes"]}
    c.loss.sparsity_weight = 0.0
    c.input.sampling, c.input.num_clips = "clip", 1
    del c.input["short_video"]
    c.eval_input = {"sampling": "multi_view", "num_clips": clips, "num_crops": 1, "short_side": c.eval_input.short_side}
    return c
