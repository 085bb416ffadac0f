"""Device mesh and shardings: batches split on ``data``, parameters replicated or split on ``model``."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["batch_sharding", "host_to_global", "is_numeric", "make_mesh", "param_shardings", "replicated"]

MIN_SHARDED_SIZE = 2**16  # parameters smaller than this stay replicated on the model axis


def make_mesh(config) -> jax.sharding.Mesh:
    """``config.mesh`` (``data``, ``model`` sizes) -> a ``("data", "model")`` mesh.

    ``data=-1`` uses every device not taken by ``model``; an explicit smaller size uses
    the first ``data x model`` devices (e.g. ``data=1`` to compare with a single device).
    """
    count = jax.device_count()
    model = int(config.model)
    data = int(config.data)
    if model < 1 or count % model:
        raise ValueError(f"mesh.model: expected a divisor of the {count} devices, got {model}")
    if data == -1:
        data = count // model
    if data < 1 or data * model > count:
        raise ValueError(f"mesh: data x model = {data} x {model} must be between 1 and the {count} devices")
    if data * model < count and jax.process_count() > 1:
        raise ValueError(f"mesh: with {jax.process_count()} processes the mesh must use all {count} devices")
    auto = jax.sharding.AxisType.Auto
    devices = jax.devices()[: data * model]
    return jax.make_mesh((data, model), ("data", "model"), axis_types=(auto, auto), devices=devices)


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh) -> NamedSharding:
    """Leading (batch) axis split over ``data``."""
    return NamedSharding(mesh, P("data"))


def param_shardings(mesh, params):
    """Replicated, except (when the model axis is > 1) large kernels split on their last axis."""
    size = mesh.shape["model"]

    def pick(p):
        shape = np.shape(p)
        if size > 1 and len(shape) >= 2 and np.prod(shape) >= MIN_SHARDED_SIZE and shape[-1] % size == 0:
            return NamedSharding(mesh, P(*([None] * (len(shape) - 1)), "model"))
        return NamedSharding(mesh, P())

    return jax.tree.map(pick, params)


def is_numeric(value) -> bool:
    """Whether ``value`` can go to a device (bool, int or float array); strings cannot."""
    return np.asarray(value).dtype.kind in "biuf"


def host_to_global(batch: dict, mesh) -> dict:
    """This process's numeric batch arrays -> global arrays split on ``data``.

    Non-numeric keys (strings such as ``video_id``) stay on the host and are dropped.
    The global batch is the concatenation of every process's local batch.
    """
    sharding = batch_sharding(mesh)
    out = {}
    for key, value in batch.items():
        if not is_numeric(value):
            continue
        value = np.asarray(value)
        data = mesh.shape["data"]
        global_size = value.shape[0] * jax.process_count()
        if global_size % data:
            raise ValueError(
                f"batch[{key!r}]: the global batch of {global_size} does not split over mesh.data={data} devices"
            )
        out[key] = jax.make_array_from_process_local_data(sharding, value)
    return out
