"""cfad_diagnosis.diagnose_video on a hand-made CFAD output (the trained-model run is in
tests/train/test_tubes_task.py, beside the smoke CFAD it reuses)."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cfjax.analysis.cfad_diagnosis import diagnose_video


def test_diagnosis_of_a_hand_made_detector():
    """Zero polynomials and deltas: every coarse tube and RPN box is its anchor, so each row is known."""
    # a0 far from the GT; a1 = the GT box; a2 = a1 shifted (2, 2): IoU 64 / 136, centre in the
    # 0.8 x 10 px search window of a1; a3 far (outside it)
    anchors = jnp.array([[0, 0, 9, 9], [20, 20, 29, 29], [22, 22, 31, 31], [40, 40, 49, 49]], jnp.float32)
    t, n, a, c = 4, 4, 4, 2
    class_logits = jnp.zeros((1, a, c + 1)).at[0, 0, 2].set(9.0).at[0, 1, 1].set(1.0)  # a0: class 1, a1: class 0
    rpn_logits = jnp.zeros((1, n, a, c)).at[0, :, 3, 1].set(5.0).at[0, :, 2, 1].set(3.0).at[0, :, 1, 1].set(1.0)
    outputs = {
        "anchors": anchors,
        "proposals": jnp.array([[0.0, 4.0]]),
        "proposal_valid": jnp.array([True]),
        "sample_times": jnp.arange(4.0)[None],
        "theta": jnp.zeros((1, a, 3, 4)),
        "class_logits": class_logits,
        "importance_logits": jnp.array([[5.0, -5.0, 5.0, -5.0]]),
        "rpn_logits": rpn_logits,
        "rpn_deltas": jnp.zeros((1, n, a, c, 4)),
    }
    gt_boxes = jnp.tile(anchors[1], (1, t, 1))
    gt_valid = jnp.array([[False, True, True, True]])
    model = SimpleNamespace(sigma=0.8, alpha=0.5)
    run = jax.jit(lambda o, b, v, l: diagnose_video(model, o, b, v, l, height=64, width=64))  # one compile
    out = run(outputs, gt_boxes, gt_valid, jnp.array([1]))
    out = {k: np.asarray(v)[0] for k, v in out.items()}
    assert out["proposal_tiou"] == pytest.approx(3 / 4)  # [0, 4) vs the GT's frames [1, 4)
    assert out["oracle_iou"] == pytest.approx(3 / 4)  # a1 on frames 0..3 vs the GT on 1..3
    assert out["top_iou"] == 0.0 and bool(out["top_class_ok"]) and not bool(out["oracle_class_ok"])
    np.testing.assert_array_equal(out["step_valid"], [False, True, True, True])
    np.testing.assert_allclose(out["coarse_box_iou"][1:], 1.0)
    np.testing.assert_allclose(out["search_box_iou"][1:], 64 / 136, rtol=1e-6)  # a3 scores higher, outside
    np.testing.assert_allclose(out["best_rpn_iou"][1:], 1.0)
    np.testing.assert_allclose(out["top_rpn_iou"][1:], 0.0)
    np.testing.assert_array_equal(out["key_step"], [True, False, True, False])
