"""Gate localisation: clips above the threshold to merged time intervals."""

import numpy as np
from absl.testing import absltest

from cfjax.metrics import gate_intervals

BOUNDS = np.array([[0, 16], [16, 32], [32, 48], [48, 64], [64, 80]])


class GateIntervalsTest(absltest.TestCase):
    def test_hand_cases(self):
        gates = np.array([0.9, 0.2, 0.7, 0.8, 0.5])
        np.testing.assert_array_equal(gate_intervals(gates, BOUNDS), [[0, 16], [32, 64]])  # 0.5 is not > 0.5
        np.testing.assert_array_equal(gate_intervals(gates, BOUNDS, threshold=0.1), [[0, 80]])
        np.testing.assert_array_equal(gate_intervals(gates, BOUNDS, max_gap=16), [[0, 64]])
        mask = np.array([True, True, True, False, False])
        np.testing.assert_array_equal(gate_intervals(gates, BOUNDS, clip_mask=mask), [[0, 16], [32, 48]])
        self.assertEqual(gate_intervals(np.zeros(5), BOUNDS).shape, (0, 2))

    def test_sparse_clips_in_any_order(self):
        bounds = np.array([[110, 126], [0, 16], [50, 66]])
        np.testing.assert_array_equal(gate_intervals([0.9, 0.9, 0.9], bounds), [[0, 16], [50, 66], [110, 126]])
        np.testing.assert_array_equal(gate_intervals([0.9, 0.9, 0.9], bounds, max_gap=34), [[0, 66], [110, 126]])

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"clip_bounds: expected \[N, 2\] = \(5, 2\)"):
            gate_intervals(np.zeros(5), BOUNDS[:4])
        with self.assertRaisesRegex(ValueError, r"gates: expected \[N\]"):
            gate_intervals(np.zeros((1, 5)), BOUNDS)
        with self.assertRaisesRegex(ValueError, "clip_mask"):
            gate_intervals(np.zeros(5), BOUNDS, clip_mask=np.ones(4, bool))


if __name__ == "__main__":
    absltest.main()
