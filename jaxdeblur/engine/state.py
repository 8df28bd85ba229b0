"""The state of one DIP run (or of a batch of runs, with a leading run axis)."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct


@struct.dataclass
class RunState:
    """Everything a DIP run needs to continue: a pytree, jit/vmap/shard-able.

    Fields (shapes for one run; a batch adds a leading axis R to every leaf):
      params:       {network name: parameter pytree}
      net_state:    {network name: non-parameter state (BatchNorm statistics)}
      opt_state:    optax state of the method's optimiser
      inputs:       fixed random network inputs (DIP noise codes)
      method_state: extra per-method state (e.g. a ring buffer of outputs)
      y:            the observed blurred image, (H, W, C) float32 in [0, 1]
      step:         int32 scalar, iterations done
      key:          raw PRNG key data (jax.random.key_data) for the per-step
                    randomness; raw so states can live on the host and in checkpoints
    """

    params: Any
    net_state: Any
    opt_state: Any
    inputs: Any
    method_state: Any
    y: jax.Array
    step: jax.Array
    key: jax.Array
