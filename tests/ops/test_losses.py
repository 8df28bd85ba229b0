"""Training objectives: values on known inputs, gradients, shapes and input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from skimage import data

from jaxdeblur import losses, metrics


@pytest.fixture(scope="module")
def camera():
    return data.camera()[:24, :20].astype(np.float32) / 255.0


def _degrade(x, seed):
    rng = np.random.default_rng(seed)
    return np.clip(ndimage.gaussian_filter(x, 1.0) + 0.03 * rng.standard_normal(x.shape), 0.0, 1.0).astype(np.float32)


def test_differentiable_ssim_matches_ssim_and_has_gradients(camera):
    a = camera  # 24 x 20: f = 1, the same window as the evaluation SSIM
    b = _degrade(a, 9)
    assert float(losses.differentiable_ssim(a, b)) == pytest.approx(float(metrics.ssim(a, b)), abs=1e-5)
    batch_a = np.stack([np.stack([a, a], -1), np.stack([b, a], -1)])  # (2, 24, 20, 2)
    batch_b = np.stack([np.stack([b, a], -1)] * 2)
    values = losses.differentiable_ssim(batch_a, batch_b)
    assert values.shape == (2,) and float(values[1]) == pytest.approx(1.0, abs=1e-6)
    grad = jax.grad(lambda x: losses.ssim_loss(x[..., None], b[..., None]))(a)
    assert grad.shape == a.shape and bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).max()) > 0
    with pytest.raises(ValueError, match="same shape"):
        losses.differentiable_ssim(np.zeros((16, 16)), np.zeros((16, 17)))


def test_mse_and_kernel_l2():
    a = jnp.zeros((4, 5, 1))
    assert float(losses.mse(a, a + 0.5)) == pytest.approx(0.25)
    assert float(losses.kernel_l2(jnp.full((2, 2), 0.25))) == pytest.approx(0.25)
    assert float(losses.kernel_l2(jnp.eye(1))) == pytest.approx(1.0)  # a delta is the least spread


def test_total_variation_counts_edges():
    flat = jnp.full((8, 8, 1), 0.3)
    assert float(losses.total_variation(flat)) == pytest.approx(1e-4, abs=2e-5)  # sqrt(eps) only
    step = jnp.zeros((8, 8, 1)).at[:, 4:].set(1.0)  # one vertical edge: 8 of 64 pixels see a jump of 1
    assert float(losses.total_variation(step)) == pytest.approx(8 / 64, abs=1e-3)
    grad = jax.grad(losses.total_variation)(flat)
    assert bool(jnp.all(jnp.isfinite(grad)))
