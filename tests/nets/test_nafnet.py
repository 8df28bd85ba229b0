"""NAFNet: sizes, parameter counts of the paper's configurations, block identity at init, its LayerNorm module."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur.nets.nafnet import LayerNorm2d, NAFBlock, NAFNet, restore


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


def test_layer_norm_module():
    x = jax.random.normal(jax.random.key(2), (1, 3, 4, 8)) * 5 + 2
    normed = LayerNorm2d(8)(x)
    np.testing.assert_allclose(normed.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(normed.std(-1), 1, atol=1e-3)


def test_bad_configuration():
    with pytest.raises(ValueError, match="equal lengths"):
        NAFNet(1, 4, (1, 1), 1, (1,), rngs=nnx.Rngs(0))
