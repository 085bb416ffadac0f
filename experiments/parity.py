"""Converted models against their PyTorch originals: max |logit difference| in float32 and float64.

    python -m experiments.parity [--input small|reference]

Rows:
- pytorchvideo X3D-XS/S/M/L: the live pytorchvideo model (random weights, random BatchNorm
  statistics) converted with ``cfjax.interop.from_torch``; needs ``torch`` and ``pytorchvideo``
  (``pip install -r requirements-test.txt``). ``--input small`` uses 4 frames at 64 x 64 (what
  the tests use); ``reference`` each model's published input (X3D-L at 16 x 312: slow on a CPU).
- torchvision R(2+1)D-18 and the official Coarse-Fine network: the reference fixtures in
  ``tests/interop/data`` (inputs and outputs of the original code, weights rebuilt from their
  seeded formula), so no torchvision is needed. Run from the repository root.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
from absl import flags

from experiments import cli

X3D_DEPTH = {"x3d_xs": 2.2, "x3d_s": 2.2, "x3d_m": 2.2, "x3d_l": 5.0}  # pytorchvideo hub settings


def pytorchvideo_x3d():
    """``pytorchvideo.models.x3d.create_x3d``, importable without torchvision (which pytorchvideo imports
    only for its detection head, and which does not install beside torch 2.13)."""
    import torch  # noqa: F401  (fails first, with the clearer message)

    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except ImportError:
            stand_in = types.ModuleType("torchvision")
            stand_in.ops = types.ModuleType("torchvision.ops")
            stand_in.ops.RoIAlign = type("RoIAlign", (), {})
            sys.modules["torchvision"], sys.modules["torchvision.ops"] = stand_in, stand_in.ops
    from pytorchvideo.models.x3d import create_x3d

    return create_x3d


def randomise_batch_norm(model, seed: int = 0) -> None:
    """Random BatchNorm affine parameters and running statistics (a fresh BatchNorm is the identity)."""
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


def reference_x3d(name: str, frames: int, crop: int, seed: int = 0):
    """A random-weight pytorchvideo X3D in eval mode whose head returns pre-softmax logits."""
    import torch

    torch.manual_seed(seed)
    model = pytorchvideo_x3d()(
        input_clip_length=frames, input_crop_size=crop, depth_factor=X3D_DEPTH[name], model_num_class=400
    )
    randomise_batch_norm(model, seed)
    model.blocks[-1].activation = None
    return model.eval()


def save_random_x3d(path, name: str = "x3d_xs", seed: int = 0, num_classes: int = 400, **create_x3d_kwargs):
    """Saves a random-weight pytorchvideo X3D as a ``.pyth`` file in the published layout
    (``{"model_state": state_dict}``), for trying the conversion without downloading weights.

    ``create_x3d_kwargs`` override pytorchvideo's ``create_x3d`` arguments (e.g. ``width_factor=0.5,
    depth_factor=0.2, head_dim_out=16, input_crop_size=32`` for a tiny model; convert it with the
    matching ``width_factor`` / ``depth_factor`` / ``head_width``). Needs torch and pytorchvideo.
    """
    import torch

    torch.manual_seed(seed)
    kwargs = {
        "input_clip_length": 4,
        "input_crop_size": 160,
        "depth_factor": X3D_DEPTH[name],
        "model_num_class": num_classes,
        **create_x3d_kwargs,
    }
    model = pytorchvideo_x3d()(**kwargs)
    randomise_batch_norm(model, seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_state": model.state_dict()}, path)
    return path


def to_float64(tree):
    return {k: to_float64(v) for k, v in tree.items()} if isinstance(tree, dict) else np.asarray(tree, np.float64)


def _x3d_rows(size: str) -> list[tuple]:
    import torch

    from cfjax.interop import from_torch
    from cfjax.models import reference_input

    rows = []
    for seed, name in enumerate(X3D_DEPTH):
        frames, crop = (4, 64) if size == "small" else reference_input(name)
        model = reference_x3d(name, frames, crop, seed)
        state = {k: v.numpy() for k, v in model.state_dict().items()}
        module, variables = from_torch(state, "pytorchvideo", name)
        video = np.random.default_rng(0).standard_normal((1, 3, frames, crop, crop)).astype(np.float32)
        diffs = []
        for dtype in (np.float32, np.float64):
            x = video.astype(dtype)
            ref_model = model if dtype == np.float32 else model.double()
            with torch.no_grad():
                ref = ref_model(torch.from_numpy(x)).numpy()
            v = variables if dtype == np.float32 else to_float64(variables)
            diffs.append(float(np.abs(np.asarray(module.apply(v, np.moveaxis(x, 1, -1))) - ref).max()))
        rows.append((f"pytorchvideo {name}", f"{frames}x{crop}", "live", *diffs))
    return rows


def _torchvision_rows() -> list[tuple]:
    import jax

    from cfjax.interop import from_torch
    from tests.interop.test_torchvision import MODELS, load_fixture

    rows = []
    for name in MODELS:
        state, video, logits_f32, logits_f64 = load_fixture(name)
        module, variables = from_torch(state, "torchvision", name)
        apply = jax.jit(module.apply)
        f32 = np.abs(np.asarray(apply(variables, video)) - logits_f32).max()
        f64 = np.abs(np.asarray(apply(to_float64(variables), video.astype(np.float64))) - logits_f64).max()
        rows.append((f"torchvision {name}", f"{video.shape[1]}x{video.shape[2]}", "fixture", float(f32), float(f64)))
    return rows


def _coarse_fine_rows() -> list[tuple]:
    from tests.interop.test_coarse_fine_official import load_case, run

    data, inputs, converted = load_case()
    diffs = [
        float(np.abs(run(converted, inputs, dtype)["logits"] - data[f"logits_{tag}"].transpose(0, 2, 1)).max())
        for dtype, tag in ((np.float32, "f32"), (np.float64, "f64"))
    ]
    shape = data["video_q"].shape
    return [("official coarse_fine", f"{shape[2]}x{shape[3]}", "fixture", *diffs)]


def main(argv) -> int:
    del argv
    import jax

    jax.config.update("jax_enable_x64", True)
    rows = []
    try:
        rows += _x3d_rows(_INPUT.value)
    except ImportError as e:
        print(f"pytorchvideo rows skipped ({e}); pip install -r requirements-test.txt")
    rows += _torchvision_rows()
    rows += _coarse_fine_rows()
    print(f"{'model':<28}{'input':>9}  {'reference':<9}{'max|diff| f32':>15}{'max|diff| f64':>15}")
    for name, size, kind, f32, f64 in rows:
        print(f"{name:<28}{size:>9}  {kind:<9}{f32:>15.2e}{f64:>15.2e}")
    return 0


if __name__ == "__main__":  # the tests import this module's helpers: define the flag only when run
    _INPUT = flags.DEFINE_enum("input", "small", ["small", "reference"], "X3D input size")
    cli.run(main)
