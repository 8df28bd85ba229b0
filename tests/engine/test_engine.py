"""The shared DIP engine through SelfDeblur's tiny preset: batching, seeds, resume, guards.

Runs use 24 x 24 images, a 5 x 5 kernel and chunks of 10 iterations (the other size: 20 x 20 with a 3 x 3
kernel), as tests/test_api.py, tests/test_cli.py and tests/engine/test_checkpoint.py do, so the suite's
compilation cache compiles each of their programs once.
"""

import dataclasses
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdeblur
from tests.conftest import run_script
from jaxdeblur.engine import checkpoint as checkpoint_module
from jaxdeblur.engine.runner import EngineOptions, NonFiniteLossError, run_batch
from jaxdeblur.methods import selfdeblur

QUIET = EngineOptions(progress=False, chunk=10)


def blurred_pair(seed=0, size=24, k=5):
    rng = np.random.default_rng(seed)
    sharp = rng.uniform(0.1, 0.9, (size + k - 1, size + k - 1)).astype(np.float32)
    kernel = np.ones((k, k), np.float32) / k**2
    return np.asarray(jaxdeblur.blur(sharp, kernel, "valid")), kernel


def test_single_run_shapes_and_history():
    y, _ = blurred_pair()
    r = jaxdeblur.deblur(y, 5, preset="tiny", seed=1, options=QUIET)
    assert r.image.shape == y.shape and r.image.dtype == np.float32
    assert r.kernel.shape == (5, 5)
    np.testing.assert_allclose(r.kernel.sum(), 1.0, rtol=1e-5)
    assert (r.kernel >= 0).all() and 0 <= r.image.min() and r.image.max() <= 1
    assert r.latent.shape == (28, 28, 1)
    assert set(r.history) == {"loss", "data"} and r.history["loss"].shape == (20,)
    assert np.isfinite(r.history["loss"]).all()
    # MSE before ssim_from (10), 1-SSIM after: the data term jumps at the switch.
    assert r.history["loss"][9] < 0.2 and r.history["loss"][10] > r.history["loss"][9]


def test_loss_decreases_in_mse_phase():
    y, _ = blurred_pair()
    r = jaxdeblur.deblur(y, 5, preset="tiny", config={"iterations": 10}, options=QUIET)
    assert r.history["data"][-1] < r.history["data"][0]


def test_same_seed_same_result_other_seed_differs():
    y, _ = blurred_pair()
    a = jaxdeblur.deblur(y, 5, preset="tiny", seed=3, options=QUIET)
    b = jaxdeblur.deblur(y, 5, preset="tiny", seed=3, options=QUIET)
    c = jaxdeblur.deblur(y, 5, preset="tiny", seed=4, options=QUIET)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.kernel, b.kernel)
    assert np.abs(a.image - c.image).max() > 1e-4


def test_batch_equals_single_map():
    """The CPU default: each run of a batch is computed as it would be alone, up to float rounding.

    10 iterations (the MSE phase; the program of test_loss_decreases_in_mse_phase): XLA's default emitters give
    bit-equal runs; the suite's fast-compile options (tests/conftest.py) round the batched loop's body
    differently, by ~1e-5 after 10 Adam steps, and the SSIM phase grows that. Another run's seed or data would
    be ~1e-1 off.
    """
    ys = [blurred_pair(s)[0] for s in range(2)]
    opts = dataclasses.replace(QUIET, strategy="map")
    config = {"iterations": 10}
    batch = jaxdeblur.deblur_batch(ys, 5, preset="tiny", seeds=[7, 8], config=config, options=opts)
    for i, y in enumerate(ys):
        single = jaxdeblur.deblur(y, 5, preset="tiny", seed=7 + i, config=config, options=opts)
        np.testing.assert_allclose(batch[i].image, single.image, atol=1e-4)
        np.testing.assert_allclose(batch[i].kernel, single.kernel, atol=1e-6)
        np.testing.assert_allclose(batch[i].history["loss"], single.history["loss"], rtol=1e-5, atol=1e-7)
    assert np.abs(batch[0].image - batch[1].image).max() > 1e-2


@pytest.mark.slow  # vmap is the accelerators' strategy, not the CPU's: run with --runslow (make test-all)
def test_batch_equals_single_vmap_to_float_tolerance():
    """vmap turns the per-run convolutions into one grouped convolution, which rounds differently.

    The difference starts at float rounding (under 1e-6 before any step) and
    Adam's first, sign-like steps amplify it (measured on the tiny preset:
    1e-4 after 1 step, 3e-2 after 20), as between any two convolution
    algorithms; so the runs are compared over the first steps.
    """
    ys = [blurred_pair(s)[0] for s in range(2)]
    opts = dataclasses.replace(QUIET, strategy="vmap")
    for iterations, atol in ((0, 5e-6), (2, 2e-3)):
        raw = {"iterations": iterations}  # the raw field: 0 runs no step
        batch = jaxdeblur.deblur_batch(ys, 5, preset="tiny", seeds=[7, 8], config=raw, options=opts)
        for i, y in enumerate(ys):  # alone, with the CPU default (map: the programs the other tests compile)
            single = jaxdeblur.deblur(y, 5, preset="tiny", seed=7 + i, config=raw, options=QUIET)
            np.testing.assert_allclose(batch[i].image, single.image, atol=atol)
            np.testing.assert_allclose(batch[i].kernel, single.kernel, atol=1e-6)
            np.testing.assert_allclose(batch[i].history["loss"], single.history["loss"], rtol=1e-4)


@pytest.mark.parametrize("method", [
    "toy",
    pytest.param("selfdeblur", marks=pytest.mark.slow(
        reason="compiles SelfDeblur's networks for two groups (~18 s); the grouping is the engine's, the same for "
               "every method: the toy method checks it by default")),
])
def test_mixed_sizes_are_grouped_and_each_group_checkpoints_apart(tmp_path, monkeypatch, method):
    from jaxdeblur.methods import METHODS
    from tests.engine.toy_method import ToyMethod

    monkeypatch.setitem(METHODS, ToyMethod.name, ToyMethod())
    y1, y3 = (blurred_pair(s)[0] for s in (0, 2))
    y2, _ = blurred_pair(1, size=20)
    opts = dataclasses.replace(QUIET, checkpoint_dir=str(tmp_path), checkpoint_every=10)
    out = jaxdeblur.deblur_batch([y1, y2, y3], [5, 3, 5], method, preset="tiny", seeds=[0, 1, 2], options=opts)
    assert [r.kernel.shape for r in out] == [(5, 5), (3, 3), (5, 5)]
    assert [r.image.shape for r in out] == [(24, 24), (20, 20), (24, 24)]
    alone = jaxdeblur.deblur(y2, 3, method, preset="tiny", seed=1, options=QUIET)
    np.testing.assert_allclose(out[1].image, alone.image, atol=2e-5)
    assert len([p for p in tmp_path.iterdir() if (p / "run.json").is_file()]) == 2  # one folder per group
    first = [out[0], out[2], out[1]]
    again = jaxdeblur.deblur_batch([y1, y3, y2], [5, 5, 3], method, preset="tiny", seeds=[0, 2, 1],
                                   options=dataclasses.replace(opts, resume=True))
    for a, b in zip(first, again):  # each group found its own finished run
        assert b.timings["iterations_run"] == 0
        np.testing.assert_array_equal(a.image, b.image)


def test_resume_after_interruption_equals_uninterrupted(tmp_path, monkeypatch):
    y, _ = blurred_pair()
    straight = jaxdeblur.deblur(y, 5, preset="tiny", seed=5, options=QUIET)

    ckpt = str(tmp_path / "ckpt")
    opts = dataclasses.replace(QUIET, checkpoint_dir=ckpt, checkpoint_every=10)
    real_save = checkpoint_module.RunCheckpointer.save

    def save_then_die(self, step, *args, **kwargs):
        real_save(self, step, *args, **kwargs)
        raise KeyboardInterrupt  # the process is killed right after the first checkpoint

    monkeypatch.setattr(checkpoint_module.RunCheckpointer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        jaxdeblur.deblur(y, 5, preset="tiny", seed=5, options=opts)
    monkeypatch.setattr(checkpoint_module.RunCheckpointer, "save", real_save)
    assert checkpoint_module.newest_step(ckpt) == 10  # in the run's own folder under ckpt

    resumed = jaxdeblur.deblur(y, 5, preset="tiny", seed=5, options=dataclasses.replace(opts, resume=True))
    np.testing.assert_allclose(resumed.image, straight.image, atol=1e-6)
    np.testing.assert_allclose(resumed.kernel, straight.kernel, atol=1e-7)
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], rtol=1e-5)
    assert resumed.timings["iterations_run"] == 10


def test_resume_refuses_another_job(tmp_path):
    """The engine never resumes a folder holding another job's steps (the API keeps one folder per run)."""
    y, _ = blurred_pair()
    method = selfdeblur.SelfDeblur()
    cfg = method.presets["tiny"]
    opts = dataclasses.replace(QUIET, checkpoint_dir=str(tmp_path), checkpoint_every=10)
    keys = jax.random.key(0)[None]
    run_batch(method, cfg, y[None, ..., None], (5, 5), keys, iterations=cfg.iterations, options=opts)
    with pytest.raises(ValueError, match="another job"):
        run_batch(method, dataclasses.replace(cfg, lr_image=0.02), y[None, ..., None], (5, 5), keys,
                  iterations=cfg.iterations, options=dataclasses.replace(opts, resume=True))


def test_color_paths():
    y, _ = blurred_pair()
    rgb = np.stack([y, y * 0.9, y * 0.8], axis=-1)
    luma = jaxdeblur.deblur(rgb, 5, preset="tiny", color="y", options=QUIET)
    assert luma.image.shape == rgb.shape and luma.latent.shape[-1] == 1
    full = jaxdeblur.deblur(rgb, 5, preset="tiny", color="rgb", options=QUIET)
    assert full.image.shape == rgb.shape and full.latent.shape[-1] == 3
    assert full.kernel.shape == (5, 5)


@pytest.mark.parametrize("bad, kernel_size, error, match", [
    (np.zeros((8, 8), np.float32), 9, ValueError, "larger than the image"),
    (np.full((16, 16), np.nan, np.float32), 3, ValueError, "NaN"),
    (np.zeros((16, 16), np.uint8), 3, TypeError, "float"),
    (np.full((16, 16), 2.0, np.float32), 3, ValueError, r"\[0, 1\]"),
    (np.zeros((2, 16, 16, 1), np.float32), 3, ValueError, "shape"),
    (np.zeros((16, 16), np.float32), 0, ValueError, "positive"),
])
def test_bad_input_is_refused(bad, kernel_size, error, match):
    with pytest.raises(error, match=match):
        jaxdeblur.deblur(bad, kernel_size, preset="tiny", options=QUIET)


def test_empty_batch_and_unknown_names():
    with pytest.raises(ValueError, match="empty"):
        jaxdeblur.deblur_batch([], 5, preset="tiny")
    y, _ = blurred_pair()
    with pytest.raises(ValueError, match="unknown method"):
        jaxdeblur.deblur(y, 5, method="nope")
    with pytest.raises(ValueError, match="unknown preset"):
        jaxdeblur.deblur(y, 5, preset="nope")
    with pytest.raises(ValueError, match="unknown config"):
        jaxdeblur.deblur(y, 5, preset="tiny", config={"learning_rate": 1})


def _poison_loss(monkeypatch, bad):
    """Makes the data term NaN wherever `bad(y, step)` holds (traced, so it runs on device)."""
    real_terms = selfdeblur.dip_loss_terms

    def poisoned(cfg, latent, kernel, y, step):
        terms = real_terms(cfg, latent, kernel, y, step)
        terms["data"] = jnp.where(bad(y, step), jnp.nan, terms["data"])
        return terms

    monkeypatch.setattr(selfdeblur, "dip_loss_terms", poisoned)


def test_nan_loss_stops_with_last_good_state(tmp_path, monkeypatch):
    _poison_loss(monkeypatch, lambda y, step: step >= 12)
    y, _ = blurred_pair()
    opts = dataclasses.replace(QUIET, checkpoint_dir=str(tmp_path))
    with pytest.raises(NonFiniteLossError, match=r"run\(s\) \[0\] at iteration\(s\) \[12\] "
                                                 r"\(between iterations 10 and 20\)") as info:
        # a config no other test uses, so the poisoned loss is traced afresh
        jaxdeblur.deblur(y, 5, preset="tiny", config={"lr_kernel": 1.23e-4}, options=opts)
    good = info.value.last_good  # frozen on device before the first bad step, not a host snapshot
    assert np.isfinite(good.latents).all() and int(good.state.step[0]) == 12
    assert jax.tree.all(jax.tree.map(lambda x: bool(np.isfinite(x).all()), good.state.params))
    loss = good.history["loss"][0]
    assert np.isfinite(loss[:12]).all() and np.isnan(loss[12:]).all()
    assert checkpoint_module.newest_step(tmp_path) == 12


def test_nan_in_one_run_freezes_only_that_run(tmp_path, monkeypatch):
    # run 1 (the brighter image) goes bad at step 3; run 0 finishes its chunk
    _poison_loss(monkeypatch, lambda y, step: (jnp.mean(y) > 0.55) & (step >= 3))
    dark, _ = blurred_pair(0)
    ys = [dark * 0.5 + 0.1, dark * 0.5 + 0.4]
    opts = dataclasses.replace(QUIET, checkpoint_dir=str(tmp_path), strategy="map")
    with pytest.raises(NonFiniteLossError, match=r"run\(s\) \[1\] at iteration\(s\) \[3\]") as info:
        jaxdeblur.deblur_batch(ys, 5, preset="tiny", seeds=[0, 1], config={"lr_kernel": 1.24e-4}, options=opts)
    good = info.value.last_good
    assert [int(s) for s in good.state.step] == [10, 3]
    assert np.isfinite(good.history["loss"][0, :10]).all() and np.isnan(good.history["loss"][1, 3:]).all()
    assert checkpoint_module.newest_step(tmp_path) is None  # runs stopped apart: no checkpoint


def test_no_state_copy_to_host_per_chunk(monkeypatch):
    """Between chunks only the history and the guard's flags come to the host, not the run state."""
    from jaxdeblur.engine import runner

    copied = []
    real_to_host = runner._to_host

    def counting(tree):
        out = real_to_host(tree)
        copied.append(sum(np.asarray(x).nbytes for x in jax.tree.leaves(out)))
        return out

    monkeypatch.setattr(runner, "_to_host", counting)
    y, _ = blurred_pair()
    transferred = {}
    for iterations in (10, 40):
        copied.clear()  # the raw field: the program of the other tests (a compressed schedule is another)
        jaxdeblur.deblur(y, 5, preset="tiny", config={"iterations": iterations}, options=QUIET)
        transferred[iterations] = sum(copied)
    state_bytes = max(copied)  # the final outcome's copy of the whole state
    assert transferred[40] - transferred[10] < 0.05 * state_bytes  # 3 more chunks: far less than one state copy


def test_a_second_run_of_the_same_program_traces_nothing(monkeypatch):
    """The chunk is traced once per program and length (its loss-term names come from that same trace)."""
    traced = []
    real = selfdeblur.dip_loss_terms

    def counting(*args, **kwargs):
        traced.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(selfdeblur, "dip_loss_terms", counting)
    y, _ = blurred_pair()
    jaxdeblur.deblur(y, 5, preset="tiny", config={"iterations": 10}, options=QUIET)
    traced.clear()
    jaxdeblur.deblur(y, 5, preset="tiny", seed=1, config={"iterations": 20}, options=QUIET)
    assert not traced


@pytest.mark.parametrize("method", [
    "toy",
    pytest.param("selfdeblur", marks=pytest.mark.slow(
        reason="compiles SelfDeblur's networks twice in a fresh 8-device process (~25 s); the sharding is the "
               "engine's, the same for every method: the toy method checks it by default")),
])
def test_sharded_over_eight_cpu_devices_equals_one_device(method):
    script = textwrap.dedent("""
        import dataclasses, sys, jax, numpy as np, jaxdeblur
        from jaxdeblur.engine.runner import EngineOptions
        from jaxdeblur.methods import METHODS
        from tests.engine.toy_method import ToyMethod
        METHODS[ToyMethod.name] = ToyMethod()  # the one registry line of a new method
        method = sys.argv[1]
        assert len(jax.devices()) == 8, jax.devices()
        rng = np.random.default_rng(0)
        ys = [rng.uniform(0, 1, (20, 20)).astype(np.float32) for _ in range(3)]
        # the "map" strategy (the CPU default) only: sharding is the same shard_map over runs for both
        # strategies, and vmap == map is tested on one device (test_batch_equals_single_vmap_...)
        many = EngineOptions(progress=False, chunk=5, strategy="map")
        one = dataclasses.replace(many, devices=[jax.devices()[0]])
        a = jaxdeblur.deblur_batch(ys, 3, method, preset="tiny", iterations=10, seeds=[1, 2, 3], finish=False,
                                   options=many)
        b = jaxdeblur.deblur_batch(ys, 3, method, preset="tiny", iterations=10, seeds=[1, 2, 3], finish=False,
                                   options=one)
        for ra, rb in zip(a, b):  # bit for bit per run, up to float rounding
            np.testing.assert_allclose(ra.image, rb.image, atol=2e-5)
            np.testing.assert_allclose(ra.kernel, rb.kernel, atol=2e-6)
        print("SHARDED_OK")
    """)
    assert "SHARDED_OK" in run_script(script, method, devices=8)
