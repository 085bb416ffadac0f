"""Every config loads in all variants, builds its model and transforms; smoke runs train and evaluate."""

import importlib.util
import math
from pathlib import Path

import pytest

from cfjax.models import build
from cfjax.train import loop
from cfjax.train.tasks import get_task, video_transform

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.py") if p.name not in ("common.py", "__init__.py"))
# One smoke run per model family (the other configs share these smoke models and data).
SMOKE = ["atfr_x3d_s_kinetics400.py", "atfr_resnet18_minikinetics.py", "coarse_fine_x3d_m_charades.py",
         "gcf_resnext101_ucf101.py"]


def load(name, variant=None):
    spec = importlib.util.spec_from_file_location(f"config_{name[:-3]}", ROOT / "configs" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)


def test_every_paper_experiment_has_a_config():
    assert len(CONFIGS) == 14 and set(SMOKE) <= set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("variant", [None, "synthetic", "smoke"])
def test_config_builds_model_task_and_transforms(name, variant):
    c = load(name, variant)
    assert build(c.model) is not None
    get_task(c)
    for train in (True, False):
        video_transform(c, train)
    if variant is None:
        assert c.data.dataset != "cfjax_synthetic"
    else:
        assert c.data.dataset == "cfjax_synthetic"


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant"):
        load(CONFIGS[0], "bogus")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke_data")


@pytest.mark.parametrize("name", SMOKE)
def test_smoke_trains_and_evaluates(name, data_dir, tmp_path):
    c = load(name, "smoke")
    c.data.data_dir = str(data_dir)
    scores = loop.train(c, tmp_path, progress=False)
    task = get_task(c)
    assert math.isfinite(scores[task.best_metric])
    evaluated, table = loop.evaluate(c, tmp_path, "best")
    assert evaluated[task.best_metric] == pytest.approx(scores[task.best_metric])
    assert (tmp_path / f"eval_{c.data.eval_split}.json").exists() and table["class"]


@pytest.mark.parametrize("name", CONFIGS)
def test_synthetic_variants_never_flip(name):
    # A flip turns the synthetic "move right" into "move left" under the same label.
    for variant in ("synthetic", "smoke"):
        assert load(name, variant).input.flip is False
