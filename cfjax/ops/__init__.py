"""Pure jnp operations: no parameters, no flax. Shapes are channels-last, time on axis 1."""

from cfjax.ops.boxes import box_area, box_iou, decode_boxes, elementwise_box_iou, encode_boxes, nms
from cfjax.ops.clip_fusion import clip_gates, gated_clip_fusion, inter_clip_attention, sparsity_loss
from cfjax.ops.grid_pool import (
    aligned_aggregate,
    gaussian_alignment,
    grid_pool,
    grid_unpool,
    interpolate_time,
    inverse_grid,
    sampling_grid,
    upsample_linear,
)
from cfjax.ops.masking import downsample_mask, expand_mask, lengths_to_mask, masked_mean, masked_variance, zero_padded
from cfjax.ops.pooling import adaptive_average_pool
from cfjax.ops.sgs import (
    active_bin_count,
    apply_in_length_bucket,
    bucket_index,
    check_buckets,
    length_buckets,
    similarity_distance,
    similarity_guided_sampling,
)

__all__ = [
    "active_bin_count",
    "adaptive_average_pool",
    "aligned_aggregate",
    "apply_in_length_bucket",
    "box_area",
    "box_iou",
    "bucket_index",
    "check_buckets",
    "clip_gates",
    "decode_boxes",
    "downsample_mask",
    "elementwise_box_iou",
    "encode_boxes",
    "expand_mask",
    "gated_clip_fusion",
    "gaussian_alignment",
    "grid_pool",
    "grid_unpool",
    "inter_clip_attention",
    "interpolate_time",
    "inverse_grid",
    "length_buckets",
    "lengths_to_mask",
    "masked_mean",
    "masked_variance",
    "nms",
    "sampling_grid",
    "similarity_distance",
    "similarity_guided_sampling",
    "sparsity_loss",
    "upsample_linear",
    "zero_padded",
]
