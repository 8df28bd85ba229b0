"""Run an image-to-image network on a large image in overlapping tiles, so memory stays bounded.

A tile of side `tile` is processed with `margin` extra pixels of context on
every side (edge-replicated at the image border) and only its centre is
kept, so for a network whose receptive field fits in the margin the result
equals the whole-image one; beyond it the seams are the approximation.
The tiles run one after another through `lax.map` (one compiled program),
so peak memory is that of one (tile + 2 margin)^2 tile.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp


def tiled_apply(fn: Callable[[jax.Array], jax.Array], x: jax.Array, *, tile: int = 512, margin: int = 32) -> jax.Array:
    """fn applied to x (N, H, W, C) tile by tile; fn maps (N, h, w, C) -> (N, h, w, C').

    Args:
      fn: the network, jit-able, same spatial size in and out.
      x: images (N, H, W, C).
      tile: side of the kept part of each tile in pixels (>= 1).
      margin: context pixels around each tile (>= 0).

    Returns:
      (N, H, W, C') float32. When H, W <= tile the image is processed whole.
    """
    if tile < 1 or margin < 0:
        raise ValueError(f"need tile >= 1 and margin >= 0, got tile={tile}, margin={margin}")
    n, h, w, c = x.shape
    if h <= tile and w <= tile:
        return fn(x)
    rows, cols = math.ceil(h / tile), math.ceil(w / tile)
    padded = jnp.pad(x, ((0, 0), (margin, margin + rows * tile - h), (margin, margin + cols * tile - w), (0, 0)),
                     mode="edge")
    side = tile + 2 * margin
    origins = jnp.array([(i * tile, j * tile) for i in range(rows) for j in range(cols)])

    def one(origin):
        window = jax.lax.dynamic_slice(padded, (0, origin[0], origin[1], 0), (n, side, side, c))
        return fn(window)[:, margin : margin + tile, margin : margin + tile]

    out = jax.lax.map(one, origins)  # (rows * cols, N, tile, tile, C')
    out = out.reshape(rows, cols, n, tile, tile, -1).transpose(2, 0, 3, 1, 4, 5)
    return out.reshape(n, rows * tile, cols * tile, -1)[:, :h, :w]
