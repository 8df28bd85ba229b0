"""NAFNet as a trained model: its task through the one trainer, export + load, colour inference, shipped weights."""

import numpy as np
import pytest

from jaxdeblur import models
from jaxdeblur.models import nafnet
from jaxdeblur.train import export, train


@pytest.fixture(scope="module")
def trained_tiny(tmp_path_factory):
    """The tiny preset trained on the scikit-image photos (no data needed), exported to a temporary root."""
    root = tmp_path_factory.mktemp("weights")
    task = nafnet.make_task(nafnet.TINY)
    result = train(task, root / "run", progress=False)
    pretrained = nafnet.make_inference(result.model(), nafnet.TINY)
    metrics = {**result.eval_metrics, **nafnet.check_metrics(pretrained, nafnet.TINY)}
    export(task, result, root / "ckpt", preset="tiny", data={"source": "skimage photos"}, metrics=metrics)
    return root / "ckpt", result, metrics


def test_task_batches_are_aligned_pairs():
    task = nafnet.make_task(nafnet.TINY)
    batch = next(iter(task.train_loader(0)))
    crop = nafnet.TINY.degrade.crop
    pair = task.prepare(__import__("jax").random.key(0), batch)
    assert set(pair) == {"blurred", "sharp"}
    assert pair["blurred"].shape == pair["sharp"].shape == (nafnet.TINY.train.batch_size, crop, crop, 1)
    (evaluation,) = task.eval_batches()
    assert evaluation["blurred"].shape == (nafnet.TINY.eval_batch_size, crop, crop, 1)


def test_trained_tiny_model_exports_and_loads_with_its_metrics(trained_tiny):
    root, result, metrics = trained_tiny
    assert np.isfinite(result.eval_metrics["psnr"]) and "psnr_input" in result.eval_metrics
    loaded = models.load("nafnet-tiny", root=root)
    again = nafnet.check_metrics(loaded, loaded.config)
    assert again["check_psnr"] == pytest.approx(loaded.manifest["metrics"]["check_psnr"], abs=1e-3)
    assert loaded.manifest["steps"] == nafnet.TINY.train.steps


def test_inference_shapes_colour_and_tiles(trained_tiny):
    loaded = models.load("nafnet-tiny", root=trained_tiny[0])
    rng = np.random.default_rng(0)
    gray = rng.uniform(size=(20, 23)).astype(np.float32)
    rgb = rng.uniform(size=(20, 23, 3)).astype(np.float32)
    out_rgb = loaded(rgb)
    assert loaded(gray).shape == gray.shape and out_rgb.shape == rgb.shape
    # a gray model restores colour channel by channel
    np.testing.assert_allclose(out_rgb[..., 1], loaded(rgb[..., 1]), atol=1e-5)
    assert out_rgb.min() >= 0 and out_rgb.max() <= 1
    tiled = nafnet.NAFNetRestorer(loaded.model, loaded.config, tile=8, margin=8)
    whole = nafnet.NAFNetRestorer(loaded.model, loaded.config, tile=64, margin=0)
    # NAFNet's channel attention pools over the whole input, so tiles only approximate the whole image
    assert np.abs(tiled(gray) - whole(gray)).mean() < 0.05
    with pytest.raises(ValueError, match="finite"):
        loaded(np.full((8, 8), np.nan, np.float32))


def test_shipped_cpu_weights_reproduce_their_manifest():
    if "nafnet-cpu" not in models.available():
        pytest.fail("checkpoints/nafnet/cpu is missing: the CPU NAFNet weights must ship with the package")
    loaded = models.load("nafnet-cpu")
    measured = nafnet.check_metrics(loaded, loaded.config)
    stored = loaded.manifest["metrics"]
    assert measured["check_psnr"] == pytest.approx(stored["check_psnr"], abs=0.01)
    # it deblurs (two 64 px crops only: the set12/bsd68 gains are in the manifest and experiments/results)
    assert measured["check_psnr"] > measured["check_psnr_input"] + 0.3
