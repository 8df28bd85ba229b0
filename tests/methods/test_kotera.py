"""Kotera et al. on the DIP engine: scale plans, fitting, loss schedule, switches, batching, API and CLI.

Compiling is what costs on a CPU (each scale is its own program), so the
runs share one small network config and one pipeline (a single run; the
fitting and CLI tests reuse its compiled programs; the batch of two of the
batch == single test, opt-in with --runslow, is a second). Two scales with factor 2 at run time (so the kernel
floor of 7 is hit); the paper's three sqrt(2) scales are checked on the plan.
"""

import dataclasses
import json
import math

import jax
import numpy as np
import pytest

import jaxdeblur
from jaxdeblur.engine.fitting import fit_generators
from jaxdeblur.engine.multiscale import resample_kernels, resample_latents, scale_plan
from jaxdeblur.engine.runner import EngineOptions, init_batch
from jaxdeblur.methods import kotera as kotera_module
from jaxdeblur.methods.kotera import NEVER, Kotera

QUIET = EngineOptions(progress=False, chunk=10, strategy="map")
SMALL = dict(channels_down=(4,), channels_up=(4,), channels_skip=(2,), nonlocal_levels=(), input_channels=2,
             kernel_code=8, kernel_hidden=16, scales=2, scale_factor=2.0)
SIZE, K = 32, 9


def blurred(seed):
    rng = np.random.default_rng(seed)
    sharp = rng.uniform(0.1, 0.9, (SIZE + K - 1, SIZE + K - 1)).astype(np.float32)
    return np.asarray(jaxdeblur.blur(sharp, np.ones((K, K), np.float32) / K**2, "valid"))


@pytest.fixture(scope="module")
def batch():
    ys = [blurred(0), blurred(1)]
    return ys, jaxdeblur.deblur_batch(ys, K, "kotera", preset="tiny", seeds=[5, 6], config=SMALL, options=QUIET)


@pytest.fixture(scope="module")
def single():
    return jaxdeblur.deblur(blurred(0), K, "kotera", preset="tiny", seed=5, config=SMALL, options=QUIET)


# ---------------------------------------------------------------- no compiling


def test_paper_plan_three_scales_kernel_floor():
    plan = scale_plan((256, 256), (15, 15), 3, math.sqrt(2), 7)
    assert [p.image_size for p in plan] == [(128, 128), (181, 181), (256, 256)]
    assert [p.kernel_size for p in plan] == [(7, 7), (11, 11), (15, 15)]
    assert [p.kernel_size for p in scale_plan((64, 64), (9, 9), 3, math.sqrt(2), 7)] == [(7, 7), (7, 7), (9, 9)]
    assert [p.kernel_size for p in scale_plan((64, 64), (5, 5), 3, math.sqrt(2), 7)] == [(5, 5)] * 3  # never above kh
    with pytest.raises(ValueError, match="larger than the image"):
        scale_plan((12, 12), (11, 11), 3, math.sqrt(2), 7)


def test_paper_preset_schedule():
    cfg = Kotera.presets["paper"]
    stages = Kotera().stages(cfg, (64, 64), (15, 15))
    assert [s.iterations for s in stages] == [500, 500, 5000]
    final, coarse = stages[-1].cfg, stages[0].cfg
    assert (final.ssim_from, final.tv_weight, final.tv_from, final.kernel_l2_weight, final.kernel_l2_until) == \
        (2000, 0.01, 2000, 0.1, 2000)
    assert final.lr_milestones == (2000, 3000, 4000)
    # coarse scales: the pre-switch phase throughout, constant learning rates
    assert (coarse.ssim_from, coarse.tv_weight, coarse.kernel_l2_weight, coarse.kernel_l2_until, coarse.lr_milestones) \
        == (NEVER, 0.0, 0.1, NEVER, ())
    assert cfg.fit_image_rmse == pytest.approx(10 / 255)


@pytest.mark.parametrize("switch", ["multiscale", "init", "use_tv", "use_kernel_l2", "ssim_switch"])
def test_each_switch_alone(switch, monkeypatch):
    """Each switch changes only its piece of what the pipeline is asked to run."""
    calls = []

    def record(method, stages, ys, keys, **kw):
        calls.append((stages, kw))
        raise StopIteration

    monkeypatch.setattr(kotera_module, "run_scales", record)
    cfg = Kotera.presets["paper"]
    ys = np.zeros((1, 64, 64, 1), np.float32)
    for c in (cfg, dataclasses.replace(cfg, **{switch: False})):
        with pytest.raises(StopIteration):
            Kotera().run(c, ys, (15, 15), jax.random.key(0)[None], QUIET)
    (on, kw_on), (off, kw_off) = calls
    changed = {name for name in ("stages", "init", "transfer", "final") if {
        "stages": len(on) != len(off),
        "init": (kw_on["initial_kernels"] is None) != (kw_off["initial_kernels"] is None),
        "transfer": kw_on["transfer"] != kw_off["transfer"],
        "final": on[-1].cfg != off[-1].cfg}[name]}
    if switch == "multiscale":
        assert len(off) == 1 and not kw_off["transfer"] and changed >= {"stages", "transfer"}
        assert kw_off["initial_kernels"].shape[1:] == (15, 15)  # init still on: the only scale is initialised
    elif switch == "init":
        assert changed == {"init"} and kw_off["initial_kernels"] is None
    else:
        assert changed == {"final"}
        a, b = on[-1].cfg, off[-1].cfg
        diff = {f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)}
        assert diff == {"use_tv": {"tv_weight"}, "use_kernel_l2": {"kernel_l2_weight"},
                        "ssim_switch": {"ssim_from"}}[switch]
        if switch == "use_kernel_l2":
            assert off[0].cfg.kernel_l2_weight == 0.0


def test_initial_gaussian_and_resampling():
    k0 = Kotera().initial_kernel(Kotera.presets["paper"], (7, 7))
    np.testing.assert_allclose(k0, jaxdeblur.kernels.gaussian(7, 3.0), rtol=1e-6)
    src, dst = scale_plan((32, 32), (9, 9), 2, 2.0, 7)
    lat = np.full((2, 16 + 6, 16 + 6, 1), 0.3, np.float32)
    up = resample_latents(lat, src, dst)
    assert up.shape == (2, 40, 40, 1)
    np.testing.assert_allclose(up, 0.3, atol=1e-6)  # constants stay constant, margins included
    k = resample_kernels(np.broadcast_to(k0, (2, 7, 7)), src, dst)
    assert k.shape == (2, 9, 9) and (k >= 0).all()
    np.testing.assert_allclose(k.sum(axis=(1, 2)), 1, rtol=1e-5)
    assert np.unravel_index(k[0].argmax(), k[0].shape) == (4, 4)


def test_bad_config_is_refused():
    ys = np.zeros((1, 32, 32, 1), np.float32)
    with pytest.raises(ValueError, match="init_sigma"):
        Kotera().run(dataclasses.replace(Kotera.presets["tiny"], init_sigma=0.0), ys, (7, 7),
                     jax.random.key(0)[None], QUIET)
    with pytest.raises(TypeError, match="KoteraConfig"):
        Kotera().run(jaxdeblur.methods.DIPConfig(), ys, (7, 7), jax.random.key(0)[None], QUIET)


# ---------------------------------------------------------------- runs


def test_pipeline_sizes_schedule_and_fits(single):
    for y, r in zip([blurred(0)], [single]):
        assert r.image.shape == y.shape and r.kernel.shape == (K, K) and r.latent.shape == (40, 40, 1)
        np.testing.assert_allclose(r.kernel.sum(), 1, rtol=1e-5)
        # scale 0: 16x16 image, kernel 5 -> floor 7; scale 1 = input size, kernel 9
        assert r.extras["scale0_kernel"].shape == (7, 7) and r.extras["scale0_latent"].shape == (22, 22, 1)
        assert r.extras["scale0_loss"].shape == (10,)
        h = r.history
        assert set(h) == {"loss", "data", "tv", "kernel_l2"} and h["loss"].shape == (20,)
        # tiny: every switch at iteration 10 of the last scale
        assert (h["kernel_l2"][:10] > 0).all() and (h["kernel_l2"][10:] == 0).all()
        assert (h["tv"][:10] == 0).all() and (h["tv"][10:] > 0).all()
        assert h["data"][9] < 0.05 < h["data"][10]  # MSE -> 1 - SSIM
        np.testing.assert_allclose(h["loss"], h["data"] + h["tv"] + h["kernel_l2"], rtol=1e-5)
        # fits: scale 0 only the kernel (to the Gaussian), scale 1 both
        fi, fk = r.extras["fit_iterations_image"], r.extras["fit_iterations_kernel"]
        assert fi[0] == 0 and np.isnan(r.extras["fit_rmse_image"][0]) and fk[0] >= 0
        cap, cfg = Kotera.presets["tiny"].fit_max_iterations, r.config
        rmse = r.extras["fit_rmse_image"][1]
        assert rmse <= cfg.fit_image_rmse or fi[1] == cap
        assert r.timings["scales"] == 2 and r.timings["iterations_run"] == 30


@pytest.mark.slow  # the engine's batch == single is in the default suite (tests/engine); run with --runslow
def test_batch_equals_single_map(batch, single):
    assert np.abs(batch[1][0].image - batch[1][1].image).max() > 1e-3
    b = batch[1][0]
    for k in ("scale0_kernel", "scale0_latent", "fit_rmse_kernel", "fit_rmse_image", "fit_iterations_image"):
        np.testing.assert_allclose(single.extras[k], b.extras[k], atol=1e-6, err_msg=k)
    np.testing.assert_allclose(single.image, b.image, atol=1e-6)
    np.testing.assert_allclose(single.kernel, b.kernel, atol=1e-7)
    np.testing.assert_allclose(single.history["loss"], b.history["loss"], rtol=1e-5)


def test_fit_reaches_target_or_stops_at_cap(single):
    """Reuses the single run's compiled last-scale programs (same config, shapes and R)."""
    method, cfg = Kotera(), Kotera.presets["tiny"]
    cfg = dataclasses.replace(cfg, **SMALL)
    stage = method.stages(cfg, (SIZE, SIZE), (K, K))[-1]
    ys = blurred(0)[None, ..., None]
    nets, state = init_batch(method, stage.cfg, ys, (K, K), jax.random.key(1)[None], QUIET)
    settings, _ = method.fit_settings(cfg)
    targets = {"image": single.latent[None], "kernel": single.kernel[None]}

    def fit(tol_image, tol_kernel):
        return fit_generators(method, stage.cfg, nets, state, targets, {"image": tol_image, "kernel": tol_kernel},
                              settings, options=QUIET)[1]

    start = fit(1e9, 1e9)  # nothing to do: no update, RMSE of the random networks
    assert start.iterations == {"image": 0, "kernel": 0}
    capped = fit(0.0, 0.0)  # unreachable: stops at the cap
    assert capped.iterations == {"image": 20, "kernel": 20} and not capped.reached["image"]
    assert capped.rmse["image"] < start.rmse["image"] and capped.rmse["kernel"] < start.rmse["kernel"]
    target = 0.5 * (start.rmse["image"] + capped.rmse["image"])
    reached = fit(target, 0.0)
    assert reached.reached["image"] and reached.rmse["image"] <= target
    assert 0 < reached.iterations["image"] < 20 and reached.iterations["kernel"] == 20  # each network stops alone


def test_cli_runs_kotera(tmp_path, single):
    """Same shapes and config as `single`: the compiled programs are reused."""
    from typer.testing import CliRunner

    from jaxdeblur.cli import app
    from jaxdeblur.io import save_image

    save_image(tmp_path / "in.png", blurred(0))
    sets = [x for k, v in SMALL.items() for x in ("--set", f"{k}={json.dumps(v)}")]
    res = CliRunner().invoke(app, ["deblur", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "-k", str(K),
                                   "--method", "kotera", "--preset", "tiny", "--seed", "5", *sets])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "out" / "in.json").read_text())
    assert record["method"] == "kotera" and record["config"]["scales"] == 2
    assert len(record["history"]["loss"]) == 20
    assert [p.name for p in (tmp_path / "out" / "checkpoints").glob("*/scale0")] == ["scale0"]  # one run folder
