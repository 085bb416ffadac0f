"""Training curves: one panel per metric, one line per split, from ``metrics.jsonl`` lines.

    >>> from cfjax.train.writers import read_metrics
    >>> plot_metrics(read_metrics(workdir), "curves.png", keys=["loss", "top1"])
"""

from __future__ import annotations

import math
import pathlib

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from cfjax.analysis.plots.common import LEGEND_OUTSIDE, check_path, save, set_suptitle

__all__ = ["plot_metrics"]


def _series(records, key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``split -> (steps, values)`` of ``key`` (finite numbers only), splits in first-seen order."""
    out: dict[str, list] = {}
    for r in records:
        value = r.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        out.setdefault(str(r.get("split", "")), []).append((int(r["step"]), float(value)))
    return {s: (np.array([p[0] for p in v]), np.array([p[1] for p in v])) for s, v in out.items()}


def _steps(records, split: str) -> set[int]:
    return {int(r["step"]) for r in records if str(r.get("split", "")) == split}


def plot_metrics(records, path, keys=None, title: str | None = None, dpi: float = 100) -> pathlib.Path:
    """One panel per metric in ``keys`` (default: every numeric key except step and time), x = step.

    ``records``: dicts with ``step``, ``split`` and metric values (``cfjax.train.writers.read_metrics``).
    A split with a single point (e.g. the final evaluation) is drawn as a marker; ``title``
    defaults to "training curves".
    """
    path = check_path(path)
    records = list(records)
    if not records:
        raise ValueError("records: expected at least one metrics line, got none")
    for i, r in enumerate(records):
        if not isinstance(r, dict) or "step" not in r:
            raise ValueError(f"records[{i}]: expected a dict with a 'step', got {r!r}")
    if keys is None:
        keys = []
        for r in records:
            for k, v in r.items():
                numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
                if numeric and k not in ("step", "split") and "time" not in k and k not in keys:
                    keys.append(k)
    keys = [k for k in keys if _series(records, k)]
    if not keys:
        raise ValueError("keys: none of the requested metrics has a finite value in records")
    splits = list(dict.fromkeys(str(r.get("split", "")) for r in records))
    colours = {split: f"C{i % 10}" for i, split in enumerate(splits)}  # one colour per split in every panel
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig = Figure(figsize=(4.2 * cols + 1.2, 2.8 * rows + 0.6), layout="constrained")
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        for split, (steps, values) in _series(records, key).items():
            style = {"marker": "o"} if len(steps) == 1 else {}
            ax.plot(steps, values, color=colours[split], **style)
        ax.set_ylabel(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if i == cols - 1:  # every split, once, right of the first row
            handles = [Line2D([], [], color=colours[s], marker="o" if len(_steps(records, s)) == 1 else None)
                       for s in splits]
            ax.legend(handles, [s or "(no split)" for s in splits], **LEGEND_OUTSIDE)
    set_suptitle(fig, title or "training curves")
    return save(fig, path, dpi)
