"""Kernel generators: SelfDeblur's G_k and Nair & Patel's refinement network.

Both are 2-layer fully connected nets ending in a softmax over all kh * kw
entries, so a kernel is non-negative and sums to 1:

    KernelGenerator: z (in_features) -> Linear -> ReLU6 -> Linear -> softmax -> (kh, kw)
    RefinementNet:   [k_mean, k_var] (2 kh kw) -> Linear -> ReLU6 -> Linear -> softmax -> (kh, kw)

`logits` returns the pre-softmax values, shaped (..., kh, kw), for callers
that apply their own (e.g. masked) softmax.

Dropout (Monte-Carlo dropout of Nair & Patel, "dropout on each layer", p=0.2,
after Gal & Ghahramani: dropout before every weight layer) is applied by
`KernelGenerator` at two sites when `dropout_rate > 0` AND a key is given:

    1. on the input z, before the first Linear;
    2. on the hidden ReLU6 activations, before the second Linear.

Nothing is dropped after the last Linear (the logits). Kept units are scaled
by 1 / (1 - rate). The key is an explicit call argument, so the modules keep
no RNG state: `jax.vmap` over M keys gives M independent dropout samples in
one pass, and the same key always gives the same kernel. Without a key the
net is deterministic (no dropout, no rescaling).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.functional import torch_linear


def _check_kernel_size(kernel_size: Sequence[int]) -> tuple[int, int]:
    size = tuple(int(s) for s in kernel_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"kernel_size must be two positive ints (kh, kw), got {kernel_size}")
    return size


class _KernelMLP(nnx.Module):
    """Linear -> ReLU6 -> Linear to kh * kw logits, with optional dropout before each Linear."""

    def __init__(self, kernel_size: Sequence[int], in_features: int, hidden: int, dropout_rate: float, *,
                 rngs: nnx.Rngs):
        self.kernel_size = _check_kernel_size(kernel_size)
        if in_features < 1 or hidden < 1:
            raise ValueError(f"in_features and hidden must be >= 1, got {in_features}, {hidden}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
        self.in_features = in_features
        self.dropout_rate = dropout_rate
        kh, kw = self.kernel_size
        self.hidden_layer = torch_linear(in_features, hidden, rngs=rngs)
        self.output_layer = torch_linear(hidden, kh * kw, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate)

    def _logits(self, x: jax.Array, key: jax.Array | None) -> jax.Array:
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"expected input of shape (..., {self.in_features}), got {x.shape}")
        if key is None:
            keys = (None, None)
            deterministic = True
        else:
            keys = tuple(jax.random.split(key))
            deterministic = False
        x = self.dropout(x, deterministic=deterministic, rngs=keys[0])
        h = jax.nn.relu6(self.hidden_layer(x))
        h = self.dropout(h, deterministic=deterministic, rngs=keys[1])
        return self.output_layer(h).reshape(*x.shape[:-1], *self.kernel_size)


def _softmax_kernel(logits: jax.Array) -> jax.Array:
    """Softmax over the last two axes (kh, kw) jointly."""
    flat = logits.reshape(*logits.shape[:-2], -1)
    return jax.nn.softmax(flat, axis=-1).reshape(logits.shape)


class KernelGenerator(_KernelMLP):
    """SelfDeblur's G_k: z (..., in_features) -> kernel (..., kh, kw), non-negative, sums to 1.

    Args:
      kernel_size: (kh, kw).
      in_features: length of the input noise vector z (200 in SelfDeblur).
      hidden: hidden width (1000).
      dropout_rate: Monte-Carlo dropout rate (0 for SelfDeblur, 0.2 for Nair
        & Patel), applied on z and on the hidden activations when a key is
        passed (see the module docstring).
      rngs: parameter initialisation keys.
    """

    def __init__(self, kernel_size: Sequence[int], *, in_features: int = 200, hidden: int = 1000,
                 dropout_rate: float = 0.0, rngs: nnx.Rngs):
        super().__init__(kernel_size, in_features, hidden, dropout_rate, rngs=rngs)

    def logits(self, z: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """Pre-softmax kernel (..., kh, kw); `key` draws the dropout masks (None: no dropout)."""
        return self._logits(z, key)

    def __call__(self, z: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """Kernel (..., kh, kw): softmax of `logits(z, key=key)` over all kh * kw entries."""
        return _softmax_kernel(self.logits(z, key=key))


class RefinementNet(_KernelMLP):
    """Nair & Patel's kernel refinement network: (k_mean, k_var) -> refined kernel (kh, kw).

    "A simple 2 layer FCN" on the first and second moments of the Monte-Carlo
    kernels, with a softmax after the last layer; no dropout (the paper puts
    dropout in the base kernel network only). The hidden activation is not
    stated in the paper; ReLU6 as in the base network.

    Args:
      kernel_size: (kh, kw).
      hidden: hidden width.
      rngs: parameter initialisation keys.
    """

    def __init__(self, kernel_size: Sequence[int], *, hidden: int = 1000, rngs: nnx.Rngs):
        kh, kw = _check_kernel_size(kernel_size)
        super().__init__((kh, kw), 2 * kh * kw, hidden, 0.0, rngs=rngs)

    def logits(self, k_mean: jax.Array, k_var: jax.Array) -> jax.Array:
        """Pre-softmax refined kernel (..., kh, kw) from (..., kh, kw) mean and variance."""
        if k_mean.shape[-2:] != self.kernel_size or k_var.shape != k_mean.shape:
            raise ValueError(f"k_mean and k_var must both have shape (..., {self.kernel_size[0]}, "
                             f"{self.kernel_size[1]}), got {k_mean.shape} and {k_var.shape}")
        lead = k_mean.shape[:-2]
        x = jnp.concatenate([k_mean.reshape(*lead, -1), k_var.reshape(*lead, -1)], axis=-1)
        return self._logits(x, None)

    def __call__(self, k_mean: jax.Array, k_var: jax.Array) -> jax.Array:
        """Refined kernel (..., kh, kw), non-negative, summing to 1."""
        return _softmax_kernel(self.logits(k_mean, k_var))
