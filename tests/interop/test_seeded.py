"""seeded.py rebuilds the deterministic weights of the reference fixtures (numpy only)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.interop.seeded import (
    CFN_EXTRA_SCALE,
    init_rule,
    parse_shape,
    read_keys_tsv,
    seeded_state_dict,
    seeded_tensor,
)

DATA = Path(__file__).resolve().parent / "data"
CFN_KEYS = DATA / "cfn_official_keys.tsv"
CFN_FINE_KEYS = DATA / "cfn_official_fine_keys.tsv"
TV_KEYS = DATA / "torchvision_r2plus1d_18_keys.tsv"
TV_NPZ = DATA / "torchvision_r2plus1d_18.npz"


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _check_against_table(path, extra_scale=None):
    """Every generated tensor has the table's shape, dtype, init rule, float64 sum and first value."""
    rows = _rows(path)
    entries = read_keys_tsv(path)
    sd = seeded_state_dict(entries, seed=0, extra_scale=extra_scale)
    assert list(sd) == [r["key"] for r in rows]
    for row, (key, shape, dtype, module_class) in zip(rows, entries):
        a = sd[key]
        assert a.shape == shape and a.dtype == np.dtype(dtype), key
        scale = (extra_scale or {}).get(key)
        rule = init_rule(key, shape, module_class) + (f"*{scale:g}" if scale else "") + " [seed 0]"
        assert row["init_rule"] == rule, key
        total = float(a.astype(np.float64).sum())
        np.testing.assert_allclose(total, float(row["sum_f64"]), rtol=1e-9, atol=1e-12, err_msg=key)
        first = float(a.reshape(-1)[0])
        np.testing.assert_allclose(first, float(row["first"]), rtol=1e-8, atol=1e-12, err_msg=key)
    return rows, entries, sd


def test_cfn_official_weights_match_reference_table():
    rows, entries, sd = _check_against_table(CFN_KEYS, extra_scale=CFN_EXTRA_SCALE)
    assert len(entries) == 918
    assert {e[3] for e in entries} == {
        "Conv1d", "Conv3d", "Linear", "SubBatchNorm3d", "SubBatchNorm3d.bn", "SubBatchNorm3d.split_bn"
    }
    # The exception really is applied (without it the sum would be 20x smaller).
    w = sd["pool_1.conv3.weight"].astype(np.float64)
    assert w.shape == (1, 24, 1, 3, 3) and 10 < w.std() * np.sqrt(216) < 40


def test_cfn_official_extra_scale_is_needed():
    entries = read_keys_tsv(CFN_KEYS)
    plain = seeded_state_dict(entries)["pool_1.conv3.weight"]
    scaled = seeded_state_dict(entries, extra_scale=CFN_EXTRA_SCALE)["pool_1.conv3.weight"]
    np.testing.assert_allclose(scaled, plain * np.float32(20), rtol=1e-6)


def test_cfn_fine_keys_are_coarse_keys_without_fusion_modules():
    fine = read_keys_tsv(CFN_FINE_KEYS)
    coarse = read_keys_tsv(CFN_KEYS)
    fusion = ("pool_1.", "rw2.", "rw3.", "rw4.", "rw5.", "rw6.", "mix2.", "mix3.", "mix4.", "mix5.")
    assert len(fine) == 820
    assert [e[:3] for e in fine] == [e[:3] for e in coarse if not e[0].startswith(fusion)]


def test_torchvision_weights_match_fixture_table():
    rows, entries, sd = _check_against_table(TV_KEYS)
    assert len(entries) == 224
    assert {e[3] for e in entries} == {"Conv3d", "BatchNorm3d", "Linear"}
    assert sd["fc.weight"].shape == (400, 512)
    assert sd["stem.1.num_batches_tracked"].dtype == np.int64


def test_torchvision_fixture_npz_is_consistent():
    with np.load(TV_NPZ) as d:
        z = {k: d[k] for k in d.files}
    info = json.loads(str(z["info"]))
    assert info["torch"].startswith("2.14.1") and info["torchvision"].startswith("0.29.1")
    entries = read_keys_tsv(TV_KEYS)
    assert list(z["keys"]) == [e[0] for e in entries]
    assert [parse_shape(s) for s in z["shapes"]] == [e[1] for e in entries]
    assert list(z["dtypes"]) == [e[2] for e in entries]
    assert list(z["kinds"]) == [e[3] for e in entries]
    assert int(z["seed"]) == 0 and float(z["video_scale"]) == 4.0
    # The input rebuilds from the seed.
    expect = np.random.default_rng([0, 10000]).standard_normal((2, 3, 8, 32, 32))
    np.testing.assert_array_equal(z["video_q"], np.clip(np.rint(expect * 4), -127, 127).astype(np.int8))
    assert z["logits_f32"].shape == (2, 400) and z["logits_f32"].dtype == np.float32
    assert z["logits_f64"].shape == (2, 400) and z["logits_f64"].dtype == np.float64
    np.testing.assert_allclose(z["logits_f32"], z["logits_f64"], atol=1e-5)
    assert 0.05 < z["logits_f64"].std() < 10  # not degenerate


def test_parse_shape():
    assert parse_shape("24x3x1x3x3") == (24, 3, 1, 3, 3)
    assert parse_shape("157") == (157,)
    assert parse_shape("scalar") == ()


def test_formula_by_hand():
    rng = np.random.default_rng([7, 3])
    expect = (rng.standard_normal((4, 2, 3)) * np.sqrt(1 / 6)).astype(np.float32)
    np.testing.assert_array_equal(seeded_tensor(3, "a.weight", (4, 2, 3), "float32", "Conv1d", seed=7), expect)
    expect = np.random.default_rng([0, 1]).uniform(0.8, 1.2, (5,)).astype(np.float32)
    np.testing.assert_array_equal(seeded_tensor(1, "bn.running_var", (5,), "float32", "BatchNorm3d"), expect)
    nbt = seeded_tensor(2, "bn.num_batches_tracked", (), "int64", "BatchNorm3d")
    assert nbt.dtype == np.int64 and nbt.shape == () and nbt == 0


def test_errors():
    with pytest.raises(ValueError, match="no seeded init rule"):
        seeded_state_dict([("ln.weight", (4,), "float32", "LayerNorm")])
    with pytest.raises(ValueError, match="not in entries"):
        seeded_state_dict([("c.weight", (2, 2), "float32", "Linear")], extra_scale={"x.weight": 2.0})
    with pytest.raises(ValueError, match="duplicate"):
        seeded_state_dict([("c.bias", (2,), "float32", "Linear")] * 2)
