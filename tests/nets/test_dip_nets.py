"""Tests of jaxdeblur.nets: DIP skip generator, non-local block, kernel nets, functional API."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur.nets import (
    KernelGenerator,
    NonLocalBlock,
    RefinementNet,
    SkipGenerator,
    apply,
    concat_center_crop,
    split_module,
    torch_batch_norm,
    torch_conv,
    torch_linear,
    upsample2x_bilinear,
)

TINY = dict(channels_down=(8, 8, 8), channels_up=(8, 8, 8), channels_skip=(4, 4, 4), nonlocal_levels=(1, 2))


def tiny_generator(seed=0, **overrides):
    return SkipGenerator(8, 1, **{**TINY, **overrides}, rngs=nnx.Rngs(seed))


def noise(shape, seed=0):
    return 0.1 * jax.random.uniform(jax.random.key(seed), shape)


def num_params(module):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


# --------------------------------------------------------------------------- layers


def test_torch_default_init_bounds():
    conv = torch_conv(64, 32, 3, rngs=nnx.Rngs(0))
    bound = 1.0 / math.sqrt(64 * 9)
    w, b = np.asarray(conv.kernel[...]), np.asarray(conv.bias[...])
    assert w.shape == (3, 3, 64, 32)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.std(w) == pytest.approx(bound / math.sqrt(3), rel=0.03)  # U(-b, b)
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.5 * bound
    lin = torch_linear(200, 1000, rngs=nnx.Rngs(1))
    assert np.abs(np.asarray(lin.kernel[...])).max() <= 1.0 / math.sqrt(200)
    assert np.abs(np.asarray(lin.bias[...])).max() <= 1.0 / math.sqrt(200)


def test_batch_norm_uses_batch_stats_and_returns_updated_running_stats():
    bn = torch_batch_norm(3, rngs=nnx.Rngs(0))
    graphdef, params, state = split_module(bn)
    x = 2.0 + 3.0 * jax.random.normal(jax.random.key(1), (2, 5, 4, 3))
    out, new_state = jax.jit(apply, static_argnums=0)(graphdef, params, state, x)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(out, (x - mean) / jnp.sqrt(var + 1e-5), atol=1e-4)
    np.testing.assert_allclose(new_state["mean"][...], 0.1 * mean, rtol=1e-5)  # PyTorch momentum 0.1
    np.testing.assert_allclose(new_state["var"][...], 0.9 + 0.1 * var, rtol=1e-5)
    np.testing.assert_array_equal(state["mean"][...], 0.0)  # inputs untouched


# --------------------------------------------------------------------------- skip generator pieces


def _torch_upsample_1d(x, axis):
    """PyTorch bilinear x2, align_corners=False, along one axis (reference formula)."""
    n = x.shape[axis]
    src = np.maximum((np.arange(2 * n) + 0.5) / 2.0 - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = src - i0
    shape = [1] * x.ndim
    shape[axis] = 2 * n
    lam = lam.reshape(shape)
    return (1 - lam) * np.take(x, i0, axis=axis) + lam * np.take(x, i1, axis=axis)


@pytest.mark.parametrize("h,w", [(1, 1), (3, 4), (5, 7)])
def test_upsample_matches_pytorch_bilinear(h, w):
    x = np.asarray(jax.random.normal(jax.random.key(0), (2, h, w, 3)))
    expected = _torch_upsample_1d(_torch_upsample_1d(x, 1), 2)
    np.testing.assert_allclose(upsample2x_bilinear(jnp.asarray(x)), expected, atol=1e-5)


def test_concat_center_crop_like_dip():
    a = jnp.arange(5 * 5, dtype=jnp.float32).reshape(1, 5, 5, 1)
    b = jnp.arange(6 * 8, dtype=jnp.float32).reshape(1, 6, 8, 1)
    out = concat_center_crop(a, b)
    assert out.shape == (1, 5, 5, 2)
    np.testing.assert_array_equal(out[..., 0], a[..., 0])
    np.testing.assert_array_equal(out[..., 1], b[:, 0:5, 1:6, 0])  # starts (6-5)//2 = 0, (8-5)//2 = 1


# --------------------------------------------------------------------------- skip generator


def test_output_size_equals_input_size_for_many_sizes():
    gen = nnx.eval_shape(tiny_generator)
    graphdef, params, state = split_module(gen)
    assert gen.min_input_size == 9
    for h, w in [(9, 9), (9, 10), (11, 12), (13, 17), (31, 32), (32, 33), (47, 64), (65, 100), (127, 31)]:
        out, _ = jax.eval_shape(lambda p, s, x: apply(graphdef, p, s, x), params, state,
                                jax.ShapeDtypeStruct((1, h, w, 8), jnp.float32))
        assert out.shape == (1, h, w, 1), (h, w)


def test_paper_generator_keeps_selfdeblur_input_sizes():
    gen = nnx.eval_shape(lambda: SkipGenerator(rngs=nnx.Rngs(0)))
    graphdef, params, state = split_module(gen)
    assert gen.min_input_size == 33
    for size in [33, 34, 64, 255 + 11 - 1, 255 + 12 - 1, 255 + 27 - 1, 480 + 31 - 1]:
        x = jax.ShapeDtypeStruct((1, size, size + 1, 8), jnp.float32)
        out, new_state = jax.eval_shape(lambda p, s, x: apply(graphdef, p, s, x), params, state, x)
        assert out.shape == (1, size, size + 1, 1)
        assert jax.tree.structure(new_state) == jax.tree.structure(state)


def test_generator_rejects_too_small_or_wrong_inputs():
    gen = tiny_generator()
    with pytest.raises(ValueError, match=">= 9"):
        gen(jnp.zeros((1, 8, 16, 8)))
    with pytest.raises(ValueError, match="shape"):
        gen(jnp.zeros((16, 16, 8)))
    with pytest.raises(ValueError, match="shape"):
        gen(jnp.zeros((1, 16, 16, 3)))
    with pytest.raises(ValueError, match="same length"):
        SkipGenerator(channels_down=(8, 8), channels_up=(8,), channels_skip=(4, 4), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="nonlocal_levels"):
        SkipGenerator(**{**TINY, "nonlocal_levels": (3,)}, rngs=nnx.Rngs(0))


def test_generator_without_top_skip_gives_even_size_like_dip():
    graphdef, params, state = split_module(nnx.eval_shape(lambda: tiny_generator(channels_skip=(0, 4, 4))))
    out, _ = jax.eval_shape(lambda p, s, x: apply(graphdef, p, s, x), params, state,
                            jax.ShapeDtypeStruct((1, 17, 18, 8), jnp.float32))
    assert out.shape == (1, 18, 18, 1)


def test_generator_output_in_unit_interval_and_features_head_split():
    graphdef, params, state = split_module(tiny_generator())
    x = noise((1, 16, 17, 8))

    @jax.jit
    def run(params, state, x):
        out, new_state = apply(graphdef, params, state, x)
        feats, _ = apply(graphdef, params, state, x, method="features")
        return out, new_state, feats, apply(graphdef, params, state, feats, method="to_image")[0]

    out, new_state, feats, again = run(params, state, x)
    assert out.shape == (1, 16, 17, 1) and feats.shape == (1, 16, 17, 8)
    assert float(out.min()) > 0.0 and float(out.max()) < 1.0
    assert float(out.std()) > 1e-4  # not a constant image
    np.testing.assert_allclose(again, out, atol=1e-6)
    moved = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state))]
    assert all(moved)  # every BatchNorm's running statistics were updated


def test_paper_parameter_count():
    """5 levels, 128 down / 128 up / 16 skip, 8 -> 1 channels, non-local blocks at levels 2-4."""
    conv = lambda cin, cout, k: k * k * cin * cout + cout  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731

    def level(cin):  # skip, down, conv, concat BN, up 3x3, up 1x1 (each conv with its BN)
        return (conv(cin, 16, 1) + bn(16) + conv(cin, 128, 3) + bn(128) + conv(128, 128, 3) + bn(128)
                + bn(144) + conv(144, 128, 3) + bn(128) + conv(128, 128, 1) + bn(128))

    nonlocal_block = 3 * conv(128, 64, 1) + conv(64, 128, 1) + bn(128)
    dip_skip = level(8) + 4 * level(128) + conv(128, 1, 1)
    assert dip_skip == 2_265_489  # the original DIP skip net with these widths
    gen = nnx.eval_shape(lambda: SkipGenerator(rngs=nnx.Rngs(0)))
    assert num_params(gen) == dip_skip + 3 * nonlocal_block == 2_365_521


def test_generator_grads_finite():
    gen = tiny_generator()
    graphdef, params, state = split_module(gen)
    x = noise((1, 16, 20, 8))

    def loss(p):
        out, _ = apply(graphdef, p, state, x)
        return jnp.mean((out - 0.5) ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    head = grads["head"]["kernel"][...]
    assert float(jnp.abs(head).max()) > 0


def test_vmap_over_stacked_params_equals_per_run_apply():
    runs = [split_module(tiny_generator(seed)) for seed in range(3)]
    graphdef = runs[0][0]
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *[r[1] for r in runs])
    state = jax.tree.map(lambda *xs: jnp.stack(xs), *[r[2] for r in runs])
    xs = noise((3, 1, 12, 13, 8))
    single = jax.jit(lambda p, s, x: apply(graphdef, p, s, x))
    outs, new_states = jax.jit(jax.vmap(single))(params, state, xs)
    for i, (_, p_i, s_i) in enumerate(runs):
        out_i, ns_i = single(p_i, s_i, xs[i])
        np.testing.assert_allclose(outs[i], out_i, atol=1e-4)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-5), new_states, ns_i)
    assert not np.allclose(outs[0], outs[1])  # different keys, different nets


# --------------------------------------------------------------------------- non-local block


def test_nonlocal_block_is_identity_at_init():
    block = NonLocalBlock(6, rngs=nnx.Rngs(0))
    assert block.inner_channels == 3
    x = jax.random.normal(jax.random.key(1), (2, 7, 5, 6))  # odd sizes: floor max-pool
    np.testing.assert_array_equal(block(x), x)


def test_nonlocal_block_matches_naive_dot_product_attention():
    block = NonLocalBlock(6, rngs=nnx.Rngs(0))
    block.out_norm.scale[...] = jnp.linspace(0.5, 1.5, 6)
    block.out_norm.bias[...] = jnp.linspace(-0.2, 0.2, 6)
    x = jax.random.normal(jax.random.key(1), (2, 7, 5, 6))
    n, h, w, _ = x.shape
    theta = block.theta(x).reshape(n, h * w, 3)
    phi = block.phi(x)[:, :6, :4].reshape(n, 3, 2, 2, 2, 3).max(axis=(2, 4)).reshape(n, 6, 3)
    g = block.g(x)[:, :6, :4].reshape(n, 3, 2, 2, 2, 3).max(axis=(2, 4)).reshape(n, 6, 3)
    attention = theta @ jnp.swapaxes(phi, 1, 2) / phi.shape[1]  # (HW, Np) / Np, no softmax
    y = (attention @ g).reshape(n, h, w, 3)
    expected = x + block.out_norm(block.out_conv(y))
    out = block(x)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert not np.allclose(out, x)


def test_nonlocal_block_without_subsampling_and_checks():
    block = NonLocalBlock(4, inner_channels=2, subsample=False, rngs=nnx.Rngs(0))
    assert block(jnp.ones((1, 1, 1, 4))).shape == (1, 1, 1, 4)
    with pytest.raises(ValueError, match="H, W >= 2"):
        NonLocalBlock(4, rngs=nnx.Rngs(0))(jnp.ones((1, 1, 3, 4)))
    with pytest.raises(ValueError, match="features"):
        block(jnp.ones((1, 4, 4, 3)))


# --------------------------------------------------------------------------- kernel nets


def test_kernel_generator_is_a_kernel():
    gen = KernelGenerator((5, 7), in_features=20, hidden=30, rngs=nnx.Rngs(0))
    z = noise((20,))
    k = gen(z)
    assert k.shape == (5, 7)
    assert float(k.min()) >= 0.0
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(k, jax.nn.softmax(gen.logits(z).ravel()).reshape(5, 7), atol=1e-7)
    batch = gen(noise((3, 4, 20)))
    assert batch.shape == (3, 4, 5, 7)
    np.testing.assert_allclose(batch.sum(axis=(-2, -1)), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(\.\.\., 20\)"):
        gen(jnp.zeros((21,)))
    with pytest.raises(ValueError, match="kernel_size"):
        KernelGenerator((5,), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="dropout_rate"):
        KernelGenerator((5, 5), dropout_rate=1.0, rngs=nnx.Rngs(0))


def test_kernel_generator_paper_size():
    gen = nnx.eval_shape(lambda: KernelGenerator((17, 17), rngs=nnx.Rngs(0)))
    assert num_params(gen) == 200 * 1000 + 1000 + 1000 * 289 + 289


def test_kernel_generator_dropout_sites():
    """Dropout on z and on the hidden ReLU6 output, masks from split(key), 1/(1-rate) scaling."""
    rate = 0.2
    gen = KernelGenerator((3, 4), in_features=50, hidden=40, dropout_rate=rate, rngs=nnx.Rngs(0))
    z = noise((50,)) + 0.05
    key = jax.random.key(7)
    k_in, k_hidden = jax.random.split(key)
    x = jnp.where(jax.random.bernoulli(k_in, 1 - rate, z.shape), z / (1 - rate), 0.0)
    h = jax.nn.relu6(gen.hidden_layer(x))
    h = jnp.where(jax.random.bernoulli(k_hidden, 1 - rate, h.shape), h / (1 - rate), 0.0)
    expected = gen.output_layer(h).reshape(3, 4)
    np.testing.assert_allclose(gen.logits(z, key=key), expected, atol=1e-5)
    plain = gen.output_layer(jax.nn.relu6(gen.hidden_layer(z))).reshape(3, 4)
    np.testing.assert_allclose(gen.logits(z), plain, atol=1e-6)  # no key: no dropout


def test_kernel_generator_dropout_samples_vmapped_over_keys():
    gen = KernelGenerator((5, 5), in_features=20, hidden=64, dropout_rate=0.2, rngs=nnx.Rngs(0))
    graphdef, params, state = split_module(gen)
    assert jax.tree.leaves(state) == []  # no RNG state: keys come in explicitly
    z = noise((20,))
    keys = jax.random.split(jax.random.key(1), 10)
    sample = jax.jit(jax.vmap(lambda k: apply(graphdef, params, state, z, key=k)[0]))
    kernels = sample(keys)
    assert kernels.shape == (10, 5, 5)
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, atol=1e-5)
    flat = np.asarray(kernels).reshape(10, -1)
    assert min(np.abs(flat[i] - flat[j]).max() for i in range(10) for j in range(i)) > 1e-6
    np.testing.assert_array_equal(sample(keys), kernels)
    np.testing.assert_allclose(apply(graphdef, params, state, z, key=keys[3])[0], kernels[3], atol=1e-6)


def test_kernel_generator_grad_through_mc_samples():
    gen = KernelGenerator((4, 4), in_features=10, hidden=16, dropout_rate=0.2, rngs=nnx.Rngs(0))
    graphdef, params, state = split_module(gen)
    z = noise((10,))
    keys = jax.random.split(jax.random.key(2), 10)

    def variance_penalty(p):
        ks = jax.vmap(lambda k: apply(graphdef, p, state, z, key=k)[0])(keys)
        return jnp.sum(ks.var(axis=0) ** 2)

    grads = jax.grad(variance_penalty)(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads["hidden_layer"]["kernel"][...]).max()) > 0


def test_refinement_net():
    net = RefinementNet((3, 5), hidden=16, rngs=nnx.Rngs(0))
    assert net.hidden_layer.in_features == 30
    mean = jax.nn.softmax(jax.random.normal(jax.random.key(0), (15,))).reshape(3, 5)
    var = 1e-3 * jax.random.uniform(jax.random.key(1), (3, 5))
    k = net(mean, var)
    assert k.shape == (3, 5)
    assert float(k.min()) >= 0.0 and float(k.sum()) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(net(mean, 2 * var), k)  # the variance is an input
    assert net(jnp.stack([mean, mean]), jnp.stack([var, var])).shape == (2, 3, 5)
    with pytest.raises(ValueError, match="k_mean and k_var"):
        net(mean, var[:2])
