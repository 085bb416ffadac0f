"""Datasets and loaders from ``config.data``: the glue between TFDS builders and grain pipelines."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cfjax.data.loaders import make_eval_loader, make_train_loader, stack_examples
from cfjax.data.records import AdaptedSource

__all__ = ["Dataset", "check_data_dir", "data_dir", "load_dataset"]


def data_dir(config) -> Path:
    """``config.data.data_dir``, else ``$CFJAX_DATA_DIR``, else ``~/tensorflow_datasets``."""
    root = config.data.data_dir or os.environ.get("CFJAX_DATA_DIR") or "~/tensorflow_datasets"
    return Path(root).expanduser()


def _data_dir_source(config) -> str:
    if config.data.data_dir:
        return "data.data_dir"
    return "$CFJAX_DATA_DIR" if os.environ.get("CFJAX_DATA_DIR") else "the data directory (set $CFJAX_DATA_DIR)"


def check_data_dir(config, write: bool) -> None:
    """The data directory is a directory (and writable when data must be generated); else one line."""
    root = data_dir(config).absolute()
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        what = "is a file" if existing == root else f"is inside the file {existing}"
        raise NotADirectoryError(f"{_data_dir_source(config)}: {root} {what}; point it at a directory")
    if write and existing is not None and not os.access(existing, os.W_OK):
        raise PermissionError(
            f"{_data_dir_source(config)}: cannot write in {existing} to generate the synthetic data; "
            "point it at a directory you can write"
        )


class Dataset:
    """A prepared dataset: its splits as pipeline sources, and its class names."""

    def __init__(self, builder, config):
        self.builder = builder
        self._sources = builder.as_data_source()
        self._config = config
        features = builder.info.features
        names = getattr(features["label"], "names", None) if "label" in features else None
        if names is None and "tube_labels" in features and builder.name == "cfjax_synthetic":
            from cfjax.data.synthetic import MOTION_CLASSES  # the synthetic tubes' labels are motions

            names = MOTION_CLASSES
        if names is None:
            num = _num_classes(builder)
            names = [str(i) for i in range(num)]
        self.class_names = list(names)

    def source(self, split: str) -> AdaptedSource:
        if split not in self._sources:
            raise KeyError(f"data split: {split!r} not in {self.builder.name}; it has {sorted(self._sources)}")
        return AdaptedSource(
            self._sources[split], max_actors=self._config.data.max_actors, max_segments=self._config.data.max_segments
        )

    def train_loader(self, config, transform):
        return make_train_loader(
            self.source(config.data.train_split), transform, _local_batch(config.batch_size, "batch_size"),
            seed=int(config.seed), worker_count=int(config.data.worker_count),
        )

    def eval_loader(self, config, transform, split: str | None = None):
        return make_eval_loader(
            self.source(split or config.data.eval_split), transform,
            _local_batch(config.eval_batch_size, "eval_batch_size"), seed=int(config.seed),
            worker_count=int(config.data.worker_count),
        )

    def num_examples(self, split: str) -> int:
        return len(self._sources[split])


def _num_classes(builder) -> int:
    """Classes of a dataset without a ClassLabel: the width of its ``frame_labels`` (else 0)."""
    features = builder.info.features
    return int(features["frame_labels"].shape[-1]) if "frame_labels" in features else 0


def _local_batch(global_batch: int, name: str) -> int:
    import jax

    count = jax.process_count()
    if global_batch < 1 or global_batch % count:
        raise ValueError(f"{name}: expected a positive multiple of the {count} processes, got {global_batch}")
    return global_batch // count


def load_dataset(config) -> Dataset:
    """The dataset of ``config.data``, prepared; synthetic data is generated when missing.

    A real dataset that is not prepared raises FileNotFoundError with the command that prepares it.
    """
    from cfjax.data import builders

    name, cfg = config.data.dataset, config.data.config
    if name not in builders.BUILDERS:
        raise ValueError(f"data.dataset: unknown dataset {name!r}; known: {sorted(builders.BUILDERS)}")
    root = data_dir(config)
    kwargs = dict(config.data.builder_kwargs)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    check_data_dir(config, write=False)
    if name == "cfjax_synthetic":
        import jax

        if jax.process_index() == 0:  # one writer; the other processes wait, then read
            builder = builders.dataset_builder(name, cfg, root, **kwargs)
            if not builder.is_prepared():
                check_data_dir(config, write=True)
                from cfjax.train.writers import report

                report(f"data: generating {name}/{builder.builder_config.name} in {root} (once; later runs reuse it)")
                builders.build_dataset(name, cfg, root, quiet=True, **kwargs)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"cfjax data {name}/{cfg}")
    builder = builders.dataset_builder(name, cfg, root, **kwargs)
    if not builder.is_prepared():
        options = " ".join(f"--set {k}={v}" for k, v in sorted(kwargs.items()))
        raise FileNotFoundError(
            f"data: dataset {name}/{cfg} is not prepared under {root} (looked for {builder.data_path}). "
            f"Prepare it with: python -m experiments.prepare_data --dataset {name}/{cfg} --data_dir {root} "
            f"--manual_dir YOUR_DOWNLOAD_DIR {options + ' ' if options else ''}(layouts in README), or set data.data_dir / $CFJAX_DATA_DIR."
        )
    return Dataset(builder, config)


def example_batch(source, transform, size: int = 1) -> dict:
    """``size`` transformed copies of example 0, stacked: a template for shapes (model init)."""
    example = transform(dict(source[0]), np.random.default_rng(0))
    return stack_examples([example] * size)
