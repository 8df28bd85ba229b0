"""Observation noise: adding it to synthetic blurred data (explicit PRNG keys) and measuring it in an image."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

QUANTISATION_SIGMA = 1.0 / (255.0 * np.sqrt(12.0))  # the std of rounding to 8 bits, [0, 1] units
_LAPLACIAN_DIFFERENCE = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def add_gaussian_noise(key, x, sigma, *, quantize: bool = False, clip: bool = True) -> jnp.ndarray:
    """Add white Gaussian noise, then optionally clip to [0, 1] and quantise to 8 bits.

    y = x + sigma * n with n ~ N(0, 1) i.i.d. per pixel and channel; then
    y = clip(y, 0, 1) if `clip`; then y = round(255 * y) / 255 if `quantize`
    (8-bit storage of the noisy image; with `clip=False` values outside [0, 1]
    are rounded on the same grid). The same key gives the same noise.

    Args:
      key: a JAX PRNG key (`jax.random.key` or `jax.random.PRNGKey`).
      x: image(s) of any shape, floating, in [0, 1] units.
      sigma: noise standard deviation in [0, 1] units (e.g. 0.01 = 2.55 gray
        levels); a scalar or an array broadcastable to x (e.g. (N, 1, 1, 1)
        for per-image levels). Must be non-negative.
      quantize: round to the 8-bit grid k / 255.
      clip: clip to [0, 1].

    Returns:
      float32 array of x's shape.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must be a floating-point image in [0, 1], got dtype {x.dtype}")
    if not isinstance(sigma, jax.core.Tracer):
        sigma_np = jnp.asarray(sigma)
        if bool(jnp.any(sigma_np < 0)):
            raise ValueError(f"sigma must be non-negative, got {sigma}")
        if jnp.broadcast_shapes(sigma_np.shape, x.shape) != x.shape:
            raise ValueError(f"sigma of shape {sigma_np.shape} does not broadcast to x of shape {x.shape}")
    x = x.astype(jnp.float32)
    y = x + jnp.asarray(sigma, jnp.float32) * jax.random.normal(key, x.shape, jnp.float32)
    if clip:
        y = jnp.clip(y, 0.0, 1.0)
    if quantize:
        y = jnp.round(y * 255.0) / 255.0
    return y


def estimate_sigma(gray) -> float:
    """The noise std of a gray image (Immerkaer 1996), at least that of 8-bit rounding.

    sqrt(pi / 2) / 6 x the mean absolute response to the 3 x 3 Laplacian
    difference mask over the interior. Edges and texture raise it a little
    (an upper estimate on detailed images).

    Args:
      gray: (H, W) image in [0, 1] units, H, W >= 3.

    Returns:
      the std in [0, 1] units, at least `QUANTISATION_SIGMA` (1 / (255 sqrt 12)).
    """
    from scipy import ndimage

    y = np.asarray(gray, np.float64)
    if y.ndim != 2 or min(y.shape) < 3:
        raise ValueError(f"estimate_sigma needs a gray (H, W) image of at least 3 x 3 pixels, got shape {y.shape}")
    response = ndimage.correlate(y, _LAPLACIAN_DIFFERENCE)[1:-1, 1:-1]
    sigma = np.sqrt(np.pi / 2.0) * np.abs(response).mean() / 6.0
    return float(max(sigma, QUANTISATION_SIGMA))


__all__ = ["QUANTISATION_SIGMA", "add_gaussian_noise", "estimate_sigma"]
