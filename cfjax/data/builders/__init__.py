"""TFDS builders (array_record only, no TensorFlow) and ``build_dataset`` for CLIs."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os

import tensorflow_datasets as tfds

from cfjax.data.builders.act import ActConfig, CfjaxJhmdb, CfjaxUcf10124, CfjaxUcfSports, load_act_ground_truth
from cfjax.data.builders.charades import CfjaxCharades, charades_frame_labels, parse_charades_actions
from cfjax.data.builders.kinetics import CfjaxKinetics, KineticsConfig
from cfjax.data.builders.real import EmptySplitError, RealConfig, frames_array, rescale_boxes
from cfjax.data.builders.synthetic import CfjaxSynthetic, SyntheticConfig, make_record, tubes_from_record
from cfjax.data.builders.ucf_hmdb import CfjaxHmdb51, CfjaxUcf101

__all__ = [
    "BUILDERS",
    "ActConfig",
    "CfjaxCharades",
    "CfjaxHmdb51",
    "CfjaxJhmdb",
    "CfjaxKinetics",
    "CfjaxSynthetic",
    "CfjaxUcf101",
    "CfjaxUcf10124",
    "CfjaxUcfSports",
    "EmptySplitError",
    "KineticsConfig",
    "RealConfig",
    "SyntheticConfig",
    "build_dataset",
    "charades_frame_labels",
    "dataset_builder",
    "frames_array",
    "load_act_ground_truth",
    "make_record",
    "parse_charades_actions",
    "rescale_boxes",
    "tubes_from_record",
]

BUILDERS = {
    cls.name: cls
    for cls in (
        CfjaxSynthetic,
        CfjaxCharades,
        CfjaxKinetics,
        CfjaxUcf101,
        CfjaxHmdb51,
        CfjaxUcf10124,
        CfjaxJhmdb,
        CfjaxUcfSports,
    )
}


def dataset_builder(name: str, config: str, data_dir, num_workers: int = 1, **kwargs) -> tfds.core.DatasetBuilder:
    """The builder of ``name`` / ``config`` (with overrides) under ``data_dir``, not prepared.

    Args:
      name: a key of ``BUILDERS`` (e.g. ``"cfjax_synthetic"``).
      config: a builder config name (e.g. ``"tubes"``).
      data_dir: root directory; data goes to ``data_dir/name/config[-overrides]/version``.
      num_workers: decoding threads of a real builder (the data does not
        depend on it, nor does the config name).
      **kwargs: overrides of config fields (e.g. ``num_train=4, num_test=2``). A
        config with overrides gets a name that spells them out
        (``"tubes-num_test2-num_train4"``), so builds of different sizes never
        share a directory.
    """
    if name not in BUILDERS:
        raise KeyError(f"name: unknown dataset {name!r}; known: {sorted(BUILDERS)}")
    cls = BUILDERS[name]
    configs = {c.name: c for c in cls.BUILDER_CONFIGS}
    if config not in configs:
        raise KeyError(f"config: unknown config {config!r} of {name}; known: {sorted(configs)}")
    base = configs[config]
    cfg = base
    if kwargs:
        fields = {f.name for f in dataclasses.fields(base)}
        unknown = sorted(set(kwargs) - fields)
        if unknown:
            raise KeyError(f"kwargs: unknown fields {unknown} of {type(base).__name__}")
        suffix = "-".join(f"{k}{kwargs[k]}" for k in sorted(kwargs))
        cfg = dataclasses.replace(base, name=f"{base.name}-{suffix}", **kwargs)
    extra = {} if cls is CfjaxSynthetic else {"num_workers": num_workers}
    return cls(config=cfg, data_dir=os.fspath(data_dir), **extra)


def build_dataset(
    name: str, config: str, data_dir, manual_dir=None, num_workers: int = 1, quiet: bool = False, **kwargs
) -> tfds.core.DatasetBuilder:
    """Prepares dataset ``name`` / ``config`` as array_record under ``data_dir``.

    Arguments as :func:`dataset_builder`, plus ``manual_dir``: the manual directory
    of a real dataset (its layout is in the builder's docstring); ignored by
    ``cfjax_synthetic``.

    Returns:
      The prepared builder; read it with ``builder.as_data_source()``.
    """
    builder = dataset_builder(name, config, data_dir, num_workers, **kwargs)
    download_config = tfds.download.DownloadConfig(manual_dir=None if manual_dir is None else os.fspath(manual_dir))
    if quiet and not builder.is_prepared():
        with contextlib.redirect_stdout(io.StringIO()), _tfds_progress_bars(False):
            builder.download_and_prepare(file_format="array_record", download_config=download_config)
    else:
        builder.download_and_prepare(file_format="array_record", download_config=download_config)
    return builder


@contextlib.contextmanager
def _tfds_progress_bars(enabled: bool):
    from tensorflow_datasets.core.utils import tqdm_utils

    previous = getattr(tqdm_utils, "_active", True)  # TFDS has a setter but no getter
    tqdm_utils.display_progress_bar(enabled)
    try:
        yield
    finally:
        tqdm_utils.display_progress_bar(previous)
