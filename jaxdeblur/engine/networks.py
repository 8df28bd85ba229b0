"""Flax NNX modules as pure functions: static graph definitions + param pytrees.

`build_networks` traces a method's modules once (abstractly, no compute) to
get their static graph definitions, and returns a jit-able `init` that makes
the parameter and state pytrees of one run from a key. `Networks.apply` is the
pure call used inside the jitted step (merge, call, re-split: BatchNorm batch
statistics come back as new state). Inside a step `Networks.shared` holds the
method's run-shared constants (frozen pretrained parameters, the same for
every run; `DIPMethod.shared`), passed to the step as an argument.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from flax import nnx

from jaxdeblur.nets.functional import apply as apply_module
from jaxdeblur.nets.functional import split_module


@dataclasses.dataclass(frozen=True, eq=False)
class Networks:
    """Static graph definitions of a run's networks, by name; `shared`: the run-shared constants in a step."""

    graphdefs: Mapping[str, Any]
    shared: Any = None

    def with_shared(self, shared) -> "Networks":
        """These networks with `shared` (a pytree of arrays, traced inside the step) attached."""
        return dataclasses.replace(self, shared=shared)

    def apply(self, name: str, params, net_state, *args, **kwargs):
        """Applies network `name`; returns (output, new state of that network)."""
        return apply_module(self.graphdefs[name], params[name], net_state[name], *args, **kwargs)


def build_networks(make: Callable[[nnx.Rngs], Mapping[str, nnx.Module]]) -> tuple[Networks, Callable]:
    """Returns (Networks, init) for `make(rngs) -> {name: module}`.

    init(key) -> (params, net_state), each a dict {name: pytree}; pure and
    vmappable over keys, so a batch of runs is initialised in one call with
    exactly the values each run would get alone.
    """

    def split_all(key):
        modules = make(nnx.Rngs(key))
        return {name: split_module(m) for name, m in modules.items()}

    abstract = nnx.eval_shape(lambda: {n: m for n, m in make(nnx.Rngs(0)).items()})
    graphdefs = {name: split_module(m)[0] for name, m in abstract.items()}

    def init(key):
        parts = split_all(key)
        return {n: p[1] for n, p in parts.items()}, {n: p[2] for n, p in parts.items()}

    return Networks(graphdefs), init
