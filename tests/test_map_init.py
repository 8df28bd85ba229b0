"""init="map": a DIP method starts from the MAP estimator's kernel and non-blind image (jaxdeblur.methods.map_init).

Runs stop right after the fit (config iterations=0: the outcome is the fitted generators' estimate), on
24 x 24 images with a 5 x 5 kernel, the tiny DIP presets and the MAP estimator's weight-free "tiny" config
(hyper-Laplacian non-blind step). The selfdeblur runs (a batch of two, API and CLI) share one compiled fit.
"""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

import jaxdeblur
from jaxdeblur.api import plan_batch
from jaxdeblur.cli import app
from jaxdeblur.color import rgb_to_ycbcr
from jaxdeblur.engine.fitting import FitSettings
from jaxdeblur.engine.multiscale import ScaleSize, Tolerances, WarmStart, _warm_targets, resample_kernels, \
    resample_latents
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.estimate import PRESETS, map_deblur_batch
from jaxdeblur.forward import blur
from jaxdeblur.io import save_image
from jaxdeblur.kernels import motion
from jaxdeblur.methods.map_init import MapInitConfig, init_config, latent_target
from jaxdeblur.metrics import kernel_similarity

SIZE, K = 24, 5
QUIET = EngineOptions(progress=False, chunk=10)
MAP_TINY = {"map": PRESETS["tiny"]}
START = {"iterations": 0}  # stop after the fit
TOL = MapInitConfig()


def blurred(seed=0):
    """A piecewise-constant scene blurred by a random 5 x 5 motion kernel, (SIZE, SIZE) in [0, 1]."""
    rng = np.random.default_rng(seed)
    x = np.full((SIZE + K - 1, SIZE + K - 1), 0.2, np.float32)
    for _ in range(6):
        r, c, h, w = rng.integers(0, SIZE - 4, 2).tolist() + rng.integers(4, 12, 2).tolist()
        x[r:r + h, c:c + w] = rng.uniform(0.3, 0.9)
    y = np.asarray(blur(jnp.asarray(x), motion(jax.random.key(seed), K), "valid"))
    return np.clip(y + 0.003 * rng.standard_normal(y.shape), 0, 1).astype(np.float32)


def colour(grey):
    return np.stack([grey, 0.8 * grey + 0.1, 0.5 * grey + 0.3], axis=-1).astype(np.float32)


def luma(x):
    return x[..., None] if x.ndim == 2 else np.asarray(rgb_to_ycbcr(x))[..., :1]


def similarity(a, b):
    return float(kernel_similarity(a, b))


@pytest.fixture(scope="module")
def started():
    """A grey and a colour image, one batch of selfdeblur runs started from MAP and stopped after the fit."""
    ys = [blurred(0), colour(blurred(1))]
    results = jaxdeblur.deblur_batch(ys, K, "selfdeblur", preset="tiny", seeds=[3, 4], config=START, init="map",
                                     init_config=MAP_TINY, options=QUIET)
    return ys, results


# ---------------------------------------------------------------- no DIP compiling


@pytest.mark.parametrize("kwargs, error, match", [
    ({"init": "mpa"}, ValueError, r"init must be None .*\['map'\], got 'mpa'"),
    ({"init": "MAP"}, ValueError, "init must be"),
    ({"init": 1}, ValueError, "init must be"),
    ({"init_config": {"fit_max_iterations": 5}}, ValueError, "only used with init='map'"),
    ({"init": "map", "init_config": {"fit_max_iterations": -1}}, ValueError, "fit_max_iterations"),
    ({"init": "map", "init_config": {"fit_lr_kernel": 0}}, ValueError, "learning rates must be > 0"),
    ({"init": "map", "init_config": {"no_such": 1}}, ValueError, r"unknown config field\(s\) \['no_such'\]"),
    ({"init": "map", "init_config": {"map.no_such": 1}}, ValueError, "no_such"),
    ({"init": "map", "init_config": "fast"}, TypeError, "MapInitConfig or a dict"),
])
def test_bad_init_is_refused_in_one_line_before_anything_runs(kwargs, error, match):
    with pytest.raises(error, match=match) as caught:
        plan_batch([blurred()], K, "selfdeblur", preset="tiny", **kwargs)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("method", ["map", "kernel_space"])
def test_init_map_is_for_the_double_dip_methods(method):
    with pytest.raises(ValueError, match=f"method '{method}' cannot start from it") as caught:
        plan_batch([blurred()], K, method, preset="tiny", init="map")
    assert "\n" not in str(caught.value)


def test_init_config_overrides_and_the_stamp():
    cfg = init_config({"map.nonblind": "hyper_laplacian", "map.iterations": "3", "fit_max_iterations": "50"})
    assert cfg.map.nonblind == "hyper_laplacian" and cfg.map.iterations == 3 and cfg.fit_max_iterations == 50
    assert cfg.map.kernel_reg == PRESETS["default"].kernel_reg  # the rest: MAP's tuned default
    plain = plan_batch([blurred()], K, "selfdeblur", preset="tiny")
    planned = plan_batch([blurred()], K, "selfdeblur", preset="tiny", init="map", init_config=cfg)
    assert "init" not in plain.groups[0].stamp  # runs without init keep their stamps (and checkpoint folders)
    assert planned.groups[0].stamp["init"]["method"] == "map"
    assert planned.groups[0].stamp["init"]["config"]["fit_max_iterations"] == 50
    assert planned.groups[0].stamp_id != plain.groups[0].stamp_id


def test_latent_target_and_warm_start_resampled_to_a_coarser_first_scale():
    image = np.random.default_rng(0).uniform(size=(6, 7, 1)).astype(np.float32)
    latent = latent_target(image, (10, 11, 1), (2, 2))
    np.testing.assert_array_equal(latent[2:8, 2:9], image)
    np.testing.assert_array_equal(latent[0, 2:9], image[0])  # margins: the edge values
    np.testing.assert_array_equal(latent[9, 2:9], image[-1])
    kernel = np.asarray(motion(jax.random.key(0), 5))[None]
    full, coarse = ScaleSize(1.0, (16, 16), (5, 5)), ScaleSize(0.5, (8, 8), (3, 3))
    latents = np.random.default_rng(1).uniform(size=(1, 20, 20, 1)).astype(np.float32)
    warm = WarmStart(latents, kernel, FitSettings(1, (("image", 1e-2), ("kernel", 1e-3))), Tolerances(0, 0))
    image, k = _warm_targets(warm, 1, full, coarse)
    assert image.shape == (1, 10, 10, 1) and k.shape == (1, 3, 3)
    np.testing.assert_allclose(image, resample_latents(latents, full, coarse))
    np.testing.assert_allclose(k, resample_kernels(kernel, full, coarse))
    same_image, same_k = _warm_targets(warm, 1, full, full)
    assert np.array_equal(same_image, latents) and np.array_equal(same_k, kernel)
    for bad in (WarmStart(latents[:, :-1], kernel, warm.fit, warm.tolerances),
                WarmStart(latents, kernel[:, :-1], warm.fit, warm.tolerances)):
        with pytest.raises(ValueError, match="must be finite and match"):
            _warm_targets(bad, 1, full, full)


# ---------------------------------------------------------------- runs


def test_selfdeblur_starts_at_maps_kernel_and_image(started):
    ys, results = started
    maps = map_deblur_batch([luma(y) for y in ys], K, preset="tiny")
    oy = ox = (K - 1) // 2
    for r, m in zip(results, maps):
        assert r.init == "map" and r.stamp["init"]["method"] == "map"
        np.testing.assert_allclose(r.extras["init_kernel"], m.kernel, atol=1e-5)  # MAP ran on the fitted luma
        np.testing.assert_allclose(r.extras["init_image"], m.image.reshape(SIZE, SIZE, 1), atol=1e-5)
        assert r.timings["iterations_run"] == 0 and r.timings["fit_s"] > 0 and r.timings["init_s"] > 0
        # the kernel generator now makes MAP's kernel ...
        assert similarity(r.kernel, m.kernel) > 0.99
        assert r.extras["fit_rmse_kernel"][0] <= TOL.fit_kernel_rmse * m.kernel.max()
        # ... and the image generator MAP's non-blind image (the fit's RMSE is over the whole latent, the
        # crop's sum of squares is part of it)
        assert r.extras["fit_rmse_image"][0] <= TOL.fit_image_rmse
        crop = r.latent[oy:oy + SIZE, ox:ox + SIZE]
        bound = TOL.fit_image_rmse * math.sqrt(r.latent.size / crop.size)
        assert np.sqrt(np.mean((crop - np.clip(m.image.reshape(crop.shape), 0, 1)) ** 2)) <= bound
        assert (r.extras["fit_iterations_kernel"][0] > 0) and (r.extras["fit_iterations_image"][0] > 0)
    # a random start (the same seeds, the same compiled programs) is not there already
    plain = jaxdeblur.deblur_batch(ys, K, "selfdeblur", preset="tiny", seeds=[3, 4], config=START, options=QUIET)
    for r, m in zip(plain, maps):
        assert r.init is None and similarity(r.kernel, m.kernel) < 0.95


@pytest.mark.slow  # its own fit programs (~15-30 s to compile on 2 cores); selfdeblur's runs by default
def test_uncertainty_fits_its_refinement_net_to_maps_kernel():
    y = blurred(0)
    # the kernel branch is what differs (attention off: a smaller program to compile)
    r = jaxdeblur.deblur(y, K, "uncertainty", preset="tiny", seed=3, config={**START, "attention": False},
                         init="map", init_config=MAP_TINY, options=QUIET)
    assert r.init == "map" and similarity(r.kernel, r.extras["init_kernel"]) > 0.99
    assert r.extras["fit_iterations_kernel"][0] > 0 and "kernel_variance" in r.extras


@pytest.mark.slow  # its own fit programs (~15-30 s to compile on 2 cores); selfdeblur's runs by default
def test_kotera_starts_from_map_instead_of_its_gaussian():
    y = blurred(0)
    r = jaxdeblur.deblur(y, K, "kotera", preset="tiny", seed=3, config={**START, "multiscale": False}, init="map",
                         init_config=MAP_TINY, options=QUIET)
    assert r.init == "map" and similarity(r.kernel, r.extras["init_kernel"]) > 0.99
    # the Gaussian start fits the kernel only; MAP's fits the image too
    assert r.extras["fit_iterations_image"].shape == (1,) and r.extras["fit_iterations_image"][0] > 0


@pytest.mark.slow  # the CLI path compiles its own programs (~14 s); the API tests above stay default
@pytest.mark.filterwarnings("ignore:No artists with labels")  # the figure's loss plot of a 0-iteration run
def test_cli_init_map_and_the_json_record(tmp_path, started):
    """Two inputs: a batch of two like `started` (its compiled programs; the PNGs round the inputs to 8 bits)."""
    ys, results = started
    for name, y in zip(("a.png", "b.png"), ys):
        save_image(tmp_path / name, y)
    tiny = ["--init-set", "map.iterations=2", "--init-set", "map.splitting_rate=8", "--init-set",
            "map.kernel_cg_iterations=10", "--init-set", "map.nonblind=hyper_laplacian"]
    common = ["deblur", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out", "-k", K, "--method",
              "selfdeblur", "--preset", "tiny", "--seed", 3, "--set", "iterations=0"]
    res = CliRunner().invoke(app, [str(a) for a in common + ["--init", "map"] + tiny])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "out" / "a.json").read_text())
    assert record["init"] == "map" and record["stamp"]["init"]["config"]["map"]["nonblind"] == "hyper_laplacian"
    assert record["fits"]["fit_iterations_kernel"][0] > 0 and record["timings"]["init_s"] > 0
    assert record["fits"]["fit_rmse_kernel"][0] <= TOL.fit_kernel_rmse * float(np.max(results[0].extras["init_kernel"])) * 1.5
    for extra, match in ((["--init", "mapp"], "init must be"), (tiny[:2], "only used with init='map'")):
        bad = CliRunner().invoke(app, [str(a) for a in common + extra + ["-o", tmp_path / "bad"]])
        lines = bad.output.strip().splitlines()
        assert bad.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], \
            bad.output
