"""Embedded dot-product non-local block (Wang et al. 2018), as in SelfDeblur.

For features x of shape (N, H, W, C) the block computes

    theta = conv1x1(x), phi = maxpool2x2(conv1x1(x)), g = maxpool2x2(conv1x1(x))
    y     = (theta . phi^T / Np) . g        (dot-product attention, no softmax)
    out   = x + BN(conv1x1(y))

with theta / phi / g of `inner_channels` (C // 2 by default) channels, Np the
number of positions of phi (H//2 * W//2 after the 2x2 max pool, which drops an
odd last row / column like PyTorch's MaxPool2d), and a final BatchNorm whose
scale and bias start at zero, so the block is the identity at initialisation.

Cost: without a softmax the product is associative, so y is computed as
theta . (phi^T . g / Np): a (Ci x Ci) context matrix instead of the
(HW x Np) attention matrix of the original code. Same result up to float
rounding, O(HW * Ci^2) time and no HW x Np memory (at level 2 of a 271 x 271
SelfDeblur input, 68 x 68 features: 4624 x 1156 would otherwise be
materialised per image).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.functional import torch_batch_norm, torch_conv
from jaxdeblur.nets.fused import batch_norm_act


class NonLocalBlock(nnx.Module):
    """Dot-product non-local block on (N, H, W, channels) features.

    Args:
      channels: number of input (and output) channels C.
      inner_channels: channels of the theta / phi / g embeddings; default
        max(C // 2, 1).
      subsample: 2x2 max-pool phi and g (needs H, W >= 2).
      rngs: parameter initialisation keys.
    """

    def __init__(self, channels: int, *, inner_channels: int | None = None, subsample: bool = True,
                 rngs: nnx.Rngs):
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if inner_channels is None:
            inner_channels = max(channels // 2, 1)
        if inner_channels < 1:
            raise ValueError(f"inner_channels must be >= 1, got {inner_channels}")
        self.channels = channels
        self.inner_channels = inner_channels
        self.subsample = subsample
        self.theta = torch_conv(channels, inner_channels, 1, rngs=rngs)
        self.phi = torch_conv(channels, inner_channels, 1, rngs=rngs)
        self.g = torch_conv(channels, inner_channels, 1, rngs=rngs)
        self.out_conv = torch_conv(inner_channels, channels, 1, rngs=rngs)
        self.out_norm = torch_batch_norm(channels, zero_init=True, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Returns x + W(y), shape (N, H, W, C) like `x`."""
        if x.ndim != 4 or x.shape[-1] != self.channels:
            raise ValueError(f"expected (N, H, W, {self.channels}) features, got shape {x.shape}")
        n, h, w, _ = x.shape
        if self.subsample and min(h, w) < 2:
            raise ValueError(f"subsampling needs H, W >= 2, got {h} x {w}")
        phi, g = self.phi(x), self.g(x)
        if self.subsample:
            phi = nnx.max_pool(phi, (2, 2), strides=(2, 2))
            g = nnx.max_pool(g, (2, 2), strides=(2, 2))
        phi = phi.reshape(n, -1, self.inner_channels)
        g = g.reshape(n, -1, self.inner_channels)
        context = jnp.einsum("npc,npd->ncd", phi, g) / phi.shape[1]
        theta = self.theta(x).reshape(n, h * w, self.inner_channels)
        y = jnp.einsum("nqc,ncd->nqd", theta, context).reshape(n, h, w, self.inner_channels)
        return x + batch_norm_act(self.out_norm, self.out_conv(y))
