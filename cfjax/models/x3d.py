"""X3D (Feichtenhofer, CVPR 2020) with optional time masks, channels-last.

Sizes follow DESIGN.md "X3D": a 1x3x3 + depthwise 5x1x1 stem, four stages of
bottlenecks (1x1x1 -> depthwise 3x3x3 -> SE on every other block -> Swish ->
1x1x1), spatial stride 2 at each stage's first block, and a projected-pool head.
Parameter counts equal the PyTorchVideo models (the shortcut of a block gets a
1x1x1 conv when its shape changes and a BatchNorm only when its width changes).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfjax import ops
from cfjax.layers import ConvBN, MaskedBatchNorm, SqueezeExcite

__all__ = ["X3D", "X3DBlock", "X3D_PRESETS", "round_width"]


def round_width(width: float, multiplier: float, minimum: int = 8, divisor: int = 8) -> int:
    """Scales a width and rounds it to a multiple of ``divisor`` (never below 90 %)."""
    width *= multiplier
    rounded = max(minimum, int(width + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * width:
        rounded += divisor
    return int(rounded)


def _repeats(base: int, depth_factor: float) -> int:
    return int(math.ceil(base * depth_factor - 1e-9))  # 5 * 2.2 is 11, not 12


@dataclasses.dataclass(frozen=True)
class X3DPreset:
    width_factor: float
    depth_factor: float
    frames: int
    crop: int


# Reference inputs (T x crop) as in DESIGN.md's table.
X3D_PRESETS = {
    "xs": X3DPreset(2.0, 2.2, 4, 160),
    "s": X3DPreset(2.0, 2.2, 13, 160),
    "m": X3DPreset(2.0, 2.2, 16, 224),
    "l": X3DPreset(2.0, 5.0, 16, 312),
    "xl": X3DPreset(2.9, 5.0, 16, 356),
}


class X3DBlock(nn.Module):
    """X3D bottleneck: ``[B, T, H, W, Cin] -> [B, T, H / stride, W / stride, features]``."""

    features: int
    inner: int
    stride: int = 1
    se_hidden: int | None = None
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool, mask=None):
        spatial = (1, self.stride, self.stride)
        shortcut = x
        if x.shape[-1] != self.features or self.stride != 1:
            shortcut = nn.Conv(
                self.features, (1, 1, 1), strides=spatial, use_bias=False, dtype=self.dtype, name="shortcut_conv"
            )(x)
            if x.shape[-1] != self.features:
                shortcut = MaskedBatchNorm(dtype=self.dtype, name="shortcut_norm")(shortcut, train, mask)
        y = ConvBN(self.inner, dtype=self.dtype, name="a")(x, train, mask)
        y = ConvBN(
            self.inner, (3, 3, 3), spatial, groups=self.inner, activation=None, dtype=self.dtype, name="b"
        )(y, train, mask)
        if self.se_hidden:
            y = SqueezeExcite(self.se_hidden, dtype=self.dtype, name="se")(y, mask)
        y = jax.nn.swish(y)
        y = ConvBN(self.features, activation=None, dtype=self.dtype, name="c")(y, train, mask)
        y = jax.nn.relu(y + shortcut)
        return y if mask is None else ops.zero_padded(y, mask)


class X3D(nn.Module):
    """X3D classifier.

    ``__call__(x [B, T, H, W, 3], train, mask [B, T] | None) -> logits [B, num_classes]``.
    With ``return_features=True`` also returns a dict of stage outputs
    (``stem``, ``res2`` .. ``res5`` as ``[B, T, H', W', C]``; ``head`` as
    ``[B, head_width]``, the pooled features before dropout).
    No layer strides in time, so the mask keeps its length throughout.
    """

    num_classes: int = 400
    width_factor: float = 2.0
    depth_factor: float = 2.2
    bottleneck_factor: float = 2.25
    se_ratio: float = 1 / 16
    stem_width: int = 12
    base_depths: tuple[int, ...] = (1, 2, 5, 3)
    head_width: int = 2048
    dropout_rate: float = 0.5
    dtype: Any = None

    @classmethod
    def preset(cls, name: str, **overrides) -> "X3D":
        """``X3D.preset("m", num_classes=157)``; names: ``X3D_PRESETS``."""
        if name not in X3D_PRESETS:
            raise ValueError(f"X3D preset: expected one of {sorted(X3D_PRESETS)}, got {name!r}")
        p = X3D_PRESETS[name]
        return cls(width_factor=p.width_factor, depth_factor=p.depth_factor, **overrides)

    @nn.compact
    def __call__(self, x, train: bool = False, mask=None, return_features: bool = False):
        if x.ndim != 5:
            raise ValueError(f"x: expected video [B, T, H, W, C], got shape {x.shape}")
        if mask is not None:
            x = ops.zero_padded(x, mask)  # also checks the mask against x
        features = {}
        stem = round_width(self.stem_width, self.width_factor)
        x = nn.Conv(stem, (1, 3, 3), strides=(1, 2, 2), padding=((0, 0), (1, 1), (1, 1)), use_bias=False,
                    dtype=self.dtype, name="stem_xy")(x)
        x = ConvBN(stem, (5, 1, 1), groups=stem, dtype=self.dtype, name="stem_t")(x, train, mask)
        features["stem"] = x
        for stage, base in enumerate(self.base_depths):
            width = round_width(self.stem_width * 2**stage, self.width_factor)
            inner = int(self.bottleneck_factor * width)
            se_hidden = round_width(inner, self.se_ratio)
            for i in range(_repeats(base, self.depth_factor)):
                x = X3DBlock(
                    width,
                    inner,
                    stride=2 if i == 0 else 1,
                    se_hidden=se_hidden if i % 2 == 0 else None,
                    dtype=self.dtype,
                    name=f"res{stage + 2}_{i}",
                )(x, train, mask)
            features[f"res{stage + 2}"] = x
        x = ConvBN(int(self.bottleneck_factor * x.shape[-1]), dtype=self.dtype, name="head_conv")(x, train, mask)
        pooled = jnp.mean(x, axis=(1, 2, 3)) if mask is None else ops.masked_mean(x, mask, axis=(1, 2, 3))
        pooled = jax.nn.relu(nn.Dense(self.head_width, use_bias=False, dtype=self.dtype, name="head_proj")(pooled))
        features["head"] = pooled
        pooled = nn.Dropout(self.dropout_rate, deterministic=not train)(pooled)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(pooled)
        return (logits, features) if return_features else logits
