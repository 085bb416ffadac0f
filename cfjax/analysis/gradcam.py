"""3D Grad-CAM (Selvaraju et al., extended to time) for any zoo model.

The gradient of a class score with respect to a layer's output ``A [B, T', H',
W', C]`` is averaged over time and space into channel weights ``w_c``; the
heatmap is ``relu(sum_c w_c A_c)``, scaled to ``[0, 1]`` per clip. The layer is
found by its name in the model (default: the model's ``cam_layer``, its last
conv features) and read with ``flax.linen.intercept_methods``, so no model code
changes.

:func:`gated_clip_cam` is GCF-Net's localisation (Hsiao et al.): the clips whose
gate exceeds 0.5 localise the action, and 3D Grad-CAM of the video's class score
runs on those clips, at the shared backbone's ``cam_layer``.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfjax import ops

__all__ = ["gated_clip_cam", "grad_cam"]


def _logits(out):
    return out["logits"] if isinstance(out, dict) else out


def _layer_gradient(forward, path: tuple, owner: str):
    """``forward() -> (score, aux)`` traced with the output ``A`` of the submodule at ``path``
    intercepted; returns ``(d score / d A, A, aux)``."""

    def run(delta):
        seen = []

        def interceptor(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            if context.method_name == "__call__" and context.module.path == path:
                out = out if delta is None else out + delta
                seen.append(out)
            return out

        with nn.intercept_methods(interceptor):
            score, aux = forward()
        if len(seen) != 1:
            raise ValueError(
                f"layer: expected one call of the submodule {'/'.join(path)!r} of {owner}, found {len(seen)}"
            )
        return score, (seen[0], aux)

    shape = jax.eval_shape(lambda: run(None)[1][0])
    grads, (activations, aux) = jax.grad(run, has_aux=True)(jnp.zeros(shape.shape, shape.dtype))
    return grads, activations, aux


def _cam(grads, activations, feature_mask=None):
    """Grad-CAM per clip: channel weights = mean gradient over valid ``(T', H', W')``; ``relu(sum_c
    w_c A_c)`` scaled to max 1 per clip. ``[B, T', H', W', C]`` twice -> ``[B, T', H', W']``."""
    if feature_mask is not None:
        weights = ops.masked_mean(grads, feature_mask, axis=(1, 2, 3))
    else:
        weights = jnp.mean(grads, axis=(1, 2, 3))
    cam = jax.nn.relu(jnp.einsum("bthwc,bc->bthw", activations, weights))
    if feature_mask is not None:
        cam = ops.zero_padded(cam, feature_mask)
    return cam / (jnp.max(cam, axis=(1, 2, 3), keepdims=True) + 1e-12)


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
        def forward():
            logits = _logits(model.apply(variables, video, train=False, mask=mask))
            if logits.ndim == 3:
                logits = jnp.sum(logits, axis=1)
            return jnp.sum(jnp.take_along_axis(logits, classes[:, None], axis=1)), None

        grads, activations, _ = _layer_gradient(forward, (layer,), type(model).__name__)
        if activations.ndim != 5:
            raise ValueError(f"layer: {layer!r} gives shape {activations.shape}, expected [B, T', H', W', C]")
        feature_mask = None
        if mask is not None:
            feature_mask = ops.downsample_mask(mask, max(1, video.shape[1] // activations.shape[1]))
            feature_mask = feature_mask[:, : activations.shape[1]]
        return _cam(grads, activations, feature_mask)

    cam = compute(variables, video, mask, classes)
    if resize:
        cam = jax.image.resize(cam, (batch,) + video.shape[1:4], method="trilinear")
    return cam


def gated_clip_cam(
    model,
    variables,
    clips,
    clip_mask=None,
    class_index=None,
    threshold: float = 0.5,
    layer: str | None = None,
    top_if_none: bool = False,
    resize: bool = False,
) -> dict:
    """GCF-Net's localisation: 3D Grad-CAM on the clips whose gate exceeds ``threshold``.

    The explained score is the video's class logit; its gradient reaches every clip through
    the shared backbone, and each shown clip gets its own channel weights and map (scaled to
    max 1 per clip). Clips that are not shown get an all-zero map.

    Args:
      model: a :class:`~cfjax.models.GCFNet` with a backbone and gates (``head="gcf"``,
        ``gating=True``).
      variables: its variables.
      clips: ``[B, N, T, H, W, C]``.
      clip_mask: ``[B, N]`` bool valid clips (masked clips are never shown).
      class_index: int or ``[B]`` ints; default: each video's predicted class.
      threshold: a clip is selected iff ``gate > threshold`` (the paper: 0.5).
      layer: a submodule of the backbone (default: the backbone's ``cam_layer``).
      top_if_none: for a video with no selected clip, show its top-gated valid clip
        (``selected`` stays False there, so a caller can label it as such).
      resize: maps resized (trilinear) to the clips' ``[T, H, W]``.

    Returns:
      dict of arrays: ``gates [B, N]``, ``logits [B, K]``, ``class_index [B]``,
      ``selected [B, N]`` (``gate > threshold`` on valid clips), ``shown [B, N]`` (the
      clips with a map) and ``cams [B, N, T', H', W']`` in ``[0, 1]`` (``[B, N, T, H, W]``
      with ``resize``).
    """
    backbone = getattr(model, "backbone", None)
    if backbone is None or getattr(model, "head", None) != "gcf" or not getattr(model, "gating", False):
        got = type(model).__name__
        if hasattr(model, "head"):
            got += f" with head={model.head!r}, gating={model.gating}, backbone={type(backbone).__name__}"
        raise ValueError(
            f"model: expected a GCFNet with a backbone, head='gcf' and gating=True (gates pick the clips), got {got}"
        )
    if clips.ndim != 6:
        raise ValueError(f"clips: expected [B, N, T, H, W, C], got shape {clips.shape}")
    if layer is None:
        layer = getattr(backbone, "cam_layer", None)
        if layer is None:
            raise ValueError(f"layer: the backbone {type(backbone).__name__} has no cam_layer; name a submodule")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold: expected a number in [0, 1], got {threshold!r}")
    batch, num_clips = clips.shape[:2]
    mask = jnp.ones((batch, num_clips), bool) if clip_mask is None else jnp.asarray(clip_mask)
    classes = jnp.broadcast_to(jnp.asarray(-1 if class_index is None else class_index, jnp.int32), (batch,))

    @jax.jit
    def compute(variables, clips, mask, classes):
        def forward():
            out = model.apply(variables, clips, mask, train=False)
            logits = out["logits"]
            chosen = jnp.where(classes < 0, jnp.argmax(jax.lax.stop_gradient(logits), -1), classes)
            score = jnp.sum(jnp.take_along_axis(logits, chosen[:, None], axis=1))
            return score, (out["gates"], logits, chosen)

        grads, activations, (gates, logits, chosen) = _layer_gradient(
            forward, ("backbone", layer), type(backbone).__name__
        )
        if activations.ndim != 5 or activations.shape[0] != batch * num_clips:
            raise ValueError(
                f"layer: {layer!r} gives shape {activations.shape}, expected [B * N, T', H', W', C] = "
                f"[{batch * num_clips}, ...]"
            )
        cams = _cam(grads, activations).reshape((batch, num_clips) + activations.shape[1:4])
        selected = (gates > threshold) & mask
        shown = selected
        if top_if_none:
            top = jnp.argmax(jnp.where(mask, gates, -1.0), axis=1)
            fallback = jax.nn.one_hot(top, num_clips, dtype=bool) & mask & ~jnp.any(selected, axis=1, keepdims=True)
            shown = selected | fallback
        cams = jnp.where(shown[:, :, None, None, None], cams, 0)
        return {
            "gates": gates,
            "logits": logits,
            "class_index": chosen,
            "selected": selected,
            "shown": shown,
            "cams": cams,
        }

    out = compute(variables, clips, mask, classes)
    if resize:
        out["cams"] = jax.image.resize(out["cams"], (batch, num_clips) + clips.shape[2:5], method="trilinear")
    return out
