"""``python -m experiments.benchmark --what models``: every model of the default list has an input and builds.

Nothing is initialised or timed (the full run is minutes per model on a CPU).
"""

from cfjax.models import CFAD, build, known_models, reference_input
from configs import cfad
from experiments import benchmark


def test_default_models_have_reference_inputs_and_build():
    names = benchmark.default_models()
    assert "cfad" in names and "x3d_s" in names and not {"coarse_fine", "gcf_net"} & set(names)
    assert set(names) <= set(known_models())
    for name in names:
        for size in ("reference", "small"):
            shape = benchmark._model_input(name, size)
            assert len(shape) == 5 and shape[0] == 1 and shape[-1] == 3 and min(shape) > 0, (name, size, shape)
        model = build(benchmark._model_config(name))
        if isinstance(model, CFAD):
            assert model.backbone is not None, "CFAD needs a backbone to run"


def test_cfad_reference_input_is_its_ucf101_24_config():
    c = cfad.get_config("data=ucf101_24")
    assert reference_input("cfad") == (c.input.clip_length, c.input.crop_size) == (96, 224)
    assert benchmark._model_config("cfad") == c.model.to_dict()
