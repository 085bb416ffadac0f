"""Model registry: every zoo name builds, configs reach the model, bad names and keys are explained."""

import jax
import jax.numpy as jnp
import ml_collections
from absl.testing import absltest

from cfjax.models import X3D, ResNet3D, SGSConfig, build, known_models, non_adaptive, reference_input
from tests.models.util import count_params

ZOO = [
    "mc3_18",
    "r2plus1d_18",
    "r2plus1d_50",
    "r3d_18",
    "resnet101",
    "resnet18",
    "resnet50",
    "resnext101",
    "sgs_resnet18",
    "x3d_l",
    "x3d_m",
    "x3d_s",
    "x3d_xl",
    "x3d_xs",
]


class RegistryTest(absltest.TestCase):
    def test_every_zoo_model_builds(self):
        self.assertContainsSubset(ZOO, known_models())
        for name in ZOO:
            model = build({"name": name, "num_classes": 7})
            frames, crop = reference_input(name)
            self.assertGreater(frames * crop, 0)
            v = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 4, 32, 32, 3))))
            self.assertEqual(v["params"]["classifier"]["kernel"].shape[-1], 7, name)

    def test_config_dict_with_sgs_and_dtype(self):
        config = ml_collections.ConfigDict(
            {"name": "x3d_s", "num_classes": 200, "dtype": "bfloat16", "sgs": {"kernel": "kronecker", "buckets": 2}}
        )
        model = build(config)
        self.assertIsInstance(model, X3D)
        self.assertEqual(model.dtype, jnp.bfloat16)
        self.assertEqual(model.sgs, SGSConfig(kernel="kronecker", buckets=2))
        # same shapes as the preset: X3D-S has the X3D-M weights
        shapes = jax.eval_shape(lambda: build({"name": "x3d_m"}).init(jax.random.key(0), jnp.zeros((1, 4, 32, 32, 3))))
        self.assertEqual(count_params(shapes["params"]), 3_794_274)
        self.assertIsInstance(build({"name": "resnet50", "sgs": None}), ResNet3D)

    def test_non_adaptive_baselines(self):
        atfr = ml_collections.ConfigDict({"name": "x3d_s", "num_classes": 8, "sgs": {"buckets": 2}})
        self.assertEqual(non_adaptive(atfr), {"name": "x3d_s", "num_classes": 8, "sgs": None})
        self.assertIsNone(build(non_adaptive(atfr)).sgs)
        gcf = {"name": "gcf_net", "num_classes": 8, "head": "gcf", "backbone": {"name": "resnet18"}}
        self.assertEqual(non_adaptive(gcf), {**gcf, "head": "mean_fusion"})
        for name in ("coarse_fine", "x3d_s"):  # nothing to switch off
            with self.assertRaisesRegex(ValueError, rf"adaptive=False: model '{name}' has no non-adaptive baseline"):
                non_adaptive({"name": name})

    def test_errors_name_the_problem(self):
        with self.assertRaisesRegex(ValueError, r"model.name: unknown model 'x3d_xxl'; known models: .*x3d_xs"):
            build({"name": "x3d_xxl"})
        with self.assertRaisesRegex(ValueError, r"model: resnet18 has no field\(s\) \['num_class'\]"):
            build({"name": "resnet18", "num_class": 10})
        with self.assertRaisesRegex(TypeError, r"model config: expected a mapping"):
            build("x3d_s")
        with self.assertRaisesRegex(ValueError, r"sgs: unknown keys \['stages'\]"):
            build({"name": "x3d_s", "sgs": {"stages": "res2"}})


if __name__ == "__main__":
    absltest.main()
