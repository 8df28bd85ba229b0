"""UFPNet's kernel-code network and the per-pixel kernel field it gives through a frozen flow prior.

`KernelCodeNet` (the reference's ``code_extra_mean_var``) is a two-level
residual U-Net, channels last, any image size:

    encoder level (c_in -> c): conv3x3, 2 residual blocks, ReLU = skip; stride-2 conv3x3
    middle: `middle_convs` conv3x3 + ReLU at `middle_width` channels
    decoder level (c_in -> c): 3x3 transposed conv, stride 2, to the skip's size;
                               concatenated with the skip; conv3x3 (2c -> c), 2 residual blocks, ReLU
    residual block: x + conv3x3(ReLU(conv3x3(ReLU(x))))

with widths (64, 128) and a 256-channel middle of 5 convs in the reference.
Two heads at full resolution (each conv3x3 - ReLU - conv3x3):

- mean head: kh * kw channels, softmax over the channels (a kernel-shaped
  map per pixel), then STANDARDISED over the taps of each pixel as the
  reference does before decoding: (p - mean(p)) / (std(p) + std_eps)
  (unbiased std; the reference's std_eps is 0, ours 1e-6 by default against
  a flat map): the per-pixel mean code m (N, H, W, kh * kw);
- sigma head: sigma (N, H, W) in (0, 1): with `sigma_per_tap` (the
  reference) kh * kw sigmoid outputs averaged per pixel; without, one
  sigmoid output per pixel (the same range at a fraction of the cost).

The latent code of pixel p is z = m * sqrt(1 - sigma^2) + eps * sigma with
eps ~ N(0, I) (UFPNet's uncertainty learning), and its kernel is the flow's
``decode(z)`` (`jaxdeblur.nets.flow.KernelFlow`: non-negative, sum 1).

`kernel_field` computes the field in row chunks (`lax.map`): per chunk the
mean head's last convolution (the only kh * kw-channel activation), the
softmax, the standardisation, the codes and the flow decode, so the only
full-size kh * kw-channel array is the output field itself (1.33 GB for 19 x
19 kernels at 1280 x 720, float32; XLA planned 1.0 GB of temporary buffers
for the whole `cpu` preset inference of such a frame against 13.1 GB
unchunked, experiments/bench_ufpnet_memory.py). The noise eps of a pixel
depends only on (key, image, row, column), so the chunking does not change
the result. `kernels_at` gives the field at chosen pixels only (the training
loss samples pixels: the flow decode is the expensive part).

Convolutions use PyTorch's default initialisation and zero padding.
Checked against the authors' PyTorch code (tests/nets/test_ufpnet_golden.py).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.conv import conv_general_dilated
from jaxdeblur.nets.flow import KernelFlow
from jaxdeblur.nets.functional import torch_conv

# Elements of one chunk's kh * kw-channel code array (rows * W * N * kh * kw) that the
# automatic `rows_per_chunk` aims for: 2**24 float32 = 64 MiB (the flow keeps a few such
# arrays alive while decoding).
_CHUNK_ELEMENTS = 2**24
_STD_EPS = 1e-6


def _pad1(x: jax.Array) -> jax.Array:
    return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


class Conv3x3(nnx.Module):
    """3x3 conv with zero padding 1 and an optional stride 2: (N, H, W, c_in) -> (N, H', W', c_out)."""

    def __init__(self, c_in: int, c_out: int, *, stride: int = 1, rngs: nnx.Rngs):
        self.conv = torch_conv(c_in, c_out, 3, stride=stride, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(_pad1(x))


class TransposedConv3x3(nnx.Module):
    """PyTorch's ConvTranspose2d(kernel 3, stride 2, padding 1) with an output size: (N, h, w, c_in) -> (N, H, W, c_out).

    (H, W) must be (2h - 1 or 2h, 2w - 1 or 2w). Written as the input with
    zeros between its pixels (stride-2 upsampling) followed by a 3x3 conv
    (zero padding 1 top / left, 1 or 2 bottom / right): the same linear maps
    as the transposed convolution, our kernel[h, w, i, o] being PyTorch's
    weight[i, o, 2 - h, 2 - w]. Initialised as PyTorch initialises it: its
    weight (c_in, c_out, 3, 3) has fan_in = 9 c_out (dim 1), so weight and
    bias are U(-1/sqrt(9 c_out), 1/sqrt(9 c_out)).
    """

    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs):
        bound = 1.0 / math.sqrt(9 * c_out)
        init = jax.nn.initializers.uniform(2 * bound)
        self.conv = nnx.Conv(c_in, c_out, (3, 3), padding="VALID",
                             kernel_init=lambda k, s, d=jnp.float32: init(k, s, d) - bound,
                             bias_init=lambda k, s, d=jnp.float32: init(k, s, d) - bound,
                             conv_general_dilated=conv_general_dilated, rngs=rngs)

    def __call__(self, x: jax.Array, size: tuple[int, int]) -> jax.Array:
        n, h, w, c = x.shape
        extra = (size[0] - (2 * h - 1), size[1] - (2 * w - 1))
        if extra[0] not in (0, 1) or extra[1] not in (0, 1):
            raise ValueError(f"output size {size} does not fit a stride-2 transposed conv of a {(h, w)} input")
        up = jnp.zeros((n, 2 * h - 1, 2 * w - 1, c), x.dtype).at[:, ::2, ::2].set(x)
        up = jnp.pad(up, ((0, 0), (1, 1 + extra[0]), (1, 1 + extra[1]), (0, 0)))
        return self.conv(up)


class ResidualBlock(nnx.Module):
    """x + conv3x3(ReLU(conv3x3(ReLU(x)))): (N, H, W, c) -> same."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv1 = Conv3x3(channels, channels, rngs=rngs)
        self.conv2 = Conv3x3(channels, channels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.conv2(jax.nn.relu(self.conv1(jax.nn.relu(x))))


class EncoderLevel(nnx.Module):
    """conv3x3, 2 residual blocks, ReLU (the skip), stride-2 conv3x3: x -> (downsampled, skip)."""

    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs):
        self.head = Conv3x3(c_in, c_out, rngs=rngs)
        self.blocks = nnx.List([ResidualBlock(c_out, rngs=rngs) for _ in range(2)])
        self.down = Conv3x3(c_out, c_out, stride=2, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        f = self.head(x)
        for block in self.blocks:
            f = block(f)
        skip = jax.nn.relu(f)
        return self.down(skip), skip


class DecoderLevel(nnx.Module):
    """Transposed conv to the skip's size, concatenation, conv3x3 (2c -> c), 2 residual blocks, ReLU."""

    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs):
        self.up = TransposedConv3x3(c_in, c_out, rngs=rngs)
        self.head = Conv3x3(2 * c_out, c_out, rngs=rngs)
        self.blocks = nnx.List([ResidualBlock(c_out, rngs=rngs) for _ in range(2)])

    def __call__(self, x: jax.Array, skip: jax.Array) -> jax.Array:
        f = jnp.concatenate([self.up(x, skip.shape[1:3]), skip], axis=-1)
        f = self.head(f)
        for block in self.blocks:
            f = block(f)
        return jax.nn.relu(f)


class KernelCodeNet(nnx.Module):
    """Per-pixel latent kernel codes and their uncertainty: images (N, H, W, C) -> (mean (N, H, W, kh kw), sigma (N, H, W)).

    Args:
      channels: image channels C.
      kernel_size: (kh, kw) of the kernels (the flow's), or an int for square ones.
      widths: channels of the two U-Net levels (reference (64, 128)).
      middle_width, middle_convs: the middle convs (reference 256, 5).
      sigma_per_tap: the reference's sigma head (kh * kw sigmoids averaged per
        pixel); False: one sigmoid output per pixel.
      std_eps: added to the std of the standardisation (reference 0).
    """

    def __init__(self, channels: int, kernel_size, *, widths: Sequence[int] = (64, 128), middle_width: int = 256,
                 middle_convs: int = 5, sigma_per_tap: bool = False, std_eps: float = _STD_EPS, rngs: nnx.Rngs):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        widths = tuple(widths)
        if len(widths) != 2 or min(widths) < 1 or middle_width < 1 or middle_convs < 1 or channels < 1:
            raise ValueError(f"need 2 positive widths, middle_width >= 1, middle_convs >= 1 and channels >= 1; got "
                             f"widths={widths}, middle_width={middle_width}, middle_convs={middle_convs}, "
                             f"channels={channels}")
        self.kernel_size = (int(kh), int(kw))
        self.taps = int(kh) * int(kw)
        c1, c2 = widths
        self.encoder1 = EncoderLevel(channels, c1, rngs=rngs)
        self.encoder2 = EncoderLevel(c1, c2, rngs=rngs)
        middle = [Conv3x3(c2, middle_width, rngs=rngs)]
        middle += [Conv3x3(middle_width, middle_width, rngs=rngs) for _ in range(middle_convs - 1)]
        self.middle = nnx.List(middle)
        self.decoder1 = DecoderLevel(middle_width, c2, rngs=rngs)
        self.decoder2 = DecoderLevel(c2, c1, rngs=rngs)
        self.mean_hidden = Conv3x3(c1, c1, rngs=rngs)
        self.mean_out = torch_conv(c1, self.taps, 3, rngs=rngs)  # applied to padded rows (see `mean_codes`)
        self.sigma_hidden = Conv3x3(c1, c1, rngs=rngs)
        self.sigma_out = Conv3x3(c1, self.taps if sigma_per_tap else 1, rngs=rngs)
        if std_eps < 0:
            raise ValueError(f"std_eps must be >= 0, got {std_eps}")
        self.std_eps = float(std_eps)

    def features(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean head's hidden features (N, H, W, c1) after ReLU, sigma (N, H, W)) of images x (N, H, W, C)."""
        f, skip1 = self.encoder1(x)
        f, skip2 = self.encoder2(f)
        for conv in self.middle:
            f = jax.nn.relu(conv(f))
        f = self.decoder2(self.decoder1(f, skip2), skip1)
        sigma = jnp.mean(jax.nn.sigmoid(self.sigma_out(jax.nn.relu(self.sigma_hidden(f)))), axis=-1)
        return jax.nn.relu(self.mean_hidden(f)), sigma

    def mean_codes(self, hidden_rows: jax.Array) -> jax.Array:
        """Standardised mean codes (N, R, W, kh kw) of R rows from their hidden features with a 1-row halo.

        hidden_rows: (N, R + 2, W + 2, c1), the zero-padded hidden features of
        rows r - 1 .. r + R (see `features`).
        """
        return standardise(self.mean_out(hidden_rows), self.std_eps)

    def mean_codes_at(self, hidden: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
        """Standardised mean codes (N, M, kh kw) of the pixels (rows[n, m], cols[n, m]) only.

        hidden: (N, H, W, c1) from `features`; rows, cols: (N, M) int. The mean
        head's last conv is evaluated at those pixels (a 3x3 patch each),
        equal to `mean_codes` there.
        """
        padded = _pad1(hidden)
        offsets = jnp.arange(3)
        images = jnp.arange(hidden.shape[0])[:, None, None, None]
        patches = padded[images, rows[..., None, None] + offsets[:, None], cols[..., None, None] + offsets[None, :]]
        logits = jnp.einsum("nmijc,ijco->nmo", patches, self.mean_out.kernel[...]) + self.mean_out.bias[...]
        return standardise(logits, self.std_eps)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(standardised mean codes (N, H, W, kh kw), sigma (N, H, W)) of images x (N, H, W, C), unchunked."""
        hidden, sigma = self.features(x)
        return self.mean_codes(_pad1(hidden)), sigma


def standardise(logits: jax.Array, eps: float = _STD_EPS) -> jax.Array:
    """Mean codes from the mean head's logits (..., kh kw): softmax over the taps, then (p - mean) / (std + eps)
    (unbiased std)."""
    p = jax.nn.softmax(logits, axis=-1)
    mean = jnp.mean(p, axis=-1, keepdims=True)
    std = jnp.std(p, axis=-1, ddof=1, keepdims=True)
    return (p - mean) / (std + eps)


def code_noise(key: jax.Array, images: jax.Array, rows: jax.Array, cols: jax.Array, taps: int) -> jax.Array:
    """Standard normal code noise (..., taps) of pixels (images, rows, cols) (int arrays of one shape).

    Pixel (i, r, c) uses the key fold_in(fold_in(fold_in(key, i), r), c), so a
    pixel's noise does not depend on which other pixels are drawn (chunks,
    sampled pixels).
    """
    def one(i, r, c):
        return jax.random.normal(jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, i), r), c), (taps,))

    flat = [jnp.ravel(a) for a in jnp.broadcast_arrays(images, rows, cols)]
    return jax.vmap(one)(*flat).reshape(*jnp.shape(rows), taps)


def _codes(mean: jax.Array, sigma: jax.Array, noise) -> jax.Array:
    """z = mean sqrt(1 - sigma^2) + noise sigma: mean (..., taps), sigma (...), noise (..., taps) or None (0)."""
    s = sigma[..., None]
    z = mean * jnp.sqrt(1.0 - jnp.square(s))
    return z if noise is None else z + s * noise


def chunk_rows(height: int, rows_per_chunk: int | None, row_elements: int) -> int:
    """Rows per chunk: the largest divisor of `height` not above `rows_per_chunk` (None: the most rows
    whose row_elements each fit in 2**24 elements), so the chunks tile the rows exactly."""
    if rows_per_chunk is None:
        rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(1, row_elements))
    if int(rows_per_chunk) != rows_per_chunk or rows_per_chunk < 1:
        raise ValueError(f"rows_per_chunk must be a positive integer, got {rows_per_chunk!r}")
    target = min(int(rows_per_chunk), height)
    return max(d for d in range(1, target + 1) if height % d == 0)


def kernel_field(code_net: KernelCodeNet, flow: KernelFlow, x: jax.Array, key: jax.Array | None = None, *,
                 uncertainty: bool = True, rows_per_chunk: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Per-pixel kernels of images x (N, H, W, C) -> (field (N, H, W, kh, kw), sigma (N, H, W)).

    Codes z = m sqrt(1 - sigma^2) + eps sigma (see the module docstring) are
    decoded by `flow` (its running statistics; the caller keeps it frozen).

    Args:
      code_net, flow: the code network and the flow (same kernel size).
      x: images (N, H, W, C), any H, W.
      key: PRNG key of the noise eps; None for eps = 0 (the codes are then
        m sqrt(1 - sigma^2), deterministic).
      uncertainty: False switches the uncertainty branch off: sigma := 0, so
        z = m (the returned sigma is then zeros).
      rows_per_chunk: rows computed at once (rounded down to a divisor of H);
        None: the most rows whose N * W * kh * kw codes fit in 2**24 elements.
        H gives a single chunk. The result does not depend on it.
    """
    if code_net.kernel_size != flow.kernel_size:
        raise ValueError(f"code_net kernel_size {code_net.kernel_size} differs from the flow's {flow.kernel_size}")
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, H, W, C), got {x.shape}")
    n, h, w, _ = x.shape
    taps = code_net.taps
    rows = chunk_rows(h, rows_per_chunk, n * w * taps)
    hidden, sigma = code_net.features(x)
    if not uncertainty:
        sigma = jnp.zeros_like(sigma)
    hidden = _pad1(hidden)

    def one_chunk(start):
        codes = code_net.mean_codes(jax.lax.dynamic_slice_in_dim(hidden, start, rows + 2, axis=1))
        s = jax.lax.dynamic_slice_in_dim(sigma, start, rows, axis=1)
        noise = None
        if key is not None and uncertainty:
            grid = jnp.meshgrid(jnp.arange(n), start + jnp.arange(rows), jnp.arange(w), indexing="ij")
            noise = code_noise(key, *grid, taps)
        return flow.decode(_codes(codes, s, noise))  # (N, rows, W, kh, kw)

    chunks = jax.lax.map(one_chunk, jnp.arange(0, h, rows))  # (h / rows, N, rows, W, kh, kw)
    field = jnp.moveaxis(chunks, 0, 1).reshape(n, h, w, *code_net.kernel_size)
    return field, sigma

def kernels_at(code_net: KernelCodeNet, flow: KernelFlow, x: jax.Array, rows: jax.Array, cols: jax.Array,
               key: jax.Array | None = None, *, uncertainty: bool = True) -> tuple[jax.Array, jax.Array]:
    """The kernel field at chosen pixels only: (kernels (N, M, kh, kw), sigma (N, M)).

    Equal to `kernel_field(code_net, flow, x, key, uncertainty=...)` at the
    pixels (rows[n, m], cols[n, m]) of image n, at the cost of the code net's
    backbone plus M codes per image (instead of H * W) for the mean head's
    last conv and the flow: training computes the kernel estimation loss on
    sampled pixels this way.

    Args:
      rows, cols: (N, M) int pixel coordinates inside the image.
      key, uncertainty: as `kernel_field`.
    """
    if code_net.kernel_size != flow.kernel_size:
        raise ValueError(f"code_net kernel_size {code_net.kernel_size} differs from the flow's {flow.kernel_size}")
    if x.ndim != 4 or rows.shape != cols.shape or rows.shape[:1] != x.shape[:1] or rows.ndim != 2:
        raise ValueError(f"need x (N, H, W, C) and rows, cols (N, M); got {x.shape}, {rows.shape}, {cols.shape}")
    hidden, sigma = code_net.features(x)
    images = jnp.arange(x.shape[0])[:, None]
    s = sigma[images, rows, cols] if uncertainty else jnp.zeros(rows.shape, sigma.dtype)
    noise = None
    if key is not None and uncertainty:
        noise = code_noise(key, jnp.broadcast_to(images, rows.shape), rows, cols, code_net.taps)
    return flow.decode(_codes(code_net.mean_codes_at(hidden, rows, cols), s, noise)), s


__all__ = ["Conv3x3", "DecoderLevel", "EncoderLevel", "KernelCodeNet", "ResidualBlock", "TransposedConv3x3",
           "chunk_rows", "code_noise", "kernel_field", "kernels_at", "standardise"]
