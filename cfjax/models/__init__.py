"""Backbones and methods (Flax linen)."""

from cfjax.models.backbone import SGSConfig
from cfjax.models.coarse_fine import CoarseFineNetwork, FineFeatureCache, FineStream, extract_fine_features
from cfjax.models.gcf_net import GCFNet
from cfjax.models.registry import build, known_models, reference_input, register
from cfjax.models.resnet3d import RESNET3D_PRESETS, ResNet3D
from cfjax.models.x3d import X3D, X3D_PRESETS, X3DBlock

__all__ = [
    "CoarseFineNetwork",
    "FineFeatureCache",
    "FineStream",
    "GCFNet",
    "RESNET3D_PRESETS",
    "ResNet3D",
    "SGSConfig",
    "X3D",
    "X3DBlock",
    "X3D_PRESETS",
    "build",
    "extract_fine_features",
    "known_models",
    "reference_input",
    "register",
]
