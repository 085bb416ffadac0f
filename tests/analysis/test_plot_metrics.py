"""plot_metrics: training curves from metrics.jsonl lines."""

import pytest

from cfjax.analysis.plots import plot_metrics
from cfjax.analysis.plots.metrics import _series

RECORDS = [
    {"step": 1, "split": "train", "loss": 2.0, "lr": 0.1, "step_time": 1.0},
    {"step": 2, "split": "train", "loss": 1.5, "lr": 0.1, "step_time": 1.0},
    {"step": 2, "split": "eval", "loss": 1.7, "top1": 0.25, "active_bins": float("nan")},
]


def test_series_by_split_skip_non_finite():
    assert {k: [v[0].tolist(), v[1].tolist()] for k, v in _series(RECORDS, "loss").items()} == {
        "train": [[1, 2], [2.0, 1.5]], "eval": [[2], [1.7]]}
    assert _series(RECORDS, "active_bins") == {}


def test_writes_a_png(tmp_path):
    path = plot_metrics(RECORDS, tmp_path / "a" / "curves.png", title="run")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_metrics(RECORDS, tmp_path / "b.png", keys=["top1"]).is_file()


def test_errors():
    with pytest.raises(ValueError, match="records: expected at least one metrics line"):
        plot_metrics([], "x.png")
    with pytest.raises(ValueError, match=r"records\[0\]: expected a dict with a 'step'"):
        plot_metrics([{"loss": 1.0}], "x.png")
    with pytest.raises(ValueError, match="keys: none of the requested metrics"):
        plot_metrics(RECORDS, "x.png", keys=["active_bins", "missing"])
