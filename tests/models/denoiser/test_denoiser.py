"""The denoiser as a trained model (task, shipped weights) and the learned non-blind step it drives.

A step of the trainer, export and load of the tiny preset: tests/models/test_contract.py (every model).
"""

import jax
import numpy as np
import pytest

from jaxdeblur import models
from jaxdeblur.deconv import hyper_laplacian, pnp_hqs, pnp_sigmas
from jaxdeblur.forward import blur
from jaxdeblur.kernels import motion
from jaxdeblur.metrics import psnr
from jaxdeblur.models import denoiser


@pytest.fixture(scope="module")
def shipped():
    if "denoiser-cpu" not in models.available():
        pytest.fail("checkpoints/denoiser/cpu is missing: the learned non-blind step's weights must ship")
    return models.load("denoiser-cpu")


@pytest.fixture(scope="module")
def scene():
    """A 48 px crop of skimage's camera, blurred (circularly) by a 9 px motion kernel + 1% noise."""
    from skimage import data

    x = data.camera()[200:248, 220:268].astype(np.float32) / 255.0
    k = np.asarray(motion(jax.random.key(3), 9, length=7.0), np.float32)
    noise = 0.01 * np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    return x, k, np.asarray(blur(x, k, "circular")) + noise


def test_task_makes_noisy_patches_and_evaluates_every_sigma():
    task = denoiser.make_task(denoiser.TINY)
    batch = task.prepare(jax.random.key(0), next(iter(task.train_loader(0))))
    crop, n = denoiser.TINY.crop, denoiser.TINY.train.batch_size
    assert batch["noisy"].shape == batch["sharp"].shape == (n, crop, crop, 1) and batch["sigma"].shape == (n,)
    assert float(batch["sigma"].max()) <= denoiser.TINY.sigma_max
    (evaluation,) = task.eval_batches()
    assert evaluation["noisy"].shape == (denoiser.TINY.eval_batch_size, len(denoiser.TINY.eval_sigmas), crop, crop, 1)


def test_shipped_weights_reproduce_their_manifest_and_denoise(shipped):
    measured = denoiser.check_metrics(shipped, shipped.config)
    assert measured["check_psnr"] == pytest.approx(shipped.manifest["metrics"]["check_psnr"], abs=0.01)
    assert measured["check_psnr"] > measured["check_psnr_input"] + 6.0  # sigma 25/255: ~20 dB in
    assert sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shipped.model)) < 1_000_000


def test_pnp_with_the_true_kernel_beats_hyper_laplacian(shipped, scene):
    x, k, y = scene
    learned = pnp_hqs(y, k, denoiser=shipped.fn.apply, noise_sigma=0.01, taper=False)
    classical = hyper_laplacian(y, k, taper=False)
    assert learned.shape == y.shape and float(learned.min()) >= 0 and float(learned.max()) <= 1
    assert float(psnr(learned, x)) > float(psnr(classical, x)) + 0.5


def test_pnp_batched_equals_one_by_one_and_colour_is_per_channel(shipped, scene):
    _, k, y = scene
    ys = np.stack([y, y[::-1].copy()])
    one = [np.asarray(pnp_hqs(v, k, denoiser=shipped.fn.apply, iterations=3)) for v in ys]
    batched = jax.vmap(lambda v: pnp_hqs(v, k, denoiser=shipped.fn.apply, iterations=3))(ys)
    np.testing.assert_allclose(np.asarray(batched), np.stack(one), atol=2e-5)
    rgb = np.stack([ys[0], ys[1], ys[0]], axis=-1)
    colour = np.asarray(pnp_hqs(rgb, k, denoiser=shipped.fn.apply, iterations=3))
    np.testing.assert_allclose(colour[..., 1], one[1], atol=2e-5)


def test_pnp_bad_input_gets_one_line(shipped, scene):
    _, k, y = scene
    with pytest.raises(ValueError, match="larger than the image"):
        pnp_hqs(y[:5, :5], k, denoiser=shipped.fn.apply)
    with pytest.raises(ValueError, match="NaN"):
        pnp_hqs(np.where(y > 0.5, np.nan, y), k, denoiser=shipped.fn.apply)
    with pytest.raises(ValueError, match="noise_sigma"):
        pnp_hqs(y, k, denoiser=shipped.fn.apply, noise_sigma=0.0)
    assert pnp_sigmas(3, 0.2, 0.05) == pytest.approx((0.2, 0.1, 0.05))


def test_weights_that_fail_their_hash_are_refused(shipped, tmp_path):
    import shutil

    folder = tmp_path / "denoiser" / "cpu"
    shutil.copytree(shipped.folder, folder)
    victim = next(p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "manifest.json")
    victim.write_bytes(victim.read_bytes()[:-1] + bytes([victim.read_bytes()[-1] ^ 1]))
    with pytest.raises(ValueError, match="sha256|hash|corrupt"):
        models.load("denoiser-cpu", root=tmp_path)
