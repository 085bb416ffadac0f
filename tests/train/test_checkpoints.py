"""The checkpoint that best.json names is the one Orbax keeps, ties included."""

import numpy as np
import pytest

from cfjax.train.checkpoints import Checkpointer


@pytest.mark.parametrize(
    "top1, best_step",
    [((0.0, 0.0, 0.0), 3), ((0.5, 0.2, 0.2), 1), ((0.1, 0.4, 0.4), 3), ((0.1, 0.3, 0.2), 2)],
)
def test_best_json_names_a_kept_checkpoint(tmp_path, top1, best_step):
    ckpt = Checkpointer(tmp_path, keep=1, best_metric="top1")
    for step, value in enumerate(top1, start=1):
        ckpt.save(step, {"step": np.int32(step)}, metrics={"top1": value})
    ckpt.wait()
    kept = ckpt.manager.all_steps()
    assert ckpt.best()["step"] == best_step
    assert best_step in kept and 3 in kept  # the best and the latest
    ckpt.close()
