"""Backbones and methods (Flax linen)."""

from cfjax.models.x3d import X3D, X3D_PRESETS, X3DBlock

__all__ = ["X3D", "X3D_PRESETS", "X3DBlock"]
