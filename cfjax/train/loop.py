"""The training loop: one readable function, :func:`train`, and :func:`evaluate`.

    state = {"step", "params", "batch_stats", "opt_state"}   (a plain dict, saved by Orbax)
            + "plateau" with schedule "plateau": {"scale", "best", "bad_evals", "cooldown"}

``opt_state`` covers the trainable parameters only (``optimizer.freeze`` splits the others off).
With schedule "plateau", every update is multiplied by ``state["plateau"]["scale"]`` (an array
of the state, so the compiled step does not change when it does); after each periodic
evaluation the host updates it from the eval ``loss`` (:func:`cfjax.train.optim.plateau_update`)
before the checkpoint is saved, so a resumed run continues with the same scale and count.

Batches are split over the mesh's ``data`` axis; parameters are replicated (or split
over ``model``). The train step is one ``jax.jit`` with the state donated; losses
and BatchNorm statistics are over the global batch, so the result does not depend
on the number of devices or processes.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cfjax.models import build, non_adaptive
from cfjax.train import partitioning
from cfjax.train.anchors import resolve_anchor_sizes
from cfjax.train.checkpoints import Checkpointer, format_init_table, load_weights, merge_weights
from cfjax.train.config import validate
from cfjax.train.data import example_batch, load_dataset
from cfjax.train.optim import (
    fit_warmup,
    make_optimizer,
    make_schedule,
    partition_frozen,
    plateau_init,
    plateau_update,
    update_trainable,
)
from cfjax.train.tasks import get_task
from cfjax.train.writers import MetricWriter, Progress, report

__all__ = ["Experiment", "evaluate", "train"]

_norm = getattr(optax.tree_utils, "tree_norm", None) or optax.tree_utils.tree_l2_norm  # renamed in optax 0.2.5


def _numeric(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if partitioning.is_numeric(v)}


class Experiment:
    """What ``train``, ``evaluate`` and ``predict`` share: task, mesh, data, model, state layout."""

    def __init__(self, config, workdir):
        validate(config)  # every check that needs no data comes before the data is generated
        self.config = config
        self.workdir = Path(workdir)
        self.task = get_task(config)
        if config.schedule.name == "plateau" and not self.task.eval_loss:
            raise ValueError(
                f"schedule.name: 'plateau' needs an evaluation loss; task {config.task!r} reports none "
                "(use cosine, multistep or constant)"
            )
        self.freeze = tuple(config.optimizer.get("freeze", ()))
        self.mesh = partitioning.make_mesh(config.mesh)
        for name in ("batch_size", "eval_batch_size"):
            if config[name] % self.mesh.shape["data"]:
                raise ValueError(
                    f"{name}: {config[name]} does not split over the mesh's {self.mesh.shape['data']} data devices; "
                    "use a multiple (or set mesh.data)"
                )
        anchors = resolve_anchor_sizes(config)  # CFAD without model.anchor_sizes: the dataset's k-means anchors
        if anchors:
            report(anchors)
        model_config = config.model.to_dict()
        if not config.adaptive:
            model_config = non_adaptive(model_config)
        if config.dtype != "float32":
            model_config.setdefault("dtype", config.dtype)
        self.model_config = model_config
        self.model = build(model_config)
        self.train_transform = self.task.transform(config, train=True)
        self.eval_transform = self.task.transform(config, train=False)
        self.dataset = load_dataset(config)
        n_train = self.dataset.num_examples(config.data.train_split)
        if config.total_steps:
            self.total_steps = int(config.total_steps)
        else:
            self.total_steps = max(1, math.ceil(config.num_epochs * n_train / config.batch_size))
        schedule, self.notes = fit_warmup(config.schedule, self.total_steps)
        self.schedule = make_schedule(schedule, self.total_steps)
        self._build_state()
        self._train_step = self._eval_step = None

    # ---------------------------------------------------------------- state
    def _build_state(self):
        key = jax.random.key(self.config.seed)
        template = example_batch(self.dataset.source(self.config.data.train_split), self.train_transform)
        template = {k: jnp.asarray(v) for k, v in _numeric(template).items()}

        def init(key):
            params_key, dropout_key = jax.random.split(key)
            variables = self.task.init(self.model, {"params": params_key, "dropout": dropout_key}, template)
            params = variables["params"]
            trainable, _ = partition_frozen(params, self.freeze, check=False)  # checked below, outside the trace
            state = {
                "step": jnp.zeros((), jnp.int32),
                "params": params,
                "opt_state": self.tx_for(trainable).init(trainable),
            }
            if "batch_stats" in variables:
                state["batch_stats"] = variables["batch_stats"]
            if self.config.schedule.name == "plateau":
                state["plateau"] = {k: jnp.asarray(v) for k, v in plateau_init().items()}
            return state

        self._init = init
        abstract = jax.eval_shape(init, key)
        self.tx = self.tx_for(partition_frozen(abstract["params"], self.freeze)[0])
        shardings = partitioning.param_shardings(self.mesh, abstract)
        self.state_shardings = shardings
        self.abstract_state = jax.tree.map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
        )

    def pretrained_state(self, directory, checkpoint: str | int = "best"):
        """A fresh state whose parameters and BatchNorm statistics come from ``directory`` (a converted
        checkpoint or a training workdir) where path and shape match; prints the table of
        loaded / re-initialised / new / ignored groups (:func:`~cfjax.train.checkpoints.merge_weights`)."""
        loaded, info = load_weights(directory, checkpoint)
        state = self.init_state()
        fresh = {k: state[k] for k in ("params", "batch_stats") if k in state}
        classes = (getattr(build(info["model"]), "num_classes", None), getattr(self.model, "num_classes", None))
        merged, groups = merge_weights(fresh, loaded, classes)
        report(format_init_table(info, groups, classes))

        def place(value, sharding):
            if not isinstance(value, np.ndarray):
                return value
            return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

        for k, tree in merged.items():
            state[k] = jax.tree.map(place, tree, self.state_shardings[k])
        return state

    def tx_for(self, params):
        """The optimizer of ``params``: the trainable parameters (:func:`~cfjax.train.optim.partition_frozen`)."""
        return make_optimizer(self.config.optimizer, self.schedule, params)

    def init_state(self):
        init = jax.jit(self._init, out_shardings=self.state_shardings)
        return init(jax.random.key(self.config.seed))

    def variables(self, state) -> dict:
        v = {"params": state["params"]}
        if "batch_stats" in state:
            v["batch_stats"] = state["batch_stats"]
        return v

    # ---------------------------------------------------------------- steps
    def train_step(self):
        if self._train_step is None:
            task, model, config, tx, schedule = self.task, self.model, self.config, self.tx, self.schedule
            seed, freeze = int(config.seed), self.freeze

            def step_fn(state, batch):
                step = state["step"]
                rng = jax.random.fold_in(jax.random.key(seed + 1), step)

                def loss_fn(params):
                    variables = self.variables({**state, "params": params})
                    outputs, updates = task.forward(model, variables, batch, train=True, rngs={"dropout": rng})
                    loss, metrics = task.loss(outputs, batch, config, step)
                    return loss, (metrics, updates)

                scale = state["plateau"]["scale"] if "plateau" in state else None
                loss, (metrics, updates), grads, params, opt_state = update_trainable(
                    loss_fn, state["params"], state["opt_state"], tx, freeze, scale
                )
                lr = schedule(step) if scale is None else schedule(step) * scale
                new = {"step": step + 1, "params": params, "opt_state": opt_state}
                if "batch_stats" in state:
                    new["batch_stats"] = updates["batch_stats"]
                if "plateau" in state:
                    new["plateau"] = state["plateau"]
                grad_norm = _norm(grads)
                finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(_norm(new["params"]))
                new = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, state)  # keep the last good state
                metrics = {**metrics, "grad_norm": grad_norm, "lr": lr, "finite": finite}
                return new, metrics

            data = partitioning.batch_sharding(self.mesh)
            self._train_step = jax.jit(
                step_fn, in_shardings=(self.state_shardings, data), out_shardings=(self.state_shardings, None),
                donate_argnums=0,
            )
        return self._train_step

    def eval_step(self):
        if self._eval_step is None:
            task, model = self.task, self.model

            def step_fn(state, batch):
                outputs, _ = task.forward(model, self.variables(state), batch, train=False)
                out = task.eval_outputs(outputs, batch)
                out["batch_mask"], out["index"] = batch["batch_mask"], batch["index"]
                return out

            self._eval_step = jax.jit(
                step_fn, in_shardings=(self.state_shardings, partitioning.batch_sharding(self.mesh)),
                out_shardings=partitioning.replicated(self.mesh),
            )
        return self._eval_step

    # ---------------------------------------------------------------- evaluation
    def run_eval(self, state, split: str | None = None, max_batches: int = 0) -> tuple[dict, dict]:
        """The task's metrics on ``split`` (default ``data.eval_split``) and its per-class table."""
        loader = self.dataset.eval_loader(self.config, self.eval_transform, split)
        step = self.eval_step()
        parts = []
        for i, batch in enumerate(loader):
            if max_batches and i >= max_batches:
                break
            parts.append(jax.device_get(step(state, partitioning.host_to_global(batch, self.mesh))))
        loader.close()
        results = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        valid = results.pop("batch_mask").astype(bool)
        order = np.argsort(results["index"][valid], kind="stable")
        results = {k: v[valid][order] for k, v in results.items()}
        return self.task.eval_metrics(results, self.dataset.class_names)

    def after_eval(self, state, scores: dict, step: int) -> tuple[dict, str | None]:
        """``(state, note)``: with schedule "plateau", ``state`` with its plateau updated from
        ``scores["loss"]`` and, when the lr was reduced, a line saying so; otherwise ``(state, None)``."""
        if "plateau" not in state:
            return state, None
        s = self.config.schedule
        old = {k: np.asarray(v) for k, v in jax.device_get(state["plateau"]).items()}
        new, reduced = plateau_update(
            old,
            scores["loss"],
            factor=float(s.decay_factor),
            patience=int(s.plateau_patience),
            threshold=float(s.plateau_threshold),
            cooldown=int(s.plateau_cooldown),
        )
        note = None
        if reduced:
            note = (
                f"step {step}: eval loss {float(scores['loss']):.4g} has not improved on {float(new['best']):.4g} for more "
                f"than {int(s.plateau_patience)} evaluations: lr x{float(s.decay_factor):g} "
                f"-> {float(self.schedule(step)) * float(new['scale']):.4g}"
            )

        def place(value, sharding):  # the same on every process (the eval loss is global)
            value = np.asarray(value)
            return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

        return {**state, "plateau": jax.tree.map(place, new, self.state_shardings["plateau"])}, note


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _save_run_info(config, workdir: Path) -> None:
    if jax.process_index() != 0:
        return
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=1))
    (workdir / "git_revision.txt").write_text(_git_revision() + "\n")


def _mean_metrics(history: Sequence[dict]) -> dict:
    fetched = jax.device_get(list(history))
    return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[-1]}


def train(
    config,
    workdir,
    *,
    hooks: Sequence[Callable[[int, dict], None]] = (),
    progress: bool = True,
) -> dict:
    """Trains ``config`` in ``workdir`` (resuming from its latest checkpoint) and evaluates at the end.

    ``hooks``: ``hook(step, metrics)`` after every step (metrics are device arrays).
    Returns the final evaluation metrics (or ``{}`` when preempted by SIGTERM).
    """
    workdir = Path(workdir)
    _check_workdir(workdir)
    resuming = any(p.name.isdigit() for p in (workdir / "checkpoints").glob("*"))
    if config.optimizer.get("freeze") and not config.init_from and not resuming:
        raise ValueError(
            f"init_from: optimizer.freeze={tuple(config.optimizer.freeze)} freezes parameters, which needs trained "
            "weights; expected a training workdir or converted checkpoint (--config.init_from=DIR), got ''"
        )
    exp = Experiment(config, workdir)
    for note in exp.notes:
        report(note)
    initial = None
    if config.init_from and not resuming:
        initial = exp.pretrained_state(config.init_from)  # fails before anything is written
    _save_run_info(config, workdir)
    ckpt = Checkpointer(workdir, config.keep_checkpoints, exp.task.best_metric)
    loader = exp.dataset.train_loader(config, exp.train_transform)
    latest = ckpt.latest_step()
    if latest is not None:
        state = ckpt.restore(latest, exp.abstract_state, loader)
        report(f"resumed from step {latest} ({workdir / 'checkpoints' / str(latest)})")
    else:
        state = initial if initial is not None else exp.init_state()
    step = int(jax.device_get(state["step"]))
    total = exp.total_steps
    writer = MetricWriter(workdir, start_step=step)
    bar = Progress(total, step, config.batch_size, enabled=progress)
    train_step = exp.train_step()

    preempted = []
    previous = signal.signal(signal.SIGTERM, lambda *_: preempted.append(True))
    history, pending = [], None
    last_saved = latest
    try:
        while step < total:
            batch = partitioning.host_to_global(next(loader), exp.mesh)
            state, metrics = train_step(state, batch)
            if pending is not None:
                _check_finite(*pending, workdir, last_saved)
            pending = (step + 1, metrics)
            step += 1
            history.append(metrics)
            for hook in hooks:
                hook(step, metrics)
            if step % config.log_every_steps == 0 or step == total:
                _check_finite(*pending, workdir, last_saved)
                mean = _mean_metrics(history)
                history = []
                mean.pop("finite", None)
                writer.write(step, "train", mean)
                bar.update(step, mean["loss"], mean["lr"])
            else:
                bar.update(step)
            evaluate_now = config.eval_every_steps and step % config.eval_every_steps == 0 and step < total
            if evaluate_now:
                _check_finite(*pending, workdir, last_saved)
                scores, _ = exp.run_eval(state, max_batches=config.max_eval_batches)
                writer.write(step, "eval", scores)
                state, note = exp.after_eval(state, scores, step)  # before the save: a resumed run continues it
                ckpt.save(step, state, loader, scores)
                last_saved = step
                report(f"step {step}: eval {format_metrics(scores)}; checkpoint saved")
                if note:
                    report(note)
            elif step % config.checkpoint_every_steps == 0 and step < total or preempted:
                _check_finite(*pending, workdir, last_saved)
                ckpt.save(step, state, loader)
                last_saved = step
                if not preempted:
                    report(f"step {step}: checkpoint saved")
            if preempted:
                ckpt.wait()
                report(f"SIGTERM: saved step {step} in {workdir / 'checkpoints'}; run the same command to resume")
                return {}
        if pending is not None:
            _check_finite(*pending, workdir, last_saved)
        scores, _ = exp.run_eval(state, max_batches=config.max_eval_batches)
        writer.write(step, "eval", scores)
        if ckpt.latest_step() != step:
            ckpt.save(step, state, loader, scores)
        ckpt.wait()
        bar.close()
        report(f"step {step}: eval {format_metrics(scores)}; checkpoint saved in {workdir / 'checkpoints'}")
        return scores
    finally:
        signal.signal(signal.SIGTERM, previous)
        bar.close()
        writer.close()
        ckpt.close()
        loader.close()


def format_metrics(metrics: dict) -> str:
    """``"top1=0.75 loss=1.234"``: the scalars of ``metrics`` on one line."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def _check_workdir(workdir: Path) -> None:
    """The workdir is a directory (or can be one) that this process may write; else one line."""
    existing = next((p for p in (workdir.absolute(), *workdir.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise NotADirectoryError(f"workdir: {existing} exists and is not a directory; choose a directory")
    if existing is not None and not os.access(existing, os.W_OK):
        raise PermissionError(f"workdir: cannot write in {existing}; choose a directory you can write")


def _check_finite(step: int, metrics: dict, workdir: Path, last_saved: int | None) -> None:
    if bool(jax.device_get(metrics["finite"])):
        return
    loss = float(jax.device_get(metrics["loss"]))
    where = f"the last good checkpoint is step {last_saved} in {workdir / 'checkpoints'}" if last_saved else (
        "no checkpoint was saved yet"
    )
    raise FloatingPointError(
        f"training diverged: the loss ({loss}), gradient or updated parameters are not finite at step {step}; "
        "the update was not applied "
        f"and nothing was saved. {where}. Lower schedule.base_lr or set optimizer.grad_clip_norm."
    )


def evaluate(config, workdir, checkpoint: str | int = "best", split: str | None = None) -> tuple[dict, dict]:
    """Restores ``checkpoint`` ("best", "latest" or a step) and runs the full eval protocol on ``split``.

    Writes ``workdir/eval_<split>.json`` (metrics, step) and ``eval_<split>_per_class.csv``.
    """
    workdir = Path(workdir)
    _check_has_checkpoints(workdir)  # before the data is read or anything is created
    exp = Experiment(config, workdir)
    state, step = restore_state(exp, checkpoint)
    split = split or config.data.eval_split
    report(f"evaluating step {step} ({checkpoint} checkpoint in {workdir / 'checkpoints'}) on split {split!r}")
    scores, table = exp.run_eval(state, split)
    if jax.process_index() == 0:
        (workdir / f"eval_{split}.json").write_text(json.dumps({"step": step, "split": split, **scores}, indent=1))
        _write_table(workdir / f"eval_{split}_per_class.csv", table)
    return scores, table


def _check_has_checkpoints(workdir: Path) -> None:
    if not any(p.name.isdigit() for p in (workdir / "checkpoints").glob("*")):
        raise FileNotFoundError(
            f"checkpoint: no checkpoint in {workdir / 'checkpoints'}; train first (python -m experiments.train "
            f"--config ... --workdir {workdir})"
        )


def restore_state(exp: Experiment, checkpoint: str | int = "best"):
    """``(state, step)`` of ``checkpoint`` in ``exp.workdir``: "best", "latest" or a step number."""
    _check_has_checkpoints(exp.workdir)
    ckpt = Checkpointer(exp.workdir, exp.config.keep_checkpoints, exp.task.best_metric, create=False)
    try:
        if checkpoint == "best":
            best = ckpt.best()
            step = best["step"] if best else ckpt.latest_step()
        elif checkpoint == "latest":
            step = ckpt.latest_step()
        else:
            step = int(checkpoint)
        return ckpt.restore(step, exp.abstract_state), step
    finally:
        ckpt.close()


def _write_table(path: Path, table: dict) -> None:
    keys = list(table)
    lines = [",".join(keys)]
    for row in zip(*(table[k] for k in keys)):
        lines.append(",".join("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row))
    path.write_text("\n".join(lines) + "\n")
