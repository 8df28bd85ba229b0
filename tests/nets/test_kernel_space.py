"""The blur operator F and kernel extractor G (`jaxdeblur.nets.kernel_space`): sizes, shapes, learning."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxdeblur import losses
from jaxdeblur.forward import blur
from jaxdeblur.nets.kernel_space import KernelSpace

SIZES = dict(nf=4, front_blocks=1, back_blocks=1, code_dim=8, extractor_blocks=1, depth=2, feature_downsamples=1)


@pytest.fixture(scope="module")
def net():
    return KernelSpace(1, **SIZES, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def reblur(net):
    graphdef, state = nnx.split(net)
    return jax.jit(lambda s, b: nnx.merge(graphdef, state)(s, b))


def test_stride_and_code_shape(net):
    assert net.stride == 8
    assert net.code_shape(16, 16) == (2, 2, 8)
    assert net.code_shape(17, 9) == (3, 2, 8)


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (13, 29), (17, 16)])
def test_any_input_size_keeps_its_size(reblur, net, shape):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(2, *shape, 1)), jnp.float32)
    out = reblur(x, x)
    assert out.shape == x.shape and np.isfinite(np.asarray(out)).all()


def test_padding_is_cropped_away(net):
    """A 15 x 14 image is padded (edge replication, bottom / right) to the 16 x 16 grid and cropped back: near
    the top-left corner, far from the padding, F gives what it gives on the whole 16 x 16 image."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.uniform(size=(1, 16, 16, 1)), jnp.float32)
    code = net.encode(x, x)
    out_full = np.asarray(net.blur(x, code))
    out_crop = np.asarray(net.blur(x[:, :15, :14], code))
    assert out_crop.shape == (1, 15, 14, 1)
    assert np.abs(out_full[:, :4, :4] - out_crop[:, :4, :4]).max() < 0.1
    assert np.abs(out_full[:, :4, :4] - out_crop[:, :4, :4]).max() < np.abs(out_full - x).max()


def test_bad_shapes_are_refused(net):
    x = jnp.zeros((1, 16, 16, 1))
    with pytest.raises(ValueError, match="code must have shape"):
        net.blur(x, jnp.zeros((1, 3, 3, 8)))
    with pytest.raises(ValueError, match="same shape"):
        net.encode(x, jnp.zeros((1, 16, 15, 1)))
    with pytest.raises(ValueError, match="sharp must be images"):
        net.encode(jnp.zeros((16, 16, 1)), jnp.zeros((16, 16, 1)))


def test_joint_training_learns_the_identity_and_a_blur():
    """A few Adam steps on identity pairs and box-blurred pairs of photo crops (full-resolution features, as
    the cpu preset): the Charbonnier loss falls, and F with the code of an identity pair, G(x, x), moves
    close to the identity."""
    from skimage import data

    photo = data.camera().astype(np.float32) / 255
    sharp = jnp.asarray(np.stack([photo[i:i + 16, j:j + 16] for i, j in ((100, 200), (250, 250), (300, 80),
                                                                           (40, 400))])[..., None])
    blurred = blur(sharp, jnp.ones((3, 3), jnp.float32) / 9, "replicate")
    sharp2, target = jnp.concatenate([sharp, sharp]), jnp.concatenate([sharp, blurred])
    model = KernelSpace(1, **{**SIZES, "feature_downsamples": 0}, rngs=nnx.Rngs(3))
    graphdef, params = nnx.split(model)
    opt = optax.adam(1e-3)

    def loss_fn(p):
        return losses.charbonnier(nnx.merge(graphdef, p)(sharp2, target), target)

    @jax.jit
    def train(p):
        def step(carry, _):
            p, s = carry
            loss, g = jax.value_and_grad(loss_fn)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), loss
        (p, _), history = jax.lax.scan(step, (p, opt.init(p)), None, length=40)
        return p, history

    identity_error = lambda p: float(jnp.abs(nnx.merge(graphdef, p)(sharp, sharp) - sharp).mean())  # noqa: E731
    before = identity_error(params)
    params, history = train(params)
    assert float(history[-5:].mean()) < 0.7 * float(history[:5].mean())
    assert identity_error(params) < 0.5 * before
