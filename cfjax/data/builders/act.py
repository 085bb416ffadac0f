"""UCF101-24, JHMDB-21 and UCF Sports (frames + ACT ground-truth pickles) as array_record."""

from __future__ import annotations

import dataclasses
import pickle

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
    rescale_boxes,
)
from cfjax.data.video import resize_short_side

__all__ = ["ActConfig", "CfjaxJhmdb", "CfjaxUcf10124", "CfjaxUcfSports", "load_act_ground_truth", "resample_tubes"]

_ACT_KEYS = ("labels", "gttubes", "nframes", "resolution", "train_videos", "test_videos")


@dataclasses.dataclass
class ActConfig(RealConfig):
    """``source_fps``: the frame rate of the frame folders (for ``fps`` resampling)."""

    source_fps: float = 25.0


def load_act_ground_truth(path) -> dict:
    """Loads an ACT ground-truth pickle (Python 2 pickles: ``encoding="latin1"``)."""
    with epath.Path(path).open("rb") as f:
        gt = pickle.load(f, encoding="latin1")
    missing = [k for k in _ACT_KEYS if k not in gt]
    if missing:
        raise ValueError(f"{path}: not an ACT ground-truth pickle, missing keys {missing} (expected {_ACT_KEYS})")
    return gt


def resample_tubes(tubes, index, scale_x: float = 1.0, scale_y: float = 1.0):
    """Maps ACT tubes onto resampled / resized frames.

    Args:
      tubes: ``[(label, boxes [n, 5])]``, rows ``(frame 1-based, x1, y1, x2, y2)``.
      index: source frame index (0-based) of each output frame.
      scale_x, scale_y: output / source width and height.

    Returns:
      ``[(label, float32 [m, 5])]``: a row for each output frame whose source
      frame has a box, with the output frame number (1-based) and the box
      rescaled by ``rescale_boxes``; tubes left with no box are dropped.
    """
    out = []
    for label, boxes in tubes:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
        by_frame = {round(f): b for f, b in zip(boxes[:, 0], boxes[:, 1:])}
        rows = [(k + 1, *by_frame[j + 1]) for k, j in enumerate(np.asarray(index)) if j + 1 in by_frame]
        if not rows:
            continue
        rows = np.asarray(rows, np.float64)
        rows[:, 1:] = rescale_boxes(rows[:, 1:], scale_x, scale_y)
        out.append((int(label), rows.astype(np.float32)))
    return out


class _ActBuilder(RealVideoBuilder, skip_registration=True):
    """Frame folders + ACT pickle; see the subclasses for the layout."""

    PICKLE = ""
    FRAMES = ""
    EXT = ""
    NUM_CLASSES = 0

    def _features(self, cfg):
        return {
            "fps": tfds.features.Scalar(dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=self.NUM_CLASSES),
            "tube_labels": tfds.features.Tensor(shape=(None,), dtype=np.int64),
            "tube_lengths": tfds.features.Tensor(shape=(None,), dtype=np.int64),
            "tube_boxes": tfds.features.Tensor(shape=(None, 5), dtype=np.float32),
        }

    def _split_items(self, manual_dir: epath.Path):
        k = self.builder_config.split
        hint = f"See the layout in {type(self).__name__}'s docstring."
        pkl = require_file(manual_dir / self.PICKLE, f"{self.name} ground truth", hint)
        frames = manual_dir / self.FRAMES
        if not frames.is_dir():
            raise FileNotFoundError(f"{self.name}: expected a folder of frame folders {frames}. {hint}")
        gt = load_act_ground_truth(pkl)
        self._set_class_names([str(n) for n in gt["labels"]], pkl)
        out = {}
        for split, key in (("train", "train_videos"), ("test", "test_videos")):
            if len(gt[key]) < k:
                raise ValueError(f"{pkl}: {key} has {len(gt[key])} splits, config asks for split {k}")
            items = []
            for video in gt[key][k - 1]:
                tubes = [(int(c), np.asarray(b)) for c, bs in sorted(gt["gttubes"].get(video, {}).items()) for b in bs]
                if not tubes:
                    raise ValueError(f"{pkl}: video {video!r} of {key}[{k - 1}] has no gttubes")
                item = {
                    "folder": frames / video,
                    "nframes": int(gt["nframes"][video]),
                    "resolution": tuple(int(v) for v in gt["resolution"][video]),
                    "tubes": tubes,
                }
                items.append((video, item))
            out[split] = items
        return out

    def _make_example(self, item):
        cfg = self.builder_config
        folder = item["folder"]
        if not folder.is_dir():
            raise SkipVideo(folder, "missing frame folder")
        index = resample_indices(item["nframes"], cfg.source_fps, cfg.fps)
        frames = read_frame_folder([folder / f"{j + 1:05d}{self.EXT}" for j in index], None)
        h, w = frames.shape[1:3]
        if (h, w) != item["resolution"]:
            raise SkipVideo(folder, f"frames are {h}x{w}, the pickle's resolution is {item['resolution']}")
        if cfg.short_side is not None:
            frames = np.stack([resize_short_side(f, cfg.short_side) for f in frames])
        sx, sy = frames.shape[2] / w, frames.shape[1] / h
        tubes = resample_tubes(item["tubes"], index, sx, sy)
        if not tubes:
            raise SkipVideo(folder, f"no tube keeps a box at fps={cfg.fps}")
        return {
            "frames": frames,
            "fps": np.float32(cfg.fps or cfg.source_fps),
            "label": tubes[0][0],
            "tube_labels": np.array([c for c, _ in tubes], np.int64),
            "tube_lengths": np.array([len(b) for _, b in tubes], np.int64),
            "tube_boxes": np.concatenate([b for _, b in tubes]).astype(np.float32),
        }


class CfjaxUcf10124(_ActBuilder):
    """UCF101-24 (24 classes; ACT's corrected annotations), one split (config ``split1``).

    Manual directory layout::

        {manual_dir}/
          UCF101v2-GT.pkl                       # ACT ground truth (Python 2 pickle)
          rgb-images/{Class}/{v_Class_gXX_cYY}/00001.jpg ...   # frames 1..nframes, 25 fps

    The pickle holds ``labels`` (24 names), ``gttubes`` {video: {label: [array
    (n, 5): frame x1 y1 x2 y2]}}, ``nframes``, ``resolution`` {video: (h, w)},
    ``train_videos`` / ``test_videos`` (lists of lists, one per split).

    Boxes use ACT's inclusive-pixel convention (``x1..x2`` are pixel indices,
    area ``(x2 - x1 + 1) * (y2 - y1 + 1)``); when frames are resized, a box
    scales as ``x1' = x1 * s``, ``x2' = (x2 + 1) * s - 1``. With ``fps`` set, box
    rows follow the frames they were on (frame numbers renumbered, tubes left
    with no frame dropped).

    Record: ``video_id`` text (the pickle's video name); ``frames`` [T, H, W, 3];
    ``fps`` float32; ``label`` ClassLabel (the first tube's class);
    ``tube_labels`` int64 [A]; ``tube_lengths`` int64 [A]; ``tube_boxes``
    float32 [sum(tube_lengths), 5] (``frame`` 1-based, x1, y1, x2, y2; tubes
    concatenated in order, split them with ``tubes_from_record``).
    """

    name = "cfjax_ucf101_24"
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = [
        ActConfig(
            name="split1", description="ACT split, native fps and size, JPEG 90", short_side=None, source_fps=25.0
        )
    ]
    PICKLE = "UCF101v2-GT.pkl"
    FRAMES = "rgb-images"
    EXT = ".jpg"
    NUM_CLASSES = 24


class CfjaxJhmdb(_ActBuilder):
    """JHMDB-21 (21 classes), ACT's three splits as configs ``split1..3``.

    Manual directory layout::

        {manual_dir}/
          JHMDB-GT.pkl                          # ACT ground truth (Python 2 pickle)
          Frames/{class}/{video}/00001.png ...  # frames 1..nframes, 30 fps

    Pickle keys, box convention, resampling and the record are as for
    ``cfjax_ucf101_24`` (one tube per video in JHMDB).
    """

    name = "cfjax_jhmdb"
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = [
        ActConfig(
            name=f"split{k}",
            description=f"ACT split {k}, native fps and size, JPEG 90",
            split=k,
            short_side=None,
            source_fps=30.0,
        )
        for k in (1, 2, 3)
    ]
    PICKLE = "JHMDB-GT.pkl"
    FRAMES = "Frames"
    EXT = ".png"
    NUM_CLASSES = 21


class CfjaxUcfSports(_ActBuilder):
    """UCF Sports (10 classes, 150 videos), ACT's single split (config ``split1``: 103 / 47).

    Manual directory layout::

        {manual_dir}/
          UCFSports-GT.pkl                      # ACT ground truth (Python 2 pickle)
          Frames/{Class}/{NNN}/00001.jpg ...    # frames 1..nframes, 10 fps

    Pickle keys, box convention, resampling and the record are as for
    ``cfjax_ucf101_24`` (one tube per video in UCF Sports).
    """

    name = "cfjax_ucfsports"
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = [
        ActConfig(
            name="split1", description="ACT split, native fps and size, JPEG 90", short_side=None, source_fps=10.0
        )
    ]
    PICKLE = "UCFSports-GT.pkl"
    FRAMES = "Frames"
    EXT = ".jpg"
    NUM_CLASSES = 10
