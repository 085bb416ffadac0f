"""Metric logging: ``metrics.jsonl`` + TensorBoard event files (tensorboardX, no TensorFlow), and a progress bar."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import jax
import numpy as np

__all__ = ["MetricWriter", "Progress", "read_metrics", "report"]


def _tqdm():
    """tqdm's bar class for here: the widget in a notebook with ipywidgets (Colab), else the text bar.
    Without ipywidgets tqdm falls back to the text bar itself; its warning about that is dropped."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm
    return tqdm


def report(message: str) -> None:
    """One plain line for the user (process 0 only), printed above a running progress bar."""
    if jax.process_index() == 0:
        _tqdm().write(message)


def _scalar(value):
    value = np.asarray(value)
    if value.size != 1:
        return None
    value = value.item()
    return value if isinstance(value, (int, float, bool)) else None


class MetricWriter:
    """Appends ``{"step", "split", **scalars}`` lines to ``workdir/metrics.jsonl`` and event files.

    Only process 0 writes. Non-scalar values are skipped; NaN is written as null.
    ``start_step``: the step training (re)starts from; the lines of later steps, written by a run
    that stopped after its last checkpoint, are dropped (and purged from TensorBoard), so the file
    keeps one line per step and split.
    """

    def __init__(self, workdir, tensorboard: bool = True, start_step: int = 0):
        self.path = Path(workdir) / "metrics.jsonl"
        self._active = jax.process_index() == 0
        self._tb = None
        if self._active:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _drop_lines_after(self.path, start_step)
            if tensorboard:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(str(Path(workdir) / "tensorboard"), purge_step=start_step + 1)

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


def _drop_lines_after(path: Path, step: int) -> None:
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    if len(kept) != len(lines):
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(path)


def read_metrics(workdir, split: str | None = None) -> list[dict]:
    """The lines of ``workdir/metrics.jsonl`` (optionally of one split)."""
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line for line in lines if split is None or line["split"] == split]


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """A tqdm bar over training steps: step, loss, lr, clips/s, ETA (process 0 only).

    The ETA and clips/s leave out the first step of the run (it includes compilation): the ETA
    appears from the second step on.
    """

    def __init__(self, total: int, initial: int, batch_size: int, enabled: bool = True):
        self._bar = _tqdm()(
            total=total,
            initial=initial,
            unit="step",
            dynamic_ncols=True,
            disable=not enabled or jax.process_index() != 0,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
        )
        self._batch = batch_size
        self._first = None  # (time, step) after the first step of this run
        self._last = None
        self._postfix = {}

    def update(self, step: int, loss: float | None = None, lr: float | None = None) -> None:
        now = time.perf_counter()
        self._bar.update(step - self._bar.n)
        if self._first is None:
            self._first = self._last = (now, step)
        else:
            then, previous = self._first
            if step > previous:
                self._postfix["eta"] = _duration((self._bar.total - step) * (now - then) / (step - previous))
        if loss is not None:
            then, previous = self._last
            if step > previous:
                self._postfix["clips/s"] = f"{(step - previous) * self._batch / max(now - then, 1e-9):.1f}"
            self._postfix.update(loss=f"{loss:.4f}", lr=f"{lr:.3g}")
            self._last = (now, step)
        if self._postfix:
            self._bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in self._postfix.items()), refresh=False)

    def close(self) -> None:
        self._bar.close()
