"""Fit a config to the devices at hand (the notebooks' device check; any script may use it).

    config, line = fit_to_devices(config)     # on a Colab TPU v5e-1, a v5e-8, a GPU or a laptop
    print(line)                                # "1 tpu device (TPU v5 lite): mesh data=1 x model=1, ..."

The mesh uses every local device for data parallelism (``mesh.data=-1``, ``mesh.model=1``);
the global batch is rounded up to a multiple of the data devices (the trainer splits it
evenly); TPUs compute in bfloat16 (``dtype``), everything else in float32. Nothing assumes a
device count: 1, 4, 8 or 256 devices give the same kind of config.
"""

from __future__ import annotations

import logging

import jax

__all__ = ["describe_devices", "fit_to_devices", "quiet_library_logs"]


class _QuietTFDS(logging.Filter):
    """Drops TFDS's informational warnings ("Using custom data configuration ...") below ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "tensorflow_datasets" not in record.pathname


def quiet_library_logs() -> None:
    """What ``python -m experiments.*`` shows, in a notebook or script: TFDS's per-load warnings
    dropped, JAX's logs from WARNING up (cfjax's own lines are printed, not logged). Idempotent."""
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _QuietTFDS) for f in absl_logger.filters):
        absl_logger.addFilter(_QuietTFDS())
    logging.getLogger("jax").setLevel(logging.WARNING)


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-int(value) // multiple) * multiple)


def describe_devices(devices=None) -> str:
    """``"8 tpu devices (TPU v5 lite), 1 process"``: count, platform, kind and processes."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices: expected at least one device")
    platform = devices[0].platform
    kinds = sorted({getattr(d, "device_kind", platform) for d in devices})
    processes = len({getattr(d, "process_index", 0) for d in devices})
    plural = "s" if len(devices) > 1 else ""
    return f"{len(devices)} {platform} device{plural} ({', '.join(kinds)}), {processes} process{'es' if processes > 1 else ''}"


def fit_to_devices(config, devices=None, dtype: str | None = None):
    """A copy of ``config`` whose mesh, batch sizes and compute dtype suit ``devices``.

    ``devices``: default ``jax.devices()`` (all processes' devices: the global batch is split
    over all of them). ``dtype``: force a compute dtype; default bfloat16 on TPU, else the
    config's own. Returns ``(config, line)`` where ``line`` says what was chosen.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices: expected at least one device")
    count = len(devices)
    platform = devices[0].platform
    config = config.copy_and_resolve_references()
    changed = []
    config.mesh.data, config.mesh.model = -1, 1
    for name in ("batch_size", "eval_batch_size"):
        value = int(config[name])
        if value < 1:
            raise ValueError(f"{name}: expected a positive batch size, got {value}")
        fitted = _round_up(value, count)
        if fitted != value:
            config[name] = fitted
            changed.append(f"{name} {value} -> {fitted}")
    if dtype is None:
        dtype = "bfloat16" if platform == "tpu" else config.dtype
    config.dtype = dtype
    per_device = config.batch_size // count
    line = (
        f"{describe_devices(devices)}: mesh data={count} x model=1, global batch {config.batch_size} "
        f"({per_device} per device), dtype {dtype}"
    )
    if changed:
        line += f" ({'; '.join(changed)}: a multiple of the {count} devices)"
    return config, line
