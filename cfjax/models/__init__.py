"""Backbones and methods (Flax linen)."""

from cfjax.models.backbone import SGSConfig
from cfjax.models.cfad import CFAD
from cfjax.models.cfad_anchors import kmeans_anchor_sizes
from cfjax.models.coarse_fine import CoarseFineNetwork, FineFeatureCache, FineStream, extract_fine_features
from cfjax.models.gcf_net import GCFNet
from cfjax.models.registry import build, known_models, non_adaptive, reference_input, register, returns_features
from cfjax.models.resnet3d import RESNET3D_PRESETS, ResNet3D
from cfjax.models.x3d import X3D, X3D_PRESETS, X3DBlock

__all__ = [
    "CFAD",
    "RESNET3D_PRESETS",
    "X3D",
    "X3D_PRESETS",
    "CoarseFineNetwork",
    "FineFeatureCache",
    "FineStream",
    "GCFNet",
    "ResNet3D",
    "SGSConfig",
    "X3DBlock",
    "build",
    "extract_fine_features",
    "kmeans_anchor_sizes",
    "known_models",
    "non_adaptive",
    "reference_input",
    "register",
    "returns_features",
]
