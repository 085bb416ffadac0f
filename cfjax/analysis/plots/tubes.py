"""CFAD action tubes: boxes drawn on a strip of frames (ground truth, coarse, refined)."""

from __future__ import annotations

import pathlib

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from cfjax.analysis.plots.common import (
    check_binary,
    check_frames,
    check_int,
    check_path,
    save,
    set_suptitle,
    strip_height,
    strip_indices,
)
from cfjax.metrics._checks import real_array

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
    boxes = real_array(f"{name} boxes", tubes[0], "[M, T, 4]", 3)
    if boxes.shape[1:] != (num_frames, 4):
        raise ValueError(f"{name} boxes: expected [M, T = {num_frames}, 4], got shape {boxes.shape}")
    valid = check_binary(tubes[1], f"{name} valid", boxes.shape[:2], "[M, T]")
    return boxes, valid


def _tubes_figure(
    frames, refined=None, coarse=None, gt=None, labels=None, count=8, frame_numbers=None, title=None
) -> Figure:
    frames = check_frames(frames)
    num_frames, width = frames.shape[0], frames.shape[2]
    sets = {name: _tube_set(t, name, num_frames) for name, t in (("gt", gt), ("coarse", coarse), ("refined", refined))}
    index = strip_indices(num_frames, min(check_int(count, "count", 1), num_frames))
    strip = np.concatenate(list(frames[index]), axis=1)
    width_in = float(np.clip(1.6 * len(index), 6.0, 18.0))
    fig = Figure(figsize=(width_in, strip_height(width_in, strip) + 1.1), layout="constrained")
    ax = fig.subplots()
    ax.imshow(strip, extent=(-0.5, strip.shape[1] - 0.5, strip.shape[0] - 0.5, -0.5), interpolation="nearest")
    ax.set_yticks([])
    ax.set_title(f"{len(index)} of {num_frames} frames with their tube boxes", fontsize="small", loc="left")
    numbers = np.arange(1, num_frames + 1) if frame_numbers is None else np.asarray(frame_numbers)
    ax.set_xticks(np.arange(len(index)) * width + (width - 1) / 2, [str(int(numbers[i])) for i in index])
    ax.set_xlabel("frame of the video (1 = first)" if frame_numbers is not None else "frame of the clip (1 = first)")
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
                first_shown = j == 0 or not valid[m, index[j - 1]]
                if name == "refined" and labels is not None and m < len(labels) and first_shown:
                    ax.text(  # inside the box's top edge: never over the title, readable on any frame
                        j * width + x1 + 1,
                        y1 + 1,
                        str(labels[m]),
                        color=colour,
                        fontsize="x-small",
                        va="top",
                        clip_on=True,
                        bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0},
                    )
    for j in range(1, len(index)):
        ax.axvline(j * width - 0.5, color="black", linewidth=1)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="x-small", facecolor="gray")
    set_suptitle(fig, title or "action tubes")
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
      labels: text per refined tube (e.g. ``"run 0.83"``), written inside its first shown box.
      count: frames in the strip (evenly spaced, :func:`strip_indices`; at most T).
      frame_numbers: ``[T]`` 1-based video frame numbers printed under the frames (default 1..T of the clip).
      title: figure title (wrapped to the figure's width).
      dpi: resolution of the PNG.

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = check_path(path)
    return save(_tubes_figure(frames, refined, coarse, gt, labels, count, frame_numbers, title), path, dpi)
