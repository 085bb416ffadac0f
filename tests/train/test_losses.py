"""Losses: hand-computed values, masking, gradients."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from jax.test_util import check_grads

from cfjax import ops
from cfjax.train import charades_loss, gcf_loss, softmax_cross_entropy, tasks
from cfjax.train.config import base_config


def bce(z, y):
    return -(y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))


class SoftmaxCrossEntropyTest(chex.TestCase):
    def test_hand_values(self):
        logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]], jnp.float64)
        labels = jnp.array([0, 2])
        logz = np.log(np.exp(2) + 1 + np.exp(-1))
        expected = ((logz - 2.0) + np.log(3.0)) / 2
        np.testing.assert_allclose(softmax_cross_entropy(logits, labels), expected, rtol=1e-12)
        one_hot = jax.nn.one_hot(labels, 3, dtype=jnp.float64)
        np.testing.assert_allclose(softmax_cross_entropy(logits, one_hot), expected, rtol=1e-12)
        # smoothing eps: targets (1 - eps) y + eps / K
        eps = 0.3
        log_p = np.asarray(jax.nn.log_softmax(logits))
        targets = (1 - eps) * np.asarray(one_hot) + eps / 3
        expected = -np.mean(np.sum(targets * log_p, axis=1))
        np.testing.assert_allclose(softmax_cross_entropy(logits, labels, eps), expected, rtol=1e-12)
        np.testing.assert_allclose(softmax_cross_entropy(logits, one_hot, eps), expected, rtol=1e-12)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"labels: expected \[B\] = \(2,\)"):
            softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((3,), jnp.int32))
        with self.assertRaisesRegex(ValueError, r"logits: expected \[B, K\]"):
            softmax_cross_entropy(jnp.zeros((2, 3, 1)), jnp.zeros((2,), jnp.int32))


class CharadesLossTest(chex.TestCase):
    def test_hand_value(self):
        # one video, 3 frames of which 2 valid, 2 classes
        logits = np.array([[[1.0, -2.0], [3.0, 0.5], [9.0, 9.0]]])
        labels = np.array([[[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]])
        mask = np.array([[True, True, False]])
        video = (bce(3.0, 1.0) + bce(0.5, 1.0)) / 2  # max over valid frames: logits (3, 0.5), labels (1, 1)
        frames = (bce(1.0, 0) + bce(-2.0, 1) + bce(3.0, 1) + bce(0.5, 0)) / 4
        got = charades_loss(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(mask))
        np.testing.assert_allclose(got, 0.5 * (video + frames), rtol=1e-12)

    def test_padding_is_ignored_and_gradients(self):
        key = jax.random.split(jax.random.key(0), 2)
        logits = jax.random.normal(key[0], (3, 6, 4), jnp.float64)
        labels = (jax.random.uniform(key[1], (3, 6, 4)) > 0.6).astype(jnp.float64)
        mask = ops.lengths_to_mask(jnp.array([6, 4, 1]), 6)
        loss = charades_loss(logits, labels, mask)
        garbage = jnp.where(mask[..., None], logits, 50.0)
        np.testing.assert_allclose(charades_loss(garbage, jnp.where(mask[..., None], labels, 1.0), mask), loss,
                                   rtol=1e-12)
        grads = jax.grad(charades_loss)(logits, labels, mask)
        np.testing.assert_array_equal(np.asarray(grads)[~np.asarray(mask)], 0)
        check_grads(jax.jit(lambda z: charades_loss(z, labels, mask)), (logits,), order=1, modes=["rev"])
        np.testing.assert_allclose(charades_loss(logits, labels), charades_loss(logits, labels, jnp.ones((3, 6), bool)))

    def test_shape_error(self):
        with self.assertRaisesRegex(ValueError, r"expected equal shapes \[B, T, C\]"):
            charades_loss(jnp.zeros((2, 3, 4)), jnp.zeros((2, 3)))


class GCFLossTest(chex.TestCase):
    def test_cross_entropy_plus_weighted_l1(self):
        logits = jnp.array([[1.0, 0.0], [0.0, 2.0]], jnp.float64)
        labels = jnp.array([1, 1])
        gates = jnp.array([[0.2, 0.9, 0.4], [0.5, 0.7, 0.1]], jnp.float64)
        mask = ops.lengths_to_mask(jnp.array([3, 2]), 3)
        expected = softmax_cross_entropy(logits, labels) + 0.01 * ((0.2 + 0.9 + 0.4) + (0.5 + 0.7)) / 2
        np.testing.assert_allclose(gcf_loss(logits, labels, gates, 0.01, mask), expected, rtol=1e-12)

    def test_eval_loss_is_the_training_objective_per_video(self):
        """The clip-set task's eval ``loss`` (what schedule "plateau" watches): CE + lambda * L1 of the valid gates."""
        config = base_config()
        config.task, config.loss.sparsity_weight, config.loss.label_smoothing = "clip_set", 0.5, 0.1
        task = tasks.get_task(config)
        logits = jnp.array([[1.0, 0.0], [0.0, 2.0]], jnp.float32)
        gates = jnp.array([[0.2, 0.9, 0.4], [0.5, 0.7, 0.1]], jnp.float32)
        batch = {"label": jnp.array([1, 1]), "clip_mask": ops.lengths_to_mask(jnp.array([3, 2]), 3)}
        out = jax.device_get(task.eval_outputs({"logits": logits, "gates": gates}, batch))
        ce = [np.log1p(np.e), np.log1p(np.exp(-2.0))]  # -log softmax of the label; no label smoothing
        np.testing.assert_allclose(out["loss"], [ce[0] + 0.5 * 1.5, ce[1] + 0.5 * 1.2], rtol=1e-6)
        metrics, _ = task.eval_metrics(out, ["a", "b"])
        np.testing.assert_allclose(metrics["loss"], np.mean(out["loss"]), rtol=1e-6)

    def test_classification_eval_loss_scores_the_mean_of_the_views(self):
        task = tasks.get_task(base_config())
        logits = jnp.array([[[2.0, 0.0], [0.0, 0.0]]], jnp.float32)  # one video, two views
        out = task.eval_outputs({"logits": logits}, {"label": jnp.array([0])})
        p = (np.exp(2) / (np.exp(2) + 1) + 0.5) / 2
        np.testing.assert_allclose(out["loss"], [-np.log(p)], rtol=1e-6)


if __name__ == "__main__":
    absltest.main()
