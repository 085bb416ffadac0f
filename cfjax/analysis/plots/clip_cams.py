"""GCF-Net localisation: 3D Grad-CAM heatmaps over a few frames of each gated clip."""

from __future__ import annotations

import pathlib

import numpy as np
from matplotlib.figure import Figure

from cfjax.analysis.plots.common import (
    check_binary,
    check_fps,
    check_frames,
    check_int,
    check_path,
    save,
    set_suptitle,
    strip_indices,
)
from cfjax.metrics._checks import real_array

_THUMB_IN = 1.6  # thumbnail width, inches


def _check_clips(clips) -> np.ndarray:
    clips = np.asarray(clips)
    if clips.ndim != 5:
        raise ValueError(f"clips: expected uint8 RGB clips [M, L, H, W, 3], got shape {clips.shape}")
    for clip in clips:
        check_frames(clip, "clips")
    return clips


def _row_label(clip: int, gate, selected: bool, threshold: float) -> str:
    label = f"clip {clip}"
    if gate is not None:  # 3 decimals where 2 would print the threshold itself
        label += f"\ngate {gate:.3f}" if f"{gate:.2f}" == f"{threshold:.2f}" else f"\ngate {gate:.2f}"
    if not selected:
        label += f"\ntop-gated,\nnot > {threshold:g}"
    return label


def _clip_cams_figure(
    clips,
    cams,
    clip_indices=None,
    gates=None,
    selected=None,
    threshold=0.5,
    frame_indices=None,
    fps=None,
    frames_per_clip=4,
    title=None,
) -> Figure:
    clips = _check_clips(clips)
    count, length, height, width = clips.shape[:4]
    cams = real_array("cams", cams, "[M, T', h, w]", 4)
    if cams.shape[0] != count or min(cams.shape) < 1:
        raise ValueError(f"cams: expected [M, T', h, w] with M = {count} (one map per clip), got shape {cams.shape}")
    if cams.min() < 0 or cams.max() > 1:
        raise ValueError(f"cams: expected values in [0, 1], got range [{cams.min():.4g}, {cams.max():.4g}]")
    if clip_indices is None:
        clip_indices = np.arange(count)
    clip_indices = np.asarray(clip_indices)
    if clip_indices.shape != (count,) or clip_indices.dtype.kind not in "iu":
        raise ValueError(
            f"clip_indices: expected [M] = [{count}] ints, got shape {clip_indices.shape} dtype {clip_indices.dtype}"
        )
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.integer, np.floating))
        or not 0 <= threshold <= 1
    ):
        raise ValueError(f"threshold: expected a number in [0, 1], got {threshold!r}")
    if gates is not None:
        gates = real_array("gates", gates, "[M]", 1)
        if gates.shape[0] != count or gates.min() < 0 or gates.max() > 1:
            raise ValueError(f"gates: expected [M] = [{count}] values in [0, 1], got {np.round(gates, 4).tolist()}")
    if selected is None:
        selected = gates > threshold if gates is not None else np.ones(count, bool)
    selected = check_binary(selected, "selected", (count,), "[M]")
    if frame_indices is not None:
        frame_indices = np.asarray(frame_indices)
        if frame_indices.shape != (count, length) or frame_indices.dtype.kind not in "iu":
            raise ValueError(
                f"frame_indices: expected [M, L] = [{count}, {length}] int video frame indices "
                f"(-1 = padding), got shape {frame_indices.shape} dtype {frame_indices.dtype}"
            )
    fps = check_fps(fps)
    columns = min(check_int(frames_per_clip, "frames_per_clip", 1), length)
    steps = strip_indices(length, columns)

    thumb_h = _THUMB_IN * height / width
    fig = Figure(figsize=(columns * _THUMB_IN + 1.9, count * (thumb_h + 0.35) + 1.0), layout="constrained")
    axes = np.asarray(fig.subplots(count, columns, squeeze=False))
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    image = None
    for m in range(count):
        for j, t in enumerate(steps):
            ax = axes[m, j]
            ax.imshow(clips[m, t], extent=extent, interpolation="antialiased")
            cam_step = min(int(t) * cams.shape[1] // length, cams.shape[1] - 1)
            image = ax.imshow(
                cams[m, cam_step], extent=extent, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0, interpolation="bilinear"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            frame = None if frame_indices is None else int(frame_indices[m, t])
            if frame is None:
                text = f"step {int(t)}"
            elif frame < 0:
                text = "padding"
            else:
                text = f"#{frame}" + (f" ({frame / fps:.1f} s)" if fps is not None else "")
            ax.set_title(text, fontsize=8)
        gate = None if gates is None else float(gates[m])
        axes[m, 0].set_ylabel(
            _row_label(int(clip_indices[m]), gate, bool(selected[m]), threshold),
            fontsize=8,
            rotation=0,
            ha="right",
            va="center",
        )
    bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    bar.set_label("Grad-CAM (max 1 per clip)")
    if title is None:
        title = (
            f"Grad-CAM on the clips with gate > {threshold:g}"
            if selected.all()
            else f"no clip has gate > {threshold:g}: Grad-CAM on the top-gated clip"
        )
    set_suptitle(fig, title)
    return fig


def plot_clip_cams(
    clips,
    cams,
    path,
    clip_indices=None,
    gates=None,
    selected=None,
    threshold: float = 0.5,
    frame_indices=None,
    fps=None,
    frames_per_clip: int = 4,
    title=None,
    dpi=100,
) -> pathlib.Path:
    """3D Grad-CAM heatmaps (GCF-Net's localisation) over ``frames_per_clip`` frames of each clip, as a PNG.

    One row per clip: evenly spaced frames (:func:`~cfjax.analysis.plots.strip_indices`) with
    the map of the matching time step drawn over them (``jet``, half transparent, a shared
    colour bar); the row is labelled with the clip's number and gate, and a clip that did not
    pass the threshold (shown because no clip did) says so.

    Args:
      clips: ``[M, L, H, W, 3]`` uint8, the shown clips.
      cams: ``[M, T', h, w]`` values in ``[0, 1]`` (any ``T'``, ``h``, ``w``: map step ``t'``
        covers clip steps ``t`` with ``floor(t T' / L) = t'``; stretched over the frame).
      path: PNG file to write (parent folders are created).
      clip_indices: ``[M]`` ints, the clips' numbers in the video (default ``0 .. M-1``).
      gates: ``[M]`` gates in ``[0, 1]``.
      selected: ``[M]`` bools: passed the threshold (default: ``gates > threshold``, or all).
      threshold: the gate threshold named in the labels.
      frame_indices: ``[M, L]`` int video frame indices (-1 = padding) for the frame titles.
      fps: frame rate, for times in the frame titles.
      frames_per_clip: frames shown per clip (at most ``L``).
      title: figure title (default: says which clips are shown).
      dpi: resolution of the PNG.

    Returns:
      ``path`` as a ``pathlib.Path``.
    """
    path = check_path(path)
    fig = _clip_cams_figure(
        clips, cams, clip_indices, gates, selected, threshold, frame_indices, fps, frames_per_clip, title
    )
    return save(fig, path, dpi)
