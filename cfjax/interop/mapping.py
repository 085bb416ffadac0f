"""State dict -> cfjax variables, driven by one small table per source.

A :class:`Source` lists rules ``(cfjax module path regex, PyTorch module prefix)``.
Every cfjax module (a path such as ``res3_1/b/norm/bn``) takes the first rule
whose regex matches its whole path; the prefix is a template over the regex's
named groups (``"blocks.{s-1}.res_blocks.{i}"``: ``{name}``, ``{name-1}``,
``{name+1}``). Leaves follow fixed conventions:

============  ==========================  ===========================================
cfjax leaf    PyTorch key                  layout
============  ==========================  ===========================================
``kernel``    ``weight``                   Conv ``(O, I, kt, kh, kw)`` -> ``(kt, kh, kw, I, O)``;
                                           Linear ``(O, I)`` / Conv1d ``(O, I, 1)`` /
                                           1x1x1 Conv3d -> Dense ``(I, O)``
``bias``      ``bias``
``scale``     ``weight``                   BatchNorm affine
``mean``      ``running_mean``             (``split_bn.running_mean`` for SubBatchNorm3d)
``var``       ``running_var``              (``split_bn.running_var`` for SubBatchNorm3d)
============  ==========================  ===========================================

Conversion is strict: every cfjax leaf is filled and every tensor of the state
dict is used (BatchNorm counters ``num_batches_tracked`` and a SubBatchNorm3d's
superseded ``bn.running_*`` are accounted for, not used), else one
:class:`~cfjax.interop.reader.CheckpointError` lists the first missing and
unexpected keys and their counts.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from flax import traverse_util

from cfjax.interop.reader import CheckpointError

__all__ = ["Source", "map_state_dict"]

BATCH_NORM_KINDS = ("plain", "sub_batch_norm")
LEAF_KEYS = {"kernel": "weight", "bias": "bias", "scale": "weight", "mean": "running_mean", "var": "running_var"}


@dataclasses.dataclass(frozen=True)
class Source:
    """How one family of PyTorch checkpoints maps onto cfjax models.

    Attributes:
      name: the ``source`` argument of :func:`~cfjax.interop.from_torch`.
      models: registry names it converts into.
      rules: ``(cfjax module path regex, PyTorch prefix template)``, first match wins.
      classifier: PyTorch key whose first dimension is ``num_classes`` (None: no classifier).
      batch_norm: ``"plain"`` (``BatchNorm3d``) or ``"sub_batch_norm"`` (``SubBatchNorm3d``:
        eval statistics from ``split_bn``, aggregated over its splits, as
        ``aggregate_sub_bn_stats()`` does).
      model_fields: cfjax model fields the source implies, per registry name (``"*"``: all).
      example_args: ``module -> positional args of module.init`` (shapes only matter).
      class_names: ``num_classes -> list of names`` (or None) for this source's checkpoints.
      input_format: per registry name, how its published models read video: ``frames``,
        ``stride`` (at the dataset's frame rate), ``short_side``, ``crop``, ``mean``, ``std``
        (pixels in [0, 1]); used by ``experiments.predict --checkpoint_dir``.
      description: one line for listings and errors.
    """

    name: str
    models: tuple[str, ...]
    rules: tuple[tuple[str, str], ...]
    classifier: str | None
    example_args: Callable[[Any], tuple]
    batch_norm: str = "plain"
    model_fields: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    class_names: Callable[[int], list[str] | None] = lambda num_classes: None
    input_format: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    description: str = ""

    def fields_for(self, model: str) -> dict:
        return {**self.model_fields.get("*", {}), **self.model_fields.get(model, {})}


_FIELD = re.compile(r"\{(\w+)([+-]\d+)?\}")


def _prefix(template: str, match: re.Match) -> str:
    def value(m):
        v = match.group(m.group(1))
        return str(int(v) + int(m.group(2))) if m.group(2) else v

    return _FIELD.sub(value, template)


def _to_kernel(weight: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """A PyTorch weight in cfjax layout, and the PyTorch shape that ``shape`` expects."""
    if len(shape) == 5:
        expected = (shape[4], shape[3], *shape[:3])
        return (weight.transpose(2, 3, 4, 1, 0) if weight.ndim == 5 else weight), expected
    if len(shape) == 2:
        expected = (shape[1], shape[0])
        if weight.ndim >= 2 and all(d == 1 for d in weight.shape[2:]):
            return weight.reshape(weight.shape[:2]).T, expected
    return weight, tuple(shape)


def _bn_stats(state, prefix: str, kind: str) -> tuple[dict[str, str | None], list[str]]:
    """Keys of a BatchNorm's running statistics, and the keys it accounts for without using."""
    counters = [k for k in (f"{prefix}.num_batches_tracked", f"{prefix}.bn.num_batches_tracked",
                            f"{prefix}.split_bn.num_batches_tracked") if k in state]
    if kind == "sub_batch_norm":
        superseded = [k for k in (f"{prefix}.bn.running_mean", f"{prefix}.bn.running_var") if k in state]
        stats = {"mean": f"{prefix}.split_bn.running_mean", "var": f"{prefix}.split_bn.running_var"}
        return stats, counters + superseded
    return {"mean": f"{prefix}.running_mean", "var": f"{prefix}.running_var"}, counters


def _aggregate_sub_batch_norms(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """SubBatchNorm3d's ``aggregate_sub_bn_stats``: ``split_bn`` statistics of ``[splits * C]``
    become ``[C]`` (mean of the split means; mean of the split variances plus the variance of the
    split means), ``C`` being the width of the module's affine ``weight``."""
    state = dict(state)
    for key in [k for k in state if k.endswith(".split_bn.running_mean")]:
        prefix = key[: -len(".split_bn.running_mean")]
        mean, var, weight = (state.get(f"{prefix}{s}") for s in (".split_bn.running_mean", ".split_bn.running_var",
                                                                  ".weight"))
        if var is None or weight is None or mean.ndim != 1 or mean.shape[0] == weight.shape[0]:
            continue
        if mean.shape[0] % weight.shape[0]:
            continue  # left as it is: the shape check names it
        m, v = mean.reshape(-1, weight.shape[0]), np.asarray(var).reshape(-1, weight.shape[0])
        state[key] = m.mean(0)
        state[f"{prefix}.split_bn.running_var"] = v.mean(0) + ((m - m.mean(0)) ** 2).mean(0)
    return state


def _list(keys, limit: int = 10) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys)} in all)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def map_state_dict(state: Mapping[str, np.ndarray], source: Source, abstract_variables, where: str, model: str):
    """Fills ``abstract_variables`` (a tree of objects with ``shape``/``dtype``) from ``state``.

    Returns ``(variables, report)``: numpy variables in the abstract tree's
    structure and dtypes, and ``{"used", "accounted", "leaves"}`` counts.
    """
    if source.batch_norm not in BATCH_NORM_KINDS:
        raise ValueError(f"Source {source.name}: batch_norm must be one of {BATCH_NORM_KINDS}")
    rules = [(re.compile(pattern), template) for pattern, template in source.rules]
    original = state
    if source.batch_norm == "sub_batch_norm":
        state = _aggregate_sub_batch_norms(state)
    modules: dict[tuple[str, ...], dict[str, tuple[tuple[str, ...], Any]]] = {}
    for path, leaf in traverse_util.flatten_dict(abstract_variables).items():
        modules.setdefault(path[1:-1], {})[path[-1]] = (path, leaf)

    used, accounted, missing, shape_errors, out = set(), set(), [], [], []
    for module_path, leaves in modules.items():
        name = "/".join(module_path)
        match = next((m for m in (r.fullmatch(name) for r, _ in rules) if m), None)
        if match is None:
            raise CheckpointError(
                f"converter: source {source.name!r} has no rule for cfjax module {name!r} of model {model!r} "
                "(its table does not cover this model)"
            )
        prefix = _prefix(next(t for r, t in rules if r is match.re), match)
        keys = {leaf: f"{prefix}.{LEAF_KEYS.get(leaf, leaf)}" for leaf in leaves}
        if "mean" in leaves or "var" in leaves:
            stats, extra = _bn_stats(state, prefix, source.batch_norm)
            keys.update(stats)
            accounted.update(extra)
        for leaf, (path, abstract) in leaves.items():
            key = keys[leaf]
            if key not in state:
                missing.append(key)
                continue
            value = np.asarray(state[key])
            expected = tuple(abstract.shape)
            if leaf == "kernel":
                value, torch_shape = _to_kernel(value, expected)
            else:
                torch_shape = expected
            if tuple(value.shape) != expected:
                accounted.add(key)
                shape_errors.append(
                    f"checkpoint key {key!r} has shape {tuple(np.shape(original[key]))}, but cfjax parameter "
                    f"{'/'.join(path)} of {model!r} needs {torch_shape} in PyTorch layout"
                )
                continue
            used.add(key)
            out.append((path, value.astype(abstract.dtype)))

    unexpected = set(state) - used - accounted
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {_list(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_list(unexpected)}")
        hint = ""
        if len(missing) > len(modules):  # most of the model is absent: another architecture
            hint = " (it looks like a checkpoint of another architecture or source)"
        raise CheckpointError(
            f"checkpoint {where} does not match cfjax model {model!r} from source {source.name!r}{hint}: "
            + "; ".join(parts)
        )
    if shape_errors:
        more = f" (and {len(shape_errors) - 1} more shape mismatches)" if len(shape_errors) > 1 else ""
        raise CheckpointError(f"checkpoint {where}: {shape_errors[0]}{more}")
    return traverse_util.unflatten_dict(dict(out)), {"used": len(used), "accounted": len(accounted), "leaves": len(out)}
