"""Evaluates a trained config with its full protocol (e.g. 10 x 3 views).

    python -m experiments.evaluate --config configs/NAME.py[:key=value,...] --workdir DIR \
        [--checkpoint best|latest|STEP] [--split test] [--all_splits]

Prints the checkpoint step it evaluates, then the metrics. Writes ``DIR/eval_<split>.json``
(metrics and the step) and ``DIR/eval_<split>_per_class.csv``.

``--all_splits`` (JHMDB-21, whose result is the mean over ACT's 3 splits): ``DIR/split1``,
``DIR/split2``, ... each hold the model trained on that split (``--config.data.config=splitK``);
each is evaluated on its own split (its files written in its directory), then a table prints
every split and the mean, also written to ``DIR/eval_<split>_splits.json``
(:func:`cfjax.train.splits.evaluate_splits`).
"""

from __future__ import annotations

from absl import flags
from ml_collections import config_flags

from experiments import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/NAME.py[:key=value,...]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "the training directory")
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best", "best, latest or a step number")
_SPLIT = flags.DEFINE_string("split", None, "data split (default: config.data.eval_split)")
_ALL_SPLITS = flags.DEFINE_bool(
    "all_splits", False, "evaluate DIR/split1, DIR/split2, ... (one model per dataset split) and print their mean"
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> int:
    del argv
    from cfjax.train import loop

    checkpoint = _CHECKPOINT.value
    checkpoint = int(checkpoint) if checkpoint.isdigit() else checkpoint
    if _ALL_SPLITS.value:
        from cfjax.train import splits

        per_split, mean = splits.evaluate_splits(_CONFIG.value, _WORKDIR.value, checkpoint, _SPLIT.value)
        print(splits.format_table(per_split, mean))
        return 0
    scores, _ = loop.evaluate(_CONFIG.value, _WORKDIR.value, checkpoint, _SPLIT.value)
    for key, value in scores.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    cli.run(main)
