"""Image and kernel quality metrics, exact to the papers' evaluation protocols.

Images are (H, W) or (H, W, C) arrays (NumPy or JAX), float in
[0, `data_range`] (default [0, 1]); integer inputs are cast to float32.
Kernels are (kh, kw) arrays.

- `psnr`, `ssim`: PSNR and Wang et al.'s reference SSIM (``ssim.m``, with its
  automatic box-filter downsampling). Colour images: SSIM is the mean of the
  per-channel SSIM values; PSNR uses the MSE over all channels.
- `align`, `aligned_psnr_ssim`, `error_ratio`: Levin et al.'s protocol (border
  crop, sub-pixel shift search with bilinear interpolation, least SSD).
- `isnr`: Kotera et al.'s improvement in SNR over the blurred input.
- `kernel_similarity`: Hu & Yang's maximum normalised cross-correlation.

Lai et al.'s colour benchmark measures on the Y channel of MATLAB's
``rgb2ycbcr``: convert both images with `jaxdeblur.color.rgb_to_y` first and
pass the results here (Y then lies in [16/255, 235/255], `data_range` stays 1).

The input checks (ndim, shapes, NaN/Inf) raise ValueError naming the argument;
the NaN/Inf check runs only on concrete arrays, so `psnr`, `ssim`, `isnr` and
`kernel_similarity` stay usable under `jax.jit`.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5


def _as_float_array(x, name: str, ndims: tuple[int, ...], what: str) -> jnp.ndarray:
    """`x` as a float JAX array of one of `ndims`; ValueError naming `name` if not.

    The NaN/Inf check is skipped for tracers, which keeps callers jit-able."""
    x = jnp.asarray(x)
    if x.ndim not in ndims:
        raise ValueError(f"{name} must be {what}, got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    if not isinstance(x, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def _as_image(x, name: str) -> jnp.ndarray:
    return _as_float_array(x, name, (2, 3), "an (H, W) or (H, W, C) image")


def _as_pair(a, b, name_a: str, name_b: str) -> tuple[jnp.ndarray, jnp.ndarray]:
    a, b = _as_image(a, name_a), _as_image(b, name_b)
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def _channels_first(x: jnp.ndarray) -> jnp.ndarray:
    """(H, W) -> (1, H, W); (H, W, C) -> (C, H, W)."""
    return x[None] if x.ndim == 2 else jnp.moveaxis(x, -1, 0)


def _as_hwc(x: jnp.ndarray) -> jnp.ndarray:
    """(H, W) -> (H, W, 1); (H, W, C) unchanged."""
    return x[..., None] if x.ndim == 2 else x


def _crop(x: jnp.ndarray, crop: int) -> jnp.ndarray:
    """`x` without `crop` pixels on every border."""
    return x[crop : x.shape[0] - crop, crop : x.shape[1] - crop]


def psnr(a, b, *, data_range: float = 1.0) -> jnp.ndarray:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range^2 / MSE(a, b)).

    Args:
      a, b: images of the same shape, (H, W) or (H, W, C), in [0, data_range].
      data_range: the peak value (1.0 for [0, 1] images, 255 for 8-bit ones).

    Returns:
      A scalar; +inf for identical images.
    """
    a, b = _as_pair(a, b, "a", "b")
    mse = jnp.mean((a - b) ** 2)
    return 10.0 * jnp.log10(data_range**2 / mse)


def psnr_per_image(x: jax.Array, y: jax.Array) -> jax.Array:
    """PSNR in dB at peak 1 of each image of two batches; jit-able, no checks (a training loss and metric).

    Args:
      x, y: (N, H, W, C) batches in [0, 1].

    Returns:
      (N,) PSNRs in dB; the MSE is floored at 1e-10, so identical images give 100 dB, not inf.
    """
    mse = jnp.mean(jnp.square(jnp.asarray(x, jnp.float32) - jnp.asarray(y, jnp.float32)), axis=(1, 2, 3))
    return -10.0 * jnp.log10(mse + 1e-10)


def ssim_downsample_factor(height: int, width: int) -> int:
    """The factor f = max(1, round(min(H, W) / 256)) of Wang et al.'s ``ssim.m``.

    MATLAB's ``round`` rounds halves away from zero (640 px -> 3), unlike
    Python's ``round`` (640 px -> 2).

    Args:
      height, width: the image's size in pixels.

    Returns:
      the integer factor f >= 1.
    """
    return max(1, math.floor(min(height, width) / 256 + 0.5))


def _box_downsample(x: jnp.ndarray, f: int) -> jnp.ndarray:
    """``ssim.m``'s downsampling of a (C, H, W) stack: imfilter(x, ones(f)/f^2,
    'symmetric', 'same') then x(1:f:end, 1:f:end) -> (C, ceil(H/f), ceil(W/f)).

    MATLAB anchors an f x f filter at floor((f + 1) / 2) (1-based), so the
    window of output pixel i covers input pixels i - (f-1)//2 .. i + f//2.
    """
    before, after = (f - 1) // 2, f // 2
    padded = jnp.pad(x, ((0, 0), (before, after), (before, after)), mode="symmetric")
    summed = jax.lax.reduce_window(padded, 0.0, jax.lax.add, (1, f, f), (1, f, f), "VALID")
    return summed / f**2


def _gaussian_window_1d() -> np.ndarray:
    """The separable factor of fspecial('gaussian', 11, 1.5), normalised to sum 1."""
    r = np.arange(_SSIM_WINDOW) - _SSIM_WINDOW // 2
    g = np.exp(-(r**2) / (2.0 * _SSIM_SIGMA**2))
    return g / g.sum()


def _gaussian_filter_valid(x: jnp.ndarray) -> jnp.ndarray:
    """'valid' 11x11 Gaussian filtering of a (C, H, W) stack -> (C, H-10, W-10)."""
    g = jnp.asarray(_gaussian_window_1d(), x.dtype)
    n = _SSIM_WINDOW
    out = jax.lax.conv_general_dilated(
        x[:, None],
        g.reshape(1, 1, n, 1),
        window_strides=(1, 1),
        padding="VALID",
        precision=jax.lax.Precision.HIGHEST,
    )
    out = jax.lax.conv_general_dilated(
        out, g.reshape(1, 1, 1, n), window_strides=(1, 1), padding="VALID", precision=jax.lax.Precision.HIGHEST
    )
    return out[:, 0]


def ssim(a, b, *, data_range: float = 1.0, return_map: bool = False) -> jnp.ndarray:
    """Structural similarity exactly as Wang et al.'s reference ``ssim.m``.

    Both images are first downsampled by f = `ssim_downsample_factor(H, W)`
    (a symmetric-padded f x f box filter, then every f-th pixel), then filtered
    with the normalised 11x11 Gaussian window (sigma 1.5) in 'valid' mode; with
    K1 = 0.01, K2 = 0.03, C1 = (K1 L)^2, C2 = (K2 L)^2 and L = `data_range`,
    the SSIM map is ((2 mu_a mu_b + C1)(2 s_ab + C2)) /
    ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2)) with population (weighted)
    variances and no clipping, and the result is its mean. For (H, W, C)
    images the result is the mean over channels of the per-channel SSIM.

    Equals skimage's ``structural_similarity(a, b, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=L)`` when f = 1 (skimage
    filters the whole image, then averages the map without its 5-px border,
    which is the 'valid' map); skimage never downsamples.

    Args:
      a, b: images of the same shape, (H, W) or (H, W, C), in [0, data_range];
        at least 11 x 11 pixels after downsampling.
      data_range: the dynamic range L of the images.
      return_map: return the SSIM map instead of its mean.

    Returns:
      A scalar in [-1, 1], 1 for identical images; with `return_map`, the map
      (Ho, Wo) or (Ho, Wo, C) with Ho = ceil(H / f) - 10, Wo = ceil(W / f) - 10.
    """
    a, b = _as_pair(a, b, "a", "b")
    height, width = a.shape[:2]
    f = ssim_downsample_factor(height, width)
    if -(-height // f) < _SSIM_WINDOW or -(-width // f) < _SSIM_WINDOW:
        raise ValueError(
            f"images of shape {a.shape} are too small for SSIM: they need at least "
            f"{_SSIM_WINDOW}x{_SSIM_WINDOW} pixels after downsampling by {f}"
        )
    ssim_map = _ssim_map(_channels_first(a), _channels_first(b), f, data_range)
    if return_map:
        return ssim_map[0] if a.ndim == 2 else jnp.moveaxis(ssim_map, 0, -1)
    return jnp.mean(ssim_map)


@partial(jax.jit, static_argnums=2)
def _ssim_map(a: jnp.ndarray, b: jnp.ndarray, f: int, data_range: float) -> jnp.ndarray:
    """``ssim.m``'s SSIM map of two (C, H, W) stacks, downsampled by f -> (C, Ho, Wo)."""
    if f > 1:
        a, b = _box_downsample(a, f), _box_downsample(b, f)
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    mu_a, mu_b = _gaussian_filter_valid(a), _gaussian_filter_valid(b)
    var_a = _gaussian_filter_valid(a * a) - mu_a**2
    var_b = _gaussian_filter_valid(b * b) - mu_b**2
    cov_ab = _gaussian_filter_valid(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def _shift_grid(max_shift: float, step: float) -> np.ndarray:
    """MATLAB's ``-max_shift:step:max_shift`` (41 values for 5 and 0.25)."""
    count = math.floor(2 * max_shift / step + 1e-9) + 1
    return -max_shift + step * np.arange(count)


def _lerp_window(x: jnp.ndarray, first: jnp.ndarray, weight: jnp.ndarray, length: int, axis: int) -> jnp.ndarray:
    """`length` entries of `x` along `axis` starting at the fractional position
    first + weight (int first, weight in [0, 1)), by linear interpolation between
    neighbours (MATLAB's interp2 'linear' along one axis)."""
    lower = jax.lax.dynamic_slice_in_dim(x, first, length, axis=axis)
    upper = jax.lax.dynamic_slice_in_dim(x, first + 1, length, axis=axis)
    return (1 - weight) * lower + weight * upper


@partial(jax.jit, static_argnames="window_slice")
def _least_ssd_alignment(
    estimate: jnp.ndarray,
    target: jnp.ndarray,
    first_y: jnp.ndarray,
    weight_y: jnp.ndarray,
    first_x: jnp.ndarray,
    weight_x: jnp.ndarray,
    *,
    window_slice: tuple[tuple[int, int], tuple[int, int]],
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Least-SSD bilinear alignment of an (He, We, C) `estimate` to a (Hc, Wc, C) `target`.

    The search runs in `window` = the estimate, extended by one edge row and
    column, cut to `window_slice` ((y0, y1), (x0, x1)): (Hc + Ky, Wc + Kx, C).
    Candidate row positions in the window are first_y + weight_y (n_y,),
    column positions first_x + weight_x (n_x,), with first_* integer in
    [0, K*) and weight_* in [0, 1). Returns (aligned (Hc, Wc, C), flat index
    of the winner in the row-major (n_y, n_x) grid).

    The bilinear sample at (a + u, b + v) minus the target is the corner sum
    sum c[alpha, beta] R[a + alpha, b + beta] with R[i, j] = window[i:i+Hc,
    j:j+Wc] - target and corner weights c = lerp weights of (u, v) (summing
    to 1), so SSD = c^T Gram c with Gram the 4x4 inner products of the corner
    residuals. Only the (Ky + 1) x (Kx + 1) integer residuals are formed,
    instead of one interpolated image per shift; working with residuals (not
    raw images) keeps the float32 sums free of cancellation.
    """
    (y0, y1), (x0, x1) = window_slice
    window = jnp.pad(estimate, ((0, 1), (0, 1), (0, 0)), mode="edge")[y0:y1, x0:x1]
    height, width = target.shape[:2]
    rows_count, cols_count = window.shape[0] - height, window.shape[1] - width

    def residuals(i: jnp.ndarray) -> jnp.ndarray:
        """R[i, j] for every column offset j: (Kx + 1, Hc, Wc, C)."""
        rows = jax.lax.dynamic_slice_in_dim(window, i, height, axis=0)
        slide = jax.vmap(lambda j: jax.lax.dynamic_slice_in_dim(rows, j, width, axis=1))
        return slide(jnp.arange(cols_count + 1)) - target

    def inner_products(i: jnp.ndarray) -> dict[str, jnp.ndarray]:
        """Inner products among R[i, j], R[i, j + 1], R[i + 1, j], R[i + 1, j + 1]."""
        top, bottom = residuals(i), residuals(i + 1)

        def dot(p, q):
            return jnp.sum(p * q, axis=(1, 2, 3))

        return {
            "top": dot(top, top),  # (Kx + 1,)
            "bottom": dot(bottom, bottom),
            "top_right": dot(top[:-1], top[1:]),  # (Kx,)
            "bottom_right": dot(bottom[:-1], bottom[1:]),
            "down": dot(top, bottom),  # (Kx + 1,)
            "diagonal": dot(top[:-1], bottom[1:]),  # (Kx,)
            "antidiagonal": dot(top[1:], bottom[:-1]),
        }

    gram = jax.lax.map(inner_products, jnp.arange(rows_count))  # each (Ky, Kx[+1])
    a, b = first_y[:, None], first_x[None, :]
    u1, v1 = weight_y[:, None], weight_x[None, :]
    c00, c01, c10, c11 = (1 - u1) * (1 - v1), (1 - u1) * v1, u1 * (1 - v1), u1 * v1
    ssd = (
        c00**2 * gram["top"][a, b]
        + c01**2 * gram["top"][a, b + 1]
        + c10**2 * gram["bottom"][a, b]
        + c11**2 * gram["bottom"][a, b + 1]
        + 2 * c00 * c01 * gram["top_right"][a, b]
        + 2 * c10 * c11 * gram["bottom_right"][a, b]
        + 2 * c00 * c10 * gram["down"][a, b]
        + 2 * c01 * c11 * gram["down"][a, b + 1]
        + 2 * c00 * c11 * gram["diagonal"][a, b]
        + 2 * c01 * c10 * gram["antidiagonal"][a, b]
    )
    best = jnp.argmin(ssd)  # first minimum, row-major: MATLAB's find order on its (dx, dy) table
    p, q = best // weight_x.size, best % weight_x.size
    rows = _lerp_window(window, first_y[p], weight_y[p], height, axis=0)
    return _lerp_window(rows, first_x[q], weight_x[q], width, axis=1), best


def align(
    estimate, ground_truth, *, max_shift: float = 5.0, step: float = 0.25, crop: int = 15
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Align an estimate to the cropped ground truth (Levin et al.'s protocol).

    The ground truth loses `crop` pixels on every border; the estimate is
    sampled by bilinear interpolation on that crop's grid displaced by every
    (dy, dx) in {-max_shift, -max_shift + step, ..., max_shift}^2 (41 x 41
    shifts for 5 and 0.25), and the shift with the least sum of squared
    differences (over all channels) wins; ties go to the first in (dy, dx)
    row-major order. All shifts are evaluated in one compiled pass.

    An estimate larger than the ground truth is centred on it (its extra rows
    and columns split as evenly as possible, the odd one after).

    Args:
      estimate: (He, We) or (He, We, C) image with He >= H and We >= W.
      ground_truth: (H, W) or (H, W, C) image, same ndim and channels.
      max_shift: largest shift searched, in pixels; the estimate must extend
        at least this far beyond the crop on every side.
      step: shift step in pixels.
      crop: pixels removed from every border of the ground truth.

    Returns:
      (aligned, shift): the aligned estimate, (H - 2 crop, W - 2 crop[, C]),
      and the winning (dy, dx) such that aligned[y, x] = estimate at
      (y + crop + dy, x + crop + dx) (plus the centring offset): an estimate
      displaced by (+dy, +dx) relative to the ground truth gives (dy, dx).
    """
    estimate = _as_image(estimate, "estimate")
    ground_truth = _as_image(ground_truth, "ground_truth")
    if estimate.ndim != ground_truth.ndim or estimate.shape[2:] != ground_truth.shape[2:]:
        raise ValueError(
            "estimate and ground_truth must have the same ndim and channels, "
            f"got {estimate.shape} and {ground_truth.shape}"
        )
    if not (isinstance(crop, (int, np.integer)) and crop >= 0):
        raise ValueError(f"crop must be a non-negative int, got {crop!r}")
    if not (max_shift >= 0 and step > 0):
        raise ValueError(f"need max_shift >= 0 and step > 0, got max_shift={max_shift}, step={step}")
    height, width = ground_truth.shape[:2]
    crop_h, crop_w = height - 2 * crop, width - 2 * crop
    if crop_h < 1 or crop_w < 1:
        raise ValueError(f"crop={crop} leaves nothing of ground_truth of shape {ground_truth.shape}")
    shifts = _shift_grid(max_shift, step)
    window_slice, firsts, weights = [], [], []
    for axis, (size_e, size_g, size_c) in enumerate(
        zip(estimate.shape[:2], ground_truth.shape[:2], (crop_h, crop_w), strict=True)
    ):
        if size_e < size_g:
            raise ValueError(
                f"estimate must not be smaller than ground_truth, got {estimate.shape} and {ground_truth.shape}"
            )
        origin = crop + (size_e - size_g) // 2
        margin = min(origin, size_e - origin - size_c)
        if margin < max_shift:
            raise ValueError(
                f"max_shift={max_shift} reaches outside the estimate along axis {axis}: it extends only "
                f"{margin} px beyond the crop (increase crop or decrease max_shift)"
            )
        position = origin + shifts
        first = np.floor(position).astype(np.int32)
        window_slice.append((int(first[0]), int(first[-1]) + size_c + 1))
        firsts.append(jnp.asarray(first - first[0]))
        weights.append(position - first)
    gt_crop = _crop(ground_truth, crop)
    dtype = jnp.result_type(estimate.dtype, ground_truth.dtype)
    aligned, best = _least_ssd_alignment(
        _as_hwc(estimate).astype(dtype),
        _as_hwc(gt_crop).astype(dtype),
        firsts[0],
        jnp.asarray(weights[0], dtype),
        firsts[1],
        jnp.asarray(weights[1], dtype),
        window_slice=tuple(window_slice),
    )
    shift = jnp.asarray(shifts, dtype)[jnp.stack([best // shifts.size, best % shifts.size])]
    return aligned.reshape(gt_crop.shape), shift


def aligned_psnr_ssim(
    estimate,
    ground_truth,
    *,
    max_shift: float = 5.0,
    step: float = 0.25,
    crop: int = 15,
    data_range: float = 1.0,
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """PSNR and SSIM after Levin's shift alignment (as in SelfDeblur's evaluation).

    See `align` for the crop and the shift search; PSNR (`psnr`) and SSIM
    (`ssim`, with its downsampling rule) are then taken between the aligned
    estimate and the cropped ground truth. Numbers published at peak 255 on
    0..255 images equal these on [0, 1] images with data_range=1.

    Args:
      estimate: the restored image (H, W) or (H, W, C).
      ground_truth: the sharp image, same shape.
      max_shift, step: the sub-pixel shift search of `align` (pixels).
      crop: pixels cropped from every border of the ground truth.
      data_range: the images' peak value.

    Returns:
      (psnr, ssim, aligned_estimate), the last (H - 2 crop, W - 2 crop[, C]).
    """
    aligned, _ = align(estimate, ground_truth, max_shift=max_shift, step=step, crop=crop)
    gt_crop = _crop(jnp.asarray(ground_truth), crop)
    return psnr(aligned, gt_crop, data_range=data_range), ssim(aligned, gt_crop, data_range=data_range), aligned


def isnr(estimate, blurred, ground_truth, *, data_range: float = 1.0) -> jnp.ndarray:
    """Improvement in SNR (dB), Kotera et al.: PSNR(estimate, gt) - PSNR(blurred, gt).

    No alignment and no crop: the three images must have the same shape.

    Args:
      estimate: the restored image.
      blurred: the blurred input.
      ground_truth: the sharp image.
      data_range: the images' peak value.

    Returns:
      a scalar in dB, positive when the estimate is closer to the ground
      truth than the blurred input is.
    """
    estimate, ground_truth = _as_pair(estimate, ground_truth, "estimate", "ground_truth")
    blurred, ground_truth = _as_pair(blurred, ground_truth, "blurred", "ground_truth")
    return psnr(estimate, ground_truth, data_range=data_range) - psnr(blurred, ground_truth, data_range=data_range)


def aligned_isnr(estimate, blurred, ground_truth, *, max_shift: float = 5.0, crop: int = 15,
                 data_range: float = 1.0) -> jnp.ndarray:
    """ISNR (dB) with both images aligned first: aligned PSNR(estimate) - aligned PSNR(blurred).

    A blind estimate is only defined up to a shift (the kernel can absorb
    it), so the unaligned `isnr` of a good estimate one pixel off is far below
    zero. Here the estimate and the blurred input are each aligned to the
    ground truth by Levin's shift search (`aligned_psnr_ssim` with
    `max_shift` px and `crop` px), the way SelfDeblur-style results are scored.
    """
    psnr_estimate, _, _ = aligned_psnr_ssim(estimate, ground_truth, max_shift=max_shift, crop=crop,
                                            data_range=data_range)
    psnr_blurred, _, _ = aligned_psnr_ssim(blurred, ground_truth, max_shift=max_shift, crop=crop,
                                           data_range=data_range)
    return psnr_estimate - psnr_blurred


def error_ratio(
    estimate,
    estimate_with_true_kernel,
    ground_truth,
    *,
    max_shift: float = 5.0,
    step: float = 0.25,
    crop: int = 15,
) -> jnp.ndarray:
    """Levin et al.'s error ratio: SSD(estimate) / SSD(deconvolution with the true kernel).

    ER = ||aligned estimate - gt||^2 / ||aligned estimate_with_true_kernel - gt||^2
    on the same crop of the ground truth, each estimate aligned on its own by
    `align` (Levin's evaluation code and eq. 3 of Yang, Wu & Sun use squared
    norms, i.e. SSDs). 1 when both estimates are equal; Levin et al. judge
    results with ER below about 3 visually plausible.

    Args:
      estimate: the blind estimate.
      estimate_with_true_kernel: the same non-blind step with the true kernel.
      ground_truth: the sharp image.
      max_shift, step: the shift search of `align` (pixels).
      crop: pixels cropped from every border of the ground truth.

    Returns:
      a scalar (+inf if the true-kernel estimate matches the ground truth exactly).
    """
    ground_truth = _as_image(ground_truth, "ground_truth")
    gt_crop = _crop(ground_truth, crop)
    options = dict(max_shift=max_shift, step=step, crop=crop)
    aligned, _ = align(estimate, ground_truth, **options)
    reference, _ = align(estimate_with_true_kernel, ground_truth, **options)
    return jnp.sum((aligned - gt_crop) ** 2) / jnp.sum((reference - gt_crop) ** 2)


def kernel_similarity(k1, k2) -> jnp.ndarray:
    """Hu & Yang's kernel similarity: max over shifts of the normalised cross-correlation.

    KS = max_g sum_t k1(t) k2(t + g) / (||k1|| ||k2||) over all integer shifts
    g at which the kernels overlap (a full, zero-padded cross-correlation), so
    kernels of different sizes compare directly. Symmetric in k1 and k2; 1 for
    a shifted copy (up to float32 rounding); below 1 otherwise.

    Args:
      k1, k2: (kh, kw) kernels, not all zero; sizes may differ.

    Returns:
      A scalar in [-1, 1] ([0, 1] for non-negative kernels).
    """
    k1 = _as_float_array(k1, "k1", (2,), "a (kh, kw) kernel")
    k2 = _as_float_array(k2, "k2", (2,), "a (kh, kw) kernel")
    return _kernel_similarity(k1, k2)


@jax.jit
def _kernel_similarity(k1: jnp.ndarray, k2: jnp.ndarray) -> jnp.ndarray:
    correlation = jax.scipy.signal.correlate(k1, k2, mode="full", method="direct", precision=jax.lax.Precision.HIGHEST)
    return jnp.max(correlation) / (jnp.linalg.norm(k1) * jnp.linalg.norm(k2))


__all__ = [
    "psnr",
    "psnr_per_image",
    "ssim",
    "ssim_downsample_factor",
    "align",
    "aligned_psnr_ssim",
    "isnr",
    "error_ratio",
    "kernel_similarity",
]
