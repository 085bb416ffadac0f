"""Flax linen modules that own parameters and call the pure ops in ``cfjax.ops``."""

from cfjax.layers.clip_fusion import GatedClipAttention, InterClipFusion
from cfjax.layers.common import ConvBN, MaskedBatchNorm, SqueezeExcite, same_padding, swish
from cfjax.layers.fusion import FilterAlign, MultiStageFusion
from cfjax.layers.grid_pool import GridPool, GridUnpool
from cfjax.layers.nonlocal_block import NonLocal
from cfjax.layers.sgs import SimilarityGuidedSampling

__all__ = [
    "ConvBN",
    "FilterAlign",
    "GatedClipAttention",
    "GridPool",
    "GridUnpool",
    "InterClipFusion",
    "MaskedBatchNorm",
    "MultiStageFusion",
    "NonLocal",
    "SimilarityGuidedSampling",
    "SqueezeExcite",
    "same_padding",
    "swish",
]
