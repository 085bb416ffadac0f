"""Coarse-Fine Grid Pool sampling positions over a clip: thumbnails, a tick per position, a histogram."""

from __future__ import annotations

import pathlib

import numpy as np
from matplotlib.figure import Figure

from cfjax.analysis.plots.common import (
    GT_COLOUR,
    LEGEND_OUTSIDE,
    check_fps,
    check_frame_indices,
    check_frames,
    check_int,
    check_path,
    frame_range_text,
    frame_strip,
    save,
    set_axes_title,
    set_suptitle,
    show_strip,
    strip_height,
)
from cfjax.metrics._checks import real_array


def _segments(segments, num_frames: int) -> np.ndarray:
    """``[S, 2]`` int64 inclusive ``(start, end)`` with ``0 <= start <= end <= T - 1``."""
    if segments is None:
        return np.zeros((0, 2), np.int64)
    array = np.asarray(segments)
    if array.size == 0:
        return np.zeros((0, 2), np.int64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"segments: expected [S, 2] (start, end) frame indices, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise ValueError(f"segments: expected integer frame indices, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if np.any(array[:, 0] > array[:, 1]) or array.min() < 0 or array.max() > num_frames - 1:
        raise ValueError(f"segments: expected 0 <= start <= end <= T - 1 = {num_frames - 1}, got {array.tolist()}")
    return array


def _grid(grid) -> np.ndarray:
    grid = real_array("grid", grid, "[K + 1]", 1)
    if grid.shape[0] < 1:
        raise ValueError("grid: expected at least one position")
    if grid.min() < 0 or grid.max() > 1:
        raise ValueError(f"grid: expected values in [0, 1], got range [{grid.min():.4g}, {grid.max():.4g}]")
    if np.any(np.diff(grid) < 0):
        raise ValueError("grid: expected non-decreasing (monotone) positions")
    return grid


def _covered(segments: np.ndarray) -> int:
    """Number of distinct frames inside ``[S, 2]`` inclusive segments."""
    if segments.shape[0] == 0:
        return 0
    frames = np.zeros(int(segments.max()) + 1, bool)
    for start, end in segments:
        frames[start : end + 1] = True
    return int(frames.sum())


def _grid_positions_figure(
    frames, grid, segments=None, max_thumbnails=16, title=None, frame_indices=None, num_video_frames=None, fps=None
) -> Figure:
    frames = check_frames(frames)
    grid = _grid(grid)
    num_frames = frames.shape[0]
    segments = _segments(segments, num_frames)
    count = min(check_int(max_thumbnails, "max_thumbnails", 1), num_frames)
    frame_indices, num_video_frames = check_frame_indices(frame_indices, num_frames, num_video_frames)
    fps = check_fps(fps)

    positions = grid * (num_frames - 1)
    strip = frame_strip(frames, count)
    slot = (num_frames - 1) / (count - 1) if count > 1 else 1.0  # thumbnail j is centred on j * slot
    left, right = -slot / 2, (count - 1) * slot + slot / 2
    width_in = 10.0
    strip_in = strip_height(width_in, strip)
    fig = Figure(figsize=(width_in, strip_in + 2.8), layout="constrained")
    ax_strip, ax_marks, ax_density = fig.subplots(3, 1, sharex=True, height_ratios=[strip_in, 0.9, 1.4])

    show_strip(ax_strip, strip, left, right)
    clip = frame_range_text(frame_indices, num_video_frames, fps, count=num_frames)
    set_axes_title(ax_strip, f"{count} thumbnails of the clip: {clip}", width_in * 0.8, 8.33, loc="left")

    inside = np.zeros(positions.shape, bool)
    for k, (start, end) in enumerate(segments):
        inside |= (positions >= start - 0.5) & (positions <= end + 0.5)
        for ax in (ax_marks, ax_density):
            ax.axvspan(
                start - 0.5,
                end + 0.5,
                color=GT_COLOUR,
                alpha=0.25,
                linewidth=0,
                label="ground truth" if k == 0 else None,
            )
    ax_marks.vlines(positions, 0.1, 0.9, color="black", linewidth=1.0, label="sampling positions")
    ax_marks.plot(positions, np.full(positions.shape, 0.5), "o", color="tab:red", markersize=3)
    ax_marks.set_ylim(0, 1)
    ax_marks.set_yticks([])
    ax_marks.set_ylabel("grid", rotation=0, ha="right", va="center")
    summary = f"K + 1 = {positions.shape[0]} positions over T = {num_frames} frames"
    if segments.shape[0]:
        summary += f"; {inside.mean():.0%} inside ground truth (covering {_covered(segments) / num_frames:.0%})"
    set_axes_title(ax_marks, summary, width_in * 0.8, 8.33, loc="left")
    ax_marks.legend(fontsize="x-small", **LEGEND_OUTSIDE)

    bins = min(num_frames, 64)
    hist_edges = np.linspace(-0.5, num_frames - 0.5, bins + 1)
    counts, _ = np.histogram(positions, bins=hist_edges)
    ax_density.stairs(counts, hist_edges, fill=True, color="tab:blue", alpha=0.6, label="positions per bin")
    ax_density.axhline(positions.shape[0] / bins, color="gray", linestyle="--", linewidth=1, label="uniform")
    ax_density.set_ylabel("count")
    ax_density.set_xlabel("frame of the clip (0 = first)")
    ax_density.legend(fontsize="x-small", **LEGEND_OUTSIDE)
    ax_density.set_xlim(min(left, -0.5), max(right, num_frames - 0.5))
    set_suptitle(fig, title or "Coarse-Fine grid pool: sampling positions")
    return fig


def plot_grid_positions(
    frames,
    grid,
    path,
    segments=None,
    max_thumbnails: int = 16,
    title=None,
    dpi=100,
    frame_indices=None,
    num_video_frames=None,
    fps=None,
) -> pathlib.Path:
    """Coarse-Fine grid pool sampling positions over a clip, written as a PNG.

    Top: ``min(max_thumbnails, T)`` evenly spaced thumbnails (:func:`frame_strip`), titled
    with the video frames the clip holds when ``frame_indices`` are given; middle: a tick at
    each position ``g_k * (T - 1)`` on the clip's frame axis, with ground-truth segments
    shaded; bottom: histogram of positions per frame bin (at most 64 bins) against the
    uniform level. The share of positions inside the ground truth (within
    ``[start - 0.5, end + 0.5]``) is printed.

    Args:
      frames: ``[T, H, W, 3]`` uint8.
      grid: ``[K + 1]`` non-decreasing values in ``[0, 1]``.
      path: PNG file to write (parent folders are created).
      segments: ``[S, 2]`` int inclusive ``(start, end)`` frame indices of the action (in the clip).
      max_thumbnails: most thumbnails in the strip.
      title: figure title (wrapped to the figure's width).
      dpi: resolution of the PNG.
      frame_indices: ``[T]`` int video frame index of each clip frame (-1 = padding).
      num_video_frames: frames in the whole video.
      fps: frames per second of the video (the clip's span is also given in seconds).

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = check_path(path)
    figure = _grid_positions_figure(frames, grid, segments, max_thumbnails, title, frame_indices, num_video_frames, fps)
    return save(figure, path, dpi)
