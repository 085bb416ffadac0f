"""Training: configs, tasks, optimizers, checkpoints and the loop (``train``, ``evaluate``).

Importing ``cfjax.train`` loads only the losses; the trainer modules load on first use.
"""

from cfjax.train.losses import charades_loss, gcf_loss, softmax_cross_entropy

_LAZY = {
    "train": "cfjax.train.loop",
    "evaluate": "cfjax.train.loop",
    "Experiment": "cfjax.train.loop",
    "restore_state": "cfjax.train.loop",
    "base_config": "cfjax.train.config",
    "get_task": "cfjax.train.tasks",
    "register_task": "cfjax.train.tasks",
    "Task": "cfjax.train.tasks",
}

__all__ = ["charades_loss", "gcf_loss", "softmax_cross_entropy", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cfjax.train' has no attribute {name!r}")
