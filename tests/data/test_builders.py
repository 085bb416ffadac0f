"""TFDS synthetic builder: array_record build, read back without TensorFlow, schemas, determinism."""

import sys
import tempfile

import numpy as np
from absl.testing import absltest, parameterized

from cfjax.data import synthetic
from cfjax.data.builders import SyntheticConfig, build_dataset, make_record, tubes_from_record

CONFIGS = ("classification", "temporal_detection", "clip_set", "tubes")
SIZES = dict(num_train=4, num_test=2)


def _read_all(source):
    return {r["video_id"].decode(): r for r in (source[i] for i in range(len(source)))}


class SyntheticBuilderTest(parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data_dir = tempfile.mkdtemp()
        cls.builders = {c: build_dataset("cfjax_synthetic", c, cls.data_dir, **SIZES) for c in CONFIGS}

    def test_no_tensorflow(self):
        self.assertNotIn("tensorflow", sys.modules)

    @parameterized.parameters(*CONFIGS)
    def test_splits_and_files(self, config):
        builder = self.builders[config]
        self.assertEqual(builder.builder_config.name, f"{config}-num_test2-num_train4")
        files = [p.name for p in builder.data_path.iterdir()]
        self.assertTrue(any(".array_record" in f for f in files), files)
        source = builder.as_data_source()
        self.assertEqual({k: len(v) for k, v in source.items()}, {"train": 4, "test": 2})
        self.assertEqual(sorted(_read_all(source["train"])), [f"train_{i:06d}" for i in range(4)])

    @parameterized.parameters(*CONFIGS)
    def test_records_match_generator(self, config):
        builder = self.builders[config]
        cfg = builder.builder_config
        for split_index, split in enumerate(("train", "test")):
            for vid, rec in _read_all(builder.as_data_source()[split]).items():
                want = make_record(cfg, (split_index, int(vid.split("_")[1])))
                self.assertEqual(set(rec), set(want) | {"video_id"})
                for k, v in want.items():
                    got = np.asarray(rec[k])
                    np.testing.assert_array_equal(got, v, err_msg=f"{config}/{vid}/{k}")
                    if isinstance(v, np.ndarray) and v.ndim:  # tensors keep their dtype
                        self.assertEqual(got.dtype, v.dtype, f"{config}/{k}")

    def test_classification_schema(self):
        for rec in _read_all(self.builders["classification"].as_data_source()["train"]).values():
            self.assertEqual(rec["frames"].shape, (32, 64, 64, 3))
            self.assertEqual(rec["frames"].dtype, np.uint8)
            self.assertIn(int(rec["label"]), range(synthetic.NUM_CLASSES))
            same = np.all(rec["frames"][1:] == rec["frames"][:-1], axis=(1, 2, 3)).sum()
            self.assertAlmostEqual(float(rec["redundancy"]), same / 31, places=5)

    def test_temporal_detection_schema(self):
        for rec in _read_all(self.builders["temporal_detection"].as_data_source()["test"]).values():
            self.assertEqual(rec["frames"].shape, (96, 64, 64, 3))
            self.assertEqual((rec["frame_labels"].shape, rec["frame_labels"].dtype), ((96, 8), np.uint8))
            seg = rec["segments"]
            self.assertEqual((seg.ndim, seg.shape[1], seg.dtype), (2, 3, np.float32))
            expected = np.zeros((96, 8), np.uint8)
            for c, s, e in seg.astype(int):
                expected[s : e + 1, c] = 1
            np.testing.assert_array_equal(rec["frame_labels"], expected)

    def test_clip_set_schema(self):
        for rec in _read_all(self.builders["clip_set"].as_data_source()["train"]).values():
            self.assertEqual(rec["frames"].shape, (64, 64, 64, 3))
            self.assertEqual((rec["relevant_clips"].shape, rec["relevant_clips"].dtype), ((8,), np.bool_))
            self.assertTrue(1 <= rec["relevant_clips"].sum() <= 3)

    def test_tubes_schema_and_act_ground_truth(self):
        recs = _read_all(self.builders["tubes"].as_data_source()["train"])
        videos = {}
        for vid, rec in recs.items():
            tubes = tubes_from_record(rec)
            self.assertEqual(len(tubes), len(rec["tube_labels"]))
            for (label, boxes), n in zip(tubes, rec["tube_lengths"]):
                self.assertEqual(boxes.shape, (n, 5))
                self.assertTrue(np.all(boxes[:, 1:] >= 0) and np.all(boxes[:, 1:] <= 63))
            videos[vid] = {"frames": rec["frames"], "tubes": tubes}
        gt = synthetic.act_ground_truth(videos, sorted(videos)[:3], sorted(videos)[3:])
        self.assertEqual(set(gt["gttubes"]), set(recs))
        with self.assertRaisesRegex(KeyError, "tube_boxes"):
            tubes_from_record({"tube_labels": [], "tube_lengths": []})

    def test_deterministic_rebuild_and_reads(self):
        other = build_dataset("cfjax_synthetic", "clip_set", tempfile.mkdtemp(), **SIZES)
        a = self.builders["clip_set"].as_data_source()["train"]
        b = other.as_data_source()["train"]
        for i in range(len(a)):  # same order and bytes, and repeated reads agree
            for k in a[i]:
                np.testing.assert_array_equal(a[i][k], b[i][k])
                np.testing.assert_array_equal(a[i][k], a[i][k])

    def test_seed_changes_data(self):
        other = build_dataset("cfjax_synthetic", "classification", self.data_dir, seed=1, **SIZES)
        a = _read_all(self.builders["classification"].as_data_source()["train"])
        b = _read_all(other.as_data_source()["train"])
        self.assertFalse(np.array_equal(a["train_000000"]["frames"], b["train_000000"]["frames"]))

    def test_errors(self):
        with self.assertRaisesRegex(KeyError, "unknown dataset"):
            build_dataset("nope", "tubes", self.data_dir)
        with self.assertRaisesRegex(KeyError, "unknown config"):
            build_dataset("cfjax_synthetic", "nope", self.data_dir)
        with self.assertRaisesRegex(KeyError, "num_trian"):
            build_dataset("cfjax_synthetic", "tubes", self.data_dir, num_trian=3)
        with self.assertRaisesRegex(ValueError, "kind"):
            SyntheticConfig(name="x")
        with self.assertRaisesRegex(ValueError, "num_train"):
            SyntheticConfig(name="tubes", num_train=-1)


if __name__ == "__main__":
    absltest.main()
