"""NAFNet's layers: values against their plain formulas, the written backward passes against autodiff (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdeblur.nets.nafnet_ops import depthwise3x3, layer_norm_channels, pixel_shuffle, pointwise_conv, simple_gate


def _vjps(fn, plain, args, g):
    """(fn's value, its vjp of g) and (plain's value, its vjp of g): autodiff of `plain` is the reference."""
    out, vjp = jax.vjp(fn, *args)
    want, want_vjp = jax.vjp(plain, *args)
    return (out, vjp(g)), (want, want_vjp(g))


def test_simple_gate_and_pixel_shuffle():
    np.testing.assert_allclose(simple_gate(jnp.arange(4.0)[None]), [[0.0, 3.0]])
    # PyTorch's PixelShuffle: out[c, h*r + i, w*r + j] = in[c*r*r + i*r + j, h, w]
    c, r = 2, 2
    inp = jnp.arange(1 * 2 * 3 * c * r * r, dtype=jnp.float32).reshape(1, 2, 3, c * r * r)
    out = pixel_shuffle(inp, r)
    assert out.shape == (1, 4, 6, c)
    for ch in range(c):
        for i in range(r):
            for j in range(r):
                np.testing.assert_array_equal(out[0, i::r, j::r, ch], inp[0, :, :, ch * r * r + i * r + j])


def test_depthwise_matches_a_grouped_convolution():
    """The CPU path (nine taps, written backward pass with the per-image sums) against the grouped convolution
    and its autodiff, for the input, kernel and bias."""
    with jax.enable_x64():
        rng = np.random.default_rng(3)
        x = jnp.asarray(rng.normal(size=(3, 7, 9, 5)))
        k, b = jnp.asarray(rng.normal(size=(3, 3, 1, 5))), jnp.asarray(rng.normal(size=5))
        g = jnp.asarray(rng.normal(size=x.shape))
        (out, grads), (want, want_grads) = _vjps(lambda *a: depthwise3x3(*a, platform="cpu"),
                                                 lambda *a: depthwise3x3(*a, platform="gpu"), (x, k, b), g)
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
        for got, ref in zip(grads, want_grads):
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_layer_norm_backward_matches_autodiff():
    """The written backward pass of the channel LayerNorm against autodiff of its formula (float64)."""
    def plain(x, scale, bias):
        mu = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1e-6) * scale + bias

    with jax.enable_x64():
        rng = np.random.default_rng(6)
        x, g = (jnp.asarray(rng.normal(size=(2, 3, 4, 6)) * 3 + 1) for _ in range(2))
        scale, bias = jnp.asarray(rng.normal(size=6)), jnp.asarray(rng.normal(size=6))
        (out, grads), (want, want_grads) = _vjps(lambda *a: layer_norm_channels(*a, 1e-6), plain, (x, scale, bias), g)
        np.testing.assert_allclose(out, want, rtol=1e-12)
        for got, ref in zip(grads, want_grads):
            np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("scaled", [True, False])
def test_pointwise_conv_backward_matches_autodiff(scaled):
    """(x @ kernel + bias) * scale with its written backward pass against autodiff of the formula (float64)."""
    with jax.enable_x64():
        rng = np.random.default_rng(7)
        x, g = jnp.asarray(rng.normal(size=(2, 3, 4, 5))), jnp.asarray(rng.normal(size=(2, 3, 4, 6)))
        kernel, bias, scale = (jnp.asarray(rng.normal(size=s)) for s in ((5, 6), (6,), (6,)))
        if scaled:
            args, fn = (x, kernel, bias, scale), pointwise_conv

            def plain(x, kernel, bias, scale):
                return (jnp.einsum("nhwc,cd->nhwd", x, kernel) + bias) * scale
        else:
            args = (x, kernel, bias)

            def fn(x, kernel, bias):
                return pointwise_conv(x, kernel, bias, None)

            def plain(x, kernel, bias):
                return jnp.einsum("nhwc,cd->nhwd", x, kernel) + bias
        (out, grads), (want, want_grads) = _vjps(fn, plain, args, g)
        np.testing.assert_allclose(out, want, rtol=1e-12)
        assert len(grads) == len(args)
        for got, ref in zip(grads, want_grads):
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
