"""Charades v1 (157 classes, per-frame multi-label activity detection) as array_record."""

from __future__ import annotations

import csv
import math
import re

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from cfjax.data.builders.real import (
    RealConfig,
    RealVideoBuilder,
    SkipVideo,
    read_frame_folder,
    require_file,
    resample_indices,
)

__all__ = ["CHARADES_NUM_CLASSES", "CfjaxCharades", "charades_frame_labels", "parse_charades_actions"]

CHARADES_NUM_CLASSES = 157
CHARADES_FRAME_FPS = 24.0  # the official RGB frames (Charades_v1_rgb) are at 24 fps
_SPLITS = {"train": "Charades_v1_train.csv", "test": "Charades_v1_test.csv"}
_ACTION = re.compile(r"^c(\d{3})\s+(\S+)\s+(\S+)$")


def parse_charades_actions(actions: str, where: str = "actions") -> np.ndarray:
    """``"c092 11.90 21.20;c147 0.00 12.60"`` -> float32 ``[S, 3]`` (class, start_sec, end_sec)."""
    rows = []
    for part in (actions or "").split(";"):
        part = part.strip()
        if not part:
            continue
        m = _ACTION.match(part)
        if not m:
            raise ValueError(f"{where}: expected 'cXXX start end', got {part!r}")
        c, s, e = int(m.group(1)), float(m.group(2)), float(m.group(3))
        if not 0 <= c < CHARADES_NUM_CLASSES:
            raise ValueError(f"{where}: class c{c:03d} outside c000..c{CHARADES_NUM_CLASSES - 1}")
        rows.append((c, s, e))
    return np.asarray(rows, np.float32).reshape(-1, 3)


def charades_frame_labels(segments: np.ndarray, num_frames: int, fps: float) -> np.ndarray:
    """uint8 ``[T, 157]``: frame ``k`` (time ``k / fps``) is positive for class ``c`` iff
    ``start <= k / fps <= end`` for a segment of ``c`` (the Charades protocol's test)."""
    t = np.arange(num_frames, dtype=np.float64) / fps
    labels = np.zeros((num_frames, CHARADES_NUM_CLASSES), np.uint8)
    for c, s, e in np.asarray(segments, np.float64):
        labels[(t >= s - 1e-6) & (t <= e + 1e-6), int(c)] = 1
    return labels


class CfjaxCharades(RealVideoBuilder):
    """Charades v1: videos or 24 fps frames, 157 action classes with start/end times.

    Manual directory layout (``source="auto"`` uses videos if ``Charades_v1/``
    exists, else frames)::

        {manual_dir}/
          Charades_v1_train.csv        # official; columns include id, actions, length
          Charades_v1_test.csv
          Charades_v1/{id}.mp4         # source="videos" (Charades_v1.zip or the 480p zip)
          Charades_v1_rgb/{id}/{id}-000001.jpg ...   # source="frames": 24 fps RGB frames

    ``actions`` is ``"cXXX start end;cYYY start end"`` in seconds (empty for a
    video without actions); ``length`` is the duration in seconds.

    Record: ``video_id`` text; ``frames`` [T, H, W, 3] at ``fps`` (native video
    rate, or 24 for frames, when ``fps`` is None); ``fps`` float32 (the stored
    rate); ``frame_labels`` uint8 [T, 157], frame ``k`` at time ``k / fps`` is
    positive iff ``start <= k / fps <= end``; ``segments`` float32 [S, 3]
    (class, start_sec, end_sec); ``duration`` float32 (CSV ``length``).
    """

    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = [
        RealConfig(name="default", description="videos or frames (auto), 24 fps, short side 256, JPEG 90", fps=24.0),
    ]

    def _features(self, cfg):
        return {
            "fps": tfds.features.Scalar(dtype=np.float32),
            "frame_labels": tfds.features.Tensor(shape=(None, CHARADES_NUM_CLASSES), dtype=np.uint8),
            "segments": tfds.features.Tensor(shape=(None, 3), dtype=np.float32),
            "duration": tfds.features.Scalar(dtype=np.float32),
        }

    def _split_items(self, manual_dir: epath.Path):
        hint = f"See the layout in {type(self).__name__}'s docstring."
        csvs = {s: require_file(manual_dir / f, f"Charades {s} annotations", hint) for s, f in _SPLITS.items()}
        source = self.builder_config.source
        videos, frames = manual_dir / "Charades_v1", manual_dir / "Charades_v1_rgb"
        if source == "auto":
            if videos.is_dir():
                source = "videos"
            elif frames.is_dir():
                source = "frames"
            else:
                raise FileNotFoundError(f"Charades: expected a folder {videos} (videos) or {frames} (frames). {hint}")
        folder = videos if source == "videos" else frames
        if not folder.is_dir():
            raise FileNotFoundError(f"Charades source={source!r}: expected a folder {folder}. {hint}")
        out = {}
        for split, path in csvs.items():
            with path.open() as f:
                rows = list(csv.DictReader(f))
            if rows and not {"id", "actions", "length"} <= set(rows[0]):
                raise ValueError(f"{path}: expected columns id, actions, length; got {sorted(rows[0])}")
            items = []
            for i, row in enumerate(rows):
                vid = row["id"].strip()
                where = f"{path} row {i + 2} ({vid})"
                item = {
                    "id": vid,
                    "source": source,
                    "path": folder / (f"{vid}.mp4" if source == "videos" else vid),
                    "segments": parse_charades_actions(row["actions"], where),
                    "duration": float(row["length"]) if row["length"].strip() else math.nan,
                }
                items.append((vid, item))
            out[split] = items
        return out

    def _make_example(self, item):
        cfg = self.builder_config
        if item["source"] == "videos":
            frames, fps = self._decode(item["path"])
        else:
            folder = item["path"]
            if not folder.is_dir():
                raise SkipVideo(folder, "missing frame folder")
            files = sorted(folder.glob(f"{item['id']}-*.jpg"))
            if not files:
                raise SkipVideo(folder, "no frames")
            idx = resample_indices(len(files), CHARADES_FRAME_FPS, cfg.fps)
            frames = read_frame_folder([files[j] for j in idx], cfg.short_side)
            fps = cfg.fps or CHARADES_FRAME_FPS
        return {
            "frames": frames,
            "fps": np.float32(fps),
            "frame_labels": charades_frame_labels(item["segments"], len(frames), fps),
            "segments": item["segments"],
            "duration": np.float32(item["duration"]),
        }
