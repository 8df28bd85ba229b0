"""NAFNet: sizes, parameter counts of the paper's configurations, block identity at init, layers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur.nets.nafnet import LayerNorm2d, NAFBlock, NAFNet, pixel_shuffle, restore, simple_gate


def _param_count(module_fn) -> int:
    abstract = nnx.eval_shape(module_fn)
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(abstract, nnx.Param)))


@pytest.mark.parametrize("width, enc, expected_millions", [
    pytest.param(32, (1, 1, 1, 28), 17.1, marks=pytest.mark.slow),
    pytest.param(64, (1, 1, 1, 28), 67.9, marks=pytest.mark.slow),
    (16, (1, 1, 1, 1), 1.1),
])
def test_parameter_counts_match_the_reference(width, enc, expected_millions):
    count = _param_count(lambda: NAFNet(3, width, enc, 1, (1, 1, 1, 1), rngs=nnx.Rngs(0)))
    assert count / 1e6 == pytest.approx(expected_millions, abs=0.06)


@pytest.fixture(scope="module")
def tiny():
    return NAFNet(1, 4, (1, 1), 1, (1, 1), rngs=nnx.Rngs(0))


def test_any_size_and_residual_output(tiny):
    x = jax.random.uniform(jax.random.key(0), (2, 13, 18, 1))
    y = tiny(x)
    assert y.shape == x.shape and bool(jnp.all(jnp.isfinite(y)))
    # the image padded to a multiple of 4 and cropped back gives the same pixels as the padded input itself
    padded = jnp.pad(x, ((0, 0), (0, 3), (0, 2), (0, 0)))
    np.testing.assert_allclose(tiny(padded)[:, :13, :18], y, atol=1e-5)
    out = restore(tiny, 3.0 * x)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_blocks_start_as_identity_and_have_gradients():
    block = NAFBlock(6, rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(1), (1, 5, 7, 6))
    np.testing.assert_allclose(block(x), x, atol=1e-6)  # beta = gamma = 0

    def loss(b):
        return jnp.sum(b(x) ** 2)

    grads = nnx.grad(loss)(block)
    assert float(jnp.abs(grads.beta[...]).max()) > 0 and float(jnp.abs(grads.gamma[...]).max()) > 0


def test_layers():
    x = jax.random.normal(jax.random.key(2), (1, 3, 4, 8)) * 5 + 2
    normed = LayerNorm2d(8)(x)
    np.testing.assert_allclose(normed.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(normed.std(-1), 1, atol=1e-3)
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


def test_bad_configuration():
    with pytest.raises(ValueError, match="equal lengths"):
        NAFNet(1, 4, (1, 1), 1, (1,), rngs=nnx.Rngs(0))


def test_depthwise_matches_a_grouped_convolution():
    from jaxdeblur.nets.nafnet import depthwise3x3

    x = jax.random.normal(jax.random.key(3), (2, 7, 9, 5))
    k = jax.random.normal(jax.random.key(4), (3, 3, 1, 5))
    b = jnp.arange(5.0)
    ref = jax.lax.conv_general_dilated(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), k, (1, 1), "VALID",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=5) + b
    np.testing.assert_allclose(depthwise3x3(x, k, b, platform="cpu"), ref, atol=1e-5)
    # the CPU path's hand-written backward pass against autodiff of the grouped convolution
    g = jax.random.normal(jax.random.key(5), ref.shape)

    def vjp(fn):
        return jax.vjp(fn, x, k)[1](g)

    grouped = vjp(lambda x, k: depthwise3x3(x, k, b, platform="gpu"))
    for got, want in zip(vjp(lambda x, k: depthwise3x3(x, k, b, platform="cpu")), grouped):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_layer_norm_backward_matches_autodiff():
    """The written backward pass of the channel LayerNorm against autodiff of its formula (float64)."""
    from jaxdeblur.nets.nafnet import layer_norm_channels

    def plain(x, scale, bias):
        mu = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1e-6) * scale + bias

    with jax.enable_x64():
        rng = np.random.default_rng(6)
        x, g = (jnp.asarray(rng.normal(size=(2, 3, 4, 6)) * 3 + 1) for _ in range(2))
        scale, bias = jnp.asarray(rng.normal(size=6)), jnp.asarray(rng.normal(size=6))
        out, vjp = jax.vjp(lambda *a: layer_norm_channels(*a, 1e-6), x, scale, bias)
        want_out, want_vjp = jax.vjp(plain, x, scale, bias)
        np.testing.assert_allclose(out, want_out, rtol=1e-12)
        for got, want in zip(vjp(g), want_vjp(g)):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
