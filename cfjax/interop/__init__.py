"""PyTorch checkpoints -> cfjax models (numpy at the core; PyTorch only to read ``.pt`` files).

    module, variables = from_torch("x3d_s.pyth", "pytorchvideo", "x3d_s")
    logits = module.apply(variables, video)          # video [B, T, H, W, 3], eval mode

``checkpoint`` is a path (read with PyTorch's weights-only unpickler) or a mapping
of arrays (no PyTorch needed). Each source is one table in :mod:`cfjax.interop.sources`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import jax

from cfjax.interop.mapping import Source, map_state_dict
from cfjax.interop.reader import CheckpointError, read_state_dict
from cfjax.interop.sources import SOURCES, kinetics400_class_names

__all__ = [
    "CONVERTER_VERSION",
    "SOURCES",
    "CheckpointError",
    "Converted",
    "Source",
    "convert",
    "from_torch",
    "kinetics400_class_names",
    "read_state_dict",
]

CONVERTER_VERSION = "cfjax.interop 1"


@dataclasses.dataclass
class Converted:
    """A converted checkpoint: the module, its variables (numpy), the model config that
    rebuilds the module with ``cfjax.models.build``, class names (or None) and a report."""

    module: Any
    variables: dict
    model_config: dict
    class_names: list[str] | None
    report: dict


def _source(source: str, model: str) -> Source:
    if source not in SOURCES:
        raise CheckpointError(f"source: expected one of {sorted(SOURCES)}, got {source!r}")
    src = SOURCES[source]
    if model not in src.models:
        pairs = "; ".join(f"{s.name}: {', '.join(s.models)}" for s in SOURCES.values())
        raise CheckpointError(f"model: source {source!r} converts into {list(src.models)}, not {model!r} ({pairs})")
    return src


def convert(checkpoint: str | os.PathLike | Mapping, source: str, model: str, **model_overrides) -> Converted:
    """Reads ``checkpoint`` and maps it onto the registry model ``model`` (strict, see :mod:`.mapping`).

    ``num_classes`` defaults to the checkpoint's classifier width; other overrides
    are fields of the model (``build({"name": model, **overrides})``).
    """
    from cfjax.models import build

    src = _source(source, model)
    state = read_state_dict(checkpoint)
    where = "(mapping)" if isinstance(checkpoint, Mapping) else os.fspath(checkpoint)
    fields = {**src.fields_for(model), **model_overrides}
    if "num_classes" not in fields and src.classifier in state:
        fields["num_classes"] = int(state[src.classifier].shape[0])
    model_config = {"name": model, **fields}
    try:
        module = build(model_config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"model: cannot build {model_config}: {e}") from None
    abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), *src.example_args(module)))
    variables, report = map_state_dict(state, src, abstract, where, model)
    num_classes = fields.get("num_classes")
    names = src.class_names(num_classes) if num_classes else None
    return Converted(module, variables, model_config, names, report)


def from_torch(checkpoint: str | os.PathLike | Mapping, source: str, model: str, **model_overrides):
    """``(module, variables)``: a cfjax model with the weights of a PyTorch checkpoint.

    Args:
      checkpoint: a ``.pt`` / ``.pth`` / ``.pyth`` path, or a state dict as a mapping of arrays.
      source: ``"pytorchvideo"``, ``"torchvision"`` or ``"coarse_fine"``.
      model: a registry name (``"x3d_s"``, ``"r2plus1d_18"``, ``"coarse_fine"``, ...).
      **model_overrides: model fields (``num_classes`` defaults to the checkpoint's).

    ``module.apply(variables, video)`` (eval mode) returns the logits; video is
    channels-last ``[B, T, H, W, 3]`` (PyTorch's ``[B, 3, T, H, W]`` moved).
    """
    converted = convert(checkpoint, source, model, **model_overrides)
    return converted.module, converted.variables
