"""Training losses, one place for every model: the classification losses
(:mod:`cfjax.train.losses.classification`) and CFAD's (:mod:`cfjax.train.losses.cfad`)."""

from cfjax.train.losses.cfad import CFADLossConfig, cfad_loss, coarse_anchor_terms, refine_step_terms, tpn_loss
from cfjax.train.losses.classification import charades_loss, gcf_loss, softmax_cross_entropy

__all__ = [
    "CFADLossConfig",
    "cfad_loss",
    "charades_loss",
    "coarse_anchor_terms",
    "gcf_loss",
    "refine_step_terms",
    "softmax_cross_entropy",
    "tpn_loss",
]
