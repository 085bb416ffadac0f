"""fit_to_devices: mesh over every device, batch a multiple of the device count, bfloat16 on TPU only."""

import dataclasses
import logging

import jax
import pytest

from cfjax.train.config import base_config
from cfjax.train.runtime import describe_devices, fit_to_devices, quiet_library_logs


@dataclasses.dataclass(frozen=True)
class FakeDevice:
    platform: str
    device_kind: str
    process_index: int = 0


def tpus(count, hosts=1):
    return [FakeDevice("tpu", "TPU v5 lite", i * hosts // count) for i in range(count)]


def config(batch=8, eval_batch=16):
    c = base_config()
    c.batch_size, c.eval_batch_size = batch, eval_batch
    c.mesh.data, c.mesh.model = 2, 2
    return c


@pytest.mark.parametrize("count", [1, 4, 8, 32])
def test_tpu_gets_bfloat16_and_a_mesh_over_all_devices(count):
    original = config(batch=12)
    fitted, line = fit_to_devices(original, tpus(count))
    assert fitted.dtype == "bfloat16" and (fitted.mesh.data, fitted.mesh.model) == (-1, 1)
    assert fitted.batch_size % count == 0 and fitted.batch_size >= 12 and fitted.batch_size - 12 < count
    assert fitted.eval_batch_size % count == 0 and fitted.eval_batch_size >= 16
    assert original.dtype == "float32" and original.batch_size == 12 and original.mesh.data == 2  # a copy
    assert line.startswith(f"{count} tpu device") and f"mesh data={count} x model=1" in line and "bfloat16" in line
    assert ("a multiple of the" in line) == (12 % count != 0 or 16 % count != 0)


def test_cpu_keeps_the_config_dtype_and_a_forced_dtype_wins():
    fitted, line = fit_to_devices(config(), [FakeDevice("cpu", "cpu")])
    assert fitted.dtype == "float32" and fitted.batch_size == 8 and "1 cpu device (cpu), 1 process" in line
    forced, _ = fit_to_devices(config(), tpus(8), dtype="float32")
    assert forced.dtype == "float32"


def test_the_real_devices_and_errors():
    fitted, _ = fit_to_devices(config(batch=3))
    assert fitted.batch_size % jax.device_count() == 0
    assert describe_devices(tpus(8, hosts=2)) == "8 tpu devices (TPU v5 lite), 2 processes"
    with pytest.raises(ValueError, match="devices: expected at least one device"):
        fit_to_devices(config(), [])
    with pytest.raises(ValueError, match="batch_size: expected a positive batch size, got 0"):
        fit_to_devices(config(batch=0), tpus(2))


def test_quiet_library_logs_drops_tfds_warnings_only():
    quiet_library_logs()
    quiet_library_logs()
    logger = logging.getLogger("absl")
    assert len([f for f in logger.filters if type(f).__name__ == "_QuietTFDS"]) == 1

    def record(level, path):
        return logging.LogRecord("absl", level, path, 1, "message", (), None)

    tfds = "/venv/site-packages/tensorflow_datasets/core/dataset_builder.py"
    assert not logger.filter(record(logging.WARNING, tfds))
    assert logger.filter(record(logging.ERROR, tfds))
    assert logger.filter(record(logging.WARNING, "/venv/site-packages/orbax/checkpoint/x.py"))
