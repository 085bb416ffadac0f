"""The PyTorch checkpoint families cfjax reads: one table each (see :mod:`cfjax.interop.mapping`).

- ``pytorchvideo``: ``pytorchvideo.models.create_x3d`` and its hub models ``x3d_xs``,
  ``x3d_s``, ``x3d_m``, ``x3d_l`` (``.pyth`` files wrap the state dict in ``model_state``).
- ``torchvision``: ``torchvision.models.video.r2plus1d_18``.
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
    name: {"frames": frames, "stride": stride, "short_side": side, "crop": side, "mean": KINETICS_MEAN,
           "std": KINETICS_STD}
    for name, frames, stride, side in (("x3d_xs", 4, 12, 182), ("x3d_s", 13, 6, 182), ("x3d_m", 16, 5, 256),
                                       ("x3d_l", 16, 5, 312))
}
# torchvision's video classification reference: 16 frames at 15 fps, resize to 128 x 171, crop 112.
TORCHVISION_INPUTS = {
    "r2plus1d_18": {"frames": 16, "stride": 2, "short_side": 128, "crop": 112,
                    "mean": (0.43216, 0.394666, 0.37645), "std": (0.22803, 0.22145, 0.216989)},
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

# torchvision's VideoResNet: layer{s-1}.{i}; R(2+1)D convs are Sequential(Conv2Plus1D, BN[, ReLU]) and
# Conv2Plus1D = Sequential(spatial 1x3x3 conv, BN, ReLU, temporal 3x1x1 conv).
_TV_BLOCK = r"res(?P<s>\d)_(?P<i>\d+)"
_TV = "layer{s-1}.{i}"
TORCHVISION = Source(
    name="torchvision",
    models=("r2plus1d_18",),
    rules=(
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
    description="torchvision.models.video r2plus1d_18",
)

SOURCES: dict[str, Source] = {s.name: s for s in (PYTORCHVIDEO, TORCHVISION)}
