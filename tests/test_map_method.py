"""method="map" through `jaxdeblur.deblur` / `deblur_batch` and `jaxdeblur deblur --method map`.

Tiny sizes: 32 x 32 images, a 5 x 5 kernel, the estimator's "tiny" preset
(one compiled estimation per image shape, shared by the tests here).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import jaxdeblur
from jaxdeblur.api import plan_batch
from jaxdeblur.cli import app
from jaxdeblur.deconv import hyper_laplacian
from jaxdeblur.estimate import map_deblur
from jaxdeblur.forward import blur
from jaxdeblur.io import save_image
from jaxdeblur.kernels import motion

SIZE, K = 32, 5


def _blurred(seed=0):
    rng = np.random.default_rng(seed)
    x = np.full((SIZE, SIZE), 0.2, np.float32)
    for _ in range(6):
        r, c, h, w = rng.integers(0, SIZE - 8, 2).tolist() + rng.integers(4, 12, 2).tolist()
        x[r:r + h, c:c + w] = rng.uniform(0.3, 0.9)
    k = motion(jax.random.key(seed), K)
    y = np.asarray(blur(jnp.asarray(x), k, "same")) + 0.003 * rng.standard_normal(x.shape)
    return np.clip(y, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def grey():
    return _blurred(0)


@pytest.fixture(scope="module")
def colour(grey):
    return np.stack([grey, 0.8 * grey + 0.1, 0.5 * grey + 0.3], axis=-1).astype(np.float32)


def test_map_routes_to_the_estimator_and_returns_kernel_and_restored_image(grey):
    res = jaxdeblur.deblur(grey, K, method="map", preset="tiny")
    ref = map_deblur(grey, K, preset="tiny")
    np.testing.assert_allclose(res.kernel, ref.kernel, atol=1e-6)
    np.testing.assert_allclose(res.image, ref.image, atol=1e-6)
    assert res.deconvolved is res.image and res.image.shape == grey.shape
    assert res.method == "map" and res.kernel.shape == (K, K) and abs(res.kernel.sum() - 1) < 1e-4


def test_colour_kernel_from_luma_every_channel_deconvolved_and_batch_equals_single(colour, grey):
    res = jaxdeblur.deblur_batch([colour, grey], K, method="map", preset="tiny")
    assert res[0].image.shape == colour.shape and res[1].image.shape == grey.shape
    ref = map_deblur(colour, K, preset="tiny")
    # the same kernel up to rounding (1e-6 apart under the suite's fast-compile XLA options; equal under the defaults)
    np.testing.assert_allclose(res[0].kernel, ref.kernel, atol=1e-5)
    np.testing.assert_allclose(res[0].image[..., 2], np.asarray(hyper_laplacian(colour[..., 2], ref.kernel)),
                               atol=1e-5)


def test_region_estimates_on_the_window_and_deconvolves_the_whole_image(colour):
    res = jaxdeblur.deblur(colour, K, method="map", preset="tiny", region=(0, 0, 24, 24))
    assert res.region == (0, 0, 24, 24) and res.image.shape == (24, 24, 3)
    assert res.deconvolved.shape == colour.shape


def test_preset_auto_picks_the_estimators_default_and_bad_input_is_refused(grey):
    plan = plan_batch([grey], K, "map")
    assert plan.preset == "default" and plan.config == jaxdeblur.estimate.PRESETS["default"]
    assert plan_batch([grey], K, "map", iterations=2).config.iterations == 2
    with pytest.raises(ValueError, match="color"):
        plan_batch([grey], K, "map", color="rgb")
    with pytest.raises(ValueError, match="unknown preset"):
        plan_batch([grey], K, "map", preset="nope")
    with pytest.raises(ValueError, match="flat"):
        jaxdeblur.deblur(np.full((SIZE, SIZE), 0.5, np.float32), K, method="map", preset="tiny")


def test_cli_method_map_writes_unique_files_and_refuses_overwrite(tmp_path, grey, colour):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    save_image(tmp_path / "a" / "img.png", colour)
    save_image(tmp_path / "b" / "img.png", grey)
    args = ["deblur", tmp_path / "a" / "img.png", tmp_path / "b" / "img.png", "-o", tmp_path / "out", "-k", K,
            "--method", "map", "--preset", "tiny"]
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "out" / "a_img_deconvolved.png") as img:
        assert (img.mode, img.size) == ("RGB", (SIZE, SIZE))
    record = json.loads((tmp_path / "out" / "b_img.json").read_text())
    assert record["method"] == "map" and record["kernel_size"] == [K, K]
    assert not (tmp_path / "out" / "checkpoints").exists()
    again = CliRunner().invoke(app, [str(a) for a in args])
    lines = again.output.strip().splitlines()
    assert again.exit_code == 2 and len(lines) == 1 and "already exists" in lines[0]
