"""Non-blind deconvolution in the Fourier domain: Wiener, hyper-Laplacian (Krishnan & Fergus 2009) and
plug-and-play half-quadratic splitting with a learned denoiser (Zhang et al.'s DPIR, 2021).

Kernels follow the `jaxdeblur.forward.blur` convention (TRUE convolution,
centre (kh//2, kw//2)); for data made by correlation (SelfDeblur, Levin et al.)
pass the kernel rotated 180 degrees, `k[::-1, ::-1]`.

Boundaries (`taper=True`, the default): a real photo is the 'valid' part of a
blur of a larger scene, not a circular blur, and a plain FFT deconvolution of
it rings from the borders inwards. The image is therefore replicate-padded by
the kernel size (kh rows above and below, kw columns left and right), the
padded image is edge-tapered (MATLAB's `edgetaper`: blended with its circularly
blurred copy, with a weight that rises from 0 at the border to 1 at a kernel
size inside it, from the kernel's autocorrelation), deconvolved circularly and
cropped back. Only the padding is tapered, so no pixel of the input is
altered. `taper=False` treats the input as circularly blurred (synthetic data
made with `blur(x, k, "circular")`).

Images: (H, W) or (H, W, C) float32 in [0, 1], deconvolved per channel;
output of the same shape, clipped to [0, 1]. `wiener` and `hyper_laplacian`
check their arguments (shapes, finiteness, positive weights) on the host, then
call a jit-compiled core (`taper`, `alpha` and `betas` static; `nsr` and `lam`
traced); both are vmappable and jit-able (under a trace only the shape checks
run).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdeblur.forward import kernel_to_otf


def _check(y, k) -> tuple[jnp.ndarray, jnp.ndarray]:
    y = jnp.asarray(y)
    k = jnp.asarray(k)
    for name, a in (("y", y), ("k", k)):
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(f"{name} must be a floating-point array, got dtype {a.dtype}")
    if y.ndim not in (2, 3):
        raise ValueError(f"y must have shape (H, W) or (H, W, C), got {y.shape}; vmap over batches")
    if k.ndim != 2:
        raise ValueError(f"k must have shape (kh, kw), got {k.shape}")
    if k.shape[0] > y.shape[0] or k.shape[1] > y.shape[1]:
        raise ValueError(f"kernel {k.shape} is larger than the image {y.shape[:2]}")
    for name, a in (("y", y), ("k", k)):
        if not isinstance(a, jax.core.Tracer) and not np.isfinite(np.asarray(a)).all():
            raise ValueError(f"{name} holds NaN or infinite values")
    return y.astype(jnp.float32), k.astype(jnp.float32)


def _check_positive(name: str, value) -> None:
    if not isinstance(value, jax.core.Tracer) and not float(value) > 0:
        raise ValueError(f"{name} must be positive, got {value}")


def _taper_weight(profile: jnp.ndarray, n: int) -> jnp.ndarray:
    """1 - normalised autocorrelation of a 1-D kernel profile at the distance to the nearest border."""
    m = profile.shape[0]
    ac = jnp.correlate(profile, profile, mode="full")[m - 1 :]  # lags 0 .. m-1
    ac = ac / ac[0]
    i = jnp.arange(n)
    dist = jnp.minimum(i, n - 1 - i)
    return 1.0 - jnp.where(dist < m, ac[jnp.minimum(dist, m - 1)], 0.0)


def edgetaper(y, k) -> jnp.ndarray:
    """Blend an image with its circularly blurred copy near the borders (MATLAB's edgetaper).

    out = w * y + (1 - w) * blur(y, k, "circular"), with w(i, j) = wr(i) wc(j)
    and wr(i) = 1 - a(min(i, H - 1 - i)), a the autocorrelation of the kernel's
    row profile normalised to a(0) = 1 (zero beyond the kernel size); likewise
    wc. The result is nearly periodic, so circular deconvolution rings less.

    Args:
      y: image (H, W) or (H, W, C), floating.
      k: kernel (kh, kw), non-negative, no larger than the image.

    Returns:
      float32 array of y's shape.
    """
    y, k = _check(y, k)
    h, w = y.shape[:2]
    weight = jnp.outer(_taper_weight(k.sum(axis=1), h), _taper_weight(k.sum(axis=0), w))
    y3 = y.reshape(h, w, -1)
    otf = kernel_to_otf(k, (h, w))[:, :, None]
    blurred = jnp.fft.irfft2(jnp.fft.rfft2(y3, axes=(0, 1)) * otf, s=(h, w), axes=(0, 1))
    weight = weight[:, :, None]
    return (weight * y3 + (1.0 - weight) * blurred).reshape(y.shape)


def _prepare(y: jnp.ndarray, k: jnp.ndarray, taper: bool) -> tuple[jnp.ndarray, tuple[int, int]]:
    """(H', W', C) image to deconvolve circularly, and the (top, left) offset of y inside it."""
    y3 = y.reshape(y.shape[0], y.shape[1], -1)
    if not taper:
        return y3, (0, 0)
    kh, kw = k.shape
    yp = jnp.pad(y3, ((kh, kh), (kw, kw), (0, 0)), mode="edge")
    return edgetaper(yp, k), (kh, kw)


def _finish(x3: jnp.ndarray, y: jnp.ndarray, offset: tuple[int, int]) -> jnp.ndarray:
    top, left = offset
    h, w = y.shape[:2]
    return jnp.clip(x3[top : top + h, left : left + w], 0.0, 1.0).reshape(y.shape)


def wiener(y, k, *, nsr: float = 1e-3, taper: bool = True) -> jnp.ndarray:
    """Wiener deconvolution with a constant noise-to-signal power ratio.

    X = conj(K) Y / (|K|^2 + nsr) per frequency (K the kernel's OTF), i.e.
    Tikhonov deconvolution min_x ||k * x - y||^2 + nsr ||x||^2.

    Args:
      y: blurred image (H, W) or (H, W, C) in [0, 1] (channels independent).
      k: kernel (kh, kw) in the true-convolution convention, sum 1.
      nsr: noise-to-signal power ratio (> 0), about sigma^2 / var(x) for white
        noise of std sigma on an image x; e.g. 1e-3 for sigma 0.01 and 1e-6
        or smaller for noiseless data.
      taper: pad + edgetaper the borders (see module docstring); False for
        circularly blurred input.

    Returns:
      float32 estimate of y's shape, clipped to [0, 1].
    """
    y, k = _check(y, k)
    _check_positive("nsr", nsr)
    return _wiener(y, k, nsr, taper)


@functools.partial(jax.jit, static_argnames=("taper",))
def _wiener(y: jnp.ndarray, k: jnp.ndarray, nsr, taper: bool) -> jnp.ndarray:
    yp, offset = _prepare(y, k, taper)
    s = yp.shape[:2]
    otf = kernel_to_otf(k, s)[:, :, None]
    spec = jnp.conj(otf) * jnp.fft.rfft2(yp, axes=(0, 1)) / (jnp.abs(otf) ** 2 + nsr)
    return _finish(jnp.fft.irfft2(spec, s=s, axes=(0, 1)), y, offset)


def shrink_lp(v, beta, alpha: float, *, newton_steps: int = 10) -> jnp.ndarray:
    """Elementwise argmin_w |w|^alpha + beta / 2 * (w - v)^2, for 0 < alpha <= 1.

    The non-zero candidate is the larger root u of u - |v| + (alpha / beta)
    u^(alpha - 1) = 0 on (0, |v|], found by Newton steps from u = |v| (the
    function is convex there, so the steps decrease monotonically onto the
    root); the answer is sign(v) u or 0, whichever has the lower energy.
    Exact to float32 precision for the betas of `hyper_laplacian`; replaces
    Krishnan & Fergus's analytic (alpha 1/2, 2/3) and lookup-table solvers.

    Args:
      v: values (any shape).
      beta: the splitting weight (> 0).
      alpha: the prior exponent in (0, 1].
      newton_steps: Newton iterations for the root.

    Returns:
      w of v's shape.
    """
    a = jnp.abs(v)
    c = alpha / beta
    tiny = jnp.asarray(1e-12, a.dtype)

    def newton(_, u):
        g = u - a + c * u ** (alpha - 1.0)
        dg = 1.0 + c * (alpha - 1.0) * u ** (alpha - 2.0)
        return jnp.clip(u - g / jnp.maximum(dg, tiny), tiny, jnp.maximum(a, tiny))

    u = lax.fori_loop(0, newton_steps, newton, jnp.maximum(a, tiny))
    energy_u = u**alpha + 0.5 * beta * (u - a) ** 2
    energy_0 = 0.5 * beta * a**2
    return jnp.where(energy_u < energy_0, jnp.sign(v) * u, 0.0)


def beta_schedule(beta_min: float = 1.0, beta_max: float = 256.0, rate: float = 2.0 * math.sqrt(2.0)) -> tuple[float, ...]:
    """Krishnan & Fergus's continuation: beta_min, beta_min * rate, ... while below beta_max.

    Args:
      beta_min, beta_max: the range of splitting weights (0 < beta_min < beta_max).
      rate: the factor between consecutive weights (> 1).

    Returns:
      a tuple of floats (static: `hyper_laplacian` compiles once per schedule).
    """
    if not (beta_min > 0 and beta_max > beta_min and rate > 1):
        raise ValueError(f"need 0 < beta_min < beta_max and rate > 1, got {beta_min}, {beta_max}, {rate}")
    n = math.ceil(math.log(beta_max / beta_min) / math.log(rate))
    return tuple(beta_min * rate**i for i in range(n))


def hyper_laplacian(
    y,
    k,
    *,
    lam: float = 2e3,
    alpha: float = 2.0 / 3.0,
    betas: tuple[float, ...] = beta_schedule(),
    taper: bool = True,
) -> jnp.ndarray:
    """Non-blind deconvolution with a hyper-Laplacian gradient prior (Krishnan & Fergus 2009).

    Minimises  lam / 2 * sum (k * x - y)^2 + sum |dx x|^alpha + |dy x|^alpha
    (sums over pixels and channels, intensities in [0, 1]; dx, dy circular
    forward differences) by half-quadratic splitting: for each beta of the
    continuation schedule, one w-step (`shrink_lp` on the gradients) and one
    closed-form x-step in the Fourier domain, as in the paper's code (a
    `lax.scan` over the betas).

    Args:
      y: blurred image (H, W) or (H, W, C) in [0, 1] (channels independent).
      k: kernel (kh, kw) in the true-convolution convention, sum 1.
      lam: data-term weight (per unit squared intensity error in [0, 1]
        units, relative to the prior summed over pixels); the paper uses 2e3
        for noise of about 1% (sigma 0.01); larger for less noise.
      alpha: prior exponent in (0, 1]: 2/3 (paper) or 1/2 for sharper edges,
        0.8 for smoother results; 1 is total variation (anisotropic).
      betas: tuple of splitting weights (static: one compilation per
        schedule); default `beta_schedule()` = 1 to 256 by a factor 2 sqrt(2),
        6 iterations.
      taper: pad + edgetaper the borders (see module docstring); False for
        circularly blurred input.

    Returns:
      float32 estimate of y's shape, clipped to [0, 1].
    """
    y, k = _check(y, k)
    _check_positive("lam", lam)
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if len(betas) == 0:
        raise ValueError("betas must hold at least one value")
    return _hyper_laplacian(y, k, lam, float(alpha), tuple(float(b) for b in betas), taper)


@functools.partial(jax.jit, static_argnames=("alpha", "betas", "taper"))
def _hyper_laplacian(y: jnp.ndarray, k: jnp.ndarray, lam, alpha: float, betas: tuple[float, ...],
                     taper: bool) -> jnp.ndarray:
    yp, offset = _prepare(y, k, taper)
    s = yp.shape[:2]
    otf = kernel_to_otf(k, s)[:, :, None]
    dx = kernel_to_otf(jnp.array([[1.0, -1.0]]), s)[:, :, None]  # x[:, j+1] - x[:, j]
    dy = kernel_to_otf(jnp.array([[1.0], [-1.0]]), s)[:, :, None]  # x[i+1] - x[i]
    data_num = lam * jnp.conj(otf) * jnp.fft.rfft2(yp, axes=(0, 1))
    data_den = lam * jnp.abs(otf) ** 2
    grad_den = jnp.abs(dx) ** 2 + jnp.abs(dy) ** 2

    def step(x, beta):
        wx = shrink_lp(jnp.roll(x, -1, axis=1) - x, beta, alpha)
        wy = shrink_lp(jnp.roll(x, -1, axis=0) - x, beta, alpha)
        w_spec = jnp.conj(dx) * jnp.fft.rfft2(wx, axes=(0, 1)) + jnp.conj(dy) * jnp.fft.rfft2(wy, axes=(0, 1))
        x_spec = (data_num + beta * w_spec) / (data_den + beta * grad_den)
        return jnp.fft.irfft2(x_spec, s=s, axes=(0, 1)), None

    x, _ = lax.scan(step, yp, jnp.asarray(betas, jnp.float32))
    return _finish(x, y, offset)


FINISH_LAM = 2e3  # the finishing step's data weight (Krishnan & Fergus's value for ~1% noise)


def finishing_step(blurred, kernel, *, lam: float = FINISH_LAM) -> np.ndarray:
    """The finishing step of blind deblurring: `blurred` deconvolved non-blind with `kernel`, channel by channel.

    `hyper_laplacian` (edge tapered) of one channel at a time, which keeps the
    peak memory of a large photo low; what `jaxdeblur.deblur` returns as
    `result.deconvolved` for the DIP methods.

    Args:
      blurred: image (H, W) or (H, W, C) in [0, 1].
      kernel: (kh, kw), true-convolution convention, sum 1.
      lam: data-term weight of `hyper_laplacian`.

    Returns:
      float32 NumPy array of `blurred`'s shape, in [0, 1].
    """
    x = np.asarray(blurred, np.float32)
    if x.ndim == 2:
        return np.asarray(hyper_laplacian(x, kernel, lam=lam))
    return np.stack([np.asarray(hyper_laplacian(x[..., c], kernel, lam=lam)) for c in range(x.shape[2])], axis=-1)


def pnp_sigmas(iterations: int, sigma_start: float, noise_sigma: float) -> tuple[float, ...]:
    """DPIR's denoiser strengths, log-spaced from sigma_start down to noise_sigma.

    Args:
      iterations: how many (>= 1).
      sigma_start: the first std ([0, 1] units).
      noise_sigma: the last std, 0 < noise_sigma <= sigma_start.

    Returns:
      a tuple of `iterations` floats.

    Raises:
      ValueError: iterations < 1 or the stds out of order.
    """
    if iterations < 1 or not 0 < noise_sigma <= sigma_start:
        raise ValueError(f"need iterations >= 1 and 0 < noise_sigma <= sigma_start, got {iterations}, "
                         f"{noise_sigma}, {sigma_start}")
    if iterations == 1:
        return (float(noise_sigma),)
    return tuple(float(s) for s in np.geomspace(sigma_start, noise_sigma, iterations))


def pnp_hqs(
    y,
    k,
    *,
    denoiser,
    noise_sigma: float = 0.01,
    iterations: int = 8,
    sigma_start: float = 49.0 / 255.0,
    lam: float = 0.23,
    taper: bool = True,
) -> jnp.ndarray:
    """Plug-and-play deconvolution: half-quadratic splitting with a learned denoiser as the prior step (DPIR).

    Minimises 1 / (2 noise_sigma^2) ||k * x - y||^2 + lam R(x) by splitting
    z ~ x: for each denoiser std s_i of `pnp_sigmas(iterations, sigma_start,
    noise_sigma)`, with alpha_i = lam noise_sigma^2 / s_i^2,

        x = argmin ||k * x - y||^2 + alpha_i ||x - z||^2      (closed form, FFT)
        z = denoiser(x, s_i)                                   (the prior step)

    starting from z = y; the result is the last z. Channels are denoised as
    independent gray images (one batched denoiser call per iteration).

    Boundaries (taper=True): y is padded and edge-tapered as in the module
    docstring, but the padding is not data: before each x-step it is refilled
    with the blur of the current estimate z, so the data term weighs only the
    observed pixels (an expectation-maximisation step for the unknown scene
    beyond the borders). Measured on Levin with the true 27 px kernels this
    lifts the result by about 5 dB over deconvolving the tapered padding as
    data (experiments/results/levin_pipeline_cpu.md).

    Args:
      y: blurred image (H, W) or (H, W, C) in [0, 1].
      k: kernel (kh, kw) in the true-convolution convention, sum 1.
      denoiser: pure function (x (N, H, W, 1), sigma scalar) -> (N, H, W, 1), e.g.
        ``jaxdeblur.models.load("denoiser-cpu").fn.apply`` (static: one compilation per denoiser; it must be
        hashable, as a bound method or a module-level function is).
      noise_sigma: the noise std of y ([0, 1] units, > 0; also the last denoiser std).
      iterations: HQS iterations (static).
      sigma_start: the first denoiser std (DPIR: 49 / 255).
      lam: the prior weight (DPIR: 0.23).
      taper: pad + edgetaper the borders (see module docstring); False for circularly blurred input.

    Returns:
      float32 estimate of y's shape, clipped to [0, 1].
    """
    y, k = _check(y, k)
    _check_positive("lam", lam)
    _check_positive("noise_sigma", noise_sigma)
    pnp_sigmas(int(iterations), float(sigma_start), float(noise_sigma))  # checks the schedule's arguments
    return _pnp_hqs(y, k, denoiser, int(iterations), jnp.float32(sigma_start), jnp.float32(noise_sigma),
                    jnp.float32(lam), taper)


@functools.partial(jax.jit, static_argnames=("denoiser", "iterations", "taper"))
def _pnp_hqs(y: jnp.ndarray, k: jnp.ndarray, denoiser, iterations: int, sigma_start, noise_sigma, lam,
             taper: bool) -> jnp.ndarray:
    """The HQS loop; the stds and weights are traced, so one compilation serves every noise level."""
    yp, offset = _prepare(y, k, taper)
    s = yp.shape[:2]
    otf = kernel_to_otf(k, s)[:, :, None]
    data_den = jnp.abs(otf) ** 2
    # pnp_sigmas' log-spaced schedule, traced
    fraction = jnp.arange(iterations, dtype=jnp.float32) / max(iterations - 1, 1)
    sigmas = sigma_start * (noise_sigma / sigma_start) ** fraction if iterations > 1 else noise_sigma[None]
    alphas = lam * noise_sigma**2 / sigmas**2
    observed = jnp.zeros(s + (1,), jnp.float32).at[offset[0]:offset[0] + y.shape[0],
                                                   offset[1]:offset[1] + y.shape[1]].set(1.0)

    def step(z, sig_alpha):
        sig, alpha = sig_alpha
        z_hat = jnp.fft.rfft2(z, axes=(0, 1))
        # the padding is not observed: refilled with the blur of the current estimate (taper=False: no padding)
        filled = observed * yp + (1.0 - observed) * jnp.fft.irfft2(z_hat * otf, s=s, axes=(0, 1))
        data_num = jnp.conj(otf) * jnp.fft.rfft2(filled, axes=(0, 1))
        x = jnp.fft.irfft2((data_num + alpha * z_hat) / (data_den + alpha), s=s, axes=(0, 1))
        denoised = denoiser(jnp.transpose(x, (2, 0, 1))[..., None], sig)  # channels as a batch of gray images
        return jnp.transpose(denoised[..., 0], (1, 2, 0)), None

    z, _ = lax.scan(step, yp, (sigmas, alphas))
    return _finish(z, y, offset)


__all__ = ["wiener", "hyper_laplacian", "finishing_step", "FINISH_LAM", "pnp_hqs", "pnp_sigmas", "edgetaper", "shrink_lp", "beta_schedule"]
