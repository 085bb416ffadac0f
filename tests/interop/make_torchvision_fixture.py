"""Build tests/interop/data/torchvision_{r2plus1d_18,r3d_18,mc3_18}.npz: torchvision video ResNet references.

Run once, by hand, with torch 2.14.1 and torchvision 0.29.1 in a separate virtualenv
(torchvision must not go into the project venv). CI does not run this script; the tests
read only the files it writes:

    python3.11 -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
    /tmp/tvenv/bin/python tests/interop/make_torchvision_fixture.py [r2plus1d_18 r3d_18 mc3_18]

For each model named (default: all three) it builds ``torchvision.models.video.NAME(weights=None)``
(400 classes), sets every
state-dict entry from a numpy formula (the one in tests/interop/seeded.py and in
tests/interop/data/cfn_official_README.md; it is written out again here so that the
fixture and seeded.py check each other), switches to eval mode and records the logits of a
small quantised random clip in float32 and float64.

Outputs (tests/interop/data/):
* torchvision_NAME.npz: video_q (int8, B,C,T,H,W), video_scale (video = video_q / scale),
  logits_f32, logits_f64 (B,400), pooled_f32, pooled_f64 (B,512; the avgpool output before fc),
  seed, keys, shapes ("AxBxC" / "scalar"), dtypes, kinds (module class), init_rules, sum_f64 and
  first (float64 sum and first value of each generated tensor), info (JSON: versions, settings).
* torchvision_NAME_keys.tsv: the same key table, human-readable.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision.models import video as video_models

SEED = 0
INPUT_SHAPE = (2, 3, 8, 32, 32)  # B, C, T, H, W
VIDEO_SCALE = 4.0
OUT_DIR = Path(__file__).resolve().parent / "data"
MODELS = ("r2plus1d_18", "r3d_18", "mc3_18")


def module_classes(model: torch.nn.Module) -> dict[str, str]:
    """state-dict key -> class name of the torch.nn module that owns it (torchvision's Conv3DSimple and
    Conv3DNoTemporal are their base class, Conv3d)."""
    owner = {}
    for mod_name, mod in model.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        kind = next(c.__name__ for c in type(mod).__mro__ if c.__module__.startswith("torch.nn"))
        for name, _ in [*mod.named_parameters(recurse=False), *mod.named_buffers(recurse=False)]:
            owner[prefix + name] = kind
    return owner


def make_value(i: int, key: str, shape: tuple[int, ...], kind: str) -> tuple[np.ndarray, str]:
    """The seed-SEED tensor for key number i, and a description of its rule."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.zeros(shape, np.int64), "zero(int64)"
    rng = np.random.default_rng([SEED, i])
    if kind in ("Conv3d", "Linear") and leaf == "weight":
        fan_in = int(np.prod(shape[1:]))
        value, rule = rng.standard_normal(shape) * np.sqrt(1.0 / fan_in), f"normal*sqrt(1/{fan_in})"
    elif kind in ("Conv3d", "Linear") and leaf == "bias":
        value, rule = rng.standard_normal(shape) * 0.02, "normal*0.02"
    elif kind == "BatchNorm3d" and leaf in ("weight", "running_var"):
        value, rule = rng.uniform(0.8, 1.2, shape), "uniform(0.8,1.2)"
    elif kind == "BatchNorm3d" and leaf == "bias":
        value, rule = rng.standard_normal(shape) * 0.05, "normal*0.05"
    elif kind == "BatchNorm3d" and leaf == "running_mean":
        value, rule = rng.standard_normal(shape) * 0.1, "normal*0.1"
    else:
        raise ValueError(f"no rule for {key} ({kind})")
    return value.astype(np.float32), rule


def make_fixture(model_name: str) -> None:
    t0 = time.time()
    model = getattr(video_models, model_name)(weights=None, num_classes=400)
    owner = module_classes(model)
    sd = model.state_dict()

    rows, new_sd = [], {}
    for i, (key, tensor) in enumerate(sd.items()):
        shape = tuple(tensor.shape)
        kind = owner[key]
        value, rule = make_value(i, key, shape, kind)
        assert str(value.dtype) == str(tensor.dtype).removeprefix("torch."), (key, value.dtype, tensor.dtype)
        new_sd[key] = torch.from_numpy(value)
        rows.append(
            dict(
                index=i,
                key=key,
                shape="x".join(map(str, shape)) or "scalar",
                dtype=str(value.dtype),
                module_class=kind,
                init_rule=f"{rule} [seed {SEED}]",
                sum_f64=float(value.astype(np.float64).sum()),
                first=float(value.reshape(-1)[0]),
            )
        )
    model.load_state_dict(new_sd, strict=True)
    model.eval()
    # Every entry was replaced: check that nothing kept its torchvision init.
    for key, tensor in model.state_dict().items():
        assert np.array_equal(tensor.numpy(), new_sd[key].numpy()), key

    z = np.random.default_rng([SEED, 10000]).standard_normal(INPUT_SHAPE)
    video_q = np.clip(np.rint(z * VIDEO_SCALE), -127, 127).astype(np.int8)
    video = video_q.astype(np.float64) / VIDEO_SCALE  # exact in float32 as well

    pooled = {}
    model.avgpool.register_forward_hook(lambda m, a, out: pooled.__setitem__("x", out.flatten(1).detach().numpy()))
    with torch.no_grad():
        logits_f32 = model(torch.from_numpy(video.astype(np.float32))).numpy()
        pooled_f32 = pooled["x"]
        model.double()
        logits_f64 = model(torch.from_numpy(video)).numpy()
        pooled_f64 = pooled["x"]
    assert logits_f32.dtype == np.float32 and logits_f64.dtype == np.float64

    diff = float(np.abs(logits_f32 - logits_f64).max())
    stats = dict(
        logits_std=float(logits_f64.std()),
        logits_absmax=float(np.abs(logits_f64).max()),
        logits_std_over_classes=[float(s) for s in logits_f64.std(axis=1)],
        logits_std_between_samples=float((logits_f64[0] - logits_f64[1]).std()),
        pooled_mean=float(pooled_f64.mean()),
        pooled_std=float(pooled_f64.std()),
        pooled_frac_zero=float((pooled_f64 == 0).mean()),
        max_abs_diff_f32_f64=diff,
    )
    info = dict(
        model=f"torchvision.models.video.{model_name}(weights=None, num_classes=400)",
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        numpy=np.__version__,
        python=platform.python_version(),
        seed=SEED,
        input_shape=list(INPUT_SHAPE),
        video_scale=VIDEO_SCALE,
        input_rule="z=default_rng([seed,10000]).standard_normal(input_shape); "
        "video_q=clip(rint(z*4),-127,127).astype(int8); video=video_q/4",
        weight_rule="tests/interop/seeded.py (key index i: default_rng([seed,i]), float64 draws cast to float32)",
        eval_mode=True,
        torch_threads=1,
        n_keys=len(rows),
        stats=stats,
        generator="tests/interop/make_torchvision_fixture.py",
    )

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out_name = f"torchvision_{model_name}"
    np.savez_compressed(
        OUT_DIR / f"{out_name}.npz",
        video_q=video_q,
        video_scale=np.float64(VIDEO_SCALE),
        logits_f32=logits_f32,
        logits_f64=logits_f64,
        pooled_f32=pooled_f32,
        pooled_f64=pooled_f64,
        seed=np.int64(SEED),
        keys=np.array([r["key"] for r in rows]),
        shapes=np.array([r["shape"] for r in rows]),
        dtypes=np.array([r["dtype"] for r in rows]),
        kinds=np.array([r["module_class"] for r in rows]),
        init_rules=np.array([r["init_rule"] for r in rows]),
        sum_f64=np.array([r["sum_f64"] for r in rows]),
        first=np.array([r["first"] for r in rows]),
        info=np.array(json.dumps(info, sort_keys=True)),
    )
    cols = ["index", "key", "shape", "dtype", "module_class", "init_rule", "sum_f64", "first"]
    with open(OUT_DIR / f"{out_name}_keys.tsv", "w") as f:
        f.write("\t".join(cols) + "\n")
        for r in rows:
            r = dict(r, sum_f64=repr(r["sum_f64"]), first=f"{r['first']:.9g}")
            f.write("\t".join(str(r[c]) for c in cols) + "\n")

    print(json.dumps(stats, indent=1))
    print(f"{model_name}: logits f32 shape {logits_f32.shape}; max |f32 - f64| = {diff:.3g}; {time.time() - t0:.1f}s")
    if not (0.05 < stats["logits_std"] < 100) or not np.isfinite(logits_f64).all():
        print("WARNING: logits look degenerate", file=sys.stderr)


def main() -> None:
    torch.set_num_threads(1)
    names = sys.argv[1:] or MODELS
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        sys.exit(f"models: expected some of {MODELS}, got {unknown}")
    for name in names:
        make_fixture(name)


if __name__ == "__main__":
    main()
