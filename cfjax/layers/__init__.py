"""Flax linen modules that own parameters and call the pure ops in ``cfjax.ops``."""

from cfjax.layers.common import ConvBN, MaskedBatchNorm, SqueezeExcite, same_padding, swish
from cfjax.layers.nonlocal_block import NonLocal
from cfjax.layers.sgs import SimilarityGuidedSampling

__all__ = [
    "ConvBN",
    "MaskedBatchNorm",
    "NonLocal",
    "SimilarityGuidedSampling",
    "SqueezeExcite",
    "same_padding",
    "swish",
]
