"""Which platform the nets are traced for: the one choice between their CPU fast paths and the plain ops.

`nets.conv`, `nets.fused` and `nets.nafnet_ops` have hand-written paths that
only pay off on XLA:CPU (loop-friendly convolution gradients, fused
BatchNorm / pad / upsampling backward passes, depthwise convs as shifted
multiply-adds); every other platform runs the plain lax / jnp ops. The
choice is made from a platform name ("cpu", "gpu", "tpu"), resolved in one
place (`resolve`), in this order:

1. an explicit `platform=` argument of the op (or of `nets.apply`);
2. the platform of the program being traced, set by whoever compiles it
   for a mesh (`use(platform)`, or `traced_for(fn, platform)` around the
   function given to `jax.jit`: the DIP engine's programs and the trainer's
   read it from their mesh's devices);
3. otherwise JAX's default backend (`default_platform`, the one place the
   nets read it).

The platform is read when a function is traced, not when it runs: a jitted
function traced for one platform keeps that choice (the engine and the
trainer compile per mesh, so theirs match their devices).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Callable, Iterator

import jax

_PLATFORM: contextvars.ContextVar[str | None] = contextvars.ContextVar("jaxdeblur_nets_platform", default=None)


def default_platform() -> str:
    """The nets' platform when nothing else says.

    Returns:
      JAX's default backend ("cpu", "gpu", "tpu").
    """
    return jax.default_backend()


def resolve(platform: str | None) -> str:
    """The platform to trace for.

    Args:
      platform: an explicit choice, or None: the platform set by `use` /
        `traced_for`, else `default_platform()`.

    Returns:
      the platform name.
    """
    if platform is not None:
        return platform
    scoped = _PLATFORM.get()
    return scoped if scoped is not None else default_platform()


def fast_cpu_paths(platform: str | None) -> bool:
    """Whether the nets take their CPU fast paths.

    Args:
      platform: as `resolve`.

    Returns:
      True on "cpu".
    """
    return resolve(platform) == "cpu"


@contextlib.contextmanager
def use(platform: str | None) -> Iterator[None]:
    """Traces the nets for `platform` inside the block (None: leaves the current choice as it is).

    Args:
      platform: "cpu", "gpu", "tpu", or None.

    Returns:
      a context manager.
    """
    if platform is None:
        yield
        return
    token = _PLATFORM.set(platform)
    try:
        yield
    finally:
        _PLATFORM.reset(token)


def traced_for(fn: Callable, platform: str | None) -> Callable:
    """`fn` that traces the nets for `platform` (wrap the function given to `jax.jit`).

    Args:
      fn: the function to trace.
      platform: as `use`.

    Returns:
      a function with `fn`'s arguments and results.
    """
    if platform is None:
        return fn

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        with use(platform):
            return fn(*args, **kwargs)

    return traced


def mesh_platform(mesh) -> str:
    """The platform of a `jax.sharding.Mesh`'s devices.

    Args:
      mesh: the mesh a program is compiled for.

    Returns:
      its first device's platform.
    """
    return mesh.devices.flat[0].platform


__all__ = ["default_platform", "resolve", "fast_cpu_paths", "use", "traced_for", "mesh_platform"]
