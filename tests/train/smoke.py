"""Smoke runs of the experiment configs: each distinct ``:smoke`` config trains 3 steps, evaluates and
checkpoints (shared by test_smoke_classification.py and test_smoke_methods.py)."""

from __future__ import annotations

import importlib
import itertools
import json
import math
from pathlib import Path

import jax
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


def groups_of_task(classification: bool) -> list[list[str]]:
    return [g for g in SMOKE_GROUPS if (get_config(g[0], "variant=smoke").task == "classification") == classification]


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
    metrics = loop.train(c, workdir, progress=False)
    best = tasks.get_task(c).best_metric
    assert math.isfinite(metrics[best]), metrics
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["split"] == "eval"]
    assert evals and evals[-1]["step"] == c.total_steps and best in evals[-1]
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, c.total_steps + 1))
    assert (workdir / "best.json").exists()
    assert (workdir / "checkpoints" / str(c.total_steps)).is_dir()
    capsys.readouterr()
    evaluated, table = loop.evaluate(c, workdir, "best")
    assert f"evaluating step {c.total_steps} (best checkpoint" in capsys.readouterr().out
    assert evaluated[best] == pytest.approx(metrics[best])
    assert (workdir / f"eval_{c.data.eval_split}.json").exists() and table["class"]
