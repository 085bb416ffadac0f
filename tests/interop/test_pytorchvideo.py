"""pytorchvideo X3D -> cfjax: eval logits of the converted model equal the reference's; real files."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from cfjax.interop import CheckpointError, from_torch, kinetics400_class_names
from experiments.parity import X3D_DEPTH
from tests.interop import reference
from tests.interop.reference import channels_last, require, state_dict_numpy, to_float64

FRAMES, CROP = 4, 64  # small inputs: the head's pooling window follows them (crop / 32)


def reference_x3d(name: str, seed: int = 0):
    """pytorchvideo's X3D (X3D-XS, -S and -M share one architecture; X3D-L is deeper), random weights."""
    return reference.reference_x3d(name, FRAMES, CROP, seed)


def reference_logits(model, video: np.ndarray) -> np.ndarray:
    torch = require("torch")
    with torch.no_grad():
        return model(torch.from_numpy(video)).numpy()


def video(batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, FRAMES, CROP, CROP)).astype(np.float32)


@pytest.mark.parametrize("name", list(X3D_DEPTH))
def test_logits_match_pytorchvideo(name):
    model = reference_x3d(name, seed=len(name))
    x = video()
    module, variables = from_torch(state_dict_numpy(model), "pytorchvideo", name)
    ours = np.asarray(module.apply(variables, channels_last(x)))
    ref = reference_logits(model, x)
    assert ours.shape == ref.shape == (2, 400)
    assert np.std(ref) > 0.01  # not a degenerate comparison
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_logits_match_in_float64():
    model = reference_x3d("x3d_xs").double()
    x = video().astype(np.float64)
    module, variables = from_torch(state_dict_numpy(model), "pytorchvideo", "x3d_xs")
    variables = to_float64(variables)
    ours = np.asarray(module.apply(variables, channels_last(x)))
    np.testing.assert_allclose(ours, reference_logits(model, x), atol=1e-9, rtol=0)


def test_pyth_file_round_trip_with_class_names(tmp_path):
    torch = require("torch")
    model = reference_x3d("x3d_xs")
    path = tmp_path / "X3D_XS.pyth"
    torch.save({"epoch": 3, "model_state": model.state_dict()}, path)  # pytorchvideo's .pyth layout
    module, from_file = from_torch(path, "pytorchvideo", "x3d_xs")
    _, from_mapping = from_torch(state_dict_numpy(model), "pytorchvideo", "x3d_xs")
    flat = lambda t: {k: v for k, v in _items(t)}  # noqa: E731
    assert flat(from_file).keys() == flat(from_mapping).keys()
    for k, v in flat(from_file).items():
        np.testing.assert_array_equal(v, flat(from_mapping)[k], err_msg=k)
    names = kinetics400_class_names()
    assert len(names) == len(set(names)) == 400 and list(names) == sorted(names)
    assert "playing guitar" in names and module.num_classes == 400


def _items(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _items(v, f"{prefix}{k}/")
        else:
            yield f"{prefix}{k}", v


class Payload:
    """Unpickling this creates ``marker``: a stand-in for arbitrary code in a malicious checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, writer):
    torch = require("torch")
    marker = tmp_path / "payload_ran"
    path = tmp_path / "evil.pt"
    obj = {"model_state": {"blocks.0.conv.conv_t.weight": torch.zeros(1)}, "extra": Payload(marker)}
    if writer == "torch.save":
        torch.save(obj, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f)
    refused = f"{path}: (refused: it needs the Python object|not a PyTorch checkpoint)"
    with pytest.raises(CheckpointError, match=refused):
        from_torch(path, "pytorchvideo", "x3d_xs")
    assert not marker.exists()
    if writer == "pickle.dump":  # the payload is live: plain unpickling does run it
        with open(path, "rb") as f:
            pickle.load(f)
        assert marker.exists()


def test_bad_files_fail_with_one_clear_line(tmp_path):
    require("torch")
    with pytest.raises(CheckpointError, match="no file .*missing.pt"):
        from_torch(tmp_path / "missing.pt", "pytorchvideo", "x3d_s")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match=f"{text}: not a PyTorch checkpoint"):
        from_torch(text, "pytorchvideo", "x3d_s")


def test_key_and_shape_errors_name_the_keys():
    state = state_dict_numpy(reference_x3d("x3d_xs"))
    dropped = dict(state)
    dropped.pop("blocks.2.res_blocks.0.branch2.conv_a.weight")
    missing = r"1 missing keys: blocks\.2\.res_blocks\.0\.branch2\.conv_a\.weight$"
    with pytest.raises(CheckpointError, match=missing):
        from_torch(dropped, "pytorchvideo", "x3d_xs")
    extra = {**state, "blocks.9.extra.weight": np.zeros(3, np.float32)}
    with pytest.raises(CheckpointError, match=r"1 unexpected keys: blocks\.9\.extra\.weight$"):
        from_torch(extra, "pytorchvideo", "x3d_xs")
    wrong = {**state, "blocks.1.res_blocks.0.branch2.conv_b.weight": np.zeros((54, 1, 3, 5, 5), np.float32)}
    shapes = r"conv_b\.weight' has shape \(54, 1, 3, 5, 5\).*needs \(54, 1, 3, 3, 3\)"
    with pytest.raises(CheckpointError, match=shapes):
        from_torch(wrong, "pytorchvideo", "x3d_xs")
    with pytest.raises(CheckpointError, match="another architecture"):
        from_torch(state, "pytorchvideo", "x3d_l")  # X3D-L has more blocks
    with pytest.raises(CheckpointError, match="source 'pytorchvideo' converts into .*not 'r2plus1d_18'"):
        from_torch(state, "pytorchvideo", "r2plus1d_18")
    with pytest.raises(CheckpointError, match="source: expected one of"):
        from_torch(state, "caffe", "x3d_s")
