"""Experiment configs: every experiment builds at full scale and as ``variant=synthetic``; ``variant=smoke`` trains.

For every ``configs/*.py`` (but ``common.py`` and ``__init__.py``) and every combination of its experiment
arguments (``ARGUMENTS`` but ``variant`` / ``baseline``; tests/train/smoke.py): the full-scale and
synthetic configs build their model and both input transforms, and agree with their
dataset; a few full-scale models have plausible parameter counts (abstract shapes only);
every smoke config is small (the smoke runs themselves: test_smoke_classification.py and
test_smoke_methods.py). Smoke configs that are identical (the same recipe on two real datasets:
the smoke run only sees synthetic data) are trained once; a test checks that they are identical.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cfjax.data.builders import BUILDERS
from cfjax.models import build, non_adaptive
from cfjax.train import tasks
from cfjax.train.optim import lr_multipliers, make_optimizer, make_schedule
from configs import common
from tests.train.smoke import NAMES, SMOKE_GROUPS, get_config


def count_params(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def abstract_params(config, frames=4, crop=32):
    """Parameter shapes of ``config.model`` (``jax.eval_shape``: nothing is computed)."""
    model = build(config.model)
    if config.task == "clip_set":
        args = (jax.ShapeDtypeStruct((1, config.input.num_clips, frames, crop, crop, 3), jnp.float32),)
    elif config.task == "frame_detection":
        args = (
            jax.ShapeDtypeStruct((1, config.model.reduction * 2, crop, crop, 3), jnp.float32),
            jax.ShapeDtypeStruct((1, frames, crop, crop, 3), jnp.float32),
        )
    else:
        args = (jax.ShapeDtypeStruct((1, frames, crop, crop, 3), jnp.float32),)
    return jax.eval_shape(lambda *a: model.init(jax.random.key(0), *a, train=False), *args)["params"]


def test_there_are_configs():
    assert len(NAMES) >= 14, NAMES
    assert not any(name.startswith("common") for name in NAMES)


@pytest.mark.parametrize("variant", [None, "synthetic"])
@pytest.mark.parametrize("name", NAMES)
def test_config_builds(name, variant):
    c = get_config(name, variant and f"variant={variant}")
    model = build(c.model)
    task = tasks.get_task(c)
    for train in (True, False):
        transform = tasks.video_transform(c, train)
        assert transform.train is train
        task.transform(c, train)
    samplings = {"classification": "clip", "clip_set": "clips", "frame_detection": "coarse_fine", "tubes": "resample"}
    assert c.input.sampling == samplings[c.task]
    if variant is None:
        classes = next(d[2] for d in common.DATASETS.values() if d[:2] == (c.data.dataset, c.data.config))
        assert c.data.config in {b.name for b in BUILDERS[c.data.dataset].BUILDER_CONFIGS}  # a builder exists
        assert model.num_classes == classes
        assert c.total_steps == 0 and c.num_epochs > 1  # full scale: epochs over the real split
        assert 0 < c.schedule.warmup_steps
    else:
        assert c.data.dataset == "cfjax_synthetic"
        assert model.num_classes == common.SYNTHETIC_CLASSES
        assert 0 < c.schedule.warmup_steps < c.total_steps
        assert dict(c.data.builder_kwargs) == common.SYNTHETIC_SIZES[c.data.config]  # one dataset per kind
        assert not c.input.flip  # mirroring swaps the synthetic move_left / move_right classes
    if c.task in ("classification", "clip_set"):  # --config.adaptive=False: ATFR without SGS, GCF's mean-fusion head
        baseline = build(non_adaptive(c.model))
        assert (baseline.head == "mean_fusion") if c.task == "clip_set" else (baseline.sgs is None)
    if c.task == "clip_set":  # the gates' weights fix N: training and evaluation must agree
        assert tasks.video_transform(c, False).num_clips == c.input.num_clips
        assert c.loss.sparsity_weight > 0
    if c.task == "frame_detection":
        assert c.input.clip_length % c.model.reduction == 0


def test_unknown_variant_raises():
    for name in NAMES:
        with pytest.raises(ValueError, match="bogus"):
            get_config(name, "variant=bogus")


@pytest.mark.parametrize(
    "name, arg, message",
    [
        ("atfr_x3d", "sise=s", "unknown key 'sise'; expected one of data, size, variant"),
        ("atfr_x3d", "size=q", "size='q'; expected one of xs, s, m, l, xl"),
        ("atfr_x3d", "size=s,size=m", "key 'size' given twice ('s' and 'm')"),
        (
            "atfr_x3d",
            "synthetic",
            "expected key=value (keys: data, size, variant), got 'synthetic'; did you mean variant=synthetic?",
        ),
        ("atfr_resnet", "variant=synthetic", "missing backbone=...; expected one of resnet18, resnet50, r2plus1d50"),
    ],
)
def test_config_argument_errors_are_one_line(name, arg, message):
    with pytest.raises(ValueError, match=f"^{re.escape('config argument: ' + message)}$"):
        get_config(name, arg)


@pytest.mark.parametrize(
    "name, defaults",
    [
        ("atfr_x3d", "size=s,data=kinetics400"),
        ("gcf", "backbone=resnext101,data=kinetics600"),
        ("cfad", "data=ucf101_24"),
    ],
)
def test_config_argument_defaults(name, defaults):
    for variant in (None, "variant=synthetic"):
        assert get_config(name, variant).to_json(sort_keys=True) == get_config(f"{name}:{defaults}", variant).to_json(
            sort_keys=True
        )


@pytest.mark.parametrize(
    "name, low, high",
    [
        # X3D-S (3,794,274 at 400 classes, docs/design.md) plus SGS's small similarity net
        ("atfr_x3d:size=s,data=kinetics400", 3_794_274, 3_794_274 + 2_000),
        ("atfr_x3d:size=s,data=kinetics600", 3_794_274 + 200 * 2049, 3_794_274 + 200 * 2049 + 2_000),
        ("atfr_resnet:backbone=resnet18", 4_000_000, 5_000_000),  # the SGS paper's light 3DResNet-18 (4.4 M)
        ("atfr_resnet:backbone=resnet50", 46_000_000, 47_000_000),  # Hara et al.'s 3D ResNet-50 (46.6 M)
    ],
)
def test_full_scale_param_counts(name, low, high):
    assert low <= count_params(abstract_params(get_config(name))) <= high


def test_gcf_head_size():
    """GCF-Net's head over 3D-ResNeXt-101: 867,940 parameters at D = 240, 0.86 M in the paper (docs/design.md)."""
    params = abstract_params(get_config("gcf:backbone=resnext101,data=kinetics600"), frames=16)
    head = {k: v for k, v in params.items() if k != "backbone"}
    assert count_params(head) == 867_940
    assert 45e6 <= count_params(params["backbone"]) <= 50e6  # Hara et al.'s ResNeXt-101 without classifier


GCF_NAMES = [n for n in NAMES if n.startswith("gcf:")]


@pytest.mark.parametrize(
    "arg, test_clips",
    [
        ("baseline=dclips", 10),
        ("baseline=cclip", 1),
        ("variant=synthetic,baseline=dclips", 8),
        ("variant=smoke,baseline=cclip", 1),
    ],
)
@pytest.mark.parametrize("name", GCF_NAMES)
def test_gcf_paper_baselines(name, arg, test_clips):
    """C-Clip / D-Clips: the GCF config's backbone as a single-clip classifier (classification task, one random
    clip per video), tested on the central clip / N clips, 1 crop, softmax averaged (multi-view); the rest equal."""
    c = get_config(name, arg)
    gcf = get_config(name, arg.split(",")[0] if "," in arg else None)
    assert c.task == "classification" and c.loss.sparsity_weight == 0
    assert c.model.to_dict() == {**gcf.model.backbone.to_dict(), "num_classes": gcf.model.num_classes}
    assert build(c.model).num_classes == gcf.model.num_classes
    assert (c.input.sampling, c.input.clip_length, c.input.stride) == ("clip", gcf.input.clip_length, gcf.input.stride)
    assert "short_video" not in c.input
    assert dict(c.eval_input) == {
        "sampling": "multi_view",
        "num_clips": test_clips,
        "num_crops": 1,
        "short_side": gcf.eval_input.short_side,
    }
    for key in ("data", "optimizer", "schedule", "batch_size", "total_steps", "num_epochs"):
        assert c[key] == gcf[key], key
    train = tasks.get_task(c).transform(c, True)
    assert (train.sampling, train.num_clips, train.train) == ("clip", 1, True)
    assert tasks.get_task(c).transform(c, False).sampling == "multi_view"
    for bad, words in [
        ("baseline=dclips,baseline=cclip", "key 'baseline' given twice"),
        ("variant=synthetic,variant=smoke", "key 'variant' given twice"),
        ("baseline=dclip", "baseline='dclip'; expected one of cclip, dclips"),
    ]:
        with pytest.raises(ValueError, match=f"^config argument: {words}"):
            get_config(name, bad)


def test_coarse_fine_fusion_lr_multiplier_matches():
    c = get_config("coarse_fine")
    params = abstract_params(c, frames=8)
    multipliers = lr_multipliers(params, c.optimizer.lr_multipliers)  # raises if the regex matches nothing
    flat = jax.tree_util.tree_flatten_with_path(multipliers)[0]
    boosted = {"/".join(str(k.key) for k in path) for path, m in flat if m == 10.0}
    assert boosted and all(p.startswith("fusion/") for p in boosted)
    assert not any(p.startswith("fine/") for p in boosted)
    make_optimizer(c.optimizer, make_schedule(c.schedule, 10_000), params)


# ------------------------------------------------------------------------------------ smoke
# The smoke runs themselves are in test_smoke_classification.py and test_smoke_methods.py (two files,
# so the two test workers share them); tests/train/smoke.py groups identical smoke configs.


def test_smoke_groups_cover_every_config():
    assert sorted(name for group in SMOKE_GROUPS for name in group) == NAMES
    for group in SMOKE_GROUPS:  # a group's configs are identical: training its first one tests them all
        assert len({get_config(name, "variant=smoke").to_json(sort_keys=True) for name in group}) == 1


@pytest.mark.parametrize("name", NAMES)
def test_smoke_is_small(name):
    c = get_config(name, "variant=smoke")
    assert c.data.dataset == "cfjax_synthetic"
    assert (c.data.builder_kwargs.num_train, c.data.builder_kwargs.num_test) == (8, 4)
    assert c.total_steps <= 3 and c.eval_every_steps == 0 and c.max_eval_batches == 1 and c.num_plots == 1
    assert c.batch_size % jax.device_count() == 0 and c.eval_batch_size % jax.device_count() == 0
    assert c.input.crop_size <= 32
