"""Orbax checkpoints of the train state and the data iterator: latest K plus the best.

Layout: ``workdir/checkpoints/<step>/{state,data}``; ``workdir/best.json`` names the best
step and its metrics. Saves are asynchronous; a crash mid-save leaves the previous
checkpoints intact (Orbax commits a step atomically).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from cfjax.data.pipeline import checkpoint_restore_args, checkpoint_save_args

__all__ = ["Checkpointer"]


def _metric(name: str):
    def get(metrics) -> float:
        value = metrics.get(name) if metrics else None
        return -math.inf if value is None or not math.isfinite(float(value)) else float(value)

    return get


class Checkpointer:
    """``save(step, state, iterator, metrics=None)``, ``restore(step, abstract_state, iterator=None)``."""

    def __init__(self, workdir, keep: int, best_metric: str):
        if keep < 1:
            raise ValueError(f"keep_checkpoints: expected >= 1, got {keep}")
        self.workdir = Path(workdir).absolute()
        self.best_metric = best_metric
        policy = policies.AnyPreservationPolicy([
            policies.LatestN(n=keep),
            policies.BestN(get_metric_fn=_metric(best_metric), n=1, keep_checkpoints_without_metrics=False),
        ])
        options = ocp.CheckpointManagerOptions(preservation_policy=policy, enable_async_checkpointing=True, create=True)
        self.manager = ocp.CheckpointManager(self.workdir / "checkpoints", options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def best(self) -> dict | None:
        path = self.workdir / "best.json"
        return json.loads(path.read_text()) if path.exists() else None

    def save(self, step: int, state, iterator=None, metrics: dict | None = None) -> None:
        items = {"state": ocp.args.StandardSave(state)}
        if iterator is not None:
            items["data"] = checkpoint_save_args(iterator)
        scalars = None
        if metrics is not None:
            scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        self.manager.save(step, args=ocp.args.Composite(**items), metrics=scalars, force=True)
        if scalars is not None and self.best_metric in scalars:
            best = self.best()
            value = _metric(self.best_metric)(scalars)
            if best is None or value > _metric(self.best_metric)(best["metrics"]):
                if jax.process_index() == 0:
                    tmp = self.workdir / "best.json.tmp"
                    tmp.write_text(json.dumps({"step": int(step), "metrics": scalars}, indent=1))
                    tmp.replace(self.workdir / "best.json")

    def restore(self, step: int, abstract_state, iterator=None):
        """The state saved at ``step`` (shardings from ``abstract_state``); fills ``iterator``'s position."""
        if step not in self.manager.all_steps():
            raise FileNotFoundError(
                f"checkpoint: no step {step} in {self.workdir / 'checkpoints'}; saved steps: {self.manager.all_steps()}"
            )
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if iterator is not None:
            items["data"] = checkpoint_restore_args(iterator)
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        return restored["state"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
