"""3D ResNets, ResNeXt and R(2+1)D, with optional SGS (ATFR), channels-last.

One module, :class:`ResNet3D`, covers the zoo through :data:`RESNET3D_PRESETS`:

- ``resnet18`` / ``resnet50`` / ``resnet101``: 3D ResNets of Hara et al. (CVPR 2018):
  7x7x7 stem (stride 1,2,2), 3x3x3 max pool (stride 2), basic or bottleneck
  blocks, stride 2 in time and space at the first block of res3..res5,
  projection shortcuts (1x1x1 conv + BN) when the shape changes.
- ``resnext101``: bottlenecks with a 32-group 3x3x3 middle conv, inner widths
  128..1024, outputs 256..2048 (the backbone of GCF-Net).
- ``r2plus1d_18`` / ``r2plus1d_50``: every 3x3x3 conv factorised into 1x3x3 ->
  BN -> ReLU -> 3x1x1 with ``M = 27 Cin Cout / (9 Cin + 3 Cout)`` middle channels
  (Tran et al., CVPR 2018); stem 1x7x7 to 45 channels then 3x1x1 to 64.
- ``r3d_18`` / ``mc3_18``: torchvision's video ResNets (Tran et al., CVPR 2018): a 3x7x7 stem
  (stride 1,2,2) without max pool, basic blocks; ``r3d_18`` is 3x3x3 throughout (stride 2 in
  time and space at res3..res5), ``mc3_18`` ("MC3") keeps 3x3x3 in res2 only, 1x3x3 convs and
  no temporal stride in res3..res5.
- ``sgs_resnet18``: the modified 3DResNet-18 of the SGS paper (Table A.1):
  conv1 5x7x7 to 8 channels, 1x3x3 max pool, bottlenecks with temporal kernels
  only in res2 and res5, no temporal stride anywhere.

Every block honours a time mask: temporal strides downsample it
(``ops.downsample_mask``), padded steps are re-zeroed after every block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
from jax.typing import DTypeLike

from cfjax import ops
from cfjax.layers import ConvBN
from cfjax.models.backbone import SGSConfig, Stage, pool_time_space, run_backbone

__all__ = ["RESNET3D_PRESETS", "ResNet3D", "ResNetBlock", "r2plus1d_middle"]


def r2plus1d_middle(cin: int, cout: int) -> int:
    """Middle width of a factorised 3x3x3 conv with the parameters of the full one."""
    return (cin * cout * 27) // (cin * 9 + 3 * cout)


class ResNetBlock(nn.Module):
    """Basic (two 3x3x3 convs) or bottleneck (1x1x1 -> kxkxk -> 1x1x1) residual block.

    ``__call__(x [B, T, H, W, Cin], train, mask, activate) -> [B, T / st, H / s, W / s, features]``;
    ``activate=False`` returns the residual sum before the final ReLU. The
    returned mask is ``ops.downsample_mask(mask, temporal_stride)``.

    Attributes:
      features: output channels.
      inner: bottleneck width; unused by basic blocks.
      bottleneck: 1x1x1 -> kxkxk -> 1x1x1 (else two kxkxk convs).
      factorized: every kxkxk conv as (2+1)D, 1x3x3 -> BN -> ReLU -> kx1x1.
      temporal_stride: time stride of the block (and its mask).
      spatial_stride: space stride of the block.
      groups: channel groups of the bottleneck's middle conv (ResNeXt: 32).
      kernel_a: temporal kernel of the bottleneck's first conv.
      kernel_b: temporal kernel of the 3x3 conv (bottleneck middle, or both basic convs).
      dtype: computation dtype, e.g. ``jnp.bfloat16``; ``None`` promotes the inputs' and the float32 parameters' dtypes.
    """

    features: int
    inner: int = 0
    bottleneck: bool = False
    factorized: bool = False
    temporal_stride: int = 1
    spatial_stride: int = 1
    groups: int = 1
    kernel_a: int = 1
    kernel_b: int = 3
    dtype: DTypeLike | None = None

    def _conv(self, name, features, cin, kt, strides, activation, groups=1, middle=None):
        """A kxkxk conv + BN (+ act), or its (2+1)D factorisation when ``factorized``."""
        if not self.factorized or kt == 1:
            return ConvBN(
                features,
                (kt, 3, 3),
                strides,
                feature_group_count=groups,
                activation=activation,
                dtype=self.dtype,
                name=name,
            )

        def run(x, train, m):
            mid = middle or r2plus1d_middle(cin, features)
            y = ConvBN(mid, (1, 3, 3), (1,) + strides[1:], dtype=self.dtype, name=f"{name}_xy")(x, train, m)
            return ConvBN(
                features, (kt, 1, 1), (strides[0], 1, 1), activation=activation, dtype=self.dtype, name=f"{name}_t"
            )(y, train, m)

        return run

    @nn.compact
    def __call__(self, x, train: bool, mask=None, activate: bool = True):
        cin = x.shape[-1]
        strides = (self.temporal_stride, self.spatial_stride, self.spatial_stride)
        out_mask = None if mask is None else ops.downsample_mask(mask, self.temporal_stride)
        shortcut = x
        if cin != self.features or strides != (1, 1, 1):
            shortcut = ConvBN(self.features, (1, 1, 1), strides, activation=None, dtype=self.dtype, name="shortcut")(
                x, train, mask
            )
        relu = jax.nn.relu
        if self.bottleneck:
            y = ConvBN(self.inner, (self.kernel_a, 1, 1), dtype=self.dtype, name="a")(x, train, mask)
            y = self._conv("b", self.inner, self.inner, self.kernel_b, strides, relu, self.groups)(y, train, mask)
            y = ConvBN(self.features, activation=None, dtype=self.dtype, name="c")(y, train, out_mask)
        else:
            # torchvision's R(2+1)D uses the middle width of (Cin, Cout) for both convs of a block
            middle = r2plus1d_middle(cin, self.features)
            y = self._conv("a", self.features, cin, self.kernel_b, strides, relu, middle=middle)(x, train, mask)
            y = self._conv("b", self.features, self.features, self.kernel_b, (1, 1, 1), None, middle=middle)(
                y, train, out_mask
            )
        y = y + shortcut
        if activate:
            y = relu(y)
        return y if out_mask is None else ops.zero_padded(y, out_mask)


# Reference inputs are (frames, crop). Fields not given take ResNet3D's defaults.
RESNET3D_PRESETS: dict[str, dict[str, Any]] = {
    "resnet18": {"depths": (2, 2, 2, 2), "widths": (64, 128, 256, 512), "frames": 16, "crop": 112},
    "resnet50": {"bottleneck": True, "depths": (3, 4, 6, 3), "frames": 16, "crop": 112},
    "resnet101": {"bottleneck": True, "depths": (3, 4, 23, 3), "frames": 16, "crop": 112},
    "resnext101": {
        "bottleneck": True,
        "depths": (3, 4, 23, 3),
        "inner_widths": (128, 256, 512, 1024),
        "groups": 32,
        "frames": 16,
        "crop": 112,
    },
    "r2plus1d_18": {
        "factorized": True,
        "stem": "r2plus1d",
        "depths": (2, 2, 2, 2),
        "widths": (64, 128, 256, 512),
        "frames": 16,
        "crop": 112,
    },
    "r3d_18": {"stem": "r3d", "depths": (2, 2, 2, 2), "widths": (64, 128, 256, 512), "frames": 16, "crop": 112},
    "mc3_18": {
        "stem": "r3d",
        "depths": (2, 2, 2, 2),
        "widths": (64, 128, 256, 512),
        "temporal_strides": (1, 1, 1, 1),
        "kernels_b": (3, 1, 1, 1),
        "frames": 16,
        "crop": 112,
    },
    "r2plus1d_50": {
        "factorized": True,
        "stem": "r2plus1d",
        "bottleneck": True,
        "depths": (3, 4, 6, 3),
        "frames": 16,
        "crop": 112,
    },
    "sgs_resnet18": {
        "stem": "sgs",
        "stem_width": 8,
        "bottleneck": True,
        "depths": (2, 2, 2, 2),
        "widths": (32, 256, 512, 1024),
        "inner_widths": (8, 64, 128, 256),
        "temporal_strides": (1, 1, 1, 1),
        "kernels_a": (3, 1, 1, 3),
        "kernels_b": (1, 1, 1, 1),
        "frames": 32,
        "crop": 224,
    },
}
STEMS = ("hara", "r2plus1d", "r3d", "sgs")


class ResNet3D(nn.Module):
    """A 3D ResNet classifier (see the module docstring for the family), optionally with SGS.

    ``__call__(x [B, T, H, W, 3], train, mask [B, T] | None, return_features)``
    -> ``logits [B, num_classes]`` (and the features dict of
    :func:`~cfjax.models.backbone.run_backbone`). Stage ``i`` (res2..res5) has
    ``depths[i]`` blocks of output width ``widths[i]`` (bottleneck inner width
    ``inner_widths[i]``); its first block strides ``temporal_strides[i]`` in time
    and 2 in space (1 in res2).

    Attributes:
      num_classes: classifier outputs; 0 makes a feature extractor (no dropout or
        classifier; the "logits" are the pooled res5 features).
      bottleneck: bottleneck blocks (else basic blocks).
      factorized: R(2+1)D: every kxkxk conv factorised (see :class:`ResNetBlock`).
      depths: blocks per stage.
      widths: output widths per stage.
      inner_widths: bottleneck widths per stage (bottleneck only).
      groups: channel groups of the bottlenecks' middle convs (ResNeXt: 32).
      stem: ``"hara"`` (7x7x7 + max pool), ``"r2plus1d"`` (1x7x7 to 45, 3x1x1), ``"r3d"``
        (3x7x7, no pool; torchvision's r3d / mc3) or ``"sgs"`` (5x7x7 + 1x3x3 max pool).
      stem_width: stem output channels.
      temporal_strides: time stride of each stage's first block.
      kernels_a: temporal kernel of each stage's bottleneck first conv.
      kernels_b: temporal kernel of each stage's 3x3 convs.
      dropout_rate: dropout before the classifier.
      sgs: ``None``, or where and how SGS runs: an :class:`~cfjax.models.backbone.SGSConfig`
        or a mapping of its fields.
      dtype: computation dtype, e.g. ``jnp.bfloat16``; ``None`` promotes the inputs' and the float32 parameters' dtypes.
    """

    num_classes: int = 400
    bottleneck: bool = False
    factorized: bool = False
    depths: tuple[int, ...] = (2, 2, 2, 2)
    widths: tuple[int, ...] = (256, 512, 1024, 2048)
    inner_widths: tuple[int, ...] = (64, 128, 256, 512)
    groups: int = 1
    stem: str = "hara"
    stem_width: int = 64
    temporal_strides: tuple[int, ...] = (1, 2, 2, 2)
    kernels_a: tuple[int, ...] = (1, 1, 1, 1)
    kernels_b: tuple[int, ...] = (3, 3, 3, 3)
    dropout_rate: float = 0.0
    sgs: SGSConfig | Mapping[str, Any] | None = None
    dtype: DTypeLike | None = None

    @classmethod
    def preset(cls, name: str, **overrides) -> ResNet3D:
        """``ResNet3D.preset("resnet50", num_classes=200)``; names: ``RESNET3D_PRESETS``."""
        if name not in RESNET3D_PRESETS:
            raise ValueError(f"ResNet3D preset: expected one of {sorted(RESNET3D_PRESETS)}, got {name!r}")
        fields = {k: v for k, v in RESNET3D_PRESETS[name].items() if k not in ("frames", "crop")}
        return cls(**{**fields, **overrides})

    @property
    def cam_layer(self) -> str:
        """The last block of res5, the default layer of Grad-CAM."""
        return f"res{len(self.depths) + 1}_{self.depths[-1] - 1}"

    def _stem(self, train):
        dtype, width = self.dtype, self.stem_width

        def stem(x, mask):
            if self.stem == "hara":
                x = ConvBN(width, (7, 7, 7), (1, 2, 2), dtype=dtype, name="stem_conv")(x, train, mask)
                x = nn.max_pool(x, (3, 3, 3), (2, 2, 2), padding=((1, 1),) * 3)
                mask = None if mask is None else ops.downsample_mask(mask, 2)
            elif self.stem == "r2plus1d":
                x = ConvBN(45, (1, 7, 7), (1, 2, 2), dtype=dtype, name="stem_xy")(x, train, mask)
                x = ConvBN(width, (3, 1, 1), dtype=dtype, name="stem_t")(x, train, mask)
            elif self.stem == "r3d":
                x = ConvBN(width, (3, 7, 7), (1, 2, 2), dtype=dtype, name="stem_conv")(x, train, mask)
            else:
                x = ConvBN(width, (5, 7, 7), (1, 2, 2), dtype=dtype, name="stem_conv")(x, train, mask)
                x = nn.max_pool(x, (1, 3, 3), (1, 2, 2), padding=((0, 0), (1, 1), (1, 1)))
            # inputs of the max pool are ReLU outputs (>= 0), so zero padding never wins a max
            return (x, mask) if mask is None else (ops.zero_padded(x, mask), mask)

        return stem

    @nn.compact
    def __call__(self, x, train: bool = False, mask=None, return_features: bool = False):
        if self.stem not in STEMS:
            raise ValueError(f"stem: expected one of {STEMS}, got {self.stem!r}")
        per_stage = (self.depths, self.widths, self.temporal_strides, self.kernels_a, self.kernels_b)
        if len({len(v) for v in per_stage}) != 1 or (self.bottleneck and len(self.inner_widths) != len(self.depths)):
            raise ValueError(
                "depths, widths, inner_widths, temporal_strides, kernels_a and kernels_b: "
                f"expected one entry per stage, got {per_stage + (self.inner_widths,)}"
            )

        def block(name, **kw):
            def run(x, mask, activate):
                y = ResNetBlock(dtype=self.dtype, name=name, **kw)(x, train, mask, activate)
                return y, None if mask is None else ops.downsample_mask(mask, kw["temporal_stride"])

            return run

        stages = []
        for s, depth in enumerate(self.depths):
            blocks = tuple(
                block(
                    f"res{s + 2}_{i}",
                    features=self.widths[s],
                    inner=self.inner_widths[s] if self.bottleneck else 0,
                    bottleneck=self.bottleneck,
                    factorized=self.factorized,
                    temporal_stride=self.temporal_strides[s] if i == 0 else 1,
                    spatial_stride=2 if (i == 0 and s > 0) else 1,
                    groups=self.groups,
                    kernel_a=self.kernels_a[s],
                    kernel_b=self.kernels_b[s],
                )
                for i in range(depth)
            )
            stages.append(Stage(f"res{s + 2}", blocks, self.temporal_strides[s]))

        def head(x, mask):
            pooled = pool_time_space(x, mask)
            if not self.num_classes:
                return pooled, pooled
            dropped = nn.Dropout(self.dropout_rate, deterministic=not train, name="head_dropout")(pooled)
            return nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(dropped), pooled

        logits, features = run_backbone(
            self,
            x,
            mask,
            train,
            stem=self._stem(train),
            stages=stages,
            head=head,
            sgs=SGSConfig.make(self.sgs),
            dtype=self.dtype,
        )
        return (logits, features) if return_features else logits
