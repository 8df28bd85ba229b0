"""A trained denoiser as functions: a pure, jit-able `apply` (for plug-and-play loops) and a checked call."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdeblur.models.denoiser.config import DenoiserConfig
from jaxdeblur.models.tiling import tiled_apply
from jaxdeblur.nets.denoiser import Denoiser


class DenoiserFn:
    """Calls a trained `Denoiser`.

    `apply(x, sigma)`: pure jnp function, x (N, H, W, C) with C the model's
    channels, sigma a scalar std in [0, 1] units -> (N, H, W, C), unclamped;
    usable inside jit / vmap / lax loops (the weights are closed over as
    constants). Images larger than `tile` run in overlapping tiles
    (`jaxdeblur.models.tiling`), so the memory of a large photo stays bounded.
    `__call__(images, sigma)`: (H, W), (H, W, C) or (N, H, W, C) float -> the
    same shape, clamped to [0, 1]; a gray model denoises colour channel by channel.
    """

    def __init__(self, model: Denoiser, config: DenoiserConfig, *, tile: int = 512, margin: int = 32):
        self.config = config
        self.tile, self.margin = int(tile), int(margin)
        self._graphdef, self._state = nnx.split(model)
        self._jitted = jax.jit(self.apply)

    def apply(self, x: jax.Array, sigma) -> jax.Array:
        net = nnx.merge(self._graphdef, self._state)
        return tiled_apply(lambda t: net(t, sigma), x, tile=self.tile, margin=self.margin)

    def __call__(self, images, sigma) -> np.ndarray:
        x = np.asarray(images, np.float32)
        if x.ndim not in (2, 3, 4) or x.size == 0 or not np.isfinite(x).all():
            raise ValueError(f"images must be finite (H, W), (H, W, C) or (N, H, W, C), got shape {x.shape}")
        if not float(sigma) >= 0:
            raise ValueError(f"sigma must be a non-negative std in [0, 1] units, got {sigma}")
        shape = x.shape
        x4 = x[..., None] if x.ndim == 2 else x
        x4 = x4[None] if x4.ndim == 3 else x4
        n, h, w, c = x4.shape
        if self.config.channels == 1 and c > 1:
            x4 = x4.transpose(0, 3, 1, 2).reshape(n * c, h, w, 1)
        out = np.asarray(jnp.clip(self._jitted(jnp.asarray(x4), jnp.float32(sigma)), 0.0, 1.0))
        if self.config.channels == 1 and c > 1:
            out = out.reshape(n, c, h, w).transpose(0, 2, 3, 1)
        return out.reshape(shape)
