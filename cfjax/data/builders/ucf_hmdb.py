"""UCF101 and HMDB51 with their official three train/test splits, as array_record."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from cfjax.data.builders.real import RealConfig, RealVideoBuilder, require_file

__all__ = ["CfjaxHmdb51", "CfjaxUcf101"]


def _split_configs():
    return [
        RealConfig(
            name=f"split{k}", description=f"official split {k}, native fps and size, JPEG 90", split=k, short_side=None
        )
        for k in (1, 2, 3)
    ]


def _features(cfg, num_classes):
    return {"fps": tfds.features.Scalar(dtype=np.float32), "label": tfds.features.ClassLabel(num_classes=num_classes)}


def _video_id(path: str) -> str:
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


class CfjaxUcf101(RealVideoBuilder):
    """UCF101 (101 classes), official splits 1..3 as configs ``split1..3``.

    Manual directory layout (the official UCF101.rar and UCF101TrainTestSplits
    zip, extracted)::

        {manual_dir}/
          ucfTrainTestlist/classInd.txt      # "1 ApplyEyeMakeup" ... (1-based index, name)
          ucfTrainTestlist/trainlist0{1,2,3}.txt  # "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
          ucfTrainTestlist/testlist0{1,2,3}.txt   # "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
          UCF-101/{Class}/v_{Class}_gXX_cYY.avi

    The label is the classInd index - 1 of the list's folder name.

    Record: ``video_id`` text (``v_Class_gXX_cYY``); ``frames`` [T, H, W, 3];
    ``fps`` float32 (stored rate); ``label`` ClassLabel (names from classInd).
    """

    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = _split_configs()
    NUM_CLASSES = 101

    def _features(self, cfg):
        return _features(cfg, self.NUM_CLASSES)

    def _split_items(self, manual_dir: epath.Path):
        k = self.builder_config.split
        hint = f"See the layout in {type(self).__name__}'s docstring."
        lists = manual_dir / "ucfTrainTestlist"
        class_ind = require_file(lists / "classInd.txt", "UCF101 class index", hint)
        files = {
            "train": require_file(lists / f"trainlist0{k}.txt", f"UCF101 split {k} train list", hint),
            "test": require_file(lists / f"testlist0{k}.txt", f"UCF101 split {k} test list", hint),
        }
        pairs = []
        for line in class_ind.read_text().splitlines():
            if line.strip():
                i, name = line.split()
                pairs.append((int(i), name))
        pairs.sort()
        if [i for i, _ in pairs] != list(range(1, len(pairs) + 1)):
            raise ValueError(f"{class_ind}: expected indices 1..N in order, got {[i for i, _ in pairs][:10]}...")
        names = [n for _, n in pairs]
        self._set_class_names(names, class_ind)
        index = {n: i for i, n in enumerate(names)}
        out = {}
        for split, path in files.items():
            items = []
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                rel = line.split()[0].replace("\\", "/")
                cls = rel.split("/")[0]
                if cls not in index:
                    raise ValueError(f"{path}: class folder {cls!r} of {rel} is not in {class_ind}")
                items.append((_video_id(rel), {"path": manual_dir / "UCF-101" / rel, "label": index[cls]}))
            out[split] = items
        return out

    def _make_example(self, item):
        frames, fps = self._decode(item["path"])
        return {"frames": frames, "fps": np.float32(fps), "label": item["label"]}


class CfjaxHmdb51(RealVideoBuilder):
    """HMDB51 (51 classes), official splits 1..3 as configs ``split1..3``.

    Manual directory layout (hmdb51_org.rar with its per-class rars extracted,
    and test_train_splits.rar)::

        {manual_dir}/
          testTrainMulti_7030_splits/{class}_test_split{1,2,3}.txt
                                     # lines "{name}.avi {0|1|2}": 1 = train, 2 = test, 0 = unused
          hmdb51/{class}/{name}.avi

    Classes are the sorted class names of the split files (label = index).

    Record: ``video_id`` text (``{name}`` without ``.avi``); ``frames``
    [T, H, W, 3]; ``fps`` float32 (stored rate); ``label`` ClassLabel.
    """

    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = _split_configs()
    NUM_CLASSES = 51

    def _features(self, cfg):
        return _features(cfg, self.NUM_CLASSES)

    def _split_items(self, manual_dir: epath.Path):
        k = self.builder_config.split
        hint = f"See the layout in {type(self).__name__}'s docstring."
        lists = manual_dir / "testTrainMulti_7030_splits"
        if not lists.is_dir():
            raise FileNotFoundError(f"HMDB51: expected folder {lists} with {{class}}_test_split{k}.txt files. {hint}")
        suffix = f"_test_split{k}.txt"
        files = {p.name[: -len(suffix)]: p for p in lists.iterdir() if p.name.endswith(suffix)}
        if not files:
            raise FileNotFoundError(f"HMDB51: expected files {lists}/{{class}}{suffix} (none found). {hint}")
        names = sorted(files)
        self._set_class_names(names, f"{lists}/*{suffix}")
        out = {"train": [], "test": []}
        for label, cls in enumerate(names):
            for line in files[cls].read_text().splitlines():
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise ValueError(f"{files[cls]}: expected lines '<name>.avi <0|1|2>', got {line!r}")
                if parts[1] == "0":
                    continue
                split = "train" if parts[1] == "1" else "test"
                out[split].append(
                    (_video_id(parts[0]), {"path": manual_dir / "hmdb51" / cls / parts[0], "label": label})
                )
        return out

    def _make_example(self, item):
        frames, fps = self._decode(item["path"])
        return {"frames": frames, "fps": np.float32(fps), "label": item["label"]}
