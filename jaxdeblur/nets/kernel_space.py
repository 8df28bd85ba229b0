"""Blur kernel space (Tran et al. 2021): a learned blur operator F and a kernel extractor G, channels last.

    code    = G(sharp, blurred)      # (N, ceil(H / s), ceil(W / s), code_dim): the blur of the pair as a code map
    blurred = F(sharp, code)         # re-blurs any sharp image of that size with the encoded blur

F and G are trained jointly so that F(x, G(x, y)) reproduces y (Charbonnier
loss, `jaxdeblur.models.kernel_space`); a code then stands for a blur, uniform
or not (each cell of the code map describes the blur of an s x s region).

Architecture (the reference's KernelWizard, written for any input size):

- features (shared by F and G): conv3x3 C -> nf, LReLU(0.1), then
  `feature_downsamples` x [conv3x3 stride 2, LReLU(0.1)] (H/4 in the paper),
  then `front_blocks` residual blocks (conv3x3 -> ReLU -> conv3x3, + input,
  no normalisation; weights initialised at 0.1 x Kaiming normal).
- G (`CodeHead` on the concatenated features of sharp and blurred, 2 nf):
  reflect-pad 3, conv7x7 -> nf, ReLU; `depth` x [conv3x3 stride 2 ->
  min(nf 2^(i+1), code_dim), ReLU]; `extractor_blocks` ResNet blocks
  (reflect-pad, conv3x3, ReLU, reflect-pad, conv3x3, + input) on code_dim.
- F: a `depth`-level U-Net on the sharp features whose innermost level
  takes the code: level i goes down by a 4x4 stride-2 conv to
  nf * min(2^i, 8) channels (LReLU(0.2) before it, except at the outermost
  level), the innermost output is concatenated with the code, and each level
  comes back up by ReLU + a 4x4 stride-2 transposed conv, concatenated with
  the level's input (Tanh after the outermost); then `back_blocks` residual
  blocks, `feature_downsamples` x [conv3x3 nf -> 4 nf, pixel shuffle x2,
  LReLU(0.1)], conv3x3 nf -> nf, LReLU(0.1), conv3x3 nf -> C, and the sharp
  input added (a global residual).

Sizes. The code map's stride is s = 2^(feature_downsamples + depth) (128 in
the paper: 2 x 2 codes for 256 crops). Any input size works: F and G pad the
images at the bottom and right by edge replication to multiples of s, and F
crops its output back. The code map of an H x W image is
(ceil(H / s), ceil(W / s)) (`code_shape`). Paper setting: nf 64, 10 front and
20 back blocks, 4 extractor blocks, code_dim 512, depth 5 (~49 M parameters
for RGB).

Convolutions pad explicitly (zeros, or reflection where the reference
reflects) and run `jaxdeblur.nets.conv` (fast gradients inside `lax.scan` on
CPUs, which the kernel-space DIP needs: it differentiates through F).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.conv import conv_general_dilated
from jaxdeblur.nets.functional import torch_conv
from jaxdeblur.nets.nafnet_ops import pixel_shuffle

# The reference initialises its residual blocks with Kaiming-normal weights scaled by 0.1 (variance x 0.01).
_residual_init = jax.nn.initializers.variance_scaling(2.0 * 0.01, "fan_in", "normal")


def _pad(x: jax.Array, r: int, mode: str = "constant") -> jax.Array:
    return jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode=mode) if r else x


class _Conv(nnx.Module):
    """Padding (zeros or reflection) then a square conv ('VALID', PyTorch default init unless `init`)."""

    def __init__(self, cin: int, cout: int, size: int, *, stride: int = 1, pad: int | None = None,
                 mode: str = "constant", init=None, bias: bool = True, rngs: nnx.Rngs):
        self.pad = (size - 1) // 2 if pad is None else pad
        self.mode = mode
        if init is None:
            self.conv = torch_conv(cin, cout, size, stride=stride, bias=bias, rngs=rngs)
        else:
            self.conv = nnx.Conv(cin, cout, (size, size), strides=stride, padding="VALID", kernel_init=init,
                                 bias_init=nnx.initializers.zeros, conv_general_dilated=conv_general_dilated,
                                 rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(_pad(x, self.pad, self.mode))


class _UpConv(nnx.Module):
    """PyTorch's ConvTranspose2d(kernel 4, stride 2, padding 1): (N, H, W, cin) -> (N, 2H, 2W, cout).

    Written as zeros inserted between the input pixels, 2 px of zeros around,
    and a 4x4 'VALID' conv: our kernel[h, w, i, o] is PyTorch's weight[i, o, 3 - h, 3 - w].
    Initialised as PyTorch initialises a ConvTranspose2d: its weight (cin, cout, 4, 4) has
    fan_in = cout * 16 (PyTorch reads the fan from dim 1), so weight and bias are
    U(-1/sqrt(16 cout), 1/sqrt(16 cout)).
    """

    def __init__(self, cin: int, cout: int, *, bias: bool = True, rngs: nnx.Rngs):
        bound = 1.0 / math.sqrt(16 * cout)
        init = jax.nn.initializers.uniform(2 * bound)
        self.conv = nnx.Conv(cin, cout, (4, 4), padding="VALID", use_bias=bias,
                             kernel_init=lambda k, s, d=jnp.float32: init(k, s, d) - bound,
                             bias_init=lambda k, s, d=jnp.float32: init(k, s, d) - bound,
                             conv_general_dilated=conv_general_dilated, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        zero = jnp.zeros((), x.dtype)
        return self.conv(jax.lax.pad(x, zero, ((0, 0, 0), (2, 2, 1), (2, 2, 1), (0, 0, 0))))


class ResidualBlock(nnx.Module):
    """conv3x3 -> ReLU -> conv3x3, plus the input; zero padding, no normalisation. (N, H, W, c) -> same.

    `reflect=False`: the reference's ResidualBlock_noBN (weights 0.1 x Kaiming
    normal, zero biases); `reflect=True`: its ResnetBlock (reflection padding,
    PyTorch default init; no biases in the reference's extractor: `bias=False`), used by the code heads.
    """

    def __init__(self, channels: int, *, reflect: bool = False, bias: bool = True, rngs: nnx.Rngs):
        mode, init = ("reflect", None) if reflect else ("constant", _residual_init)
        self.conv1 = _Conv(channels, channels, 3, mode=mode, init=init, bias=bias, rngs=rngs)
        self.conv2 = _Conv(channels, channels, 3, mode=mode, init=init, bias=bias, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.conv2(jax.nn.relu(self.conv1(x)))


class CodeHead(nnx.Module):
    """Features down to a code map: conv7x7 -> `downsamples` stride-2 convs -> ResNet blocks.

    (N, H, W, in_channels) -> (N, H / 2^downsamples, W / 2^downsamples, code_dim) for H, W multiples of
    2^downsamples. G's head (on sharp and blurred features) and the kernel-space DIP's code generator
    (on fixed noise) are both this module. `bias=False`: no conv has a bias, as in the reference's
    KernelExtractor (its norm "none" turns `use_bias` off).
    """

    def __init__(self, in_channels: int, *, width: int, code_dim: int, downsamples: int, blocks: int,
                 bias: bool = True, rngs: nnx.Rngs):
        outs = [min(width * 2 ** (i + 1), code_dim) for i in range(downsamples)]
        ins = [width] + outs[:-1]
        self.stem = _Conv(in_channels, width, 7, mode="reflect", bias=bias, rngs=rngs)
        self.downs = nnx.List([_Conv(i, o, 3, stride=2, bias=bias, rngs=rngs) for i, o in zip(ins, outs)])
        last = outs[-1] if outs else width
        # the reference's widths reach code_dim by themselves (64 * 2^5 > 512); other settings get a 1x1 projection
        self.project = _Conv(last, code_dim, 1, bias=bias, rngs=rngs) if last != code_dim else None
        self.blocks = nnx.List([ResidualBlock(code_dim, reflect=True, bias=bias, rngs=rngs) for _ in range(blocks)])

    def __call__(self, x: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.stem(x))
        for down in self.downs:
            h = jax.nn.relu(down(h))
        if self.project is not None:
            h = self.project(h)
        for block in self.blocks:
            h = block(h)
        return h


def _unet_widths(nf: int, depth: int) -> list[int]:
    return [nf * min(2**i, 8) for i in range(depth)]


class CodeUNet(nnx.Module):
    """F's U-Net: features (N, h, w, nf) and a code (N, h / 2^depth, w / 2^depth, code_dim) -> (N, h, w, nf).

    `all_biases=False`: the reference's biases (its norm "none" turns `use_bias` off): only the
    outermost up conv has one; True: every conv has one.
    """

    def __init__(self, nf: int, code_dim: int, depth: int, *, all_biases: bool = False, rngs: nnx.Rngs):
        widths = _unet_widths(nf, depth)
        inputs = [nf] + widths[:-1]
        self.downs = nnx.List([_Conv(inputs[i], widths[i], 4, pad=1, stride=2, bias=all_biases, rngs=rngs)
                               for i in range(depth)])
        ups = []
        for i in range(depth):
            cin = widths[i] + code_dim if i == depth - 1 else 2 * widths[i]
            ups.append(_UpConv(cin, inputs[i], bias=all_biases or i == 0, rngs=rngs))
        self.ups = nnx.List(ups)

    def __call__(self, x: jax.Array, code: jax.Array) -> jax.Array:
        levels, h = [], x
        for i, down in enumerate(self.downs):
            levels.append(h)
            h = down(jax.nn.leaky_relu(h, 0.2) if i > 0 else h)
        h = jnp.concatenate([h, code.astype(h.dtype)], axis=-1)
        for i in reversed(range(len(self.ups))):
            h = self.ups[i](jax.nn.relu(h))
            if i > 0:
                h = jnp.concatenate([h, levels[i]], axis=-1)
        return jnp.tanh(h)


class KernelSpace(nnx.Module):
    """The blur operator F and the kernel extractor G with shared features (see the module docstring).

    Args:
      channels: image channels C (1 gray, 3 RGB).
      nf: feature width (paper 64).
      front_blocks, back_blocks: residual blocks before (shared features) and
        after (F's reconstruction) the U-Net (paper 10 and 20).
      code_dim: channels of a code cell (paper 512).
      extractor_blocks: ResNet blocks at the end of G (paper 4).
      depth: U-Net levels of F = stride-2 convs of G's head (paper 5).
      feature_downsamples: stride-2 convs of the shared features (paper 2).
      all_biases: False: the reference's biases (none in G's head, and in F's
        U-Net only on the outermost up conv); True: every conv has a bias (how
        the shipped kernel_space-cpu weights were trained).
      rngs: parameter initialisation keys.
    """

    def __init__(self, channels: int = 3, *, nf: int = 64, front_blocks: int = 10, back_blocks: int = 20,
                 code_dim: int = 512, extractor_blocks: int = 4, depth: int = 5, feature_downsamples: int = 2,
                 all_biases: bool = False, rngs: nnx.Rngs):
        if min(channels, nf, code_dim, depth) < 1 or min(front_blocks, back_blocks, extractor_blocks,
                                                          feature_downsamples) < 0:
            raise ValueError("channels, nf, code_dim and depth must be >= 1 and block / downsample counts >= 0, got "
                             f"channels={channels}, nf={nf}, code_dim={code_dim}, depth={depth}, "
                             f"front_blocks={front_blocks}, back_blocks={back_blocks}, "
                             f"extractor_blocks={extractor_blocks}, feature_downsamples={feature_downsamples}")
        self.channels, self.code_dim = channels, code_dim
        self.depth, self.feature_downsamples = depth, feature_downsamples
        self.stem = _Conv(channels, nf, 3, rngs=rngs)
        self.feature_downs = nnx.List([_Conv(nf, nf, 3, stride=2, rngs=rngs) for _ in range(feature_downsamples)])
        self.front = nnx.List([ResidualBlock(nf, rngs=rngs) for _ in range(front_blocks)])
        self.extractor = CodeHead(2 * nf, width=nf, code_dim=code_dim, downsamples=depth, blocks=extractor_blocks,
                                  bias=all_biases, rngs=rngs)
        self.unet = CodeUNet(nf, code_dim, depth, all_biases=all_biases, rngs=rngs)
        self.back = nnx.List([ResidualBlock(nf, rngs=rngs) for _ in range(back_blocks)])
        self.ups = nnx.List([_Conv(nf, 4 * nf, 3, rngs=rngs) for _ in range(feature_downsamples)])
        self.last_hidden = _Conv(nf, nf, 3, rngs=rngs)
        self.last = _Conv(nf, channels, 3, rngs=rngs)

    @property
    def stride(self) -> int:
        """Pixels per code cell along each axis: 2^(feature_downsamples + depth)."""
        return 2 ** (self.feature_downsamples + self.depth)

    def code_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """The code map of an H x W image: (ceil(H / stride), ceil(W / stride), code_dim)."""
        s = self.stride
        return (math.ceil(height / s), math.ceil(width / s), self.code_dim)

    def _check_images(self, name: str, x: jax.Array) -> None:
        if x.ndim != 4 or x.shape[-1] != self.channels or min(x.shape[1:3]) < 1:
            raise ValueError(f"{name} must be images (N, H, W, {self.channels}), got shape {x.shape}")

    def _padded(self, x: jax.Array) -> jax.Array:
        s = self.stride
        h, w = x.shape[1:3]
        return jnp.pad(x, ((0, 0), (0, -h % s), (0, -w % s), (0, 0)), mode="edge")

    def features(self, x: jax.Array) -> jax.Array:
        """Shared features of padded images (N, H, W, C) -> (N, H / 2^feature_downsamples, ..., nf)."""
        h = jax.nn.leaky_relu(self.stem(x), 0.1)
        for down in self.feature_downs:
            h = jax.nn.leaky_relu(down(h), 0.1)
        for block in self.front:
            h = block(h)
        return h

    def encode(self, sharp: jax.Array, blurred: jax.Array) -> jax.Array:
        """G: the code map (N, ceil(H / s), ceil(W / s), code_dim) of pairs (N, H, W, C) of equal shapes."""
        self._check_images("sharp", sharp)
        if blurred.shape != sharp.shape:
            raise ValueError(f"blurred {blurred.shape} and sharp {sharp.shape} must have the same shape")
        n = sharp.shape[0]
        both = self.features(self._padded(jnp.concatenate([sharp, blurred], axis=0)))
        return self.extractor(jnp.concatenate([both[:n], both[n:]], axis=-1))

    def blur(self, sharp: jax.Array, code: jax.Array) -> jax.Array:
        """F: sharp images (N, H, W, C) re-blurred with the blur of `code` (N, *code_shape(H, W)); not clamped."""
        self._check_images("sharp", sharp)
        n, h, w, _ = sharp.shape
        if code.shape != (n, *self.code_shape(h, w)):
            raise ValueError(f"code must have shape {(n, *self.code_shape(h, w))} for sharp images {sharp.shape} "
                             f"(stride {self.stride}), got {code.shape}")
        x = self._padded(sharp)
        f = self.unet(self.features(x), code)
        for block in self.back:
            f = block(f)
        for up in self.ups:
            f = jax.nn.leaky_relu(pixel_shuffle(up(f)), 0.1)
        out = self.last(jax.nn.leaky_relu(self.last_hidden(f), 0.1)) + x
        return out[:, :h, :w, :]

    def __call__(self, sharp: jax.Array, blurred: jax.Array) -> jax.Array:
        """F(sharp, G(sharp, blurred)): the pair's blur re-applied to its sharp image (the training output)."""
        return self.blur(sharp, self.encode(sharp, blurred))


__all__ = ["CodeHead", "CodeUNet", "KernelSpace", "ResidualBlock"]
