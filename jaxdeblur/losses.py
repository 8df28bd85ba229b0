"""Loss terms of the DIP methods: pure, jit/grad/vmap-able functions.

Images are (H, W, C) float32 in [0, 1]; kernels (kh, kw) summing to 1.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxdeblur.metrics import differentiable_ssim


def mse(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Mean squared error of two equally shaped arrays (a scalar)."""
    return jnp.mean((a - b) ** 2)


def ssim_loss(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """1 - SSIM of two (H, W, C) images in [0, 1], differentiable.

    `jaxdeblur.metrics.differentiable_ssim` (dm-pix: 11x11 Gaussian window,
    sigma 1.5, 'valid' filtering, no downsampling). SelfDeblur's PyTorch SSIM
    pads by 5 px with zeros instead; evaluation uses `jaxdeblur.metrics.ssim`.
    """
    return 1.0 - differentiable_ssim(a, b)


def total_variation(x: jnp.ndarray, *, eps: float = 1e-8) -> jnp.ndarray:
    """Isotropic total variation of an (H, W, C) image, mean over pixels.

    Forward differences with the last row/column replicated (zero gradient at
    the border); `eps` keeps the square root differentiable at flat pixels.
    """
    dy = jnp.diff(x, axis=0, append=x[-1:, :, :])
    dx = jnp.diff(x, axis=1, append=x[:, -1:, :])
    return jnp.mean(jnp.sqrt(dy**2 + dx**2 + eps))


def kernel_l2(k: jnp.ndarray) -> jnp.ndarray:
    """Squared l2 norm of a kernel (Kotera et al.): small for spread-out kernels."""
    return jnp.sum(k**2)
