"""Builder records -> pipeline examples -> grain batches, for every synthetic config."""

import sys
import tempfile

import numpy as np
import pytest

from cfjax.data import AdaptedSource, encode_jpeg, example_from_record
from cfjax.data.augment import horizontal_flip
from cfjax.data.loaders import make_eval_loader, make_train_loader
from cfjax.data.transform import VideoTransform

CONFIGS = ("classification", "temporal_detection", "clip_set", "tubes")
SIZES = dict(num_train=4, num_test=2)
SEED = 3
ACTOR = 180  # synthetic actors have one channel >= 180; the background is <= 100

TRANSFORMS = {
    "classification": dict(sampling="clip", clip_length=8, stride=2),
    "tubes": dict(sampling="clip", clip_length=8, stride=2, normalise=False),
    "temporal_detection": dict(sampling="coarse_fine", clip_length=8, stride=4, fine_length=24, fine_stride=4),
    "clip_set": dict(sampling="clips", num_clips=8, clip_length=8),
}


def transforms(config):
    kw = TRANSFORMS[config]
    train = VideoTransform(train=True, crop_size=48, scale_range=(48, 60), **kw)
    evaluate = VideoTransform(train=False, crop_size=48, short_side=56, **kw)
    return train, evaluate


@pytest.fixture(scope="module")
def builders():
    from cfjax.data.builders import build_dataset

    data_dir = tempfile.mkdtemp()
    return {c: build_dataset("cfjax_synthetic", c, data_dir, **SIZES) for c in CONFIGS}


def batches(builder, config):
    sources = builder.as_data_source()
    train_src, test_src = AdaptedSource(sources["train"]), AdaptedSource(sources["test"])
    train_t, eval_t = transforms(config)
    train = next(make_train_loader(train_src, train_t, 2, SEED, shard_index=0, shard_count=1))
    evaluate = next(make_eval_loader(test_src, eval_t, 2, shard_index=0, shard_count=1))
    return (train_src, train, train_t), (test_src, evaluate, eval_t)


def test_import_does_not_need_tfds():
    assert "tensorflow" not in sys.modules
    import subprocess

    code = "import sys, cfjax.data; cfjax.data.AdaptedSource; assert 'tensorflow_datasets' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_classification_batches(builders):
    for src, batch, _ in batches(builders["classification"], "classification"):
        assert batch["frames"].shape == (2, 8, 48, 48, 3) and batch["frames"].dtype == np.float32
        for b, i in enumerate(batch["index"]):
            record = src.source[int(i)]
            assert batch["label"][b] == record["label"]
            assert batch["video_id"][b] == record["video_id"].decode()
        assert batch["redundancy"].shape == (2,)


def test_temporal_detection_batches(builders):
    for src, batch, _ in batches(builders["temporal_detection"], "temporal_detection"):
        assert batch["frames"].shape == (2, 8, 48, 48, 3)
        assert batch["fine_frames"].shape == (2, 24, 48, 48, 3)
        assert batch["frame_labels"].shape == (2, 8, 8)
        assert batch["segments"].shape == (2, 64, 3) and batch["segment_mask"].shape == (2, 64)
        for b, i in enumerate(batch["index"]):
            record = src.source[int(i)]
            np.testing.assert_array_equal(batch["frame_labels"][b], record["frame_labels"][batch["frame_indices"][b]])
            n = len(record["segments"])
            assert batch["segment_mask"][b].sum() == n
            np.testing.assert_array_equal(batch["segments"][b, :n], record["segments"])


def test_clip_set_batches(builders):
    for src, batch, _ in batches(builders["clip_set"], "clip_set"):
        assert batch["frames"].shape == (2, 8, 8, 48, 48, 3)
        assert batch["clip_mask"].all()
        for b, i in enumerate(batch["index"]):
            record = src.source[int(i)]
            assert batch["label"][b] == record["label"]
            np.testing.assert_array_equal(batch["relevant_clips"][b], record["relevant_clips"])


def test_tube_records_put_boxes_on_the_actors(builders):
    """Frame numbering (1-based in the record) is right: boxes sit exactly on the drawn actors."""
    source = AdaptedSource(builders["tubes"].as_data_source()["train"])
    for i in range(len(source)):
        ex = source[i]
        record = source.source[i]
        num_actors = len(record["tube_labels"])
        assert ex["boxes"].shape == (32, 16, 4) and ex["box_mask"].shape == (32, 16)
        np.testing.assert_array_equal(ex["tube_mask"], np.arange(16) < num_actors)
        np.testing.assert_array_equal(ex["tube_labels"][:num_actors], record["tube_labels"])
        assert (ex["tube_labels"][num_actors:] == -1).all()
        np.testing.assert_array_equal(ex["box_mask"].sum(0)[:num_actors], record["tube_lengths"])
        for t in range(32):
            bright = ex["frames"][t].max(-1) >= ACTOR
            inside = np.zeros_like(bright)
            for x1, y1, x2, y2 in ex["boxes"][t][ex["box_mask"][t]].astype(int):
                assert bright[y1 : y2 + 1, x1 : x2 + 1].any(), (i, t)
                inside[y1 : y2 + 1, x1 : x2 + 1] = True
            assert not (bright & ~inside).any(), (i, t)


def test_tube_batches_keep_boxes_on_the_actors(builders):
    for _, batch, _ in batches(builders["tubes"], "tubes"):
        assert batch["frames"].shape == (2, 8, 48, 48, 3) and batch["frames"].dtype == np.uint8
        assert batch["boxes"].shape == (2, 8, 16, 4) and batch["box_mask"].shape == (2, 8, 16)
        assert batch["box_mask"].any()
        for b in range(2):
            for t in range(8):
                bright = batch["frames"][b, t].max(-1) > 140  # resized: between background and actor
                inside = np.zeros_like(bright)
                for x1, y1, x2, y2 in batch["boxes"][b, t][batch["box_mask"][b, t]]:
                    # resized boxes are exact within a pixel: grow them by one
                    inside[max(0, int(np.floor(y1)) - 1) : int(np.ceil(y2)) + 2,
                           max(0, int(np.floor(x1)) - 1) : int(np.ceil(x2)) + 2] = True  # fmt: skip
                assert not (bright & ~inside).any(), (b, t)


def test_tube_batches_match_a_painted_replay(builders):
    """Boxes after the loader's flip/crop/resize enclose the record's boxes painted as pixels."""
    (src, batch, transform), _ = batches(builders["tubes"], "tubes")
    for b, i in enumerate(batch["index"]):
        ex = src[int(i)]
        painted = np.zeros_like(ex["frames"])
        for t, a in zip(*np.nonzero(ex["box_mask"])):
            x1, y1, x2, y2 = ex["boxes"][t, a].astype(int)
            painted[t, y1 : y2 + 1, x1 : x2 + 1, a % 3] = 255
        out = transform({**ex, "frames": painted}, np.random.default_rng([SEED, 0, int(i)]))
        np.testing.assert_array_equal(out["boxes"], batch["boxes"][b])
        np.testing.assert_array_equal(out["box_mask"], batch["box_mask"][b])
        for t, a in zip(*np.nonzero(out["box_mask"])):
            ys, xs = np.nonzero(out["frames"][t, ..., a % 3] > 127)
            if len(xs) and ex["box_mask"].sum(1).max() == 1:  # one actor per frame: its box alone
                np.testing.assert_allclose(out["boxes"][t, a], [xs.min(), ys.min(), xs.max(), ys.max()], atol=1.0)


def test_act_style_record_one_based_frames_and_jpeg_sequences():
    frames = np.full((4, 20, 30, 3), 10, np.uint8)
    frames[1, 2:6, 3:9] = 250  # frame 2 (1-based) = frames[1]: box x 3..8, y 2..5
    record = {
        "video_id": b"Basketball/v_1",
        "frames": [f for f in frames],  # Sequence(Image): a list of decoded frames
        "fps": np.float32(25),
        "label": np.int64(0),
        "tube_labels": np.array([0], np.int64),
        "tube_lengths": np.array([1], np.int64),
        "tube_boxes": np.array([[2, 3, 2, 8, 5]], np.float32),
    }
    ex = example_from_record(record, max_actors=2)
    assert ex["video_id"] == "Basketball/v_1" and ex["fps"] == 25 and ex["frames"].shape == (4, 20, 30, 3)
    np.testing.assert_array_equal(ex["box_mask"], [[False, False], [True, False], [False, False], [False, False]])
    np.testing.assert_array_equal(ex["boxes"][1, 0], [3, 2, 8, 5])
    flipped = horizontal_flip(ex)
    ys, xs = np.nonzero(flipped["frames"][1, ..., 0] > 127)
    np.testing.assert_array_equal(flipped["boxes"][1, 0], [xs.min(), ys.min(), xs.max(), ys.max()])
    jpeg = example_from_record({**record, "frames": [encode_jpeg(f, 95) for f in frames]}, max_actors=2)
    assert np.abs(jpeg["frames"].astype(int) - frames).max() < 20
    with pytest.raises(ValueError, match=r"'Basketball/v_1'.*frame 5 outside 1\.\.4"):
        example_from_record({**record, "tube_boxes": np.array([[5, 3, 2, 8, 5]], np.float32)})
    with pytest.raises(ValueError, match="max_actors=1"):
        example_from_record({**record, **{k: np.concatenate([record[k]] * 2) for k in
                                          ("tube_labels", "tube_lengths", "tube_boxes")}}, max_actors=1)  # fmt: skip
    with pytest.raises(ValueError, match="two boxes on one frame"):
        example_from_record({**record, "tube_lengths": np.array([2]), "tube_boxes": np.repeat(record["tube_boxes"], 2, 0)})
    with pytest.raises(ValueError, match="does not match tube_lengths"):
        example_from_record({**record, "tube_lengths": np.array([3])})
    with pytest.raises(KeyError, match="'frames'"):
        example_from_record({"video_id": "x"})
    with pytest.raises(ValueError, match="max_segments=1"):
        example_from_record({"frames": frames, "segments": np.zeros((2, 3))}, max_segments=1)
    raw = example_from_record({"frames": frames, "segments": np.ones((2, 3))}, max_segments=None)
    assert raw["frames"] is frames and raw["segments"].shape == (2, 3) and raw["segment_mask"].all()


def test_adapted_source_indexing():
    src = AdaptedSource([{"frames": np.zeros((2, 4, 4, 3), np.uint8), "label": k} for k in range(3)])
    assert len(src) == 3 and src[-1]["label"] == 2
    with pytest.raises(IndexError):
        src[3]
    with pytest.raises(TypeError, match="random-access"):
        AdaptedSource(5)
    with pytest.raises(ValueError, match="max_actors"):
        AdaptedSource([], max_actors=0)
