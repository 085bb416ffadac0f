"""3D Grad-CAM: the closed form on a linear head, masks, SGS models, default layers; GCF-Net's gated clips."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from cfjax import ops
from cfjax.analysis import gated_clip_cam, grad_cam
from cfjax.models import X3D, GCFNet, ResNet3D, SGSConfig
from tests.models.util import perturbed_f64, video


class ConvPoolLinear(nn.Module):
    """conv (the CAM layer) -> global mean -> dense: the gradient is W_k / (T H W), CAM = relu(A W_k) / max."""

    @nn.compact
    def __call__(self, x, train=False, mask=None):
        a = nn.Conv(4, (1, 3, 3), name="features")(x)
        return nn.Dense(3, name="classifier")(jnp.mean(a, axis=(1, 2, 3)))


class ClipConv(nn.Module):
    """A clip feature extractor (``num_classes = 0``): one conv (the CAM layer), global mean -> ``[B, 4]``."""

    num_classes: int = 0
    cam_layer: str = "features"

    @nn.compact
    def __call__(self, x, train=False, mask=None):
        return jnp.mean(nn.Conv(4, (1, 3, 3), name="features")(x), axis=(1, 2, 3))


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


class GatedClipCamTest(chex.TestCase):
    """GCF-Net's localisation: Grad-CAM maps only on clips whose gate exceeds 0.5, equal to the closed form
    (conv -> mean: dScore/dA_n = g_n / (T H W) with g_n the gradient at clip n's descriptor)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = GCFNet(num_classes=3, backbone=ClipConv(), dim=6)
        cls.clips = video(3, (2, 5, 2, 6, 6, 3))
        cls.mask = ops.lengths_to_mask(jnp.array([5, 4]), 5)
        cls.variables = perturbed_f64(jax.jit(cls.model.init)(jax.random.key(0), cls.clips, cls.mask), 3)

    def with_gate_logits(self, logits):
        """Gates = sigmoid(logits) whatever the clips (W2 = 0)."""
        params = dict(self.variables["params"])
        params["gates"] = {**params["gates"], "w2": jnp.zeros((5, 5)), "b2": jnp.asarray(logits, jnp.float64)}
        return {**self.variables, "params": params}

    def test_maps_only_for_gated_clips_closed_form(self):
        variables = self.with_gate_logits([2.0, -2.0, 3.0, -1.0, 0.5])  # gates 0.88 0.12 0.95 0.27 0.62
        out = gated_clip_cam(self.model, variables, self.clips, self.mask)
        selected = np.array([[1, 0, 1, 0, 1], [1, 0, 1, 0, 0]], bool)  # video 1: clip 4 is masked
        np.testing.assert_array_equal(out["selected"], selected)
        np.testing.assert_array_equal(out["shown"], selected)
        conv = nn.Conv(4, (1, 3, 3))
        a = conv.apply({"params": variables["params"]["backbone"]["features"]}, self.clips.reshape((10, 2, 6, 6, 3)))
        a = a.reshape((2, 5) + a.shape[1:])
        head = self.model.clone(backbone=None)
        head_vars = {"params": {k: v for k, v in variables["params"].items() if k != "backbone"}}

        def score(x):
            logits = head.apply(head_vars, x, self.mask)["logits"]
            return jnp.sum(jnp.take_along_axis(logits, out["class_index"][:, None], axis=1))

        g = jax.grad(score)(jnp.mean(a, axis=(2, 3, 4)))
        cam = np.maximum(np.einsum("bnthwc,bnc->bnthw", a, g), 0)
        cam = cam / (cam.max(axis=(2, 3, 4), keepdims=True) + 1e-12) * selected[:, :, None, None, None]
        np.testing.assert_allclose(out["cams"], cam, rtol=1e-8, atol=1e-12)
        np.testing.assert_array_equal(out["class_index"], np.argmax(out["logits"], -1))

    def test_no_clip_passes(self):
        variables = self.with_gate_logits([-3.0, -1.0, -2.0, -0.5, -4.0])  # top valid gate: clip 3
        top = gated_clip_cam(self.model, variables, self.clips, self.mask, class_index=1, top_if_none=True, resize=True)
        self.assertFalse(np.any(top["selected"]))
        np.testing.assert_array_equal(top["shown"], np.eye(5, dtype=bool)[[3, 3]])  # only with top_if_none
        np.testing.assert_array_equal(top["class_index"], [1, 1])
        chex.assert_shape(top["cams"], (2, 5, 2, 6, 6))
        self.assertFalse(np.any(top["cams"][:, [0, 1, 2, 4]]))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "^model: expected a GCFNet with a backbone"):
            gated_clip_cam(self.model.clone(gating=False), self.variables, self.clips)
        with self.assertRaisesRegex(ValueError, r"^clips: expected \[B, N, T, H, W, C\]"):
            gated_clip_cam(self.model, self.variables, self.clips[0])


if __name__ == "__main__":
    absltest.main()
