"""The PyTorch checkpoint families cfjax reads: one table each (see :mod:`cfjax.interop.mapping`).

- ``pytorchvideo``: ``pytorchvideo.models.create_x3d`` and its hub models ``x3d_xs``,
  ``x3d_s``, ``x3d_m``, ``x3d_l`` (``.pyth`` files wrap the state dict in ``model_state``).
- ``torchvision``: ``torchvision.models.video.r2plus1d_18``, ``r3d_18`` and ``mc3_18``.
- ``coarse_fine``: the official Coarse-Fine Networks code: ``coarse_fineFEAT_charades_*.pt``
  (the coarse model on precomputed fine features) -> ``coarse_fine``;
  ``fine_charades_*.pt`` and ``x3d_multigrid_kinetics_fb_pretrained.pt`` -> ``x3d_m``
  (also the fine stream's weights). Its BatchNorms are ``SubBatchNorm3d``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from cfjax.interop.mapping import Source

__all__ = ["SOURCES", "kinetics400_class_names"]

X3D_MODELS = ("x3d_xs", "x3d_s", "x3d_m", "x3d_l")


@cache
def kinetics400_class_names() -> tuple[str, ...]:
    """The 400 Kinetics-400 class names in label order (alphabetical)."""
    names = (Path(__file__).parent / "kinetics400_classes.txt").read_text().splitlines()
    return tuple(n for n in names if n)


def _kinetics400(num_classes: int):
    return list(kinetics400_class_names()) if num_classes == 400 else None


def _video(module, frames: int = 4, size: int = 32):
    return (np.zeros((1, frames, size, size, 3), np.float32),)


KINETICS_MEAN, KINETICS_STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
# pytorchvideo's published evaluation transforms (X3D-L: the X3D paper's 16 x 5 at 312).
PYTORCHVIDEO_INPUTS = {
    name: {
        "frames": frames,
        "stride": stride,
        "short_side": side,
        "crop": side,
        "mean": KINETICS_MEAN,
        "std": KINETICS_STD,
    }
    for name, frames, stride, side in (
        ("x3d_xs", 4, 12, 182),
        ("x3d_s", 13, 6, 182),
        ("x3d_m", 16, 5, 256),
        ("x3d_l", 16, 5, 312),
    )
}
# torchvision's video classification reference: 16 frames at 15 fps, resize to 128 x 171, crop 112.
TORCHVISION_MODELS = ("r2plus1d_18", "r3d_18", "mc3_18")
TORCHVISION_INPUTS = {
    name: {
        "frames": 16,
        "stride": 2,
        "short_side": 128,
        "crop": 112,
        "mean": (0.43216, 0.394666, 0.37645),
        "std": (0.22803, 0.22145, 0.216989),
    }
    for name in TORCHVISION_MODELS
}

# res{s}_{i} is X3D stage s (2..5), block i; pytorchvideo numbers the stages blocks.1 .. blocks.4.
_PTV_BLOCK = r"res(?P<s>\d)_(?P<i>\d+)"
_PTV = "blocks.{s-1}.res_blocks.{i}"
PYTORCHVIDEO = Source(
    name="pytorchvideo",
    models=X3D_MODELS,
    rules=(
        ("stem_xy", "blocks.0.conv.conv_t"),  # pytorchvideo calls the 1x3x3 conv conv_t
        ("stem_t/conv", "blocks.0.conv.conv_xy"),  # and the depthwise 5x1x1 one conv_xy
        ("stem_t/norm/bn", "blocks.0.norm"),
        (rf"{_PTV_BLOCK}/shortcut_conv", f"{_PTV}.branch1_conv"),
        (rf"{_PTV_BLOCK}/shortcut_norm/bn", f"{_PTV}.branch1_norm"),
        (rf"{_PTV_BLOCK}/(?P<c>[abc])/conv", f"{_PTV}.branch2.conv_{{c}}"),
        (rf"{_PTV_BLOCK}/b/norm/bn", f"{_PTV}.branch2.norm_b.0"),  # norm_b = Sequential(BN, SE or Identity)
        (rf"{_PTV_BLOCK}/(?P<c>[ac])/norm/bn", f"{_PTV}.branch2.norm_{{c}}"),
        (rf"{_PTV_BLOCK}/se/fc1", f"{_PTV}.branch2.norm_b.1.block.0"),
        (rf"{_PTV_BLOCK}/se/fc2", f"{_PTV}.branch2.norm_b.1.block.2"),
        ("head_conv/conv", "blocks.5.pool.pre_conv"),
        ("head_conv/norm/bn", "blocks.5.pool.pre_norm"),
        ("head_proj", "blocks.5.pool.post_conv"),
        ("classifier", "blocks.5.proj"),
    ),
    classifier="blocks.5.proj.weight",
    example_args=_video,
    class_names=_kinetics400,
    input_format=PYTORCHVIDEO_INPUTS,
    description="pytorchvideo create_x3d / hub x3d_xs, x3d_s, x3d_m, x3d_l (.pyth)",
)

# torchvision's VideoResNet: layer{s-1}.{i}; a block's convs are Sequential(conv, BN[, ReLU]). In R(2+1)D the
# conv is Conv2Plus1D = Sequential(spatial 1x3x3 conv, BN, ReLU, temporal 3x1x1 conv); r3d / mc3 have one
# Conv3d there (3x3x3, or mc3's 1x3x3 in layer2..4) and a BasicStem Sequential(3x7x7 conv, BN, ReLU).
_TV_BLOCK = r"res(?P<s>\d)_(?P<i>\d+)"
_TV = "layer{s-1}.{i}"
TORCHVISION = Source(
    name="torchvision",
    models=TORCHVISION_MODELS,
    rules=(
        ("stem_conv/conv", "stem.0"),
        ("stem_conv/norm/bn", "stem.1"),
        (rf"{_TV_BLOCK}/a/conv", f"{_TV}.conv1.0"),
        (rf"{_TV_BLOCK}/a/norm/bn", f"{_TV}.conv1.1"),
        (rf"{_TV_BLOCK}/b/conv", f"{_TV}.conv2.0"),
        (rf"{_TV_BLOCK}/b/norm/bn", f"{_TV}.conv2.1"),
        ("stem_xy/conv", "stem.0"),
        ("stem_xy/norm/bn", "stem.1"),
        ("stem_t/conv", "stem.3"),
        ("stem_t/norm/bn", "stem.4"),
        (rf"{_TV_BLOCK}/a_xy/conv", f"{_TV}.conv1.0.0"),
        (rf"{_TV_BLOCK}/a_xy/norm/bn", f"{_TV}.conv1.0.1"),
        (rf"{_TV_BLOCK}/a_t/conv", f"{_TV}.conv1.0.3"),
        (rf"{_TV_BLOCK}/a_t/norm/bn", f"{_TV}.conv1.1"),
        (rf"{_TV_BLOCK}/b_xy/conv", f"{_TV}.conv2.0.0"),
        (rf"{_TV_BLOCK}/b_xy/norm/bn", f"{_TV}.conv2.0.1"),
        (rf"{_TV_BLOCK}/b_t/conv", f"{_TV}.conv2.0.3"),
        (rf"{_TV_BLOCK}/b_t/norm/bn", f"{_TV}.conv2.1"),
        (rf"{_TV_BLOCK}/shortcut/conv", f"{_TV}.downsample.0"),
        (rf"{_TV_BLOCK}/shortcut/norm/bn", f"{_TV}.downsample.1"),
        ("classifier", "fc"),
    ),
    classifier="fc.weight",
    example_args=_video,
    class_names=_kinetics400,
    input_format=TORCHVISION_INPUTS,
    description="torchvision.models.video r2plus1d_18, r3d_18, mc3_18",
)


def _coarse_fine_args(module):
    """Inputs of ``module.init``: a clip for X3D; clip, fine features and mask for Coarse-Fine."""
    if not hasattr(module, "fine_mode"):
        return _video(module)
    from cfjax.models.x3d import X3D, x3d_widths

    widths = x3d_widths(X3D(width_factor=module.width_factor, depth_factor=module.depth_factor, parent=None))
    levels = (*module.levels, "conv5")
    fine = {level: np.zeros((1, 4, 2, 2, width), np.float32) for level, width in zip(levels, widths)}
    return np.zeros((1, 2 * module.reduction, 32, 32, 3), np.float32), fine, np.ones((1, 4), bool)


# The official code's X3D (x3d_coarse.py / x3d_fine.py): layer{s-1}.{i}; every BatchNorm a SubBatchNorm3d.
_CF_BLOCK = r"res(?P<s>\d)_(?P<i>\d+)"
_CF = "layer{s-1}.{i}"
_FILTER = {
    "attention_hidden": "at1",
    "attention_out": "at2",
    "bias_hidden": "fc1",
    "bias_out": "fc2",
    "scale_hidden": "fc3",
    "scale_out": "fc4",
}  # a fusion filter ("RewightLayer") rw2 .. rw6
COARSE_FINE = Source(
    name="coarse_fine",
    models=("coarse_fine", "x3d_m"),
    rules=(
        ("stem_xy", "conv1_s"),
        ("stem_t/conv", "conv1_t"),
        ("stem_t/norm/bn", "bn1"),
        (rf"{_CF_BLOCK}/a/conv", f"{_CF}.conv1"),
        (rf"{_CF_BLOCK}/a/norm/bn", f"{_CF}.bn1"),
        (rf"{_CF_BLOCK}/b/conv", f"{_CF}.conv2"),
        (rf"{_CF_BLOCK}/b/norm/bn", f"{_CF}.bn2"),
        (rf"{_CF_BLOCK}/c/conv", f"{_CF}.conv3"),
        (rf"{_CF_BLOCK}/c/norm/bn", f"{_CF}.bn3"),
        (rf"{_CF_BLOCK}/se/(?P<fc>fc[12])", f"{_CF}.{{fc}}"),
        (rf"{_CF_BLOCK}/shortcut_conv", f"{_CF}.downsample.0"),
        (rf"{_CF_BLOCK}/shortcut_norm/bn", f"{_CF}.downsample.1"),
        ("head_conv/conv", "conv5"),
        ("head_conv/norm/bn", "bn5"),
        ("head_proj", "fc1"),
        ("classifier", "fc2"),
        # Coarse-Fine: Grid Pool ("pool_1"), the fusion filters rw2..rw6 and the mixing layers mix2..mix5
        (r"grid_pool/score_(?P<k>\d)/conv", "pool_1.conv{k+1}"),
        (r"grid_pool/score_(?P<k>\d)/norm/bn", "pool_1.bn{k+1}"),
        ("grid_pool/score_out", "pool_1.conv3"),
        *((rf"fusion/filters_res(?P<level>\d)/{ours}", f"rw{{level}}.{theirs}") for ours, theirs in _FILTER.items()),
        *((f"fusion/gate_filter/{ours}", f"rw6.{theirs}") for ours, theirs in _FILTER.items()),
        (r"fusion/mix_bias_(?P<d>\d)", "mix{d+2}.conv_at"),
        (r"fusion/mix_scale_(?P<d>\d)", "mix{d+2}.conv_at2"),
    ),
    classifier="fc2.weight",
    example_args=_coarse_fine_args,
    batch_norm="sub_batch_norm",
    # coarse_fineFEAT checkpoints run on precomputed fine features; the official Gaussian alignment
    # normalises over padded fine steps too (cfjax's default "valid" does not: see MultiStageFusion).
    model_fields={
        "coarse_fine": {"fine_mode": "precomputed", "normalize_over": "all"},
        "x3d_m": {"shortcut_norm": "always"},
    },
    class_names=_kinetics400,
    description="official Coarse-Fine Networks: coarse_fineFEAT_charades_*.pt, fine_charades_*.pt, "
    "x3d_multigrid_kinetics_fb_pretrained.pt",
)

SOURCES: dict[str, Source] = {s.name: s for s in (PYTORCHVIDEO, TORCHVISION, COARSE_FINE)}
