"""``python -m experiments.benchmark --what data`` runs and prints its one table."""

import contextlib
import io
import re

from experiments import benchmark


def test_benchmark_data_table():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        benchmark.main(["--what", "data", "--repeats", "1"])
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    header = lines.index(next(line for line in lines if line.startswith("pipeline")))
    assert "clips/s" in lines[header] and "batches/s" in lines[header]
    rows = lines[header + 1 :]
    assert [r.split("  ")[0] for r in rows] == [
        "synthetic classification",
        "real-format fixture (UCF101 split1)",
        "decode_video (PyAV)",
    ]
    for row in rows:
        clips_per_s = float(re.split(r"\s{2,}", row.strip())[5])
        assert clips_per_s > 0
