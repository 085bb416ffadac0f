"""Tests of cfjax.data.pipeline: transforms (temporal, spatial, boxes) and grain loaders."""

import gc
import itertools

import hypothesis
import hypothesis.strategies as st
import numpy as np
import orbax.checkpoint as ocp
import pytest

from cfjax.data import pipeline as P


def video(num_frames, height=24, width=32, label=0, num_classes=3):
    """Frame t is filled with the value t (so a pixel tells which frame it came from)."""
    frames = np.broadcast_to(
        np.arange(num_frames, dtype=np.uint8)[:, None, None, None], (num_frames, height, width, 3)
    ).copy()
    frame_labels = (np.arange(num_frames)[:, None] + np.arange(num_classes)[None, :]) % 256
    return {"frames": frames, "label": np.int64(label), "frame_labels": frame_labels.astype(np.uint8)}


def source(n=12):
    return [video(10 + 2 * i, label=i) for i in range(n)]


TRAIN = P.VideoTransform(clip_length=4, stride=2, crop_size=16, scale_range=(16, 20))


def train_loader(src, seed=1, batch_size=3, **kw):
    kw.setdefault("shard_index", 0)
    kw.setdefault("shard_count", 1)
    return P.make_train_loader(src, TRAIN, batch_size, seed, **kw)


def assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


# ---------------------------------------------------------------------- temporal


def test_clip_indices_centre_random_and_loop_padding():
    idx, mask = P.clip_indices(100, 8, 3)
    np.testing.assert_array_equal(np.diff(idx), 3)
    assert mask.all() and idx[0] == (100 - 22) // 2
    starts = {int(P.clip_indices(100, 8, 3, np.random.default_rng(s))[0][0]) for s in range(30)}
    assert len(starts) > 5 and min(starts) >= 0 and max(starts) <= 100 - 22
    # Short video: 7 frames, stride 2 -> in-range steps 0, 2, 4, 6, then they loop.
    idx, mask = P.clip_indices(7, 10, 2, np.random.default_rng(0))
    np.testing.assert_array_equal(idx, [0, 2, 4, 6, 0, 2, 4, 6, 0, 2])
    np.testing.assert_array_equal(mask, [True] * 4 + [False] * 6)


def test_sample_clip_gathers_frames_labels_and_masks_together():
    ex = video(7)
    out = P.sample_clip(ex, 10, 2, np.random.default_rng(0))
    assert out["frames"].shape == (10, 24, 32, 3)
    np.testing.assert_array_equal(out["frames"][:, 0, 0, 0], out["frame_indices"])
    np.testing.assert_array_equal(out["frame_labels"][:, 0], out["frame_indices"])
    assert out["frame_mask"].sum() == 4 and out["label"] == ex["label"]


def test_frame_labels_at_another_rate_are_resampled_proportionally():
    labels = np.repeat(np.arange(5), 1)[:, None]  # 5 label rows for 20 frames: 4 frames each
    got = P.resample_frame_labels(labels, np.array([0, 3, 4, 10, 19]), 20)
    np.testing.assert_array_equal(got[:, 0], [0, 0, 1, 2, 4])


def test_multi_clip_indices_non_overlapping_uniform_and_in_range():
    for rng in (None, np.random.default_rng(3)):
        idx, clip_mask, frame_mask = P.multi_clip_indices(200, 5, 8, 2, rng)
        assert idx.shape == (5, 8) and clip_mask.all() and frame_mask.all()
        windows = [(row[0], row[-1] + 2) for row in idx]  # each clip owns [start, start + L*s)
        for (a0, a1), (b0, b1) in itertools.pairwise(windows):
            assert a1 <= b0
        assert idx.min() >= 0 and idx.max() < 200
        assert idx[0, 0] < 40 and idx[-1, 0] >= 160  # spread over the whole video


def test_multi_clip_indices_short_video_masked():
    idx, clip_mask, frame_mask = P.multi_clip_indices(20, 5, 8, 1, short_video="mask")
    np.testing.assert_array_equal(clip_mask, [True, True, True, False, False])
    assert frame_mask[:2].all() and frame_mask[2, :4].all() and not frame_mask[2, 4:].any()
    assert not frame_mask[3:].any()
    np.testing.assert_array_equal(idx[3], idx[0])
    valid = idx[frame_mask]
    assert len(np.unique(valid)) == len(valid) == 20  # every frame once, no overlap
    out = P.sample_clips(video(20), 5, 8, 1, short_video="mask")
    assert out["frames"].shape == (5, 8, 24, 32, 3) and out["frame_labels"].shape == (5, 8, 3)
    np.testing.assert_array_equal(out["frames"][..., 0, 0, 0], idx)
    np.testing.assert_array_equal(out["clip_mask"], clip_mask)
    with pytest.raises(ValueError, match="^short_video: expected one of"):
        P.multi_clip_indices(20, 5, 8, short_video="pad")


@hypothesis.given(
    num_clips=st.integers(1, 12), clip_length=st.integers(1, 8), stride=st.integers(1, 3), fraction=st.floats(0, 1)
)
def test_multi_clip_indices_short_video_loops_as_real_clips(num_clips, clip_length, stride, fraction):
    """GCF-Net's loop padding: a video shorter than N windows gives N valid clips that cycle through its
    k = ceil(F / window) consecutive windows (the last wrapping to frame 0); masking only changes the masks."""
    window = clip_length * stride
    num_frames = 1 + int(fraction * (num_clips * window - 2)) if num_clips * window > 1 else 1
    hypothesis.assume(num_frames < num_clips * window)
    idx, clip_mask, frame_mask = P.multi_clip_indices(num_frames, num_clips, clip_length, stride)
    assert idx.shape == (num_clips, clip_length) and clip_mask.all() and frame_mask.all()
    k = -(-num_frames // window)
    expected = (window * np.arange(k)[:, None] + stride * np.arange(clip_length)) % num_frames
    np.testing.assert_array_equal(idx, expected[np.arange(num_clips) % k])
    masked_idx, masked_clips, _ = P.multi_clip_indices(num_frames, num_clips, clip_length, stride, short_video="mask")
    np.testing.assert_array_equal(masked_idx, idx)
    np.testing.assert_array_equal(masked_clips, np.arange(num_clips) < k)


def test_clip_set_task_short_video_option():
    """``input.short_video`` of the clip-set task: "loop" (default) keeps the 10 looped clips valid, "mask" masks
    the repeats; any other value, or the key with another sampling, is a one-line error."""
    import ml_collections

    from cfjax.train import tasks

    c = ml_collections.ConfigDict(
        {
            "task": "clip_set",
            "input": {"sampling": "clips", "num_clips": 10, "clip_length": 4, "crop_size": 16, "flip": False},
            "eval_input": {},
            "loss": {"sparsity_weight": 0.0},
        }
    )
    task = tasks.get_task(c)
    looped = task.transform(c, train=False)(video(20), 0)  # 20 frames: 5 windows of 4
    assert looped["clip_mask"].all() and looped["frames"].shape[:2] == (10, 4)
    np.testing.assert_array_equal(looped["frame_indices"][5:], looped["frame_indices"][:5])
    c.input.short_video = "mask"
    masked = task.transform(c, train=True)(video(20), 0)
    np.testing.assert_array_equal(masked["clip_mask"], np.arange(10) < 5)
    np.testing.assert_array_equal(masked["frame_indices"], looped["frame_indices"])
    c.input.short_video = "pad"
    with pytest.raises(ValueError, match="^input.short_video: expected one of"):
        task.transform(c, train=True)
    c.input.short_video, c.input.sampling = "mask", "clip"
    with pytest.raises(ValueError, match="^input.short_video: only for sampling='clips'"):
        tasks.video_transform(c, train=True)


@pytest.mark.parametrize("num_frames", [30, 300, 2000])
def test_coarse_fine_offset_points_at_the_coarse_clip_start(num_frames):
    for seed in range(5):
        ex = video(num_frames)
        ex["frames"] = ex["frames"][:, :2, :2]
        idx = P.coarse_fine_indices(num_frames, 8, 10, 16, 10, np.random.default_rng(seed))
        off = int(idx["offset"])
        assert idx["fine_mask"][off]
        assert idx["fine_indices"][off] == idx["coarse_indices"][0]
        np.testing.assert_array_equal(
            idx["fine_indices"][off : off + 8][idx["fine_mask"][off : off + 8]],
            idx["coarse_indices"][: int(idx["fine_mask"][off : off + 8].sum())],
        )
        out = P.sample_coarse_fine(ex, 8, 10, 16, 10, np.random.default_rng(seed))
        np.testing.assert_array_equal(out["fine_frames"][int(out["fine_offset"])], out["frames"][0])
        assert out["fine_frames"].shape[0] == 16 and out["frames"].shape[0] == 8
    if num_frames == 30:  # 3 fine steps valid, the rest loop-padded and masked
        np.testing.assert_array_equal(idx["fine_mask"], [True] * 3 + [False] * 13)
    with pytest.raises(ValueError, match="start_step"):
        P.coarse_fine_indices(30, 8, 10, 16, 10, start_step=5)


# ----------------------------------------------------------------------- spatial


def box_video(height=40, width=60, box=(7, 5, 30, 21)):
    """Two frames, one actor: a bright rectangle exactly at ``box`` (inclusive pixels)."""
    frames = np.zeros((2, height, width, 3), np.uint8)
    x1, y1, x2, y2 = box
    frames[:, y1 : y2 + 1, x1 : x2 + 1] = 255
    boxes = np.array([[box, (0, 0, 1, 1)]] * 2, np.float32)
    return {"frames": frames, "boxes": boxes, "box_mask": np.array([[True, False]] * 2)}


def bright_box(frame):
    """The inclusive box of the bright pixels: first and last bright column and row."""
    ys, xs = np.nonzero(frame[..., 0] > 127)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)


def test_flip_and_crop_move_boxes_exactly_with_pixels():
    ex = box_video()
    for out in (P.horizontal_flip(ex), P.crop(ex, 3, 4, 30, 40), P.centre_crop(ex, 30), *P.three_crop(ex, 36)):
        for t in range(2):
            np.testing.assert_array_equal(out["boxes"][t, 0], bright_box(out["frames"][t]))
    flipped = P.horizontal_flip(ex)
    np.testing.assert_array_equal(flipped["boxes"][0, 0], [59 - 30, 5, 59 - 7, 21])  # x -> W - 1 - x
    np.testing.assert_array_equal(P.horizontal_flip(flipped)["boxes"], ex["boxes"])


def test_random_transforms_keep_boxes_on_the_object_within_one_pixel():
    ex = box_video()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        out = P.random_resize_short_side(ex, (44, 70), rng)
        out = P.random_crop(out, 40, rng)
        out = P.random_horizontal_flip(out, rng)
        for t in range(2):
            if out["box_mask"][t, 0]:
                clipped_object = bright_box(out["frames"][t])
                np.testing.assert_allclose(out["boxes"][t, 0], clipped_object, atol=1.0)
    full = P.VideoTransform(clip_length=2, crop_size=32, scale_range=(36, 48), normalise=False)
    for seed in range(6):
        out = full(ex, seed)
        np.testing.assert_allclose(out["boxes"][0, 0], bright_box(out["frames"][0]), atol=1.0)


def test_crop_clips_boxes_and_drops_boxes_that_leave_it():
    ex = box_video()
    ex["box_mask"][:] = True
    out = P.crop(ex, 10, 20, 20, 30)  # keeps columns 20..49, rows 10..29
    np.testing.assert_array_equal(out["boxes"][0, 0], [0, 0, 10, 11])
    np.testing.assert_array_equal(out["boxes"][0, 0], bright_box(out["frames"][0]))
    np.testing.assert_array_equal(out["box_mask"][0], [True, False])  # actor 1 at (0,0,1,1) is gone
    edge = P.crop(ex, 0, 30, 40, 30)  # the box's last column (30) is the crop's first
    np.testing.assert_array_equal(edge["boxes"][0, 0], [0, 5, 0, 21])
    np.testing.assert_array_equal(edge["boxes"][0, 0], bright_box(edge["frames"][0]))
    assert edge["box_mask"][0, 0]
    gone = P.crop(ex, 0, 31, 40, 29)  # starts one column past the box: no pixel left
    assert not gone["box_mask"][0, 0]
    corner = P.crop(ex, 22, 0, 18, 7)  # ends a column before the box (x1 = 7), starts a row below it (y2 = 21)
    assert not corner["box_mask"][:, 0].any()
    with pytest.raises(ValueError, match="does not fit"):
        P.crop(ex, 30, 0, 20, 20)


def test_three_crop_positions_along_long_side():
    cols = np.broadcast_to(np.arange(60, dtype=np.uint8)[None, None, :, None], (1, 20, 60, 3)).copy()
    left, centre, right = P.three_crop({"frames": cols}, 20)
    assert [c["frames"][0, 0, 0, 0] for c in (left, centre, right)] == [0, 20, 40]
    tall = {"frames": np.ascontiguousarray(np.swapaxes(cols, 1, 2))}
    top, _, bottom = P.three_crop(tall, 20)
    assert top["frames"][0, 0, 0, 0] == 0 and bottom["frames"][0, -1, 0, 0] == 59


def test_resize_short_side_scales_boxes_and_keeps_aspect():
    out = P.resize_short_side(box_video(), 20)
    assert out["frames"].shape == (2, 20, 30, 3)
    # inclusive pixels: x1 -> x1 * s, x2 -> (x2 + 1) * s - 1 (as the builders rescale)
    np.testing.assert_allclose(out["boxes"][0, 0], [3.5, 2.5, 14.5, 10.0])
    np.testing.assert_allclose(out["boxes"][0, 0], bright_box(out["frames"][0]), atol=1.0)
    for short_side in (17, 31, 40, 57, 83):  # up and down, odd scales: the bright pixels stay within 1 px
        ex = box_video(box=(11, 6, 24, 19))
        out = P.resize_short_side(ex, short_side)
        np.testing.assert_allclose(out["boxes"][0, 0], bright_box(out["frames"][0]), atol=1.0)


def test_multi_view_has_30_views_clip_major():
    ex = video(100, 24, 36)
    out = P.multi_view(ex, 8, 2, num_clips=10, num_crops=3, crop_size=16)
    assert out["frames"].shape == (30, 8, 16, 16, 3)
    assert out["frame_mask"].shape == (30, 8) and out["frame_labels"].shape == (30, 8, 3)
    starts = out["frame_indices"][:, 0].reshape(10, 3)
    assert (starts == starts[:, :1]).all() and (np.diff(starts[:, 0]) > 0).all()
    np.testing.assert_array_equal(out["frames"][:, :, 0, 0, 0], out["frame_indices"])
    assert out["label"] == ex["label"]
    eval_tf = P.VideoTransform(
        sampling="multi_view", train=False, clip_length=8, stride=2, num_clips=10, num_crops=3, crop_size=16
    )
    assert eval_tf(ex, 0)["frames"].dtype == np.float32


def test_normalize_per_channel_float32():
    ex = {"frames": np.full((1, 2, 2, 3), 255, np.uint8)}
    out = P.normalize(ex, mean=(0.5, 0.0, 1.0), std=(0.5, 1.0, 2.0))
    assert out["frames"].dtype == np.float32
    np.testing.assert_allclose(out["frames"][0, 0, 0], [1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="mean/std"):
        P.normalize(ex, mean=(0.5,), std=(0.5,))


def test_bad_inputs_name_the_thing():
    with pytest.raises(KeyError, match="'frames'"):
        P.sample_clip({"video": np.zeros((4, 8, 8, 3), np.uint8)}, 2)
    with pytest.raises(ValueError, match="'boxes'"):
        P.sample_clip({**video(5), "boxes": np.zeros((4, 1, 4))}, 2)
    with pytest.raises(ValueError, match="size"):
        P.random_crop(video(3), 40, 0)
    with pytest.raises(ValueError, match="sampling"):
        P.VideoTransform(sampling="dense")
    with pytest.raises(ValueError, match="'frames': example 1 has shape"):
        P.stack_examples([video(3), video(4)])
    with pytest.raises(ValueError, match="shard_index"):
        P.make_train_loader(source(), TRAIN, 2, 0, shard_index=3, shard_count=2)


# ----------------------------------------------------------------------- loaders


def test_train_loader_is_deterministic_and_seed_dependent():
    src = source()
    a = [next(it) for it in [train_loader(src)] for _ in range(5)]
    b = [next(it) for it in [train_loader(src)] for _ in range(5)]
    assert_batches_equal(a, b)
    assert a[0]["frames"].shape == (3, 4, 16, 16, 3) and a[0]["frames"].dtype == np.float32
    assert a[0]["batch_mask"].all() and a[0]["label"].shape == (3,)
    np.testing.assert_array_equal(a[0]["label"], a[0]["index"])  # labels follow their examples
    c = [next(it) for it in [train_loader(src, seed=2)] for _ in range(5)]
    assert not all(np.array_equal(x["index"], y["index"]) for x, y in zip(a, c))
    assert not all(np.array_equal(x["frames"], y["frames"]) for x, y in zip(a, c))


def test_epochs_are_permutations_and_transforms_do_not_depend_on_batching():
    src = source(12)
    by3 = list(train_loader(src, batch_size=3, num_epochs=2))
    by4 = list(train_loader(src, batch_size=4, num_epochs=2))
    idx3 = np.concatenate([b["index"] for b in by3])
    assert len(by3) == 8 and sorted(idx3[:12]) == list(range(12)) and sorted(idx3[12:]) == list(range(12))
    assert not np.array_equal(idx3[:12], idx3[12:])  # each epoch reshuffled
    np.testing.assert_array_equal(idx3, np.concatenate([b["index"] for b in by4]))
    frames3 = np.concatenate([b["frames"] for b in by3])
    np.testing.assert_array_equal(frames3, np.concatenate([b["frames"] for b in by4]))
    # The same example is augmented afresh in each epoch (rng from seed, epoch, index).
    first, second = np.argsort(idx3[:12]), 12 + np.argsort(idx3[12:])
    differs = [not np.array_equal(frames3[i], frames3[j]) for i, j in zip(first, second)]
    assert sum(differs) >= 9


def test_resume_from_state_gives_the_exact_next_batches():
    src = source()
    uninterrupted = [next(it) for it in [train_loader(src)] for _ in range(7)]
    it = train_loader(src)
    for _ in range(4):
        next(it)
    state = it.get_state()
    fresh = train_loader(src)
    fresh.set_state(state)
    assert_batches_equal([next(fresh) for _ in range(3)], uninterrupted[4:])
    with pytest.raises(ValueError, match="seed"):
        train_loader(src, seed=5).set_state(state)


def test_resume_through_orbax_checkpoint_manager(tmp_path):
    src = source()
    uninterrupted = [next(it) for it in [train_loader(src)] for _ in range(5)]
    it = train_loader(src)
    for _ in range(3):
        next(it)
    with ocp.CheckpointManager(tmp_path) as manager:
        manager.save(3, args=ocp.args.Composite(data=P.checkpoint_save_args(it)))
        manager.wait_until_finished()
    next(it)  # progress after saving must not leak into the checkpoint
    fresh = train_loader(src)
    with ocp.CheckpointManager(tmp_path) as manager:
        restored = manager.restore(3, args=ocp.args.Composite(data=P.checkpoint_restore_args(fresh)))
    assert restored["data"] is fresh
    assert_batches_equal([next(fresh) for _ in range(2)], uninterrupted[3:])


def test_train_shards_are_disjoint_and_cover_the_data():
    src = source(12)
    seen = []
    for shard in range(3):
        batches = list(P.make_train_loader(src, TRAIN, 2, 7, num_epochs=1, shard_index=shard, shard_count=3))
        assert len(batches) == 2
        seen.append(set(np.concatenate([b["index"] for b in batches]).tolist()))
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])
    assert set().union(*seen) == set(range(12))


def test_eval_padding_keeps_every_example_exactly_once():
    src = source(11)
    tf = P.VideoTransform(train=False, clip_length=4, stride=2, crop_size=16)
    counts, num_batches = np.zeros(11, int), set()
    for shard in range(3):
        batches = list(P.make_eval_loader(src, tf, 2, shard_index=shard, shard_count=3))
        num_batches.add(len(batches))
        for b in batches:
            assert b["frames"].shape == (2, 4, 16, 16, 3)
            assert (b["index"][~b["batch_mask"]] == -1).all()
            np.testing.assert_array_equal(b["label"][b["batch_mask"]], b["index"][b["batch_mask"]])
            np.add.at(counts, b["index"][b["batch_mask"]], 1)
    assert num_batches == {2} and (counts == 1).all()
    again = list(P.make_eval_loader(src, tf, 2, shard_index=1, shard_count=3))
    assert_batches_equal(again, list(P.make_eval_loader(src, tf, 2, shard_index=1, shard_count=3)))


def test_gcf_and_coarse_fine_batches():
    src = [video(40 + 7 * i) for i in range(4)]
    for ex in src:  # horizontal gradient: a crop or flip differing between streams would show
        ex["frames"] = (ex["frames"] + np.arange(32, dtype=np.uint8)[None, None, :, None] * 4).astype(np.uint8)
    clips = P.VideoTransform(sampling="clips", num_clips=3, clip_length=4, crop_size=16)
    b = next(P.make_train_loader(src, clips, 2, 0, shard_index=0, shard_count=1))
    assert b["frames"].shape == (2, 3, 4, 16, 16, 3) and b["clip_mask"].shape == (2, 3)
    cf = P.VideoTransform(
        sampling="coarse_fine", clip_length=4, stride=3, fine_length=8, fine_stride=3, crop_size=16, normalise=False
    )
    b = next(P.make_train_loader(src, cf, 2, 0, shard_index=0, shard_count=1))
    assert b["frames"].shape == (2, 4, 16, 16, 3) and b["fine_frames"].shape == (2, 8, 16, 16, 3)
    for i in range(2):  # same crop and flip on both streams: the offset frame matches pixel for pixel
        np.testing.assert_array_equal(b["fine_frames"][i, b["fine_offset"][i]], b["frames"][i, 0])


def test_worker_count_does_not_change_batches():
    src = source(8)
    serial = [next(it) for it in [train_loader(src)] for _ in range(3)]
    it = train_loader(src, worker_count=1)
    parallel = [next(it) for _ in range(3)]
    assert_batches_equal(serial, [{k: np.array(v) for k, v in b.items()} for b in parallel])
    it.close()
    del parallel
    gc.collect()


def test_train_sharding_remainder_changes_each_epoch():
    # 10 examples, 3 shards x 3 per epoch: one left over per epoch, a different one each time.
    per_epoch = [[] for _ in range(6)]
    small = [{"frames": np.zeros((1, 2, 2, 3), np.uint8), "label": np.int64(i)} for i in range(10)]
    for shard in range(3):
        it = P.make_train_loader(small, None, 3, 4, num_epochs=6, shard_index=shard, shard_count=3)
        for epoch, batch in enumerate(it):
            per_epoch[epoch].append(set(batch["index"].tolist()))
    seen = set()
    for shards in per_epoch:
        assert len(set().union(*shards)) == 9  # disjoint, 3 each
        seen |= set().union(*shards)
    assert seen == set(range(10))


def test_batches_become_global_arrays_on_a_data_parallel_mesh():
    """A batch goes straight into jax.make_array_from_process_local_data on 8 devices."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    batch = next(train_loader(source(16), batch_size=8))
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    arrays = {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()
              if v.dtype != object and v.dtype.kind != "U"}
    for k, a in arrays.items():
        assert a.shape == batch[k].shape and len(a.sharding.device_set) == 8, k
        np.testing.assert_array_equal(np.asarray(a), batch[k], err_msg=k)
