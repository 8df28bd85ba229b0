"""The CPU ops of nets.fused (BatchNorm + LeakyReLU, reflection pad, upsampling): the plain ops' values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur.nets import torch_batch_norm
from jaxdeblur.nets.fused import batch_norm_act, reflect_pad, upsample2x_bilinear


@pytest.mark.parametrize("shape, pad", [((2, 6, 7, 3), 1), ((1, 9, 8, 2), 2), ((1, 4, 5, 2), 1)])
def test_reflect_pad_matches_jnp_pad(shape, pad):
    x = jax.random.normal(jax.random.key(0), shape)
    spec = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    np.testing.assert_array_equal(reflect_pad(x, pad), jnp.pad(x, spec, mode="reflect"))
    g = jax.random.normal(jax.random.key(1), (shape[0], shape[1] + 2 * pad, shape[2] + 2 * pad, shape[3]))
    ours = jax.grad(lambda x: jnp.sum(g * reflect_pad(x, pad)))(x)
    ref = jax.grad(lambda x: jnp.sum(g * jnp.pad(x, spec, mode="reflect")))(x)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


def _norm(seed):
    norm = torch_batch_norm(5, rngs=nnx.Rngs(seed))
    norm.scale[...] = jax.random.uniform(jax.random.key(seed + 10), (5,), minval=0.5, maxval=1.5)
    norm.bias[...] = jax.random.uniform(jax.random.key(seed + 11), (5,), minval=-0.3, maxval=0.3)
    return norm


@pytest.mark.parametrize("slope", [0.2, None])
def test_batch_norm_act_matches_nnx(slope):
    x = 3.0 * jax.random.normal(jax.random.key(2), (2, 7, 6, 5)) + 1.0
    g = jax.random.normal(jax.random.key(3), x.shape)
    plain = (lambda y: y) if slope is None else (lambda y: jax.nn.leaky_relu(y, slope))

    def run(fused, x, scale, bias):
        norm = _norm(0)
        norm.scale[...], norm.bias[...] = scale, bias
        y = batch_norm_act(norm, x, negative_slope=slope) if fused else plain(norm(x))
        return jnp.sum(g * y), (y, norm.mean[...], norm.var[...])

    start = _norm(0)
    args = (x, start.scale[...], start.bias[...])
    (_, (y, mean, var)), grads = jax.value_and_grad(lambda *a: run(True, *a), (0, 1, 2), has_aux=True)(*args)
    (_, (y0, mean0, var0)), grads0 = jax.value_and_grad(lambda *a: run(False, *a), (0, 1, 2), has_aux=True)(*args)
    np.testing.assert_allclose(y, y0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, mean0, rtol=1e-5, atol=1e-6)   # running statistics updated like nnx's
    np.testing.assert_allclose(var, var0, rtol=1e-5, atol=1e-6)
    for ours, ref in zip(grads, grads0):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_other_backends_take_the_plain_ops(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    x = jax.random.normal(jax.random.key(4), (1, 6, 6, 5))
    jaxpr = str(jax.make_jaxpr(
        lambda x: upsample2x_bilinear(reflect_pad(batch_norm_act(_norm(0), x, negative_slope=0.2), 1)))(x))
    assert "custom_vjp" not in jaxpr


@pytest.mark.parametrize("shape", [(1, 5, 4, 3), (2, 2, 3, 1)])
def test_upsample_matches_jax_image_resize(shape):
    x = jax.random.normal(jax.random.key(5), shape)
    n, h, w, c = shape
    ref_fn = lambda x: jax.image.resize(x, (n, 2 * h, 2 * w, c), method="bilinear")  # noqa: E731
    np.testing.assert_allclose(upsample2x_bilinear(x), ref_fn(x), rtol=1e-6, atol=1e-6)
    g = jax.random.normal(jax.random.key(6), (n, 2 * h, 2 * w, c))
    ours = jax.grad(lambda x: jnp.sum(g * upsample2x_bilinear(x)))(x)
    np.testing.assert_allclose(ours, jax.grad(lambda x: jnp.sum(g * ref_fn(x)))(x), rtol=1e-5, atol=1e-6)
