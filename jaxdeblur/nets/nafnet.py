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
default initialisation (as the reference code) and zero padding.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.functional import torch_conv as _conv
from jaxdeblur.nets.fused import channel_sum
from jaxdeblur.nets.platform import fast_cpu_paths


def _zero_pad(x: jax.Array, r: int) -> jax.Array:
    return jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)))


def _taps3x3(xp: jax.Array, kernel: jax.Array, h: int, w: int) -> jax.Array:
    """sum_ij xp[:, i:i+h, j:j+w] * kernel[i, j]: xp (N, H+2, W+2, C), kernel (3, 3, C) -> (N, H, W, C)."""
    return sum(xp[:, i : i + h, j : j + w, :] * kernel[i, j] for i in range(3) for j in range(3))


@jax.custom_vjp
def _depthwise_taps(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """3x3 depthwise cross-correlation, zero padding, as nine shifted multiply-adds: x (N, H, W, C), kernel
    (3, 3, C) -> (N, H, W, C). Its backward pass is written out (autodiff of the slices pads nine full-size
    gradients and adds them): the input gradient is the same nine taps of the padded output gradient with the
    kernel flipped, the kernel gradient nine products summed over N, H, W."""
    return _depthwise_taps_fwd(x, kernel)[0]


def _depthwise_taps_fwd(x, kernel):
    xp = _zero_pad(x, 1)  # kept for the kernel gradient (padded once)
    return _taps3x3(xp, kernel, *x.shape[1:3]), (xp, kernel)


def _depthwise_taps_bwd(residuals, g):
    xp, kernel = residuals
    h, w = g.shape[1:3]
    dx = _taps3x3(_zero_pad(g, 1), kernel[::-1, ::-1], h, w)
    dk = jnp.stack([jnp.stack([jnp.sum(xp[:, i : i + h, j : j + w, :] * g, axis=(0, 1, 2)) for j in range(3)])
                    for i in range(3)])
    return dx, dk


_depthwise_taps.defvjp(_depthwise_taps_fwd, _depthwise_taps_bwd)


def depthwise3x3(x: jax.Array, kernel: jax.Array, bias: jax.Array, *, platform: str | None = None) -> jax.Array:
    """3x3 depthwise cross-correlation with zero padding: x (N, H, W, C), kernel (3, 3, 1, C), bias (C,).

    On CPUs it is written as nine shifted multiply-adds with a hand-written
    backward pass (`_depthwise_taps`): XLA:CPU's grouped convolution took
    6-25x longer for its value and gradient (measured on the 2-core CI
    machine, 8 x 64 x 64 x 32: 200 ms against 32 ms), and autodiff of the taps
    pads nine full-size gradients (the cpu preset's train step: ~300 against
    ~250 ms with the written backward, `experiments/bench_train.py`);
    elsewhere it is `lax.conv_general_dilated` with one group per channel.
    `platform`: as `jaxdeblur.nets.platform.resolve` (the platform traced for).
    """
    if fast_cpu_paths(platform):
        out = _depthwise_taps(x, kernel[:, :, 0, :])
    else:
        out = jax.lax.conv_general_dilated(_zero_pad(x, 1), kernel, (1, 1), "VALID",
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                           feature_group_count=x.shape[-1])
    return out + bias


def simple_gate(x: jax.Array) -> jax.Array:
    """The product of the two halves of the channel axis: (..., 2c) -> (..., c)."""
    a, b = jnp.split(x, 2, axis=-1)
    return a * b


def pixel_shuffle(x: jax.Array, r: int = 2) -> jax.Array:
    """(N, H, W, C r^2) -> (N, H r, W r, C), PyTorch's PixelShuffle channel order (c, i, j)."""
    n, h, w, c = x.shape
    x = x.reshape(n, h, w, c // (r * r), r, r)
    return x.transpose(0, 1, 4, 2, 5, 3).reshape(n, h * r, w * r, c // (r * r))


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def layer_norm_channels(x: jax.Array, scale: jax.Array, bias: jax.Array, eps: float) -> jax.Array:
    """LayerNorm over the last axis of every pixel: x (..., C), scale and bias (C,) -> (..., C).

    Its backward pass is written out, as the reference code's LayerNormFunction: dx = rstd (gs - mean(gs) -
    xhat mean(gs xhat)) with gs = g scale, the scale and bias gradients sums over the pixels (matrix products).
    Measured on the 2-core CPU (the cpu preset's network step, 30 alternating rounds): 285 -> 247 ms median
    against autodiff's.
    """
    return _layer_norm_fwd(x, scale, bias, eps)[0]


def _layer_norm_fwd(x, scale, bias, eps):
    centred = x - jnp.mean(x, axis=-1, keepdims=True)
    rstd = jax.lax.rsqrt(jnp.mean(jnp.square(centred), axis=-1, keepdims=True) + eps)
    normalised = centred * rstd
    return normalised * scale + bias, (normalised, rstd, scale)


def _layer_norm_bwd(eps, residuals, g):
    normalised, rstd, scale = residuals
    gs = g * scale
    dx = rstd * (gs - jnp.mean(gs, axis=-1, keepdims=True)
                 - normalised * jnp.mean(gs * normalised, axis=-1, keepdims=True))
    return dx, channel_sum(g * normalised), channel_sum(g)


layer_norm_channels.defvjp(_layer_norm_fwd, _layer_norm_bwd)


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
        h = self.expand(self.norm1(x if branch_input is None else branch_input))
        h = simple_gate(depthwise3x3(h, self.depthwise.kernel[...], self.depthwise.bias[...]))
        h = h * self.attention(jnp.mean(h, axis=(1, 2), keepdims=True))
        y = x + self.project(h) * self.beta[...]
        h = self.ffn_project(simple_gate(self.ffn_expand(self.norm2(y))))
        return y + h * self.gamma[...]


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
        f = self.intro(_zero_pad(inp, 1))
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
        out = self.ending(_zero_pad(f, 1)) + inp
        return out[:, :h, :w, :]


def restore(model: NAFNet, x: jax.Array) -> jax.Array:
    """The model's restoration of x (N, H, W, C), clamped to [0, 1] (the inference output)."""
    return jnp.clip(model(x), 0.0, 1.0)
