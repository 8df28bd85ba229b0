"""The kernel step: least squares on image gradients in the Fourier domain, and edge selection.

For latent gradients (lx, ly) and blurred gradients (bx, by), all (H, W), the
kernel k (kh, kw) (blur convention, centre c = (kh // 2, kw // 2)) minimises

    sum_{d in {x, y}} ||k * l_d - b_d||^2 + gamma ||k||^2

over its support. Its normal equations are (R + gamma I) k = b with R the
autocorrelation of the latent gradients at the lags between two taps
(a Toeplitz operator) and b their cross-correlation with the blurred
gradients at the taps' offsets. Both come from one zero-padded FFT of each
gradient image (linear correlations: no wrap-around across the image
border), after which the system lives on (2kh - 1, 2kw - 1) lags only and is
solved by conjugate gradients with small FFTs, whatever the image size.
(Pan et al.'s code solves the same normal equations by CG with image-size
FFTs per step, on circular correlations.)

Edge selection (Cho & Lee, used by Pan et al.): only latent gradients whose
squared magnitude reaches a threshold take part; the threshold is set once
from the blurred image at the coarsest scale so that each of 4 orientation
bins keeps enough pixels, then decays.

Pure jnp on one image / kernel; vmap for batches.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from scipy.fft import next_fast_len

_TINY = 1e-30
_CG_TOLERANCE = 1e-5  # relative residual norm at which CG stops updating (Pan's code: 1e-5)
_TAN_22_5 = 0.41421356  # tan(22.5 degrees): the boundary between orientation bins
_EDGE_FALLBACK = 0.81  # Cho & Lee: a threshold above every gradient is lowered by this factor until one passes


def spectrum_shape(image_shape: tuple[int, int], kernel_shape: tuple[int, int]) -> tuple[int, int]:
    """FFT size (static) whose circular correlations equal the linear ones at lags up to the kernel size."""
    return tuple(next_fast_len(int(n) + int(k), real=True) for n, k in zip(image_shape, kernel_shape))


def gradient_spectra(gx: jnp.ndarray, gy: jnp.ndarray, shape: tuple[int, int]) -> tuple[jnp.ndarray, jnp.ndarray]:
    """rfft2 of a pair of (H, W) gradient images zero-padded to `shape` (from `spectrum_shape`)."""
    return jnp.fft.rfft2(gx, s=shape), jnp.fft.rfft2(gy, s=shape)


def normal_equations(latent_spectra, blurred_spectra, shape: tuple[int, int], kernel_shape: tuple[int, int]
                     ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(R_lags (2kh - 1, 2kw - 1), b (kh, kw)) of the kernel least squares.

    R_lags[a, b] = sum_d sum_p l_d[p] l_d[p + (a - kh + 1, b - kw + 1)] and
    b[i, j] = sum_d sum_p b_d[p] l_d[p - (i - kh // 2, j - kw // 2)], from
    `gradient_spectra` of the latent (l) and blurred (b) gradients at `shape`.
    """
    kh, kw = kernel_shape
    lx, ly = latent_spectra
    bx, by = blurred_spectra
    autocorrelation = jnp.fft.irfft2(jnp.abs(lx) ** 2 + jnp.abs(ly) ** 2, s=shape)
    cross = jnp.fft.irfft2(jnp.conj(lx) * bx + jnp.conj(ly) * by, s=shape)
    r_lags = jnp.roll(autocorrelation, (kh - 1, kw - 1), axis=(0, 1))[: 2 * kh - 1, : 2 * kw - 1]
    b = jnp.roll(cross, (kh // 2, kw // 2), axis=(0, 1))[:kh, :kw]
    return r_lags, b


def solve_kernel(r_lags: jnp.ndarray, b: jnp.ndarray, *, reg, iterations: int) -> jnp.ndarray:
    """Conjugate gradients on (R + reg I) k = b from the uniform kernel (Pan et al.'s start).

    (R k)[i] = sum_q R_lags[i - q + (kh - 1, kw - 1)] k[q]: the middle of the
    full convolution of R_lags with k, computed with FFTs of about 3kh x 3kw.
    Updates stop once the residual norm falls below 1e-5 of the initial one.
    Returns the unconstrained (kh, kw) solution (negative taps included).
    """
    kh, kw = b.shape
    s = (next_fast_len(3 * kh - 2, real=True), next_fast_len(3 * kw - 2, real=True))
    r_spectrum = jnp.fft.rfft2(r_lags, s=s)

    def apply(k):
        full = jnp.fft.irfft2(r_spectrum * jnp.fft.rfft2(k, s=s), s=s)
        return full[kh - 1 : 2 * kh - 1, kw - 1 : 2 * kw - 1] + reg * k

    k0 = jnp.full(b.shape, 1.0 / b.size, b.dtype)
    r0 = b - apply(k0)
    rr0 = jnp.sum(r0**2)

    def step(_, state):
        k, r, p, rr = state
        active = rr > _CG_TOLERANCE**2 * rr0
        ap = apply(p)
        alpha = jnp.where(active, rr / jnp.maximum(jnp.sum(p * ap), _TINY), 0.0)
        k, r = k + alpha * p, r - alpha * ap
        rr_new = jnp.where(active, jnp.sum(r**2), rr)
        p = jnp.where(active, r + rr_new / jnp.maximum(rr, _TINY) * p, p)
        return k, r, p, rr_new

    k, *_ = lax.fori_loop(0, iterations, step, (k0, r0, r0, rr0))
    return k


def _orientation_bins(gx: jnp.ndarray, gy: jnp.ndarray) -> jnp.ndarray:
    """Orientation bin 0..3 of each gradient, modulo 180 degrees: bins centred on 0, 45, 90 and 135 degrees.

    (Cho & Lee's bins start at 0, 45, 90, 135 instead; centring them on the
    axes keeps axis-aligned edges, common in man-made scenes, away from a bin
    boundary, where float rounding of a zero component would flip the bin.)
    """
    ax, ay = jnp.abs(gx), jnp.abs(gy)
    diagonal = jnp.where(gx * gy > 0, 1, 3)
    return jnp.where(ay < _TAN_22_5 * ax, 0, jnp.where(ax < _TAN_22_5 * ay, 2, diagonal))


def initial_edge_threshold(gx: jnp.ndarray, gy: jnp.ndarray, count: int) -> jnp.ndarray:
    """Largest squared-magnitude threshold that keeps at least `count` pixels in every orientation bin.

    0 (keep everything) when a bin has fewer than `count` pixels.
    """
    magnitude = (gx**2 + gy**2).ravel()
    bins = _orientation_bins(gx, gy).ravel()
    count = min(int(count), magnitude.size)
    per_bin = jnp.stack([lax.top_k(jnp.where(bins == i, magnitude, -1.0), count)[0][-1] for i in range(4)])
    return jnp.maximum(jnp.min(per_bin), 0.0)


def select_edges(gx: jnp.ndarray, gy: jnp.ndarray, threshold) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Gradients with gx^2 + gy^2 below the threshold zeroed; returns (gx, gy, threshold used).

    If no pixel reaches the threshold, it is first lowered by factors of 0.81
    until the strongest one does (Cho & Lee); an all-zero image stays zero.
    """
    magnitude = gx**2 + gy**2
    peak = jnp.max(magnitude)
    lowerings = jnp.ceil(jnp.log(jnp.maximum(peak, _TINY) / jnp.maximum(threshold, _TINY)) / jnp.log(_EDGE_FALLBACK))
    lowered = jnp.minimum(threshold * _EDGE_FALLBACK**lowerings, peak)  # min: guards float rounding
    threshold = jnp.where((peak > 0) & (peak < threshold), lowered, threshold)
    keep = magnitude >= threshold
    return jnp.where(keep, gx, 0.0), jnp.where(keep, gy, 0.0), threshold


__all__ = ["spectrum_shape", "gradient_spectra", "normal_equations", "solve_kernel", "initial_edge_threshold",
           "select_edges"]
