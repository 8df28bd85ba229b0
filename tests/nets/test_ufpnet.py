"""UFPNet's networks: the kernel-conditioned NAFNet at odd sizes, its kernel branch, the whole UFPNet."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur.nets.flow import KernelFlow
from jaxdeblur.nets.ufpnet import KernelConditionedNAFNet, UFPNet, restore


@pytest.fixture(scope="module")
def conditioned():
    return KernelConditionedNAFNet(1, 4, (1, 1, 1), 1, (1, 1, 1), taps=9, conditioned_levels=2, rngs=nnx.Rngs(0))


def test_conditioned_nafnet_runs_at_odd_sizes_and_its_kernel_branch_starts_silent(conditioned):
    x = jax.random.uniform(jax.random.key(0), (2, 13, 19, 1))
    k1 = jax.random.uniform(jax.random.key(1), (2, 13, 19, 9))
    k2 = jax.random.uniform(jax.random.key(2), (2, 13, 19, 9))
    run = nnx.jit(lambda m, x, k: m(x, k))
    y = run(conditioned, x, k1)
    assert y.shape == x.shape and bool(jnp.all(jnp.isfinite(y)))
    # beta = 0 at init: the attention feeds only the (silent) branch, so the map does not matter yet
    np.testing.assert_array_equal(run(conditioned, x, 10.0 * k2), y)
    for block in (conditioned.encoders[0][0], conditioned.encoders[1][0]):
        block.beta[...] = jnp.full_like(block.beta[...], 1.0)
    assert float(jnp.abs(run(conditioned, x, 10.0 * k2) - run(conditioned, x, k1)).max()) > 1e-5
    assert len(conditioned.kernel_attention) == 2 and len(conditioned.kernel_downs) == 1
    with pytest.raises(ValueError, match="kernel_map"):
        conditioned(x, k1[..., :4])


def test_conditioned_levels_need_blocks():
    with pytest.raises(ValueError, match="conditioned_levels"):
        KernelConditionedNAFNet(1, 4, (1, 0), 1, (1, 1), taps=9, conditioned_levels=2, rngs=nnx.Rngs(0))


def test_ufpnet_returns_the_restoration_kernels_and_sigma_at_odd_sizes():
    flow = KernelFlow(3, num_couplings=1, hidden=4, rngs=nnx.Rngs(0))
    model = UFPNet(flow, channels=1, width=4, enc_blocks=(1, 1), dec_blocks=(1, 1), conditioned_levels=2,
                   code_widths=(4, 4), code_middle_width=4, code_middle_convs=1, rngs=nnx.Rngs(1))
    run = nnx.jit(lambda m, x, key: restore(m, x, key))
    gray = jax.random.uniform(jax.random.key(0), (1, 11, 14, 1))
    out = run(model, gray, jax.random.key(1))
    assert out.restored.shape == gray.shape and out.kernels.shape == (1, 11, 14, 3, 3) and out.sigma.shape == (1, 11, 14)
    assert float(out.restored.min()) >= 0 and float(out.restored.max()) <= 1
    np.testing.assert_allclose(out.kernels.sum(axis=(-2, -1)), 1.0, atol=1e-5)
    # a gray model restores colour channel by channel with the kernels of the channels' mean
    rgb = jnp.concatenate([gray, gray ** 2, 1 - gray], axis=-1)
    colour = run(model, rgb, jax.random.key(1))
    assert colour.restored.shape == rgb.shape
    padded = jnp.pad(rgb, ((0, 0), (0, 1), (0, 2), (0, 0)), mode="reflect")
    kernels, _ = model.estimate_kernels(padded.mean(-1, keepdims=True), jax.random.key(1))
    green = jnp.clip(model.restore_with(padded[..., 1:2], kernels), 0, 1)[:, :11, :14]
    np.testing.assert_allclose(colour.restored[..., 1:2], green, atol=1e-5)
    np.testing.assert_allclose(colour.kernels, kernels[:, :11, :14], atol=1e-6)
