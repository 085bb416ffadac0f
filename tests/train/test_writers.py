"""metrics.jsonl keeps one line per step after a resume; the progress bar's ETA leaves out the first step."""

import json

from cfjax.train import writers
from cfjax.train.writers import MetricWriter, Progress, read_metrics


def test_resume_drops_the_lines_written_after_the_checkpoint(tmp_path):
    writer = MetricWriter(tmp_path, tensorboard=False)
    for step in range(1, 6):
        writer.write(step, "train", {"loss": float(step)})
    writer.write(4, "eval", {"top1": 0.5})
    writer.close()
    resumed = MetricWriter(tmp_path, tensorboard=False, start_step=3)  # the last checkpoint is step 3
    resumed.write(4, "train", {"loss": 40.0})
    resumed.close()
    lines = read_metrics(tmp_path)
    assert [(line["step"], line["split"]) for line in lines] == [(1, "train"), (2, "train"), (3, "train"), (4, "train")]
    assert lines[-1]["loss"] == 40.0
    assert all(json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines())


def test_eta_leaves_out_the_first_step(monkeypatch):
    clock = iter([100.0, 102.0, 104.0])  # step 1 ends after compilation (100 s), then 2 s a step
    monkeypatch.setattr(writers.time, "perf_counter", lambda: next(clock))
    bar = Progress(total=11, initial=0, batch_size=8, enabled=False)
    bar.update(1, loss=2.0, lr=0.1)
    assert "eta" not in bar._bar.postfix and "clips/s" not in bar._bar.postfix
    bar.update(2)
    assert "eta=00:18" in bar._bar.postfix  # 9 steps left x 2 s
    bar.update(3, loss=1.0, lr=0.1)
    assert "eta=00:16" in bar._bar.postfix and "clips/s=4.0" in bar._bar.postfix  # 2 steps x 8 clips in 4 s
    bar.close()
