"""BatchNorm (+ LeakyReLU), reflection padding and 2x upsampling with hand-written backward passes (CPU).

Between the convolutions of the DIP nets every feature map goes through
BatchNorm (batch statistics), LeakyReLU and a reflection pad (and a 2x
bilinear upsampling on the way up). Autodiff of these ops costs XLA:CPU many
full passes over each map: its channel sums become slow tree reductions
(`reduce-window`), the adjoint of the reflection pad becomes several padded
copies added together, and the upsampling is two matrix products with
transposes. Measured on the
2-core CI machine (CPU time per iteration of a `lax.scan`, every input
changing), for SelfDeblur's full-resolution maps: forward and backward of
BatchNorm + LeakyReLU + pad on 271 x 271 x 128, 175-188 ms as autodiff, 74-86 ms
as written here; the 2x upsampling of 136 x 136 x 128, 152-161 ms with
`jax.image.resize`, 36-48 ms as written here.

Here the channel sums are matrix products with a ones vector (XLA's fast
path), and each backward is written as one pointwise expression:

    BatchNorm (x: (N, H, W, C), M = N H W, xh = (x - mean) / sqrt(var + eps), y = scale xh + bias):
      dx = scale / sqrt(var + eps) * (dy - sum(dy) / M - xh * sum(dy * xh) / M)
           + dmean / M + dvar * 2 (x - mean) / M         (cotangents of the returned statistics)
    LeakyReLU:  da = dy * (1 if y >= 0 else slope)
    reflection pad by p: the gradient of the pad rows folded back onto the rows they copied,
      as one concatenation of slices.
    bilinear 2x upsampling (half-pixel centres, edges clamped), per axis:
      out[2i] = 0.75 x[i] + 0.25 x[i - 1],  out[2i + 1] = 0.75 x[i] + 0.25 x[i + 1]

The values are those of `nnx.BatchNorm` (two-pass biased variance), `jax.nn.leaky_relu`,
`jnp.pad(..., mode="reflect")` and `jax.image.resize`; the gradients equal autodiff's to float
rounding. Like `jaxdeblur.nets.conv`, this is used on the CPU backend only:
on other backends the plain ops run (their compilers fuse them well). Each op
takes the platform as its `platform` argument, else the one the program is
traced for (`jaxdeblur.nets.platform.resolve`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jaxdeblur.nets.platform import fast_cpu_paths


# --------------------------------------------------------------------------- reflection pad

def _pad_spec(pad: int):
    return ((0, 0), (pad, pad), (pad, pad), (0, 0))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    return jnp.pad(x, _pad_spec(pad), mode="reflect")


def _reflect_pad_fwd(x, pad):
    return _reflect_pad(x, pad), None


def _fold(g: jax.Array, pad: int, axis: int) -> jax.Array:
    """Adjoint of reflect-padding one axis by `pad`: g (length L + 2 pad) -> (length L)."""
    n = g.shape[axis] - 2 * pad

    def part(start, stop, flip=False):
        s = lax.slice_in_dim(g, start, stop, axis=axis)
        return lax.rev(s, (axis,)) if flip else s

    return jnp.concatenate([
        part(pad, pad + 1),                                         # row 0: copied by no pad row
        part(pad + 1, 2 * pad + 1) + part(0, pad, flip=True),       # rows 1..pad: also copied above
        part(2 * pad + 1, n - 1),                                   # interior
        part(n - 1, n - 1 + pad) + part(n + pad, n + 2 * pad, flip=True),  # rows n-1-pad..n-2: also below
        part(n + pad - 1, n + pad),                                 # row n-1
    ], axis=axis)


def _reflect_pad_bwd(pad, _, g):
    return (_fold(_fold(g, pad, 1), pad, 2),)


_reflect_pad.defvjp(_reflect_pad_fwd, _reflect_pad_bwd)


def reflect_pad(x: jax.Array, pad: int, *, platform: str | None = None) -> jax.Array:
    """Reflection-pads H and W of x (N, H, W, C) by `pad` (`jnp.pad` mode "reflect", edge not repeated).

    Needs H, W >= pad + 1 (like `jnp.pad`). On CPU with H, W >= 2 pad + 2 the
    backward pass is one folding pass (see the module docstring); `platform`
    as `jaxdeblur.nets.platform.resolve`.
    """
    if pad == 0:
        return x
    if fast_cpu_paths(platform) and min(x.shape[1:3]) >= 2 * pad + 2:
        return _reflect_pad(x, pad)
    return jnp.pad(x, _pad_spec(pad), mode="reflect")


# --------------------------------------------------------------------------- bilinear 2x upsampling

def _upsample_axis(x: jax.Array, axis: int) -> jax.Array:
    """2x bilinear along `axis` (half-pixel centres, clamped): out[2i] = .75 x[i] + .25 x[i-1], out[2i+1] = .75 x[i] + .25 x[i+1]."""
    n = x.shape[axis]
    part = functools.partial(lax.slice_in_dim, x, axis=axis)
    before = jnp.concatenate([part(0, 1), part(0, n - 1)], axis=axis)
    after = jnp.concatenate([part(1, n), part(n - 1, n)], axis=axis)
    out = jnp.stack([0.75 * x + 0.25 * before, 0.75 * x + 0.25 * after], axis=axis + 1)
    return out.reshape(*x.shape[:axis], 2 * n, *x.shape[axis + 1:])


def _upsample_axis_adjoint(g: jax.Array, axis: int) -> jax.Array:
    """Adjoint of `_upsample_axis`: g (length 2n) -> (length n)."""
    n = g.shape[axis] // 2
    even = lax.slice_in_dim(g, 0, 2 * n, 2, axis=axis)
    odd = lax.slice_in_dim(g, 1, 2 * n, 2, axis=axis)

    def part(t, start, stop):
        return lax.slice_in_dim(t, start, stop, axis=axis)

    zero = jnp.zeros_like(part(even, 0, 1))
    to_before = jnp.concatenate([part(even, 0, 1) + part(even, 1, 2), part(even, 2, n), zero], axis=axis)
    to_after = jnp.concatenate([zero, part(odd, 0, n - 2), part(odd, n - 2, n - 1) + part(odd, n - 1, n)], axis=axis)
    return 0.75 * (even + odd) + 0.25 * (to_before + to_after)


@jax.custom_vjp
def _upsample2x(x: jax.Array) -> jax.Array:
    return _upsample_axis(_upsample_axis(x, 1), 2)


_upsample2x.defvjp(lambda x: (_upsample2x(x), None),
                   lambda _, g: (_upsample_axis_adjoint(_upsample_axis_adjoint(g, 2), 1),))


def upsample2x_bilinear(x: jax.Array, *, platform: str | None = None) -> jax.Array:
    """(N, H, W, C) -> (N, 2H, 2W, C), bilinear with half-pixel centres (PyTorch's align_corners=False).

    `jax.image.resize(..., "bilinear")` on every backend but the CPU, where
    the same values come from the two-tap stencil of the module docstring
    (and its adjoint as the backward pass), for H, W >= 2; `platform` as
    `jaxdeblur.nets.platform.resolve`.
    """
    n, h, w, c = x.shape
    if fast_cpu_paths(platform) and min(h, w) >= 2:
        return _upsample2x(x)
    return jax.image.resize(x, (n, 2 * h, 2 * w, c), method="bilinear")


# --------------------------------------------------------------------------- BatchNorm (+ LeakyReLU)

def channel_sum(t: jax.Array) -> jax.Array:
    """Sum over all axes but the last, as a matrix product: (..., C) -> (C,)."""
    flat = t.reshape(-1, t.shape[-1])
    return jnp.ones((flat.shape[0],), t.dtype) @ flat


def _statistics(x):
    m = x.size // x.shape[-1]
    mean = channel_sum(x) / m
    var = channel_sum(jnp.square(x - mean)) / m
    return mean, var


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _batch_norm_act(x, scale, bias, epsilon: float, slope: float | None):
    mean, var = _statistics(x)
    y = (x - mean) * (lax.rsqrt(var + epsilon) * scale) + bias
    return (y if slope is None else jnp.where(y >= 0, y, slope * y)), mean, var


def _batch_norm_act_fwd(x, scale, bias, epsilon, slope):
    out = _batch_norm_act(x, scale, bias, epsilon, slope)
    return out, (x, scale, bias, out[1], out[2])


def _batch_norm_act_bwd(epsilon, slope, residuals, cotangents):
    x, scale, bias, mean, var = residuals
    g, g_mean, g_var = cotangents
    m = x.size // x.shape[-1]
    inv = lax.rsqrt(var + epsilon)
    normalised = (x - mean) * inv
    if slope is None:
        dy = g
    else:  # the sign of y, computed exactly as the forward pass did
        dy = jnp.where((x - mean) * (inv * scale) + bias >= 0, g, slope * g)
    d_bias = channel_sum(dy)
    d_scale = channel_sum(dy * normalised)
    dx = (scale * inv) * (dy - d_bias / m - normalised * (d_scale / m)) + g_mean / m + (x - mean) * (2 * g_var / m)
    return dx, d_scale, d_bias


_batch_norm_act.defvjp(_batch_norm_act_fwd, _batch_norm_act_bwd)


def batch_norm_act(norm: nnx.BatchNorm, x: jax.Array, *, negative_slope: float | None = None,
                   platform: str | None = None) -> jax.Array:
    """`norm(x)` with batch statistics, then LeakyReLU(negative_slope) unless None.

    x: (N, H, W, C) features; `norm`: an `nnx.BatchNorm` over the last axis in
    training mode (`use_running_average=False`, scale and bias), whose running
    statistics are updated as its own call would. Other BatchNorms, and every
    platform but the CPU, take the plain path (`norm(x)`, `jax.nn.leaky_relu`);
    `platform` as `jaxdeblur.nets.platform.resolve`.
    """
    fusable = (fast_cpu_paths(platform) and not norm.use_running_average and norm.scale is not None and norm.bias is not None
               and norm.axis in (-1, x.ndim - 1) and norm.axis_name is None and x.dtype == jnp.float32)
    if not fusable:
        y = norm(x)
        return y if negative_slope is None else jax.nn.leaky_relu(y, negative_slope)
    y, mean, var = _batch_norm_act(x, norm.scale[...], norm.bias[...], float(norm.epsilon), negative_slope)
    norm.mean[...] = lax.stop_gradient(norm.momentum * norm.mean[...] + (1 - norm.momentum) * mean)
    norm.var[...] = lax.stop_gradient(norm.momentum * norm.var[...] + (1 - norm.momentum) * var)
    return y
