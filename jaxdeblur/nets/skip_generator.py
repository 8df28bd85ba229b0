"""SelfDeblur's image generator G_x: the Deep Image Prior "skip" encoder-decoder.

Level i (0-based, L levels) maps features of size s to size s:

    skip   = conv1x1(channels_skip[i]) -> BN -> LReLU          (if channels_skip[i] > 0)
    deeper = conv3x3 stride 2 (channels_down[i]) -> BN -> LReLU
             [-> non-local block, if i in nonlocal_levels]
             -> conv3x3 (channels_down[i]) -> BN -> LReLU
             [-> level i + 1, if i < L - 1]
             -> bilinear upsample x2
    out    = concat(skip, deeper) -> BN
             -> conv3x3 (channels_up[i]) -> BN -> LReLU
             -> conv1x1 (channels_up[i]) -> BN -> LReLU

and the image is sigmoid(conv1x1(level 0 output)) with `out_channels`
channels. LReLU has slope 0.2; every k > 1 conv reflection-pads by (k-1)//2
first; BatchNorm always uses batch statistics (PyTorch training mode); convs
start with PyTorch's default init. SelfDeblur's defaults: 8 input channels,
1 output channel, 5 levels of 128 / 128 / 16 channels, non-local blocks in
levels 2, 3, 4.

Sizes. A stride-2 conv on a reflection-padded size s gives ceil(s/2), the
upsampling 2 * ceil(s/2) >= s, and the concat centre-crops both branches to
their common minimum, as DIP's `Concat` does (crop start (size - min) // 2).
So with channels_skip[0] > 0 the output has exactly the input's spatial size
for every admissible size; with channels_skip[0] == 0 there is no concat at
level 0 and the output is 2 * ceil(H/2) x 2 * ceil(W/2) (as in DIP).
Admissible: H, W >= 2**L + 1 (`min_input_size`; 33 for 5 levels): smaller
inputs reach the deepest 3x3 conv at 1 x 1, where PyTorch's reflection pad
fails too.

Upsampling is bilinear to exactly 2x (`jax.image.resize(..., "bilinear")`),
which equals PyTorch's nn.Upsample(scale_factor=2, mode='bilinear',
align_corners=False) (half-pixel centres, source coordinates clamped at the
borders).

Speed on CPUs: the pads, BatchNorm + LeakyReLU and the upsampling run as
`jaxdeblur.nets.fused`'s ops and the convolutions as `jaxdeblur.nets.conv`'s
(same values, backward passes XLA:CPU runs several times faster); other
backends run the plain ops.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.functional import torch_batch_norm, torch_conv
from jaxdeblur.nets.fused import batch_norm_act, reflect_pad, upsample2x_bilinear
from jaxdeblur.nets.nonlocal_block import NonLocalBlock

_LEAKY_SLOPE = 0.2


def concat_center_crop(a: jax.Array, b: jax.Array) -> jax.Array:
    """Concatenates NHWC `a` and `b` on channels after cropping both to the common min H, W.

    The crop of an axis of size n to m starts at (n - m) // 2 (DIP's Concat).
    """
    h = min(a.shape[1], b.shape[1])
    w = min(a.shape[2], b.shape[2])

    def crop(t):
        top = (t.shape[1] - h) // 2
        left = (t.shape[2] - w) // 2
        return t[:, top:top + h, left:left + w, :]

    return jnp.concatenate([crop(a), crop(b)], axis=-1)


class _ConvBlock(nnx.Module):
    """Reflection pad -> conv -> BatchNorm -> LeakyReLU(0.2)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int, *, stride: int = 1,
                 rngs: nnx.Rngs):
        self.pad = (kernel_size - 1) // 2
        self.conv = torch_conv(in_features, out_features, kernel_size, stride=stride, rngs=rngs)
        self.norm = torch_batch_norm(out_features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return batch_norm_act(self.norm, self.conv(reflect_pad(x, self.pad)), negative_slope=_LEAKY_SLOPE)


class _SkipLevel(nnx.Module):
    """Level `level` of the skip net and, recursively, all deeper levels."""

    def __init__(self, in_features: int, level: int, channels_down: Sequence[int], channels_up: Sequence[int],
                 channels_skip: Sequence[int], nonlocal_levels: Sequence[int], *, rngs: nnx.Rngs):
        down, up, skip = channels_down[level], channels_up[level], channels_skip[level]
        self.skip = _ConvBlock(in_features, skip, 1, rngs=rngs) if skip > 0 else None
        self.down = _ConvBlock(in_features, down, 3, stride=2, rngs=rngs)
        self.nonlocal_block = NonLocalBlock(down, rngs=rngs) if level in nonlocal_levels else None
        self.conv = _ConvBlock(down, down, 3, rngs=rngs)
        if level + 1 < len(channels_down):
            self.deeper = _SkipLevel(down, level + 1, channels_down, channels_up, channels_skip, nonlocal_levels,
                                     rngs=rngs)
            deeper_features = channels_up[level + 1]
        else:
            self.deeper = None
            deeper_features = down
        self.concat_norm = torch_batch_norm(skip + deeper_features, rngs=rngs)
        self.up = _ConvBlock(skip + deeper_features, up, 3, rngs=rngs)
        self.up_1x1 = _ConvBlock(up, up, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.down(x)
        if self.nonlocal_block is not None:
            y = self.nonlocal_block(y)
        y = self.conv(y)
        if self.deeper is not None:
            y = self.deeper(y)
        y = upsample2x_bilinear(y)
        if self.skip is not None:
            y = concat_center_crop(self.skip(x), y)
        return self.up_1x1(self.up(batch_norm_act(self.concat_norm, y)))


class SkipGenerator(nnx.Module):
    """DIP skip network (SelfDeblur's G_x): (N, H, W, in_channels) -> (N, H, W, out_channels) in (0, 1).

    Args:
      in_channels: channels of the input noise (8 in SelfDeblur).
      out_channels: channels of the image (1 for SelfDeblur's grayscale / Y).
      channels_down, channels_up, channels_skip: per-level widths (same length
        L >= 1); a skip width of 0 removes that level's skip branch.
      nonlocal_levels: 0-based levels with a non-local block after the
        stride-2 conv.
      rngs: parameter initialisation keys.

    Inputs must have H, W >= `min_input_size` (= 2**L + 1). The output has the
    input's H, W when channels_skip[0] > 0 (see the module docstring).
    """

    def __init__(self, in_channels: int = 8, out_channels: int = 1, *,
                 channels_down: Sequence[int] = (128,) * 5, channels_up: Sequence[int] = (128,) * 5,
                 channels_skip: Sequence[int] = (16,) * 5, nonlocal_levels: Sequence[int] = (2, 3, 4),
                 rngs: nnx.Rngs):
        channels_down, channels_up, channels_skip = tuple(channels_down), tuple(channels_up), tuple(channels_skip)
        num_levels = len(channels_down)
        if num_levels < 1 or len(channels_up) != num_levels or len(channels_skip) != num_levels:
            raise ValueError("channels_down, channels_up and channels_skip must have the same length >= 1, got "
                             f"{len(channels_down)}, {len(channels_up)}, {len(channels_skip)}")
        if min(channels_down + channels_up) < 1 or min(channels_skip) < 0 or min(in_channels, out_channels) < 1:
            raise ValueError("channel counts must be >= 1 (skip widths >= 0), got "
                             f"in={in_channels}, out={out_channels}, down={channels_down}, up={channels_up}, "
                             f"skip={channels_skip}")
        nonlocal_levels = tuple(sorted(set(nonlocal_levels)))
        if any(not 0 <= i < num_levels for i in nonlocal_levels):
            raise ValueError(f"nonlocal_levels must lie in [0, {num_levels}), got {nonlocal_levels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_levels = num_levels
        self.levels = _SkipLevel(in_channels, 0, channels_down, channels_up, channels_skip, nonlocal_levels,
                                 rngs=rngs)
        self.head = torch_conv(channels_up[0], out_channels, 1, rngs=rngs)

    @property
    def min_input_size(self) -> int:
        """Smallest admissible input height / width: 2**L + 1."""
        return 2**self.num_levels + 1

    def features(self, x: jax.Array) -> jax.Array:
        """Penultimate features (N, H, W, channels_up[0]): the level-0 output, before the 1x1 head."""
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(f"expected input of shape (N, H, W, {self.in_channels}), got {x.shape}")
        if min(x.shape[1:3]) < self.min_input_size:
            raise ValueError(f"input H, W must be >= {self.min_input_size} for {self.num_levels} levels, "
                             f"got {x.shape[1]} x {x.shape[2]}")
        return self.levels(x)

    def to_image(self, features: jax.Array) -> jax.Array:
        """sigmoid(conv1x1(features)): (N, H, W, channels_up[0]) -> (N, H, W, out_channels)."""
        return jax.nn.sigmoid(self.head(features))

    def __call__(self, x: jax.Array) -> jax.Array:
        """The image in (0, 1): to_image(features(x))."""
        return self.to_image(self.features(x))
