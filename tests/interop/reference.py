"""PyTorch for the parity tests: skipped when it is absent, unless CFJAX_REQUIRE_TORCH=1 (CI) makes
that a failure. The reference models themselves are built by ``experiments.parity``."""

import os

import numpy as np
import pytest

from experiments import parity


def require(name: str):
    """Imports ``name``, or skips (fails under CFJAX_REQUIRE_TORCH=1) when it is missing."""
    try:
        return __import__(name)
    except ImportError:
        if os.environ.get("CFJAX_REQUIRE_TORCH") == "1":
            pytest.fail(f"{name} is required here (CFJAX_REQUIRE_TORCH=1): pip install -r requirements-test.txt")
        pytest.skip(f"{name} is not installed")


def pytorchvideo_x3d():
    """``pytorchvideo.models.x3d.create_x3d`` (skips without torch / pytorchvideo)."""
    require("torch")
    try:
        return parity.pytorchvideo_x3d()
    except ImportError:
        require("pytorchvideo")
        raise


def reference_x3d(name: str, frames: int, crop: int, seed: int = 0):
    """A random-weight pytorchvideo X3D returning pre-softmax logits (see ``experiments.parity``)."""
    pytorchvideo_x3d()
    return parity.reference_x3d(name, frames, crop, seed)


randomise_batch_norm = parity.randomise_batch_norm
to_float64 = parity.to_float64


def state_dict_numpy(model) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def channels_last(video: np.ndarray) -> np.ndarray:
    """PyTorch ``[B, C, T, H, W]`` -> cfjax ``[B, T, H, W, C]``."""
    return np.ascontiguousarray(np.moveaxis(video, 1, -1))
