"""Nair & Patel's uncertainty-aware DIP (`method="uncertainty"`) on the shared engine, tiny preset.

Every engine run here has R=1 (or R=2 for the batch test) and chunk=1, so
the whole file compiles one chunk program per R (the engine caches it per
method, config, shapes and strategy).
"""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxdeblur
from jaxdeblur.engine.networks import build_networks
from jaxdeblur.engine.runner import EngineOptions, init_batch, latent_shape, run_batch
from jaxdeblur.methods import get_method
from jaxdeblur.methods.uncertainty import (
    Uncertainty,
    ablation_config,
    kernel_moments,
    mc_kernel_samples,
)
from jaxdeblur.nets import KernelGenerator
from jaxdeblur.nets.functional import split_module

METHOD = Uncertainty()
TINY = Uncertainty.presets["tiny"]
K = 5
SIZE = 24
OPTS = EngineOptions(progress=False, chunk=1, strategy="map")


def blurred(seed=0):
    rng = np.random.default_rng(seed)
    sharp = rng.uniform(0.1, 0.9, (SIZE + K - 1, SIZE + K - 1)).astype(np.float32)
    return np.asarray(jaxdeblur.blur(sharp, np.ones((K, K), np.float32) / K**2, "valid"))


class _KernelNets:
    """A stand-in for engine Networks holding only the dropout kernel generator."""

    def __init__(self, p=0.2):
        graphdef, params, state = split_module(KernelGenerator((K, K), in_features=16, hidden=32, dropout_rate=p,
                                                               rngs=nnx.Rngs(0)))
        self.graphdef, self.params, self.state = graphdef, {"kernel": params}, {"kernel": state}

    def apply(self, name, params, net_state, *args, **kwargs):
        from jaxdeblur.nets.functional import apply
        return apply(self.graphdef, params[name], net_state[name], *args, **kwargs)


def test_registered_and_presets():
    assert get_method("uncertainty") is not None and isinstance(get_method("uncertainty"), Uncertainty)
    paper = Uncertainty.presets["paper"]
    assert (paper.mc_samples, paper.dropout_rate, paper.iterations, paper.tv_weight) == (10, 0.2, 5000, 1e-7)
    assert (paper.lr_image, paper.lr_kernel, paper.lr_milestones) == (1e-2, 1e-2, (1000, 2000, 3000, 4000))
    assert paper.attention and paper.uncertainty and paper.variant == "full"
    with pytest.raises(ValueError, match="mc_samples"):
        dataclasses.replace(TINY, mc_samples=1)
    with pytest.raises(ValueError, match="dropout_rate"):
        dataclasses.replace(TINY, dropout_rate=1.0)
    with pytest.raises(ValueError, match="window"):
        dataclasses.replace(TINY, window=4)
    with pytest.raises(ValueError, match="variant"):
        ablation_config(TINY, "+both")


def test_mc_samples_one_vmapped_pass_equal_separate_calls():
    nets = _KernelNets()
    z = 0.1 * jax.random.uniform(jax.random.key(1), (16,))
    keys = jax.random.split(jax.random.key(2), 4)
    samples = mc_kernel_samples(nets, nets.params, nets.state, z, keys)
    assert samples.shape == (4, K, K)
    separate = np.stack([np.asarray(nets.apply("kernel", nets.params, nets.state, z, key=k)[0]) for k in keys])
    np.testing.assert_allclose(samples, separate, atol=1e-6)
    np.testing.assert_allclose(np.sum(samples, axis=(1, 2)), 1.0, rtol=1e-5)
    for i in range(4):  # every key draws its own dropout masks
        for j in range(i):
            assert np.abs(separate[i] - separate[j]).max() > 1e-4
    # One pass: the 2 dense layers appear once each in the program (batched over M), not M times.
    jaxpr = jax.make_jaxpr(lambda ks: mc_kernel_samples(nets, nets.params, nets.state, z, ks))(keys)
    assert str(jaxpr).count("dot_general") == 2
    # Without dropout every sample is the same kernel (no variance).
    plain = _KernelNets(p=0.0)
    same = mc_kernel_samples(plain, plain.params, plain.state, z, keys)
    np.testing.assert_allclose(kernel_moments(same)[1], 0.0, atol=1e-12)


def test_moments_match_python_loop_of_eq2():
    samples = np.asarray(jax.random.dirichlet(jax.random.key(0), jnp.ones(K * K), (6,))).reshape(6, K, K)
    mean = np.zeros((K, K))
    second = np.zeros((K, K))
    for k in samples.astype(np.float64):
        mean += k / len(samples)
        second += k * k / len(samples)
    var = second - mean * mean
    got_mean, got_var = kernel_moments(jnp.asarray(samples))
    np.testing.assert_allclose(got_mean, mean, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got_var, var, rtol=1e-4, atol=1e-9)
    assert (np.asarray(got_var) >= 0).all()


@pytest.mark.parametrize("variant, networks, terms", [
    ("selfdeblur", {"image", "kernel"}, {"data", "tv"}),
    ("+image", {"image", "kernel", "attention"}, {"data", "tv"}),
    ("+kernel", {"image", "kernel", "refine"}, {"data", "tv", "mont_data", "mont_variance"}),
    ("full", {"image", "kernel", "refine", "attention"}, {"data", "tv", "mont_data", "mont_variance"}),
])
def test_ablation_switches(variant, networks, terms):
    """Each variant builds exactly its networks, state and loss terms (abstract trace: nothing compiles)."""
    cfg = ablation_config(TINY, variant)
    assert cfg.variant == variant
    shape = latent_shape((SIZE, SIZE, 1), (K, K))
    nets, init = build_networks(lambda rngs: METHOD.networks(cfg, shape, (K, K), rngs))
    assert set(nets.graphdefs) == networks
    params, net_state = jax.eval_shape(init, jax.random.key(0))
    inputs = jax.eval_shape(lambda k: METHOD.inputs(cfg, k, shape), jax.random.key(1))
    method_state = METHOD.init_method_state(cfg, shape, (K, K))
    assert set(method_state) == ({"history"} if cfg.attention else set())
    y = jax.ShapeDtypeStruct((SIZE, SIZE, 1), jnp.float32)

    def loss(p, s, i, ms, y):
        return METHOD.loss(cfg, nets, p, s, i, ms, y, jnp.int32(0), jax.random.key(2))

    value, (got_terms, new_state, new_method_state) = jax.eval_shape(loss, params, net_state, inputs, method_state, y)
    assert value.shape == () and set(got_terms) == terms
    assert jax.tree.structure(new_state) == jax.tree.structure(net_state)
    assert jax.tree.structure(new_method_state) == jax.tree.structure(method_state)
    _, _, extras = jax.eval_shape(lambda p, s, i, ms: METHOD.estimate(cfg, nets, p, s, i, ms),
                                  params, net_state, inputs, method_state)
    assert set(extras) == ({"kernel_variance", "kernel_mean"} if cfg.uncertainty else set())


@pytest.fixture(scope="module")
def stepped():
    """Three engine steps of one run, one engine call per step: the states before/after each."""
    ys = blurred()[None, :, :, None]
    keys = jnp.stack([jax.random.key(0)])
    nets, state = init_batch(METHOD, TINY, ys, (K, K), keys, OPTS)
    states = [state]
    for _ in range(3):
        out = run_batch(METHOD, TINY, ys, (K, K), keys, iterations=1, options=OPTS, state=states[-1])
        states.append(out.state)
    return nets, states, out


def test_ring_buffer_holds_last_m_outputs_newest_first(stepped):
    nets, states, _ = stepped
    m = TINY.history
    assert m == 2
    np.testing.assert_array_equal(states[0].method_state["history"], 0.0)

    @jax.jit
    def output_of_step(state):
        """The generator output the engine's step computes from `state` (same key split as engine/step.py)."""
        _, sub = jax.random.split(jax.random.wrap_key_data(state.key))
        k_noise, _ = jax.random.split(sub)
        latent, _, _ = METHOD.image(TINY, nets, state.params, state.net_state, state.inputs, state.method_state,
                                    k_noise)
        return latent

    outputs = [np.asarray(output_of_step(jax.tree.map(lambda x: jnp.asarray(x[0]), s))) for s in states[:3]]
    for n in (1, 2, 3):
        buffer = states[n].method_state["history"][0]  # (m, 1, H', W', C) of run 0
        assert buffer.shape == (m, 1, SIZE + K - 1, SIZE + K - 1, 1)
        expected = [outputs[n - 1 - i] if n - 1 - i >= 0 else np.zeros_like(outputs[0]) for i in range(m)]
        for i in range(m):
            np.testing.assert_allclose(buffer[i, 0], expected[i], atol=1e-5)
    assert np.abs(outputs[2] - outputs[1]).max() > 0  # the entries really are different iterations


def test_api_end_to_end_with_variance(stepped, tmp_path):
    _, _, chained = stepped
    r = jaxdeblur.deblur(blurred(), K, method="uncertainty", preset="tiny", config={"iterations": 3}, seed=0,
                         options=OPTS)
    assert r.image.shape == (SIZE, SIZE) and r.kernel.shape == (K, K)
    np.testing.assert_allclose(r.kernel.sum(), 1.0, rtol=1e-5)
    var = r.extras["kernel_variance"]
    assert var.shape == (K, K) and (var >= 0).all() and var.max() > 0
    assert r.extras["kernel_mean"].shape == (K, K)
    assert set(r.history) == {"loss", "data", "tv", "mont_data", "mont_variance"}
    assert np.isfinite(r.history["loss"]).all() and r.history["loss"].shape == (3,)
    np.testing.assert_allclose(r.history["loss"],
                               r.history["data"] + r.history["tv"] + r.history["mont_data"] + r.history["mont_variance"],
                               rtol=1e-5)
    # Three one-step engine calls chained through the state == one call of three steps.
    np.testing.assert_allclose(r.kernel, chained.kernels[0], atol=1e-6)
    np.testing.assert_allclose(var, chained.extras["kernel_variance"][0], rtol=1e-4, atol=1e-12)

    from jaxdeblur.viz import result_figure
    from PIL import Image
    with_var = result_figure(tmp_path / "a.png", blurred(), r.image, r.kernel, kernel_variance=var)
    without = result_figure(tmp_path / "b.png", blurred(), r.image, r.kernel)
    assert Image.open(with_var).size[0] > Image.open(without).size[0]  # one more panel


def test_cli_end_to_end(stepped, tmp_path):
    from typer.testing import CliRunner

    from jaxdeblur.cli import app
    from jaxdeblur.io import save_image

    save_image(tmp_path / "in.png", blurred())
    result = CliRunner().invoke(app, ["deblur", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "-k", str(K),
                                      "--method", "uncertainty", "--preset", "tiny", "--set", "iterations=1"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert (out / "in_figure.png").is_file() and (out / "in_restored.png").is_file()
    record = json.loads((out / "in.json").read_text())
    assert record["method"] == "uncertainty" and record["config"]["uncertainty"] is True
    assert {"mont_data", "mont_variance"} <= set(record["final_losses"])


@pytest.mark.slow  # the engine's batch == single is in the default suite (tests/engine); run with --runslow
def test_batch_equals_single(stepped):
    ys = [blurred(1), blurred(2)]
    batch = jaxdeblur.deblur_batch(ys, K, method="uncertainty", preset="tiny", config={"iterations": 2}, seeds=[5, 6],
                                   options=OPTS)
    for i, y in enumerate(ys):
        single = jaxdeblur.deblur(y, K, method="uncertainty", preset="tiny", config={"iterations": 2}, seed=5 + i,
                                  options=OPTS)
        np.testing.assert_allclose(batch[i].image, single.image, atol=2e-5)
        np.testing.assert_allclose(batch[i].kernel, single.kernel, atol=2e-6)
        np.testing.assert_allclose(batch[i].extras["kernel_variance"], single.extras["kernel_variance"],
                                   rtol=1e-4, atol=1e-12)
        np.testing.assert_allclose(batch[i].history["loss"], single.history["loss"], rtol=1e-4, atol=1e-6)
