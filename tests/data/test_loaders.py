"""Tests of cfjax.data.loaders: batching, grain loaders (determinism, sharding, resumable state, Orbax)."""

import gc

import numpy as np
import orbax.checkpoint as ocp
import pytest

from cfjax.data.augment import random_crop
from cfjax.data.loaders import (
    checkpoint_restore_args,
    checkpoint_save_args,
    make_eval_loader,
    make_train_loader,
    stack_examples,
)
from cfjax.data.sampling import sample_clip
from cfjax.data.transform import VideoTransform
from tests.data.videos import video


def source(n=12):
    return [video(10 + 2 * i, label=i) for i in range(n)]


TRAIN = VideoTransform(clip_length=4, stride=2, crop_size=16, scale_range=(16, 20))


def train_loader(src, seed=1, batch_size=3, **kw):
    kw.setdefault("shard_index", 0)
    kw.setdefault("shard_count", 1)
    return make_train_loader(src, TRAIN, batch_size, seed, **kw)


def assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_bad_inputs_name_the_thing():
    with pytest.raises(KeyError, match="'frames'"):
        sample_clip({"video": np.zeros((4, 8, 8, 3), np.uint8)}, 2)
    with pytest.raises(ValueError, match="'boxes'"):
        sample_clip({**video(5), "boxes": np.zeros((4, 1, 4))}, 2)
    with pytest.raises(ValueError, match="size"):
        random_crop(video(3), 40, 0)
    with pytest.raises(ValueError, match="sampling"):
        VideoTransform(sampling="dense")
    with pytest.raises(ValueError, match="'frames': example 1 has shape"):
        stack_examples([video(3), video(4)])
    with pytest.raises(ValueError, match="shard_index"):
        make_train_loader(source(), TRAIN, 2, 0, shard_index=3, shard_count=2)


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
        manager.save(3, args=ocp.args.Composite(data=checkpoint_save_args(it)))
        manager.wait_until_finished()
    next(it)  # progress after saving must not leak into the checkpoint
    fresh = train_loader(src)
    with ocp.CheckpointManager(tmp_path) as manager:
        restored = manager.restore(3, args=ocp.args.Composite(data=checkpoint_restore_args(fresh)))
    assert restored["data"] is fresh
    assert_batches_equal([next(fresh) for _ in range(2)], uninterrupted[3:])


def test_train_shards_are_disjoint_and_cover_the_data():
    src = source(12)
    seen = []
    for shard in range(3):
        batches = list(make_train_loader(src, TRAIN, 2, 7, num_epochs=1, shard_index=shard, shard_count=3))
        assert len(batches) == 2
        seen.append(set(np.concatenate([b["index"] for b in batches]).tolist()))
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])
    assert set().union(*seen) == set(range(12))


def test_eval_padding_keeps_every_example_exactly_once():
    src = source(11)
    tf = VideoTransform(train=False, clip_length=4, stride=2, crop_size=16)
    counts, num_batches = np.zeros(11, int), set()
    for shard in range(3):
        batches = list(make_eval_loader(src, tf, 2, shard_index=shard, shard_count=3))
        num_batches.add(len(batches))
        for b in batches:
            assert b["frames"].shape == (2, 4, 16, 16, 3)
            assert (b["index"][~b["batch_mask"]] == -1).all()
            np.testing.assert_array_equal(b["label"][b["batch_mask"]], b["index"][b["batch_mask"]])
            np.add.at(counts, b["index"][b["batch_mask"]], 1)
    assert num_batches == {2} and (counts == 1).all()
    again = list(make_eval_loader(src, tf, 2, shard_index=1, shard_count=3))
    assert_batches_equal(again, list(make_eval_loader(src, tf, 2, shard_index=1, shard_count=3)))


def test_gcf_and_coarse_fine_batches():
    src = [video(40 + 7 * i) for i in range(4)]
    for ex in src:  # horizontal gradient: a crop or flip differing between streams would show
        ex["frames"] = (ex["frames"] + np.arange(32, dtype=np.uint8)[None, None, :, None] * 4).astype(np.uint8)
    clips = VideoTransform(sampling="clips", num_clips=3, clip_length=4, crop_size=16)
    b = next(make_train_loader(src, clips, 2, 0, shard_index=0, shard_count=1))
    assert b["frames"].shape == (2, 3, 4, 16, 16, 3) and b["clip_mask"].shape == (2, 3)
    cf = VideoTransform(
        sampling="coarse_fine", clip_length=4, stride=3, fine_length=8, fine_stride=3, crop_size=16, normalise=False
    )
    b = next(make_train_loader(src, cf, 2, 0, shard_index=0, shard_count=1))
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
        it = make_train_loader(small, None, 3, 4, num_epochs=6, shard_index=shard, shard_count=3)
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
    arrays = {
        k: jax.make_array_from_process_local_data(sharding, v)
        for k, v in batch.items()
        if v.dtype != object and v.dtype.kind != "U"
    }
    for k, a in arrays.items():
        assert a.shape == batch[k].shape and len(a.sharding.device_set) == 8, k
        np.testing.assert_array_equal(np.asarray(a), batch[k], err_msg=k)
