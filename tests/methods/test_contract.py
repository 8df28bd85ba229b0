"""The contract of a blind method, over every method in `jaxdeblur.methods.METHODS` and the toy DIP method.

A method added by one file plus one registry line is checked here without a
new test: its declarations, every preset (constructs, resolves through the
API's plan, builds its networks abstractly), and for a tiny run: it works,
the same seed gives the same result (another seed another), and a batch
gives each run what it gives alone. The toy method (tests/engine/toy_method.py)
is registered by the one line of `registry`.

Compiling is what costs: each method's tiny run uses the image size, kernel
size, chunk length and config of its own test file's runs (`CASES`), so the
suite's compilation cache compiles each program once; a method without a case
runs the default one. Runs are cached per module (`_runs`). The registered DIP
methods' runs are opt-in here (`COVERED_ELSEWHERE`: their own files run the
same checks by default); the toy's and MAP's run by default, as would a new
method's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxdeblur
from jaxdeblur.config import compress_schedule, resolve
from jaxdeblur.engine import BlindMethod, DIPMethod, EngineOptions
from jaxdeblur.methods import METHODS, get_method
from jaxdeblur.methods.map_init import INITS
from tests.engine.toy_method import ToyMethod
from tests.methods.test_kotera import SMALL as KOTERA_SMALL

COLOR_MODES = ("y", "rgb")


@dataclasses.dataclass(frozen=True)
class Case:
    """A method's tiny run: image side, kernel side, chunk length, overrides of its "tiny" preset."""

    size: int = 24
    kernel: int = 5
    chunk: int = 4
    config: Any = dataclasses.field(default_factory=dict)


# The sizes, chunks and configs of each method's own tests (their compiled programs are the same).
CASES = {
    "selfdeblur": Case(24, 5, 10, {"iterations": 10}),  # tests/engine/test_engine.py (its MSE phase)
    "kotera": Case(32, 9, 10, {**KOTERA_SMALL, "iterations": 10}),  # tests/methods/test_kotera.py: 2 scales
    "uncertainty": Case(24, 5, 1, {"iterations": 3}),  # tests/methods/test_uncertainty.py
    "kernel_space": Case(23, 5, 4),  # tests/methods/test_kernel_space.py (12 iterations)
    "map": Case(32, 5),  # tests/test_map_method.py (the estimator's "tiny" preset)
}
# A DIP method's tiny run compiles its own programs (~7 s each on a quiet 2-core machine, several times that on a
# loaded one; the suite's compilation cache saves only part of it in another process). The registered methods'
# runs here are opt-in (--runslow, make test-all), each because the default suite already runs the same checks on
# the same programs in the method's own file; a method not listed (the toy, a new one) runs them by default.
COVERED_ELSEWHERE = {
    "selfdeblur": "tests/engine/test_engine.py: tiny run, same seed, batch == single",
    "kotera": "tests/methods/test_kotera.py: its tiny two-scale run (the batch of two: slow there too)",
    "uncertainty": "tests/methods/test_uncertainty.py: its tiny run (the batch of two: slow there too)",
    "kernel_space": "tests/methods/test_kernel_space.py: tiny run, same seed (the batch of two: slow there too)",
}
TOY = ToyMethod()
NAMES = sorted(METHODS) + [TOY.name]
RUN_NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in COVERED_ELSEWHERE else n for n in NAMES]


@pytest.fixture(scope="module")
def registry():
    """METHODS with the toy method registered: the one line a new method adds to jaxdeblur/methods/__init__.py."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(METHODS, TOY.name, TOY)
        yield METHODS


def _blurred(seed: int, size: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sharp = rng.uniform(0.1, 0.9, (size + k - 1, size + k - 1)).astype(np.float32)
    return np.asarray(jaxdeblur.blur(sharp, np.ones((k, k), np.float32) / k**2, "valid"))


def _tiny(method: BlindMethod, case: Case):
    return resolve(method.presets, "tiny", case.config or None)


def _run(method: BlindMethod, case: Case, images: list[np.ndarray], seeds: list[int]) -> dict:
    """One batch through the method's own entry point: {"latents", "kernels", "extras", "history"} (host)."""
    cfg = _tiny(method, case)
    if isinstance(method, DIPMethod):
        keys = jnp.stack([jax.random.key(s) for s in seeds])
        out = method.run(cfg, np.stack(images)[..., None], (case.kernel, case.kernel), keys,
                         EngineOptions(progress=False, chunk=case.chunk, strategy="map"))
        return {"latents": out.latents, "kernels": out.kernels, "extras": out.extras, "history": out.history}
    results = method.run_images(cfg, images, (case.kernel, case.kernel), seeds, "tiny")
    return {"latents": np.stack([r.image for r in results]), "kernels": np.stack([r.kernel for r in results]),
            "extras": {}, "history": {}}


_CACHE: dict = {}


def _runs(name: str, which: str) -> dict:
    """The module's runs of method `name`, each computed once: "single" (image 0, seed 7), "again" (the same),
    "other" (image 0, seed 8), "batch" (images 0 and 1, seeds 7 and 9)."""
    key = (name, which)
    if key not in _CACHE:
        method, case = get_method(name), CASES.get(name, Case())
        y0, y1 = _blurred(0, case.size, case.kernel), _blurred(1, case.size, case.kernel)
        images, seeds = {"single": ([y0], [7]), "again": ([y0], [7]), "other": ([y0], [8]),
                         "batch": ([y0, y1], [7, 9])}[which]
        _CACHE[key] = _run(method, case, images, seeds)
    return _CACHE[key]


@pytest.mark.parametrize("name", NAMES)
def test_declarations(registry, name):
    method = get_method(name)
    assert isinstance(method, BlindMethod) and method.name == name
    assert method == type(method)() and hash(method) == hash(type(method)())  # stateless: programs cached per class
    assert set(method.color_modes) <= set(COLOR_MODES) and method.color_modes
    assert method.auto_preset is None or method.auto_preset in method.presets
    assert set(method.inits) <= set(INITS)
    assert "tiny" in method.presets
    if isinstance(method, DIPMethod):
        assert {"paper", "fast", "tiny"} <= set(method.presets) and method.checkpoints
        assert not method.auto_kernel_size  # a DIP method's generators need the kernel's size
    else:
        assert not hasattr(method, "networks") and callable(method.run_images)


PRESETS = [(name, preset) for name in sorted(METHODS) for preset in METHODS[name].presets]
PRESETS += [(TOY.name, preset) for preset in TOY.presets]


@pytest.mark.parametrize(("name", "preset"), PRESETS)
def test_every_preset_is_valid(registry, name, preset):
    method = get_method(name)
    cfg = method.presets[preset]
    assert dataclasses.is_dataclass(cfg) and hash(cfg) == hash(dataclasses.replace(cfg))  # frozen, hashable
    assert dataclasses.replace(cfg) == cfg  # constructs (its checks pass)
    assert resolve(method.presets, preset, None) == cfg
    shorter = compress_schedule(cfg, max(1, cfg.iterations // 5))
    assert shorter.iterations == max(1, cfg.iterations // 5)
    case = CASES.get(name, Case())
    plan = jaxdeblur.api.plan_batch([_blurred(0, case.size, case.kernel)], case.kernel, name, preset=preset,
                                    platform="cpu")  # checks and plans, runs nothing
    assert plan.preset == preset and plan.config == cfg and plan.method == name


DIP_PRESETS = [(n, p) for n, p in PRESETS if n == TOY.name or isinstance(METHODS[n], DIPMethod)]


@pytest.mark.slow  # tracing the paper-size networks and loading the shipped operator: ~25 s on 2 cores
@pytest.mark.parametrize(("name", "preset"), DIP_PRESETS)
def test_every_preset_builds_its_networks(registry, name, preset):
    """The networks of every preset build, abstractly (nothing is computed), where the image sits in the latent."""
    method, case = get_method(name), CASES.get(name, Case())
    cfg, k = method.presets[preset], (case.kernel, case.kernel)
    latent = method.latent_shape(cfg, (case.size, case.size, 1), k)
    assert isinstance(method.shared(cfg), dict)  # first, as the engine does (e.g. loads a frozen operator)
    nets = nnx.eval_shape(lambda: method.networks(cfg, latent, k, nnx.Rngs(0)))
    assert nets and all(isinstance(m, nnx.Module) for m in nets.values())
    oy, ox = method.image_offset(cfg, k)
    assert 0 <= oy <= latent[0] - case.size and 0 <= ox <= latent[1] - case.size


@pytest.mark.parametrize("name", RUN_NAMES)
def test_tiny_run_works(registry, name):
    method, case = get_method(name), CASES.get(name, Case())
    out = _runs(name, "single")
    k = (case.kernel, case.kernel)
    kernels = out["kernels"]
    assert kernels.shape == (1, *k) and np.all(kernels >= 0)
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, rtol=1e-4)
    assert not any(np.any(np.isinf(v)) for v in out["extras"].values())  # NaN: "not computed" (e.g. a fit)
    if isinstance(method, DIPMethod):
        cfg = _tiny(method, case)
        assert out["latents"].shape == (1, *method.latent_shape(cfg, (case.size, case.size, 1), k))
        assert all(v.shape[0] == 1 for v in out["extras"].values())
        history = out["history"]
        assert "loss" in history and history["loss"].shape == (1, cfg.iterations)
        assert all(np.all(np.isfinite(v)) for v in history.values())
    else:
        assert out["latents"].shape == (1, case.size, case.size)
    assert np.all(np.isfinite(out["latents"]))


@pytest.mark.parametrize("name", RUN_NAMES)
def test_same_seed_same_result(registry, name):
    single, again, other = (_runs(name, w) for w in ("single", "again", "other"))
    np.testing.assert_array_equal(again["latents"], single["latents"])
    np.testing.assert_array_equal(again["kernels"], single["kernels"])
    if isinstance(get_method(name), DIPMethod):  # a seed draws the networks and their inputs
        assert np.abs(other["latents"] - single["latents"]).max() > 1e-4
    else:  # the MAP estimator is deterministic: the seed is only recorded
        np.testing.assert_array_equal(other["latents"], single["latents"])


@pytest.mark.parametrize("name", RUN_NAMES)
def test_batch_equals_single(registry, name):
    """Run 0 of a batch of two is the run alone, up to the float rounding of the suite's fast-compile options
    (the tolerance of tests/engine/test_engine.py's batch == single; bit-equal with XLA's default emitters)."""
    single, batch = _runs(name, "single"), _runs(name, "batch")
    np.testing.assert_allclose(batch["latents"][0], single["latents"][0], atol=1e-4)
    np.testing.assert_allclose(batch["kernels"][0], single["kernels"][0], atol=1e-6)
    for term, values in single["history"].items():
        np.testing.assert_allclose(batch["history"][term][0], values[0], rtol=1e-5, atol=1e-7, err_msg=term)
    assert np.abs(batch["latents"][1] - batch["latents"][0]).max() > 1e-2  # run 1 is another image and seed
