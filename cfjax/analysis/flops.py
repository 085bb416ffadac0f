"""FLOPs from the jaxpr: multiply-adds of convolutions and matrix products.

The convention of the papers and of fvcore: one multiply-add is one FLOP
(:attr:`FlopCount.total`; :attr:`FlopCount.total_2x` counts the multiply and the add
apart, 2 FLOPs per multiply-add, the convention of some papers, e.g. GCF-Net's head), and
only ``conv_general_dilated``, ``dot_general`` (dense layers, einsums,
attention) and ``ops.depthwise_conv3d``'s sum of shifts count; normalisation,
activations and pooling do not. The counter walks the jaxpr of ``model.apply``
and descends into nested jaxprs (``jit``, custom derivatives, ``scan`` times its
length, ``while`` bodies once). A ``cond`` counts its most expensive branch; for SGS models,
:func:`sgs_flops_per_clip` instead gives each clip the cost of the branch at its
own number of active bins, as the SGS paper reports.

    >>> report = count_flops(X3D.preset("m"), None, (1, 16, 224, 224, 3))
    >>> print(report.table())       # per-stage breakdown, GFLOPs
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from cfjax.ops.depthwise import SHIFTS_NAME

__all__ = ["FlopCount", "count_flops", "jaxpr_flops", "sgs_flops_per_clip"]


def _conv_flops(eqn) -> int:
    out = eqn.outvars[0].aval
    rhs = eqn.invars[1].aval
    rhs_spec = eqn.params["dimension_numbers"].rhs_spec  # (out feature, in feature, *spatial)
    window = math.prod(rhs.shape[d] for d in rhs_spec[2:])
    return int(np.prod(out.shape, dtype=np.int64)) * window * rhs.shape[rhs_spec[1]]


def _dot_flops(eqn) -> int:
    (lhs_contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval
    out = eqn.outvars[0].aval
    return int(np.prod(out.shape, dtype=np.int64)) * math.prod(lhs.shape[d] for d in lhs_contract)


def _sub_jaxprs(value):
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if isinstance(v, jax.extend.core.ClosedJaxpr):
            yield v.jaxpr
        elif isinstance(v, jax.extend.core.Jaxpr):
            yield v


def _stage(name: str) -> str:
    """``"X3D/res3_1/b/conv"`` -> ``"res3"``; ``"X3D.run/head_conv"`` -> ``"head"``."""
    parts = [p for p in name.split("/") if p]
    if len(parts) < 2:
        return "other"
    return parts[1].split("_")[0]


def jaxpr_flops(jaxpr, scope: str = "", cond_branch: dict | None = None) -> dict[str, int]:
    """Multiply-adds per stage of a ``Jaxpr``.

    Args:
      jaxpr: a ``jax.extend.core.Jaxpr`` (``make_jaxpr(f)(...).jaxpr``).
      scope: name stack of the enclosing equation (inner jaxprs of ``jit``
        have empty stacks and inherit it).
      cond_branch: ``{id(cond equation): branch index}`` to count a chosen
        branch instead of the most expensive one.

    Returns:
      ``{stage: flops}``; stages from the module names in the name stack
      (``stem``, ``res2``, ..., ``head``, ``classifier``; ``other`` outside modules).
    """
    counts: dict[str, int] = defaultdict(int)
    for eqn in jaxpr.eqns:
        name = str(eqn.source_info.name_stack) or scope
        prim = eqn.primitive.name
        if prim == "conv_general_dilated":
            counts[_stage(name)] += _conv_flops(eqn)
        elif prim == "dot_general":
            counts[_stage(name)] += _dot_flops(eqn)
        elif prim in ("pjit", "jit") and eqn.params.get("name") == SHIFTS_NAME:  # a depthwise conv
            kernel, out = eqn.invars[1].aval, eqn.outvars[0].aval  # [kt, kh, kw, 1, C], [B, T, H, W, C]
            counts[_stage(name)] += int(np.prod(out.shape, dtype=np.int64)) * math.prod(kernel.shape[:3])
        elif prim == "cond":
            branches = [jaxpr_flops(b.jaxpr, name, cond_branch) for b in eqn.params["branches"]]
            if cond_branch and id(eqn) in cond_branch:
                chosen = branches[cond_branch[id(eqn)]]
            else:
                chosen = max(branches, key=lambda c: sum(c.values()))
            for k, v in chosen.items():
                counts[k] += v
        else:
            repeat = eqn.params.get("length", 1) if prim == "scan" else 1
            for value in eqn.params.values():
                for sub in _sub_jaxprs(value):
                    for k, v in jaxpr_flops(sub, name, cond_branch).items():
                        counts[k] += repeat * v
    return dict(counts)


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """Multiply-adds of one call, in total and per stage."""

    by_stage: dict[str, int]

    @property
    def total(self) -> int:
        """Multiply-adds (one FLOP each)."""
        return sum(self.by_stage.values())

    @property
    def total_2x(self) -> int:
        """FLOPs at 2 per multiply-add (a multiply and an add)."""
        return 2 * self.total

    def table(self, unit: float = 1e9, unit_name: str = "GFLOPs") -> str:
        rows = [f"{'stage':<12}{unit_name:>12}{'share':>9}"]
        total = max(self.total, 1)
        for stage, flops in self.by_stage.items():
            rows.append(f"{stage:<12}{flops / unit:>12.4f}{100 * flops / total:>8.1f}%")
        rows.append(f"{'total':<12}{self.total / unit:>12.4f}{100.0:>8.1f}%")
        return "\n".join(rows)


def _ordered(counts: dict[str, int]) -> dict[str, int]:
    order = ["stem", "res2", "sgs", "res3", "res4", "res5", "head", "classifier"]
    return {k: counts[k] for k in sorted(counts, key=lambda k: (order.index(k) if k in order else len(order), k))}


def count_flops(model, variables, input_shape, **apply_kwargs) -> FlopCount:
    """Multiply-adds of ``model.apply(variables, *inputs, **apply_kwargs)``.

    Args:
      model: a flax module.
      variables: its variables, or ``None`` to use abstract ones (only shapes matter).
      input_shape: ``[B, T, H, W, C]`` of one float32 video (use ``B = 1`` for
        FLOPs per view), or a tuple of positional inputs for models that take
        several (pytrees of arrays or ``jax.ShapeDtypeStruct``).
      **apply_kwargs: passed to ``apply`` (e.g. ``train=False``).

    Returns:
      A :class:`FlopCount` (``.total``, ``.by_stage``, ``.table()``). For SGS models
      this is the dense upper bound (all bins active); see :func:`sgs_flops_per_clip`.
    """
    if all(isinstance(d, (int, np.integer)) for d in input_shape):
        if len(input_shape) != 5:
            raise ValueError(f"input_shape: expected [B, T, H, W, C], got {tuple(input_shape)}")
        inputs = (jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32),)
    else:
        inputs = tuple(input_shape)
    if variables is None:
        variables = jax.eval_shape(lambda *a: model.init(jax.random.key(0), *a, **apply_kwargs), *inputs)
    jaxpr = jax.make_jaxpr(lambda v, *a: model.apply(v, *a, **apply_kwargs))(variables, *inputs)
    return FlopCount(_ordered(jaxpr_flops(jaxpr.jaxpr)))


def sgs_flops_per_clip(model, variables, x) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip multiply-adds of an SGS model at each clip's number of active bins.

    Everything before SGS costs the same for every clip; everything after it is
    counted at the clip's own ``B'`` (as in the SGS paper), not at the padded or
    bucketed length that a batch actually runs.

    Args:
      model: a zoo backbone with ``model.sgs`` set.
      variables: its variables (needed: the active bins depend on the weights).
      x: ``[B, T, H, W, C]`` clips.

    Returns:
      ``(flops [B] int64, active_bins [B] int)``.
    """
    sgs = getattr(model, "sgs", None)
    if sgs is None:
        raise ValueError(f"model: expected a backbone with sgs set, got {type(model).__name__} without SGS")
    _, features = jax.jit(lambda v, x: model.apply(v, x, return_features=True))(variables, x)
    active = np.asarray(features["active_bins"])
    bins = features[f"{sgs.stage}_mask"].shape[1]
    exact = model.clone(sgs=dataclasses.replace(sgs, buckets=tuple(range(1, bins + 1))))
    one = jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype)
    closed = jax.make_jaxpr(lambda v, x: exact.apply(v, x))(variables, one)
    conds = [e for e in closed.jaxpr.eqns if e.primitive.name == "cond" and len(e.params["branches"]) == bins]
    if len(conds) != 1:
        raise RuntimeError(f"expected one {bins}-way bucket switch after SGS, found {len(conds)}")
    by_length = np.array(
        [sum(jaxpr_flops(closed.jaxpr, cond_branch={id(conds[0]): n - 1}).values()) for n in range(1, bins + 1)],
        dtype=np.int64,
    )
    return by_length[active - 1], active
