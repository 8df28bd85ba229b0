"""The blur-kernel-space model: its presets and task, blur transfer, the least-squares baseline, shipped weights.

A step of the trainer, export and load of the tiny preset: tests/models/test_contract.py (every model).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdeblur import kernels, models
from jaxdeblur.data.degrade import DegradeConfig, tile_size
from jaxdeblur.forward import blur
from jaxdeblur.metrics import psnr_per_image
from jaxdeblur.models import kernel_space as ks
from jaxdeblur.train import export
from jaxdeblur.train.parallel import data_mesh
from jaxdeblur.train.program import program_for


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A tiny model (as initialised: the transfer's shapes and batching do not need training), exported."""
    root = tmp_path_factory.mktemp("weights")
    task = ks.make_task(ks.TINY)
    state = program_for(task, data_mesh()).initial_state(ks.TINY.train.seed)  # the contract test's init program
    export(task, state, root, preset="tiny", data={"source": "none"}, metrics={})
    return root


def test_registered_presets_and_config_checks():
    assert "kernel_space" in models.model_names()
    paper = ks.PAPER
    assert (paper.nf, paper.code_dim, paper.data.degrade.crop, paper.train.batch_size, paper.optim.lr) == (
        64, 512, 256, 16, 1e-4)
    assert paper.stride == 128 and ks.CPU.stride == 16 and ks.CPU.data.degrade.crop % ks.CPU.stride == 0
    with pytest.raises(ValueError, match="lr_periods"):
        dataclasses.replace(ks.TINY.optim, lr_periods=(0.5, 0.4))
    with pytest.raises(ValueError, match="naive_kernel_size"):
        dataclasses.replace(ks.TINY, naive_kernel_size=4)


def test_task_batches_are_aligned_pairs_and_the_loss_is_finite():
    task = ks.make_task(ks.TINY)
    batch = next(iter(task.train_loader(0)))
    pair = task.prepare(jax.random.key(0), batch)
    crop = ks.TINY.data.degrade.crop
    assert pair["blurred"].shape == pair["sharp"].shape == (ks.TINY.train.batch_size, crop, crop, 1)
    (evaluation,) = task.eval_batches()
    assert evaluation["blurred"].shape == (ks.TINY.data.eval_batch_size, crop, crop, 1)


def test_transfer_any_size_batches_and_colour(tiny_weights):
    loaded = models.load("kernel_space-tiny", root=tiny_weights)
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=(2, 13, 21, 3)).astype(np.float32), rng.uniform(size=(3, 30, 17, 3)).astype(np.float32)
    one = ks.transfer_blur(a[:1], a[:1], b, weights=loaded)  # one pair's blur on three images of another size
    assert one.shape == b.shape and 0 <= one.min() and one.max() <= 1
    code = loaded.fn.encode(a, a)  # gray model: one code map per image and channel
    assert code.shape == (6, *loaded.fn.code_shape(13, 21))
    assert ks.transfer_blur(a[0, ..., 0], a[0, ..., 0], b[1, ..., 0], weights=loaded).shape == (30, 17)
    folder = tiny_weights / "kernel_space" / "tiny"  # weights by folder, as `jaxdeblur train --export` writes
    np.testing.assert_allclose(ks.transfer_blur(a[:1], a[:1], b, weights=folder), one, atol=1e-6)
    with pytest.raises(ValueError, match="sharp_a"):
        ks.transfer_blur(a, a, b, weights=loaded)  # 2 pairs for 3 images
    with pytest.raises(TypeError, match="KernelSpaceModel"):
        ks.transfer_blur(a, a, a, weights=object())


def test_least_squares_kernel_recovers_a_uniform_blur():
    rng = np.random.default_rng(1)
    sharp = rng.uniform(size=(2, 48, 48, 1)).astype(np.float32)
    k = np.asarray(kernels.motion(jax.random.key(3), 9, length=6.0))
    blurred = np.asarray(blur(sharp, k, "replicate"))
    fitted = np.asarray(ks.fit_uniform_kernel(sharp, blurred, kernel_size=9))
    assert fitted.shape == (2, 9, 9) and np.allclose(fitted.sum((1, 2)), 1, atol=1e-5) and (fitted >= 0).all()
    assert np.abs(fitted - k).sum(axis=(1, 2)).max() < 0.1  # l1 error of a sum-1 kernel
    with pytest.raises(ValueError, match="kernel_size"):
        ks.fit_uniform_kernel(sharp, blurred, kernel_size=4)


def test_same_blur_pairs_and_the_naive_baseline():
    cfg = DegradeConfig(crop=24, kernel_size=7, kind_probs=(1.0, 0.0, 0.0), motion_length=(2.0, 6.0),
                        spatially_varying=0.0, noise_sigma=(0.0, 0.0), quantize=False)
    rng = np.random.default_rng(2)
    side = tile_size(cfg)
    tiles_a, tiles_b = (rng.uniform(size=(2, side, side, 1)).astype(np.float32) for _ in range(2))
    p = ks.same_blur_pairs(jax.random.key(0), tiles_a, tiles_b, cfg)
    grid = np.asarray(p["kernel_grid"])
    assert grid.shape == (2, 1, 1, 7, 7)
    truth = np.asarray(blur(jnp.asarray(tiles_b), jnp.asarray(grid[:, 0, 0]), "valid"))
    np.testing.assert_allclose(p["blurred_b"], truth, atol=1e-5)  # b carries a's true kernels
    naive = ks.naive_transfer(p["sharp_a"], p["blurred_a"], p["sharp_b"], kernel_size=7)
    inner = (slice(None), slice(3, -3), slice(3, -3))  # away from the border, which 'replicate' only guesses
    psnr = np.asarray(psnr_per_image(naive[inner], p["blurred_b"][inner]))
    assert (psnr > 35).all()  # a uniform blur is transferred well by the least-squares kernel


def test_shipped_cpu_weights_reproduce_their_manifest_and_beat_the_baseline_on_varying_blur():
    if "kernel_space-cpu" not in models.available():
        pytest.fail("checkpoints/kernel_space/cpu is missing: the CPU kernel-space weights must ship with the package")
    loaded = models.load("kernel_space-cpu")
    measured = ks.check_metrics(loaded.fn, loaded.config)
    stored = loaded.manifest["metrics"]
    for name in ("check_psnr", "check_transfer_psnr"):
        assert measured[name] == pytest.approx(stored[name], abs=0.01)
    assert measured["check_psnr"] > measured["check_psnr_input"] + 1.0  # it re-blurs, not copies
    # a fixed strongly spatially varying pair: G then F reproduces it better than the best uniform kernel
    varying = dataclasses.replace(loaded.config.data.degrade, spatially_varying=1.0, motion_length=(5.0, 9.0))
    photos = ks.check_pairs(dataclasses.replace(loaded.config,
                                                data=dataclasses.replace(loaded.config.data, degrade=varying)))
    reblurred = loaded.fn.transfer(photos["sharp_a"], photos["blurred_a"], photos["sharp_a"])
    naive = ks.naive_reblur(photos["sharp_a"], photos["blurred_a"], loaded.config.naive_kernel_size)
    assert float(np.mean(psnr_per_image(reblurred, photos["blurred_a"]))) > float(
        np.mean(psnr_per_image(naive, photos["blurred_a"])))
