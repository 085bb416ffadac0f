"""Figures for inspecting what the models look at: frame scores, Coarse-Fine grid
positions, SGS bins, clip gates and action tubes.

Only numpy and matplotlib: figures are built as ``matplotlib.figure.Figure`` on
an Agg canvas (no pyplot, no global backend switch), written as PNG, and each
plotting function returns the written ``pathlib.Path`` (parent folders are
created). Frames must be ``uint8`` RGB ``[T, H, W, 3]``.

    >>> from cfjax.analysis.plots import plot_grid_positions
    >>> plot_grid_positions(frames, grid, "out/grid.png", segments=[[10, 25]])
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "frame_strip",
    "plot_clip_gates",
    "plot_frame_scores",
    "plot_grid_positions",
    "plot_sgs_bins",
    "plot_tubes",
    "strip_indices",
]

_GT_COLOUR = "tab:green"
_NO_BIN_COLOUR = (0.78, 0.78, 0.78)
_MAX_SGS_THUMBNAILS = 32


# ----------------------------------------------------------------------------- validation


def _int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def _frames(frames, name: str = "frames") -> np.ndarray:
    """``[T, H, W, 3]`` uint8 with T, H, W >= 1."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape) < 1:
        raise ValueError(f"{name}: expected uint8 RGB frames [T, H, W, 3] with T, H, W >= 1, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8, got {frames.dtype} "
                         "(convert floats in [0, 1] with (x * 255).round().astype(np.uint8))")
    return frames


def _real(value, name: str, shape_text: str, ndim: int) -> np.ndarray:
    """A finite real array (bools and ints become float64) of ``ndim`` dimensions."""
    array = np.asarray(value)
    if array.ndim != ndim:
        raise ValueError(f"{name}: expected {shape_text}, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected real numbers {shape_text}, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return array


def _binary(value, name: str, shape: tuple[int, ...], shape_text: str) -> np.ndarray:
    """Bool array of ``shape`` from bools or 0/1 numbers."""
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape_text} = {shape}, got {array.shape}")
    if array.dtype.kind not in "biuf" or not np.all((array == 0) | (array == 1)):
        raise ValueError(f"{name}: expected bools or 0/1 values")
    return array.astype(bool)


def _path(path) -> pathlib.Path:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"path: expected a non-empty str or os.PathLike, got {path!r}")
    return pathlib.Path(path)


def _save(fig: Figure, path: pathlib.Path, dpi) -> pathlib.Path:
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float, np.integer, np.floating)) or not dpi > 0:
        raise ValueError(f"dpi: expected a positive number, got {dpi!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=dpi)
    return path


# ----------------------------------------------------------------------------- thumbnails


def strip_indices(num_frames: int, count: int) -> np.ndarray:
    """Frame indices ``[count]`` used by :func:`frame_strip`.

    ``count == 1``: the middle frame ``(num_frames - 1) // 2``. Otherwise frame
    ``j`` is ``j * (num_frames - 1) / (count - 1)`` rounded half up, so the first
    and last frames are always included, and ``count == num_frames`` gives
    ``0 .. num_frames - 1``; ``count > num_frames`` repeats frames.
    """
    num_frames = _int(num_frames, "num_frames", 1)
    count = _int(count, "count", 1)
    if count == 1:
        return np.array([(num_frames - 1) // 2], np.int64)
    j = np.arange(count, dtype=np.int64)
    # floor(j (T - 1) / (count - 1) + 1/2) in exact integer arithmetic.
    return (2 * j * (num_frames - 1) + (count - 1)) // (2 * (count - 1))


def frame_strip(frames, count: int) -> np.ndarray:
    """``count`` evenly spaced frames of ``[T, H, W, 3]`` uint8 side by side: ``[H, count * W, 3]`` uint8.

    The frames are ``frames[strip_indices(T, count)]`` (see :func:`strip_indices`).
    """
    frames = _frames(frames)
    index = strip_indices(frames.shape[0], _int(count, "count", 1))
    return np.concatenate(list(frames[index]), axis=1)


def _show_strip(ax, strip: np.ndarray, left: float, right: float) -> None:
    ax.imshow(strip, extent=(left, right, strip.shape[0], 0), aspect="auto", interpolation="antialiased")
    ax.set_yticks([])
    ax.tick_params(axis="x", labelbottom=False)


def _strip_height(width_in: float, strip: np.ndarray) -> float:
    return float(np.clip(width_in * strip.shape[0] / strip.shape[1], 0.4, 3.0))


# ----------------------------------------------------------------------------- frame scores


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


def _top_classes(scores: np.ndarray, top: int) -> np.ndarray:
    """Indices of the ``top`` classes of ``[T, C]`` scores by max over time, best first (ties: lower index)."""
    return np.argsort(-scores.max(axis=0), kind="stable")[: min(top, scores.shape[1])]


def _frame_scores_figure(scores, class_names=None, times=None, top=5, ground_truth=None, title=None) -> Figure:
    scores = _real(scores, "scores", "[T, C]", 2)
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
        times, time_label = np.arange(num_frames, dtype=np.float64), "frame"
    else:
        times, time_label = _real(times, "times", "[T]", 1), "time"
        if times.shape[0] != num_frames:
            raise ValueError(f"times: expected T = {num_frames} values, got {times.shape[0]}")
        if np.any(np.diff(times) <= 0):
            raise ValueError("times: expected strictly increasing values")
    top = _int(top, "top", 1)
    if ground_truth is not None:
        ground_truth = _binary(ground_truth, "ground_truth", scores.shape, "[T, C]")

    chosen = _top_classes(scores, top)
    palette = colormaps["tab10"].colors
    edges = _time_edges(times)
    heat_height = float(np.clip(0.18 * num_classes, 1.5, 6.0))
    fig = Figure(figsize=(9, 3.2 + heat_height), layout="constrained")
    ax_lines, ax_heat = fig.subplots(2, 1, sharex=True, height_ratios=[3.2, heat_height])

    for rank, c in enumerate(chosen):
        colour = palette[rank % len(palette)]
        ax_lines.plot(times, scores[:, c], color=colour, marker="." if num_frames <= 64 else None,
                      label=f"{class_names[c]} (max {scores[:, c].max():.3g})")
        if ground_truth is not None:
            for start, end in _runs(ground_truth[:, c]):
                ax_lines.axvspan(edges[start], edges[end + 1], color=colour, alpha=0.15, linewidth=0)
    ax_lines.set_ylabel("score")
    ax_lines.set_title(f"top {len(chosen)} of {num_classes} classes by max score"
                       + ("; shaded: ground truth" if ground_truth is not None else ""), fontsize="medium")
    ax_lines.legend(loc="upper left", fontsize="small", framealpha=0.8)
    ax_lines.grid(alpha=0.3)

    steps = np.diff(times)
    if num_frames == 1 or np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        image = ax_heat.imshow(scores.T, aspect="auto", interpolation="nearest", cmap="viridis",
                               extent=(edges[0], edges[-1], num_classes - 0.5, -0.5))
    else:
        image = ax_heat.pcolormesh(edges, np.arange(num_classes + 1) - 0.5, scores.T, cmap="viridis")
        ax_heat.set_ylim(num_classes - 0.5, -0.5)
    fig.colorbar(image, ax=ax_heat, label="score")
    shown = np.arange(num_classes) if num_classes <= 30 else np.sort(chosen)
    ax_heat.set_yticks(shown, [class_names[c] for c in shown], fontsize="small" if num_classes <= 15 else "x-small")
    rank_of = {int(c): r for r, c in enumerate(chosen)}
    for tick, c in zip(ax_heat.get_yticklabels(), shown):
        if int(c) in rank_of:
            tick.set_color(palette[rank_of[int(c)] % len(palette)])
    ax_heat.set_xlabel(time_label)
    ax_heat.set_xlim(edges[0], edges[-1])
    if title:
        fig.suptitle(title)
    return fig


def plot_frame_scores(scores, path, class_names=None, times=None, top: int = 5, ground_truth=None, title=None,
                      dpi=100) -> pathlib.Path:
    """Per-frame class scores over time, written as a PNG.

    Top panel: lines of the ``top`` classes with the highest max score (shaded
    where ``ground_truth`` marks them true); bottom panel: heatmap of all classes.

    Args:
      scores: ``[T, C]`` real scores.
      path: PNG file to write (parent folders are created).
      class_names: ``C`` str (default ``"class c"``).
      times: ``[T]`` strictly increasing times (seconds or frame numbers); default ``0 .. T - 1``.
      top: how many classes get a line (at most C are drawn).
      ground_truth: ``[T, C]`` bools or 0/1.
      title: figure title.
      dpi: resolution of the PNG.

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = _path(path)
    return _save(_frame_scores_figure(scores, class_names, times, top, ground_truth, title), path, dpi)


# ----------------------------------------------------------------------------- Coarse-Fine grid


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
    grid = _real(grid, "grid", "[K + 1]", 1)
    if grid.shape[0] < 1:
        raise ValueError("grid: expected at least one position")
    if grid.min() < 0 or grid.max() > 1:
        raise ValueError(f"grid: expected values in [0, 1], got range [{grid.min():.4g}, {grid.max():.4g}]")
    if np.any(np.diff(grid) < 0):
        raise ValueError("grid: expected non-decreasing (monotone) positions")
    return grid


def _grid_positions_figure(frames, grid, segments=None, max_thumbnails=16, title=None) -> Figure:
    frames = _frames(frames)
    grid = _grid(grid)
    num_frames = frames.shape[0]
    segments = _segments(segments, num_frames)
    count = min(_int(max_thumbnails, "max_thumbnails", 1), num_frames)

    positions = grid * (num_frames - 1)
    strip = frame_strip(frames, count)
    slot = (num_frames - 1) / (count - 1) if count > 1 else 1.0  # thumbnail j is centred on j * slot
    left, right = -slot / 2, (count - 1) * slot + slot / 2
    width_in = 10.0
    strip_in = _strip_height(width_in, strip)
    fig = Figure(figsize=(width_in, strip_in + 2.6), layout="constrained")
    ax_strip, ax_marks, ax_density = fig.subplots(3, 1, sharex=True, height_ratios=[strip_in, 0.9, 1.4])

    _show_strip(ax_strip, strip, left, right)
    ax_strip.set_title(f"{count} of {num_frames} frames", fontsize="small", loc="left")

    inside = np.zeros(positions.shape, bool)
    for k, (start, end) in enumerate(segments):
        inside |= (positions >= start - 0.5) & (positions <= end + 0.5)
        for ax in (ax_marks, ax_density):
            ax.axvspan(start - 0.5, end + 0.5, color=_GT_COLOUR, alpha=0.25, linewidth=0,
                       label="ground truth" if k == 0 and ax is ax_marks else None)
    ax_marks.vlines(positions, 0.1, 0.9, color="black", linewidth=1.0, label="sampling positions")
    ax_marks.plot(positions, np.full(positions.shape, 0.5), "o", color="tab:red", markersize=3)
    ax_marks.set_ylim(0, 1)
    ax_marks.set_yticks([])
    summary = f"K + 1 = {positions.shape[0]} positions over T = {num_frames} frames"
    if segments.shape[0]:
        summary += f"; {inside.mean():.0%} inside ground truth (covering {_covered(segments) / num_frames:.0%})"
    ax_marks.set_title(summary, fontsize="small", loc="left")
    ax_marks.legend(loc="upper right", fontsize="x-small", framealpha=0.8)

    bins = min(num_frames, 64)
    hist_edges = np.linspace(-0.5, num_frames - 0.5, bins + 1)
    counts, _ = np.histogram(positions, bins=hist_edges)
    ax_density.stairs(counts, hist_edges, fill=True, color="tab:blue", alpha=0.6, label="positions per bin")
    ax_density.axhline(positions.shape[0] / bins, color="gray", linestyle="--", linewidth=1, label="uniform")
    ax_density.set_ylabel("count")
    ax_density.set_xlabel("frame")
    ax_density.legend(loc="upper right", fontsize="x-small", framealpha=0.8)
    ax_density.set_xlim(min(left, -0.5), max(right, num_frames - 0.5))
    fig.suptitle(title or "Coarse-Fine grid pool: sampling positions")
    return fig


def _covered(segments: np.ndarray) -> int:
    """Number of distinct frames inside ``[S, 2]`` inclusive segments."""
    if segments.shape[0] == 0:
        return 0
    frames = np.zeros(int(segments.max()) + 1, bool)
    for start, end in segments:
        frames[start : end + 1] = True
    return int(frames.sum())


def plot_grid_positions(frames, grid, path, segments=None, max_thumbnails: int = 16, title=None,
                        dpi=100) -> pathlib.Path:
    """Coarse-Fine grid pool sampling positions over a clip, written as a PNG.

    Top: ``min(max_thumbnails, T)`` evenly spaced thumbnails (:func:`frame_strip`);
    middle: a tick at each position ``g_k * (T - 1)`` on the frame axis, with
    ground-truth segments shaded; bottom: histogram of positions per frame bin
    (at most 64 bins) against the uniform level. The share of positions inside
    the ground truth (within ``[start - 0.5, end + 0.5]``) is printed.

    Args:
      frames: ``[T, H, W, 3]`` uint8.
      grid: ``[K + 1]`` non-decreasing values in ``[0, 1]``.
      path: PNG file to write (parent folders are created).
      segments: ``[S, 2]`` int inclusive ``(start, end)`` frame indices of the action.
      max_thumbnails: most thumbnails in the strip.
      title: figure title.
      dpi: resolution of the PNG.

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = _path(path)
    return _save(_grid_positions_figure(frames, grid, segments, max_thumbnails, title), path, dpi)


# ----------------------------------------------------------------------------- SGS bins


def _bins(bins, num_frames: int) -> np.ndarray:
    array = np.asarray(bins)
    if array.ndim != 1 or array.shape[0] != num_frames:
        raise ValueError(f"bins: expected [T] = [{num_frames}] bin indices, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise ValueError(f"bins: expected integer bin indices, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and array.min() < -1:
        raise ValueError(f"bins: expected values >= -1 (-1 = none), got {array.min()}")
    return array


def _bin_colours(bins: np.ndarray) -> np.ndarray:
    """``[T, 3]`` float RGB: distinct bins in sorted order cycle through tab20; -1 is light grey."""
    palette = np.asarray(colormaps["tab20"].colors)
    used = np.unique(bins[bins >= 0])
    rank = np.searchsorted(used, bins)
    colours = palette[rank % len(palette)]
    colours[bins < 0] = _NO_BIN_COLOUR
    return colours


def _sgs_bins_figure(frames, bins, title=None) -> Figure:
    frames = _frames(frames)
    num_frames, height, width, _ = frames.shape
    bins = _bins(bins, num_frames)
    colours = _bin_colours(bins)
    used = int(np.unique(bins[bins >= 0]).size)

    index = strip_indices(num_frames, min(num_frames, _MAX_SGS_THUMBNAILS))
    cols = min(len(index), 8)
    rows = -(-len(index) // cols)
    border = max(2, min(height, width) // 8)
    label = max(8, (height + 2 * border) // 3)  # white strip under each tile for its caption
    tile_h, tile_w = height + 2 * border + label, width + 2 * border
    canvas = np.full((rows * tile_h, cols * tile_w, 3), 255, np.uint8)
    for n, t in enumerate(index):
        y, x = (n // cols) * tile_h, (n % cols) * tile_w
        canvas[y : y + height + 2 * border, x : x + tile_w] = np.round(colours[t] * 255).astype(np.uint8)
        canvas[y + border : y + border + height, x + border : x + border + width] = frames[t]

    width_in = min(12.0, 1.4 * cols + 0.5)
    grid_in = float(np.clip(width_in * canvas.shape[0] / canvas.shape[1], 0.8, 9.0))
    fig = Figure(figsize=(width_in, grid_in + 1.1), layout="constrained")
    ax_tiles, ax_band = fig.subplots(2, 1, height_ratios=[grid_in, 0.35])
    ax_tiles.imshow(canvas, interpolation="antialiased")
    ax_tiles.set_axis_off()
    for n, t in enumerate(index):
        y, x = (n // cols) * tile_h, (n % cols) * tile_w
        ax_tiles.text(x + tile_w / 2, y + height + 2 * border + label / 2, f"t{t} b{bins[t]}" if bins[t] >= 0
                      else f"t{t} -", ha="center", va="center", fontsize="x-small")
    shown = "all" if len(index) == num_frames else f"{len(index)} of"
    ax_tiles.set_title(f"B' = {used} distinct bins used; {shown} {num_frames} frames shown", fontsize="medium")

    ax_band.imshow(colours[None], aspect="auto", interpolation="nearest", extent=(-0.5, num_frames - 0.5, 1, 0))
    ax_band.set_yticks([])
    ax_band.set_xlabel("frame (colour = SGS bin, grey = none)")
    if title:
        fig.suptitle(title)
    return fig


def plot_sgs_bins(frames, bins, path, title=None, dpi=100) -> pathlib.Path:
    """SGS bin of each frame as coloured thumbnail borders, written as a PNG.

    At most 32 thumbnails (``strip_indices(T, 32)`` when T > 32), each framed in
    its bin's colour and captioned ``t<frame> b<bin>``; below, a colour band for
    all T frames; the title gives B' (distinct bins used, -1 excluded).

    Args:
      frames: ``[T, H, W, 3]`` uint8.
      bins: ``[T]`` int: the SGS bin each frame contributes to most, -1 = none / padded.
      path: PNG file to write (parent folders are created).
      title: figure title.
      dpi: resolution of the PNG.

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = _path(path)
    return _save(_sgs_bins_figure(frames, bins, title), path, dpi)


# ----------------------------------------------------------------------------- clip gates


def _clip_gates_figure(thumbnails, gates, relevant=None, threshold=0.5, title=None) -> Figure:
    thumbnails = _frames(thumbnails, "thumbnails")
    count = thumbnails.shape[0]
    gates = _real(gates, "gates", "[N]", 1)
    if gates.shape[0] != count:
        raise ValueError(f"gates: expected N = {count} values (one per thumbnail), got {gates.shape[0]}")
    if gates.min() < 0 or gates.max() > 1:
        raise ValueError(f"gates: expected values in [0, 1], got range [{gates.min():.4g}, {gates.max():.4g}]")
    if relevant is not None:
        relevant = _binary(relevant, "relevant", (count,), "[N]")
    if (isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating))
            or not 0 <= threshold <= 1):
        raise ValueError(f"threshold: expected a number in [0, 1], got {threshold!r}")

    selected = gates >= threshold
    strip = frame_strip(thumbnails, count)
    width_in = float(np.clip(0.9 * count, 6.0, 16.0))
    strip_in = _strip_height(width_in, strip)
    fig = Figure(figsize=(width_in, strip_in + 2.6), layout="constrained")
    ax_strip, ax_bars = fig.subplots(2, 1, sharex=True, height_ratios=[strip_in, 2.2])
    _show_strip(ax_strip, strip, -0.5, count - 0.5)

    x = np.arange(count)
    colours = np.where(selected, "tab:orange", "tab:gray")
    hatches = ["//" if relevant is not None and relevant[i] else "" for i in range(count)]
    ax_bars.bar(x, gates, width=0.8, color=colours, hatch=hatches, edgecolor="black", linewidth=0.5)
    ax_bars.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    summary = f"{int(selected.sum())} of {count} clips selected"
    if relevant is not None:
        ax_bars.plot(x[relevant], np.minimum(gates[relevant] + 0.06, 1.1), "*", color="tab:red", markersize=8,
                     label="relevant (hatched)")
        hits = int(np.sum(selected & relevant))
        precision = hits / selected.sum() if selected.any() else float("nan")
        recall = hits / relevant.sum() if relevant.any() else float("nan")
        summary += f"; precision {precision:.2f}, recall {recall:.2f}"
    ax_bars.set_ylim(0, 1.15)
    ax_bars.set_xlim(-0.5, count - 0.5)
    ax_bars.set_xticks(x if count <= 40 else x[:: -(-count // 40)])
    ax_bars.set_xlabel("clip")
    ax_bars.set_ylabel("gate")
    ax_bars.set_title(summary, fontsize="small", loc="left")
    ax_bars.legend(loc="upper right", fontsize="x-small", framealpha=0.8)
    fig.suptitle(title or "clip gates")
    return fig


def plot_clip_gates(thumbnails, gates, path, relevant=None, threshold: float = 0.5, title=None,
                    dpi=100) -> pathlib.Path:
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
      title: figure title.
      dpi: resolution of the PNG.

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = _path(path)
    return _save(_clip_gates_figure(thumbnails, gates, relevant, threshold, title), path, dpi)


# ----------------------------------------------------------------------------- action tubes

_TUBE_STYLES = {  # name: (colour, line style, legend label)
    "gt": ("white", ":", "ground truth"),
    "coarse": ("lime", "-", "coarse"),
    "refined": ("red", "-", "refined"),
}


def _tube_set(tubes, name: str, num_frames: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(boxes [M, T, 4], valid bool [M, T])`` from a pair, or None."""
    if tubes is None:
        return None
    if not isinstance(tubes, (tuple, list)) or len(tubes) != 2:
        raise ValueError(f"{name}: expected a pair (boxes [M, T, 4], valid [M, T])")
    boxes = _real(tubes[0], f"{name} boxes", "[M, T, 4]", 3)
    if boxes.shape[1:] != (num_frames, 4):
        raise ValueError(f"{name} boxes: expected [M, T = {num_frames}, 4], got shape {boxes.shape}")
    valid = _binary(tubes[1], f"{name} valid", boxes.shape[:2], "[M, T]")
    return boxes, valid


def _tubes_figure(
    frames, refined=None, coarse=None, gt=None, labels=None, count=8, frame_numbers=None, title=None
) -> Figure:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    frames = _frames(frames)
    num_frames, width = frames.shape[0], frames.shape[2]
    sets = {name: _tube_set(t, name, num_frames) for name, t in (("gt", gt), ("coarse", coarse), ("refined", refined))}
    index = strip_indices(num_frames, min(_int(count, "count", 1), num_frames))
    strip = np.concatenate(list(frames[index]), axis=1)
    width_in = float(np.clip(1.6 * len(index), 6.0, 18.0))
    fig = Figure(figsize=(width_in, _strip_height(width_in, strip) + 0.9), layout="constrained")
    ax = fig.subplots()
    ax.imshow(strip, extent=(-0.5, strip.shape[1] - 0.5, strip.shape[0] - 0.5, -0.5), interpolation="nearest")
    ax.set_yticks([])
    numbers = np.arange(1, num_frames + 1) if frame_numbers is None else np.asarray(frame_numbers)
    ax.set_xticks(np.arange(len(index)) * width + (width - 1) / 2, [str(int(numbers[i])) for i in index])
    ax.set_xlabel("frame")
    handles = []
    for name, tubes in sets.items():
        if tubes is None:
            continue
        colour, style, legend = _TUBE_STYLES[name]
        handles.append(Line2D([], [], color=colour, linestyle=style, label=legend))
        boxes, valid = tubes
        for m in range(boxes.shape[0]):
            for j, t in enumerate(index):
                if not valid[m, t]:
                    continue
                x1, y1, x2, y2 = boxes[m, t]
                ax.add_patch(
                    Rectangle(
                        (j * width + x1 - 0.5, y1 - 0.5),
                        x2 - x1 + 1,
                        y2 - y1 + 1,
                        fill=False,
                        edgecolor=colour,
                        linestyle=style,
                        linewidth=1.2,
                    )
                )
                if (
                    name == "refined"
                    and labels is not None
                    and m < len(labels)
                    and (j == 0 or not valid[m, index[j - 1]])
                ):
                    ax.text(j * width + x1, y1 - 1, str(labels[m]), color=colour, fontsize="x-small", va="bottom")
    for j in range(1, len(index)):
        ax.axvline(j * width - 0.5, color="black", linewidth=1)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="x-small", facecolor="gray")
    fig.suptitle(title or "action tubes")
    return fig


def plot_tubes(
    frames,
    path,
    refined=None,
    coarse=None,
    gt=None,
    labels=None,
    count: int = 8,
    frame_numbers=None,
    title=None,
    dpi=100,
) -> pathlib.Path:
    """Action tubes drawn on a strip of frames, written as a PNG (CFAD: coarse green, refined red).

    Each tube set is a pair ``(boxes [M, T, 4], valid [M, T])`` of inclusive-pixel boxes
    ``(x1, y1, x2, y2)`` on the clip's frames; a box is drawn on every shown frame where
    it is valid. Ground truth, if given, is dotted white.

    Args:
      frames: ``[T, H, W, 3]`` uint8, the frames the boxes are in.
      path: PNG file to write (parent folders are created).
      refined, coarse, gt: tube sets (each optional).
      labels: text per refined tube (e.g. ``"run 0.83"``), written at its first shown box.
      count: frames in the strip (evenly spaced, :func:`strip_indices`; at most T).
      frame_numbers: ``[T]`` numbers printed under the frames (default 1..T).
      title: figure title.
      dpi: resolution of the PNG.

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = _path(path)
    return _save(_tubes_figure(frames, refined, coarse, gt, labels, count, frame_numbers, title), path, dpi)
