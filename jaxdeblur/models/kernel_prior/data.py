"""The kernels the flow prior is trained and evaluated on: random camera-shake (motion) kernels.

Each kernel is `jaxdeblur.kernels.motion` (Boracchi & Foi trajectory,
centroid on the centre tap, bilinear splatting, sum 1) with its length and
anxiety drawn uniformly from the config's ranges; see `KernelPriorConfig`.
"""

from __future__ import annotations

import jax

from jaxdeblur import kernels


def motion_kernels(key: jax.Array, n: int, *, kernel_size: int, length: tuple[float, float],
                   anxiety: tuple[float, float], num_points: int) -> jax.Array:
    """n random motion kernels (n, kernel_size, kernel_size) float32, deterministic by `key`; jit-able.

    Args:
      key: a JAX PRNG key.
      n: number of kernels (static).
      kernel_size: kernel side (static).
      length: (low, high) trajectory length as fractions of kernel_size - 1.
      anxiety: (low, high) Boracchi & Foi shake intensity.
      num_points: trajectory samples (static).
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    support = kernel_size - 1

    def one(k):
        k_shape, k_path = jax.random.split(k)
        u, a = jax.random.uniform(k_shape, (2,))
        return kernels.motion(k_path, kernel_size, length=(length[0] + (length[1] - length[0]) * u) * support,
                              anxiety=anxiety[0] + (anxiety[1] - anxiety[0]) * a, num_points=num_points)

    return jax.vmap(one)(jax.random.split(key, int(n)))


def config_kernels(key: jax.Array, n: int, config) -> jax.Array:
    """`motion_kernels` with the data fields of a `KernelPriorConfig`."""
    return motion_kernels(key, n, kernel_size=config.kernel_size, length=config.length, anxiety=config.anxiety,
                          num_points=config.num_points)

