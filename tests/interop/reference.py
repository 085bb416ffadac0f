"""Reference PyTorch models for the parity tests. PyTorch is skipped when absent, unless CFJAX_REQUIRE_TORCH=1 (CI) makes
that a failure. pytorchvideo imports torchvision only for its detection head; a stand-in module
lets its X3D import without torchvision (which does not install beside torch 2.13)."""

import os
import sys
import types

import numpy as np
import pytest


def require(name: str):
    """Imports ``name``, or skips (fails under CFJAX_REQUIRE_TORCH=1) when it is missing."""
    try:
        return __import__(name)
    except ImportError:
        if os.environ.get("CFJAX_REQUIRE_TORCH") == "1":
            pytest.fail(f"{name} is required here (CFJAX_REQUIRE_TORCH=1): pip install -r requirements-test.txt")
        pytest.skip(f"{name} is not installed")


def pytorchvideo_x3d():
    """``pytorchvideo.models.x3d.create_x3d``, importable without torchvision."""
    require("torch")
    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except ImportError:
            stand_in = types.ModuleType("torchvision")
            stand_in.ops = types.ModuleType("torchvision.ops")
            stand_in.ops.RoIAlign = type("RoIAlign", (), {})  # only pytorchvideo's detection head uses it
            sys.modules["torchvision"], sys.modules["torchvision.ops"] = stand_in, stand_in.ops
    require("pytorchvideo")
    from pytorchvideo.models.x3d import create_x3d

    return create_x3d


def randomise_batch_norm(model, seed: int = 0) -> None:
    """Random affine parameters and running statistics, so that BatchNorm is not the identity."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=gen) * 0.4 + 0.8)
                module.bias.copy_(torch.randn(c, generator=gen) * 0.05)
                module.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=gen) * 0.4 + 0.8)


def state_dict_numpy(model) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def channels_last(video: np.ndarray) -> np.ndarray:
    """PyTorch ``[B, C, T, H, W]`` -> cfjax ``[B, T, H, W, C]``."""
    return np.ascontiguousarray(np.moveaxis(video, 1, -1))
