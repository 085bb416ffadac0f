"""explain_pretrained: a converted classifier's 10 x 3-view prediction and Grad-CAM on a video (no PyTorch)."""

import json

import jax
import numpy as np
import pytest

from cfjax.analysis.predict import explain_pretrained
from cfjax.data.fixtures import sample_video
from cfjax.models import build
from cfjax.train.checkpoints import save_weights

MODEL = {"name": "x3d_xs", "num_classes": 5, "width_factor": 0.5, "depth_factor": 0.2, "head_width": 16}
INPUT = {"frames": 4, "stride": 3, "short_side": 36, "crop": 32, "mean": [0.45] * 3, "std": [0.225] * 3}
NAMES = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A directory in experiments.convert's layout holding a tiny random X3D."""
    model = build(MODEL)
    variables = model.init(jax.random.key(0), np.zeros((1, 4, 32, 32, 3), np.float32))
    directory = tmp_path_factory.mktemp("explain") / "converted"
    return save_weights(directory, jax.device_get(variables), {"model": MODEL, "class_names": NAMES, "input": INPUT})


def test_multi_view_scores_top_classes_and_pictures(converted, tmp_path):
    paths = explain_pretrained(converted, sample_video(), tmp_path / "out", num_clips=2, num_crops=3, batch_size=4)
    assert [p.name for p in paths] == [
        "carphone_pristine.json", "carphone_pristine_scores.png", "carphone_pristine_gradcam.png"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    record = json.loads(paths[0].read_text())
    views = np.asarray(record["view_scores"])
    assert views.shape == (6, 5) and np.allclose(views.sum(1), 1.0)
    np.testing.assert_allclose(record["scores"], views.mean(0), rtol=1e-6)
    np.testing.assert_allclose(record["window_scores"], views.reshape(2, 3, 5).mean(1), rtol=1e-6)
    assert [t["class"] for t in record["top"]] == [NAMES[i] for i in np.argsort(-views.mean(0), kind="stable")]
    assert record["views"] == "2 clips x 3 crops"


def test_bad_view_counts_fail_before_decoding(converted, tmp_path):
    with pytest.raises(ValueError, match="num_crops: expected 1 or 3"):
        explain_pretrained(converted, "no_such_video.mp4", tmp_path, num_crops=2)
    with pytest.raises(ValueError, match="num_clips: expected an int >= 1"):
        explain_pretrained(converted, "no_such_video.mp4", tmp_path, num_clips=0)
