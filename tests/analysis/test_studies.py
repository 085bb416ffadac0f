"""studies.sgs_bins_by_redundancy on an untrained tiny ATFR model."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cfjax.analysis import studies
from cfjax.train import loop

ROOT = Path(__file__).resolve().parents[2]


def tiny_config(data_dir):
    spec = importlib.util.spec_from_file_location("tiny_config", ROOT / "tests" / "train" / "tiny_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.model.sgs = {"stage": "res2", "buckets": 1}
    c.data.data_dir = str(data_dir)
    return c


def test_bins_by_redundancy(tmp_path):
    exp = loop.Experiment(tiny_config(tmp_path / "data"), tmp_path / "run")
    rows = studies.sgs_bins_by_redundancy(exp, exp.init_state(), levels=(0.0, 1.0), clips_per_level=8)
    assert [r["redundancy"] for r in rows] == [0.0, 1.0]
    num_bins = exp.config.input.clip_length  # X3D keeps the time axis: B = T at res2
    for r in rows:
        assert 1.0 <= r["active_bins"] <= num_bins and r["std"] >= 0.0
        assert 0.0 <= r["top1"] <= 1.0 and np.isclose(r["top1"] * 8, round(r["top1"] * 8))


def test_needs_an_sgs_classifier(tmp_path):
    c = tiny_config(tmp_path / "data")
    c.adaptive = False
    exp = loop.Experiment(c, tmp_path / "run")
    with pytest.raises(ValueError, match="needs a classification model with SGS"):
        studies.sgs_bins_by_redundancy(exp, None)
