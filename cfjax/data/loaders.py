"""Grain loaders over random-access sources: batching, sharding, resumable iterators.

A *source* is any random-access collection: ``len(source)`` and
``source[i] -> dict`` of numpy arrays (``tfds.data_source`` returns one; so does
a list of dicts); :class:`cfjax.data.records.AdaptedSource` turns a TFDS builder's
records into such examples.

Loaders (:func:`make_train_loader`, :func:`make_eval_loader`) are grain
``MapDataset`` pipelines; every random transform is seeded from
``(seed, epoch, source index)``, so a batch depends on nothing else (not on the
worker count, nor on where a run was resumed). They return a
:class:`PipelineIterator` whose ``get_state()`` / ``set_state()`` restore the exact
next batch, and which Orbax saves through grain's checkpoint handler
(:func:`checkpoint_save_args` / :func:`checkpoint_restore_args`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grain
import numpy as np

from cfjax.data._checks import Example, positive_int

__all__ = [
    "PipelineIterator",
    "checkpoint_restore_args",
    "checkpoint_save_args",
    "make_eval_loader",
    "make_train_loader",
    "stack_examples",
]

Transform = Callable[[Example, np.random.Generator], Example]


def stack_examples(examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stacks examples into a batch: each key ``[...] -> [B, ...]`` (nested dicts too).

    Raises a ValueError naming the key when examples disagree on keys or shapes.
    """
    if not examples:
        raise ValueError("examples: expected at least one example to batch")

    def stack(items, path):
        first = items[0]
        if isinstance(first, Mapping):
            keys = set(first)
            for i, item in enumerate(items):
                if not isinstance(item, Mapping) or set(item) != keys:
                    got = sorted(item) if isinstance(item, Mapping) else type(item).__name__
                    raise ValueError(f"{path or 'example'}: example {i} has keys {got}, expected {sorted(keys)}")
            return {k: stack([item[k] for item in items], f"{path}.{k}" if path else k) for k in first}
        arrays = [np.asarray(item) for item in items]
        for i, array in enumerate(arrays):
            if array.shape != arrays[0].shape:
                raise ValueError(
                    f"{path!r}: example {i} has shape {array.shape}, example 0 has {arrays[0].shape}; "
                    "batched examples need equal shapes (sample fixed-size clips and crops)"
                )
        return np.stack(arrays)

    return stack(list(examples), "")


def _load(position_key, *, source, transform, seed):
    """``(epoch, source index, valid) -> transformed example`` with ``index`` and ``batch_mask``."""
    epoch, key, valid = position_key
    example = source[int(key)]
    if not isinstance(example, Mapping):
        raise TypeError(f"source[{key}]: expected a dict of arrays, got {type(example).__name__}")
    example = dict(example)
    if transform is not None:
        example = transform(example, np.random.default_rng([seed, int(epoch), int(key)]))
        if not isinstance(example, Mapping):
            raise TypeError(f"transform: expected it to return a dict, got {type(example).__name__}")
        example = dict(example)
    for reserved in ("index", "batch_mask"):
        if reserved in example:
            raise ValueError(f"{reserved!r}: key reserved by the loader, found in example {key}")
    example["index"] = np.int64(key if valid else -1)
    example["batch_mask"] = np.bool_(valid)
    return example


def _with_epoch(index, position, *, permutation, per_shard, shard_index, shard_count):
    """Position ``index`` of this shard's stream -> ``(epoch, source index, True)``."""
    epoch = index // per_shard
    key = permutation[epoch * len(permutation) + position * shard_count + shard_index]
    return epoch, key, True


def _shard(shard_index, shard_count) -> tuple[int, int]:
    if shard_index is None and shard_count is None:
        options = grain.sharding.ShardByJaxProcess()
        return options.shard_index, options.shard_count
    if shard_index is None or shard_count is None:
        raise ValueError("shard_index, shard_count: give both or neither (neither: one shard per JAX process)")
    shard_count = positive_int(shard_count, "shard_count")
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index: expected in [0, {shard_count}), got {shard_index}")
    return int(shard_index), shard_count


def _check_common(source, batch_size, seed, worker_count) -> int:
    if not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
        raise TypeError(f"source: expected a random-access source (__len__, __getitem__), got {type(source).__name__}")
    num_records = len(source)
    if num_records < 1:
        raise ValueError("source: it is empty")
    positive_int(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed: expected an int in [0, 2**32), got {seed!r}")
    if isinstance(worker_count, bool) or not isinstance(worker_count, (int, np.integer)) or worker_count < 0:
        raise ValueError(f"worker_count: expected an int >= 0, got {worker_count!r}")
    return num_records


def _allow_unparsed_absl_flags() -> None:
    """grain 0.2.18 reads an absl flag in multiprocess prefetch and raises when the
    program did not parse flags (google/grain#1355, fixed upstream by #1362). Outside
    ``absl.app`` we mark flags parsed, which leaves every flag at its default."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class PipelineIterator(grain.DatasetIterator):
    """Iterator over the batches of a loader, checkpointable at any batch boundary.

    ``get_state()`` is a small JSON-able dict: the number of batches consumed and
    the loader settings it belongs to; ``set_state`` on an iterator from the same
    settings makes the next batch the one that followed when the state was taken
    (the worker count may differ). Being a ``grain.DatasetIterator``, it is saved
    by grain's Orbax checkpoint handler (:func:`checkpoint_save_args`).
    """

    def __init__(
        self, batches: grain.MapDataset, config: dict[str, Any], *, worker_count: int, read_options: grain.ReadOptions
    ):
        super().__init__()
        self._batches = batches
        self._config = config
        self._worker_count = worker_count
        self._read_options = read_options
        self._next_batch = 0
        self._inner = None

    @property
    def num_batches(self) -> int | None:
        """Batches per full pass (None when the loader repeats forever)."""
        return self._config["num_batches"]

    def _start(self):
        if self._inner is None:
            ds = self._batches.slice(slice(self._next_batch, None)).to_iter_dataset(self._read_options)
            if self._worker_count > 0:
                _allow_unparsed_absl_flags()
                ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self._worker_count))
            self._inner = iter(ds)
        return self._inner

    def __next__(self) -> dict[str, Any]:
        batch = next(self._start())
        self._next_batch += 1
        return batch

    def start_prefetch(self) -> None:
        self._start()

    def get_state(self) -> dict[str, Any]:
        return {"next_batch": self._next_batch, **self._config}

    def set_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, Mapping) or "next_batch" not in state:
            raise ValueError(f"state: expected a dict from PipelineIterator.get_state(), got {state!r}")
        for name, value in self._config.items():
            if state.get(name) != value:
                raise ValueError(f"state: saved with {name}={state.get(name)!r}, but this loader has {name}={value!r}")
        next_batch = int(state["next_batch"])
        if next_batch < 0:
            raise ValueError(f"state: next_batch must be >= 0, got {next_batch}")
        self.close_inner()
        self._next_batch = next_batch

    def close_inner(self) -> None:
        if self._inner is not None:
            if hasattr(self._inner, "close"):
                self._inner.close()
            self._inner = None

    def close(self) -> None:
        self.close_inner()
        super().close()


def make_train_loader(
    source,
    transform: Transform | None,
    batch_size: int,
    seed: int,
    num_epochs: int | None = None,
    shard_index: int | None = None,
    shard_count: int | None = None,
    worker_count: int = 0,
    *,
    num_threads: int = 1,
    prefetch_buffer_size: int = 2,
) -> PipelineIterator:
    """Shuffled, repeated, sharded training batches.

    This process reads shard ``shard_index`` of ``shard_count`` (default: one per
    JAX process). Each epoch shuffles the whole source afresh and deals it
    round-robin: shard ``i`` takes permuted positions ``i::shard_count``, truncated
    so every shard has ``len(source) // shard_count`` examples (equal step counts on
    all hosts; the ``len % shard_count`` left over change every epoch). Shards are
    disjoint within an epoch. ``transform(example, rng)`` gets ``rng = default_rng([seed, epoch, index])``. Batches never straddle
    a dropped remainder: the last incomplete batch of the whole run is dropped.

    Returns:
      a :class:`PipelineIterator` of dicts: every example key stacked to
      ``[batch_size, ...]``, plus ``index [B]`` int64 (source index) and
      ``batch_mask [B]`` bool (all True).
    """
    num_records = _check_common(source, batch_size, seed, worker_count)
    if num_epochs is not None:
        num_epochs = positive_int(num_epochs, "num_epochs")
    shard_index, shard_count = _shard(shard_index, shard_count)
    per_shard = num_records // shard_count
    if per_shard < 1:
        raise ValueError(f"source: {num_records} examples cannot fill {shard_count} shards")
    # One global permutation per epoch (grain reseeds a shuffle at index // len), dealt
    # round-robin to the shards: disjoint within an epoch, and the few examples left over
    # (len % shard_count) differ from epoch to epoch.
    permutation = grain.MapDataset.range(num_records).shuffle(seed=int(seed))
    positions = grain.MapDataset.range(per_shard).repeat(num_epochs)
    deal = functools.partial(
        _with_epoch,
        permutation=permutation,
        per_shard=per_shard,
        shard_index=shard_index,
        shard_count=shard_count,
    )
    examples = positions.map_with_index(deal)
    examples = examples.map(functools.partial(_load, source=source, transform=transform, seed=int(seed)))
    batches = examples.batch(batch_size, drop_remainder=True, batch_fn=stack_examples)
    num_batches = None if num_epochs is None else per_shard * num_epochs // batch_size
    if num_batches == 0:
        raise ValueError(
            f"batch_size: {batch_size} exceeds the {per_shard * num_epochs} examples of this shard's "
            f"{num_epochs} epoch(s); no batch would be produced"
        )
    config = {
        "kind": "train",
        "seed": int(seed),
        "batch_size": int(batch_size),
        "num_records": num_records,
        "shard_index": shard_index,
        "shard_count": shard_count,
        "num_epochs": num_epochs,
        "num_batches": num_batches,
    }
    return PipelineIterator(
        batches,
        config,
        worker_count=int(worker_count),
        read_options=grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch_buffer_size),
    )


def _eval_position(position, *, keys, pad_key):
    if position < len(keys):
        return 0, keys[position], True
    return 0, pad_key, False


def make_eval_loader(
    source,
    transform: Transform | None,
    batch_size: int,
    seed: int = 0,
    shard_index: int | None = None,
    shard_count: int | None = None,
    worker_count: int = 0,
    *,
    num_threads: int = 1,
    prefetch_buffer_size: int = 2,
) -> PipelineIterator:
    """One ordered pass over this shard; every example appears exactly once overall.

    Shard ``i`` reads source indices ``i::shard_count``. All shards yield the same
    number of batches, ``ceil(ceil(len(source) / shard_count) / batch_size)``;
    slots past the shard's end are filled with a copy of one of its examples with
    ``batch_mask`` False and ``index`` -1. ``transform`` gets
    ``rng = default_rng([seed, 0, index])``.

    Returns:
      a finite :class:`PipelineIterator` of dicts as in :func:`make_train_loader`.
    """
    num_records = _check_common(source, batch_size, seed, worker_count)
    shard_index, shard_count = _shard(shard_index, shard_count)
    keys = list(range(shard_index, num_records, shard_count))
    per_shard = -(-num_records // shard_count)
    num_batches = -(-per_shard // batch_size)
    positions = grain.MapDataset.range(num_batches * batch_size)
    positions = positions.map(functools.partial(_eval_position, keys=keys, pad_key=keys[0] if keys else 0))
    examples = positions.map(functools.partial(_load, source=source, transform=transform, seed=int(seed)))
    batches = examples.batch(batch_size, drop_remainder=True, batch_fn=stack_examples)
    config = {
        "kind": "eval",
        "seed": int(seed),
        "batch_size": int(batch_size),
        "num_records": num_records,
        "shard_index": shard_index,
        "shard_count": shard_count,
        "num_epochs": 1,
        "num_batches": num_batches,
    }
    return PipelineIterator(
        batches,
        config,
        worker_count=int(worker_count),
        read_options=grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch_buffer_size),
    )


def checkpoint_save_args(iterator: PipelineIterator):
    """Orbax args saving ``iterator``'s state (grain's handler: one JSON file per process).

    Use inside ``ocp.args.Composite(..., data=checkpoint_save_args(it))`` with an
    ``ocp.CheckpointManager``.
    """
    if not isinstance(iterator, grain.DatasetIterator):
        raise TypeError(f"iterator: expected a PipelineIterator, got {type(iterator).__name__}")
    return grain.checkpoint.CheckpointSave(iterator)


def checkpoint_restore_args(iterator: PipelineIterator):
    """Orbax args restoring a saved state into ``iterator`` (a fresh loader with the same settings)."""
    if not isinstance(iterator, grain.DatasetIterator):
        raise TypeError(f"iterator: expected a PipelineIterator, got {type(iterator).__name__}")
    return grain.checkpoint.CheckpointRestore(iterator)
