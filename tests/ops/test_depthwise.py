"""Depthwise 3D convolution: the shift-and-sum path equals XLA's grouped convolution."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from cfjax import ops


def _inputs(seed, shape, kernel):
    kx, kk = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, shape, jnp.float64)
    return x, jax.random.normal(kk, (*kernel, 1, shape[-1]), jnp.float64)


class DepthwiseConvTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(
        ((3, 3, 3), (1, 1, 1), None),
        ((3, 3, 3), (1, 2, 2), None),
        ((5, 1, 1), (1, 1, 1), None),
        ((3, 3, 3), (2, 2, 1), ((0, 1), (1, 1), (2, 0))),
    )
    def test_shifts_equal_grouped_conv(self, kernel, strides, padding):
        x, k = _inputs(0, (2, 5, 7, 6, 3), kernel)
        fn = self.variant(lambda x, k, m: ops.depthwise_conv3d(x, k, strides, padding, method=m), static_argnums=2)
        chex.assert_trees_all_close(fn(x, k, "shifts"), fn(x, k, "xla"), rtol=1e-12, atol=1e-12)

    def test_known_value(self):
        # One channel, kernel of ones over time only: each output is the sum of its 3 neighbours in time.
        x = jnp.arange(4.0).reshape(1, 4, 1, 1, 1)
        out = ops.depthwise_conv3d(x, jnp.ones((3, 1, 1, 1, 1)), method="shifts")
        np.testing.assert_allclose(out.ravel(), [0 + 1, 0 + 1 + 2, 1 + 2 + 3, 2 + 3])

    def test_gradients(self):
        x, k = _inputs(1, (1, 3, 4, 4, 2), (3, 3, 3))
        fn = lambda x, k: ops.depthwise_conv3d(x, k, (1, 2, 2), method="shifts")
        check_grads(jax.jit(fn), (x, k), order=1, modes=("rev",))

    @settings(max_examples=10, deadline=None)
    @given(st.integers(1, 3), st.integers(1, 2), st.integers(0, 2))
    def test_any_stride_and_padding(self, st_t, st_s, pad):
        x, k = _inputs(2, (1, 4, 5, 5, 2), (3, 3, 3))
        padding = ((pad, 1), (pad, pad), (1, pad))
        a = ops.depthwise_conv3d(x, k, (st_t, st_s, st_s), padding, method="shifts")
        b = ops.depthwise_conv3d(x, k, (st_t, st_s, st_s), padding, method="xla")
        chex.assert_trees_all_close(a, b, rtol=1e-12, atol=1e-12)

    def test_bad_input(self):
        x = jnp.zeros((1, 4, 4, 4, 3))
        with self.assertRaisesRegex(ValueError, r"kernel: expected \[kt, kh, kw, 1, 3\]"):
            ops.depthwise_conv3d(x, jnp.zeros((3, 3, 3, 1, 2)))
        with self.assertRaisesRegex(ValueError, "method"):
            ops.depthwise_conv3d(x, jnp.zeros((3, 3, 3, 1, 3)), method="fft")
        with self.assertRaisesRegex(ValueError, r"padding: expected \(\(lo, hi\),\) \* 3"):
            ops.depthwise_conv3d(x, jnp.zeros((3, 3, 3, 1, 3)), padding=((1, 1),))
        with self.assertRaisesRegex(ValueError, r"x: expected \[B, T, H, W, C\]"):
            ops.depthwise_conv3d(x[0], jnp.zeros((3, 3, 3, 1, 3)))
