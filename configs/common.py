"""Recipes shared by the experiment configs: ``from configs import common``.

A config file is one paper experiment at full scale, ``get_config(arg)`` with
``arg`` None (full scale), ``"synthetic"`` (the same model family, small, on the
matching synthetic suite: a few minutes on a CPU) or ``"smoke"`` (a few steps on
a handful of examples: a test that the whole pipeline runs). This module holds

- the datasets (:data:`DATASETS`: builder, config, classes, training-set size);
- the recipes used by several files: :func:`atfr_x3d` (X3D + SGS, by size and
  dataset), :func:`atfr_resnet` (3D ResNets + SGS on Mini-Kinetics),
  :func:`gcf` (GCF-Net, by backbone and dataset), :func:`cfad` (CFAD, by dataset);
- the variant adjustments per task (:func:`synthetic_classification`,
  :func:`synthetic_frame_detection`, :func:`synthetic_clip_set`, :func:`synthetic_tubes`,
  :func:`smoke`).

The synthetic datasets have the same sizes for every config of a task kind
(:data:`SYNTHETIC_SIZES`), so they are generated once per data directory, and
every smoke run of a kind shares one 8 + 4 example dataset.

Smoke runs use a global batch of 8: the test suite simulates 8 CPU devices and
the batch is split over them (any batch works on one device).
"""

from __future__ import annotations

import ml_collections

from cfjax.train.config import VARIANTS, base_config, check_variant, synthetic_data

__all__ = [
    "DATASETS",
    "SMOKE_BATCH",
    "SYNTHETIC_SIZES",
    "X3D_INPUTS",
    "atfr_resnet",
    "atfr_x3d",
    "cfad",
    "epochs_to_steps",
    "gcf",
    "gcf_baseline",
    "gcf_variant",
    "set_dataset",
    "small_resnet",
    "smoke",
    "synthetic_classification",
    "synthetic_clip_set",
    "synthetic_frame_detection",
    "synthetic_schedule",
    "synthetic_tubes",
]

# name: (builder, builder config, classes, training examples). The sizes turn epochs into
# warm-up steps only (the trainer counts epochs over the prepared split itself); they are the
# usual counts, a few percent off whatever copy of Kinetics is prepared.
DATASETS = {
    "kinetics400": ("cfjax_kinetics", "k400", 400, 240_000),
    "kinetics600": ("cfjax_kinetics", "k600", 600, 392_000),
    "minikinetics": ("cfjax_kinetics", "mini200", 200, 80_000),
    "ucf101": ("cfjax_ucf101", "split1", 101, 9_537),
    # "default" is the 24 fps, short side 256 build (CHARADES_FRAME_FPS): the paper's frames.
    "charades": ("cfjax_charades", "default", 157, 7_985),
    # ACT's splits (split 1): 2,284 / 910 UCF101-24 videos, 660 / 268 JHMDB-21 videos.
    "ucf101_24": ("cfjax_ucf101_24", "split1", 24, 2_284),
    "jhmdb21": ("cfjax_jhmdb", "split1", 21, 660),
    # UCF Sports: 10 classes, ACT's split of 103 / 47 videos.
    "ucfsports": ("cfjax_ucfsports", "split1", 10, 103),
}

# X3D inputs: frames, stride, crop (train and test: the spatial size of docs/design.md's X3D table
# and of the registry's reference inputs), training short-side jitter (PySlowFast's X3D
# recipes: [8/7, 10/7] x crop; XL's range follows the same rule).
X3D_INPUTS = {
    "xs": (4, 12, 160, (182, 228)),
    "s": (13, 6, 160, (182, 228)),
    "m": (16, 5, 224, (256, 320)),
    "l": (16, 5, 312, (356, 446)),
    "xl": (16, 5, 356, (407, 509)),
}

# Synthetic dataset sizes per kind (shared by every config of that kind).
SYNTHETIC_SIZES = {
    "classification": {"num_frames": 32, "num_train": 512, "num_test": 128},
    "temporal_detection": {"num_train": 256, "num_test": 64},  # 96 frames (the builder's default)
    "clip_set": {"num_train": 384, "num_test": 96},  # 8 clips x 8 frames (the builder's default)
    "tubes": {"num_frames": 16, "num_train": 256, "num_test": 64, "object_size": 28},  # 64 x 64, 1..3 actors
}
SYNTHETIC_CLASSES = 8
SMOKE_BATCH = 8


def set_dataset(c: ml_collections.ConfigDict, dataset: str) -> int:
    """Points ``c.data`` at ``dataset`` (a :data:`DATASETS` key); returns its number of classes."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset: expected one of {sorted(DATASETS)}, got {dataset!r}")
    builder, config, classes, _ = DATASETS[dataset]
    c.data.dataset, c.data.config = builder, config
    return classes


def epochs_to_steps(dataset: str, epochs: float, batch_size: int) -> int:
    """Steps of ``epochs`` passes over ``dataset``'s training split at ``batch_size``."""
    return int(epochs * DATASETS[dataset][3] // batch_size)


def synthetic_schedule(
    c: ml_collections.ConfigDict, *, steps: int, batch: int, lr: float = 2e-3, eval_batch: int = 16
) -> None:
    """A synthetic run: ``steps`` of ``batch`` clips with AdamW (weight decay 1e-4), 5 % linear
    warm-up then cosine from ``lr``; the whole test split evaluated halfway and at the end;
    four checkpoints. AdamW rather than the papers' SGD: at batch 8 and a few hundred steps
    it needs no per-model learning-rate search (``lr_multipliers`` are kept)."""
    c.optimizer.name, c.optimizer.weight_decay = "adamw", 1e-4
    c.batch_size, c.eval_batch_size = batch, eval_batch
    c.total_steps, c.schedule.warmup_steps, c.schedule.base_lr = steps, steps // 20, lr
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 10, steps // 2, steps // 4
    c.max_eval_batches = 0


def smoke(c: ml_collections.ConfigDict) -> None:
    """A smoke run: 3 steps of batch 8 at lr 0.01, one evaluation batch at the end, one plot,
    only the final checkpoint."""
    c.batch_size, c.eval_batch_size = SMOKE_BATCH, SMOKE_BATCH
    c.total_steps, c.schedule.warmup_steps, c.schedule.base_lr = 3, 1, 0.01
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 1, 0, 1000
    c.max_eval_batches, c.num_plots = 1, 1


# ------------------------------------------------------------------------- per-task variants


def _train_input(c, crop: int) -> None:
    c.input.crop_size, c.input.scale_range = crop, (crop, crop + crop // 4)


def synthetic_classification(c, variant: str, *, clip_length: int, stride: int, crop: int) -> None:
    """Data and inputs of classification on the synthetic motion classes (``redundancy``:
    static stretches). Training: one clip, short side in ``[crop, 1.25 crop]``, random crop
    (no flip, for every synthetic task: it would swap left / right and the two circle
    directions); evaluation: the centred clip at short side ``crop``, or for ``smoke`` 2 clips x
    3 crops (the full-scale multi-view path)."""
    synthetic_data(c, "classification", variant == "smoke", **SYNTHETIC_SIZES["classification"])
    c.input.sampling, c.input.clip_length, c.input.stride = "clip", clip_length, stride
    _train_input(c, crop)
    if variant == "smoke":
        c.eval_input = {"sampling": "multi_view", "num_clips": 2, "num_crops": 3, "short_side": crop}
    else:
        c.eval_input = {"sampling": "clip", "num_clips": 1, "num_crops": 1, "short_side": crop}


def synthetic_frame_detection(
    c, variant: str, *, clip_length: int, stride: int, fine_length: int, fine_stride: int, crop: int
) -> None:
    """Data and inputs of per-frame detection on the synthetic Charades-like videos (96 frames,
    1..3 overlapping segments): a coarse clip plus the fine view of the whole video."""
    synthetic_data(c, "temporal_detection", variant == "smoke", **SYNTHETIC_SIZES["temporal_detection"])
    c.input.sampling = "coarse_fine"
    c.input.clip_length, c.input.stride = clip_length, stride
    c.input.fine_length, c.input.fine_stride = fine_length, fine_stride
    _train_input(c, crop)
    c.eval_input = {"sampling": "coarse_fine", "num_clips": 1, "num_crops": 1, "short_side": crop}


def synthetic_clip_set(c, variant: str, *, clip_length: int, stride: int, crop: int) -> None:
    """Data and inputs of clip-set classification on the synthetic videos of 8 clips x 8 frames,
    the action in 1..3 of them. The model sees all 8 clips (``num_clips`` must equal the
    data's, whose ``relevant_clips`` score the gates), ``clip_length`` frames of each."""
    synthetic_data(c, "clip_set", variant == "smoke", **SYNTHETIC_SIZES["clip_set"])
    c.input.sampling, c.input.num_clips = "clips", 8
    c.input.clip_length, c.input.stride = clip_length, stride
    _train_input(c, crop)
    c.eval_input = {"sampling": "clips", "num_clips": 8, "num_crops": 1, "short_side": crop}


# ----------------------------------------------------------------------------------- ATFR


def atfr_x3d(size: str, dataset: str, arg=None) -> ml_collections.ConfigDict:
    """X3D-``size`` + SGS after res2 on ``dataset`` (Fayyaz et al., CVPR 2021).

    Full scale is X3D's own recipe, which the SGS paper keeps for its X3D backbones:
    SGD momentum 0.9, lr 1.6 for batch 1024 (linear scaling), half-period cosine over
    256 epochs with 35 warm-up epochs, weight decay 5e-5, dropout 0.5; inputs of
    :data:`X3D_INPUTS`; test 10 clips x 3 crops (left, centre, right). SGS: the official
    defaults (linear kernel, distance to the clip mean, B = T bins, L = 8), 4 length
    buckets.
    """
    variant = check_variant(arg)
    if size not in X3D_INPUTS:
        raise ValueError(f"size: expected one of {sorted(X3D_INPUTS)}, got {size!r}")
    frames, stride, crop, scale = X3D_INPUTS[size]
    c = base_config()
    c.task = "classification"
    classes = set_dataset(c, dataset)
    c.model = {
        "name": f"x3d_{size}",
        "num_classes": classes,
        "dropout_rate": 0.5,
        "sgs": {"stage": "res2", "buckets": 4},
    }
    c.input.sampling, c.input.clip_length, c.input.stride = "clip", frames, stride
    c.input.crop_size, c.input.scale_range = crop, scale
    c.eval_input = {"sampling": "multi_view", "num_clips": 10, "num_crops": 3, "short_side": crop}
    c.batch_size, c.eval_batch_size = 1024, 64
    c.num_epochs = 256
    c.optimizer.name, c.optimizer.momentum, c.optimizer.weight_decay = "sgd", 0.9, 5e-5
    c.schedule.name, c.schedule.base_lr = "cosine", 1.6
    c.schedule.warmup_steps = epochs_to_steps(dataset, 35, c.batch_size)
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 100, 5000, 1000
    if variant is None:
        return c

    if variant == "synthetic":
        c.model = {
            "name": f"x3d_{size}",
            "num_classes": SYNTHETIC_CLASSES,
            "width_factor": 1.0,
            "depth_factor": 1.0,
            "head_width": 128,
            "dropout_rate": 0.2,
            "sgs": {"stage": "res2", "buckets": 2},
        }
        synthetic_classification(c, variant, clip_length=8, stride=4, crop=32)
        synthetic_schedule(c, steps=1000, batch=8, eval_batch=32)
    else:  # one tiny X3D for every size (the preset's width and depth are overridden)
        c.model = {
            "name": "x3d_s",
            "num_classes": SYNTHETIC_CLASSES,
            "width_factor": 0.5,
            "depth_factor": 1.0,
            "base_depths": (1, 1, 1, 1),
            "head_width": 16,
            "dropout_rate": 0.2,
            "sgs": {"stage": "res2", "buckets": 1},
        }
        synthetic_classification(c, variant, clip_length=8, stride=2, crop=32)
        smoke(c)
    return c


# Mini-Kinetics recipe of the 3D ResNets (assumed: see atfr_resnet's docstring).
RESNET_EPOCHS, RESNET_WARMUP_EPOCHS, RESNET_BATCH, RESNET_LR, RESNET_WD = 120, 5, 128, 0.2, 1e-4

# Small stand-ins (synthetic / smoke) of the ResNet presets: same block type, stem and strides.
_SMALL_RESNETS = {
    "sgs_resnet18": {"stem_width": 8, "widths": (16, 64, 128, 256), "inner_widths": (4, 16, 32, 64)},
    "resnet18": {"stem_width": 16, "widths": (16, 32, 64, 128)},
    "resnet50": {"stem_width": 16, "widths": (32, 64, 128, 256), "inner_widths": (8, 16, 32, 64)},
    "r2plus1d_18": {"stem_width": 8, "widths": (8, 16, 32, 64)},
    "r2plus1d_50": {"stem_width": 16, "widths": (32, 64, 128, 256), "inner_widths": (8, 16, 32, 64)},
    "resnext101": {"stem_width": 16, "widths": (32, 64, 128, 256), "inner_widths": (16, 32, 64, 128), "groups": 4},
}
_SMOKE_RESNETS = {
    "sgs_resnet18": {"stem_width": 8, "widths": (8, 16, 32, 64), "inner_widths": (4, 8, 16, 32)},
    "resnet18": {"stem_width": 8, "widths": (8, 16, 32, 64)},
    "resnet50": {"stem_width": 8, "widths": (16, 32, 64, 128), "inner_widths": (4, 8, 16, 32)},
    "r2plus1d_18": {"stem_width": 8, "widths": (8, 16, 32, 64)},
    "r2plus1d_50": {"stem_width": 8, "widths": (16, 32, 64, 128), "inner_widths": (4, 8, 16, 32)},
    "resnext101": {"stem_width": 8, "widths": (16, 32, 64, 128), "inner_widths": (8, 8, 16, 32), "groups": 4},
}


def small_resnet(preset: str, variant: str) -> dict:
    """Model fields of the synthetic / smoke stand-in of ResNet preset ``preset``.

    Synthetic: depths (2, 2, 2, 2) (the 18-layer layout for every preset), small widths;
    smoke: depths (1, 1, 1, 1), smaller widths. ResNeXt keeps grouped middle convs (4 groups).
    """
    sizes = _SMALL_RESNETS if variant == "synthetic" else _SMOKE_RESNETS
    depths = (2, 2, 2, 2) if variant == "synthetic" else (1, 1, 1, 1)
    return {"name": preset, "depths": depths, **sizes[preset]}


def atfr_resnet(
    preset: str, dataset: str, arg=None, *, frames: int, stride: int, crop: int, scale: tuple[int, int]
) -> ml_collections.ConfigDict:
    """A 3D ResNet preset + SGS after res2 (ATFR) on ``dataset`` (Mini-Kinetics in the paper).

    Neither docs/design.md nor the SGS paper (as far as this file's author knows) fixes the
    Mini-Kinetics training recipe; assumed here: SGD momentum 0.9, batch 128, lr 0.2
    (0.1 per 64 clips), cosine over 120 epochs after 5 linear warm-up epochs, weight
    decay 1e-4, dropout 0.5; training short side jittered in ``scale``, random crop
    ``crop``, flip; test 10 clips x 3 crops at short side ``crop``.
    """
    variant = check_variant(arg)
    c = base_config()
    c.task = "classification"
    classes = set_dataset(c, dataset)
    c.model = {"name": preset, "num_classes": classes, "dropout_rate": 0.5, "sgs": {"stage": "res2", "buckets": 4}}
    c.input.sampling, c.input.clip_length, c.input.stride = "clip", frames, stride
    c.input.crop_size, c.input.scale_range = crop, scale
    c.eval_input = {"sampling": "multi_view", "num_clips": 10, "num_crops": 3, "short_side": crop}
    c.batch_size, c.eval_batch_size = RESNET_BATCH, 32
    c.num_epochs = RESNET_EPOCHS
    c.optimizer.name, c.optimizer.momentum, c.optimizer.weight_decay = "sgd", 0.9, RESNET_WD
    c.schedule.name, c.schedule.base_lr = "cosine", RESNET_LR
    c.schedule.warmup_steps = epochs_to_steps(dataset, RESNET_WARMUP_EPOCHS, c.batch_size)
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 100, 5000, 1000
    if variant is None:
        return c

    c.model = {
        **small_resnet(preset, variant),
        "num_classes": SYNTHETIC_CLASSES,
        "dropout_rate": 0.2,
        "sgs": {"stage": "res2", "buckets": 2 if variant == "synthetic" else 1},
    }
    if variant == "synthetic":
        synthetic_classification(c, variant, clip_length=8, stride=4, crop=32)
        synthetic_schedule(c, steps=1000, batch=8, eval_batch=32)
    else:
        synthetic_classification(c, variant, clip_length=8, stride=2, crop=32)
        smoke(c)
    return c


# ---------------------------------------------------------------------------------- GCF-Net

GCF_CLIPS, GCF_CLIP_LENGTH, GCF_CROP = 10, 16, 112
GCF_SPARSITY = 0.01
# Köpüklü et al.'s training code (the paper's training paragraph follows theirs): torch's
# ReduceLROnPlateau(mode="min", patience=10) with its default factor 0.1, weight decay 1e-3.
GCF_PLATEAU_FACTOR, GCF_PLATEAU_PATIENCE, GCF_WEIGHT_DECAY = 0.1, 10, 1e-3
GCF_FREEZE = (r"^(?!classifier/)",)  # UCF101: every parameter but the last layer's
# The paper's baselines (single-clip models): C-Clip tests the central clip, D-Clips N clips.
GCF_BASELINES = ("cclip", "dclips")


def gcf_variant(arg) -> tuple[str | None, str | None]:
    """``arg`` of a GCF-Net config -> ``(variant, baseline)``: at most one of ``"synthetic"`` /
    ``"smoke"`` (:func:`check_variant`) and one of :data:`GCF_BASELINES`, comma-separated
    (``"dclips"``, ``"synthetic,dclips"``, ``"smoke,cclip"``)."""
    parts = [p.strip() for p in str(arg or "").split(",") if p.strip()]
    baselines = [p for p in parts if p in GCF_BASELINES]
    scales = [p for p in parts if p not in GCF_BASELINES]
    if len(baselines) > 1 or len(scales) > 1 or any(p not in VARIANTS for p in scales):
        raise ValueError(
            f"config variant: expected at most one of {VARIANTS[1:]} and one baseline of {GCF_BASELINES}, "
            f"comma-separated (e.g. 'synthetic,dclips'), got {arg!r}"
        )
    return check_variant(scales[0] if scales else None), (baselines[0] if baselines else None)


def gcf_baseline(c: ml_collections.ConfigDict, baseline: str) -> ml_collections.ConfigDict:
    """The paper's baseline of the GCF-Net config ``c`` (changed in place and returned).

    A single-clip classifier: the same backbone with a classifier (``config.model`` = the
    backbone config and ``num_classes``) trained by the ``classification`` task on one
    random clip of each video (same clip length, stride, crops and training recipe), and
    evaluated with the multi-view path, softmax averaged over ``num_crops = 1`` centre crop
    of the central clip (``"cclip"``: C-Clip) or of ``N`` clips spread over the video
    (``"dclips"``: D-Clips, ``N`` = the GCF config's ``num_clips``).
    """
    if baseline not in GCF_BASELINES:
        raise ValueError(f"baseline: expected one of {GCF_BASELINES}, got {baseline!r}")
    clips = c.input.num_clips if baseline == "dclips" else 1
    model = c.model.to_dict()
    c.task = "classification"
    c.model = {**model["backbone"], "num_classes": model["num_classes"]}
    c.loss.sparsity_weight = 0.0
    c.input.sampling, c.input.num_clips = "clip", 1
    if "short_video" in c.input:
        del c.input["short_video"]
    c.eval_input = {"sampling": "multi_view", "num_clips": clips, "num_crops": 1, "short_side": c.eval_input.short_side}
    return c


def gcf(backbone: str, dataset: str, arg=None) -> ml_collections.ConfigDict:
    """GCF-Net over ``backbone`` (a ResNet3D preset) on ``dataset`` (Hsiao, Chen, Ho, 2021).

    Model: clip descriptors from the shared backbone (``num_classes=0``), projected to
    ``dim=240`` (the width at which the head has the paper's 0.86 M parameters and 15
    MFLOPs, docs/design.md), one inter-clip fusion layer, gated clip-wise attention, mean
    over clips, softmax classifier (no dropout: the paper describes none). Input: ``N =
    10`` clips of 16 consecutive frames (stride 1) at 112 x 112 (the input of Hara et al.'s
    3D ResNeXt-101), in training and at test: the gate network's weights are ``[N, N]``, so
    ``N`` is fixed by the parameters (the paper's 10 test clips fix it for training too).
    A video shorter than ``N`` clips loops: its clips repeat cyclically as real clips
    (``input.short_video = "loop"``; ``"mask"`` makes the repeats padding instead).

    ``arg``: ``"synthetic"`` / ``"smoke"`` and / or a baseline of the paper,
    comma-separated (:func:`gcf_variant`): ``"cclip"`` (C-Clip) or ``"dclips"`` (D-Clips),
    the backbone alone trained as a single-clip classifier, evaluated on the central clip /
    on ``N`` clips with softmax averaging (:func:`gcf_baseline`). ``--config.adaptive=False``
    keeps GCF-Net's clip-set training and swaps the head for ``head="mean_fusion"`` (an
    ablation, not the paper's baseline).

    Training (the paper): SGD, batch 128 (read as videos: 1,280 clips), momentum 0.9,
    dampening 0.9, lr 0.1 divided when the validation loss plateaus (``schedule.name =
    "plateau"``); Kinetics-600 from scratch. UCF101: the Kinetics-600 model frozen and only
    the last layer trained, at lr 0.01: ``optimizer.freeze`` = every parameter but
    ``classifier/``, and ``--config.init_from=DIR``, a Kinetics-600 GCF workdir of the same
    backbone (its best checkpoint; the 600-class classifier is re-initialised for 101). A new
    UCF101 run without ``init_from`` stops with a line asking for it. What the paper's text
    leaves out comes from the work its training paragraph follows (Köpüklü et al., "Resource
    Efficient 3D CNNs", whose code sets torch's ReduceLROnPlateau with patience 10 and weight
    decay 1e-3): factor 0.1, patience 10 evaluations (relative threshold 1e-4, no cooldown),
    weight decay 1e-3; one evaluation per epoch, as there.

    Assumed (neither docs/design.md nor the paper fixes them): ``sparsity_weight`` 0.01 (the
    L1 term is a per-video sum over 10 gates, so it adds at most 0.1 to the loss); 100
    epochs, the first 5 a linear warm-up; training short side jittered in [128, 160],
    random 112 crop and flip; test: centred clips at short side 128, centre crop.
    """
    variant, baseline = gcf_variant(arg)
    c = base_config()
    c.task = "clip_set"
    classes = set_dataset(c, dataset)
    c.model = {
        "name": "gcf_net",
        "num_classes": classes,
        "backbone": {"name": backbone},
        "dim": 240,
        "fusion_layers": 1,
        "gating": True,
        "head": "gcf",
    }
    c.loss.sparsity_weight = GCF_SPARSITY
    c.input.sampling, c.input.num_clips, c.input.short_video = "clips", GCF_CLIPS, "loop"
    c.input.clip_length, c.input.stride = GCF_CLIP_LENGTH, 1
    c.input.crop_size, c.input.scale_range = GCF_CROP, (128, 160)
    c.eval_input = {"sampling": "clips", "num_clips": GCF_CLIPS, "num_crops": 1, "short_side": 128}
    c.batch_size, c.eval_batch_size = 128, 16
    c.num_epochs = 100
    c.optimizer.name, c.optimizer.momentum, c.optimizer.dampening = "sgd", 0.9, 0.9
    c.optimizer.weight_decay = GCF_WEIGHT_DECAY
    c.schedule.name, c.schedule.base_lr = "plateau", 0.1
    c.schedule.decay_factor, c.schedule.plateau_patience = GCF_PLATEAU_FACTOR, GCF_PLATEAU_PATIENCE
    c.schedule.warmup_steps = epochs_to_steps(dataset, 5, c.batch_size)
    c.log_every_steps, c.checkpoint_every_steps = 100, 1000
    c.eval_every_steps = epochs_to_steps(dataset, 1, c.batch_size)  # the plateau's patience counts epochs
    if dataset == "ucf101":  # fine-tune the last layer of a Kinetics-600 GCF (--config.init_from=DIR)
        c.schedule.base_lr, c.optimizer.freeze = 0.01, GCF_FREEZE
    if variant is None:
        return gcf_baseline(c, baseline) if baseline else c

    # One synthetic recipe for every dataset (synthetic_schedule / smoke: AdamW, cosine), trained from scratch.
    c.optimizer.weight_decay, c.optimizer.dampening, c.optimizer.freeze = 1e-4, 0.0, ()
    c.schedule.name = "cosine"
    c.model = {
        "name": "gcf_net",
        "num_classes": SYNTHETIC_CLASSES,
        "dim": 64 if variant == "synthetic" else 16,
        "fusion_layers": 1,
        "gating": True,
        "head": "gcf",
        "backbone": small_resnet(backbone, variant),
    }
    if variant == "synthetic":
        synthetic_clip_set(c, variant, clip_length=4, stride=2, crop=32)
        synthetic_schedule(c, steps=600, batch=8)
    else:
        synthetic_clip_set(c, variant, clip_length=2, stride=4, crop=32)
        smoke(c)
    return gcf_baseline(c, baseline) if baseline else c


# ------------------------------------------------------------------------------------- CFAD

# Anchor sizes (w, h) of the synthetic tubes at 64 x 64:
#   kmeans_anchor_sizes(wh, k=6) over the (x2 - x1 + 1, y2 - y1 + 1) of every box of the 256
#   training videos of SYNTHETIC_SIZES["tubes"] (cfjax.data.synthetic.tubes, seeds (0, 0, i)),
#   rounded to 2 decimals; the smoke variant (32 x 32 crops) halves them.
SYNTHETIC_TUBE_ANCHORS = ((12.0, 25.0), (13.0, 26.54), (14.0, 28.0), (25.0, 25.0), (26.48, 26.48), (28.0, 28.0))
CFAD_TPN_EPOCHS = 5  # full scale: epochs of TPN-only training before end-to-end (assumed)
# Longest video per dataset (data.max_video_frames: the whole-video ground truth is padded to it):
# UCF101 clips last at most 71 s (1776 frames at 25 fps); JHMDB clips have 15-40 frames; UCF Sports
# up to 144 frames as far as known here (a longer video stops the evaluation with a line naming the key).
CFAD_MAX_VIDEO_FRAMES = {"ucf101_24": 1800, "jhmdb21": 40, "ucfsports": 160}


def synthetic_tubes(c, variant: str, *, clip_length: int, crop: int) -> None:
    """Data and inputs of tube detection on the synthetic videos (16 frames of 64 x 64, 1..3
    actors whose class is their motion): the whole video resampled to ``clip_length`` frames
    (16: every frame), training short side in ``[crop, 1.25 crop]`` with random crops (no
    flip: see :func:`synthetic_classification`); evaluation at short side ``crop``, centre
    crop, against the whole video's ground truth."""
    synthetic_data(c, "tubes", variant == "smoke", **SYNTHETIC_SIZES["tubes"])
    c.input.sampling, c.input.clip_length, c.input.stride = "resample", clip_length, 1
    _train_input(c, crop)
    c.eval_input = {"sampling": "resample", "num_clips": 1, "num_crops": 1, "short_side": crop}
    c.data.max_video_frames = SYNTHETIC_SIZES["tubes"]["num_frames"]


def cfad(dataset: str, arg=None, *, clip_length: int, num_samples: int, poly_order: int) -> ml_collections.ConfigDict:
    """CFAD (Li, Lin, See et al., ECCV 2020) on ``dataset``: ``T = clip_length`` frames,
    ``N = num_samples`` 2D maps per proposal, polynomial order ``k = poly_order``.

    Full scale. Fixed by the paper (docs/design.md): T, N, k per dataset; 6 anchors per location
    from k-means of the training boxes; at most 3 tubes per video after tube NMS at 0.2;
    refinement in Eq. 7's search window of half-width sigma = 0.8 box sizes; the final tube
    through the refined key boxes and the coarse boxes at the other steps
    (``interpolation="coarse"``); the TPN is trained first, then the whole detector
    (``loss.tpn_steps``, then ``loss.cfad_stage = "end_to_end"``).

    Not the paper's backbone: CFAD uses Inception I3D's ``mixed_5b`` features pretrained on
    Kinetics-600; the zoo has no I3D yet, so these configs use Hara et al.'s 3D ResNet-50
    with its res4 features, trained from scratch (none of the import sources of
    :mod:`cfjax.interop` offers a Kinetics-pretrained 3D ResNet-50). Expect numbers well
    below the paper's until the I3D backbone exists.

    Assumed (not fixed by docs/design.md or the paper as far as known here): the key-step threshold alpha = 0.25 (a choice:
    the paper's ablation spans 0.15..0.45 and names no final value); ``anchor_sizes`` are
    ``None``: the first run reads the k-means anchors that ``experiments.prepare_data``
    writes next to the dataset, scaled to the middle of the training short-side range
    (:mod:`cfjax.train.anchors`; a missing file stops the run with the command that writes it);
    training short side jittered in [240, 300], random 224 crops and flips; test: short side
    240, centre 224 crop (the sides of 320 x 240 frames are cut, for GT and detections alike);
    SGD momentum 0.9, weight decay 5e-4 (Faster R-CNN's), batch 8 clips, lr 0.01 with 1
    warm-up epoch, x0.1 at 2/3 and 8/9 of 30 epochs; the first :data:`CFAD_TPN_EPOCHS`
    epochs train only the TPN.

    Input and evaluation (paper): the whole video is resampled to T frames (``input.sampling =
    "resample"``: segment centres in evaluation, a random frame of each segment in training)
    and the tubes are evaluated against the whole video's ground truth with the ACT protocol
    (:class:`cfjax.train.tasks.TubeDetectionTask`); ``data.max_video_frames`` bounds the
    dataset's longest video (:data:`CFAD_MAX_VIDEO_FRAMES`). JHMDB-21's result is the mean
    over its 3 splits: train one model per split (``--config.data.config=splitK``, workdirs
    ``DIR/split1..3``), then ``python -m experiments.evaluate --all_splits --workdir DIR``.

    ``:synthetic``: a small CFAD (X3D-XS trunk of width 1.0, one block per stage, res3
    features at stride 8, 64-channel heads, non-local keys pooled 2 x 2) on the synthetic
    tubes (16 frames of 64 x 64, 1..3 actors of up to 28 px: UCF101-24-like sizes), the
    dataset's N and k, k-means anchors (:data:`SYNTHETIC_TUBE_ANCHORS`), AdamW; 3000 steps
    of which the first 200 train only the TPN: about 1.3 s a step on 2 CPU cores (N = 16),
    some 65 minutes with its two evaluations (shorter runs score much lower, see README).
    ``:smoke``: 3 steps of a tiny one, the same for every dataset.
    """
    variant = check_variant(arg)
    c = base_config()
    c.task = "tubes"
    classes = set_dataset(c, dataset)
    c.model = {
        "name": "cfad",
        "num_classes": classes,
        "backbone": {"name": "resnet50"},
        "feature_stage": "res4",
        "num_samples": num_samples,
        "poly_order": poly_order,
        "max_proposals": 8,
        "max_tubes": 3,
        "tube_nms_iou": 0.2,
        "anchor_sizes": None,  # the dataset's k-means anchors, read at the first run (cfjax.train.anchors)
        "alpha": 0.25,  # a choice: the paper's ablation spans 0.15..0.45
        "sigma": 0.8,
        "interpolation": "coarse",
    }
    c.data.max_tubes = 3
    c.data.max_video_frames = CFAD_MAX_VIDEO_FRAMES[dataset]
    c.input.sampling, c.input.clip_length, c.input.stride = "resample", clip_length, 1
    c.input.crop_size, c.input.scale_range = 224, (240, 300)
    c.eval_input = {"sampling": "resample", "num_clips": 1, "num_crops": 1, "short_side": 240}
    c.batch_size, c.eval_batch_size = 8, 8
    c.num_epochs = 30
    c.optimizer.name, c.optimizer.momentum, c.optimizer.weight_decay = "sgd", 0.9, 5e-4
    c.schedule.name, c.schedule.base_lr = "multistep", 0.01
    c.schedule.boundaries, c.schedule.decay_factor = (2 / 3, 8 / 9), 0.1
    c.schedule.warmup_steps = max(1, epochs_to_steps(dataset, 1, c.batch_size))
    c.loss.cfad_stage = "end_to_end"
    c.loss.tpn_steps = epochs_to_steps(dataset, CFAD_TPN_EPOCHS, c.batch_size)
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 50, 2000, 500
    if variant is None:
        return c

    smoke_run = variant == "smoke"
    scale = 0.5 if smoke_run else 1.0
    c.model = {
        "name": "cfad",
        "num_classes": SYNTHETIC_CLASSES,
        "backbone": {
            "name": "x3d_xs",
            "width_factor": 0.5 if smoke_run else 1.0,
            "depth_factor": 1.0,
            "base_depths": (1, 1, 1, 1),
            "head_width": 8,
        },
        "feature_stage": "res3",
        "num_samples": 4 if smoke_run else num_samples,
        "poly_order": 2 if smoke_run else poly_order,
        "max_proposals": 4,  # the G = 3 GT extents in training + 1 TPN proposal
        "temporal_scales": (0.25, 0.5, 0.75, 1.0),
        "tpn_width": 8 if smoke_run else 64,
        "width": 8 if smoke_run else 64,
        "nonlocal_pool": 2,  # keys and values max-pooled 2 x 2, as in Wang et al.
        "hourglass_width": 8 if smoke_run else 32,
        "rpn_width": 8 if smoke_run else 64,
        "pre_nms_tubes": 8 if smoke_run else 32,
        "anchor_sizes": tuple((w * scale, h * scale) for w, h in SYNTHETIC_TUBE_ANCHORS),
        "max_tubes": 3,
        "tube_nms_iou": 0.2,
        "alpha": 0.25,
        "sigma": 0.8,
        "interpolation": "coarse",
    }
    c.data.max_tubes = 3
    if smoke_run:
        synthetic_tubes(c, variant, clip_length=8, crop=32)
        smoke(c)
        c.loss.tpn_steps = 1  # both phases run
    else:
        synthetic_tubes(c, variant, clip_length=16, crop=64)
        synthetic_schedule(c, steps=3000, batch=8)
        c.loss.tpn_steps = 200
    return c
