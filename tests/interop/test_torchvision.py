"""torchvision r2plus1d_18 -> cfjax, against a fixture made once with torchvision (no torchvision in CI).

``data/torchvision_r2plus1d_18.npz`` holds the input and the logits of torchvision's model whose
weights follow the seeded formula of ``seeded.py`` (``make_torchvision_fixture.py`` made it).
These tests need no PyTorch at all: the state dict is a mapping of numpy arrays.
"""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from cfjax.interop import CheckpointError, from_torch
from experiments.parity import to_float64
from tests.interop.seeded import read_keys_tsv, seeded_state_dict

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def fixture():
    data = np.load(DATA / "torchvision_r2plus1d_18.npz")
    state = seeded_state_dict(read_keys_tsv(DATA / "torchvision_r2plus1d_18_keys.tsv"), seed=int(data["seed"]))
    video = np.moveaxis(data["video_q"].astype(np.float32) / float(data["video_scale"]), 1, -1)
    return state, video, data["logits_f32"], data["logits_f64"]


def test_logits_match_torchvision_without_torch(fixture, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # a mapping of numpy arrays needs no PyTorch
    state, video, logits_f32, _ = fixture
    module, variables = from_torch(state, "torchvision", "r2plus1d_18")
    ours = np.asarray(jax.jit(module.apply)(variables, video))
    assert ours.shape == logits_f32.shape == (2, 400) and module.num_classes == 400
    assert np.std(logits_f32) > 0.01  # not a degenerate comparison
    np.testing.assert_allclose(ours, logits_f32, atol=1e-4, rtol=0)
    # float64 (7.8e-16 against the fixture's float64 logits) is measured by `python -m experiments.parity`:
    # float64 convolutions of this full-width network take 35 s on CPU, the float32 check catches any mapping error


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
