"""Where a trained CFAD loses its tubes (see :mod:`cfjax.analysis.cfad_diagnosis` for what each row is).

    python -m experiments.diagnose_cfad --config configs/cfad.py:data=ucf101_24,variant=synthetic --workdir DIR \
        [--checkpoint best|latest|STEP] [--split test]

Prints one table (means over the split's GT tubes, or over the sampled steps with a GT
box) and writes ``DIR/diagnosis_<split>.json``.
"""

from __future__ import annotations

from absl import flags
from ml_collections import config_flags

from experiments import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/NAME.py[:key=value,...]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "the training directory")
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best", "best, latest or a step number")
_SPLIT = flags.DEFINE_string("split", None, "data split (default: config.data.eval_split)")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> int:
    del argv
    from cfjax.analysis.cfad_diagnosis import ROWS, diagnose

    checkpoint = _CHECKPOINT.value
    checkpoint = int(checkpoint) if checkpoint.isdigit() else checkpoint
    result = diagnose(_CONFIG.value, _WORKDIR.value, checkpoint, _SPLIT.value)
    print(
        f"step {result['step']}, split {result['split']}: {result['gt_tubes']} GT tubes, "
        f"{result['gt_steps']} sampled steps with a GT box"
    )
    for key, kind, text in ROWS:
        print(f"{('per step: ' if kind == 'step' else '') + text:52s} {result[key]:6.3f}")
    return 0


if __name__ == "__main__":
    cli.run(main)
