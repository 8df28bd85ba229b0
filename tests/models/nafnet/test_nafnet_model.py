"""NAFNet as a trained model: its task's batches, colour and tiled inference, shipped weights.

A step of the trainer, export and load of the tiny preset: tests/models/test_contract.py (every model).
"""

import numpy as np
import pytest

from jaxdeblur import models
from jaxdeblur.models import nafnet
from jaxdeblur.train import export
from jaxdeblur.train.parallel import data_mesh
from jaxdeblur.train.program import program_for


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A tiny NAFNet (as initialised: inference does not need training) exported to a temporary root."""
    root = tmp_path_factory.mktemp("weights")
    task = nafnet.make_task(nafnet.TINY)
    state = program_for(task, data_mesh()).initial_state(nafnet.TINY.train.seed)  # the contract test's init program
    export(task, state, root, preset="tiny", data={"source": "none"}, metrics={})
    return root


def test_task_batches_are_aligned_pairs():
    task = nafnet.make_task(nafnet.TINY)
    batch = next(iter(task.train_loader(0)))
    crop = nafnet.TINY.data.degrade.crop
    pair = task.prepare(__import__("jax").random.key(0), batch)
    assert set(pair) == {"blurred", "sharp"}
    assert pair["blurred"].shape == pair["sharp"].shape == (nafnet.TINY.train.batch_size, crop, crop, 1)
    (evaluation,) = task.eval_batches()
    assert evaluation["blurred"].shape == (nafnet.TINY.data.eval_batch_size, crop, crop, 1)


def test_inference_shapes_colour_and_tiles(tiny_weights):
    loaded = models.load("nafnet-tiny", root=tiny_weights)
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


@pytest.mark.parametrize("name", ["nafnet-cpu", "nafnet-long", "nafnet-longer"])
def test_shipped_weights_reproduce_their_manifest(name):
    if name not in models.available():
        pytest.fail(f"checkpoints/nafnet/{name.split('-')[1]} is missing: the CPU NAFNet weights must ship with the "
                    "package")
    loaded = models.load(name)
    measured = nafnet.check_metrics(loaded, loaded.config)
    stored = loaded.manifest["metrics"]
    assert measured["check_psnr"] == pytest.approx(stored["check_psnr"], abs=0.01)
    # it deblurs (two 64 px crops only: the set12/bsd68 gains are in the manifest and experiments/results)
    assert measured["check_psnr"] > measured["check_psnr_input"] + 0.3


def test_the_default_restorer_is_shipped():
    from jaxdeblur.restoration import DEFAULT_MODEL

    assert DEFAULT_MODEL in models.available()


def test_init_weights_start_from_other_weights(tiny_weights):
    """config.init_weights: the initial state holds those weights (a fine-tuning), only for the same network."""
    import dataclasses

    import jax
    from flax import nnx

    folder = str(tiny_weights / "nafnet" / "tiny")
    loaded = models.load("nafnet-tiny", root=tiny_weights)
    config = dataclasses.replace(nafnet.TINY, init_weights=folder)
    def params(model):
        return jax.tree.leaves(nnx.state(model, nnx.Param))

    started = nafnet.make_task(config).init_model(nnx.Rngs(123))  # another seed: a fresh net would differ
    for a, b in zip(params(started), params(loaded.model)):
        np.testing.assert_array_equal(a, b)
    fresh = nafnet.make_task(nafnet.TINY).init_model(nnx.Rngs(123))
    assert any(not np.array_equal(a, b) for a, b in zip(params(fresh), params(loaded.model)))
    wider = dataclasses.replace(config, width=8)
    with pytest.raises(ValueError, match="another network"):
        nafnet.make_task(wider).init_model(nnx.Rngs(0))
