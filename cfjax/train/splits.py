"""Results averaged over a dataset's splits (JHMDB-21: ACT's 3 splits, one trained model each).

A dataset with several splits has builder configs ``split1``, ``split2``, ...; each split needs
its own model, trained in ``DIR/splitK`` with ``--config.data.config=splitK``. Then
:func:`evaluate_splits` (``python -m experiments.evaluate --all_splits --workdir DIR``)
evaluates every ``DIR/splitK`` on its own split and reports each split and the mean.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import jax
import numpy as np

__all__ = ["dataset_splits", "evaluate_splits", "format_table", "mean_over_splits"]

_SPLIT = re.compile(r"split(\d+)")


def dataset_splits(dataset: str) -> list[str]:
    """The ``splitK`` builder configs of ``dataset`` (a :data:`cfjax.data.builders.BUILDERS` name), in order."""
    from cfjax.data.builders import BUILDERS

    if dataset not in BUILDERS:
        raise ValueError(f"data.dataset: expected one of {sorted(BUILDERS)}, got {dataset!r}")
    names = [c.name for c in BUILDERS[dataset].BUILDER_CONFIGS if _SPLIT.fullmatch(c.name)]
    return sorted(names, key=lambda n: int(_SPLIT.fullmatch(n).group(1)))


def mean_over_splits(per_split: Mapping[str, Mapping]) -> dict:
    """The metrics every split has: floats averaged (a NaN stays NaN), integer counts summed."""
    if not per_split:
        raise ValueError("per_split: expected the metrics of at least one split")
    rows = list(per_split.values())
    out = {}
    for key in rows[0]:
        values = [r.get(key) for r in rows]
        if any(isinstance(v, bool) or not isinstance(v, (int, float, np.number)) for v in values):
            continue
        if all(isinstance(v, (int, np.integer)) for v in values):
            out[key] = int(sum(values))
        else:
            out[key] = float(np.mean(np.asarray(values, np.float64)))
    return out


def _has_checkpoint(workdir: Path) -> bool:
    return any(p.name.isdigit() for p in (workdir / "checkpoints").glob("*"))


def evaluate_splits(
    config,
    workdir,
    checkpoint: str | int = "best",
    split: str | None = None,
    *,
    evaluate: Callable | None = None,
) -> tuple[dict[str, dict], dict]:
    """Evaluates ``workdir/splitK`` with ``config.data.config = "splitK"`` for every split of the dataset.

    Every split's workdir must hold a checkpoint (checked before anything is evaluated).
    ``evaluate(config, workdir, checkpoint, split) -> (scores, table)`` defaults to
    :func:`cfjax.train.loop.evaluate` (which writes each split's ``eval_<split>.json``).
    Writes ``workdir/eval_<split>_splits.json`` (each split's metrics and the mean).

    Returns:
      ``(per_split {"split1": scores, ...}, mean)`` (:func:`mean_over_splits`).
    """
    workdir = Path(workdir)
    names = dataset_splits(config.data.dataset)
    if len(names) < 2:
        raise ValueError(
            f"--all_splits: dataset {config.data.dataset} has {len(names)} split config(s) {names}; "
            "expected several (e.g. cfjax_jhmdb's split1..3): evaluate without --all_splits"
        )
    for name in names:
        if not _has_checkpoint(workdir / name):
            raise FileNotFoundError(
                f"--all_splits: no checkpoint in {workdir / name / 'checkpoints'}; train that split first "
                f"(python -m experiments.train --config ... --config.data.config={name} --workdir {workdir / name})"
            )
    if evaluate is None:
        from cfjax.train.loop import evaluate
    per_split = {}
    for name in names:
        split_config = copy.deepcopy(config)
        with split_config.unlocked():
            split_config.data.config = name
        per_split[name], _ = evaluate(split_config, workdir / name, checkpoint, split)
    mean = mean_over_splits(per_split)
    split = split or config.data.eval_split
    if jax.process_index() == 0:
        record = {"split": split, "checkpoint": checkpoint, "splits": per_split, "mean": mean}
        (workdir / f"eval_{split}_splits.json").write_text(json.dumps(record, indent=1))
    return per_split, mean


def format_table(per_split: Mapping[str, Mapping], mean: Mapping) -> str:
    """One line per metric of ``mean``: its value on each split, then the mean (4 decimals for floats)."""

    def cell(value) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    columns = [*per_split, "mean"]
    rows = [["metric", *columns]]
    rows += [[key, *(cell(per_split[c].get(key)) for c in per_split), cell(mean[key])] for key in mean]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns) + 1)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)
