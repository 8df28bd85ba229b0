"""A small noise-level-conditioned denoiser (DRUNet-style, Zhang et al. 2021), channels last.

The prior step of plug-and-play deconvolution (`jaxdeblur.deconv.pnp_hqs`):
one network for every noise level, told the level by an extra input channel
(a constant map of sigma, in [0, 1] intensity units).

Network (`Denoiser`): concat(x, sigma map) -> 3x3 conv to widths[0]; per
encoder level `blocks` residual blocks (x + conv3x3(relu(conv3x3(x)))) then a
2x2 stride-2 conv to the next width; at the coarsest width `blocks` residual
blocks; per decoder level a 1x1 conv to 4x the next width and a 2x pixel
shuffle, the encoder skip added, `blocks` residual blocks; a 3x3 conv to the
image channels. The network predicts the clean image directly (DRUNet: no
global residual; here x + net(x), which trains faster at few steps). No
normalisation layers and no biases (DRUNet's choice: the denoiser then
commutes with scaling of (x, sigma) up to the ReLUs). Zero padding; inputs of
any size (padded by replication to a multiple of 2^levels, cropped back).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.functional import torch_conv
from jaxdeblur.nets.nafnet_ops import pixel_shuffle


def _conv3(x: jax.Array, conv: nnx.Conv) -> jax.Array:
    return conv(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))))


class ResBlock(nnx.Module):
    """x + conv3x3(relu(conv3x3(x))), width c, no bias; (N, H, W, c) -> same."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv1 = torch_conv(channels, channels, 3, bias=False, rngs=rngs)
        self.conv2 = torch_conv(channels, channels, 3, bias=False, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + _conv3(jax.nn.relu(_conv3(x, self.conv1)), self.conv2)


class Denoiser(nnx.Module):
    """Noise-level-conditioned U-Net denoiser: (x (N, H, W, C), sigma (N,)) -> (N, H, W, C), unclamped.

    Args:
      channels: image channels C (1 gray; colour images are denoised channel by channel by callers).
      widths: feature channels per level, finest first (e.g. (16, 32, 64, 128)).
      blocks: residual blocks per encoder / decoder level and at the coarsest level.
    """

    def __init__(self, channels: int = 1, widths: Sequence[int] = (16, 32, 64, 128), blocks: int = 1, *,
                 rngs: nnx.Rngs):
        widths = tuple(int(w) for w in widths)
        if channels < 1 or len(widths) < 1 or min(widths) < 1 or blocks < 0:
            raise ValueError(f"need channels >= 1, positive widths and blocks >= 0, got {channels}, {widths}, "
                             f"{blocks}")
        self.levels = len(widths) - 1
        self.head = torch_conv(channels + 1, widths[0], 3, bias=False, rngs=rngs)
        self.encoders = nnx.List([nnx.List([ResBlock(w, rngs=rngs) for _ in range(blocks)]) for w in widths[:-1]])
        self.downs = nnx.List([torch_conv(a, b, 2, stride=2, bias=False, rngs=rngs)
                               for a, b in zip(widths[:-1], widths[1:])])
        self.middle = nnx.List([ResBlock(widths[-1], rngs=rngs) for _ in range(blocks)])
        self.ups = nnx.List([torch_conv(b, 4 * a, 1, bias=False, rngs=rngs)
                             for a, b in zip(widths[:-1], widths[1:])])
        self.decoders = nnx.List([nnx.List([ResBlock(w, rngs=rngs) for _ in range(blocks)]) for w in widths[:-1]])
        self.tail = torch_conv(widths[0], channels, 3, bias=False, rngs=rngs)

    def __call__(self, x: jax.Array, sigma: jax.Array) -> jax.Array:
        """Denoises x (N, H, W, C) in [0, 1] with noise std `sigma` ((N,) or a scalar, [0, 1] units)."""
        n, h, w, _ = x.shape
        m = 2**self.levels
        inp = jnp.pad(x, ((0, 0), (0, -h % m), (0, -w % m), (0, 0)), mode="edge")
        level = jnp.broadcast_to(jnp.reshape(jnp.asarray(sigma, x.dtype), (-1, 1, 1, 1)), (n, *inp.shape[1:3], 1))
        f = _conv3(jnp.concatenate([inp, level], axis=-1), self.head)
        skips = []
        for blocks, down in zip(self.encoders, self.downs):
            for block in blocks:
                f = block(f)
            skips.append(f)
            f = down(f)
        for block in self.middle:
            f = block(f)
        for up, blocks, skip in zip(reversed(self.ups), reversed(self.decoders), reversed(skips)):
            f = pixel_shuffle(up(f)) + skip
            for block in blocks:
                f = block(f)
        out = inp + _conv3(f, self.tail)
        return out[:, :h, :w, :]


def parameter_count(model: nnx.Module) -> int:
    """The number of trainable scalars of a module."""
    return sum(int(p.size) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
