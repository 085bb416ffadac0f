"""Learning-rate schedules and optimizers from ``config.schedule`` / ``config.optimizer``.

Weight decay applies to kernels only (parameters with two or more dimensions),
never to biases or normalisation scales/offsets. Learning-rate multipliers
scale the final update of every parameter whose path ("stage/block/kernel")
matches a pattern, which for SGD and AdamW is the same as scaling its
learning rate (weight decay included).

SGD's ``dampening`` follows ``torch.optim.SGD``: the momentum buffer starts as the first
gradient, then ``buf = momentum * buf + (1 - dampening) * g``; the update is ``-lr * buf``.

Frozen parameters (``optimizer.freeze``: regexes on the path) are split off before the
optimizer sees the parameters (:func:`partition_frozen`): they get no gradient, no optimizer
state and no weight decay.

Schedule ``"plateau"``: the schedule is the base lr (after the warm-up), and a separate scale,
kept in the train state and updated on the host after each evaluation (:func:`plateau_update`),
multiplies every update.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import traverse_util

__all__ = [
    "dampened_momentum",
    "decay_mask",
    "fit_warmup",
    "lr_multipliers",
    "make_optimizer",
    "make_schedule",
    "merge_frozen",
    "param_path",
    "partition_frozen",
    "plateau_init",
    "plateau_update",
    "update_trainable",
]

SCHEDULES = ("cosine", "multistep", "constant", "plateau")
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
    """``config.schedule`` -> ``step -> lr``: linear warm-up from 0, then cosine / multistep / constant.

    ``"plateau"`` is constant here: its reductions are a scale in the train state (:func:`plateau_update`).
    """
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
    else:  # constant, plateau
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


# ---------------------------------------------------------------- plateau schedule


def plateau_init() -> dict:
    """The plateau state before the first evaluation: scale 1, no best loss yet, no count."""
    return {
        "scale": np.float32(1.0),
        "best": np.float32(np.inf),
        "bad_evals": np.int32(0),
        "cooldown": np.int32(0),
    }


def plateau_update(
    state: dict, loss: float, *, factor: float, patience: int, threshold: float = 1e-4, cooldown: int = 0
) -> tuple[dict, bool]:
    """``(new state, reduced)`` after an evaluation with validation ``loss`` (torch's ``ReduceLROnPlateau``, mode min).

    The loss improves when it is below ``best * (1 - threshold)`` (relative threshold); a loss
    that is not finite never improves. ``patience`` evaluations without improvement are
    tolerated: the next one multiplies ``scale`` by ``factor``, restarts the count and waits
    ``cooldown`` evaluations (not counted) before counting again. Pure host function: ``state``
    holds numpy scalars (``scale``, ``best``: float32; ``bad_evals``, ``cooldown``: int32).
    """
    scale, best = float(state["scale"]), float(state["best"])
    bad, wait = int(state["bad_evals"]), int(state["cooldown"])
    loss = float(loss)
    if np.isfinite(loss) and loss < best * (1.0 - threshold):
        best, bad = loss, 0
    else:
        bad += 1
    if wait > 0:
        wait, bad = wait - 1, 0
    reduced = bad > patience
    if reduced:
        scale, bad, wait = scale * factor, 0, int(cooldown)
    new = {"scale": np.float32(scale), "best": np.float32(best), "bad_evals": np.int32(bad), "cooldown": np.int32(wait)}
    return new, reduced


# ---------------------------------------------------------------- frozen parameters


def _compile_patterns(patterns, key: str) -> list:
    if isinstance(patterns, str):
        patterns = (patterns,)
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError) as e:
            raise ValueError(f"{key}: bad regex {pattern!r}: {e}") from None
    return compiled


def partition_frozen(params, patterns: Sequence[str], check: bool = True):
    """``(trainable, frozen)``: two nested dicts that split ``params`` by path.

    A parameter is frozen when one of ``patterns`` (``re.search`` on ``"a/b/kernel"``) matches
    its path. With no patterns: ``(params, {})``. With ``check``, a pattern that matches
    nothing, or patterns that freeze every parameter, are errors naming ``optimizer.freeze``
    (pass ``check=False`` inside a trace, and check once outside it: an error raised in a
    trace carries JAX's traceback note).
    """
    if not patterns:
        return params, {}
    compiled = _compile_patterns(patterns, "optimizer.freeze")
    flat = traverse_util.flatten_dict(params, sep="/")
    used, trainable, frozen = set(), {}, {}
    for path, value in flat.items():
        hits = [r.pattern for r in compiled if r.search(path)]
        used.update(hits)
        (frozen if hits else trainable)[path] = value
    unused = [r.pattern for r in compiled if r.pattern not in used]
    if check and unused:
        raise ValueError(f"optimizer.freeze: pattern(s) {unused} match no parameter")
    if check and not trainable:
        raise ValueError(f"optimizer.freeze: {list(patterns)} freeze every parameter; nothing would train")
    return traverse_util.unflatten_dict(trainable, sep="/"), traverse_util.unflatten_dict(frozen, sep="/")


def merge_frozen(trainable, frozen):
    """The inverse of :func:`partition_frozen`: one nested dict of every parameter."""
    if not frozen:
        return trainable
    flat = {**traverse_util.flatten_dict(trainable), **traverse_util.flatten_dict(frozen)}
    return traverse_util.unflatten_dict(flat)


def update_trainable(loss_fn, params, opt_state, tx: optax.GradientTransformation, freeze=(), scale=None):
    """One step of ``tx`` on the trainable part of ``params``: ``(loss, aux, grads, params, opt_state)``.

    ``loss_fn(params) -> (loss, aux)``. Only the trainable parameters are differentiated (the
    frozen ones, split off by ``freeze`` regexes, enter as constants: no gradient, no optimizer
    state, returned as they came); ``grads`` and ``opt_state`` cover the trainable ones.
    ``scale`` (an array, e.g. the plateau scale) multiplies every update. The patterns are
    checked where the optimizer is built (:func:`partition_frozen` with ``check``), not here.
    """
    trainable, frozen = partition_frozen(params, freeze, check=False)
    grad_fn = jax.value_and_grad(lambda t: loss_fn(merge_frozen(t, frozen)), has_aux=True)
    (loss, aux), grads = grad_fn(trainable)
    deltas, opt_state = tx.update(grads, opt_state, trainable)
    if scale is not None:
        deltas = jax.tree.map(lambda d: d * jnp.asarray(scale).astype(d.dtype), deltas)
    return loss, aux, grads, merge_frozen(optax.apply_updates(trainable, deltas), frozen), opt_state


# ---------------------------------------------------------------- transformations


class DampenedTraceState(NamedTuple):
    count: jax.Array  # updates taken (int32): the first one starts the buffer
    trace: optax.Params


def dampened_momentum(momentum: float, dampening: float) -> optax.GradientTransformation:
    """torch's SGD momentum buffer: ``buf = g`` on the first update, then ``momentum * buf + (1 - dampening) * g``.

    With ``dampening = 0`` it equals ``optax.trace(momentum)`` (whose buffer starts at zero).
    """

    def init(params):
        return DampenedTraceState(jnp.zeros([], jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        del params
        first = state.count == 0

        def step(g, buf):
            return jnp.where(first, g, momentum * buf + (1.0 - dampening) * g).astype(buf.dtype)

        trace = jax.tree.map(step, updates, state.trace)
        return trace, DampenedTraceState(optax.safe_int32_increment(state.count), trace)

    return optax.GradientTransformation(init, update)


def _scale_by_tree(multipliers) -> optax.GradientTransformation:
    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, m: u * jnp.asarray(m, u.dtype), updates, multipliers), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(config, schedule: optax.Schedule, params) -> optax.GradientTransformation:
    """``config.optimizer`` -> optax chain: clip -> (decay) -> SGD / AdamW -> lr multipliers.

    ``params``: the trainable parameters (frozen ones already split off by :func:`partition_frozen`).
    """
    name = config.name
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer.name: expected one of {OPTIMIZERS}, got {name!r}")
    dampening = float(config.get("dampening", 0.0))
    if not 0 <= dampening < 1:
        raise ValueError(f"optimizer.dampening: expected 0 <= dampening < 1, got {dampening!r}")
    if dampening and name != "sgd":
        raise ValueError(
            f"optimizer.dampening: only SGD uses it; expected 0 with optimizer.name={name!r}, got {dampening!r}"
        )
    if dampening and config.nesterov:
        raise ValueError(
            f"optimizer.dampening: Nesterov momentum needs dampening 0 (as torch's SGD), got {dampening!r}"
        )
    parts = []
    if config.grad_clip_norm:
        parts.append(optax.clip_by_global_norm(float(config.grad_clip_norm)))
    mask = decay_mask(params)
    if name == "sgd":
        if config.weight_decay:
            parts.append(optax.add_decayed_weights(float(config.weight_decay), mask))
        if dampening and float(config.momentum):
            parts += [dampened_momentum(float(config.momentum), dampening), optax.scale_by_learning_rate(schedule)]
        else:  # torch ignores dampening without momentum
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
