"""Schedules, weight-decay mask, per-parameter learning-rate multipliers, SGD dampening, the
plateau schedule and frozen parameters."""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from cfjax.train.checkpoints import Checkpointer
from cfjax.train.config import base_config, validate
from cfjax.train.optim import (
    decay_mask,
    fit_warmup,
    lr_multipliers,
    make_optimizer,
    make_schedule,
    merge_frozen,
    partition_frozen,
    plateau_init,
    plateau_update,
    update_trainable,
)
from tests.interop.reference import require


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


# ---------------------------------------------------------------- SGD dampening (torch semantics)


def test_dampened_sgd_two_steps_by_hand():
    params = {"w": jnp.zeros((1, 1), jnp.float32)}
    tx = make_optimizer(
        optimizer_config(momentum=0.9, dampening=0.9, weight_decay=0.0), optax.constant_schedule(0.5), params
    )
    state = tx.init(params)
    first, state = tx.update({"w": jnp.full((1, 1), 1.0, jnp.float32)}, state, params)
    second, _ = tx.update({"w": jnp.full((1, 1), 2.0, jnp.float32)}, state, params)
    # buf_1 = g_1 = 1 (torch starts the buffer undampened); buf_2 = 0.9 * 1 + (1 - 0.9) * 2 = 1.1
    np.testing.assert_allclose(first["w"], -0.5, rtol=1e-6)
    np.testing.assert_allclose(second["w"], -0.55, rtol=1e-6)


@hypothesis.given(
    momentum=st.floats(0.0, 0.99),
    dampening=st.floats(0.0, 0.99),
    weight_decay=st.sampled_from([0.0, 1e-3, 0.1]),
)
def test_dampened_sgd_matches_torch(momentum, dampening, weight_decay):
    torch = require("torch")
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    target = rng.normal(size=(3, 4)).astype(np.float32)
    grad = lambda k, b: (2 * (k - target) + k**2, np.cos(b))  # parameter-dependent gradients
    cfg = optimizer_config(momentum=momentum, dampening=dampening, weight_decay=weight_decay)
    params = {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}
    tx = make_optimizer(cfg, optax.constant_schedule(0.1), params)
    state = tx.init(params)
    tk, tb = torch.tensor(kernel, requires_grad=True), torch.tensor(bias, requires_grad=True)
    groups = [{"params": [tk], "weight_decay": weight_decay}, {"params": [tb], "weight_decay": 0.0}]  # kernels only
    sgd = torch.optim.SGD(groups, lr=0.1, momentum=momentum, dampening=dampening)
    for _ in range(4):
        gk, gb = grad(np.asarray(params["kernel"]), np.asarray(params["bias"]))
        updates, state = tx.update({"kernel": jnp.asarray(gk), "bias": jnp.asarray(gb)}, state, params)
        params = optax.apply_updates(params, updates)
        tk.grad, tb.grad = (torch.tensor(g) for g in grad(tk.detach().numpy(), tb.detach().numpy()))
        sgd.step()
    np.testing.assert_allclose(params["kernel"], tk.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(params["bias"], tb.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_dampening_errors_name_the_key():
    for changes in ({"dampening": 1.0}, {"dampening": 0.5, "nesterov": True}, {"dampening": 0.5, "name": "adamw"}):
        with pytest.raises(ValueError, match=r"^optimizer\.dampening: "):
            make_optimizer(optimizer_config(**changes), optax.constant_schedule(1.0), PARAMS)
    c = base_config()
    c.optimizer.dampening = -0.1
    with pytest.raises(ValueError, match=r"^optimizer\.dampening: expected .*got -0\.1$"):
        validate(c)
    c.optimizer.dampening, c.optimizer.nesterov = 0.9, True
    with pytest.raises(ValueError, match=r"^optimizer\.dampening: expected 0 with Nesterov momentum"):
        validate(c)


# ---------------------------------------------------------------- plateau schedule


def run_plateau(losses, **kwargs):
    state, scales, reduced_at = plateau_init(), [], []
    for i, loss in enumerate(losses):
        state, reduced = plateau_update(state, loss, **kwargs)
        scales.append(float(state["scale"]))
        if reduced:
            reduced_at.append(i)
    return state, scales, reduced_at


def test_plateau_reduces_after_patience_evaluations_and_not_before():
    # The first loss sets the best; 2 (= patience) evaluations without improvement are tolerated;
    # the third reduces, restarts the count; an improvement resets it.
    state, scales, reduced_at = run_plateau([1.0, 1.0, 1.2, 1.1, 0.5, 0.6, 0.6, 0.7], factor=0.1, patience=2)
    assert reduced_at == [3, 7]
    np.testing.assert_allclose(scales, [1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.01], rtol=1e-6)
    assert float(state["best"]) == 0.5 and int(state["bad_evals"]) == 0
    # an improvement smaller than the relative threshold does not count; NaN never improves
    assert run_plateau([1.0, 0.99995, float("nan")], factor=0.5, patience=1)[2] == [2]
    # cooldown: after a reduction, 2 evaluations are not counted
    assert run_plateau([1.0] * 8, factor=0.5, patience=0, cooldown=2)[2] == [1, 4, 7]


@hypothesis.given(
    losses=st.lists(st.sampled_from([0.5, 1.0, 1.00005, 2.0, 3.0]), min_size=1, max_size=12),
    patience=st.integers(1, 3),
    cooldown=st.integers(0, 2),
    threshold=st.sampled_from([0.0, 1e-4, 0.1]),
)
def test_plateau_matches_torch_reduce_lr_on_plateau(losses, patience, cooldown, threshold):
    torch = require("torch")
    sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        sgd, "min", factor=0.1, patience=patience, threshold=threshold, cooldown=cooldown
    )
    expected = []
    for loss in losses:
        sched.step(loss)
        expected.append(sgd.param_groups[0]["lr"])
    _, scales, _ = run_plateau(losses, factor=0.1, patience=patience, threshold=threshold, cooldown=cooldown)
    np.testing.assert_allclose(scales, expected, rtol=1e-6)


def test_plateau_state_round_trip_continues_the_same(tmp_path):
    """Saved mid-plateau and restored, the state goes on as the uninterrupted one would."""
    losses = [1.0, 0.9, 0.95, 0.95, 0.97, 0.99, 0.99]
    kwargs = {"factor": 0.1, "patience": 2}
    uninterrupted = run_plateau(losses, **kwargs)
    state, _, _ = run_plateau(losses[:4], **kwargs)
    assert int(state["bad_evals"]) == 2  # one more bad evaluation reduces the lr
    ckpt = Checkpointer(tmp_path, keep=1, best_metric="top1")
    ckpt.save(4, {"step": np.int32(4), "plateau": {k: jnp.asarray(v) for k, v in state.items()}})
    ckpt.wait()
    abstract = {
        "step": jax.ShapeDtypeStruct((), jnp.int32),
        "plateau": {k: jax.ShapeDtypeStruct((), np.asarray(v).dtype) for k, v in plateau_init().items()},
    }
    restored = {k: np.asarray(v) for k, v in ckpt.restore(4, abstract)["plateau"].items()}
    ckpt.close()
    assert all(restored[k].dtype == state[k].dtype and restored[k] == state[k] for k in state)
    for loss in losses[4:]:
        restored, _ = plateau_update(restored, loss, **kwargs)
    assert restored == uninterrupted[0]


def test_plateau_scale_is_an_input_the_step_does_not_recompile_for():
    params = {"w": jnp.ones((2, 2), jnp.float32)}
    tx = make_optimizer(optimizer_config(momentum=0.9, dampening=0.9), optax.constant_schedule(0.1), params)

    @jax.jit
    def step(params, opt_state, scale):
        loss_fn = lambda p: (jnp.sum(p["w"] ** 2), ())
        return update_trainable(loss_fn, params, opt_state, tx, scale=scale)[3:]

    opt_state = tx.init(params)
    full, _ = step(params, opt_state, jnp.float32(1.0))
    tenth, _ = step(params, opt_state, jnp.float32(0.1))
    np.testing.assert_allclose(1 - tenth["w"], 0.1 * (1 - full["w"]), rtol=1e-5)
    assert step._cache_size() == 1


def test_plateau_schedule_and_its_errors():
    lr = make_schedule(schedule_config(name="plateau", base_lr=0.4, warmup_steps=2), total_steps=10)
    np.testing.assert_allclose([float(lr(s)) for s in (0, 1, 2, 9)], [0.0, 0.2, 0.4, 0.4])  # warm-up, then constant
    c = base_config()
    c.schedule.name = "plateau"
    with pytest.raises(ValueError, match=r"^eval_every_steps: schedule.name='plateau' .*expected > 0"):
        validate(c)
    c.eval_every_steps, c.schedule.decay_factor = 100, 1.0
    with pytest.raises(ValueError, match=r"^schedule\.decay_factor: expected 0 < factor < 1"):
        validate(c)


# ---------------------------------------------------------------- frozen parameters


def toy_params():
    rng = np.random.default_rng(1)
    leaf = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)
    return {"backbone": {"kernel": leaf(3, 4), "bias": leaf(4)}, "classifier": {"kernel": leaf(4, 2), "bias": leaf(2)}}


def toy_loss(params):
    x = jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3) / 6
    h = jax.nn.relu(x @ params["backbone"]["kernel"] + params["backbone"]["bias"])
    return jnp.sum((h @ params["classifier"]["kernel"] + params["classifier"]["bias"] - 1.0) ** 2), ()


def test_frozen_parameters_get_no_gradient_no_state_and_do_not_move():
    params = toy_params()
    freeze = (r"^(?!classifier/)",)  # the GCF UCF101 recipe: all but the last layer
    trainable, frozen = partition_frozen(params, freeze)
    assert set(trainable) == {"classifier"} and set(frozen) == {"backbone"}
    cfg = optimizer_config(momentum=0.9, dampening=0.9, weight_decay=0.1)
    tx = make_optimizer(cfg, optax.constant_schedule(0.1), trainable)
    opt_state = tx.init(trainable)
    shapes = sorted(x.shape for x in jax.tree.leaves(opt_state) if np.ndim(x))
    assert shapes == sorted(x.shape for x in jax.tree.leaves(trainable))  # one momentum buffer per trainable leaf
    step = jax.jit(lambda p, s: update_trainable(toy_loss, p, s, tx, freeze))
    for _ in range(2):
        _, _, grads, new, opt_state = step(params, opt_state)
        assert set(grads) == {"classifier"}
        assert jax.tree.structure(new) == jax.tree.structure(params)
        for a, b in zip(jax.tree.leaves(new["backbone"]), jax.tree.leaves(params["backbone"])):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()  # bitwise, weight decay included
        assert not np.allclose(new["classifier"]["kernel"], params["classifier"]["kernel"])
        params = new
    # without freezing, the backbone's gradient is not zero: the test above would see it move
    grads = jax.grad(lambda p: toy_loss(p)[0])(toy_params())
    assert np.abs(np.asarray(grads["backbone"]["kernel"])).sum() > 0


def test_freeze_errors_name_the_key():
    with pytest.raises(ValueError, match=r"^optimizer\.freeze: pattern\(s\) \['nothing_here'\] match no parameter$"):
        partition_frozen(PARAMS, ("bn/", "nothing_here"))
    with pytest.raises(ValueError, match=r"^optimizer\.freeze: .* freeze every parameter"):
        partition_frozen(PARAMS, (".",))
    with pytest.raises(ValueError, match=r"^optimizer\.freeze: bad regex '\('"):
        partition_frozen(PARAMS, ("(",))
    trainable, frozen = partition_frozen(PARAMS, ())
    assert trainable is PARAMS and frozen == {} and merge_frozen(trainable, frozen) is PARAMS
