"""3D Grad-CAM (Selvaraju et al., extended to time) for any zoo model.

The gradient of a class score with respect to a layer's output ``A [B, T', H',
W', C]`` is averaged over time and space into channel weights ``w_c``; the
heatmap is ``relu(sum_c w_c A_c)``, scaled to ``[0, 1]`` per clip. The layer is
found by its name in the model (default: the model's ``cam_layer``, its last
conv features) and read with ``flax.linen.intercept_methods``, so no model code
changes.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfjax import ops

__all__ = ["grad_cam"]


def _logits(out):
    return out["logits"] if isinstance(out, dict) else out


def grad_cam(model, variables, video, class_index, layer: str | None = None, mask=None, resize: bool = False):
    """Grad-CAM heatmaps of ``class_index`` at ``layer``.

    Args:
      model: a zoo classifier (``apply(variables, video, train=False, mask=mask)``
        returning logits ``[B, K]``, per-frame ``[B, T, K]`` or a dict with ``"logits"``).
      variables: its variables.
      video: ``[B, T, H, W, C]``.
      class_index: int or ``[B]`` ints: the class whose score (summed over
        frames for per-frame logits) is explained, per clip.
      layer: name of a top-level submodule (e.g. ``"head_conv"``, ``"res5_1"``);
        default ``model.cam_layer``.
      mask: ``[B, T]`` bool valid frames (padded steps get 0 and do not enter
        the channel weights).
      resize: return the heatmap resized (trilinear) to ``[B, T, H, W]``.

    Returns:
      ``[B, T', H', W']`` heatmap in ``[0, 1]`` (or ``[B, T, H, W]`` with ``resize``).
    """
    if video.ndim != 5:
        raise ValueError(f"video: expected [B, T, H, W, C], got shape {video.shape}")
    if layer is None:
        layer = getattr(model, "cam_layer", None)
        if layer is None:
            raise ValueError(f"layer: {type(model).__name__} has no cam_layer; name a submodule")
    sgs = getattr(model, "sgs", None)
    if sgs is not None:  # one un-bucketed tail: the same values, one call of the layer
        model = model.clone(sgs=dataclasses.replace(sgs, buckets=1))
    batch = video.shape[0]
    classes = jnp.broadcast_to(jnp.asarray(class_index, jnp.int32), (batch,))

    @jax.jit
    def compute(variables, video, mask, classes):
        def run(delta):
            seen = []

            def interceptor(next_fun, args, kwargs, context):
                out = next_fun(*args, **kwargs)
                if context.method_name == "__call__" and context.module.path == (layer,):
                    out = out if delta is None else out + delta
                    seen.append(out)
                return out

            with nn.intercept_methods(interceptor):
                logits = _logits(model.apply(variables, video, train=False, mask=mask))
            if len(seen) != 1:
                raise ValueError(f"layer: expected one call of the submodule {layer!r} of {type(model).__name__}, "
                                 f"found {len(seen)}")
            if logits.ndim == 3:
                logits = jnp.sum(logits, axis=1)
            score = jnp.sum(jnp.take_along_axis(logits, classes[:, None], axis=1))
            return score, seen[0]

        shape = jax.eval_shape(lambda: run(None)[1])
        grads, activations = jax.grad(run, has_aux=True)(jnp.zeros(shape.shape, shape.dtype))
        if activations.ndim != 5:
            raise ValueError(f"layer: {layer!r} gives shape {activations.shape}, expected [B, T', H', W', C]")
        feature_mask = None
        if mask is not None:
            feature_mask = ops.downsample_mask(mask, max(1, video.shape[1] // activations.shape[1]))
            feature_mask = feature_mask[:, : activations.shape[1]]
            weights = ops.masked_mean(grads, feature_mask, axis=(1, 2, 3))
        else:
            weights = jnp.mean(grads, axis=(1, 2, 3))
        cam = jax.nn.relu(jnp.einsum("bthwc,bc->bthw", activations, weights))
        if feature_mask is not None:
            cam = ops.zero_padded(cam, feature_mask)
        cam = cam / (jnp.max(cam, axis=(1, 2, 3), keepdims=True) + 1e-12)
        return cam

    cam = compute(variables, video, mask, classes)
    if resize:
        cam = jax.image.resize(cam, (batch,) + video.shape[1:4], method="trilinear")
    return cam
