"""CFAD anchors from a prepared dataset: prepare_data writes them, the config reads them at its training scale."""

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from cfjax.data.fixtures import write_act_fixture, write_act_pickle
from cfjax.models import build
from cfjax.train.anchors import ANCHORS_FILE, resolve_anchor_sizes
from cfjax.train.config import base_config
from configs import cfad
from experiments import prepare_data

LABELS = ["Diving", "Golf", "Kicking", "Lifting", "Riding", "Run", "SkateBoarding", "Swing1", "Swing2", "Walk"]
# Six training boxes (inclusive w x h) on 40 x 30 frames: k = 6 clusters are the boxes themselves.
SIZES = {"Diving/001": [(6, 12), (8, 12), (10, 14), (12, 16)], "Golf/002": [(20, 24), (4, 4)]}
BY_AREA = [(4, 4), (6, 12), (8, 12), (10, 14), (12, 16), (20, 24)]


def _prepare(data_dir, manual_dir=None):
    argv = ["--dataset", "ucfsports", "--data_dir", data_dir, "--no_progress"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = prepare_data.main(argv + (["--manual_dir", manual_dir] if manual_dir else []))
    return result, out.getvalue()


@pytest.fixture(scope="module")
def prepared():
    with tempfile.TemporaryDirectory() as root:
        m, d = os.path.join(root, "manual"), os.path.join(root, "data")
        videos = {
            video: (len(sizes), [(i, [(f + 1, 1, 1, w, h) for f, (w, h) in enumerate(sizes)])], True)
            for i, (video, sizes) in enumerate(SIZES.items())
        }
        videos["Walk/003"] = (1, [(9, [(1, 2, 2, 30, 20)])], True)  # test split: not clustered
        gt = write_act_fixture(m, "Frames", ".jpg", videos, [list(SIZES)], [["Walk/003"]], LABELS)
        write_act_pickle(f"{m}/UCFSports-GT.pkl", gt)
        result, text = _prepare(d, m)
        yield d, result, text


def _config(data_dir):
    c = cfad.get_config("data=ucfsports")
    c.data.data_dir = data_dir
    return c


def test_prepare_data_writes_the_kmeans_anchors(prepared):
    data_dir, result, text = prepared
    path = result["anchors"]
    assert path == Path(result["builder"].data_path) / ANCHORS_FILE
    contents = json.loads(path.read_text())
    assert contents["num_boxes"] == 6 and contents["dataset"] == "cfjax_ucfsports/split1"
    np.testing.assert_allclose(contents["per_short_side"], np.asarray(BY_AREA) / 30, atol=1e-6)  # short side 30
    np.testing.assert_allclose(contents["pixels"], BY_AREA)
    assert "CFAD anchors: k-means of 6 training boxes, w x h per short side: 0.133x0.133, 0.200x0.400" in text
    # Again without --manual_dir (the dataset is prepared): the file is kept.
    _, text = _prepare(data_dir)
    assert "(exists, kept)" in text


def test_the_config_reads_them_at_its_training_scale(prepared):
    data_dir, result, _ = prepared
    c = _config(data_dir)
    assert c.model.anchor_sizes is None and tuple(c.input.scale_range) == (240, 300)
    line = resolve_anchor_sizes(c)
    expected = tuple((9.0 * w, 9.0 * h) for w, h in BY_AREA)  # short side 270 = 9 x 30
    assert c.model.anchor_sizes == expected
    assert build(c.model.to_dict()).anchor_sizes == expected
    assert line.startswith("model.anchor_sizes: 6 k-means anchors (w x h) of 6 training boxes at short side 270, ")
    assert f"from {result['anchors']}: 36x36, 54x108, 72x108, 90x126, 108x144, 180x216" in line
    # Set anchors and other models are left alone.
    assert resolve_anchor_sizes(c) is None
    assert resolve_anchor_sizes(base_config()) is None


def test_a_missing_file_names_the_command_that_writes_it(prepared):
    data_dir, result, _ = prepared
    result["anchors"].unlink()
    with pytest.raises(FileNotFoundError, match=rf"{ANCHORS_FILE} does not exist; write it with: python -m "
                       rf"experiments.prepare_data --dataset cfjax_ucfsports/split1 --data_dir {data_dir} "):  # fmt: skip
        resolve_anchor_sizes(_config(data_dir))
    _, text = _prepare(data_dir)  # that command, as printed
    assert "CFAD anchors: k-means of 6" in text and result["anchors"].exists()
