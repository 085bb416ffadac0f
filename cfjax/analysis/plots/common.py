"""Shared pieces of the figures: input checks, PNG writing, frame strips and text (titles, scores, frame ranges)."""

from __future__ import annotations

import os
import pathlib
import textwrap

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

GT_COLOUR = "tab:green"
# An axes legend anchored here sits right of its axes (constrained layout makes room), never over the data.
LEGEND_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0}
_CHAR_WIDTH = 0.6  # average glyph width of the default font, in font sizes


# ----------------------------------------------------------------------------- validation


def check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_frames(frames, name: str = "frames") -> np.ndarray:
    """``[T, H, W, 3]`` uint8 with T, H, W >= 1."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape) < 1:
        raise ValueError(f"{name}: expected uint8 RGB frames [T, H, W, 3] with T, H, W >= 1, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(
            f"{name}: expected dtype uint8, got {frames.dtype} "
            "(convert floats in [0, 1] with (x * 255).round().astype(np.uint8))"
        )
    return frames


def check_binary(value, name: str, shape: tuple[int, ...], shape_text: str) -> np.ndarray:
    """Bool array of ``shape`` from bools or 0/1 numbers."""
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape_text} = {shape}, got {array.shape}")
    if array.dtype.kind not in "biuf" or not np.all((array == 0) | (array == 1)):
        raise ValueError(f"{name}: expected bools or 0/1 values")
    return array.astype(bool)


def check_fps(fps) -> float | None:
    """None, or a positive finite frame rate as float."""
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) or not 0 < fps < np.inf:
        raise ValueError(f"fps: expected a positive number or None, got {fps!r}")
    return float(fps)


def check_frame_indices(frame_indices, num_frames: int, num_video_frames) -> tuple[np.ndarray | None, int | None]:
    """``([T] int64 video frame index per shown frame, -1 = padding) or None``, and the video length or None."""
    if num_video_frames is not None:
        num_video_frames = check_int(num_video_frames, "num_video_frames", 1)
    if frame_indices is None:
        return None, num_video_frames
    array = np.asarray(frame_indices)
    if array.shape != (num_frames,) or array.dtype.kind not in "iu":
        raise ValueError(
            f"frame_indices: expected [T] = [{num_frames}] int video frame indices (-1 = padding), "
            f"got shape {array.shape} dtype {array.dtype}"
        )
    array = array.astype(np.int64)
    if array.min() < -1 or (num_video_frames is not None and array.max() >= num_video_frames):
        raise ValueError(
            f"frame_indices: expected values in [-1, num_video_frames - 1], got range [{array.min()}, {array.max()}]"
        )
    return array, num_video_frames


def check_path(path) -> pathlib.Path:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"path: expected a non-empty str or os.PathLike, got {path!r}")
    return pathlib.Path(path)


def save(fig: Figure, path: pathlib.Path, dpi) -> pathlib.Path:
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float, np.integer, np.floating)) or not dpi > 0:
        raise ValueError(f"dpi: expected a positive number, got {dpi!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=dpi)
    return path


# ----------------------------------------------------------------------------- text


def wrap(text: str, width_in: float, fontsize_pt: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize_pt`` (existing line breaks kept)."""
    chars = max(10, int(width_in * 72 / (fontsize_pt * _CHAR_WIDTH)))
    return "\n".join(textwrap.fill(line, chars) or line for line in text.split("\n"))


def set_suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width (12 pt, matplotlib's "large")."""
    fig.suptitle(wrap(text, fig.get_figwidth() - 0.2, 12.0))


def set_axes_title(ax, text: str, width_in: float, fontsize_pt: float = 10.0, loc: str = "center") -> None:
    """An axes title wrapped to ``width_in`` inches."""
    ax.set_title(wrap(text, width_in, fontsize_pt), fontsize=fontsize_pt, loc=loc)


def score_text(value: float) -> str:
    """A score for a label: 2 decimals, or 2 significant digits below 0.01 (``0.0025``, not ``0.00``)."""
    value = float(value)
    return f"{value:.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2g}"


def frame_range_text(
    frame_indices: np.ndarray | None, num_video_frames: int | None, fps: float | None = None, count: int | None = None
) -> str:
    """Which frames of the video a clip holds, e.g. ``"frames 32-94 of 120 (stride 2; 1.3-3.9 s), 2 padded"``.

    ``frame_indices`` ``[T]`` int video frame indices (-1 = padding); without them, ``"<count> frames"``.
    """
    if frame_indices is None:
        text = "the clip" if count is None else f"{count} frames"
        return text + (f" of {num_video_frames}" if num_video_frames is not None else "")
    real = frame_indices[frame_indices >= 0]
    if real.size == 0:
        return f"{frame_indices.size} padded frames"
    first, last = int(real.min()), int(real.max())
    text = f"frame {first}" if first == last else f"frames {first}-{last}"
    if num_video_frames is not None:
        text += f" of {num_video_frames}"
    details = []
    steps = np.diff(real)
    if real.size > 1 and np.all(steps == steps[0]) and steps[0] > 0:
        details.append(f"stride {int(steps[0])}")
    if fps is not None:
        details.append(f"{first / fps:.1f}-{last / fps:.1f} s")
    if details:
        text += f" ({'; '.join(details)})"
    padded = int(frame_indices.size - real.size)
    return text + (f", {padded} padded" if padded else "")


# ----------------------------------------------------------------------------- thumbnails


def strip_indices(num_frames: int, count: int) -> np.ndarray:
    """Frame indices ``[count]`` used by :func:`frame_strip`.

    ``count == 1``: the middle frame ``(num_frames - 1) // 2``. Otherwise frame
    ``j`` is ``j * (num_frames - 1) / (count - 1)`` rounded half up, so the first
    and last frames are always included, and ``count == num_frames`` gives
    ``0 .. num_frames - 1``; ``count > num_frames`` repeats frames.
    """
    num_frames = check_int(num_frames, "num_frames", 1)
    count = check_int(count, "count", 1)
    if count == 1:
        return np.array([(num_frames - 1) // 2], np.int64)
    j = np.arange(count, dtype=np.int64)
    # floor(j (T - 1) / (count - 1) + 1/2) in exact integer arithmetic.
    return (2 * j * (num_frames - 1) + (count - 1)) // (2 * (count - 1))


def frame_strip(frames, count: int) -> np.ndarray:
    """``count`` evenly spaced frames of ``[T, H, W, 3]`` uint8 side by side: ``[H, count * W, 3]`` uint8.

    The frames are ``frames[strip_indices(T, count)]`` (see :func:`strip_indices`).
    """
    frames = check_frames(frames)
    index = strip_indices(frames.shape[0], check_int(count, "count", 1))
    return np.concatenate(list(frames[index]), axis=1)


def show_strip(ax, strip: np.ndarray, left: float, right: float) -> None:
    """A thumbnail strip over x in ``[left, right]``, without ticks (its title says what it shows)."""
    ax.imshow(strip, extent=(left, right, strip.shape[0], 0), aspect="auto", interpolation="antialiased")
    ax.set_yticks([])
    ax.tick_params(axis="x", labelbottom=False)


def strip_height(width_in: float, strip: np.ndarray) -> float:
    return float(np.clip(width_in * strip.shape[0] / strip.shape[1], 0.4, 3.0))
