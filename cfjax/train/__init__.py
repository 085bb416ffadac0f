"""Training: losses (the trainer, optimizers and checkpointing arrive with the trainer issue)."""

from cfjax.train.losses import charades_loss, gcf_loss, softmax_cross_entropy

__all__ = ["charades_loss", "gcf_loss", "softmax_cross_entropy"]
