"""Orbax checkpoints of the train state and the data iterator: latest K plus the best.

Layout: ``workdir/checkpoints/<step>/{state,data}``; ``workdir/best.json`` names the best
step and its metrics. Saves are asynchronous; a crash mid-save leaves the previous
checkpoints intact (Orbax commits a step atomically).

Weights without a training run (``experiments.convert``) use the same layout:
``DIR/checkpoints/0/state`` holds ``{"step", "params", "batch_stats"}`` and ``DIR/model.json``
the model config, class names, input format and provenance. :func:`load_weights` reads
either kind of directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util
from orbax.checkpoint import checkpoint_managers as policies

from cfjax.data.loaders import checkpoint_restore_args, checkpoint_save_args

__all__ = [
    "MODEL_INFO",
    "Checkpointer",
    "WeightsInfo",
    "format_init_table",
    "load_weights",
    "merge_weights",
    "save_weights",
    "weights_info",
]

MODEL_INFO = "model.json"


def _metric(name: str):
    def get(metrics) -> float:
        value = metrics.get(name) if metrics else None
        return -math.inf if value is None or not math.isfinite(float(value)) else float(value)

    return get


class Checkpointer:
    """``save(step, state, iterator, metrics=None)``, ``restore(step, abstract_state, iterator=None)``."""

    def __init__(self, workdir, keep: int, best_metric: str, create: bool = True):
        if keep < 1:
            raise ValueError(f"keep_checkpoints: expected >= 1, got {keep}")
        self.workdir = Path(workdir).absolute()
        self.best_metric = best_metric
        policy = policies.AnyPreservationPolicy([
            policies.LatestN(n=keep),
            policies.BestN(get_metric_fn=_metric(best_metric), n=1, keep_checkpoints_without_metrics=False),
        ])
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy, enable_async_checkpointing=True, create=create
        )
        self.manager = ocp.CheckpointManager(self.workdir / "checkpoints", options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def best(self) -> dict | None:
        path = self.workdir / "best.json"
        return json.loads(path.read_text()) if path.exists() else None

    def save(self, step: int, state, iterator=None, metrics: dict | None = None) -> None:
        items = {"state": ocp.args.StandardSave(state)}
        if iterator is not None:
            items["data"] = checkpoint_save_args(iterator)
        scalars = None
        if metrics is not None:
            scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        self.manager.save(step, args=ocp.args.Composite(**items), metrics=scalars, force=True)
        if scalars is not None and self.best_metric in scalars:
            best = self.best()
            value = _metric(self.best_metric)(scalars)
            # Ties go to the later step, as Orbax's BestN keeps the last of equal checkpoints.
            if best is None or value >= _metric(self.best_metric)(best["metrics"]):
                if jax.process_index() == 0:
                    tmp = self.workdir / "best.json.tmp"
                    tmp.write_text(json.dumps({"step": int(step), "metrics": scalars}, indent=1))
                    tmp.replace(self.workdir / "best.json")

    def restore(self, step: int, abstract_state, iterator=None):
        """The state saved at ``step`` (shardings from ``abstract_state``); fills ``iterator``'s position."""
        if step not in self.manager.all_steps():
            raise FileNotFoundError(
                f"checkpoint: no step {step} in {self.workdir / 'checkpoints'}; saved steps: {self.manager.all_steps()}"
            )
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if iterator is not None:
            items["data"] = checkpoint_restore_args(iterator)
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        return restored["state"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def save_weights(directory, variables: dict, info: dict) -> Path:
    """Writes ``variables`` (``params``, ``batch_stats``) as step 0 of ``directory/checkpoints``
    and ``info`` (``model`` config, ``class_names``, ``input``, ``provenance``) as ``model.json``.

    Refuses a directory that already holds checkpoints (nothing is overwritten).
    """
    directory = Path(directory).absolute()
    if not isinstance(info.get("model"), dict) or "name" not in info["model"]:
        raise ValueError(f"info['model']: expected a model config with a 'name', got {info.get('model')!r}")
    if (directory / "checkpoints").exists() or (directory / MODEL_INFO).exists():
        raise FileExistsError(f"out: {directory} already holds a checkpoint; choose a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    state = {"step": np.zeros((), np.int32), **{k: variables[k] for k in ("params", "batch_stats") if k in variables}}
    options = ocp.CheckpointManagerOptions(enable_async_checkpointing=False, create=True)
    with ocp.CheckpointManager(directory / "checkpoints", options=options) as manager:
        manager.save(0, args=ocp.args.Composite(state=ocp.args.StandardSave(state)))
        manager.wait_until_finished()
    tmp = directory / (MODEL_INFO + ".tmp")
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(directory / MODEL_INFO)
    return directory


class WeightsInfo(dict):
    """``model.json`` of a weights directory (or what a training workdir says of its model), plus
    ``step``: the checkpoint step that :func:`load_weights` reads."""


def weights_info(directory, checkpoint: str | int = "best", what: str = "init_from") -> WeightsInfo:
    """What :func:`load_weights` would load, checked without reading any array.

    ``directory``: an ``experiments.convert`` output or a training workdir;
    ``checkpoint``: "best", "latest" or a step (a converted directory has only step 0).
    Raises ``FileNotFoundError`` / ``ValueError`` with one clear line otherwise, naming ``what``
    (the config key or flag that gave the directory).
    """
    directory = Path(directory).expanduser().absolute()
    if not directory.is_dir():
        raise FileNotFoundError(f"{what}: no directory {directory}")
    if (directory / MODEL_INFO).exists():
        info = WeightsInfo(json.loads((directory / MODEL_INFO).read_text()))
    elif (directory / "config.json").exists():
        config = json.loads((directory / "config.json").read_text())
        model = dict(config.get("model") or {})
        if not config.get("adaptive", True):
            from cfjax.models import non_adaptive

            model = non_adaptive(model)
        if config.get("dtype", "float32") != "float32":
            model.setdefault("dtype", config["dtype"])
        info = WeightsInfo({"model": model, "class_names": None, "provenance": {"workdir": str(directory)}})
    else:
        raise FileNotFoundError(
            f"{what}: {directory} is neither a converted checkpoint ({MODEL_INFO}) nor a training workdir "
            "(config.json); convert one with python -m experiments.convert"
        )
    root = directory / "checkpoints"
    steps = sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else []
    if not steps:
        raise FileNotFoundError(f"{what}: no checkpoint in {root}")
    if checkpoint == "best":
        best = directory / "best.json"
        step = json.loads(best.read_text())["step"] if best.exists() else steps[-1]
    elif checkpoint == "latest":
        step = steps[-1]
    else:
        step = int(checkpoint)
    if step not in steps:
        raise FileNotFoundError(f"{what}: no step {step} in {root}; saved steps: {steps}")
    info["step"] = step
    info["directory"] = str(directory)
    return info


def load_weights(directory, checkpoint: str | int = "best", what: str = "init_from") -> tuple[dict, WeightsInfo]:
    """``(variables, info)`` from a converted directory or a training workdir (numpy arrays;
    ``variables`` has ``params`` and, when the model has any, ``batch_stats``)."""
    info = weights_info(directory, checkpoint, what)
    options = ocp.CheckpointManagerOptions(create=False)
    handlers = {"state": ocp.PyTreeCheckpointHandler()}
    quiet = _absl_level(logging.ERROR)  # Orbax warns that it skips the data iterator's item: that is the intent
    with quiet, ocp.CheckpointManager(Path(info["directory"]) / "checkpoints", item_handlers=handlers,
                                      options=options) as manager:
        tree = manager.item_metadata(info["step"])["state"]
        tree = getattr(tree, "tree", tree)
        numpy = ocp.RestoreArgs(restore_type=np.ndarray)
        as_numpy = jax.tree.map(lambda _: numpy, dict(tree), is_leaf=_is_array_metadata)
        restored = manager.restore(
            info["step"], args=ocp.args.Composite(state=ocp.args.PyTreeRestore(restore_args=as_numpy)),
        )["state"]
    variables = {k: restored[k] for k in ("params", "batch_stats") if k in restored}
    return jax.tree.map(np.asarray, variables), info


@contextlib.contextmanager
def _absl_level(level: int):
    logger = logging.getLogger("absl")
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _is_array_metadata(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def merge_weights(fresh: dict, loaded: dict, num_classes: tuple[int | None, int | None] = (None, None)):
    """Takes every array of ``loaded`` whose path and shape match ``fresh`` (a model's initial variables).

    ``num_classes = (checkpoint's, this model's)``: when they differ, arrays whose last axis
    is the class axis (the classifier) keep their fresh values ("re-initialised"). Any other
    shape mismatch raises ``ValueError`` naming the parameter and both shapes.

    Returns ``(variables, groups)``: the merged tree (numpy for loaded leaves, the fresh
    leaf otherwise) and ``{"loaded" | "re-initialised" | "new" | "ignored": {module: count}}``
    keyed by top-level module name.
    """
    flat_loaded = traverse_util.flatten_dict(loaded)
    groups: dict[str, dict[str, int]] = {g: {} for g in ("loaded", "re-initialised", "new", "ignored")}
    old_classes, new_classes = num_classes

    def pick(path, leaf):
        module = path[1] if len(path) > 2 else path[-1]
        if path not in flat_loaded:
            groups["new"][module] = groups["new"].get(module, 0) + 1
            return leaf
        value = flat_loaded.pop(path)
        if tuple(value.shape) == tuple(leaf.shape):
            groups["loaded"][module] = groups["loaded"].get(module, 0) + 1
            return value.astype(leaf.dtype)
        class_axis = (
            old_classes != new_classes and value.ndim == leaf.ndim and value.shape[-1] == old_classes
            and leaf.shape[-1] == new_classes and value.shape[:-1] == leaf.shape[:-1]
        )
        if class_axis:
            groups["re-initialised"][module] = groups["re-initialised"].get(module, 0) + 1
            return leaf
        raise ValueError(
            f"init_from: parameter {'/'.join(path)} has shape {tuple(value.shape)} in the checkpoint, "
            f"{tuple(leaf.shape)} in this model (only the classifier may differ, through num_classes)"
        )

    merged = traverse_util.unflatten_dict(
        {path: pick(path, leaf) for path, leaf in traverse_util.flatten_dict(fresh).items()}
    )
    for path in flat_loaded:
        module = path[1] if len(path) > 2 else path[-1]
        groups["ignored"][module] = groups["ignored"].get(module, 0) + 1
    return merged, groups


def format_init_table(info: WeightsInfo, groups: dict, num_classes: tuple[int | None, int | None]) -> str:
    """One table of what ``init_from`` loaded, re-initialised, added and ignored."""
    lines = [f"init_from {info['directory']} (model {info['model'].get('name')}, step {info['step']}):",
             f"  {'group':<15}{'arrays':>7}  modules"]
    for group, modules in groups.items():
        count = sum(modules.values())
        names = list(modules)
        listed = ", ".join(names[:6]) + (f", ... ({len(names)} modules)" if len(names) > 6 else "") if names else "-"
        if group == "re-initialised" and names:
            listed += f" (num_classes {num_classes[0]} -> {num_classes[1]})"
        lines.append(f"  {group:<15}{count:>7}  {listed}")
    return "\n".join(lines)
