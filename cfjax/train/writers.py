"""Metric logging: ``metrics.jsonl`` + TensorBoard event files (tensorboardX, no TensorFlow), and a progress bar."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import jax
import numpy as np

__all__ = ["MetricWriter", "Progress", "read_metrics"]


def _scalar(value):
    value = np.asarray(value)
    if value.size != 1:
        return None
    value = value.item()
    return value if isinstance(value, (int, float, bool)) else None


class MetricWriter:
    """Appends ``{"step", "split", **scalars}`` lines to ``workdir/metrics.jsonl`` and event files.

    Only process 0 writes. Non-scalar values are skipped; NaN is written as null.
    """

    def __init__(self, workdir, tensorboard: bool = True):
        self.path = Path(workdir) / "metrics.jsonl"
        self._active = jax.process_index() == 0
        self._tb = None
        if self._active:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(str(Path(workdir) / "tensorboard"))

    def write(self, step: int, split: str, metrics: dict) -> None:
        if not self._active:
            return
        scalars = {k: v for k, v in ((k, _scalar(v)) for k, v in metrics.items()) if v is not None}
        line = {"step": int(step), "split": split}
        line.update({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in scalars.items()})
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")
        if self._tb is not None:
            for key, value in scalars.items():
                if not math.isfinite(float(value)):
                    continue
                self._tb.add_scalar(f"{split}/{key}", float(value), int(step))
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(workdir, split: str | None = None) -> list[dict]:
    """The lines of ``workdir/metrics.jsonl`` (optionally of one split)."""
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line for line in lines if split is None or line["split"] == split]


class Progress:
    """A tqdm bar over training steps: step, loss, lr, clips/s, ETA (process 0 only)."""

    def __init__(self, total: int, initial: int, batch_size: int, enabled: bool = True):
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=total, initial=initial, unit="step", dynamic_ncols=True,
            disable=not enabled or jax.process_index() != 0,
        )
        self._batch = batch_size
        self._last = (time.perf_counter(), initial)

    def update(self, step: int, loss: float | None = None, lr: float | None = None) -> None:
        now = time.perf_counter()
        then, previous = self._last
        self._bar.update(step - self._bar.n)
        if loss is not None:
            rate = (step - previous) * self._batch / max(now - then, 1e-9)
            self._bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", clips_s=f"{rate:.1f}", refresh=False)
            self._last = (now, step)

    def close(self) -> None:
        self._bar.close()
