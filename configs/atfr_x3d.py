r"""ATFR: X3D + Similarity Guided Sampling on Kinetics (Fayyaz et al., CVPR 2021).

    python -m experiments.train --config configs/atfr_x3d.py:size=s,data=kinetics400[,variant=synthetic] --workdir DIR

Arguments: ``size`` xs | s | m | l | xl (default ``s``), ``data`` kinetics400 | kinetics600
(default ``kinetics400``), ``variant`` synthetic | smoke (default: the paper's full scale).
The X3D baseline without SGS: add ``--config.adaptive=False`` (``cfjax.models.non_adaptive``).

Specified by the papers (the SGS paper trains each backbone with its original recipe;
docs/design.md's X3D facts): X3D-``size`` (``x3d_<size>``); data ``cfjax_kinetics`` /
``k400`` (400 classes) or ``k600`` (600 classes); SGS after res2, before its last ReLU, with
the official defaults (linear kernel, distance to the clip mean, B = T bins, L = 8); X3D's
recipe: SGD momentum 0.9, lr 1.6 for batch 1024 (linear scaling), half-period cosine over 256
epochs with 35 linear warm-up epochs, weight decay 5e-5 (not on biases or BatchNorm), dropout
0.5 before the classifier; input: the preset's frames and crop
(``cfjax.models.x3d.X3D_PRESETS``, docs/design.md's X3D table) at the frame stride of
:data:`SAMPLING` (XS 4 frames at stride 12, S 13 at 6, M / L / XL 16 at 5), training short
side in PySlowFast's [8/7, 10/7] x crop, random crops and flips; test 10 clips x 3 crops
(left, centre, right) at short side = crop. The SGS paper reports X3D-S on Kinetics-400 at
1.9 GFLOPs without and 1.1 GFLOPs with SGS at equal accuracy (docs/design.md).

The default Kinetics build stores frames at short side 256, so L's 312 and XL's 356 crops are
upsampled from it; for the paper's resolution, prepare the data with a larger
``--short_side`` and set ``data.builder_kwargs`` to match in a copy of this file.

Assumed: on Kinetics-600, X3D's Kinetics-400 schedule unchanged (256 epochs, 35 warm-up
epochs, lr 1.6 at batch 1024); XL's training short-side range (the [8/7, 10/7] x crop rule);
4 SGS length buckets (a cfjax speed knob: the padded length after SGS is rounded up to T/4,
T/2, 3T/4 or T and masked, which changes no output); warm-up steps from the usual
training-set size in ``common.DATASETS``.

``variant=synthetic``: a small X3D (width factor 1.0, depth factor 1.0, 128-wide head) + SGS
on the synthetic motion classes, whose clips hold the object static for a random fraction of
the time (``redundancy``); ``variant=smoke``: 3 steps of the tiny X3D of
``common.SMOKE_X3D``. Both are the same for every size and dataset.
"""

from cfjax.models.x3d import X3D_PRESETS
from cfjax.train.config import base_config
from configs import common

ARGUMENTS = {
    "size": ("s", tuple(X3D_PRESETS)),
    "data": ("kinetics400", ("kinetics400", "kinetics600")),
    "variant": (None, common.VARIANTS),
}
# Per size: frame stride, training short-side jitter (PySlowFast's X3D recipes); frames and crop
# are the preset's.
SAMPLING = {
    "xs": (12, (182, 228)),
    "s": (6, (182, 228)),
    "m": (5, (256, 320)),
    "l": (5, (356, 446)),
    "xl": (5, (407, 509)),
}


def get_config(arg=None):
    a = common.parse_arg(arg, ARGUMENTS)
    preset, (stride, scale) = X3D_PRESETS[a.size], SAMPLING[a.size]
    c = base_config()
    c.task = "classification"
    classes = common.set_dataset(c, a.data)
    c.model = {
        "name": f"x3d_{a.size}",
        "num_classes": classes,
        "dropout_rate": 0.5,
        "sgs": {"stage": "res2", "buckets": 4},
    }
    c.input.sampling, c.input.clip_length, c.input.stride = "clip", preset.frames, stride
    c.input.crop_size, c.input.scale_range = preset.crop, scale
    c.eval_input = {"sampling": "multi_view", "num_clips": 10, "num_crops": 3, "short_side": preset.crop}
    c.batch_size, c.eval_batch_size = 1024, 64
    c.num_epochs = 256
    c.optimizer.name, c.optimizer.momentum, c.optimizer.weight_decay = "sgd", 0.9, 5e-5
    c.schedule.name, c.schedule.base_lr = "cosine", 1.6
    c.schedule.warmup_steps = common.epochs_to_steps(a.data, 35, c.batch_size)
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 100, 5000, 1000

    if a.variant is not None:
        c.model.update(num_classes=common.SYNTHETIC_CLASSES, dropout_rate=0.2)
    if a.variant == "synthetic":
        c.model.update(width_factor=1.0, depth_factor=1.0, head_width=128)
        c.model.sgs.buckets = 2
        common.synthetic_classification(c, a.variant, clip_length=8, stride=4, crop=32)
        common.synthetic_schedule(c, steps=1000, batch=8, eval_batch=32)
    elif a.variant == "smoke":  # one tiny X3D for every size
        c.model.update(name="x3d_s", **common.SMOKE_X3D)
        c.model.sgs.buckets = 1
        common.synthetic_classification(c, a.variant, clip_length=8, stride=2, crop=32)
        common.smoke(c)
    return c
