"""Non-blind deconvolution: recovers a known image, matches its closed form, checks its arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data

from jaxdeblur import deconv, kernels
from jaxdeblur.forward import blur
from jaxdeblur.metrics import psnr


@pytest.fixture(scope="module")
def problem():
    sharp = jnp.asarray(data.camera()[200:264, 200:264], jnp.float32) / 255.0
    k = kernels.motion(jax.random.key(1), 9)
    return sharp, k, blur(sharp, k, "circular")


def test_wiener_inverts_a_noiseless_circular_blur(problem):
    sharp, k, blurred = problem
    restored = deconv.wiener(blurred, k, nsr=1e-6, taper=False)
    assert float(psnr(restored, sharp)) > float(psnr(blurred, sharp)) + 10


def test_hyper_laplacian_beats_the_blurred_input_with_noise(problem):
    sharp, k, blurred = problem
    noisy = blurred + 0.01 * jax.random.normal(jax.random.key(0), blurred.shape)
    restored = deconv.hyper_laplacian(noisy, k, taper=False)
    assert restored.shape == sharp.shape and float(restored.min()) >= 0 and float(restored.max()) <= 1
    assert float(psnr(restored, sharp)) > float(psnr(noisy, sharp)) + 3


def test_valid_blur_with_taper_and_colour(problem):
    sharp, k, _ = problem
    rgb = jnp.stack([sharp, 0.5 * sharp, 1 - sharp], -1)
    y = blur(rgb, k, "valid")
    restored = deconv.hyper_laplacian(y, k)
    inner = rgb[4:-4, 4:-4]
    assert restored.shape == y.shape
    assert float(psnr(restored[8:-8, 8:-8], inner[8:-8, 8:-8])) > float(psnr(y[8:-8, 8:-8], inner[8:-8, 8:-8])) + 3


def test_shrink_lp_minimises_its_energy():
    v = jnp.linspace(-2, 2, 41)
    beta, alpha = 4.0, 2 / 3
    w = deconv.shrink_lp(v, beta, alpha)
    grid = jnp.linspace(-2.5, 2.5, 20001)[:, None]
    energy = jnp.abs(grid) ** alpha + beta / 2 * (grid - v[None]) ** 2
    best = energy.min(axis=0)
    assert bool(jnp.all(jnp.abs(w) ** alpha + beta / 2 * (w - v) ** 2 <= best + 1e-4))


def test_argument_checks_fire_outside_and_inside_jit(problem):
    sharp, k, blurred = problem
    with pytest.raises(ValueError, match="nsr must be positive"):
        deconv.wiener(blurred, k, nsr=0.0)
    with pytest.raises(ValueError, match="lam must be positive"):
        deconv.hyper_laplacian(blurred, k, lam=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        deconv.hyper_laplacian(blurred, k, alpha=1.5)
    with pytest.raises(ValueError, match="larger than the image"):
        deconv.wiener(blurred[:5, :5], k)
    with pytest.raises(ValueError, match="NaN"):
        deconv.hyper_laplacian(blurred.at[3, 3].set(jnp.nan), k)
    with pytest.raises(ValueError, match="kh, kw"):
        deconv.wiener(blurred, k[None])
    with pytest.raises(ValueError, match="beta_min"):
        deconv.beta_schedule(2.0, 1.0)
    # traced weights are fine (the value checks need concrete numbers)
    out = jax.jit(lambda lam: deconv.hyper_laplacian(blurred, k, lam=lam, taper=False))(2e3)
    np.testing.assert_allclose(out, deconv.hyper_laplacian(blurred, k, taper=False), atol=1e-5)
