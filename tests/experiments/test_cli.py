"""The command lines' contract: a user error is one line naming the thing (exit 2) and writes nothing;
``--debug`` shows the traceback; a preempted run exits with ``--preempted_exit_code``."""

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from absl import flags

from cfjax.train import loop
from experiments import cli

ROOT = Path(__file__).resolve().parents[2]
TINY = "tests/train/tiny_config.py"


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def assert_one_line_error(result, *words):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == cli.EXIT_USER_ERROR, result.stderr[-2000:]
    assert len(lines) == 2 and lines[0].startswith("error: ") and "--debug" in lines[1], result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    "override, words",
    [
        ("--config.batch_sise=4", ("--config", "'batch_sise'", '"batch_size"')),  # a mistyped key, with a hint
        ("--config.batch_size=abc", ("--config.batch_size", "abc")),  # a value of the wrong type
        ("--config.batch_size=0", ("batch_size", "positive", "got 0")),  # a bad value, caught before any data
        ("--config.total_steps=-5", ("total_steps", "got -5")),
    ],
)
def test_config_errors_are_one_line_and_write_nothing(tmp_path, override, words):
    workdir, data = tmp_path / "work", tmp_path / "data"
    result = run("experiments.train", "--config", TINY, f"--workdir={workdir}", f"--config.data.data_dir={data}",
                 override)
    assert_one_line_error(result, *words)
    assert not workdir.exists() and not data.exists()


def test_missing_config_file_and_bad_variant(tmp_path):
    result = run("experiments.train", "--config", "configs/atfr_x3d3.py", f"--workdir={tmp_path}/w")
    assert_one_line_error(result, "'configs/atfr_x3d3.py'", "did you mean configs/atfr_x3d.py")
    result = run("experiments.train", "--config", "configs/atfr_x3d.py:variant=tiny", f"--workdir={tmp_path}/w")
    assert_one_line_error(result, "config argument: variant='tiny'; expected one of synthetic, smoke")
    result = run("experiments.train", "--config", "configs/atfr_x3d.py:sise=s", f"--workdir={tmp_path}/w")
    assert_one_line_error(result, "config argument: unknown key 'sise'; expected one of data, size, variant")
    assert not (tmp_path / "w").exists()


def test_data_dir_that_is_a_file_names_the_variable(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = run("experiments.train", "--config", TINY, f"--workdir={tmp_path}/w", env={"CFJAX_DATA_DIR": str(not_a_dir)})
    assert_one_line_error(result, "$CFJAX_DATA_DIR", str(not_a_dir), "is a file")
    assert not (tmp_path / "w").exists()


def test_evaluate_on_an_empty_workdir_creates_nothing_and_debug_shows_the_traceback(tmp_path):
    args = ("experiments.evaluate", "--config", TINY, f"--workdir={tmp_path}", f"--config.data.data_dir={tmp_path}/d")
    assert_one_line_error(run(*args), "checkpoint: no checkpoint", "train first")
    assert list(tmp_path.iterdir()) == []
    debug = run(*args, "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "FileNotFoundError" in debug.stderr


def test_preempted_training_exits_with_the_preempted_code(monkeypatch):
    from experiments import train as train_cli

    flags.FLAGS.mark_as_parsed()
    monkeypatch.setattr(train_cli, "_CONFIG", types.SimpleNamespace(value=None))
    monkeypatch.setattr(train_cli, "_WORKDIR", types.SimpleNamespace(value="unused"))
    monkeypatch.setattr(loop, "train", lambda config, workdir, progress: {})  # what train returns after SIGTERM
    assert train_cli.main([]) == cli.EXIT_PREEMPTED == 75
    monkeypatch.setattr(train_cli, "_PREEMPTED_EXIT_CODE", types.SimpleNamespace(value=0))
    assert train_cli.main([]) == 0


def test_describe_unwraps_nested_key_errors():
    error = AttributeError(KeyError("'batch_sise'\nDid you mean \"batch_size\"?"))
    assert cli.describe(error) == "'batch_sise'; Did you mean \"batch_size\"?"
    assert cli.describe(FileNotFoundError("checkpoint: none")) == "checkpoint: none"
