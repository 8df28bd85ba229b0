"""One contract over every registered trained model (`jaxdeblur.models.MODELS`) and the toy model of the tests.

A model is one module plus one registry line; whatever it is, it passes this file: its presets are valid frozen
configs that survive their JSON record; its tiny preset builds a task whose one step of the trainer's compiled
program runs (finite loss, the trainable parameters move, the frozen ones do not); the trainer's evaluation gives
finite metrics, among them the task's best metric; the exported weights load (`models.load`) to the same config and
the same variables; the model's data-free check metric (``check_metrics``, when it has one) is finite.

The toy (tests/train/toy.py) is registered here by its one line. Each model's trained tiny run is one module
fixture shared by its tests (one compiled train step per model: the per-model files no longer train the tiny
presets for export / load). The model-specific checks stay in tests/models/<model>/.
"""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import numpy as np
import pytest
from flax import nnx

from jaxdeblur import models
from jaxdeblur.io import save_image
from jaxdeblur.train import TrainSettings, config_from_record, config_record, export
from jaxdeblur.train.parallel import data_mesh
from jaxdeblur.train.program import program_for

TOY = ("toy", "tests.train.toy")  # the one registry line of the toy model
NAMES = sorted([*models.MODELS, TOY[0]])

# The preset a model's contract trains: "tiny" unless named here. UFPNet's stage 2 needs a stage-1 folder, so its
# contract trains stage 1 (tests/models/ufpnet/test_stages.py trains stage 2, slow).
CONTRACT_PRESET = {"ufpnet": "tiny_kernel"}


def _region_data(tmp_path_factory) -> dict:
    """The region classifier learns from MAP-estimator labels of a folder of images: three 32 px ones."""
    root = tmp_path_factory.mktemp("region_images")
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = np.full((32, 32), 0.3, np.float32)
        for _ in range(5):
            r, c = rng.integers(0, 26, 2)
            h, w = rng.integers(3, 14, 2)
            x[r:r + h, c:c + w] = rng.uniform(0.1, 0.95)
        save_image(root / f"im{seed}.png", x)
    return {"data": root, "cache_dir": tmp_path_factory.mktemp("region_cache")}


# make_task arguments of the models that cannot train on their default data in a test
TASK_ARGUMENTS = {"region": _region_data}

# Training runs covered by a model's own tests, opt-in here (--runslow), with why.
SLOW = {"region": "builds MAP-estimator labels of its images first (~40 s); tests/models/region/test_region.py "
                  "trains the tiny preset through the trainer and loads the shipped weights",
        "nafnet": "compiles NAFNet's train step (~24 s on a 2-core CI): the network's outputs and gradients are "
                  "checked against the authors' code by tests/nets/test_nafnet_golden.py, its blocks' gradients by "
                  "tests/nets/test_nafnet.py, the trainer by the other models here, the shipped weights by "
                  "tests/models/nafnet/test_nafnet_model.py",
        "ufpnet": "compiles UFPNet's stage-1 train step (~40 s, the suite's largest single cost on a 2-core CI): the "
                  "network's outputs and gradients are checked against the authors' code by "
                  "tests/nets/test_ufpnet_golden.py, the trainer by every other model here, the shipped weights by "
                  "tests/models/ufpnet/test_shipped.py"}


# Check metrics of the tiny export computed only with --runslow, with why (the model's own tests compute them).
SLOW_CHECK = {"ufpnet": "compiles the whole UFPNet's inference (flow decode of every pixel); "
                        "tests/models/ufpnet/test_shipped.py loads the shipped weights and reproduces their check metrics"}


def _param(name):
    return pytest.param(name, marks=pytest.mark.slow(reason=SLOW[name])) if name in SLOW else name


@pytest.fixture(scope="module", autouse=True)
def toy_registered():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(models.MODELS, *TOY)
        yield


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture(scope="module", params=[_param(n) for n in NAMES])
def trained(request, tmp_path_factory, toy_registered):
    """One step of the trainer's compiled program on the contract preset, its evaluation, export and load."""
    name = request.param
    module = models.get_model(name)
    preset = CONTRACT_PRESET.get(name, "tiny")
    config = module.PRESETS[preset]
    arguments = TASK_ARGUMENTS[name](tmp_path_factory) if name in TASK_ARGUMENTS else {}
    task = module.make_task(config, **arguments)
    program = program_for(task, data_mesh())
    initial = program.initial_state(config.train.seed)
    batches = program.device_batches([next(iter(task.train_loader(config.train.seed)))])
    state, (values, finite) = program.train_call(1)(initial, batches)
    metrics = program.evaluate(state, program.device_eval_batches(task.eval_batches()))
    root = tmp_path_factory.mktemp(f"weights_{name}")
    export(task, state, root, preset=preset, data={"source": "the contract test"}, metrics=metrics)
    loaded = models.load(f"{name}-{preset}", root=root)
    return dict(name=name, module=module, preset=preset, config=config, task=task, program=program,
                initial=initial, state=state, values=jax.device_get(values), finite=np.asarray(finite),
                metrics=metrics, loaded=loaded)


@pytest.mark.parametrize("name", NAMES)
def test_presets_are_frozen_configs_that_survive_their_record(name):
    module = models.get_model(name)
    assert CONTRACT_PRESET.get(name, "tiny") in module.PRESETS
    for preset, config in module.PRESETS.items():
        assert dataclasses.is_dataclass(config) and isinstance(config.train, TrainSettings), preset
        assert type(config) is type(module.PRESETS[CONTRACT_PRESET.get(name, "tiny")]), preset
        hash(config)  # frozen and hashable: the compiled programs are cached per task config
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.train = config.train
        record = json.loads(json.dumps(config_record(config)))  # what a manifest stores
        assert config_from_record(next(iter(module.PRESETS.values())), record) == config, preset


def test_the_registry_lists_every_model_and_the_toy():
    assert set(models.model_names()) == set(NAMES)
    assert {"nafnet", "ufpnet", "kernel_space", "kernel_prior", "denoiser", "region"} <= set(NAMES)


def test_one_train_step_moves_the_trainable_parameters_only(trained):
    values, finite = trained["values"], trained["finite"]
    assert finite.shape == (1,) and bool(finite[0]) and np.isfinite(values["loss"][0])
    assert all(np.isfinite(v).all() for v in values.values())
    state, initial = trained["state"], trained["initial"]
    assert int(state.step) == 1 and int(state.skipped) == 0
    assert not _leaves_equal(state.params, initial.params), "no trainable parameter changed"
    frozen_before = nnx.split_state(initial.rest, nnx.Param, ...)[0]
    frozen_after = nnx.split_state(state.rest, nnx.Param, ...)[0]
    assert _leaves_equal(frozen_after, frozen_before), "a frozen parameter changed"


def test_evaluation_gives_finite_metrics_with_the_best_metric(trained):
    metrics, task = trained["metrics"], trained["task"]
    best, mode = task.best_metric
    assert best in metrics and mode in ("max", "min")
    assert metrics and all(math.isfinite(v) for v in metrics.values()), metrics


def test_exported_weights_load_to_the_same_config_and_variables(trained):
    loaded, name, preset = trained["loaded"], trained["name"], trained["preset"]
    assert loaded.name == f"{name}-{preset}" and loaded.config == trained["config"]
    assert loaded.manifest["steps"] == 1 and loaded.manifest["metrics"] == pytest.approx(trained["metrics"])
    exported = nnx.state(trained["program"].model(trained["state"]))
    assert _leaves_equal(nnx.state(loaded.model), exported)


def test_the_loaded_models_check_metrics_are_finite(trained, request):
    check = getattr(trained["module"], "check_metrics", None)
    if check is None:
        pytest.skip(f"{trained['name']} has no check_metrics (optional)")
    if trained["name"] in SLOW_CHECK and not request.config.getoption("--runslow"):
        pytest.skip(f"slow: {SLOW_CHECK[trained['name']]} (run with --runslow)")
    loaded = trained["loaded"]
    measured = check(loaded.fn, loaded.config)
    assert measured and all(math.isfinite(v) for v in measured.values()), measured
