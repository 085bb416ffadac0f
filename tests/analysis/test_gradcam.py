"""3D Grad-CAM: the closed form on a linear head, masks, SGS models, default layers."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from cfjax import ops
from cfjax.analysis import grad_cam
from cfjax.models import X3D, ResNet3D, SGSConfig
from tests.models.util import perturbed_f64, video


class ConvPoolLinear(nn.Module):
    """conv (the CAM layer) -> global mean -> dense: the gradient is W_k / (T H W), CAM = relu(A W_k) / max."""

    @nn.compact
    def __call__(self, x, train=False, mask=None):
        a = nn.Conv(4, (1, 3, 3), name="features")(x)
        return nn.Dense(3, name="classifier")(jnp.mean(a, axis=(1, 2, 3)))


class GradCamTest(chex.TestCase):
    def test_closed_form_on_a_linear_head(self):
        model = ConvPoolLinear()
        x = video(0, (2, 3, 5, 5, 2))
        variables = perturbed_f64(model.init(jax.random.key(0), x), 0)
        cam = grad_cam(model, variables, x, [2, 0], layer="features")
        a = nn.Conv(4, (1, 3, 3)).apply({"params": variables["params"]["features"]}, x)
        w = variables["params"]["classifier"]["kernel"]  # [4, 3]
        for b, k in ((0, 2), (1, 0)):
            expected = np.maximum(np.asarray(a[b]) @ np.asarray(w[:, k]), 0)
            np.testing.assert_allclose(cam[b], expected / expected.max(), rtol=1e-9)
        chex.assert_shape(grad_cam(model, variables, x, 1, layer="features", resize=True), (2, 3, 5, 5))

    def test_x3d_padded_equals_alone(self):
        model = X3D(num_classes=4, width_factor=0.5, depth_factor=0.2, head_width=8)
        x = video(1, (2, 6, 32, 32, 3))
        variables = perturbed_f64(jax.jit(model.init)(jax.random.key(0), x), 1)
        mask = ops.lengths_to_mask(jnp.array([6, 3]), 6)
        cam = grad_cam(model, variables, x, 3, mask=mask)
        chex.assert_shape(cam, (2, 6, 1, 1))
        self.assertTrue(np.all((np.asarray(cam) >= 0) & (np.asarray(cam) <= 1 + 1e-12)))
        np.testing.assert_array_equal(cam[1, 3:], 0)
        np.testing.assert_allclose(cam[1, :3], grad_cam(model, variables, x[1:, :3], 3)[0], rtol=1e-8, atol=1e-12)

    def test_sgs_model_and_default_layers(self):
        model = ResNet3D.preset("resnet18", num_classes=4, widths=(8, 8, 8, 8), stem_width=8, depths=(1, 1, 1, 1),
                                sgs=SGSConfig())
        self.assertEqual(model.cam_layer, "res5_0")
        self.assertEqual(X3D().cam_layer, "head_conv")
        x = video(2, (2, 8, 32, 32, 3))
        variables = perturbed_f64(jax.jit(model.init)(jax.random.key(0), x), 2)
        cam = grad_cam(model, variables, x, 1)
        chex.assert_shape(cam, (2, 1, 1, 1))
        chex.assert_tree_all_finite(cam)
        with self.assertRaisesRegex(ValueError, "one call of the submodule 'res9_0'"):
            grad_cam(model, variables, x, 1, layer="res9_0")


if __name__ == "__main__":
    absltest.main()
