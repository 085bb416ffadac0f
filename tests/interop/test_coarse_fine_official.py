"""The official Coarse-Fine Networks coarse model -> cfjax, against outputs of the original code.

``data/cfn_official_case_seed0.npz`` holds inputs, logits and intermediate arrays of the official
``x3d_coarse`` model (Charades, X3D-M streams, precomputed 7x7 fine features) run unmodified with
weights from a seeded formula (rebuilt by ``seeded.py``); ``data/cfn_official_README.md`` says how
the fixture was made and what each array is. No PyTorch is needed.
"""

import functools
from pathlib import Path

import jax
import numpy as np
import pytest

from cfjax import ops
from cfjax.interop import CheckpointError, convert
from experiments.parity import to_float64
from tests.interop.seeded import CFN_EXTRA_SCALE, read_keys_tsv, seeded_state_dict

DATA = Path(__file__).resolve().parent / "data"
LEVELS = {"layer1": "res2", "layer2": "res3", "layer3": "res4", "layer4": "res5", "conv5": "conv5"}


def load_case():
    """``(reference arrays, (video, fine, fine_mask, fine_offset), Converted)`` of the official fixture."""
    data = dict(np.load(DATA / "cfn_official_case_seed0.npz"))
    video = np.moveaxis(data["video_q"].astype(np.float32) / data["video_scale"], 1, -1)  # [B, T, H, W, 3]
    fine = {
        ours: np.moveaxis(data[f"feat_{k}_q"].astype(np.float32) / data["feat_scale"], 1, -1)
        for k, ours in LEVELS.items()
    }  # [B, Lf, 7, 7, C]
    inputs = (video, fine, data["feat_masks"] > 0, data["meta"][:, 0].astype(np.float32))
    state = seeded_state_dict(read_keys_tsv(DATA / "cfn_official_keys.tsv"), 0, CFN_EXTRA_SCALE)
    return data, inputs, convert(state, "coarse_fine", "coarse_fine")


@pytest.fixture(scope="module")
def case():
    return load_case()


def run(converted, inputs, dtype):
    variables = converted.variables if dtype == np.float32 else to_float64(converted.variables)
    video, fine, mask, offset = inputs
    cast = lambda a: a.astype(dtype)  # noqa: E731
    apply = jax.jit(
        functools.partial(
            converted.module.apply,
            capture_intermediates=lambda module, method: module.name in ("classifier", "gate_filter"),
            mutable=["intermediates"],
        )
    )
    out, state = apply(variables, cast(video), {k: cast(v) for k, v in fine.items()}, mask, cast(offset))
    captured = state["intermediates"]
    gate_bias, gate_scale = captured["fusion"]["gate_filter"]["__call__"][0]
    return {
        "logits": np.asarray(out["logits"]),  # [B, T, 157]
        "grid": np.asarray(out["grid"]),
        "grid_logits": np.asarray(out["grid_logits"]),
        "classifier": np.asarray(captured["classifier"]["__call__"][0]),
        "gate_bias": np.asarray(gate_bias),
        "gate_scale": np.asarray(gate_scale),
    }


@pytest.mark.parametrize("dtype, atol", [(np.float32, 1e-4)])  # float64 (3e-15): python -m experiments.parity
def test_converted_coarse_fine_matches_the_official_outputs(case, dtype, atol):
    data, inputs, converted = case
    assert converted.model_config == {
        "name": "coarse_fine",
        "fine_mode": "precomputed",
        "normalize_over": "all",
        "num_classes": 157,
    }
    assert converted.report == {"used": 574, "accounted": 344, "leaves": 574}  # 918 keys, none left over
    ours = run(converted, inputs, dtype)
    suffix = "_f32" if dtype == np.float32 else "_f64"
    ref = {k: data[k + suffix] for k in ("logits", "gridpool_b", "gauss_GX", "fc2_out", "rw6_a", "rw6_b", "unpool_in")}
    assert ref["logits"].shape == (2, 157, 16) and ours["logits"].shape == (2, 16, 157)
    np.testing.assert_allclose(ours["grid"], ref["gridpool_b"], atol=atol, rtol=0)
    assert np.ptp(np.diff(ref["gridpool_b"], axis=1)) > 0.01  # a non-uniform grid: the temporal path is tested
    weights = ops.gaussian_alignment(ours["grid"], inputs[2], inputs[3].astype(dtype), 16, normalize_over="all")
    np.testing.assert_allclose(np.asarray(weights), ref["gauss_GX"], atol=atol, rtol=0)
    np.testing.assert_allclose(ours["classifier"], ref["fc2_out"], atol=atol, rtol=0)
    np.testing.assert_allclose(ours["gate_bias"], ref["rw6_a"][..., 0, 0].transpose(0, 2, 1), atol=atol, rtol=0)
    np.testing.assert_allclose(
        1 / (1 + np.exp(-ours["gate_scale"])), ref["rw6_b"][..., 0, 0].transpose(0, 2, 1), atol=atol, rtol=0
    )
    np.testing.assert_allclose(ours["grid_logits"], ref["unpool_in"].transpose(0, 2, 1), atol=atol, rtol=0)
    np.testing.assert_allclose(ours["logits"], ref["logits"].transpose(0, 2, 1), atol=atol, rtol=0)


def test_official_fine_and_kinetics_x3d_checkpoints_convert_to_x3d_m():
    fine = seeded_state_dict(read_keys_tsv(DATA / "cfn_official_fine_keys.tsv"), 0)  # fine_charades_*.pt layout
    converted = convert(fine, "coarse_fine", "x3d_m")
    assert converted.model_config == {"name": "x3d_m", "shortcut_norm": "always", "num_classes": 157}
    assert converted.report["used"] + converted.report["accounted"] == len(fine) == 820
    split = dict(fine)  # a SubBatchNorm3d trained with 2 splits: split_bn holds [2 * C] statistics
    mean, var = np.float32([0.1, 0.3]), np.float32([1.0, 2.0])
    split["bn1.split_bn.running_mean"] = np.repeat(mean, 24)
    split["bn1.split_bn.running_var"] = np.repeat(var, 24)
    stats = convert(split, "coarse_fine", "x3d_m").variables["batch_stats"]["stem_t"]["norm"]["bn"]
    np.testing.assert_allclose(stats["mean"], 0.2, rtol=1e-6)  # aggregate_sub_bn_stats: mean of the means,
    np.testing.assert_allclose(stats["var"], 1.5 + 0.01, rtol=1e-6)  # mean of the vars + var of the means
    with pytest.raises(CheckpointError, match="converts into .*not 'x3d_s'"):
        convert(fine, "coarse_fine", "x3d_s")
