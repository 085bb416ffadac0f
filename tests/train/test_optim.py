"""Schedules, weight-decay mask and per-parameter learning-rate multipliers."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from cfjax.train.config import base_config
from cfjax.train.optim import decay_mask, fit_warmup, lr_multipliers, make_optimizer, make_schedule


def schedule_config(**changes):
    c = base_config().schedule
    c.update(changes)
    return c


def test_cosine_with_warmup_by_hand():
    lr = make_schedule(schedule_config(base_lr=1.0, warmup_steps=2, end_lr_factor=0.0), total_steps=6)
    # warm-up 0, 0.5; then cosine over 4 steps: 1, cos(pi/4)^2-ish values 0.5(1+cos(pi k/4)).
    expected = [0.0, 0.5] + [0.5 * (1 + np.cos(np.pi * k / 4)) for k in range(4)]
    np.testing.assert_allclose([float(lr(s)) for s in range(6)], expected, atol=1e-6)


def test_multistep_decays_at_the_boundaries():
    lr = make_schedule(schedule_config(name="multistep", base_lr=1.0, boundaries=(0.5, 0.75)), total_steps=8)
    values = [float(lr(s)) for s in range(8)]
    assert values[0] == 1.0 and values[-1] == pytest.approx(0.01)
    drops = [s for s in range(1, 8) if values[s] < values[s - 1]]
    assert len(drops) == 2 and drops[0] in (4, 5) and drops[1] in (6, 7)


def test_bad_schedule_names_the_key():
    with pytest.raises(ValueError, match="schedule.name"):
        make_schedule(schedule_config(name="linear"), 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        make_schedule(schedule_config(warmup_steps=10), 10)


PARAMS = {
    "conv": {"kernel": jnp.ones((3, 3, 2, 2)), "bias": jnp.ones(2)},
    "bn": {"scale": jnp.ones(2), "bias": jnp.ones(2)},
    "fusion": {"filters": {"kernel": jnp.ones((2, 2))}},
}


def test_weight_decay_only_on_kernels():
    mask = decay_mask(PARAMS)
    assert mask["conv"]["kernel"] and mask["fusion"]["filters"]["kernel"]
    assert not (mask["conv"]["bias"] or mask["bn"]["scale"] or mask["bn"]["bias"])


def optimizer_config(**changes):
    c = base_config().optimizer
    c.update(changes)
    return c


def test_sgd_step_by_hand_with_decay_and_fusion_multiplier():
    cfg = optimizer_config(name="sgd", momentum=0.0, weight_decay=0.1, lr_multipliers=(("fusion", 10.0),))
    tx = make_optimizer(cfg, optax.constant_schedule(0.5), PARAMS)
    grads = {k: {n: jnp.ones_like(v) if not isinstance(v, dict) else v for n, v in d.items()} for k, d in PARAMS.items()}
    grads["fusion"]["filters"]["kernel"] = jnp.ones((2, 2))
    updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    # kernel: -lr (g + wd p) = -0.5 * 1.1; bias / BN: -0.5 * 1; fusion kernel: 10x the kernel update.
    np.testing.assert_allclose(updates["conv"]["kernel"], -0.55)
    np.testing.assert_allclose(updates["conv"]["bias"], -0.5)
    np.testing.assert_allclose(updates["bn"]["scale"], -0.5)
    np.testing.assert_allclose(updates["fusion"]["filters"]["kernel"], -5.5)


def test_adamw_first_step_and_nesterov_sgd():
    tx = make_optimizer(optimizer_config(name="adamw", weight_decay=0.0), optax.constant_schedule(0.1), PARAMS)
    updates, _ = tx.update(PARAMS, tx.init(PARAMS), PARAMS)
    np.testing.assert_allclose(updates["conv"]["kernel"], -0.1, rtol=1e-5)  # Adam's first step is -lr * sign
    sgd = make_optimizer(optimizer_config(nesterov=True, weight_decay=0.0), optax.constant_schedule(1.0), PARAMS)
    updates, _ = sgd.update(PARAMS, sgd.init(PARAMS), PARAMS)
    np.testing.assert_allclose(updates["bn"]["bias"], -1.9)  # Nesterov: g + m * (m * 0 + g), m = 0.9


def test_lr_multiplier_errors():
    with pytest.raises(ValueError, match="match no parameter"):
        lr_multipliers(PARAMS, (("nothing_here", 2.0),))
    with pytest.raises(ValueError, match="bad regex"):
        lr_multipliers(PARAMS, (("(", 2.0),))
    assert lr_multipliers(PARAMS, (("bn/", 3.0), ("bias", 2.0)))["bn"]["bias"] == 3.0  # first match wins
    with pytest.raises(ValueError, match="optimizer.name"):
        make_optimizer(ml_collections.ConfigDict({**optimizer_config().to_dict(), "name": "lamb"}), optax.constant_schedule(1.0), PARAMS)


def test_multistep_boundaries_on_one_step_both_decay():
    lr = make_schedule(schedule_config(name="multistep", base_lr=1.0, boundaries=(0.5, 0.55)), total_steps=4)
    assert float(lr(3)) == pytest.approx(0.01)


def test_warmup_longer_than_a_short_run_is_fitted_and_said():
    c = base_config().schedule
    c.warmup_steps = 50
    fitted, notes = fit_warmup(c, 10)
    assert fitted.warmup_steps == 1 and c.warmup_steps == 50  # 10% of the run; the config is not changed
    assert len(notes) == 1 and "schedule.warmup_steps=50" in notes[0] and "10 steps" in notes[0]
    schedule = make_schedule(fitted, 10)
    assert float(schedule(0)) == 0.0 and float(schedule(1)) == pytest.approx(c.base_lr)
    same, none = fit_warmup(c, 51)
    assert same is c and none == []
