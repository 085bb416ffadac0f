"""Probes of a trained adaptive model on fresh synthetic videos; prints a table.

    python -m experiments.study --what sgs_redundancy --config configs/NAME.py:...,variant=synthetic --workdir DIR \
        [--checkpoint best] [--clips 64]

``sgs_redundancy``: mean active SGS bins (and top-1) of an ATFR model on clips that are static
for 0, 25, 50, 75 and 100 % of their frame transitions (``cfjax.analysis.studies``).
"""

from __future__ import annotations

from absl import flags
from ml_collections import config_flags

from experiments import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/NAME.py[:key=value,...]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "the training directory")
_WHAT = flags.DEFINE_enum("what", "sgs_redundancy", ["sgs_redundancy"], "which probe")
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best", "best, latest or a step number")
_CLIPS = flags.DEFINE_integer("clips", 64, "clips per level")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> int:
    del argv
    from cfjax.analysis import studies
    from cfjax.train import loop

    exp = loop.Experiment(_CONFIG.value, _WORKDIR.value)
    checkpoint = _CHECKPOINT.value
    state, step = loop.restore_state(exp, int(checkpoint) if checkpoint.isdigit() else checkpoint)
    rows = studies.sgs_bins_by_redundancy(exp, state, clips_per_level=_CLIPS.value)
    print(f"{_WHAT.value}: {_WORKDIR.value}, step {step}, {_CLIPS.value} clips per level")
    print("| redundancy | active bins (mean) | std | top-1 |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['redundancy']:.2f} | {r['active_bins']:.2f} | {r['std']:.2f} | {r['top1']:.2f} |")
    return 0


if __name__ == "__main__":
    cli.run(main)
