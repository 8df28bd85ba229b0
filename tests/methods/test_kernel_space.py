"""Kernel-space DIP (`method="kernel_space"`) on the shared engine, tiny preset (an untrained tiny operator).

Every engine run uses R=1 or R=2, chunk=4 and the "map" strategy, so the file
compiles one chunk program per R (the engine caches it per method, config,
shapes and strategy).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdeblur
from jaxdeblur.config import compress_schedule
from jaxdeblur.engine import checkpoint as checkpoint_module
from jaxdeblur.engine.runner import EngineOptions, _get_program, image_offset, method_latent_shape
from jaxdeblur.methods import get_method
from jaxdeblur.methods.kernel_space import (KernelSpaceDIP, apply_operator, load_operator,
                                            perceptual_distance)
from flax import nnx

METHOD = KernelSpaceDIP()
TINY = KernelSpaceDIP.presets["tiny"]
K = 5
SIZE = 23  # odd, and not a multiple of the code stride: any size works
OPTS = EngineOptions(progress=False, chunk=4, strategy="map")


def blurred(seed=0):
    rng = np.random.default_rng(seed)
    sharp = rng.uniform(0.1, 0.9, (SIZE + K - 1, SIZE + K - 1)).astype(np.float32)
    return np.asarray(jaxdeblur.blur(sharp, np.ones((K, K), np.float32) / K**2, "valid"))[..., None]


def run(ys, seeds, options=OPTS, cfg=TINY):
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    return METHOD.run(cfg, np.stack(ys), (K, K), keys, options)


@pytest.fixture(scope="module")
def single():
    return run([blurred(0)], [3])


def test_registered_presets_and_schedule():
    assert isinstance(get_method("kernel_space"), KernelSpaceDIP)
    paper = KernelSpaceDIP.presets["paper"]
    assert (paper.iterations, paper.warmup_iterations, paper.second_phase_from) == (5300, 300, 2800)
    assert (paper.lr_image, paper.lr_code, paper.lr_gamma) == (5e-4, 5e-4, 0.7)
    assert paper.hyper_laplacian_alpha == 0.66 and paper.perceptual is None
    fast = compress_schedule(paper, 1060)
    assert (fast.warmup_iterations, fast.second_phase_from) == (60, 560)
    with pytest.raises(ValueError, match="warmup_iterations"):
        dataclasses.replace(TINY, warmup_iterations=9)
    with pytest.raises(TypeError, match="perceptual"):
        dataclasses.replace(TINY, perceptual="vgg19")


def test_latent_is_the_image_and_the_operator_is_run_shared(single):
    assert method_latent_shape(METHOD, TINY, (SIZE, SIZE, 1), (K, K)) == (SIZE, SIZE, 1)
    assert image_offset(METHOD, TINY, (K, K)) == (0, 0)
    assert single.latents.shape == (1, SIZE, SIZE, 1)
    assert single.kernels.shape == (1, K, K) and np.isclose(single.kernels.sum(), 1, atol=1e-5)
    code_shape = nnx.merge(*load_operator(None)).code_shape(SIZE, SIZE)
    assert single.extras["code"].shape == (1, *code_shape) and single.extras["reblurred"].shape == (1, SIZE, SIZE, 1)
    # F is not a per-run network: the runs' parameters hold only the two generators
    assert set(single.state.params) == {"image", "code"}
    program = _get_program(METHOD, TINY, (SIZE, SIZE, 1), (K, K), OPTS)
    assert set(program.shared) == {"operator"}


def test_warm_up_then_the_two_phases(single):
    h = single.history
    assert set(h) == {"loss", "warmup", "data", "prior", "code_norm"}
    w = TINY.warmup_iterations
    assert (h["warmup"][0, :w] > 0).all() and (h["data"][0, :w] == 0).all()
    assert (h["warmup"][0, w:] == 0).all() and (h["data"][0, w:] > 0).all() and (h["prior"][0, w:] > 0).all()
    assert h["warmup"][0, w - 1] < h["warmup"][0, 0]  # the warm-up fit progresses
    # the hyper-Laplacian weight steps up at the second phase (2e-2 -> 5e-2)
    s = TINY.second_phase_from
    assert h["prior"][0, s] > 2.0 * h["prior"][0, s - 1]


def test_same_seed_same_result_other_seed_differs(single):
    again = run([blurred(0)], [3])
    np.testing.assert_array_equal(again.latents, single.latents)
    other = run([blurred(0)], [4])
    assert np.abs(other.latents - single.latents).max() > 1e-4


@pytest.mark.slow  # the engine's batch == single is in the default suite (tests/engine); run with --runslow
def test_batch_equals_single(single):
    pair = run([blurred(0), blurred(1)], [3, 5])
    alone = run([blurred(1)], [5])
    np.testing.assert_allclose(pair.latents[0], single.latents[0], atol=1e-6)
    np.testing.assert_allclose(pair.latents[1], alone.latents[0], atol=1e-6)
    np.testing.assert_allclose(pair.history["loss"][1], alone.history["loss"][0], rtol=1e-5)


def test_resume_after_interruption_equals_uninterrupted(tmp_path, monkeypatch, single):
    opts = dataclasses.replace(OPTS, checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=4)
    real_save = checkpoint_module.RunCheckpointer.save

    def save_then_die(self, step, *args, **kwargs):
        real_save(self, step, *args, **kwargs)
        raise KeyboardInterrupt  # killed right after the first checkpoint (the warm-up's end)

    monkeypatch.setattr(checkpoint_module.RunCheckpointer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run([blurred(0)], [3], options=opts)
    monkeypatch.setattr(checkpoint_module.RunCheckpointer, "save", real_save)
    resumed = run([blurred(0)], [3], options=dataclasses.replace(opts, resume=True))
    assert resumed.timings["iterations_run"] == TINY.iterations - 4
    np.testing.assert_allclose(resumed.latents, single.latents, atol=1e-6)
    np.testing.assert_allclose(resumed.history["loss"], single.history["loss"], rtol=1e-5)


def test_operator_on_other_channel_counts_and_the_perceptual_term():
    op = nnx.merge(*load_operator(None))  # a gray operator
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(12, 12, 3)), jnp.float32)
    code = jnp.asarray(rng.normal(size=op.code_shape(12, 12)), jnp.float32)
    out = apply_operator(op, x, code)
    assert out.shape == x.shape
    np.testing.assert_allclose(out[..., 1], apply_operator(op, x[..., 1:2], code)[..., 0], atol=1e-5)

    def features(img):  # a stand-in for a user's VGG: two feature maps
        return [img, img[:, ::2, ::2]]

    d = perceptual_distance(features, (1.0, 2.0), x, x + 0.1)
    assert float(d) == pytest.approx(0.3, abs=1e-5)
    with pytest.raises(ValueError, match="perceptual_layer_weights"):
        perceptual_distance(features, (1.0,), x, x)
    with pytest.raises(TypeError, match="KernelSpaceDIPConfig"):
        METHOD.run(jaxdeblur.methods.SelfDeblur.presets["tiny"], np.stack([blurred(0)]), (K, K),
                   jnp.stack([jax.random.key(0)]), OPTS)


def test_through_the_api_and_the_command(single, tmp_path):
    """`jaxdeblur.deblur(method="kernel_space")` crops the method's own latent (the image itself, offset 0)."""
    from PIL import Image
    from typer.testing import CliRunner

    from jaxdeblur.cli import app

    result = jaxdeblur.deblur(blurred(0)[..., 0], K, method="kernel_space", preset="tiny", seed=3, finish=False)
    assert result.image.shape == (SIZE, SIZE) and set(result.extras) >= {"code", "reblurred"}
    np.testing.assert_allclose(result.image, single.latents[0, ..., 0], atol=1e-5)
    Image.fromarray((blurred(0)[..., 0] * 255).round().astype(np.uint8)).save(tmp_path / "y.png")
    out = CliRunner().invoke(app, ["deblur", str(tmp_path / "y.png"), "-o", str(tmp_path / "out"), "-k", str(K),
                                   "--method", "kernel_space", "--preset", "tiny", "--no-finish"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "out" / "y_restored.png").is_file() and (tmp_path / "out" / "y.json").is_file()
