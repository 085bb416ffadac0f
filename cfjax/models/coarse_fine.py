"""Coarse-Fine Networks (Kahatapitiya & Ryoo, CVPR 2021) for per-frame activity detection.

Two X3D streams. The **Fine** stream runs over a long, sparsely sampled view of
the whole video (``[B, Lf, H, W, 3]`` with a mask) and provides features at
``res2`` .. ``res5`` and ``conv5``. The **Coarse** stream runs over a clip of
``T`` frames; after ``res2``, :class:`~cfjax.layers.GridPool` re-samples it to
``T / r + 1`` steps at learned positions, and :class:`~cfjax.layers.MultiStageFusion`
mixes the fine context in after Grid Pool and after ``res3``, ``res4``,
``res5``, and gates the logits. Per-step logits go back to uniform time by
:class:`~cfjax.layers.GridUnpool` and linear upsampling to ``T``.

Fine features can come from the fine stream inside the model
(``fine_mode="end_to_end"``) or be computed once per video with
:func:`extract_fine_features`, cached with :class:`FineFeatureCache`, and fed in
(``fine_mode="precomputed"``), which is how the paper trains on Charades.
The coarse stream's parameter names are X3D's (``stem_xy``, ``res2_0``, ...,
``head_conv``, ``head_proj``, ``classifier``) and the fine stream's are X3D's
up to ``head_conv``, so X3D checkpoints load into either by key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from cfjax import ops
from cfjax.layers import GridPool, GridUnpool, MultiStageFusion
from cfjax.models.backbone import run_stages
from cfjax.models.x3d import X3D, x3d_trunk, x3d_widths

__all__ = ["CoarseFineNetwork", "FineFeatureCache", "FineStream", "extract_fine_features"]

FINE_MODES = ("end_to_end", "precomputed")


def _x3d_spec(module):
    # read for its sizes only, never bound
    return X3D(
        width_factor=module.width_factor,
        depth_factor=module.depth_factor,
        shortcut_norm=module.shortcut_norm,
        dtype=module.dtype,
        parent=None,
    )


class FineStream(nn.Module):
    """X3D up to ``conv5`` over the fine view; returns the features the fusion uses.

    ``__call__(video [B, Lf, H, W, 3], train, mask [B, Lf] | None)`` ->
    ``{"res2" .. "res5", "conv5": [B, Lf, h, w, C]}`` (X3D never strides in
    time, so every level keeps ``Lf`` steps and the mask).

    Attributes:
      width_factor: X3D's width multiplier (2.0: X3D-S/M).
      depth_factor: X3D's depth multiplier (2.2: X3D-S/M).
      dtype: computation dtype, e.g. ``jnp.bfloat16``; ``None`` promotes the inputs' and the float32 parameters' dtypes.
      shortcut_norm: ``"always"``, the official code's X3D, or ``"width_change"``
        (see :class:`~cfjax.models.X3D`).
    """

    width_factor: float = 2.0
    depth_factor: float = 2.2
    dtype: DTypeLike | None = None
    shortcut_norm: str = "always"

    @nn.compact
    def __call__(self, video, train: bool = False, mask=None):
        if video.ndim != 5:
            raise ValueError(f"fine video: expected [B, Lf, H, W, C], got shape {video.shape}")
        if mask is not None:
            video = ops.zero_padded(video, mask)
        stem, stages, conv5 = x3d_trunk(_x3d_spec(self), train)
        features = {}
        x, mask = stem(video, mask)
        x, mask = run_stages(stages, x, mask, features)
        features["conv5"] = conv5(x, mask)
        return {k: v for k, v in features.items() if not k.endswith("_mask")}


class CoarseFineNetwork(nn.Module):
    """Coarse-Fine Network: per-frame multi-label logits for a coarse clip.

    Both streams are X3D of ``width_factor`` and ``depth_factor`` (default
    X3D-M, the paper's choice; X3D-S has the same layers) with
    ``shortcut_norm="always"``, the official code's X3D (a BatchNorm on every
    projected shortcut), so that official checkpoints load.

    With ``fine_mode="precomputed"`` and official weights this computes the
    official ``x3d_coarse`` model of ``train_coarse_fineFEAT.py`` (fine
    features: 7x7 maps, ``spatial_size=(7, 7)`` in :func:`extract_fine_features`);
    ``normalize_over="all"`` also reproduces its Gaussian normalisation over
    padded fine steps (see :class:`~cfjax.layers.MultiStageFusion`).

    ``__call__(video, fine, fine_mask=None, fine_offset=None, coarse_span=None, train=False)``

    Args (of ``__call__``):
      video: ``[B, T, H, W, 3]`` coarse clip, ``T`` divisible by ``reduction``.
      fine: ``fine_mode="end_to_end"``: the fine view ``[B, Lf, H', W', 3]``;
        ``"precomputed"``: ``{"res2" .. "res5", "conv5": [B, Lf, h, w, C]}``
        from :func:`extract_fine_features` (any spatial size).
      fine_mask: ``[B, Lf]`` bool, valid fine steps first (default: all valid).
      fine_offset: ``[B]`` fine step at which the coarse clip starts (default 0).
      coarse_span: length of the coarse clip in fine steps, scalar or ``[B]``
        (default ``T``: both views sampled at the same stride, as in the paper).

    Returns:
      ``{"logits": [B, T, num_classes]`` per input frame, ``"grid": [B, K + 1]``
      (Grid Pool positions in ``[0, 1]``, ``K = T / reduction``),
      ``"grid_logits": [B, K + 1, num_classes]`` (before Grid Unpool)}.

    Attributes:
      num_classes: per-frame (multi-label) classes.
      width_factor: X3D's width multiplier of both streams (2.0: X3D-S/M).
      depth_factor: X3D's depth multiplier of both streams (2.2: X3D-S/M).
      reduction: Grid Pool's ``r``: ``K + 1 = T / r + 1`` coarse steps after ``res2``.
      fine_mode: ``"end_to_end"`` (fine stream inside the model) or ``"precomputed"``.
      levels: fine levels mixed in at every fusion depth.
      sigma: width of the alignment Gaussians, a fraction of the valid fine steps.
      head_width: width of ``head_proj`` before the classifier.
      dropout_rate: dropout before the classifier.
      normalize_over: ``"valid"`` or ``"all"`` (the official code); see
        :class:`~cfjax.layers.MultiStageFusion`.
      shortcut_norm: X3D's shortcut BatchNorms, ``"always"`` for official checkpoints.
      dtype: computation dtype, e.g. ``jnp.bfloat16``; ``None`` promotes the inputs' and the float32 parameters' dtypes.
    """

    num_classes: int = 157
    width_factor: float = 2.0
    depth_factor: float = 2.2
    reduction: int = 4
    fine_mode: str = "end_to_end"
    levels: tuple[str, ...] = ("res2", "res3", "res4", "res5")
    sigma: float = 1 / 8
    head_width: int = 2048
    dropout_rate: float = 0.5
    normalize_over: str = "valid"
    shortcut_norm: str = "always"
    dtype: DTypeLike | None = None

    def fine_stream(self) -> FineStream:
        """The fine stream as a standalone module (its variables are ``variables["params"]["fine"]``)."""
        return FineStream(self.width_factor, self.depth_factor, self.dtype, self.shortcut_norm, parent=None)

    @nn.compact
    def __call__(self, video, fine, fine_mask=None, fine_offset=None, coarse_span=None, train: bool = False):
        if self.fine_mode not in FINE_MODES:
            raise ValueError(f"fine_mode: expected one of {FINE_MODES}, got {self.fine_mode!r}")
        if video.ndim != 5:
            raise ValueError(f"video: expected the coarse clip [B, T, H, W, C], got shape {video.shape}")
        batch, length = video.shape[:2]
        if self.fine_mode == "end_to_end":
            if isinstance(fine, Mapping) or jnp.ndim(fine) != 5:
                raise ValueError(
                    "fine: fine_mode='end_to_end' expects the fine video [B, Lf, H, W, C], got "
                    + (
                        "a dict of features (use fine_mode='precomputed')"
                        if isinstance(fine, Mapping)
                        else f"shape {jnp.shape(fine)}"
                    )
                )
            fine_length = fine.shape[1]
        else:
            if not isinstance(fine, Mapping):
                raise ValueError(
                    "fine: fine_mode='precomputed' expects a dict of fine features "
                    f"{{level: [B, Lf, h, w, C]}}, got {type(fine).__name__} of shape {jnp.shape(fine)}"
                )
            missing = [k for k in (*self.levels, "conv5") if k not in fine]
            if missing:
                raise ValueError(f"fine: missing levels {missing}; expected keys {[*self.levels, 'conv5']}")
            if jnp.ndim(fine["conv5"]) != 5:
                raise ValueError(f"fine['conv5']: expected [B, Lf, h, w, C], got shape {jnp.shape(fine['conv5'])}")
            fine_length = fine["conv5"].shape[1]
        if fine_mask is None:
            fine_mask = jnp.ones((batch, fine_length), bool)
        if fine_mask.shape != (batch, fine_length):
            raise ValueError(f"fine_mask: expected [B, Lf] = {(batch, fine_length)}, got shape {fine_mask.shape}")
        if fine_offset is None:
            fine_offset = jnp.zeros((batch,), jnp.float32)
        if coarse_span is None:
            coarse_span = length
        if self.fine_mode == "end_to_end":
            fine = FineStream(self.width_factor, self.depth_factor, self.dtype, self.shortcut_norm, name="fine")(
                fine, train, fine_mask
            )

        spec = _x3d_spec(self)
        stem, stages, conv5 = x3d_trunk(spec, train)
        widths = x3d_widths(spec)
        fusion = MultiStageFusion(
            widths[: len(stages)],
            self.num_classes,
            self.levels,
            "conv5",
            self.sigma,
            self.normalize_over,
            self.dtype,
            name="fusion",
        )
        x, _ = stem(video, None)
        x, _ = run_stages(stages[:1], x, None, {})
        x, grid = GridPool(self.reduction, dtype=self.dtype, name="grid_pool")(x, train)
        aligned = fusion.align(fine, fine_mask, grid, fine_offset, coarse_span)
        x = fusion.mix(0, x, aligned)
        for depth, stage in enumerate(stages[1:], start=1):
            x, _ = run_stages([stage], x, None, {})
            x = fusion.mix(depth, x, aligned)
        x = jnp.mean(conv5(x, None), axis=(2, 3))  # [B, K + 1, C5]: pooled over space only
        x = jax.nn.relu(nn.Dense(self.head_width, use_bias=False, dtype=self.dtype, name="head_proj")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train, name="head_dropout")(x)
        grid_logits = fusion.gate_logits(nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(x), aligned)
        logits = GridUnpool(length, name="grid_unpool")(grid_logits, grid)
        return {"logits": logits, "grid": grid, "grid_logits": grid_logits}


def extract_fine_features(
    model: CoarseFineNetwork | FineStream, variables, video, mask=None, spatial_size=None
) -> dict:
    """Runs the fine stream once over ``video`` (eval mode) for ``fine_mode="precomputed"``.

    Args:
      model: a :class:`CoarseFineNetwork` (its fine stream is used) or a :class:`FineStream`.
      variables: the fine stream's variables (``{"params": ..., "batch_stats": ...}``;
        for an end-to-end model pass ``{k: v["fine"] for k, v in variables.items()}``).
      video: ``[B, Lf, H, W, 3]``; mask: ``[B, Lf]`` bool or ``None``.
      spatial_size: ``(h, w)`` to average-pool every level to (e.g. ``(1, 1)``
        to store a few KB per step), or ``None`` to keep the full maps.

    Returns:
      ``{"res2" .. "res5", "conv5": [B, Lf, h, w, C]}``.
    """
    stream = model.fine_stream() if isinstance(model, CoarseFineNetwork) else model
    features = jax.jit(lambda v, x, m: stream.apply(v, x, False, m))(variables, video, mask)
    if spatial_size is not None:
        features = {k: ops.adaptive_average_pool(v, spatial_size) for k, v in features.items()}
    return features


class FineFeatureCache:
    """Fine features of one video per ``.npz`` file in ``directory``.

    ``cache.put(video_id, features, mask)`` stores ``{level: [Lf, h, w, C]}``
    and ``mask [Lf]`` (valid steps only are kept, in ``dtype``);
    ``cache.get(video_id)`` returns ``(features, num_steps)``;
    ``video_id in cache`` tells whether it is stored.
    """

    def __init__(self, directory: str | os.PathLike, dtype: DTypeLike = np.float16):
        self.directory = os.fspath(directory)
        self.dtype = np.dtype(dtype)
        os.makedirs(self.directory, exist_ok=True)

    def _path(self, video_id: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", str(video_id)) or str(video_id).startswith("."):
            raise ValueError(f"video_id: expected letters, digits, '_', '-', '.', got {video_id!r}")
        return os.path.join(self.directory, f"{video_id}.npz")

    def __contains__(self, video_id: str) -> bool:
        return os.path.exists(self._path(video_id))

    def put(self, video_id: str, features: Mapping[str, Any], mask=None) -> None:
        """Stores one video's features ``{level: [Lf, h, w, C]}`` (valid steps of ``mask [Lf]``)."""
        arrays = {k: np.asarray(v) for k, v in features.items()}
        lengths = {v.shape[0] for v in arrays.values() if v.ndim == 4}
        if len(lengths) != 1 or any(v.ndim != 4 for v in arrays.values()):
            raise ValueError(
                f"features: expected {{level: [Lf, h, w, C]}} with one Lf, got shapes "
                f"{ {k: v.shape for k, v in arrays.items()} }"
            )
        steps = lengths.pop() if mask is None else int(np.sum(np.asarray(mask)))
        path = self._path(video_id)
        tmp = path + ".tmp.npz"
        np.savez(tmp, **{k: v[:steps].astype(self.dtype) for k, v in arrays.items()})
        os.replace(tmp, path)  # a crash never leaves a half-written entry

    def get(self, video_id: str) -> tuple[dict[str, np.ndarray], int]:
        """``({level: [Lf, h, w, C]}, Lf)`` for a stored video."""
        path = self._path(video_id)
        if not os.path.exists(path):
            raise FileNotFoundError(f"fine features of {video_id!r}: no file {path}")
        with np.load(path) as data:
            features = {k: data[k] for k in data.files}
        return features, next(iter(features.values())).shape[0]
