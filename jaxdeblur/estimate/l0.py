"""The latent-image step: L0-regularised intensity and gradient prior (Pan et al. 2014), FFT solves.

Minimises, for a fixed kernel k, on a periodic (padded) domain,

    E(x) = ||k * x - y||^2 + lambda_i ||x||_0 + lambda_g ||grad x||_0

(sums over pixels, `*` the circular true convolution of `jaxdeblur.forward`,
grad the forward differences) by half-quadratic splitting: auxiliaries u ~ x
and g ~ grad x with weights beta and mu that grow geometrically,

    u = x where beta x^2 >= lambda_i, else 0
    g = grad x where mu |grad x|^2 >= lambda_g, else 0       (jointly on both components)
    x = F^-1[(conj(K) Y + beta U + mu F(D^T g)) / (|K|^2 + beta + mu |D|^2)]

with beta_t = 2 lambda_i r^t and mu_t = 2 lambda_g r^t (one joint
continuation, `steps` values of t). Each step costs one rfft2 and one irfft2.
Everything is pure jnp on one (H, W) image; vmap for batches.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdeblur.forward import kernel_to_otf

# numpy, not jnp: a jnp array made at import would start jax's backend before `jax.distributed.initialize()`
_DX = np.array([[1.0, -1.0]], np.float32)  # blur convention: (D_x x)[i, j] = x[i, j + 1] - x[i, j]
_DY = np.array([[1.0], [-1.0]], np.float32)


def forward_differences(x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Circular forward differences of (H, W): (x[:, j+1] - x[:, j], x[i+1] - x[i])."""
    return jnp.roll(x, -1, axis=1) - x, jnp.roll(x, -1, axis=0) - x


def _divergence_adjoint(gx: jnp.ndarray, gy: jnp.ndarray) -> jnp.ndarray:
    """D^T g for the circular forward differences: (g[j-1] - g[j]) summed over both axes."""
    return jnp.roll(gx, 1, axis=1) - gx + jnp.roll(gy, 1, axis=0) - gy


def gradient_otf_power(shape: tuple[int, int]) -> jnp.ndarray:
    """|D_x|^2 + |D_y|^2 on the rfft2 grid of `shape` (H, W // 2 + 1)."""
    return jnp.abs(kernel_to_otf(_DX, shape)) ** 2 + jnp.abs(kernel_to_otf(_DY, shape)) ** 2


def l0_restore(y: jnp.ndarray, k: jnp.ndarray, lambda_grad, lambda_intensity, *, steps: int,
               rate: float) -> dict[str, jnp.ndarray]:
    """Latent image of a periodic blurred image under the L0 intensity + gradient prior.

    Args:
      y: (H, W) blurred image, treated as periodic (pad and taper it first).
      k: (kh, kw) kernel, blur convention, kh <= H and kw <= W.
      lambda_grad: weight of ||grad x||_0 (> 0; may be traced).
      lambda_intensity: weight of ||x||_0 (>= 0; 0 switches the term off).
      steps: splitting steps (static).
      rate: growth factor of the splitting weights per step (static).

    Returns:
      {"x": the (H, W) latent, "x_spectrum": its rfft2 (H, W // 2 + 1),
       "nonzero_intensity": #(u != 0), "nonzero_gradient": #(g != 0)} for the
      auxiliaries of the last step (the L0 counts of the prior).
    """
    shape = y.shape
    otf = kernel_to_otf(k, shape)
    data_numerator = jnp.conj(otf) * jnp.fft.rfft2(y)
    data_denominator = jnp.abs(otf) ** 2
    grad_power = gradient_otf_power(shape)

    def split(x, t):
        beta = 2.0 * lambda_intensity * rate**t
        mu = 2.0 * lambda_grad * rate**t
        u = jnp.where(beta * x**2 >= lambda_intensity, x, 0.0)
        gx, gy = forward_differences(x)
        keep = mu * (gx**2 + gy**2) >= lambda_grad
        gx, gy = jnp.where(keep, gx, 0.0), jnp.where(keep, gy, 0.0)
        spectrum = (data_numerator + jnp.fft.rfft2(beta * u + mu * _divergence_adjoint(gx, gy))) / (
            data_denominator + beta + mu * grad_power)
        return u, keep, spectrum

    def step(t, x):
        _, _, spectrum = split(x, t)
        return jnp.fft.irfft2(spectrum, s=shape)

    x = lax.fori_loop(0, steps - 1, step, y)
    u, keep, spectrum = split(x, jnp.asarray(steps - 1, jnp.float32))
    return {"x": jnp.fft.irfft2(spectrum, s=shape), "x_spectrum": spectrum,
            "nonzero_intensity": jnp.sum(u != 0), "nonzero_gradient": jnp.sum(keep)}


__all__ = ["l0_restore", "forward_differences", "gradient_otf_power"]
