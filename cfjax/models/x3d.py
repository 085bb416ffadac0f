"""X3D (Feichtenhofer, CVPR 2020) with optional time masks, channels-last.

Sizes follow docs/design.md, section 3.5: a 1x3x3 + depthwise 5x1x1 stem, four stages of
bottlenecks (1x1x1 -> depthwise 3x3x3 -> SE on every other block -> Swish ->
1x1x1), spatial stride 2 at each stage's first block, and a projected-pool head.
Parameter counts equal the PyTorchVideo models (the shortcut of a block gets a
1x1x1 conv when its shape changes and a BatchNorm only when its width changes).
``shortcut_norm="always"`` gives every projected shortcut a BatchNorm, as the
X3D of the official Coarse-Fine Networks code (``x3d_coarse.py``,
``x3d_fine.py``) has: its ``layer1.0.downsample`` is conv + BN although it keeps
24 channels. Only ``res2_0`` differs (the stem and res2 have the same width):
a BatchNorm more, 48 parameters for X3D-S/M.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
from jax.typing import DTypeLike

from cfjax import ops
from cfjax.layers import ConvBN, MaskedBatchNorm, SqueezeExcite
from cfjax.models.backbone import SGSConfig, Stage, pool_time_space, run_backbone

__all__ = ["SHORTCUT_NORMS", "X3D", "X3D_PRESETS", "X3DBlock", "round_width", "x3d_trunk", "x3d_widths"]

# When a projected shortcut (1x1x1 conv) gets a BatchNorm: PyTorchVideo's X3D, or the official Coarse-Fine code's.
SHORTCUT_NORMS = ("width_change", "always")


def round_width(width: float, multiplier: float, minimum: int = 8, divisor: int = 8) -> int:
    """Scales a width and rounds it to a multiple of ``divisor`` (never below 90 %)."""
    width *= multiplier
    rounded = max(minimum, int(width + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * width:
        rounded += divisor
    return int(rounded)


def _repeats(base: int, depth_factor: float) -> int:
    return math.ceil(base * depth_factor - 1e-9)  # 5 * 2.2 is 11, not 12


@dataclasses.dataclass(frozen=True)
class X3DPreset:
    width_factor: float
    depth_factor: float
    frames: int
    crop: int


# Reference inputs (T x crop) as in docs/design.md, section 3.7.
X3D_PRESETS = {
    "xs": X3DPreset(2.0, 2.2, 4, 160),
    "s": X3DPreset(2.0, 2.2, 13, 160),
    "m": X3DPreset(2.0, 2.2, 16, 224),
    "l": X3DPreset(2.0, 5.0, 16, 312),
    "xl": X3DPreset(2.9, 5.0, 16, 356),
}


class X3DBlock(nn.Module):
    """X3D bottleneck: ``[B, T, H, W, Cin] -> [B, T, H / stride, W / stride, features]``.

    The shortcut is projected (1x1x1 conv ``shortcut_conv``) when the shape
    changes; ``shortcut_norm`` says when a BatchNorm follows it.

    Attributes:
      features: output channels.
      inner: channels of the depthwise 3x3x3 conv in the middle.
      stride: spatial stride of the middle conv (and of the projected shortcut).
      se_hidden: hidden width of the squeeze-excite after the middle conv; ``None``: no SE.
      shortcut_norm: ``"width_change"`` (PyTorchVideo) or ``"always"`` (official Coarse-Fine Networks X3D).
      dtype: computation dtype, e.g. ``jnp.bfloat16``; ``None`` promotes the inputs' and the float32 parameters' dtypes.
    """

    features: int
    inner: int
    stride: int = 1
    se_hidden: int | None = None
    shortcut_norm: str = "width_change"
    dtype: DTypeLike | None = None

    @nn.compact
    def __call__(self, x, train: bool, mask=None, activate: bool = True):
        """``activate=False`` returns the residual sum before the final ReLU."""
        if self.shortcut_norm not in SHORTCUT_NORMS:
            raise ValueError(f"shortcut_norm: expected one of {SHORTCUT_NORMS}, got {self.shortcut_norm!r}")
        spatial = (1, self.stride, self.stride)
        shortcut = x
        if x.shape[-1] != self.features or self.stride != 1:
            shortcut = nn.Conv(
                self.features, (1, 1, 1), strides=spatial, use_bias=False, dtype=self.dtype, name="shortcut_conv"
            )(x)
            if x.shape[-1] != self.features or self.shortcut_norm == "always":
                shortcut = MaskedBatchNorm(dtype=self.dtype, name="shortcut_norm")(shortcut, train, mask)
        y = ConvBN(self.inner, dtype=self.dtype, name="a")(x, train, mask)
        y = ConvBN(
            self.inner, (3, 3, 3), spatial, feature_group_count=self.inner, activation=None, dtype=self.dtype, name="b"
        )(y, train, mask)
        if self.se_hidden:
            y = SqueezeExcite(self.se_hidden, dtype=self.dtype, name="se")(y, mask)
        y = jax.nn.swish(y)
        y = ConvBN(self.features, activation=None, dtype=self.dtype, name="c")(y, train, mask)
        y = y + shortcut
        if activate:
            y = jax.nn.relu(y)
        return y if mask is None else ops.zero_padded(y, mask)


class X3D(nn.Module):
    """X3D classifier, optionally with SGS (ATFR).

    ``__call__(x [B, T, H, W, 3], train, mask [B, T] | None) -> logits [B, num_classes]``.
    With ``return_features=True`` also returns the features dict of
    :func:`~cfjax.models.backbone.run_backbone` (``stem``, ``res2`` .. ``res5``,
    ``head`` = pooled features before dropout, masks, ``active_bins`` with SGS).
    No layer strides in time, so a mask keeps its length throughout.

    Attributes:
      num_classes: classifier outputs; 0 makes a feature extractor (no dropout or
        classifier; the "logits" are the pooled ``head_width`` features).
      width_factor: multiplies the stem and stage widths (``X3D_PRESETS``: 2.0, 2.9 for XL).
      depth_factor: multiplies ``base_depths``, rounded up (2.2 for XS/S/M, 5.0 for L/XL).
      bottleneck_factor: a block's inner width over its output width; also conv5's
        width over res5's.
      se_ratio: squeeze-excite hidden width over a block's inner width (rounded to a multiple of 8; SE on
        every other block).
      stem_width: stem channels before ``width_factor`` (12: 24 channels at 2.0).
      base_depths: blocks of ``res2`` .. ``res5`` before ``depth_factor``.
      head_width: width of ``head_proj``, the pooled features the classifier sees.
      dropout_rate: dropout before the classifier.
      shortcut_norm: ``"width_change"`` (PyTorchVideo, the default) or ``"always"``
        (the official Coarse-Fine X3D; see :class:`X3DBlock`).
      sgs: ``None``, or where and how SGS runs: an :class:`~cfjax.models.backbone.SGSConfig`
        or a mapping of its fields.
      dtype: computation dtype, e.g. ``jnp.bfloat16``; ``None`` promotes the inputs' and the float32 parameters' dtypes.
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
    shortcut_norm: str = "width_change"
    sgs: SGSConfig | Mapping[str, Any] | None = None
    dtype: DTypeLike | None = None

    @classmethod
    def preset(cls, name: str, **overrides) -> X3D:
        """``X3D.preset("m", num_classes=157)``; names: ``X3D_PRESETS``."""
        if name not in X3D_PRESETS:
            raise ValueError(f"X3D preset: expected one of {sorted(X3D_PRESETS)}, got {name!r}")
        p = X3D_PRESETS[name]
        return cls(**{"width_factor": p.width_factor, "depth_factor": p.depth_factor, **overrides})

    @property
    def cam_layer(self) -> str:
        """The last conv features (X3D's ``conv5``), the default layer of Grad-CAM."""
        return "head_conv"

    @nn.compact
    def __call__(self, x, train: bool = False, mask=None, return_features: bool = False):
        stem, stages, conv5 = x3d_trunk(self, train)

        def head(x, mask):
            x = conv5(x, mask)
            pooled = jax.nn.relu(
                nn.Dense(self.head_width, use_bias=False, dtype=self.dtype, name="head_proj")(pool_time_space(x, mask))
            )
            if not self.num_classes:
                return pooled, pooled
            dropped = nn.Dropout(self.dropout_rate, deterministic=not train, name="head_dropout")(pooled)
            return nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(dropped), pooled

        logits, features = run_backbone(
            self, x, mask, train, stem=stem, stages=stages, head=head, sgs=SGSConfig.make(self.sgs), dtype=self.dtype
        )
        return (logits, features) if return_features else logits


def x3d_trunk(spec, train: bool):
    """X3D's layers up to ``conv5``, created in the calling module's compact method.

    Args:
      spec: anything with :class:`X3D`'s size fields (``width_factor``,
        ``depth_factor``, ``bottleneck_factor``, ``se_ratio``, ``stem_width``,
        ``base_depths``, ``shortcut_norm``, ``dtype``), e.g. an ``X3D``.
      train: BatchNorm mode.

    Returns:
      ``(stem, stages, conv5)``: ``stem(x, mask) -> (x, mask)``, the four
      :class:`~cfjax.models.backbone.Stage` ``res2`` .. ``res5``, and
      ``conv5(x, mask) -> x`` (1x1x1 conv to ``bottleneck_factor`` x width, BN,
      ReLU). Parameter names are X3D's (``stem_xy``, ``res2_0``, ..., ``head_conv``),
      so X3D weights load into any module built from them.
    """
    dtype = spec.dtype
    stem_width = round_width(spec.stem_width, spec.width_factor)

    def stem(x, mask):
        x = nn.Conv(
            stem_width,
            (1, 3, 3),
            strides=(1, 2, 2),
            padding=((0, 0), (1, 1), (1, 1)),
            use_bias=False,
            dtype=dtype,
            name="stem_xy",
        )(x)
        x = ConvBN(stem_width, (5, 1, 1), feature_group_count=stem_width, dtype=dtype, name="stem_t")(x, train, mask)
        return x, mask

    def block(name, **kw):
        def run(x, mask, activate):
            return X3DBlock(dtype=dtype, name=name, **kw)(x, train, mask, activate), mask

        return run

    stages = []
    for stage, base in enumerate(spec.base_depths):
        width = round_width(spec.stem_width * 2**stage, spec.width_factor)
        inner = int(spec.bottleneck_factor * width)
        se_hidden = round_width(inner, spec.se_ratio)
        blocks = tuple(
            block(
                f"res{stage + 2}_{i}",
                features=width,
                inner=inner,
                stride=2 if i == 0 else 1,
                se_hidden=se_hidden if i % 2 == 0 else None,
                shortcut_norm=spec.shortcut_norm,
            )
            for i in range(_repeats(base, spec.depth_factor))
        )
        stages.append(Stage(f"res{stage + 2}", blocks))

    def conv5(x, mask):
        width = int(spec.bottleneck_factor * x.shape[-1])
        return ConvBN(width, dtype=dtype, name="head_conv")(x, train, mask)

    return stem, stages, conv5


def x3d_widths(spec) -> tuple[int, ...]:
    """Output widths of ``res2`` .. ``res5`` and ``conv5`` (24, 48, 96, 192, 432 for X3D-S/M)."""
    widths = [round_width(spec.stem_width * 2**s, spec.width_factor) for s in range(len(spec.base_depths))]
    return (*widths, int(spec.bottleneck_factor * widths[-1]))
