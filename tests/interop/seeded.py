"""Deterministic "random" state dicts, rebuilt from a formula with numpy alone.

Reference fixtures (``tests/interop/data``) were produced by PyTorch models whose every
state-dict entry was set from the formula below, so a test can rebuild the exact same
weights without PyTorch and feed them to a converter.

For the entry with index ``i`` in state-dict order, ``rng = np.random.default_rng([seed, i])``;
values are drawn in float64 and cast to the entry's dtype (float32):

* convolution / linear ``weight``: ``standard_normal(shape) * sqrt(1 / prod(shape[1:]))``
* convolution / linear ``bias``:   ``standard_normal(shape) * 0.02``
* batch-norm ``weight``:           ``uniform(0.8, 1.2, shape)``
* batch-norm ``bias``:             ``standard_normal(shape) * 0.05``
* ``running_mean``:                ``standard_normal(shape) * 0.1``
* ``running_var``:                 ``uniform(0.8, 1.2, shape)``
* ``num_batches_tracked``:         ``0`` (int64)

``extra_scale`` maps a key to an extra factor, applied in float64 before the cast
(the Coarse-Fine reference uses ``{"pool_1.conv3.weight": 20.0}``).

numpy only: no PyTorch and no cfjax imports.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["CFN_EXTRA_SCALE", "Entry", "init_rule", "read_keys_tsv", "seeded_state_dict", "seeded_tensor"]

# (key, shape, dtype, module_class), in state-dict order.
Entry = tuple[str, tuple[int, ...], str, str]

# The one exception in the Coarse-Fine reference (cfn_official/README.md, "Deterministic weights").
CFN_EXTRA_SCALE = {"pool_1.conv3.weight": 20.0}

_LINEAR_CLASSES = ("Conv1d", "Conv2d", "Conv3d", "Linear")


def _is_norm(module_class: str) -> bool:
    # "BatchNorm3d", "SubBatchNorm3d", "SubBatchNorm3d.bn", "SubBatchNorm3d.split_bn", ...
    return "BatchNorm" in module_class


def _is_linear(module_class: str) -> bool:
    return module_class in _LINEAR_CLASSES


def init_rule(key: str, shape: Sequence[int], module_class: str) -> str:
    """Short name of the rule used for ``key``: ``fan_normal``, ``normal*0.02``, ``uniform(0.8,1.2)``, ..."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return "zero(int64)"
    if leaf == "running_mean":
        return "normal*0.1"
    if leaf == "running_var":
        return "uniform(0.8,1.2)"
    if leaf == "weight" and _is_linear(module_class):
        if len(shape) < 2:
            raise ValueError(f"{key}: a {module_class} weight needs at least 2 dims, got shape {tuple(shape)}")
        return f"normal*sqrt(1/{int(np.prod(shape[1:]))})"
    if leaf == "bias" and _is_linear(module_class):
        return "normal*0.02"
    if leaf == "weight" and _is_norm(module_class):
        return "uniform(0.8,1.2)"
    if leaf == "bias" and _is_norm(module_class):
        return "normal*0.05"
    raise ValueError(f"no seeded init rule for key {key!r} of module class {module_class!r}")


def seeded_tensor(
    index: int, key: str, shape: Sequence[int], dtype: str, module_class: str, seed: int = 0, scale: float = 1.0
) -> np.ndarray:
    """The tensor for one state-dict entry (``index`` = its position in state-dict order)."""
    shape = tuple(int(s) for s in shape)
    rule = init_rule(key, shape, module_class)
    if rule == "zero(int64)":
        return np.zeros(shape, dtype=np.int64)
    rng = np.random.default_rng([seed, index])
    if rule.startswith("uniform"):
        x = rng.uniform(0.8, 1.2, shape)
    elif rule.startswith("normal*sqrt"):
        x = rng.standard_normal(shape) * np.sqrt(1.0 / np.prod(shape[1:]))
    else:
        x = rng.standard_normal(shape) * float(rule.split("*", 1)[1])
    if scale != 1.0:
        x = x * scale
    return x.astype(np.dtype(dtype))


def seeded_state_dict(
    entries: Sequence[Entry], seed: int = 0, extra_scale: Mapping[str, float] | None = None
) -> dict[str, np.ndarray]:
    """``{key: array}`` for ``entries`` = ``(key, shape, dtype, module_class)`` in state-dict order."""
    extra_scale = dict(extra_scale or {})
    out: dict[str, np.ndarray] = {}
    for i, (key, shape, dtype, module_class) in enumerate(entries):
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = seeded_tensor(i, key, shape, dtype, module_class, seed, extra_scale.pop(key, 1.0))
    if extra_scale:
        raise ValueError(f"extra_scale keys not in entries: {sorted(extra_scale)}")
    return out


def parse_shape(text: str) -> tuple[int, ...]:
    """``"24x3x1x3x3"`` -> ``(24, 3, 1, 3, 3)``; ``"scalar"`` -> ``()``."""
    text = text.strip()
    if text in ("scalar", ""):
        return ()
    return tuple(int(s) for s in text.split("x"))


def read_keys_tsv(path: str | Path) -> list[Entry]:
    """Entries from a keys table (tab-separated, header row; columns ``index``, ``key``, ``shape``,
    ``dtype``, ``module_class``, others ignored). Rows must be in index order 0..n-1."""
    entries: list[Entry] = []
    with open(path, newline="") as f:
        for n, row in enumerate(csv.DictReader(f, delimiter="\t")):
            if int(row["index"]) != n:
                raise ValueError(f"{path}: row {n} has index {row['index']}")
            entries.append((row["key"], parse_shape(row["shape"]), row["dtype"], row["module_class"]))
    return entries
