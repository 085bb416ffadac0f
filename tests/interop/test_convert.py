"""experiments.convert -> a cfjax checkpoint directory -> init_from / predict, without PyTorch after conversion."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from cfjax.analysis.predict import predict_pretrained
from cfjax.data.fixtures import sample_video
from cfjax.models import build
from cfjax.train import loop
from cfjax.train.checkpoints import load_weights, merge_weights
from experiments.convert import convert_to_directory
from tests.interop.reference import channels_last, pytorchvideo_x3d, randomise_batch_norm, require
from tests.train.test_loop import config as tiny_config
from tests.train.test_loop import data_dir  # noqa: F401  (module fixture: the synthetic dataset)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def x3d_xs_file(tmp_path_factory):
    """A pytorchvideo X3D-XS ``.pyth`` with random weights, its eval logits on a random clip, and the clip."""
    torch = require("torch")
    torch.manual_seed(1)
    model = pytorchvideo_x3d()(input_clip_length=4, input_crop_size=64, model_num_class=400)
    randomise_batch_norm(model, 1)
    model.blocks[-1].activation = None
    model.eval()
    path = tmp_path_factory.mktemp("torch") / "X3D_XS.pyth"
    torch.save({"model_state": model.state_dict()}, path)
    video = np.random.default_rng(1).standard_normal((2, 3, 4, 64, 64)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(video)).numpy()
    return path, channels_last(video), logits


def run(*args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_convert_command_writes_a_checkpoint_that_loads_without_torch(x3d_xs_file, tmp_path):
    path, video, logits = x3d_xs_file
    out = tmp_path / "x3d_xs_k400"
    done = run("experiments.convert", "--source", "pytorchvideo", "--model", "x3d_xs", "--checkpoint", str(path),
               "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"wrote {out}" in done.stdout
    info = json.loads((out / "model.json").read_text())
    assert info["model"] == {"name": "x3d_xs", "num_classes": 400}
    assert len(info["class_names"]) == 400 and info["class_names"][0] == "abseiling"
    assert info["provenance"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["provenance"]["source"] == "pytorchvideo" and info["input"]["frames"] == 4
    variables, loaded = load_weights(out)
    assert loaded["step"] == 0
    ours = np.asarray(build(info["model"]).apply(variables, video))
    np.testing.assert_allclose(ours, logits, atol=1e-4, rtol=0)

    again = run("experiments.convert", "--source", "pytorchvideo", "--model", "x3d_xs", "--checkpoint", str(path),
                "--out", str(out))
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        f"error: --out: {out} already holds a checkpoint; choose a new directory", "(add --debug for the traceback)"]
    missing = run("experiments.convert", "--source", "torchvision", "--model", "r2plus1d_18", "--checkpoint",
                  str(tmp_path / "nope.pth"), "--out", str(tmp_path / "never"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 2
    assert "no file" in missing.stderr and not (tmp_path / "never").exists()


SMALL = dict(width_factor=0.5, depth_factor=0.2, head_width=16)  # one block per stage: quick to compile


@pytest.fixture(scope="module")
def small_converted(tmp_path_factory):
    """A small pytorchvideo X3D (400 classes) saved as .pyth and converted; its logits on a clip, and the clip."""
    torch = require("torch")
    torch.manual_seed(2)
    model = pytorchvideo_x3d()(input_clip_length=4, input_crop_size=32, model_num_class=400, head_dim_out=16,
                               width_factor=0.5, depth_factor=0.2)
    randomise_batch_norm(model, 2)
    model.blocks[-1].activation = None
    model.eval()
    root = tmp_path_factory.mktemp("small")
    torch.save({"model_state": model.state_dict()}, root / "small.pyth")
    video = np.random.default_rng(2).standard_normal((2, 3, 4, 32, 32)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(video)).numpy()
    converted = convert_to_directory("pytorchvideo", "x3d_xs", root / "small.pyth", root / "converted", **SMALL)
    return converted, channels_last(video), logits


def test_init_from_gives_the_converted_logits(small_converted, data_dir, tmp_path, capsys):  # noqa: F811
    converted, video, logits = small_converted
    cfg = tiny_config(data_dir, model={"name": "x3d_xs", **SMALL}, init_from=str(converted))
    exp = loop.Experiment(cfg, tmp_path / "run")
    state = exp.pretrained_state(cfg.init_from)
    ours = np.asarray(exp.model.apply(jax.device_get(exp.variables(state)), video))
    np.testing.assert_allclose(ours, logits, atol=1e-4, rtol=0)
    table = capsys.readouterr().out
    assert f"init_from {converted} (model x3d_xs, step 0)" in table
    rows = {line.split()[0]: line.split()[1] for line in table.splitlines()[2:]}
    leaves = len(jax.tree.leaves(exp.variables(state)))
    assert rows == {"loaded": str(leaves), "re-initialised": "0", "new": "0", "ignored": "0"}


def test_init_from_a_missing_directory_fails_before_writing(data_dir, tmp_path):  # noqa: F811
    cfg = tiny_config(data_dir, init_from=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="init_from: no directory .*nowhere"):
        loop.train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_predict_a_video_with_a_converted_model(x3d_xs_file, tmp_path):
    path, *_ = x3d_xs_file
    converted = convert_to_directory("pytorchvideo", "x3d_xs", path, tmp_path / "converted")
    paths = predict_pretrained(converted, sample_video(), tmp_path / "predict")
    record = json.loads(paths[0].read_text())
    names = set(json.loads((converted / "model.json").read_text())["class_names"])
    assert len(record["top"]) == 5 and all(t["class"] in names for t in record["top"])
    assert np.isclose(sum(np.asarray(record["window_scores"])[0]), 1.0)
    assert [p.suffix for p in paths] == [".json", ".png"]


def test_merge_weights_groups_every_array():
    fresh = {"params": {"a": {"kernel": np.zeros((2, 3))}, "sgs": {"w": np.zeros(2)},
                        "classifier": {"kernel": np.zeros((4, 8)), "bias": np.zeros(8)}}}
    loaded = {"params": {"a": {"kernel": np.ones((2, 3))}, "old": {"w": np.ones(1)},
                         "classifier": {"kernel": np.ones((4, 400)), "bias": np.ones(400)}}}
    merged, groups = merge_weights(fresh, loaded, (400, 8))
    assert groups == {"loaded": {"a": 1}, "re-initialised": {"classifier": 2}, "new": {"sgs": 1}, "ignored": {"old": 1}}
    np.testing.assert_array_equal(merged["params"]["a"]["kernel"], 1)  # loaded
    np.testing.assert_array_equal(merged["params"]["classifier"]["kernel"], 0)  # fresh: 8 classes now
    with pytest.raises(ValueError, match=r"params/a/kernel has shape \(3, 3\) in the checkpoint, \(2, 3\) in this"):
        merge_weights(fresh, {"params": {"a": {"kernel": np.ones((3, 3))}}}, (8, 8))
    with pytest.raises(ValueError, match="classifier/kernel"):  # same num_classes: a mismatch is an error
        merge_weights(fresh, loaded, (8, 8))
