"""Model analysis: FLOP counting from jaxprs, 3D Grad-CAM.

The modules that run a trained experiment load only when imported (they import
``cfjax.train.loop``): ``predict`` (one video -> JSON and PNGs), ``cfad_diagnosis``
(where a CFAD loses its tubes), ``studies`` (SGS bins by redundancy); ``plots`` draws
the figures.
"""

from cfjax.analysis.flops import FlopCount, count_flops, jaxpr_flops, sgs_flops_per_clip
from cfjax.analysis.gradcam import gated_clip_cam, grad_cam

__all__ = ["FlopCount", "count_flops", "gated_clip_cam", "grad_cam", "jaxpr_flops", "sgs_flops_per_clip"]
