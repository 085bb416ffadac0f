"""Per-frame (or per-window) class scores over time: lines of the top classes and a heatmap of all."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from cfjax.analysis.plots.common import (
    LEGEND_OUTSIDE,
    check_binary,
    check_fps,
    check_int,
    check_path,
    save,
    score_text,
    set_axes_title,
    set_suptitle,
)
from cfjax.metrics._checks import real_array

RANKINGS = ("max", "mean")
_MAX_LEGEND_NAME = 32  # characters of a class name in the legend
_LABEL_HEIGHT_IN = 0.16  # an x-small tick label with some room, in inches


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a ``[T]`` bool mask as inclusive ``(start, end)`` index pairs."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    change = np.diff(padded)
    return list(zip(np.flatnonzero(change == 1).tolist(), (np.flatnonzero(change == -1) - 1).tolist()))


def _time_edges(times: np.ndarray) -> np.ndarray:
    """``[T + 1]`` cell edges around ``[T]`` increasing times (midpoints; half a step at the ends)."""
    if times.shape[0] == 1:
        return np.array([times[0] - 0.5, times[0] + 0.5])
    mid = (times[:-1] + times[1:]) / 2
    return np.concatenate([[2 * times[0] - mid[0]], mid, [2 * times[-1] - mid[-1]]])


def class_summary(scores: np.ndarray, rank_by: str) -> np.ndarray:
    """``[C]`` per-class summary of ``[T, C]`` scores over time: ``"max"`` or ``"mean"``."""
    return scores.max(axis=0) if rank_by == "max" else scores.mean(axis=0)


def top_classes(scores: np.ndarray, top: int, rank_by: str = "max") -> np.ndarray:
    """Indices of the ``top`` classes of ``[T, C]`` scores by their ``rank_by`` over time, best first (ties: lower
    index)."""
    return np.argsort(-class_summary(scores, rank_by), kind="stable")[: min(top, scores.shape[1])]


def _close_rows(rows: np.ndarray, min_gap: float) -> list[list[int]]:
    """Sorted row indices grouped where consecutive rows are less than ``min_gap`` rows apart."""
    groups = [[int(rows[0])]]
    for row in rows[1:]:
        if row - groups[-1][-1] < min_gap:
            groups[-1].append(int(row))
        else:
            groups.append([int(row)])
    return groups


def _short(name: str) -> str:
    return name if len(name) <= _MAX_LEGEND_NAME else name[: _MAX_LEGEND_NAME - 1] + "…"


def _frame_scores_figure(
    scores, class_names=None, times=None, top=5, ground_truth=None, title=None, fps=None, rank_by="max"
) -> Figure:
    scores = real_array("scores", scores, "[T, C]", 2)
    num_frames, num_classes = scores.shape
    if num_frames < 1 or num_classes < 1:
        raise ValueError(f"scores: expected [T, C] with T, C >= 1, got shape {scores.shape}")
    if class_names is None:
        class_names = [f"class {c}" for c in range(num_classes)]
    else:
        if isinstance(class_names, str) or not isinstance(class_names, Sequence):
            raise ValueError(f"class_names: expected a list of C = {num_classes} str, got {type(class_names).__name__}")
        if len(class_names) != num_classes:
            raise ValueError(f"class_names: expected C = {num_classes} names, got {len(class_names)}")
        if not all(isinstance(n, str) for n in class_names):
            raise ValueError("class_names: expected str names")
        class_names = list(class_names)
    if times is None:
        times = np.arange(num_frames, dtype=np.float64)
    else:
        times = real_array("times", times, "[T]", 1)
        if times.shape[0] != num_frames:
            raise ValueError(f"times: expected T = {num_frames} values, got {times.shape[0]}")
        if np.any(np.diff(times) <= 0):
            raise ValueError("times: expected strictly increasing values")
    fps = check_fps(fps)
    if fps is not None:
        times = times / fps
    time_label = "time (s)" if fps is not None else "frame"
    top = check_int(top, "top", 1)
    if ground_truth is not None:
        ground_truth = check_binary(ground_truth, "ground_truth", scores.shape, "[T, C]")
    if rank_by not in RANKINGS:
        raise ValueError(f"rank_by: expected one of {RANKINGS}, got {rank_by!r}")

    chosen = top_classes(scores, top, rank_by)
    summary = class_summary(scores, rank_by)
    palette = colormaps["tab10"].colors
    edges = _time_edges(times)
    heat_height = float(np.clip(0.18 * num_classes, 1.5, 6.0))
    width_in = 11.0
    fig = Figure(figsize=(width_in, 3.2 + heat_height), layout="constrained")
    ax_lines, ax_heat = fig.subplots(2, 1, sharex=True, height_ratios=[3.2, heat_height])

    for rank, c in enumerate(chosen):
        colour = palette[rank % len(palette)]
        ax_lines.plot(
            times,
            scores[:, c],
            color=colour,
            marker="." if num_frames <= 64 else None,
            label=f"{_short(class_names[c])} ({rank_by} {score_text(summary[c])})",
        )
        if ground_truth is not None:
            for start, end in _runs(ground_truth[:, c]):
                ax_lines.axvspan(edges[start], edges[end + 1], color=colour, alpha=0.15, linewidth=0)
    ax_lines.set_ylabel("score")
    set_axes_title(
        ax_lines,
        f"top {len(chosen)} of {num_classes} classes by {rank_by} score"
        + ("; shaded: ground truth" if ground_truth is not None else ""),
        width_in * 0.6,
    )
    ax_lines.legend(fontsize="small", title=f"class ({rank_by} score)", title_fontsize="small", **LEGEND_OUTSIDE)
    ax_lines.grid(alpha=0.3)

    steps = np.diff(times)
    if num_frames == 1 or np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        image = ax_heat.imshow(
            scores.T,
            aspect="auto",
            interpolation="nearest",
            cmap="viridis",
            extent=(edges[0], edges[-1], num_classes - 0.5, -0.5),
        )
    else:
        image = ax_heat.pcolormesh(edges, np.arange(num_classes + 1) - 0.5, scores.T, cmap="viridis")
        ax_heat.set_ylim(num_classes - 0.5, -0.5)
    # Below the heatmap: the right margin holds the legend of the lines, and both panels keep one width.
    fig.colorbar(image, ax=ax_heat, label="score", location="bottom", shrink=0.6, aspect=50)
    rank_of = {int(c): r for r, c in enumerate(chosen)}
    if num_classes <= 30:
        groups = [[c] for c in range(num_classes)]
    else:  # only the top classes are named; rows closer than a label's height share one label
        groups = _close_rows(np.sort(chosen), _LABEL_HEIGHT_IN * num_classes / heat_height)
    ax_heat.set_yticks(
        [float(np.mean(g)) for g in groups],
        [" / ".join(_short(class_names[c]) for c in g) for g in groups],
        fontsize="small" if num_classes <= 15 else "x-small",
    )
    for tick, group in zip(ax_heat.get_yticklabels(), groups):
        ranks = [rank_of[int(c)] for c in group if int(c) in rank_of]
        if ranks:
            tick.set_color(palette[min(ranks) % len(palette)])
    ax_heat.set_ylabel("class" if num_classes <= 30 else f"class (all {num_classes}; top {len(chosen)} named)")
    ax_heat.set_xlabel(time_label)
    ax_heat.set_xlim(edges[0], edges[-1])
    if title:
        set_suptitle(fig, title)
    return fig


def plot_frame_scores(
    scores,
    path,
    class_names=None,
    times=None,
    top: int = 5,
    ground_truth=None,
    title=None,
    dpi=100,
    fps=None,
    rank_by: str = "max",
) -> pathlib.Path:
    """Per-frame class scores over time, written as a PNG.

    Top panel: lines of the ``top`` classes with the highest ``rank_by`` score over time,
    legend in that order with that score (shaded where ``ground_truth`` marks them true);
    bottom panel: heatmap of all classes.

    Args:
      scores: ``[T, C]`` real scores.
      path: PNG file to write (parent folders are created).
      class_names: ``C`` str (default ``"class c"``).
      times: ``[T]`` strictly increasing frame numbers of the video (e.g. window centres); default ``0 .. T - 1``.
      top: how many classes get a line (at most C are drawn).
      ground_truth: ``[T, C]`` bools or 0/1.
      title: figure title (wrapped to the figure's width).
      dpi: resolution of the PNG.
      fps: frames per second of the video: the x axis is then ``times / fps`` in seconds, else frames.
      rank_by: ``"max"`` or ``"mean"`` over time: which classes get a line, and their order.

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = check_path(path)
    return save(_frame_scores_figure(scores, class_names, times, top, ground_truth, title, fps, rank_by), path, dpi)
