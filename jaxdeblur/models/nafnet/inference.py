"""A trained NAFNet as a ready function: images of any shape and channel count in, restored images out."""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.models.nafnet.config import NAFNetConfig
from jaxdeblur.models.tiling import tiled_apply
from jaxdeblur.nets.nafnet import NAFNet, restore


class NAFNetRestorer:
    """Calls a NAFNet on images: (H, W), (H, W, C) or (N, H, W, C) float in [0, 1] -> the same shape.

    A gray model (config.channels == 1) restores colour images channel by
    channel; an RGB model sees a gray image as three equal channels and
    returns their mean. Images larger than `tile` run in overlapping tiles
    (`jaxdeblur.models.tiling`), so memory stays bounded on large photos; the
    blocks' channel attention pools over its whole input, so a tiled result
    differs slightly from a whole-image one (TLC, Chen et al., is the
    reference's remedy). The output is clamped to [0, 1].
    """

    def __init__(self, model: NAFNet, config: NAFNetConfig, *, tile: int = 1024, margin: int = 32):
        self.config = config
        self.tile, self.margin = int(tile), int(margin)
        graphdef, state = nnx.split(model)

        @jax.jit
        def run(x):
            return tiled_apply(lambda t: restore(nnx.merge(graphdef, state), t), x, tile=self.tile, margin=self.margin)

        self._run = run

    def __call__(self, images) -> np.ndarray:
        x = np.asarray(images, np.float32)
        if x.ndim not in (2, 3, 4) or (x.ndim >= 3 and x.shape[-1] not in (1, 3)):
            raise ValueError(f"images must be (H, W), (H, W, C) or (N, H, W, C) with C in (1, 3), got {x.shape}")
        if x.size == 0 or not np.isfinite(x).all():
            raise ValueError("images must be non-empty and finite")
        shape = x.shape
        x4 = x[..., None] if x.ndim == 2 else x
        x4 = x4[None] if x4.ndim == 3 else x4
        n, h, w, c = x4.shape
        if self.config.channels == 1 and c > 1:  # channels as a batch of gray images
            out = self._run(jnp.asarray(x4.transpose(0, 3, 1, 2).reshape(n * c, h, w, 1)))
            out = np.asarray(out).reshape(n, c, h, w).transpose(0, 2, 3, 1)
        elif self.config.channels == 3 and c == 1:
            out = np.asarray(self._run(jnp.repeat(jnp.asarray(x4), 3, axis=-1))).mean(-1, keepdims=True)
        else:
            out = np.asarray(self._run(jnp.asarray(x4)))
        return out.reshape(shape)
