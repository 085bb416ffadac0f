"""JHMDB-21's result is the mean over its 3 splits: one model per split in DIR/splitK, evaluated by
one command (``experiments.evaluate --all_splits``); tested with a fake evaluation (no JHMDB here)."""

import json

import pytest

from cfjax.train import splits
from configs import cfad


def _workdir(tmp_path, names=("split1", "split2", "split3")):
    for name in names:
        (tmp_path / name / "checkpoints" / "100").mkdir(parents=True)
    return tmp_path


def test_every_split_is_evaluated_with_its_config_and_averaged(tmp_path):
    config = cfad.get_config("data=jhmdb21")
    config.lock()
    seen = []

    def fake_evaluate(c, workdir, checkpoint, split):
        k = int(c.data.config[-1])
        seen.append((c.data.config, workdir.name, checkpoint, split))
        return {"num_examples": 260 + k, "video_map_30": 0.1 * k, "video_map_50": 0.2 * k, "name": "x"}, {}

    per_split, mean = splits.evaluate_splits(config, _workdir(tmp_path), 7, evaluate=fake_evaluate)
    assert seen == [(f"split{k}", f"split{k}", 7, None) for k in (1, 2, 3)]
    assert config.data.config == "split1"  # the caller's config is unchanged
    assert list(per_split) == ["split1", "split2", "split3"]
    assert mean == {
        "num_examples": 261 + 262 + 263,
        "video_map_30": pytest.approx(0.2),
        "video_map_50": pytest.approx(0.4),
    }
    record = json.loads((tmp_path / "eval_test_splits.json").read_text())
    assert record["mean"]["video_map_50"] == pytest.approx(0.4) and record["splits"]["split3"]["num_examples"] == 263
    table = splits.format_table(per_split, mean).splitlines()
    assert table[0].split() == ["metric", "split1", "split2", "split3", "mean"]
    assert table[2].split() == ["video_map_30", "0.1000", "0.2000", "0.3000", "0.2000"]


def test_all_splits_errors_name_the_thing(tmp_path):
    ucf = cfad.get_config("data=ucf101_24")
    with pytest.raises(ValueError, match=r"^--all_splits: dataset cfjax_ucf101_24 has 1 split config"):
        splits.evaluate_splits(ucf, tmp_path, evaluate=None)
    jhmdb = cfad.get_config("data=jhmdb21")
    with pytest.raises(FileNotFoundError, match=r"^--all_splits: no checkpoint in .*split3.*data.config=split3"):
        splits.evaluate_splits(jhmdb, _workdir(tmp_path, ("split1", "split2")), evaluate=None)
    assert splits.dataset_splits("cfjax_jhmdb") == ["split1", "split2", "split3"]
