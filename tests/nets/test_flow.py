"""KernelFlow (RealNVP prior on kernels): exact log-determinants, invertibility, valid samples, input checks.

One tiny flow (5 x 5 kernels, 2 couplings of width 8) shared by the tests; its
batch-norm parameters and running statistics are set to random values so
that every layer acts non-trivially. Everything runs under `nnx.jit`: eager
dispatch would compile each of the many small ops separately.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur import kernels
from jaxdeblur.nets.flow import FlowBatchNorm, KernelFlow

SIZE = 5


@nnx.jit
def _randomise_batch_norms(flow: KernelFlow, key) -> None:
    for i, layer in enumerate(l for l in flow.layers if isinstance(l, FlowBatchNorm)):
        k = jax.random.split(jax.random.fold_in(key, i), 4)
        layer.log_gamma[...] = 0.3 * jax.random.normal(k[0], (flow.dim,))
        layer.beta[...] = 0.3 * jax.random.normal(k[1], (flow.dim,))
        layer.running_mean[...] = jax.random.normal(k[2], (flow.dim,))
        layer.running_var[...] = jax.random.uniform(k[3], (flow.dim,), minval=0.5, maxval=2.0)


@nnx.jit
def _log_prob(flow: KernelFlow, k, noise=None):
    return flow.log_prob(k, noise=noise)


@nnx.jit
def _jacobian_log_prob(flow: KernelFlow, k: jax.Array) -> jax.Array:
    """log N(z) + log |det dz/dk| of one kernel, the Jacobian of `encode` from autodiff (running statistics)."""
    encode_flat = lambda kf: flow.encode(kf.reshape(SIZE, SIZE))  # noqa: E731
    z = encode_flat(k.reshape(-1))
    _, log_det = jnp.linalg.slogdet(jax.jacfwd(encode_flat)(k.reshape(-1)))
    return -0.5 * jnp.sum(z**2 + jnp.log(2 * jnp.pi)) + log_det


@nnx.jit
def _round_trip(flow: KernelFlow, k):
    z = flow.encode(k)
    return z, flow.decode(z)


@functools.partial(nnx.jit, static_argnums=2)
def _sample(flow: KernelFlow, key, n: int):
    return flow.sample(key, n)


@pytest.fixture(scope="module")
def flow():
    f = nnx.jit(lambda: KernelFlow(SIZE, num_couplings=2, hidden=8, rngs=nnx.Rngs(0)))()
    _randomise_batch_norms(f, jax.random.key(1))
    f.eval()
    return f


@pytest.fixture(scope="module")
def motion():
    return jax.jit(jax.vmap(lambda k: kernels.motion(k, SIZE, num_points=16)))(jax.random.split(jax.random.key(2), 6))


def test_log_prob_matches_autodiff_jacobian_in_eval_mode(flow, motion):
    np.testing.assert_allclose(_log_prob(flow, motion[0]), _jacobian_log_prob(flow, motion[0]), rtol=1e-5, atol=1e-2)


def test_training_mode_log_det_is_exact_with_the_batch_statistics(flow, motion):
    """With momentum 0 a training-mode call leaves the batch statistics as the running ones: the evaluation-mode
    flow is then the training-mode map with those statistics held constant, whose log-det autodiff checks."""
    trained = nnx.clone(flow)
    trained.train()
    trained.set_attributes(momentum=0.0)
    before = [np.asarray(l.running_mean[...]) for l in trained.layers if isinstance(l, FlowBatchNorm)]
    train_lp = _log_prob(trained, motion)
    after = [np.asarray(l.running_mean[...]) for l in trained.layers if isinstance(l, FlowBatchNorm)]
    assert all(np.abs(a - b).max() > 1e-3 for a, b in zip(after, before))  # statistics were updated
    trained.eval()
    np.testing.assert_allclose(_log_prob(trained, motion), train_lp, rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(train_lp[0], _jacobian_log_prob(trained, motion[0]), rtol=1e-5, atol=1e-2)


def test_training_objective_differentiates_through_the_batch_statistics(flow, motion):
    trained = nnx.clone(flow)
    grads = nnx.jit(nnx.grad(lambda m: -jnp.mean(m.log_prob(motion, use_running_average=False))))(trained)
    assert float(jnp.abs(grads.layers[0].scale_net.layers[0].kernel[...]).max()) > 0
    assert float(jnp.abs(grads.layers[1].log_gamma[...]).max()) > 0


def test_decode_inverts_encode(flow, motion):
    # motion kernels, a delta and a box (taps at both ends of the pre-process)
    special = jnp.stack([kernels.pad_to(jnp.ones((1, 1)), SIZE), jnp.full((SIZE, SIZE), 1.0 / SIZE**2)])
    k = jnp.concatenate([motion, special])
    z, back = _round_trip(flow, k)
    assert z.shape == (8, SIZE * SIZE)
    np.testing.assert_allclose(back, k, atol=2e-5)


def test_samples_are_kernels_and_maps_batch_over_leading_axes(flow, motion):
    samples = _sample(flow, jax.random.key(3), 7)
    assert samples.shape == (7, SIZE, SIZE)
    assert float(samples.min()) >= 0.0
    np.testing.assert_allclose(samples.sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert float(jnp.abs(samples[0] - samples[1]).max()) > 1e-3  # not all the same kernel
    z, back = _round_trip(flow, motion.reshape(2, 3, SIZE, SIZE))
    assert z.shape == (2, 3, SIZE * SIZE) and back.shape == (2, 3, SIZE, SIZE)
    np.testing.assert_allclose(back, motion.reshape(2, 3, SIZE, SIZE), atol=2e-5)
    vmapped = jax.jit(jax.vmap(flow.log_prob))(motion[:, None])  # evaluation mode: a pure function of k
    np.testing.assert_allclose(vmapped[:, 0], _log_prob(flow, motion), rtol=1e-5)


def test_dequantisation_noise_moves_the_density(flow, motion):
    centre = _log_prob(flow, motion)
    np.testing.assert_allclose(_log_prob(flow, motion, jnp.full_like(motion, 0.5)), centre, rtol=1e-6)
    assert float(jnp.abs(_log_prob(flow, motion, jnp.zeros_like(motion)) - centre).max()) > 1e-3


def test_bad_inputs_raise_clear_errors(flow, motion):
    with pytest.raises(ValueError, match=r"k must have shape \(\.\.\., 5, 5\)"):
        flow.log_prob(jnp.ones((SIZE, SIZE + 1)) / 30)
    with pytest.raises(ValueError, match="k must have shape"):
        flow.encode(jnp.ones(SIZE))
    with pytest.raises(TypeError, match="floating point"):
        flow.encode(jnp.ones((SIZE, SIZE), jnp.int32))
    with pytest.raises(ValueError, match=r"z must have shape \(\.\.\., 25\)"):
        flow.decode(jnp.zeros((3, 24)))
    with pytest.raises(ValueError, match="n must be a positive int"):
        flow.sample(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="batch of >= 2"):
        flow.log_prob(motion[0], use_running_average=False)
    with pytest.raises(ValueError, match="kernel_size"):
        KernelFlow(0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="alpha"):
        KernelFlow(SIZE, alpha=0.5, rngs=nnx.Rngs(0))
