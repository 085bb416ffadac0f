"""GCF-Net clip gates: one thumbnail per clip above a bar of its gate."""

from __future__ import annotations

import pathlib

import numpy as np
from matplotlib.figure import Figure

from cfjax.analysis.plots.common import (
    LEGEND_OUTSIDE,
    check_binary,
    check_frames,
    check_path,
    frame_strip,
    save,
    set_axes_title,
    set_suptitle,
    show_strip,
    strip_height,
)
from cfjax.metrics._checks import real_array


def _clip_gates_figure(thumbnails, gates, relevant=None, threshold=0.5, title=None) -> Figure:
    thumbnails = check_frames(thumbnails, "thumbnails")
    count = thumbnails.shape[0]
    gates = real_array("gates", gates, "[N]", 1)
    if gates.shape[0] != count:
        raise ValueError(f"gates: expected N = {count} values (one per thumbnail), got {gates.shape[0]}")
    if gates.min() < 0 or gates.max() > 1:
        raise ValueError(f"gates: expected values in [0, 1], got range [{gates.min():.4g}, {gates.max():.4g}]")
    if relevant is not None:
        relevant = check_binary(relevant, "relevant", (count,), "[N]")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.integer, np.floating))
        or not 0 <= threshold <= 1
    ):
        raise ValueError(f"threshold: expected a number in [0, 1], got {threshold!r}")

    selected = gates >= threshold
    strip = frame_strip(thumbnails, count)
    width_in = float(np.clip(0.9 * count, 7.0, 16.0))
    strip_in = strip_height(width_in, strip)
    fig = Figure(figsize=(width_in, strip_in + 2.8), layout="constrained")
    ax_strip, ax_bars = fig.subplots(2, 1, sharex=True, height_ratios=[strip_in, 2.2])
    show_strip(ax_strip, strip, -0.5, count - 0.5)
    set_axes_title(ax_strip, "middle frame of each clip", width_in * 0.7, 8.33, loc="left")

    x = np.arange(count)
    colours = np.where(selected, "tab:orange", "tab:gray")
    hatches = ["//" if relevant is not None and relevant[i] else "" for i in range(count)]
    ax_bars.bar(x, gates, width=0.8, color=colours, hatch=hatches, edgecolor="black", linewidth=0.5)
    ax_bars.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    summary = f"{int(selected.sum())} of {count} clips selected"
    if relevant is not None:
        ax_bars.plot(
            x[relevant],
            np.minimum(gates[relevant] + 0.06, 1.1),
            "*",
            color="tab:red",
            markersize=8,
            label="relevant (hatched)",
        )
        hits = int(np.sum(selected & relevant))
        precision = hits / selected.sum() if selected.any() else float("nan")
        recall = hits / relevant.sum() if relevant.any() else float("nan")
        summary += f"; precision {precision:.2f}, recall {recall:.2f}"
    ax_bars.set_ylim(0, 1.15)
    ax_bars.set_xlim(-0.5, count - 0.5)
    ax_bars.set_xticks(x if count <= 40 else x[:: -(-count // 40)])
    ax_bars.set_xlabel("clip")
    ax_bars.set_ylabel("gate")
    set_axes_title(ax_bars, summary, width_in * 0.7, 8.33, loc="left")
    ax_bars.legend(fontsize="x-small", **LEGEND_OUTSIDE)
    set_suptitle(fig, title or "clip gates")
    return fig


def plot_clip_gates(
    thumbnails, gates, path, relevant=None, threshold: float = 0.5, title=None, dpi=100
) -> pathlib.Path:
    """Per-clip gates under one thumbnail per clip, written as a PNG.

    Bars at or above ``threshold`` (dashed line) are orange, others grey;
    relevant clips are hatched and starred, and the precision / recall of the
    selection against ``relevant`` is printed.

    Args:
      thumbnails: ``[N, H, W, 3]`` uint8, one frame per clip (e.g. its middle frame).
      gates: ``[N]`` values in ``[0, 1]``.
      path: PNG file to write (parent folders are created).
      relevant: ``[N]`` bools or 0/1: ground-truth relevant clips.
      threshold: selection threshold in ``[0, 1]``.
      title: figure title (wrapped to the figure's width).
      dpi: resolution of the PNG.

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = check_path(path)
    return save(_clip_gates_figure(thumbnails, gates, relevant, threshold, title), path, dpi)
