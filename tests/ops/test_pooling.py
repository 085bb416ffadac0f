"""Adaptive average and max pooling: PyTorch's bins, for shrinking, growing and mixed sizes."""

import hypothesis.strategies as st
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from hypothesis import given

from cfjax import ops


def reference(x, size, reduce=np.mean):
    """Loops over PyTorch's adaptive bins."""
    height, width = x.shape[-3:-1]
    out = np.zeros(x.shape[:-3] + tuple(size) + x.shape[-1:])
    for i in range(size[0]):
        r0, r1 = (i * height) // size[0], -(-((i + 1) * height) // size[0])
        for j in range(size[1]):
            c0, c1 = (j * width) // size[1], -(-((j + 1) * width) // size[1])
            out[..., i, j, :] = reduce(x[..., r0:r1, c0:c1, :], axis=(-3, -2))
    return out


class AdaptivePoolTest(absltest.TestCase):
    @given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 12), st.integers(1, 12))
    def test_matches_the_bins(self, height, width, h, w):
        x = np.random.default_rng(height * 100 + width).standard_normal((2, 3, height, width, 4))
        np.testing.assert_allclose(ops.adaptive_average_pool(jnp.asarray(x), (h, w)), reference(x, (h, w)),
                                   rtol=1e-12, atol=1e-12)

    @given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 12), st.integers(1, 12))
    def test_max_matches_the_bins(self, height, width, h, w):
        x = np.random.default_rng(height * 100 + width).standard_normal((2, 3, height, width, 4))
        np.testing.assert_array_equal(ops.adaptive_max_pool(jnp.asarray(x), (h, w)), reference(x, (h, w), np.max))

    def test_max_after_repeating_equals_max(self):
        # the official fusion resizes 7x7 fine maps to 56 (x8 repeat) before pooling to the coarse size
        x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 7, 7, 2)))
        for size in [(40, 40), (20, 20), (10, 10), (5, 5), (78, 39), (3, 7)]:
            np.testing.assert_array_equal(ops.adaptive_max_pool(ops.adaptive_max_pool(x, (56, 56)), size),
                                          ops.adaptive_max_pool(x, size))

    def test_known_values(self):
        x = jnp.arange(16.0).reshape(1, 4, 4, 1)
        np.testing.assert_allclose(ops.adaptive_average_pool(x, (2, 2))[0, ..., 0], [[2.5, 4.5], [10.5, 12.5]])
        np.testing.assert_allclose(ops.adaptive_average_pool(x, (1, 1))[0, ..., 0], [[7.5]])
        one = jnp.full((1, 1, 1, 2), 3.0)
        np.testing.assert_allclose(ops.adaptive_average_pool(one, (3, 2)), jnp.full((1, 3, 2, 2), 3.0))
        np.testing.assert_array_equal(ops.adaptive_max_pool(x, (2, 2))[0, ..., 0], [[5, 7], [13, 15]])

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"x: expected \[..., H, W, C\]"):
            ops.adaptive_average_pool(jnp.zeros((4, 4)), (2, 2))
        with self.assertRaisesRegex(ValueError, r"size: expected \(h, w\)"):
            ops.adaptive_average_pool(jnp.zeros((4, 4, 1)), (0, 2))
        with self.assertRaisesRegex(ValueError, r"size: expected \(h, w\)"):
            ops.adaptive_max_pool(jnp.zeros((4, 4, 1)), (0, 2))


if __name__ == "__main__":
    absltest.main()
