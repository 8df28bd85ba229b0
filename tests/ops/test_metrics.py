"""Tests of jaxdeblur.metrics against skimage, scipy and hand-computed values."""

import math

import jax
import numpy as np
import pytest
from scipy import ndimage
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxdeblur import metrics
from jaxdeblur.color import rgb_to_y


def _skimage_ssim(a, b, **kwargs):
    """skimage's SSIM with Wang et al.'s settings (no downsampling)."""
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, **kwargs
    )


@pytest.fixture(scope="module")
def camera():
    return data.camera().astype(np.float64) / 255.0  # (512, 512)


def _degrade(x, seed, sigma=1.0):
    rng = np.random.default_rng(seed)
    return np.clip(ndimage.gaussian_filter(x, sigma) + 0.03 * rng.standard_normal(x.shape), 0.0, 1.0)


# --- PSNR -------------------------------------------------------------------


def test_psnr_matches_skimage_and_hand_value(camera):
    a = camera[:64, :80].astype(np.float32)
    b = _degrade(a, 0).astype(np.float32)
    assert float(metrics.psnr(a, b)) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-4)
    assert float(metrics.psnr(255 * a, 255 * b, data_range=255.0)) == pytest.approx(
        peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-4
    )
    # MSE 0.01 at peak 1 is exactly 20 dB; identical images give +inf.
    assert float(metrics.psnr(np.zeros((4, 5)), np.full((4, 5), 0.1))) == pytest.approx(20.0, abs=1e-5)
    assert math.isinf(float(metrics.psnr(a, a)))


# --- SSIM -------------------------------------------------------------------


def test_ssim_matches_skimage_without_downsampling(camera):
    a = camera[100:356, 100:356]  # 256 px: f = 1
    b = _degrade(a, 1)
    ours = float(metrics.ssim(a.astype(np.float32), b.astype(np.float32)))
    assert ours == pytest.approx(_skimage_ssim(a, b), abs=1e-6)
    # Colour: the mean over channels of the per-channel SSIM.
    rgb_a = data.astronaut()[200:300, 150:240].astype(np.float64) / 255.0
    rgb_b = _degrade(rgb_a, 2, sigma=(1.0, 1.0, 0.0))
    ours_rgb = float(metrics.ssim(rgb_a.astype(np.float32), rgb_b.astype(np.float32)))
    assert ours_rgb == pytest.approx(_skimage_ssim(rgb_a, rgb_b, channel_axis=-1), abs=1e-6)


def test_ssim_map_matches_skimage_interior(camera):
    """The 'valid' SSIM map equals skimage's full map without its 5-px border."""
    a = camera[200:264, 300:380]
    b = _degrade(a, 3)
    _, full = _skimage_ssim(a, b, full=True)
    interior = full[5:-5, 5:-5]
    with jax.enable_x64(True):
        ours64 = np.asarray(metrics.ssim(a, b, return_map=True))
    assert ours64.shape == interior.shape == (54, 70)
    np.testing.assert_allclose(ours64, interior, atol=1e-12)
    # float32: the E[x^2] - E[x]^2 cancellation costs up to ~1e-3 on flat pixels.
    ours32 = np.asarray(metrics.ssim(a.astype(np.float32), b.astype(np.float32), return_map=True))
    np.testing.assert_allclose(ours32, interior, atol=2e-3)


def test_ssim_hand_values():
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(20, 24)).astype(np.float32)
    assert float(metrics.ssim(x, x)) == pytest.approx(1.0, abs=1e-6)
    # Constant images: (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1), the contrast term is C2 / C2.
    expected = (2 * 0.2 * 0.4 + 1e-4) / (0.2**2 + 0.4**2 + 1e-4)
    constant_a, constant_b = np.full((16, 16), 0.2), np.full((16, 16), 0.4)
    with jax.enable_x64(True):
        assert float(metrics.ssim(constant_a, constant_b)) == pytest.approx(expected, rel=1e-12)
    # float32: the variances come out as +-1e-8 instead of 0 (C2 is 9e-4).
    assert float(metrics.ssim(constant_a, constant_b)) == pytest.approx(expected, rel=1e-4)
    assert float(metrics.ssim(255 * x, 255 * x[::-1], data_range=255.0)) == pytest.approx(
        float(metrics.ssim(x, x[::-1])), abs=1e-6
    )


@pytest.mark.parametrize(
    ("size", "factor"), [(100, 1), (383, 1), (384, 2), (639, 2), (640, 3), (767, 3), (896, 4), (1152, 5)]
)
def test_ssim_downsample_factor_rounds_half_up(size, factor):
    """MATLAB's round(): 1.5 -> 2 and 2.5 -> 3 (Python's round gives 2 for 2.5)."""
    assert metrics.ssim_downsample_factor(size, size + 50) == factor
    assert metrics.ssim_downsample_factor(size + 50, size) == factor


def test_ssim_downsampling_by_two_matches_skimage_on_block_means(camera):
    a, b = camera, _degrade(camera, 5, sigma=1.5)  # 512 x 512: f = 2, exact 2x2 block means

    def block_mean(x):
        return x.reshape(256, 2, 256, 2).mean(axis=(1, 3))

    ours = float(metrics.ssim(a.astype(np.float32), b.astype(np.float32)))
    assert ours == pytest.approx(_skimage_ssim(block_mean(a), block_mean(b)), abs=1e-6)


@pytest.mark.parametrize(("shape", "factor"), [((427, 500), 2), ((640, 650), 3)])
def test_ssim_downsampling_matches_imfilter_then_subsample(shape, factor):
    """imfilter(x, ones(f)/f^2, 'symmetric') anchors the window at floor((f+1)/2):
    for f = 2 it covers pixels i..i+1 (scipy origin -1), for f = 3 pixels
    i-1..i+1; 'symmetric' padding is scipy's 'reflect'. Odd 427 rows exercise
    the padded last row."""
    rng = np.random.default_rng(6)
    a = ndimage.gaussian_filter(rng.uniform(size=shape), 2.0)
    a = (a - a.min()) / (a.max() - a.min())
    b = _degrade(a, 7)
    origin = -1 if factor == 2 else 0

    def imfilter_subsample(x):
        return ndimage.uniform_filter(x, size=factor, mode="reflect", origin=origin)[::factor, ::factor]

    ours = float(metrics.ssim(a.astype(np.float32), b.astype(np.float32)))
    assert ours == pytest.approx(_skimage_ssim(imfilter_subsample(a), imfilter_subsample(b)), abs=1e-6)


def test_metrics_are_jittable(camera):
    a = camera[:32, :40].astype(np.float32)
    b = _degrade(a, 8).astype(np.float32)
    assert float(jax.jit(metrics.ssim)(a, b)) == pytest.approx(float(metrics.ssim(a, b)), abs=1e-6)
    assert float(jax.jit(metrics.psnr)(a, b)) == pytest.approx(float(metrics.psnr(a, b)), abs=1e-5)
    assert float(jax.jit(metrics.isnr)(b, 0.9 * a, a)) == pytest.approx(float(metrics.isnr(b, 0.9 * a, a)), abs=1e-5)
    assert float(jax.jit(metrics.kernel_similarity)(a[:5, :5], a[:5, :5])) == pytest.approx(1.0, abs=1e-6)


# --- Levin's shift-aligned metrics ---------------------------------------------


def _brute_force_alignment(estimate, ground_truth, max_shift, step, crop):
    """Levin's comp_upto_shift loop: interp2-style bilinear sampling per shift."""
    shifts = np.arange(-max_shift, max_shift + step / 2, step)
    height, width = ground_truth.shape[0] - 2 * crop, ground_truth.shape[1] - 2 * crop
    target = ground_truth[crop:-crop, crop:-crop]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    best = None
    for dy in shifts:
        for dx in shifts:
            channels = [
                ndimage.map_coordinates(estimate[..., c], [yy + crop + dy, xx + crop + dx], order=1)
                for c in range(estimate.shape[-1])
            ]
            sampled = np.stack(channels, -1)
            ssd = np.sum((sampled - target) ** 2)
            if best is None or ssd < best[0]:
                best = (ssd, (dy, dx), sampled)
    return best[1], best[2]


@pytest.mark.parametrize("shift", [(0.75, -1.25), (-1.5, 0.5)])
def test_align_matches_brute_force_search(camera, shift):
    ground_truth = np.stack([camera[100:148:2, 60:112:2], camera[300:348:2, 200:252:2]], -1)  # (24, 26, 2)
    estimate = ndimage.shift(ground_truth, (*shift, 0), order=3, mode="nearest")
    estimate = estimate + 0.01 * np.random.default_rng(10).standard_normal(estimate.shape)
    expected_shift, expected = _brute_force_alignment(estimate, ground_truth, max_shift=2, step=0.25, crop=3)
    aligned, found = metrics.align(estimate, ground_truth, max_shift=2, step=0.25, crop=3)
    np.testing.assert_array_equal(np.asarray(found), expected_shift)
    np.testing.assert_allclose(np.asarray(aligned), expected, atol=1e-6)


def _subsampled_pair(camera, shift):
    """Ground truth and an estimate sampled from one smooth image, the estimate
    displaced by `shift` (multiples of 0.25 px): estimate(y, x) = gt(y - dy, x - dx)
    exactly, at 4x finer sampling of the smooth image."""
    smooth = ndimage.gaussian_filter(camera, 2.0)
    dy, dx = (round(4 * s) for s in shift)
    ground_truth = smooth[40 : 40 + 4 * 96 : 4, 40 : 40 + 4 * 96 : 4]
    estimate = smooth[40 - dy : 40 - dy + 4 * 96 : 4, 40 - dx : 40 - dx + 4 * 96 : 4]
    return estimate.astype(np.float32), ground_truth.astype(np.float32)


def test_aligned_psnr_ssim_recovers_subpixel_shift(camera):
    estimate, ground_truth = _subsampled_pair(camera, (1.25, -2.5))
    aligned, shift = metrics.align(estimate, ground_truth, max_shift=3, crop=10)
    np.testing.assert_array_equal(np.asarray(shift), [1.25, -2.5])
    value_psnr, value_ssim, aligned_too = metrics.aligned_psnr_ssim(estimate, ground_truth, max_shift=3, crop=10)
    np.testing.assert_array_equal(np.asarray(aligned_too), np.asarray(aligned))
    target = ground_truth[10:-10, 10:-10]
    assert aligned.shape == target.shape == (76, 76)
    assert float(value_psnr) == pytest.approx(float(metrics.psnr(aligned, target)), abs=1e-5)
    assert float(value_ssim) == pytest.approx(float(metrics.ssim(aligned, target)), abs=1e-6)
    assert float(value_psnr) > 33.0 and float(value_ssim) > 0.97
    assert float(value_psnr) > float(metrics.psnr(estimate, ground_truth)) + 10.0
    assert float(value_psnr) > float(metrics.psnr(estimate[10:-10, 10:-10], target)) + 10.0


def test_align_integer_shift_and_larger_estimate_are_exact(camera):
    ground_truth = camera[::8, ::8][:40, :44].astype(np.float32)
    # A same-size estimate displaced by whole pixels aligns exactly.
    rolled = np.roll(ground_truth, (2, -3), axis=(0, 1))
    aligned, shift = metrics.align(rolled, ground_truth, max_shift=4, crop=5)
    np.testing.assert_array_equal(np.asarray(shift), [2.0, -3.0])
    np.testing.assert_array_equal(np.asarray(aligned), ground_truth[5:-5, 5:-5])
    # A larger estimate is centred (its odd extra row and column after).
    larger = np.pad(ground_truth, ((2, 3), (1, 1)), mode="reflect")
    aligned, shift = metrics.align(larger, ground_truth, max_shift=2, crop=3)
    np.testing.assert_array_equal(np.asarray(shift), [0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(aligned), ground_truth[3:-3, 3:-3])


def test_lai_style_evaluation_on_the_y_channel(camera):
    """Lai et al.: callers convert both images with color.rgb_to_y, then measure."""
    ground_truth = np.stack([camera[::8, ::8][:40, :44], camera[4::8, ::8][:40, :44], camera[::8, 4::8][:40, :44]], -1)
    estimate = np.roll(ground_truth, (-1, 3), axis=(0, 1))
    value_psnr, value_ssim, aligned = metrics.aligned_psnr_ssim(
        rgb_to_y(estimate), rgb_to_y(ground_truth), max_shift=4, crop=5
    )
    assert aligned.shape == (30, 34)
    assert math.isinf(float(value_psnr)) and float(value_ssim) == pytest.approx(1.0, abs=1e-5)


def test_error_ratio_is_a_ratio_of_ssds(camera):
    ground_truth = camera[::8, ::8][:40, :40].astype(np.float32)
    noise = 0.05 * np.random.default_rng(11).standard_normal(ground_truth.shape).astype(np.float32)
    estimate = ground_truth + noise
    assert float(metrics.error_ratio(estimate, estimate, ground_truth, max_shift=1, crop=4)) == pytest.approx(1.0)
    # Twice the error at the same shift (max_shift 0): 4x the SSD.
    ratio = metrics.error_ratio(ground_truth + 2 * noise, estimate, ground_truth, max_shift=0, crop=4)
    assert float(ratio) == pytest.approx(4.0, rel=1e-5)


def test_isnr_is_the_psnr_gain(camera):
    ground_truth = camera[:40, :48].astype(np.float32)
    blurred = ndimage.gaussian_filter(ground_truth, 2.0)
    estimate = ndimage.gaussian_filter(ground_truth, 0.7)
    gain = float(metrics.isnr(estimate, blurred, ground_truth))
    expected = peak_signal_noise_ratio(ground_truth, estimate, data_range=1.0) - peak_signal_noise_ratio(
        ground_truth, blurred, data_range=1.0
    )
    assert gain > 0 and gain == pytest.approx(expected, abs=1e-4)
    assert float(metrics.isnr(blurred, estimate, ground_truth)) == pytest.approx(-gain, abs=1e-5)


def test_aligned_isnr_forgives_the_shift_a_blind_estimate_is_only_known_up_to(camera):
    ground_truth = camera[:64, :64].astype(np.float32)
    blurred = ndimage.gaussian_filter(ground_truth, 2.0)
    shifted_estimate = np.roll(ground_truth, (2, -1), axis=(0, 1))  # perfect, but 2 and 1 px off
    assert float(metrics.isnr(shifted_estimate, blurred, ground_truth)) < 0
    gain = float(metrics.aligned_isnr(shifted_estimate, blurred, ground_truth, crop=8))
    psnr_blurred, _, _ = metrics.aligned_psnr_ssim(blurred, ground_truth, crop=8)
    assert gain > 30
    assert gain == pytest.approx(float(metrics.aligned_psnr_ssim(shifted_estimate, ground_truth, crop=8)[0])
                                 - float(psnr_blurred), abs=1e-4)


# --- Kernel similarity -----------------------------------------------------------


def test_kernel_similarity_properties():
    rng = np.random.default_rng(12)
    k = rng.uniform(size=(7, 5)).astype(np.float32)
    k /= k.sum()
    shifted_copy = np.zeros((13, 11), np.float32)
    shifted_copy[4:11, 1:6] = k
    assert float(metrics.kernel_similarity(k, shifted_copy)) == pytest.approx(1.0, abs=1e-6)
    other = rng.uniform(size=(9, 9)).astype(np.float32)
    forward, backward = metrics.kernel_similarity(k, other), metrics.kernel_similarity(other, k)
    assert float(forward) < 0.99
    assert float(forward) == pytest.approx(float(backward), abs=1e-7)
    # A delta against a 2x2 box: best overlap 1/4, norms 1 and 1/2.
    delta, box = np.ones((1, 1)), np.full((2, 2), 0.25)
    assert float(metrics.kernel_similarity(delta, box)) == pytest.approx(0.5, abs=1e-7)


# --- Input checks ------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    x = np.zeros((32, 32), np.float32)
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(x, np.zeros((32, 31)))
    with pytest.raises(ValueError, match="b contains NaN"):
        metrics.ssim(x, np.full((32, 32), np.nan))
    with pytest.raises(ValueError, match=r"a must be an \(H, W\)"):
        metrics.ssim(np.zeros((1, 32, 32, 1)), np.zeros((1, 32, 32, 1)))
    with pytest.raises(ValueError, match="too small for SSIM"):
        metrics.ssim(np.zeros((10, 32)), np.zeros((10, 32)))
    with pytest.raises(ValueError, match="blurred contains NaN"):
        metrics.isnr(x, np.full((32, 32), np.inf), x)
    with pytest.raises(ValueError, match="ground_truth contains NaN"):
        metrics.align(x, np.where(np.eye(32) > 0, np.nan, 0.0))
    with pytest.raises(ValueError, match="must not be smaller"):
        metrics.align(x[:30], x)
    with pytest.raises(ValueError, match="max_shift=5 reaches outside"):
        metrics.align(x, x, max_shift=5, crop=4)
    with pytest.raises(ValueError, match="same ndim and channels"):
        metrics.align(np.zeros((32, 32, 3)), x)
    with pytest.raises(ValueError, match=r"k2 must be a \(kh, kw\) kernel"):
        metrics.kernel_similarity(np.ones((3, 3)), np.ones((3, 3, 1)))

