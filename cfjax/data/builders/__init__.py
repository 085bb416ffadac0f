"""TFDS builders (array_record only, no TensorFlow) and ``build_dataset`` for CLIs."""

from __future__ import annotations

import dataclasses
import os

import tensorflow_datasets as tfds

from cfjax.data.builders.synthetic import CfjaxSynthetic, SyntheticConfig, make_record, tubes_from_record

__all__ = ["BUILDERS", "CfjaxSynthetic", "SyntheticConfig", "build_dataset", "make_record", "tubes_from_record"]

BUILDERS = {"cfjax_synthetic": CfjaxSynthetic}


def build_dataset(name: str, config: str, data_dir, **kwargs) -> tfds.core.DatasetBuilder:
    """Prepares dataset ``name`` / ``config`` as array_record under ``data_dir``.

    Args:
      name: a key of ``BUILDERS`` (e.g. ``"cfjax_synthetic"``).
      config: a builder config name (e.g. ``"tubes"``).
      data_dir: root directory; data goes to ``data_dir/name/config[-overrides]/version``.
      **kwargs: overrides of config fields (e.g. ``num_train=4, num_test=2``). A
        config with overrides gets a name that spells them out
        (``"tubes-num_test2-num_train4"``), so builds of different sizes never
        share a directory.

    Returns:
      The prepared builder; read it with ``builder.as_data_source()``.
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
        cfg = dataclasses.replace(base, name=f"{base.name}-{suffix}", kind=getattr(base, "kind", ""), **kwargs)
    builder = cls(config=cfg, data_dir=os.fspath(data_dir))
    builder.download_and_prepare(
        file_format="array_record", download_config=tfds.download.DownloadConfig()
    )
    return builder
