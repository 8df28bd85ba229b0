"""Flax NNX modules as pure functions, and the PyTorch-default layers of the nets.

The engine builds a module once, splits it into a static graph definition and
two pytrees, and from then on works with plain `jax.jit` / `jax.vmap` /
`jax.grad` / `lax.scan` on those pytrees::

    graphdef, params, state = split_module(SkipGenerator(rngs=nnx.Rngs(0)))
    out, state = apply(graphdef, params, state, z)               # one forward
    grads = jax.grad(lambda p: loss(apply(graphdef, p, state, z)[0]))(params)

- `params` holds every `nnx.Param` (what an optimiser updates);
- `state` holds everything else: `nnx.BatchStat` running statistics (updated
  on every training-mode BatchNorm call and returned as `new_state`) and any
  other non-parameter variables. The nets of this package keep no RNG state:
  randomness (dropout) comes in as explicit keys at call time.

`apply` is pure: it never mutates its inputs, so it can be vmapped over
stacked parameter sets (one leading axis on `params` and `state`) to run many
independent networks in one call.

`torch_conv`, `torch_linear` and `torch_batch_norm` build the layers of the
nets with PyTorch's default initialisation and BatchNorm settings, so the
networks start like the PyTorch originals (SelfDeblur / Deep Image Prior).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.conv import conv_general_dilated
from jaxdeblur.nets.platform import use as use_platform

# PyTorch's default weight init, kaiming_uniform(a=sqrt(5)), is U(-b, b) with
# b = sqrt(1 / fan_in): variance scaling 1/3 with a uniform distribution.
_torch_weight_init = jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_bias_init(fan_in: int) -> Callable[..., jax.Array]:
    """PyTorch's default bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_conv(in_features: int, out_features: int, kernel_size: int, *, stride: int = 1, groups: int = 1,
               bias: bool = True, rngs: nnx.Rngs) -> nnx.Conv:
    """Square 2-D conv (NHWC), 'VALID' padding, PyTorch default init and bias.

    Padding is the caller's job (the nets pad by reflection or zeros before
    k > 1 convs). `groups` = in_features makes it depthwise. Its gradient is
    `jaxdeblur.nets.conv`'s, fast inside `lax.scan` on CPUs (one group).
    """
    fan_in = (in_features // groups) * kernel_size * kernel_size
    return nnx.Conv(in_features, out_features, (kernel_size, kernel_size), strides=stride, padding="VALID",
                    feature_group_count=groups, use_bias=bias, kernel_init=_torch_weight_init,
                    bias_init=_torch_bias_init(fan_in), conv_general_dilated=conv_general_dilated, rngs=rngs)


def torch_linear(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    """Dense layer with PyTorch's default init (weight and bias)."""
    return nnx.Linear(in_features, out_features, kernel_init=_torch_weight_init,
                      bias_init=_torch_bias_init(in_features), rngs=rngs)


def torch_batch_norm(num_features: int, *, zero_init: bool = False, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """BatchNorm over the last axis as PyTorch's BatchNorm2d in training mode.

    Always normalises with the batch statistics (biased variance, eps 1e-5),
    never with the running ones (DIP methods never switch to eval mode),
    two-pass variance (not E[x^2] - E[x]^2); the
    running statistics are still updated with PyTorch's momentum 0.1 (flax
    momentum 0.9), with the biased variance where PyTorch uses the unbiased
    one. `zero_init` sets scale and bias to 0 (the output starts at zero).
    """
    init = nnx.initializers.zeros if zero_init else nnx.initializers.ones
    return nnx.BatchNorm(num_features, use_running_average=False, momentum=0.9, epsilon=1e-5,
                         use_fast_variance=False, scale_init=init, bias_init=nnx.initializers.zeros, rngs=rngs)


def split_module(module: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
    """Splits `module` into (graphdef, params, state).

    `params` are the `nnx.Param` variables, `state` every other variable
    (BatchNorm running statistics, ...). `graphdef` is static and hashable.
    """
    graphdef, params, state = nnx.split(module, nnx.Param, ...)
    return graphdef, params, state


def apply(
    graphdef: nnx.GraphDef,
    params: nnx.State,
    state: nnx.State,
    *args: Any,
    method: str = "__call__",
    platform: str | None = None,
    **kwargs: Any,
) -> tuple[Any, nnx.State]:
    """Calls `module.<method>(*args, **kwargs)` on the merged module, purely.

    Returns (output, new_state), where `new_state` has the structure of
    `state` and carries the variables the call updated (BatchNorm running
    statistics). `params` are not changed by a call and are not returned.
    Jit-, vmap- and grad-able in `params`, `state` and the array arguments.
    `platform`: trace the nets' ops for it ("cpu": their CPU fast paths); None:
    the platform the caller traces for (`jaxdeblur.nets.platform.resolve`).
    """
    # copy=True: fresh Variables at the current trace level, so BatchNorm may
    # update its statistics inside jax.grad / lax.scan of the caller.
    module = nnx.merge(graphdef, params, state, copy=True)
    with use_platform(platform):
        out = getattr(module, method)(*args, **kwargs)
    _, _, new_state = nnx.split(module, nnx.Param, ...)
    return out, new_state
