"""Observation noise: statistics, determinism by key, clipping, quantisation, checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdeblur.noise import QUANTISATION_SIGMA, add_gaussian_noise, estimate_sigma


def test_statistics_and_determinism():
    x = jnp.full((128, 128), 0.5)
    y = add_gaussian_noise(jax.random.key(0), x, 0.05)
    assert y.dtype == jnp.float32 and y.shape == x.shape
    assert float(jnp.std(y - x)) == pytest.approx(0.05, rel=0.05)
    assert abs(float(jnp.mean(y - x))) < 0.005
    np.testing.assert_array_equal(y, add_gaussian_noise(jax.random.key(0), x, 0.05))
    assert not np.array_equal(y, add_gaussian_noise(jax.random.key(1), x, 0.05))


def test_clip_quantize_and_per_image_sigma():
    x = jnp.stack([jnp.full((16, 16, 1), 0.99), jnp.full((16, 16, 1), 0.01)])
    y = add_gaussian_noise(jax.random.key(3), x, jnp.array([0.2, 0.0]).reshape(2, 1, 1, 1), quantize=True)
    assert float(y.max()) <= 1.0 and float(y.min()) >= 0.0
    np.testing.assert_allclose(np.asarray(y) * 255, np.round(np.asarray(y) * 255), atol=1e-4)
    np.testing.assert_allclose(y[1], np.round(0.01 * 255) / 255, atol=1e-6)  # sigma 0: only quantised
    unclipped = add_gaussian_noise(jax.random.key(3), x, 0.2, clip=False)
    assert float(unclipped.max()) > 1.0


def test_jit_and_checks():
    x = jnp.zeros((8, 8))
    f = jax.jit(add_gaussian_noise)
    np.testing.assert_allclose(f(jax.random.key(0), x, 0.1), add_gaussian_noise(jax.random.key(0), x, 0.1), atol=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        add_gaussian_noise(jax.random.key(0), x, -0.1)
    with pytest.raises(TypeError, match="floating"):
        add_gaussian_noise(jax.random.key(0), jnp.zeros((8, 8), jnp.int32), 0.1)
    with pytest.raises(ValueError, match="broadcast"):
        add_gaussian_noise(jax.random.key(0), x, jnp.ones((3,)))


def test_estimate_sigma_measures_white_noise_and_is_floored_at_8_bit_rounding():
    rng = np.random.default_rng(0)
    assert abs(estimate_sigma(0.5 + 0.02 * rng.standard_normal((128, 128))) / 0.02 - 1) < 0.05
    assert estimate_sigma(np.full((16, 16), 0.4)) == QUANTISATION_SIGMA
    with pytest.raises(ValueError, match="gray"):
        estimate_sigma(np.zeros((8, 8, 3)))
