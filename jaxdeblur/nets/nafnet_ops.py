"""NAFNet's layers as pure functions, channels last, with hand-written backward passes where XLA:CPU needs them.

- `layer_norm_channels`: LayerNorm over the channels of every pixel (all platforms);
- `pointwise_conv`: a 1x1 convolution with bias, optionally times a per-channel scale, as
  matrix products (all platforms);
- `depthwise3x3`: the 3x3 depthwise convolution (on CPUs nine shifted multiply-adds);
- `simple_gate`, `pixel_shuffle`, `zero_pad`.

Why the written backward passes (measured on the 2-core CI machine, the cpu preset's network
value-and-grad + AdamW, 8 x 64 x 64, A/B in one process, 30 alternating rounds,
`experiments/bench_train.py` for the trainer's step): XLA:CPU turns a sum over N, H, W into a
slow `reduce-window` tree, a 1x1 conv's kernel gradient as `nets.conv` computes it (batch and
channels swapped) transposes both activations, and XLA fuses an elementwise producer into EVERY
consumer: the depthwise kernel gradient's nine product-sums each recomputed the depthwise
forward pass and the gate's gradient (a nine-tap stencil per consumer). Here channel sums are
products with a ones vector (XLA's gemv), 1x1 convolutions are matrix products in both
directions, and the depthwise kernel gradient runs one image at a time in a `lax.scan` (a loop
body cannot absorb its input's producer, and one image's products stay in cache). Network step:
LayerNorm 285 -> 247 ms; then the depthwise sums in a scan and the 1x1 convolutions as products
~1.5x faster (329 / 316 -> 212 / 218 ms median, two copies of each in one process, a noisy
hour), the 1x1 backward with the scale folded into the kernel 5 % more; the trainer's step
against PyTorch's 0.81x -> 1.28x / 1.34x (two runs of experiments/bench_train.py; DESIGN.md, CPU
notes).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxdeblur.nets.fused import channel_sum
from jaxdeblur.nets.platform import fast_cpu_paths


def zero_pad(x: jax.Array, r: int) -> jax.Array:
    """x (N, H, W, C) padded with r zeros on every side of H and W."""
    return jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)))


def simple_gate(x: jax.Array) -> jax.Array:
    """The product of the two halves of the channel axis: (..., 2c) -> (..., c)."""
    a, b = jnp.split(x, 2, axis=-1)
    return a * b


def pixel_shuffle(x: jax.Array, r: int = 2) -> jax.Array:
    """(N, H, W, C r^2) -> (N, H r, W r, C), PyTorch's PixelShuffle channel order (c, i, j)."""
    n, h, w, c = x.shape
    x = x.reshape(n, h, w, c // (r * r), r, r)
    return x.transpose(0, 1, 4, 2, 5, 3).reshape(n, h * r, w * r, c // (r * r))


# --------------------------------------------------------------------------- LayerNorm over channels

@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def layer_norm_channels(x: jax.Array, scale: jax.Array, bias: jax.Array, eps: float) -> jax.Array:
    """LayerNorm over the last axis of every pixel: x (..., C), scale and bias (C,) -> (..., C).

    Its backward pass is written out, as the reference code's LayerNormFunction: dx = rstd (gs - mean(gs) -
    xhat mean(gs xhat)) with gs = g scale, the scale and bias gradients sums over the pixels (matrix products).
    """
    return _layer_norm_fwd(x, scale, bias, eps)[0]


def _layer_norm_fwd(x, scale, bias, eps):
    centred = x - jnp.mean(x, axis=-1, keepdims=True)
    rstd = lax.rsqrt(jnp.mean(jnp.square(centred), axis=-1, keepdims=True) + eps)
    normalised = centred * rstd
    return normalised * scale + bias, (normalised, rstd, scale)


def _layer_norm_bwd(eps, residuals, g):
    normalised, rstd, scale = residuals
    gs = g * scale
    dx = rstd * (gs - jnp.mean(gs, axis=-1, keepdims=True)
                 - normalised * jnp.mean(gs * normalised, axis=-1, keepdims=True))
    return dx, channel_sum(g * normalised), channel_sum(g)


layer_norm_channels.defvjp(_layer_norm_fwd, _layer_norm_bwd)


# --------------------------------------------------------------------------- 1x1 convolution

@jax.custom_vjp
def pointwise_conv(x: jax.Array, kernel: jax.Array, bias: jax.Array, scale: jax.Array | None) -> jax.Array:
    """(x @ kernel + bias) * scale: a 1x1 convolution, then a per-channel scale (None: none).

    x (..., Cin), kernel (Cin, Cout), bias and scale (Cout,) -> (..., Cout). Backward pass from two matrix
    products over the pixels, M = x^T g and 1^T g, and one of g with the scaled kernel: dx = g (kernel scale)^T,
    dkernel = M scale, dbias = (1^T g) scale, dscale = sum_c kernel * M + bias (1^T g) (no pass over the
    unscaled output, which is not kept).
    """
    return _pointwise_fwd(x, kernel, bias, scale)[0]


def _pointwise_fwd(x, kernel, bias, scale):
    out = jnp.dot(x, kernel) + bias
    return (out if scale is None else out * scale), (x, kernel, bias, scale)


def _pointwise_bwd(residuals, g):
    x, kernel, bias, scale = residuals
    cin, cout = kernel.shape
    g = g.reshape(-1, cout)
    product, g_sum = x.reshape(-1, cin).T @ g, channel_sum(g)
    if scale is None:
        return (g @ kernel.T).reshape(x.shape), product, g_sum, None
    return ((g @ (kernel * scale).T).reshape(x.shape), product * scale, g_sum * scale,
            jnp.sum(kernel * product, axis=0) + bias * g_sum)


pointwise_conv.defvjp(_pointwise_fwd, _pointwise_bwd)


# --------------------------------------------------------------------------- 3x3 depthwise convolution

def _taps3x3(xp: jax.Array, kernel: jax.Array, h: int, w: int) -> jax.Array:
    """sum_ij xp[..., i:i+h, j:j+w, :] * kernel[i, j]: xp (..., H+2, W+2, C), kernel (3, 3, C) -> (..., H, W, C)."""
    return sum(xp[..., i : i + h, j : j + w, :] * kernel[i, j] for i in range(3) for j in range(3))


@jax.custom_vjp
def _depthwise_taps(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """3x3 depthwise cross-correlation, zero padding, plus bias, as nine shifted multiply-adds: x (N, H, W, C),
    kernel (3, 3, C), bias (C,) -> (N, H, W, C). Backward pass written out (autodiff of the slices pads nine
    full-size gradients and adds them): the input gradient is the same nine taps of the padded output gradient
    with the kernel flipped; the kernel and bias gradients are `_tap_sums`."""
    return _depthwise_taps_fwd(x, kernel, bias)[0]


def _depthwise_taps_fwd(x, kernel, bias):
    xp = zero_pad(x, 1)  # kept for the kernel gradient (padded once)
    return _taps3x3(xp, kernel, *x.shape[1:3]) + bias, (xp, kernel)


def _tap_sums(xp: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The depthwise kernel and bias gradients: sum over N, H, W of xp[:, i:i+h, j:j+w] * g -> (3, 3, C), and of
    g -> (C,); xp (N, H+2, W+2, C), g (N, H, W, C).

    One image at a time (`lax.scan`), each sum a product with a ones vector: XLA cannot fuse g's producer into a
    loop body, so g is computed once instead of once per tap, and one image's products stay in cache.
    """
    h, w, c = g.shape[1:]

    def add_image(total, image):
        xi, gi = image
        products = [xi[i : i + h, j : j + w] * gi for i in range(3) for j in range(3)] + [gi]
        return total + jnp.stack([channel_sum(p) for p in products]), None

    total, _ = lax.scan(add_image, jnp.zeros((10, c), g.dtype), (xp, g))
    return total[:9].reshape(3, 3, c), total[9]


def _depthwise_taps_bwd(residuals, g):
    xp, kernel = residuals
    dx = _taps3x3(zero_pad(g, 1), kernel[::-1, ::-1], *g.shape[1:3])
    return (dx, *_tap_sums(xp, g))


_depthwise_taps.defvjp(_depthwise_taps_fwd, _depthwise_taps_bwd)


def depthwise3x3(x: jax.Array, kernel: jax.Array, bias: jax.Array, *, platform: str | None = None) -> jax.Array:
    """3x3 depthwise cross-correlation with zero padding: x (N, H, W, C), kernel (3, 3, 1, C), bias (C,).

    On CPUs it is written as nine shifted multiply-adds with a hand-written
    backward pass (`_depthwise_taps`): XLA:CPU's grouped convolution took
    6-25x longer for its value and gradient (measured on the 2-core CI
    machine, 8 x 64 x 64 x 32: 200 ms against 32 ms); elsewhere it is
    `lax.conv_general_dilated` with one group per channel.
    `platform`: as `jaxdeblur.nets.platform.resolve` (the platform traced for).
    """
    if fast_cpu_paths(platform):
        return _depthwise_taps(x, kernel[:, :, 0, :], bias)
    out = lax.conv_general_dilated(zero_pad(x, 1), kernel, (1, 1), "VALID",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1])
    return out + bias
