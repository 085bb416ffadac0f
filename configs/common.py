"""What several experiment configs share: ``from configs import common``.

A config file is one method on one family of datasets, ``get_config(arg)``, where ``arg``
is comma-separated ``key=value`` pairs (``size=m,data=kinetics600,variant=synthetic``)
read by :func:`parse_arg` against the file's ``ARGUMENTS`` (key -> default, allowed
values). Every file takes ``variant``: none (the paper's full scale), ``synthetic`` (the
same model family, small, on the matching synthetic suite: minutes on a CPU) or
``smoke`` (3 steps of batch 8 on 8 + 4 examples: proves the pipeline runs). This module
holds

- the datasets (:data:`DATASETS`: builder, config, classes, training-set size) and
  :func:`set_dataset` / :func:`epochs_to_steps`;
- the argument parser (:func:`parse_arg`);
- the synthetic and smoke pieces used by several files: :data:`SYNTHETIC_SIZES` (one
  dataset per task kind, generated once per data directory; every smoke run of a kind
  shares one 8 + 4 example dataset), :func:`synthetic_schedule`, :func:`smoke`,
  :func:`synthetic_classification`, the small ResNets (:func:`small_resnet`) and the tiny
  X3D (:data:`SMOKE_X3D`).

Smoke runs use a global batch of 8: the test suite simulates 8 CPU devices and the batch is
split over them (any batch works on one device).
"""

from __future__ import annotations

import types

import ml_collections

from cfjax.train.config import synthetic_data

__all__ = [
    "DATASETS",
    "REQUIRED",
    "SMOKE_X3D",
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_SIZES",
    "VARIANTS",
    "epochs_to_steps",
    "parse_arg",
    "set_dataset",
    "small_resnet",
    "smoke",
    "synthetic_classification",
    "synthetic_crop",
    "synthetic_schedule",
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

# ``variant`` of every config (its default, None, is the paper's full scale).
VARIANTS = ("synthetic", "smoke")
# The default of an ARGUMENTS key that must be given.
REQUIRED = "<required>"

# Synthetic dataset sizes per kind (shared by every config of that kind).
SYNTHETIC_SIZES = {
    "classification": {"num_frames": 32, "num_train": 512, "num_test": 128},
    "temporal_detection": {"num_train": 256, "num_test": 64},  # 96 frames (the builder's default)
    "clip_set": {"num_train": 384, "num_test": 96},  # 8 clips x 8 frames (the builder's default)
    "tubes": {"num_frames": 16, "num_train": 256, "num_test": 64, "object_size": 28},  # 64 x 64, 1..3 actors
}
SYNTHETIC_CLASSES = 8
SMOKE_BATCH = 8

# The tiny X3D trunk of the smoke runs (on the x3d_s preset: its width and depth are replaced):
# stem and res2..res5 of one block each, 16-wide head (tests/models/test_atfr.py builds the same).
SMOKE_X3D = {"width_factor": 0.5, "depth_factor": 1.0, "base_depths": (1, 1, 1, 1), "head_width": 16}


def parse_arg(arg: str | None, arguments: dict[str, tuple]) -> types.SimpleNamespace:
    """``get_config``'s ``arg``, comma-separated ``key=value`` pairs, checked against ``arguments``.

    ``arguments``: key -> ``(default, allowed values)``, the default :data:`REQUIRED` for a key
    that must be given. Returns every key's value (given or default). A part without ``=``,
    an unknown or repeated key, a value not allowed or a missing required key raises a
    ``ValueError`` of one line.
    """
    keys = ", ".join(sorted(arguments))
    values: dict[str, str] = {}
    for part in (arg or "").split(","):
        if not part.strip():
            continue
        key, equals, value = (s.strip() for s in part.partition("="))
        if not equals:  # a bare value: suggest the key that takes it
            hint = next((f"; did you mean {k}={key}?" for k, (_, allowed) in arguments.items() if key in allowed), "")
            raise ValueError(f"config argument: expected key=value (keys: {keys}), got {key!r}{hint}")
        if key not in arguments:
            raise ValueError(f"config argument: unknown key {key!r}; expected one of {keys}")
        if key in values:
            raise ValueError(f"config argument: key {key!r} given twice ({values[key]!r} and {value!r})")
        allowed = arguments[key][1]
        if value not in allowed:
            raise ValueError(f"config argument: {key}={value!r}; expected one of {', '.join(allowed)}")
        values[key] = value
    for key, (default, allowed) in arguments.items():
        if key not in values and default == REQUIRED:
            raise ValueError(f"config argument: missing {key}=...; expected one of {', '.join(allowed)}")
    return types.SimpleNamespace(**{key: values.get(key, default) for key, (default, _) in arguments.items()})


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


def synthetic_crop(c: ml_collections.ConfigDict, crop: int) -> None:
    """Synthetic training input: short side in ``[crop, 1.25 crop]``, random ``crop`` crops."""
    c.input.crop_size, c.input.scale_range = crop, (crop, crop + crop // 4)


def synthetic_classification(c, variant: str, *, clip_length: int, stride: int, crop: int) -> None:
    """Data and inputs of classification on the synthetic motion classes (``redundancy``:
    static stretches). Training: one clip, :func:`synthetic_crop` (no flip, for every synthetic
    task: it would swap left / right and the two circle directions); evaluation: the centred
    clip at short side ``crop``, or for ``smoke`` 2 clips x 3 crops (the full-scale multi-view
    path)."""
    synthetic_data(c, "classification", variant == "smoke", **SYNTHETIC_SIZES["classification"])
    c.input.sampling, c.input.clip_length, c.input.stride = "clip", clip_length, stride
    synthetic_crop(c, crop)
    if variant == "smoke":
        c.eval_input = {"sampling": "multi_view", "num_clips": 2, "num_crops": 3, "short_side": crop}
    else:
        c.eval_input = {"sampling": "clip", "num_clips": 1, "num_crops": 1, "short_side": crop}


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
