"""UFPNet's kernel-code net and kernel field: chunking, sampled pixels, head ranges, the transposed conv.

One tiny code net and flow (5 x 5 kernels) on one (2, 12, 10, 1) batch are shared by the tests.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur.nets.flow import KernelFlow
from jaxdeblur.nets.kernel_code import KernelCodeNet, TransposedConv3x3, chunk_rows, kernel_field, kernels_at

KEY = jax.random.key(3)


@pytest.fixture(scope="module")
def parts():
    flow = KernelFlow(5, num_couplings=2, hidden=8, rngs=nnx.Rngs(0))
    flow.eval()
    net = KernelCodeNet(1, 5, widths=(4, 6), middle_width=8, middle_convs=2, rngs=nnx.Rngs(1))
    x = jax.random.uniform(jax.random.key(0), (2, 12, 10, 1))
    return net, flow, x


@pytest.fixture(scope="module")
def field_fn(parts):
    net, flow, x = parts
    graphdef, state = nnx.split((net, flow))

    def fn(key, rows_per_chunk=None, uncertainty=True):
        return kernel_field(*nnx.merge(graphdef, state), x, key, uncertainty=uncertainty,
                            rows_per_chunk=rows_per_chunk)

    return jax.jit(fn, static_argnums=(1, 2))


def test_chunked_field_equals_the_unchunked_one(field_fn):
    whole, sigma = field_fn(KEY, 12)  # one chunk
    for rows in (1, 4, 5):  # 5 rounds down to 4 (a divisor of 12)
        chunked, sigma_c = field_fn(KEY, rows)
        np.testing.assert_allclose(chunked, whole, atol=1e-6)
        np.testing.assert_array_equal(sigma_c, sigma)
    assert whole.shape == (2, 12, 10, 5, 5)
    assert chunk_rows(12, 5, 1) == 4 and chunk_rows(13, None, 2**30) == 1 and chunk_rows(12, None, 1) == 12
    with pytest.raises(ValueError, match="rows_per_chunk"):
        chunk_rows(12, 0, 1)


def test_heads_have_their_ranges_and_the_noise_follows_sigma(parts, field_fn):
    net, flow, x = parts
    mean, sigma = net(x)
    assert mean.shape == (2, 12, 10, 25) and sigma.shape == (2, 12, 10)
    assert float(sigma.min()) > 0.0 and float(sigma.max()) < 1.0
    np.testing.assert_allclose(mean.mean(-1), 0.0, atol=1e-5)  # standardised over the taps
    np.testing.assert_allclose(mean.std(-1, ddof=1), 1.0, atol=1e-3)
    field, _ = field_fn(KEY)
    assert float(field.min()) >= 0.0
    np.testing.assert_allclose(field.sum(axis=(-2, -1)), 1.0, atol=1e-5)
    # the noise moves the kernels; without the uncertainty branch (sigma = 0) the key does not matter
    other, _ = field_fn(jax.random.key(4))
    assert float(jnp.abs(other - field).max()) > 1e-4
    off, sigma_off = field_fn(KEY, None, False)
    off2, _ = field_fn(jax.random.key(4), None, False)
    np.testing.assert_array_equal(off, off2)
    np.testing.assert_array_equal(sigma_off, 0.0)
    # z = mean at sigma = 0: the flow decodes the standardised means themselves
    np.testing.assert_allclose(off, flow.decode(mean), atol=1e-5)


def test_kernels_at_sampled_pixels_equal_the_field_there(parts, field_fn):
    net, flow, x = parts
    field, sigma = field_fn(KEY)
    rows = jnp.array([[0, 5, 11], [3, 3, 7]])
    cols = jnp.array([[9, 2, 0], [4, 5, 6]])
    kernels, s = kernels_at(net, flow, x, rows, cols, KEY)
    images = jnp.arange(2)[:, None]
    np.testing.assert_allclose(kernels, field[images, rows, cols], atol=1e-5)
    np.testing.assert_allclose(s, sigma[images, rows, cols], atol=1e-6)
    with pytest.raises(ValueError, match="rows, cols"):
        kernels_at(net, flow, x, rows[:, :2], cols, KEY)


def test_transposed_conv_reaches_odd_and_even_sizes():
    up = TransposedConv3x3(3, 2, rngs=nnx.Rngs(0))
    x = jnp.ones((1, 4, 5, 3))
    assert up(x, (7, 10)).shape == (1, 7, 10, 2) and up(x, (8, 9)).shape == (1, 8, 9, 2)
    with pytest.raises(ValueError, match="does not fit"):
        up(x, (10, 10))


def test_mismatched_kernel_sizes_are_refused(parts):
    net, _, x = parts
    with pytest.raises(ValueError, match="kernel_size"):
        kernel_field(net, KernelFlow(3, num_couplings=1, hidden=4, rngs=nnx.Rngs(0)), x)
