"""torchvision's video ResNets -> cfjax, against fixtures made once with torchvision (no torchvision in CI).

``data/torchvision_NAME.npz`` (``r2plus1d_18``, ``r3d_18``, ``mc3_18``) holds the input and the logits of
torchvision's model whose weights follow the seeded formula of ``seeded.py`` (``make_torchvision_fixture.py``
made them). These tests need no PyTorch at all: the state dict is a mapping of numpy arrays.
"""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from cfjax.interop import CheckpointError, from_torch
from tests.interop.seeded import read_keys_tsv, seeded_state_dict

DATA = Path(__file__).resolve().parent / "data"
MODELS = ("r2plus1d_18", "r3d_18", "mc3_18")


def load_fixture(name: str):
    """``(state dict, video [B, T, H, W, 3] float32, logits float32, logits float64)`` of one fixture."""
    data = np.load(DATA / f"torchvision_{name}.npz")
    state = seeded_state_dict(read_keys_tsv(DATA / f"torchvision_{name}_keys.tsv"), seed=int(data["seed"]))
    video = np.moveaxis(data["video_q"].astype(np.float32) / float(data["video_scale"]), 1, -1)
    return state, video, data["logits_f32"], data["logits_f64"]


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("r2plus1d_18")


@pytest.mark.parametrize("name", MODELS)
def test_logits_match_torchvision_without_torch(name, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # a mapping of numpy arrays needs no PyTorch
    state, video, logits_f32, _ = load_fixture(name)
    module, variables = from_torch(state, "torchvision", name)
    ours = np.asarray(jax.jit(module.apply)(variables, video))
    assert ours.shape == logits_f32.shape == (2, 400) and module.num_classes == 400
    assert np.std(logits_f32) > 0.01  # not a degenerate comparison
    np.testing.assert_allclose(ours, logits_f32, atol=1e-4, rtol=0)
    # float64 (below 1e-15 against the fixture's float64 logits) is measured by `python -m experiments.parity`:
    # float64 convolutions of these full-width networks take 35 s each on CPU; float32 catches any mapping error


@pytest.mark.parametrize("name, other", [("r3d_18", "mc3_18"), ("mc3_18", "r3d_18"), ("r2plus1d_18", "r3d_18")])
def test_a_checkpoint_of_another_torchvision_model_is_refused(name, other):
    state, *_ = load_fixture(name)
    # r3d and mc3 share their keys and differ in kernel shapes; R(2+1)D's keys differ
    with pytest.raises(CheckpointError, match=rf"(does not match cfjax model|cfjax parameter \S+ of) {other!r}"):
        from_torch(state, "torchvision", other)


def test_reading_a_file_without_torch_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    path = tmp_path / "r2plus1d_18.pth"
    path.write_bytes(b"\0")
    with pytest.raises(CheckpointError, match="needs PyTorch, which is not installed: pip install -r requirements-t"):
        from_torch(path, "torchvision", "r2plus1d_18")


def test_another_architecture_is_refused(fixture):
    state, *_ = fixture
    with pytest.raises(CheckpointError, match="from source 'pytorchvideo' .*another architecture.*missing keys"):
        from_torch(state, "pytorchvideo", "x3d_s")
