"""Backbones and methods (Flax linen)."""

from cfjax.models.backbone import SGSConfig
from cfjax.models.registry import build, known_models, reference_input, register
from cfjax.models.resnet3d import RESNET3D_PRESETS, ResNet3D
from cfjax.models.x3d import X3D, X3D_PRESETS, X3DBlock

__all__ = [
    "RESNET3D_PRESETS",
    "ResNet3D",
    "SGSConfig",
    "X3D",
    "X3DBlock",
    "X3D_PRESETS",
    "build",
    "known_models",
    "reference_input",
    "register",
]
