"""Model analysis: FLOP counting from jaxprs."""

from cfjax.analysis.flops import FlopCount, count_flops, jaxpr_flops, sgs_flops_per_clip

__all__ = ["FlopCount", "count_flops", "jaxpr_flops", "sgs_flops_per_clip"]
