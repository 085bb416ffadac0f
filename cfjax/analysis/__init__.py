"""Model analysis: FLOP counting from jaxprs, 3D Grad-CAM."""

from cfjax.analysis.flops import FlopCount, count_flops, jaxpr_flops, sgs_flops_per_clip
from cfjax.analysis.gradcam import gated_clip_cam, grad_cam

__all__ = ["FlopCount", "count_flops", "gated_clip_cam", "grad_cam", "jaxpr_flops", "sgs_flops_per_clip"]
