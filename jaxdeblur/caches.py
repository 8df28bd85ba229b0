"""The package's process-wide caches, and `clear_caches` to empty them all in one call.

Each cache is a `functools.lru_cache` / `functools.cache` on a module-level
function; `CACHES` names every one (tests/test_public_api.py checks that no
cached function of the package is missing here):

- loaded weights: `models.weights._load_once` (shipped / exported weights by
  name), `restoration.pretrained_model` (`restore`'s models),
  `models.region.inference._load_scorer` (the region CNN),
  `methods.kernel_space.load_operator` (the frozen kernel-space operator);
- compiled programs: `engine.runner._program` (a DIP method's init / chunk /
  estimate per config, shapes and mesh), `engine.fitting._fit_program`
  (warm starts), `train.program._cached_program` (a task's train step);
- data: `data.sources.task_sources` (folder listings),
  `models.region.task._labels` (region labels read from disk).

`clear_caches` clears only the modules already imported (a module not yet
imported has nothing cached), so it imports nothing itself.
"""

from __future__ import annotations

import sys

# (module, function) of every cached function of the package
CACHES: tuple[tuple[str, str], ...] = (
    ("jaxdeblur.models.weights", "_load_once"),
    ("jaxdeblur.restoration", "pretrained_model"),
    ("jaxdeblur.models.region.inference", "_load_scorer"),
    ("jaxdeblur.methods.kernel_space", "load_operator"),
    ("jaxdeblur.engine.runner", "_program"),
    ("jaxdeblur.engine.fitting", "_fit_program"),
    ("jaxdeblur.train.program", "_cached_program"),
    ("jaxdeblur.data.sources", "task_sources"),
    ("jaxdeblur.models.region.task", "_labels"),
)


def clear_caches(*, jax_caches: bool = False) -> dict[str, int]:
    """Empties every process-wide cache of the package (`CACHES`): loaded weights, compiled programs, listings.

    The next call that needs one of them loads or compiles it again; results
    do not change. Frees the memory the caches hold (weights, executables).

    Args:
      jax_caches: also clear JAX's own caches (`jax.clear_caches()`: every
        jitted function's compiled executables, this package's included).

    Returns:
      {"module.function": entries dropped} for each cache of an imported module.
    """
    dropped = {}
    for module_name, name in CACHES:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        cached = getattr(module, name)
        dropped[f"{module_name}.{name}"] = cached.cache_info().currsize
        cached.cache_clear()
    if jax_caches:
        import jax  # noqa: PLC0415 - only here: clearing the package's caches imports nothing

        jax.clear_caches()
    return dropped


__all__ = ["CACHES", "clear_caches"]
