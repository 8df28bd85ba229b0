"""What a DIP method gives the engine: networks, fixed inputs, loss, estimate.

The engine (`jaxdeblur.engine.runner`) owns everything else: run state,
optimiser, jitted step, scanned chunks, batching, sharding, checkpoints,
progress and history. A method is a stateless object; its numbers live in a
frozen config dataclass (`jaxdeblur.config`).
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

import jax
import optax
from flax import nnx

PyTree = Any


class DIPMethod(Protocol):
    """The interface every DIP method implements (see `methods/selfdeblur.py`)."""

    name: str
    presets: Mapping[str, Any]

    def networks(self, cfg, latent_shape: tuple[int, int, int], kernel_size: tuple[int, int],
                 rngs: nnx.Rngs) -> dict[str, nnx.Module]:
        """Builds the method's Flax modules for one run."""

    def inputs(self, cfg, key: jax.Array, latent_shape: tuple[int, int, int]) -> PyTree:
        """The fixed random network inputs of one run (e.g. DIP noise codes)."""

    def init_method_state(self, cfg, latent_shape: tuple[int, int, int],
                          kernel_size: tuple[int, int]) -> PyTree:
        """Extra per-run state carried through the steps (e.g. a ring buffer); {} if none."""

    def loss(self, cfg, nets, params: PyTree, net_state: PyTree, inputs: PyTree, method_state: PyTree,
             y: jax.Array, step: jax.Array, key: jax.Array) -> tuple[jax.Array, tuple[dict, PyTree, PyTree]]:
        """Scalar loss and (named loss terms, new network state, new method state)."""

    def estimate(self, cfg, nets, params: PyTree, net_state: PyTree, inputs: PyTree,
                 method_state: PyTree) -> tuple[jax.Array, jax.Array, dict]:
        """(latent image (H+kh-1, W+kw-1, C), kernel (kh, kw), extra outputs)."""

    def optimizer(self, cfg) -> optax.GradientTransformation:
        """The optax optimiser over the params dict {network name: params}."""


# Optional hooks (the engine uses them when a method defines them):
#
#   shared(cfg) -> PyTree
#       Run-shared constants, e.g. the parameters of a frozen pretrained network: ONE copy,
#       replicated on every device and passed to every step of every run (never a per-run
#       leaf of the state, never differentiated). `loss` and `estimate` see them as
#       `nets.shared`. Default: none.
#   latent_shape(cfg, image_shape, kernel_size) -> (h, w, c)
#       The latent the generator makes. Default (H + kh - 1, W + kw - 1, C), the 'valid' model.
#   image_offset(cfg, kernel_size) -> (oy, ox)
#       Where the image sits in that latent (crop latent[oy:oy + H, ox:ox + W]).
#       Default ((kh - 1) // 2, (kw - 1) // 2). See `runner.method_latent_shape` / `runner.image_offset`.
