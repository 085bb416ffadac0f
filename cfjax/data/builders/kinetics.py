"""Kinetics-400 / Kinetics-600 / Mini-Kinetics-200 as array_record."""

from __future__ import annotations

import csv
import dataclasses
import logging
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from cfjax.data.builders.real import RealConfig, RealVideoBuilder, require_file

__all__ = ["CfjaxKinetics", "KineticsConfig", "kinetics_clip_name"]

log = logging.getLogger(__name__)

_VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
_CSV_SPLITS = (("train", "train.csv"), ("validation", "validate.csv"), ("test", "test.csv"))
_MINI_FILES = {
    "classes": "mini_kinetics_200_classes.txt",
    "train": "train_ytid_list.txt",
    "validation": "val_ytid_list.txt",
}


def kinetics_clip_name(youtube_id: str, time_start, time_end) -> str:
    """``{youtube_id}_{time_start:06d}_{time_end:06d}`` (the name of a trimmed clip)."""
    return f"{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}"


@dataclasses.dataclass
class KineticsConfig(RealConfig):
    """``num_classes`` 400 / 600 / 200; ``mini`` selects the Mini-Kinetics-200 subset."""

    num_classes: int = 400
    mini: bool = False


class CfjaxKinetics(RealVideoBuilder):
    """Kinetics-400/600 (configs ``k400``, ``k600``) and Mini-Kinetics-200 (``mini200``).

    Manual directory layout::

        {manual_dir}/
          annotations/train.csv        # columns label,youtube_id,time_start,time_end,split[,is_cc]
          annotations/validate.csv     # (the official CSVs; a header row)
          annotations/test.csv         # optional; built only if it has labels
          classes.txt                  # optional: one class name per line = label order;
                                       # default: the sorted labels of train.csv
          videos/...                   # trimmed clips named
                                       # {youtube_id}_{time_start:06d}_{time_end:06d}.mp4
                                       # (.mkv/.webm/.avi too) anywhere below videos/:
                                       # flat, per split, or per label sub-folder
          # mini200 only (Mini-Kinetics-200 of Xie et al., over Kinetics-400):
          mini_kinetics_200_classes.txt  # the 200 class names, one per line (= label order)
          train_ytid_list.txt            # youtube ids of the training clips, one per line
          val_ytid_list.txt              # youtube ids of the validation clips

    Splits: ``train`` (train.csv), ``validation`` (validate.csv), ``test``
    (test.csv, if present and labelled; not for mini200). A CSV row whose clip
    is missing or unreadable is skipped and listed in ``skipped.json``.

    Record: ``video_id`` text (the clip name); ``frames`` [T, H, W, 3];
    ``fps`` float32 (stored rate); ``label`` ClassLabel.
    """

    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = [
        KineticsConfig(name="k400", description="Kinetics-400", num_classes=400),
        KineticsConfig(name="k600", description="Kinetics-600", num_classes=600),
        KineticsConfig(name="mini200", description="Mini-Kinetics-200 (over Kinetics-400)", num_classes=200, mini=True),
    ]

    def _features(self, cfg):
        return {
            "fps": tfds.features.Scalar(dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=cfg.num_classes),
        }

    def _split_items(self, manual_dir: epath.Path):
        cfg = self.builder_config
        hint = f"See the layout in {type(self).__name__}'s docstring."
        ann = manual_dir / "annotations"
        csvs = {s: ann / f for s, f in _CSV_SPLITS}
        for s in ("train", "validation"):
            require_file(csvs[s], f"Kinetics {s} annotations", hint)
        rows = {s: _read_csv(p) for s, p in csvs.items() if p.is_file()}

        if cfg.mini:
            mini = {k: require_file(manual_dir / f, f"Mini-Kinetics-200 {k}", hint) for k, f in _MINI_FILES.items()}
            classes = _read_lines(mini["classes"])
            class_source = mini["classes"]
            keep = {s: set(_read_lines(mini[s])) for s in ("train", "validation")}
            rows = {s: [r for r in rows[s] if r["youtube_id"] in keep[s] and r["label"] in set(classes)] for s in keep}
        else:
            if (manual_dir / "classes.txt").is_file():
                class_source = manual_dir / "classes.txt"
                classes = _read_lines(class_source)
            else:
                class_source = csvs["train"]
                classes = sorted({r["label"] for r in rows["train"]})
            if "test" in rows and not any(r.get("label") for r in rows["test"]):
                log.warning("%s: %s has no labels; the test split is not built", self.name, csvs["test"])
                del rows["test"]
        self._set_class_names(classes, class_source)
        index = {name: i for i, name in enumerate(classes)}

        clips = _index_clips(manual_dir / "videos")
        out = {}
        for split, split_rows in rows.items():
            items = []
            for r in split_rows:
                name = kinetics_clip_name(r["youtube_id"], r["time_start"], r["time_end"])
                if r["label"] not in index:
                    raise ValueError(f"{csvs[split]}: label {r['label']!r} of {name} is not a class of {class_source}")
                path = clips.get(name, manual_dir / "videos" / f"{name}.mp4")
                items.append((name, {"path": path, "label": index[r["label"]]}))
            out[split] = items
        return out

    def _make_example(self, item):
        frames, fps = self._decode(item["path"])
        return {"frames": frames, "fps": np.float32(fps), "label": item["label"]}


def _read_csv(path: epath.Path) -> list[dict]:
    with path.open() as f:
        rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(f)]
    need = {"youtube_id", "time_start", "time_end"}
    if rows and not need <= set(rows[0]):
        raise ValueError(f"{path}: expected columns label,youtube_id,time_start,time_end,split; got {sorted(rows[0])}")
    for r in rows:
        r.setdefault("label", "")
    return rows


def _read_lines(path: epath.Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _index_clips(root: epath.Path) -> dict:
    """``{clip name without extension: path}`` of every video file below ``root``."""
    if not root.is_dir():
        raise FileNotFoundError(f"Kinetics: expected a folder of clips {root}")
    out = {}
    for dirpath, _, files in os.walk(os.fspath(root)):
        for f in files:
            stem, ext = os.path.splitext(f)
            if ext.lower() in _VIDEO_EXTS:
                out.setdefault(stem, epath.Path(dirpath) / f)
    return out
