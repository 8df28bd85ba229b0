"""Data parallelism with jax.sharding: a 1-D device mesh over the batch axis, replicated state.

Every array of the training state is replicated on all devices; batches are
split over the mesh axis "data" along their batch axis. The jitted step is
written for the global batch and XLA inserts the gradient all-reduce. Host
batches enter through `jax.make_array_from_process_local_data`, so the same
code runs on several hosts after `jax.distributed.initialize()` (each process
contributes its own block of rows of the global batch).
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named "data" over `devices` (default: every device of every process)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    return Mesh(np.asarray(devices), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of arrays held whole by every device of `mesh`."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, *, axis: int) -> NamedSharding:
    """The sharding that splits dimension `axis` (the batch axis) over the mesh."""
    return NamedSharding(mesh, PartitionSpec(*([None] * axis), AXIS))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Raises ValueError unless the global batch splits evenly over devices and processes."""
    if batch_size % mesh.size or batch_size % jax.process_count():
        raise ValueError(f"batch_size {batch_size} must be a multiple of the device count {mesh.size} "
                         f"(and of the process count {jax.process_count()})")


def global_batch(batch: dict, sharding: NamedSharding, *, axis: int, process_local: bool) -> dict:
    """Device arrays of a host batch {name: array} whose batch axis is `axis`.

    process_local=True: the arrays hold only this process's rows (a train
    loader's batch: process p holds block p of the global batch); the global
    batch is their concatenation over processes. process_local=False: every
    process holds the whole batch (evaluation batches) and keeps its own block
    of rows (all of them under a replicated sharding).
    """
    processes, index = jax.process_count(), jax.process_index()
    sharded = AXIS in sharding.spec

    def put(value):
        value = np.asarray(value)
        shape = list(value.shape)
        if process_local and sharded:
            shape[axis] *= processes
        elif sharded and processes > 1:
            rows = value.shape[axis] // processes
            value = np.take(value, np.arange(index * rows, (index + 1) * rows), axis=axis)
        return jax.make_array_from_process_local_data(sharding, value, tuple(shape))

    return {name: put(value) for name, value in batch.items()}
