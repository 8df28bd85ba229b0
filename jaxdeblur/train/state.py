"""`TrainState`: everything a training run carries from step to step, as one pytree."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from flax import nnx


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    """The state of a training run (a pytree: checkpointed whole, replicated over devices).

    Attributes:
      step: int32 (): optimiser steps taken (skipped ones included).
      params: the trainable variables (`Task.trainable()`), float32.
      rest: every other variable of the model: frozen parameters, BatchNorm
        statistics, ...; replaced by the values the model holds after each
        training call (frozen parameters stay as they are).
      opt_state: the optax state of `params`.
      key: uint32 (2,): raw data of the run's base PRNG key; step s uses
        ``fold_in(key, s)``, so a resumed run draws exactly the same keys.
      skipped: int32 (): steps whose update was skipped because the loss or
        a gradient was not finite.
    """

    step: jax.Array
    params: nnx.State
    rest: nnx.State
    opt_state: Any
    key: jax.Array
    skipped: jax.Array


def model_of(graphdef: nnx.GraphDef, state: TrainState) -> nnx.Module:
    """The live module holding `state`'s variables (a fresh copy, safe to call and mutate)."""
    return nnx.merge(graphdef, state.params, state.rest, copy=True)
