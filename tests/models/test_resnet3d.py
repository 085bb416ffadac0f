"""3D ResNets / ResNeXt / R(2+1)D: reference parameter counts, shapes, jit, BN modes, exact masking."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from cfjax import ops
from cfjax.models import ResNet3D
from cfjax.models.resnet3d import r2plus1d_middle
from tests.models.util import count_params, perturbed_f64, video

# Every preset shrunk to a few channels and one block per stage; block types, kernels,
# strides and stems stay those of the preset.
TINY = {
    "resnet18": dict(widths=(8, 8, 16, 16), stem_width=8, depths=(1, 1, 1, 1)),
    "resnet50": dict(widths=(16, 16, 32, 32), inner_widths=(4, 4, 8, 8), stem_width=8, depths=(1, 1, 1, 1)),
    "resnext101": dict(widths=(16, 16, 32, 32), inner_widths=(32, 32, 32, 32), stem_width=8, depths=(1, 1, 1, 1)),
    "r2plus1d_18": dict(widths=(8, 8, 16, 16), stem_width=8, depths=(1, 1, 1, 1)),
    "r2plus1d_50": dict(widths=(16, 16, 32, 32), inner_widths=(4, 4, 8, 8), stem_width=8, depths=(1, 1, 1, 1)),
    "sgs_resnet18": dict(widths=(8, 16, 16, 16), inner_widths=(4, 4, 4, 4), depths=(1, 1, 1, 1)),
}
# Expected (T, H) of res2..res5 for an 8 x 32 x 32 input.
TIME_SPACE = {
    "hara": [(4, 8), (2, 4), (1, 2), (1, 1)],
    "r2plus1d": [(8, 16), (4, 8), (2, 4), (1, 2)],
    "sgs": [(8, 8), (8, 4), (8, 2), (8, 1)],
}


def tiny(name, **kw):
    return ResNet3D.preset(name, num_classes=5, **{**TINY[name], **kw})


class ResNetSizeTest(parameterized.TestCase):
    @parameterized.parameters(
        # torchvision r2plus1d_18 (400 classes) has 31,505,325 parameters.
        ("r2plus1d_18", 31_505_325),
        # torchvision r3d_18 has 33,371,472 with a 3x7x7 stem; Hara's stem is 7x7x7:
        # 33,371,472 - 3*7*7*3*64 + 7*7*7*3*64.
        ("resnet18", 33_371_472 - 28_224 + 65_856),
        # torchvision r3d_18 and mc3_18 (400 classes)
        ("r3d_18", 33_371_472),
        ("mc3_18", 11_695_440),
    )
    def test_parameter_counts_match_reference(self, name, expected):
        model = ResNet3D.preset(name)
        variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 8, 32, 32, 3))))
        self.assertEqual(count_params(variables["params"]), expected)

    @parameterized.parameters(*TINY)
    def test_bfloat16_has_the_float32_parameters_and_computes_in_bfloat16(self, name):
        # a converted checkpoint fills the float32 tree; bfloat16 (TPU) must not add or drop a parameter
        x = jnp.zeros((1, 8, 32, 32, 3))

        def init(dtype):
            return jax.eval_shape(lambda: tiny(name, dtype=dtype).init(jax.random.key(0), x))

        f32, bf16 = init(None), init(jnp.bfloat16)
        chex.assert_trees_all_equal_shapes_and_dtypes(bf16, f32)
        biased = [
            jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(f32["params"]) if "bias" in str(p)
        ]
        self.assertFalse([p for p in biased if "classifier" not in p and "bn" not in p], biased)
        logits = jax.eval_shape(lambda v: tiny(name, dtype=jnp.bfloat16).apply(v, x), bf16)
        self.assertEqual(logits.dtype, jnp.bfloat16)

    def test_r2plus1d_middle_width(self):
        # 64 -> 64 in torchvision's R(2+1)D-18: 27*64*64 // (9*64 + 3*64) = 144
        self.assertEqual(r2plus1d_middle(64, 64), 144)
        self.assertEqual(r2plus1d_middle(3 * 1, 45), (3 * 45 * 27) // (27 + 135))

    def test_resnext_uses_grouped_middle_conv(self):
        model = ResNet3D.preset("resnext101")
        variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 8, 32, 32, 3))))
        # 128 channels in 32 groups: the kernel sees 4 input channels per group
        chex.assert_shape(variables["params"]["res2_0"]["b"]["conv"]["kernel"], (3, 3, 3, 4, 128))

    def test_bad_config_errors(self):
        with self.assertRaisesRegex(ValueError, r"ResNet3D preset: expected one of \["):
            ResNet3D.preset("resnet34")
        with self.assertRaisesRegex(ValueError, r"stem: expected one of"):
            ResNet3D(stem="c3d").init(jax.random.key(0), jnp.zeros((1, 4, 16, 16, 3)))
        with self.assertRaisesRegex(ValueError, r"expected one entry per stage"):
            ResNet3D(depths=(1, 1)).init(jax.random.key(0), jnp.zeros((1, 4, 16, 16, 3)))


class ResNetVariantsTest(parameterized.TestCase):
    @parameterized.parameters(*TINY)
    def test_shapes_jit_and_gradients(self, name):
        model = tiny(name)
        x = video(0, (2, 8, 32, 32, 3))
        variables = model.init(jax.random.key(1), x)
        logits, feats = jax.jit(lambda v, x: model.apply(v, x, return_features=True))(variables, x)
        chex.assert_shape(logits, (2, 5))
        stem = TIME_SPACE[model.stem]
        for s, (t, h) in enumerate(stem):
            chex.assert_shape(feats[f"res{s + 2}"], (2, t, h, h, model.widths[s]))

        def train(params, x):
            logits, updates = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
            return jnp.sum(jax.nn.log_softmax(logits)[:, 0]), (logits, updates)

        (loss, aux), grads = jax.jit(jax.value_and_grad(train, has_aux=True))(variables["params"], x)
        ref_loss, ref_aux = train(variables["params"], x)  # not jitted
        chex.assert_trees_all_close((loss, aux), (ref_loss, ref_aux), atol=1e-9)
        self.assertTrue(all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)))
        first = "stem_xy" if model.stem == "r2plus1d" else "stem_conv"
        self.assertGreater(float(jnp.max(jnp.abs(grads[first]["conv"]["kernel"]))), 0)
        # train mode moved the running statistics
        moved = jax.tree_util.tree_map(
            lambda a, b: jnp.max(jnp.abs(a - b)), aux[1]["batch_stats"], variables["batch_stats"]
        )
        self.assertGreater(max(float(m) for m in jax.tree_util.tree_leaves(moved)), 0)


class ResNetMaskingTest(parameterized.TestCase):
    """A padded clip computes what it computes alone, also through temporal strides (float64)."""

    @parameterized.parameters("resnet18", "r2plus1d_50")
    def test_padded_batch_equals_clips_alone(self, name):
        model = tiny(name)
        lengths = [8, 5, 3]
        mask = ops.lengths_to_mask(jnp.asarray(lengths), 8)
        x = jnp.where(mask[:, :, None, None, None], video(2, (3, 8, 16, 16, 3)), 1e3)
        variables = perturbed_f64(model.init(jax.random.key(3), x), 4)
        evaluate = jax.jit(lambda x, mask: model.apply(variables, x, mask=mask))
        batched = evaluate(x, mask)
        for b, n in enumerate(lengths):
            chex.assert_trees_all_close(batched[b : b + 1], evaluate(x[b : b + 1, :n], None), atol=1e-9)

        def loss(params, x, mask):
            logits, updates = model.apply(
                {**variables, "params": params}, x, train=True, mask=mask, mutable=["batch_stats"]
            )
            return jnp.sum(jnp.sin(logits)), (logits, updates)

        grad = jax.jit(jax.grad(loss, has_aux=True))
        g_pad, aux_pad = grad(variables["params"], x[1:2], mask[1:2])
        g_alone, aux_alone = grad(variables["params"], x[1:2, :5], None)
        chex.assert_trees_all_close(aux_pad, aux_alone, atol=1e-9)
        chex.assert_trees_all_close(g_pad, g_alone, atol=1e-8, rtol=1e-6)


if __name__ == "__main__":
    absltest.main()
