"""NAFNet (Chen et al. 2022): a U-Net of nonlinear-activation-free blocks, channels last.

Images are (N, H, W, C) float32 in [0, 1]; any H and W (the input is padded
with zeros at the bottom and right to a multiple of 2^levels and the output
cropped back). The network predicts a residual: out = x + net(x).

Block (`NAFBlock`, width c):

    y = x + beta * conv1x1(SCA(SimpleGate(dwconv3x3(conv1x1_{c->2c}(LN(x))))))
    out = y + gamma * conv1x1(SimpleGate(conv1x1_{c->2c}(LN(y))))

with LN a per-pixel LayerNorm over channels (eps 1e-6), SimpleGate the
product of the two channel halves, SCA the simplified channel attention
x * conv1x1(mean over H, W of x), and beta, gamma per-channel residual
scales initialised to zero (every block starts as the identity).

Network: a 3x3 intro conv to `width` channels; per encoder level its blocks
then a 2x2 stride-2 conv doubling the channels; the middle blocks; per
decoder level a 1x1 conv doubling the channels (no bias) and a 2x pixel
shuffle (PyTorch's channel order), the encoder skip added, then its blocks;
a 3x3 ending conv back to the image channels. Convolutions use PyTorch's
default initialisation (as the reference code) and zero padding. The
layers are the pure functions of `jaxdeblur.nets.nafnet_ops` (hand-written
backward passes for XLA:CPU); the modules here hold their parameters in the
reference code's layout (every conv an `nnx.Conv`).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.functional import torch_conv as _conv
from jaxdeblur.nets.nafnet_ops import (depthwise3x3, layer_norm_channels, pixel_shuffle, pointwise_conv, simple_gate,
                                       zero_pad)


class LayerNorm2d(nnx.Module):
    """LayerNorm over the channels of every pixel (eps 1e-6), learned scale and bias per channel
    (`layer_norm_channels`)."""

    def __init__(self, channels: int, *, eps: float = 1e-6):
        self.scale = nnx.Param(jnp.ones((channels,)))
        self.bias = nnx.Param(jnp.zeros((channels,)))
        self.eps = eps

    def __call__(self, x: jax.Array) -> jax.Array:
        return layer_norm_channels(x, self.scale[...], self.bias[...], self.eps)


class NAFBlock(nnx.Module):
    """One NAFNet block of width `channels` (see the module docstring); (N, H, W, c) -> same."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        c, dw = channels, 2 * channels
        self.norm1 = LayerNorm2d(c)
        self.expand = _conv(c, dw, 1, rngs=rngs)
        self.depthwise = _conv(dw, dw, 3, groups=dw, rngs=rngs)
        self.attention = _conv(c, c, 1, rngs=rngs)
        self.project = _conv(c, c, 1, rngs=rngs)
        self.beta = nnx.Param(jnp.zeros((c,)))
        self.norm2 = LayerNorm2d(c)
        self.ffn_expand = _conv(c, 2 * c, 1, rngs=rngs)
        self.ffn_project = _conv(c, c, 1, rngs=rngs)
        self.gamma = nnx.Param(jnp.zeros((c,)))

    def __call__(self, x: jax.Array, *, branch_input: jax.Array | None = None) -> jax.Array:
        """x (N, H, W, c) -> same. `branch_input` (same shape) replaces x as the input of the first half's
        branch while the residual still adds x (UFPNet's kernel attention enters this way)."""
        h = _pointwise(self.expand, self.norm1(x if branch_input is None else branch_input))
        h = simple_gate(depthwise3x3(h, self.depthwise.kernel[...], self.depthwise.bias[...]))
        h = h * self.attention(jnp.mean(h, axis=(1, 2), keepdims=True))
        y = x + _pointwise(self.project, h, self.beta[...])
        h = simple_gate(_pointwise(self.ffn_expand, self.norm2(y)))
        return y + _pointwise(self.ffn_project, h, self.gamma[...])


def _pointwise(conv: nnx.Conv, x: jax.Array, scale: jax.Array | None = None) -> jax.Array:
    """A 1x1 `nnx.Conv` of the block applied as `pointwise_conv` (its kernel (1, 1, Cin, Cout) as a matrix)."""
    kernel = conv.kernel[...]
    return pointwise_conv(x, kernel.reshape(kernel.shape[2:]), conv.bias[...], scale)


def _blocks(channels: int, count: int, rngs: nnx.Rngs) -> nnx.List:
    return nnx.List([NAFBlock(channels, rngs=rngs) for _ in range(count)])


class NAFNet(nnx.Module):
    """NAFNet image restoration network, (N, H, W, C) -> (N, H, W, C).

    Args:
      channels: image channels C (1 gray, 3 RGB).
      width: channels after the intro conv (paper: 32 or 64).
      enc_blocks: blocks per encoder level (paper: (1, 1, 1, 28)); its length
        is the number of levels L, so inputs are padded to a multiple of 2^L.
      middle_blocks: blocks at the lowest resolution (paper: 1).
      dec_blocks: blocks per decoder level, same length as enc_blocks
        (paper: (1, 1, 1, 1)).
    """

    def __init__(self, channels: int = 3, width: int = 32, enc_blocks: Sequence[int] = (1, 1, 1, 28),
                 middle_blocks: int = 1, dec_blocks: Sequence[int] = (1, 1, 1, 1), *, rngs: nnx.Rngs):
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError(f"enc_blocks {tuple(enc_blocks)} and dec_blocks {tuple(dec_blocks)} need equal lengths")
        if channels < 1 or width < 1 or min((*enc_blocks, *dec_blocks, middle_blocks), default=0) < 0:
            raise ValueError("channels and width must be positive and block counts non-negative")
        self.levels = len(enc_blocks)
        self.intro = _conv(channels, width, 3, rngs=rngs)
        self.ending = _conv(width, channels, 3, rngs=rngs)
        encoders, downs, c = [], [], width
        for n in enc_blocks:
            encoders.append(_blocks(c, n, rngs))
            downs.append(_conv(c, 2 * c, 2, stride=2, rngs=rngs))
            c *= 2
        self.encoders, self.downs = nnx.List(encoders), nnx.List(downs)
        self.middle = _blocks(c, middle_blocks, rngs)
        ups, decoders = [], []
        for n in dec_blocks:
            ups.append(_conv(c, 2 * c, 1, bias=False, rngs=rngs))
            c //= 2
            decoders.append(_blocks(c, n, rngs))
        self.ups, self.decoders = nnx.List(ups), nnx.List(decoders)

    def encode_level(self, level: int, f: jax.Array, condition):
        """Encoder level `level`'s blocks on features f -> (features, condition for the next level).

        The plain NAFNet ignores `condition`; a conditioned subclass (UFPNet's) overrides this hook.
        """
        for block in self.encoders[level]:
            f = block(f)
        return f, condition

    def __call__(self, x: jax.Array, *, condition=None) -> jax.Array:
        """Restores x (N, H, W, C) in [0, 1]; the output is not clamped (see `restore`).

        `condition` is passed to `encode_level` (None for the plain NAFNet).
        """
        n, h, w, _ = x.shape
        m = 2**self.levels
        inp = jnp.pad(x, ((0, 0), (0, -h % m), (0, -w % m), (0, 0)))
        f = self.intro(zero_pad(inp, 1))
        skips = []
        for level, down in enumerate(self.downs):
            f, condition = self.encode_level(level, f, condition)
            skips.append(f)
            f = down(f)
        for block in self.middle:
            f = block(f)
        for up, blocks, skip in zip(self.ups, self.decoders, reversed(skips)):
            f = pixel_shuffle(up(f)) + skip
            for block in blocks:
                f = block(f)
        out = self.ending(zero_pad(f, 1)) + inp
        return out[:, :h, :w, :]


def restore(model: NAFNet, x: jax.Array) -> jax.Array:
    """The model's restoration of x (N, H, W, C), clamped to [0, 1] (the inference output)."""
    return jnp.clip(model(x), 0.0, 1.0)
