"""Smoke runs of the experiment configs: each distinct ``variant=smoke`` config trains 3 steps,
evaluates and checkpoints (shared by test_smoke_classification.py and test_smoke_methods.py).

The smoke configs that a notebook trains (``NOTEBOOK_TRAINED``) are not trained a second time here:
tests/notebooks runs the notebooks in smoke mode and checks each of those runs with ``check_run``
(this file's contract) and that its config is the listed smoke config. Without the notebook test's
dependencies (nbclient, nbformat, jupytext, ipykernel) those groups are trained here as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import json
import math
from pathlib import Path

import jax
import ml_collections
import pytest

from cfjax.train import tasks

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
VARIANT_KEYS = ("variant", "baseline")  # the ARGUMENTS keys that pick a variant, not an experiment


def _experiments() -> list[str]:
    """Every config file x every combination of its experiment arguments: ``"gcf:backbone=r2plus1d,data=ucf101"``."""
    names = []
    for path in sorted(CONFIG_DIR.glob("*.py")):
        if path.stem in ("common", "__init__"):
            continue
        arguments = importlib.import_module(f"configs.{path.stem}").ARGUMENTS
        keys = [k for k in arguments if k not in VARIANT_KEYS]
        for values in itertools.product(*(arguments[k][1] for k in keys)):
            args = ",".join(f"{k}={v}" for k, v in zip(keys, values))
            names.append(f"{path.stem}:{args}" if args else path.stem)
    return sorted(names)


NAMES = _experiments()


def get_config(name, arg=None):
    """The config of experiment ``name`` (a ``NAMES`` entry), ``arg`` (``"variant=smoke"``, ...) appended."""
    file, _, args = name.partition(":")
    return importlib.import_module(f"configs.{file}").get_config(",".join(a for a in (args, arg) if a) or None)


def _smoke_groups():
    """Names whose smoke configs are identical, grouped; the first of each group is trained."""
    groups: dict[str, list[str]] = {}
    for name in NAMES:
        groups.setdefault(get_config(name, "variant=smoke").to_json(sort_keys=True), []).append(name)
    return list(groups.values())


SMOKE_GROUPS = _smoke_groups()


# notebook -> {its run directory under WORKDIR: the experiment whose smoke config it trains}
NOTEBOOK_TRAINED = {
    "01_quick_start": {"atfr": "atfr_x3d:size=s,data=kinetics400"},
    "03_methods_at_a_glance": {
        "coarse_fine": "coarse_fine",
        "gcf": "gcf:backbone=r2plus1d,data=ucf101",
        "cfad": "cfad:data=ucf101_24",
    },
}
NOTEBOOK_DEPENDENCIES = ("nbclient", "nbformat", "jupytext", "ipykernel")


def notebooks_run() -> bool:
    """Whether tests/notebooks can execute the notebooks here (and so checks ``NOTEBOOK_TRAINED``)."""
    return all(importlib.util.find_spec(m) is not None for m in NOTEBOOK_DEPENDENCIES)


def groups_of_task(classification: bool) -> list[list[str]]:
    """The smoke groups of one kind of task, less those a notebook trains (when the notebooks run)."""
    skipped = {n for runs in NOTEBOOK_TRAINED.values() for n in runs.values()} if notebooks_run() else set()
    return [
        g
        for g in SMOKE_GROUPS
        if (get_config(g[0], "variant=smoke").task == "classification") == classification and not skipped & set(g)
    ]


class _QuickCompileJax:
    """``jax`` as seen by the trainer loop, whose ``jit`` compiles at XLA's optimisation level 0."""

    def __getattr__(self, name):
        return getattr(jax, name)

    @staticmethod
    def jit(fun, **kwargs):
        return jax.jit(fun, compiler_options={"xla_backend_optimization_level": 0}, **kwargs)


@pytest.fixture
def quick_compile(monkeypatch):
    """Smoke runs are all compile: on a CPU, XLA's optimisation level 0 halves it, and threefry's
    random-initialiser graphs are about half of a tiny model's init compile (``rbg`` keys are
    cheap). A smoke run tests the pipeline, not the speed of the code nor the random stream."""
    from cfjax.train import loop

    monkeypatch.setattr(loop, "jax", _QuickCompileJax())
    previous = jax.config.jax_default_prng_impl
    jax.config.update("jax_default_prng_impl", "rbg")
    yield
    jax.config.update("jax_default_prng_impl", previous)


@pytest.fixture(scope="module")
def smoke_data_dir(tmp_path_factory):
    """One data directory for the smoke runs of a file: each synthetic dataset is generated once."""
    return tmp_path_factory.mktemp("smoke_data")


def train_and_evaluate(name, data_dir, workdir, capsys):
    """Trains ``name:smoke`` in ``workdir``, checks metrics / checkpoints, then evaluates the best checkpoint."""
    from cfjax.train import loop

    c = get_config(name, "variant=smoke")
    c.data.data_dir = str(data_dir)
    loop.train(c, workdir, progress=False)
    capsys.readouterr()
    evaluated, table = loop.evaluate(c, workdir, "best")
    assert f"evaluating step {c.total_steps} (best checkpoint" in capsys.readouterr().out
    assert table["class"]
    check_run(workdir, evaluated)


def check_run(workdir: Path, evaluated: dict | None = None) -> ml_collections.ConfigDict:
    """The contract of a finished run in ``workdir`` (its own ``config.json``): one train row per step,
    an evaluation at the last step with the task's best metric finite, ``best.json``, the last
    checkpoint, and (when evaluated) the best checkpoint's evaluation file whose metric equals the
    logged one. Returns the run's config."""
    c = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
    best = tasks.get_task(c).best_metric
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["split"] == "eval"]
    assert evals and evals[-1]["step"] == c.total_steps and math.isfinite(evals[-1][best]), evals
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, c.total_steps + 1))
    assert (workdir / "best.json").exists()
    assert (workdir / "checkpoints" / str(c.total_steps)).is_dir()
    if evaluated is not None:
        assert evaluated[best] == pytest.approx(evals[-1][best])
        assert (workdir / f"eval_{c.data.eval_split}.json").exists()
    return c
