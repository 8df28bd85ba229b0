"""Running many independent DIP runs at once: one device, then many devices.

A batch of runs is a `RunState` whose leaves have a leading run axis R. Two
ways to map a one-run function over that axis on one device:

- ``"vmap"``: jax.vmap. Every convolution with per-run weights becomes one
  grouped convolution. Wins on GPUs/TPUs, where one big kernel launch beats
  R small ones.
- ``"map"``: jax.lax.map, i.e. a loop over runs inside the compiled program.
  Wins on CPUs, where XLA's grouped convolutions are much slower than R plain
  ones (measured in experiments/bench_dip.py).

``"auto"`` picks "map" on CPU and "vmap" elsewhere. Across devices the run
axis is split with `jax.shard_map` over a 1-D mesh named "runs" (all local
devices, or all global devices after `jax.distributed.initialize()`), and
each device maps its own slice with the chosen strategy. R is padded to a
multiple of the device count by repeating the last run.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxdeblur.nets.platform import mesh_platform, traced_for

STRATEGIES = ("auto", "vmap", "map")
RUN_AXIS = "runs"


def resolve_strategy(strategy: str, platform: str | None = None) -> str:
    """"auto" -> "map" on CPU, "vmap" on GPU/TPU; other values are checked and returned."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown batch strategy {strategy!r}; choose one of {STRATEGIES}")
    if strategy != "auto":
        return strategy
    platform = platform or jax.default_backend()
    return "map" if platform == "cpu" else "vmap"


def over_runs(fn: Callable, strategy: str) -> Callable:
    """Maps a one-run function over the leading run axis of its first argument.

    Further arguments (run-shared constants) are passed unmapped to every run.
    """
    if strategy == "vmap":
        return lambda tree, *shared: jax.vmap(lambda one: fn(one, *shared))(tree)
    if strategy == "map":
        return lambda tree, *shared: jax.lax.map(lambda one: fn(one, *shared), tree)
    raise ValueError(f"strategy must be 'vmap' or 'map' here, got {strategy!r}")


def run_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named "runs" over `devices` (default: all devices of all hosts)."""
    devices = list(devices) if devices is not None else jax.devices()
    if not devices:
        raise ValueError("no devices to run on")
    return Mesh(np.array(devices), (RUN_AXIS,))


def sharded_over_runs(fn: Callable, mesh: Mesh) -> Callable:
    """Splits the run axis of a batched function's first argument and outputs across the mesh.

    Further arguments (run-shared constants) are replicated on every device.
    The nets inside are traced for the mesh's platform (`jaxdeblur.nets.platform`).
    """
    fn = traced_for(fn, mesh_platform(mesh))
    if mesh.size == 1:
        return fn
    spec = P(RUN_AXIS)

    def sharded(tree, *shared):
        return jax.shard_map(fn, mesh=mesh, in_specs=(spec,) + (P(),) * len(shared), out_specs=spec,
                             check_vma=False)(tree, *shared)

    return sharded


def padded_size(runs: int, mesh: Mesh) -> int:
    """The smallest multiple of the mesh size holding `runs` runs."""
    return -(-runs // mesh.size) * mesh.size


def pad_runs(tree, size: int):
    """Pads the leading axis of every leaf to `size` by repeating the last run."""
    def pad(x):
        extra = size - x.shape[0]
        if extra == 0:
            return x
        return np.concatenate([np.asarray(x), np.repeat(np.asarray(x)[-1:], extra, axis=0)])
    return jax.tree.map(pad, tree)


def place(tree, mesh: Mesh):
    """Puts every leaf on the mesh, split along its leading run axis."""
    sharding = NamedSharding(mesh, P(RUN_AXIS))
    return jax.device_put(tree, sharding)


def _identity(tree):
    return tree


def to_host(tree):
    """Host numpy copies of every leaf; arrays split over several processes' devices are gathered first.

    On several processes (`jax.distributed`) a run-sharded array holds only
    this process's runs: one jitted identity re-lays every such leaf out
    replicated (an all-gather over the processes, every process calling it at
    the same point), so each process gets the whole batch.
    """
    leaves, treedef = jax.tree.flatten(tree)
    spread = [i for i, x in enumerate(leaves) if isinstance(x, jax.Array) and not x.is_fully_addressable]
    if spread:
        parts = [leaves[i] for i in spread]
        if all(isinstance(x.sharding, NamedSharding) for x in parts):
            shardings = [NamedSharding(x.sharding.mesh, P()) for x in parts]
            gathered = jax.jit(_identity, out_shardings=shardings)(parts)
        else:
            from jax.experimental import multihost_utils
            gathered = [multihost_utils.process_allgather(x, tiled=True) for x in parts]
        for i, x in zip(spread, gathered):
            leaves[i] = x
    return treedef.unflatten([np.asarray(x) for x in leaves])


def replicate(tree, mesh: Mesh):
    """Puts every leaf on every device of the mesh, whole (run-shared constants)."""
    return jax.device_put(tree, NamedSharding(mesh, P()))
