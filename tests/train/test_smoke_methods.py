"""Smoke runs of the Coarse-Fine, GCF-Net and CFAD configs: 3 steps, evaluation, checkpoints (tests/train/smoke.py)."""

import pytest

from tests.train.smoke import groups_of_task, quick_compile, smoke_data_dir, train_and_evaluate  # noqa: F401


@pytest.mark.parametrize("group", groups_of_task(classification=False), ids=lambda g: g[0])
def test_smoke_trains_and_evaluates(group, smoke_data_dir, tmp_path, quick_compile, capsys):  # noqa: F811
    train_and_evaluate(group[0], smoke_data_dir, tmp_path / group[0], capsys)
