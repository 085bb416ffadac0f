"""Flax linen modules that own parameters and call the pure ops in ``cfjax.ops``."""

from cfjax.layers.common import ConvBN, MaskedBatchNorm, SqueezeExcite, same_padding

__all__ = ["ConvBN", "MaskedBatchNorm", "SqueezeExcite", "same_padding"]
