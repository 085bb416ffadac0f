"""Temporal segments (1D boxes): IoU, R-C3D offset coding, greedy NMS.

A segment is ``[..., 2] = (start, end)`` on a continuous time axis (e.g. frame
units with ``end`` exclusive, so its length is ``end - start``). Used by CFAD's
temporal proposal network. Every function is jit- and vmap-safe;
:func:`segment_nms` needs a static ``max_output``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from cfjax.ops._checks import check_bool, check_floating, check_rank, check_shape
from cfjax.ops.boxes import greedy_select

__all__ = ["decode_segments", "elementwise_segment_iou", "encode_segments", "gt_segments", "segment_iou", "segment_nms"]

DEFAULT_MAX_LOG_SCALE = math.log(1000.0 / 16)


def _check_segments(name, x, layout="[..., 2]"):
    if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != 2:
        raise ValueError(f"{name}: expected segments {layout} (start, end), got shape {jnp.shape(x)}")
    check_floating(name, x)


def elementwise_segment_iou(a, b):
    """IoU of broadcast pairs of segments ``a [..., 2]``, ``b [..., 2] -> [...]`` (continuous lengths).

    Empty or inverted segments have length 0; a zero union gives 0, never NaN.
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    _check_segments("a", a)
    _check_segments("b", b)
    inter = jnp.maximum(jnp.minimum(a[..., 1], b[..., 1]) - jnp.maximum(a[..., 0], b[..., 0]), 0)
    la = jnp.maximum(a[..., 1] - a[..., 0], 0)
    lb = jnp.maximum(b[..., 1] - b[..., 0], 0)
    union = la + lb - inter
    positive = union > 0
    return jnp.where(positive, inter / jnp.where(positive, union, 1), 0)


def segment_iou(a, b):
    """Pairwise IoU: ``a [N, 2]``, ``b [M, 2] -> [N, M]``."""
    check_rank("a", a, 2, "[N, 2]")
    check_rank("b", b, 2, "[M, 2]")
    return elementwise_segment_iou(jnp.asarray(a)[:, None, :], jnp.asarray(b)[None, :, :])


def encode_segments(segments, anchors):
    """R-C3D offsets ``(dc, dl) = ((c - c_a) / l_a, log(l / l_a))`` of ``segments`` w.r.t. ``anchors``.

    Lengths are floored at the dtype's machine epsilon (finite deltas for degenerate segments).
    ``segments [..., 2]``, ``anchors [..., 2]`` (broadcast) ``-> [..., 2]``.
    """
    segments, anchors = jnp.asarray(segments), jnp.asarray(anchors)
    _check_segments("segments", segments)
    _check_segments("anchors", anchors)
    dtype = jnp.result_type(segments, anchors)
    segments, anchors = segments.astype(dtype), anchors.astype(dtype)
    tiny = jnp.finfo(dtype).eps
    length = jnp.maximum(segments[..., 1] - segments[..., 0], tiny)
    anchor_length = jnp.maximum(anchors[..., 1] - anchors[..., 0], tiny)
    centre = (segments[..., 0] + segments[..., 1]) / 2
    anchor_centre = (anchors[..., 0] + anchors[..., 1]) / 2
    return jnp.stack([(centre - anchor_centre) / anchor_length, jnp.log(length / anchor_length)], axis=-1)


def decode_segments(deltas, anchors, max_log_scale: float = DEFAULT_MAX_LOG_SCALE):
    """Inverse of :func:`encode_segments`; ``dl`` is clamped above at ``max_log_scale`` before the exp."""
    deltas, anchors = jnp.asarray(deltas), jnp.asarray(anchors)
    _check_segments("deltas", deltas)
    _check_segments("anchors", anchors)
    dtype = jnp.result_type(deltas, anchors)
    deltas, anchors = deltas.astype(dtype), anchors.astype(dtype)
    tiny = jnp.finfo(dtype).eps
    anchor_length = jnp.maximum(anchors[..., 1] - anchors[..., 0], tiny)
    centre = deltas[..., 0] * anchor_length + (anchors[..., 0] + anchors[..., 1]) / 2
    length = jnp.exp(jnp.minimum(deltas[..., 1], max_log_scale)) * anchor_length
    return jnp.stack([centre - length / 2, centre + length / 2], axis=-1)


def segment_nms(segments, scores, iou_threshold, max_output: int, mask=None):
    """Greedy temporal NMS (same rules as :func:`cfjax.ops.nms`: strict ``>`` suppresses).

    Args:
      segments: ``[N, 2]``; scores: ``[N]`` floating; mask: optional ``[N]`` bool.
      iou_threshold: scalar; max_output: static int.

    Returns:
      ``(indices int32 [max_output], valid bool [max_output])`` in descending score order.
    """
    segments, scores = jnp.asarray(segments), jnp.asarray(scores)
    check_rank("segments", segments, 2, "[N, 2]")
    _check_segments("segments", segments, "[N, 2]")
    check_shape("scores", scores, segments.shape[:1], "[N]")
    check_floating("scores", scores)
    n = segments.shape[0]
    mask = jnp.ones((n,), bool) if mask is None else jnp.asarray(mask)
    check_bool("mask", mask, (n,), "[N]")
    return greedy_select(
        scores, mask, lambda i: elementwise_segment_iou(segments[i], segments), iou_threshold, max_output
    )


def gt_segments(valid):
    """GT temporal extents: ``valid [..., G, T] -> (segments [..., G, 2], exists [..., G])``.

    ``[first, last + 1)`` over the frames with a box (holes are inside the extent).
    """
    t = valid.shape[-1]
    first = jnp.argmax(valid, axis=-1)
    last = t - 1 - jnp.argmax(valid[..., ::-1], axis=-1)
    seg = jnp.stack([first, last + 1], axis=-1).astype(jnp.float32)
    exists = jnp.any(valid, axis=-1)
    return jnp.where(exists[..., None], seg, 0), exists
