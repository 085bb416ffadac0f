"""The non-local block (CFAD): identity when new, the dense attention formula, exact masking."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from cfjax import ops
from cfjax.layers import NonLocal
from tests.models.util import perturbed_f64, video


class NonLocalTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.block = NonLocal(pool=2)
        self.x = video(0, (2, 4, 4, 4, 6))
        self.variables = self.block.init(jax.random.key(0), self.x, False)

    def test_new_block_is_identity(self):
        chex.assert_trees_all_close(self.block.apply(self.variables, self.x, False), self.x, atol=0)

    def test_attention_matches_dense_formula(self):
        block = NonLocal()  # no pooling: every position attends to every position
        variables = perturbed_f64(block.init(jax.random.key(1), self.x, False), 2)
        p, stats = variables["params"], variables["batch_stats"]["norm"]
        flat = self.x.reshape(2, -1, 6)
        proj = lambda name: flat @ p[name]["kernel"].reshape(6, 3) + p[name]["bias"]  # noqa: E731
        att = jax.nn.softmax(proj("theta") @ jnp.swapaxes(proj("phi"), 1, 2) / np.sqrt(3), axis=-1)
        y = (att @ proj("g")) @ p["out"]["kernel"].reshape(3, 6) + p["out"]["bias"]
        y = (y - stats["mean"]) / jnp.sqrt(stats["var"] + 1e-5) * p["norm"]["scale"] + p["norm"]["bias"]
        expected = (flat + y).reshape(self.x.shape)
        chex.assert_trees_all_close(block.apply(variables, self.x, False), expected, atol=1e-10)

    def test_padded_clip_equals_clip_alone(self):
        variables = perturbed_f64(self.variables, 3)
        mask = ops.lengths_to_mask(jnp.asarray([3]), 4)
        x = jnp.where(mask[:, :, None, None, None], self.x[:1], 1e3)
        for train in (False, True):
            run = lambda x, m: self.block.apply(variables, x, train, m, mutable=["batch_stats"])  # noqa: E731
            (padded, stats_p), (alone, stats_a) = run(x, mask), run(x[:, :3], None)
            chex.assert_trees_all_close((padded[:, :3], stats_p), (alone, stats_a), atol=1e-10)
            self.assertTrue(np.all(np.asarray(padded[:, 3:]) == 0))


if __name__ == "__main__":
    absltest.main()
