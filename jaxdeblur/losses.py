"""Training objectives (DIP methods and trained models): pure, jit/grad/vmap-able functions.

Evaluation numbers come from `jaxdeblur.metrics`; these are for gradients.

Images are (H, W, C) float32 in [0, 1]; kernels (kh, kw) summing to 1.
"""

from __future__ import annotations

import dm_pix
import jax
import jax.numpy as jnp


def differentiable_ssim(a: jnp.ndarray, b: jnp.ndarray, *, data_range: float = 1.0) -> jnp.ndarray:
    """SSIM for training losses: ``dm_pix.ssim`` (jit/grad/vmap-able).

    Same window and constants as `jaxdeblur.metrics.ssim` ('valid' 11x11 Gaussian, sigma 1.5,
    K1 0.01, K2 0.03, mean over the map and channels) but with no
    downsampling, and with the variances clipped at float32 eps^2 and the
    covariance to +-sqrt(var_a var_b) (dm-pix's safeguards for gradients).
    Report evaluation numbers with `jaxdeblur.metrics.ssim`, not with this.

    Args:
      a, b: float images of the same shape: (H, W), (H, W, C) or
        (N, H, W, C), in [0, data_range], at least 11 x 11 pixels.
      data_range: the dynamic range of the images.

    Returns:
      A scalar for (H, W) and (H, W, C) inputs, an (N,) array for batches.
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim not in (2, 3, 4):
        raise ValueError(f"a must be (H, W), (H, W, C) or (N, H, W, C), got shape {a.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    return _dm_pix_ssim(a, b, data_range)


@jax.jit
def _dm_pix_ssim(a: jnp.ndarray, b: jnp.ndarray, data_range: float) -> jnp.ndarray:
    return dm_pix.ssim(a, b, max_val=data_range)


def mse(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Mean squared error of two equally shaped arrays (a scalar)."""
    return jnp.mean((a - b) ** 2)


def ssim_loss(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """1 - SSIM of two (H, W, C) images in [0, 1], differentiable.

    `differentiable_ssim` (dm-pix: 11x11 Gaussian window,
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


def charbonnier(a: jnp.ndarray, b: jnp.ndarray, *, eps: float = 1e-6) -> jnp.ndarray:
    """Charbonnier (smooth L1) loss: the mean of sqrt((a - b)^2 + eps) over all elements (a scalar).

    The blur-kernel-space reference sums the same terms (eps 1e-6); the mean
    only rescales the gradient by the element count.
    """
    d = a - b
    return jnp.mean(jnp.sqrt(d * d + eps))


def hyper_laplacian_penalty(x: jnp.ndarray, *, alpha: float = 0.66, eps: float = 1e-6) -> jnp.ndarray:
    """Hyper-Laplacian image prior: mean over pixels of (|grad x|^2 + eps)^(alpha / 2) (a scalar).

    As in the blur-kernel-space reference: the gradient is the Sobel pair
    summed over the channels of an (H, W, C) image, zero padding by one
    pixel (`alpha` 0.66 there); eps keeps it differentiable on flat regions.
    """
    xp = jnp.pad(jnp.sum(x, axis=-1), 1)
    h, w = x.shape[:2]
    win = lambda i, j: xp[i:i + h, j:j + w]  # noqa: E731 - the 3x3 neighbours
    gx = (win(0, 0) + 2 * win(1, 0) + win(2, 0)) - (win(0, 2) + 2 * win(1, 2) + win(2, 2))
    gy = (win(0, 0) + 2 * win(0, 1) + win(0, 2)) - (win(2, 0) + 2 * win(2, 1) + win(2, 2))
    return jnp.mean((gx**2 + gy**2 + eps) ** (alpha / 2))
