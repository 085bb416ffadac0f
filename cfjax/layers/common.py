"""Building blocks shared by the backbones: conv-BN-act, masked BatchNorm, squeeze-excite, Swish.

Inputs are channels-last video ``[B, T, H, W, C]`` with an optional time mask
``[B, T]`` (valid steps first). With a mask, BatchNorm statistics and pooling
use valid steps only and the outputs are re-zeroed at padded steps, so a padded
clip computes what it would compute alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from cfjax import ops

__all__ = ["ConvBN", "DepthwiseConv", "MaskedBatchNorm", "SqueezeExcite", "same_padding", "swish"]

# Swish (x * sigmoid(x)) is jax.nn.swish; re-exported so every layer is found here.
swish = jax.nn.swish

# PyTorch BatchNorm defaults (momentum 0.1 on the new value, eps 1e-5).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def same_padding(kernel: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Symmetric ``k // 2`` padding per axis (PyTorch style, also for strided convs)."""
    return tuple((k // 2, k // 2) for k in kernel)


class MaskedBatchNorm(nn.Module):
    """BatchNorm over ``[B, T, ...]`` whose statistics use only valid time steps.

    ``__call__(x [B, T, ..., C], train, mask [B, T] | None) -> [B, T, ..., C]``;
    padded steps come out as zeros. Parameters ``scale``, ``bias``; running
    statistics ``mean``, ``var`` in ``batch_stats``.

    Attributes:
      momentum: weight of the old running statistics (0.9: PyTorch's momentum 0.1).
      epsilon: added to the variance.
      dtype: computation dtype, e.g. ``jnp.bfloat16``; ``None`` promotes the inputs' and the float32 parameters' dtypes.
    """

    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPSILON
    dtype: DTypeLike | None = None

    @nn.compact
    def __call__(self, x, train: bool, mask=None):
        norm = nn.BatchNorm(
            use_running_average=not train,
            momentum=self.momentum,
            epsilon=self.epsilon,
            dtype=self.dtype,
            use_fast_variance=False,
            name="bn",
        )
        if mask is None:
            return norm(x)
        return ops.zero_padded(norm(x, mask=ops.expand_mask(mask, x)), mask)


class DepthwiseConv(nn.Module):
    """``nn.Conv`` with ``feature_group_count = features = input channels``, computed by
    :func:`cfjax.ops.depthwise_conv3d` (fast on CPUs). Same parameter (``kernel
    [kt, kh, kw, 1, C]``), initialiser and output as the ``nn.Conv`` it replaces.

    ``__call__(x [B, T, H, W, C]) -> [B, T', H', W', C]``. Fields are ``nn.Conv``'s
    (``padding``: ``((lo, hi),) * 3``, or ``None`` for ``k // 2`` on both sides).
    """

    features: int
    kernel_size: tuple[int, int, int]
    strides: tuple[int, int, int] = (1, 1, 1)
    padding: tuple[tuple[int, int], ...] | None = None
    feature_group_count: int = 1
    use_bias: bool = False
    dtype: DTypeLike | None = None
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        if self.use_bias or not self.feature_group_count == self.features == x.shape[-1]:
            raise ValueError(
                f"DepthwiseConv: expected features = feature_group_count = input channels and no bias, got "
                f"features {self.features}, groups {self.feature_group_count}, input {x.shape}, bias {self.use_bias}"
            )
        kernel = self.param("kernel", self.kernel_init, (*self.kernel_size, 1, self.features), jnp.float32)
        x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
        return ops.depthwise_conv3d(x, kernel, self.strides, self.padding)


class ConvBN(nn.Module):
    """3D convolution (symmetric padding) -> masked BatchNorm -> optional activation.

    ``__call__(x [B, T, H, W, Cin], train, mask [B, T] | None) -> [B, T', H', W', features]``
    with ``T' = ceil(T / strides[0])``; with a mask, the output is zero at the
    padded steps of ``ops.downsample_mask(mask, strides[0])``. The convolution
    has no bias unless ``use_bias`` (a bias before BatchNorm only matters for
    checkpoints that have one, e.g. the official Grid Pool score network).

    Attributes:
      features: output channels.
      kernel_size: ``(kt, kh, kw)``, as ``nn.Conv``'s; ``kt`` must be odd with a mask.
      strides: ``(st, sh, sw)``.
      feature_group_count: channel groups, as ``nn.Conv``'s; ``features`` = groups =
        input channels (no bias) is a depthwise conv, run by :class:`DepthwiseConv`.
      activation: applied after BatchNorm; ``None`` for none.
      use_bias: a bias on the convolution.
      dtype: computation dtype, e.g. ``jnp.bfloat16``; ``None`` promotes the inputs' and the float32 parameters' dtypes.
    """

    features: int
    kernel_size: tuple[int, int, int] = (1, 1, 1)
    strides: tuple[int, int, int] = (1, 1, 1)
    feature_group_count: int = 1
    activation: Callable | None = jax.nn.relu
    use_bias: bool = False
    dtype: DTypeLike | None = None

    @nn.compact
    def __call__(self, x, train: bool, mask=None):
        if mask is not None and self.kernel_size[0] % 2 == 0:
            raise ValueError(f"kernel_size: a masked input needs an odd temporal kernel, got {self.kernel_size}")
        depthwise = self.feature_group_count == self.features == x.shape[-1] and not self.use_bias
        conv = DepthwiseConv if depthwise else nn.Conv
        x = conv(
            self.features,
            self.kernel_size,
            strides=self.strides,
            padding=same_padding(self.kernel_size),
            feature_group_count=self.feature_group_count,
            use_bias=self.use_bias,
            dtype=self.dtype,
            kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
            name="conv",
        )(x)
        if mask is not None:
            mask = ops.downsample_mask(mask, self.strides[0])
        x = MaskedBatchNorm(dtype=self.dtype, name="norm")(x, train, mask)
        if self.activation is not None:
            x = self.activation(x)
            if mask is not None:
                x = ops.zero_padded(x, mask)
        return x


class SqueezeExcite(nn.Module):
    """Channel gates from the (masked) mean over time and space.

    ``__call__(x [B, T, H, W, C], mask) -> x * sigmoid(W2 relu(W1 mean(x)))``,
    hidden width ``hidden``.

    Attributes:
      hidden: width of the bottleneck ``W1``.
      dtype: computation dtype, e.g. ``jnp.bfloat16``; ``None`` promotes the inputs' and the float32 parameters' dtypes.
    """

    hidden: int
    dtype: DTypeLike | None = None

    @nn.compact
    def __call__(self, x, mask=None):
        if mask is None:
            pooled = jnp.mean(x, axis=(1, 2, 3))
        else:
            pooled = ops.masked_mean(x, mask, axis=(1, 2, 3))
        gate = nn.Dense(self.hidden, dtype=self.dtype, name="fc1")(pooled)
        gate = nn.Dense(x.shape[-1], dtype=self.dtype, name="fc2")(jax.nn.relu(gate))
        return x * jax.nn.sigmoid(gate)[:, None, None, None, :]
