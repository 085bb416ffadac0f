"""Learning-rate schedules and optimizers from ``config.schedule`` / ``config.optimizer``.

Weight decay applies to kernels only (parameters with two or more dimensions),
never to biases or normalisation scales/offsets. Learning-rate multipliers
scale the final update of every parameter whose path ("stage/block/kernel")
matches a pattern, which for SGD and AdamW is the same as scaling its
learning rate (weight decay included).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

__all__ = ["decay_mask", "fit_warmup", "lr_multipliers", "make_optimizer", "make_schedule", "param_path"]

SCHEDULES = ("cosine", "multistep", "constant")
OPTIMIZERS = ("sgd", "adamw")


WARMUP_FRACTION_OF_SHORT_RUN = 0.1


def fit_warmup(config, total_steps: int):
    """``(schedule config, notes)``: ``config`` itself, or, when its warm-up is not shorter than the
    run (a short trial run of a full recipe), a copy warming up for 10% of the run, and a note saying so."""
    warmup = int(config.warmup_steps)
    if warmup < total_steps:
        return config, []
    fitted = ml_collections.ConfigDict(config.to_dict() if hasattr(config, "to_dict") else dict(config))
    fitted.warmup_steps = int(total_steps * WARMUP_FRACTION_OF_SHORT_RUN)
    note = (
        f"schedule.warmup_steps={warmup} is not shorter than the run ({total_steps} steps): warming up for "
        f"{fitted.warmup_steps} steps ({WARMUP_FRACTION_OF_SHORT_RUN:.0%} of the run) instead"
    )
    return fitted, [note]


def make_schedule(config, total_steps: int) -> optax.Schedule:
    """``config.schedule`` -> ``step -> lr``: linear warm-up from 0, then cosine / multistep / constant."""
    name, base = config.name, float(config.base_lr)
    warmup = int(config.warmup_steps)
    if name not in SCHEDULES:
        raise ValueError(f"schedule.name: expected one of {SCHEDULES}, got {name!r}")
    if total_steps < 1 or not 0 <= warmup < total_steps:
        raise ValueError(f"schedule.warmup_steps: expected 0 <= warmup < total_steps={total_steps}, got {warmup}")
    rest = max(total_steps - warmup, 1)
    if name == "cosine":
        main = optax.cosine_decay_schedule(base, rest, alpha=float(config.end_lr_factor))
    elif name == "multistep":
        fractions = tuple(float(b) for b in config.boundaries)
        if any(not 0 < b < 1 for b in fractions) or list(fractions) != sorted(fractions):
            raise ValueError(f"schedule.boundaries: expected increasing fractions in (0, 1), got {fractions}")
        steps = {}
        for b in fractions:  # boundaries that round to the same step decay twice there
            step = max(int(round(b * total_steps)) - warmup, 1)
            steps[step] = steps.get(step, 1.0) * float(config.decay_factor)
        main = optax.piecewise_constant_schedule(base, steps)
    else:
        main = optax.constant_schedule(base)
    if not warmup:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, base, warmup), main], [warmup])


def param_path(path) -> str:
    """A pytree key path as ``"stage/block/kernel"``."""
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def decay_mask(params):
    """True for the parameters that get weight decay: kernels (ndim >= 2)."""
    return jax.tree.map(lambda p: jnp.ndim(p) >= 2, params)


def lr_multipliers(params, patterns: Sequence[tuple[str, float]]):
    """Per-parameter multiplier: the first ``(regex, m)`` whose regex matches the path (``re.search``), else 1."""
    compiled = []
    for item in patterns:
        if len(item) != 2:
            raise ValueError(f"optimizer.lr_multipliers: expected (regex, multiplier) pairs, got {item!r}")
        pattern, value = item
        try:
            compiled.append((re.compile(pattern), float(value)))
        except re.error as e:
            raise ValueError(f"optimizer.lr_multipliers: bad regex {pattern!r}: {e}") from None
    used = set()

    def pick(path, _):
        name = param_path(path)
        for regex, value in compiled:
            if regex.search(name):
                used.add(regex.pattern)
                return value
        return 1.0

    out = jax.tree_util.tree_map_with_path(pick, params)
    unused = [p for p, _ in compiled if p.pattern not in used]
    if unused:
        raise ValueError(f"optimizer.lr_multipliers: pattern(s) {unused} match no parameter")
    return out


def _scale_by_tree(multipliers) -> optax.GradientTransformation:
    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, m: u * jnp.asarray(m, u.dtype), updates, multipliers), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(config, schedule: optax.Schedule, params) -> optax.GradientTransformation:
    """``config.optimizer`` -> optax chain: clip -> (decay) -> SGD / AdamW -> lr multipliers."""
    name = config.name
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer.name: expected one of {OPTIMIZERS}, got {name!r}")
    parts = []
    if config.grad_clip_norm:
        parts.append(optax.clip_by_global_norm(float(config.grad_clip_norm)))
    mask = decay_mask(params)
    if name == "sgd":
        if config.weight_decay:
            parts.append(optax.add_decayed_weights(float(config.weight_decay), mask))
        parts.append(optax.sgd(schedule, momentum=float(config.momentum) or None, nesterov=bool(config.nesterov)))
    else:
        parts.append(
            optax.adamw(
                schedule,
                b1=float(config.b1),
                b2=float(config.b2),
                eps=float(config.eps),
                weight_decay=float(config.weight_decay),
                mask=mask,
            )
        )
    if config.lr_multipliers:
        parts.append(_scale_by_tree(lr_multipliers(params, config.lr_multipliers)))
    return optax.chain(*parts)
