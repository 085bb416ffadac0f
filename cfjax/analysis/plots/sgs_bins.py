"""SGS bins of a clip: thumbnails framed in their bin's colour, a colour band over all frames, a colour key."""

from __future__ import annotations

import pathlib

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from cfjax.analysis.plots.common import (
    check_fps,
    check_frame_indices,
    check_frames,
    check_path,
    frame_range_text,
    save,
    set_axes_title,
    set_suptitle,
    strip_indices,
)

NO_BIN_COLOUR = (0.78, 0.78, 0.78)
MAX_SGS_THUMBNAILS = 32


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


def _palette() -> np.ndarray:
    return np.asarray(colormaps["tab20"].colors)


def _bin_colours(bins: np.ndarray) -> np.ndarray:
    """``[T, 3]`` float RGB: distinct bins in sorted order cycle through tab20; -1 is light grey."""
    palette = _palette()
    used = np.unique(bins[bins >= 0])
    rank = np.searchsorted(used, bins)
    colours = palette[rank % len(palette)]
    colours[bins < 0] = NO_BIN_COLOUR
    return colours


def _key_handles(bins: np.ndarray) -> list[Patch]:
    """One legend patch per distinct bin (``"bin b"``, in :func:`_bin_colours`' colour), then ``"none"`` if any."""
    palette = _palette()
    used = np.unique(bins[bins >= 0])
    handles = [Patch(facecolor=palette[r % len(palette)], edgecolor="black", linewidth=0.5, label=f"bin {b}")
               for r, b in enumerate(used.tolist())]
    if np.any(bins < 0):
        handles.append(Patch(facecolor=NO_BIN_COLOUR, edgecolor="black", linewidth=0.5, label="none / padded"))
    return handles


def _runs_of_equal(values: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive ``(start, end)`` of each maximal run of equal values in ``[T]``."""
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    ends = np.concatenate([starts[1:] - 1, [values.size - 1]])
    return list(zip(starts.tolist(), ends.tolist()))


def _caption(t: int, bin_index: int, frame_indices: np.ndarray | None) -> str:
    frame = f"t{t}" if frame_indices is None else ("pad" if frame_indices[t] < 0 else f"#{frame_indices[t]}")
    return f"{frame}: bin {bin_index}" if bin_index >= 0 else f"{frame}: none"


def _sgs_bins_figure(frames, bins, title=None, frame_indices=None, num_video_frames=None, fps=None) -> Figure:
    frames = check_frames(frames)
    num_frames, height, width, _ = frames.shape
    bins = _bins(bins, num_frames)
    frame_indices, num_video_frames = check_frame_indices(frame_indices, num_frames, num_video_frames)
    fps = check_fps(fps)
    colours = _bin_colours(bins)
    used = int(np.unique(bins[bins >= 0]).size)

    index = strip_indices(num_frames, min(num_frames, MAX_SGS_THUMBNAILS))
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

    width_in = max(5.0, min(12.0, 1.4 * cols + 0.5))
    grid_in = float(np.clip(width_in * canvas.shape[0] / canvas.shape[1], 0.8, 9.0))
    fig = Figure(figsize=(width_in, grid_in + 1.9), layout="constrained")
    ax_tiles, ax_band = fig.subplots(2, 1, height_ratios=[grid_in, 0.35])
    ax_tiles.imshow(canvas, interpolation="antialiased")
    ax_tiles.set_axis_off()
    for n, t in enumerate(index):
        y, x = (n // cols) * tile_h, (n % cols) * tile_w
        ax_tiles.text(x + tile_w / 2, y + height + 2 * border + label / 2, _caption(t, bins[t], frame_indices),
                      ha="center", va="center", fontsize="x-small")
    shown = "all" if len(index) == num_frames else f"{len(index)} of"
    clip = frame_range_text(frame_indices, num_video_frames, fps, count=num_frames)
    caption = "video frame" if frame_indices is not None else "clip frame t"
    set_axes_title(ax_tiles, f"{clip}. B' = {used} distinct SGS bins used; {shown} {num_frames} frames shown "
                   f"(caption: {caption}: bin; border colour = bin)", width_in - 0.3)

    ax_band.imshow(colours[None], aspect="auto", interpolation="nearest", extent=(-0.5, num_frames - 0.5, 1, 0))
    for start, end in _runs_of_equal(bins):
        if bins[start] >= 0:
            ax_band.text((start + end) / 2, 0.5, str(bins[start]), ha="center", va="center", fontsize="x-small")
    ax_band.set_yticks([])
    ax_band.set_ylabel("bin", rotation=0, ha="right", va="center")
    ax_band.set_xlabel("frame of the clip (0 = first; colour and number = SGS bin, grey = none)")
    fig.legend(handles=_key_handles(bins), loc="outside lower center", ncols=min(8, max(1, used + 1)),
               fontsize="small", title="colour key", title_fontsize="small")
    if title:
        set_suptitle(fig, title)
    return fig


def plot_sgs_bins(frames, bins, path, title=None, dpi=100, frame_indices=None, num_video_frames=None,
                  fps=None) -> pathlib.Path:
    """SGS bin of each frame as coloured thumbnail borders, written as a PNG.

    At most 32 thumbnails (``strip_indices(T, 32)`` when T > 32), each framed in its bin's
    colour and captioned ``t<frame>: bin <b>`` (``#<video frame>: bin <b>`` with
    ``frame_indices``); below, a colour band for all T frames with the bin numbers, and a
    colour key (one entry per bin). The axes title gives the video frames shown (with
    ``frame_indices``: e.g. ``frames 32-94 of 120 (stride 2)``) and B' (distinct bins used,
    -1 excluded).

    Args:
      frames: ``[T, H, W, 3]`` uint8.
      bins: ``[T]`` int: the SGS bin each frame contributes to most, -1 = none / padded.
      path: PNG file to write (parent folders are created).
      title: figure title (wrapped to the figure's width).
      dpi: resolution of the PNG.
      frame_indices: ``[T]`` int video frame index of each frame (-1 = padding).
      num_video_frames: frames in the whole video.
      fps: frames per second of the video (the clip's span is also given in seconds).

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = check_path(path)
    return save(_sgs_bins_figure(frames, bins, title, frame_indices, num_video_frames, fps), path, dpi)
