"""The flow prior's model package: presets, training kernels, training through the shared trainer, export and load.

One `tiny` training run (5 x 5 kernels, 20 steps) through `jaxdeblur.train.train`
is shared by the tests (module fixture).
"""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur import models
from jaxdeblur.models import kernel_prior
from jaxdeblur.models.kernel_prior import PAPER, PRESETS, TINY, KernelCounter, KernelPrior, make_task, motion_kernels
from jaxdeblur.train import export, train
from jaxdeblur.train.parallel import data_mesh
from jaxdeblur.train.program import program_for


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    task = make_task(TINY)
    result = train(task, tmp_path_factory.mktemp("kernel_prior") / "run", progress=False)
    return task, result


def test_paper_preset_is_the_reference_and_the_others_derive_from_it():
    assert (PAPER.kernel_size, PAPER.num_couplings, PAPER.hidden, PAPER.num_hidden, PAPER.batch_norm) == (19, 5, 25, 1,
                                                                                                          True)
    assert (PAPER.alpha, PAPER.learning_rate, PAPER.weight_decay, PAPER.lr_decay) == (1e-6, 1e-4, 1e-6, 0.5)
    assert (PAPER.train.batch_size, PAPER.train.steps) == (100, 50_000)
    assert PAPER.dequantization == pytest.approx(1 / 720)
    cpu = PRESETS["cpu"]
    assert dataclasses.replace(cpu, learning_rate=PAPER.learning_rate, num_points=PAPER.num_points,
                               train=PAPER.train) == PAPER
    with pytest.raises(ValueError, match="length"):
        dataclasses.replace(PAPER, length=(0.5, 1.5))
    with pytest.raises(ValueError, match="lr_milestones"):
        dataclasses.replace(PAPER, lr_milestones=(1.5,))


def test_training_kernels_are_valid_deterministic_and_span_the_lengths():
    draw = jax.jit(motion_kernels, static_argnums=1, static_argnames=("kernel_size", "length", "anxiety", "num_points"))
    args = dict(kernel_size=5, length=(0.0, 1.0), anxiety=(0.001, 0.008), num_points=16)
    k = draw(jax.random.key(0), 8, **args)
    assert k.shape == (8, 5, 5) and float(k.min()) >= 0
    np.testing.assert_allclose(k.sum(axis=(1, 2)), 1.0, atol=1e-5)
    np.testing.assert_array_equal(draw(jax.random.key(0), 8, **args), k)
    deltas = draw(jax.random.key(0), 8, **{**args, "length": (0.0, 0.0)})
    np.testing.assert_allclose(deltas[:, 2, 2], 1.0, atol=1e-6)  # length 0: the identity kernel
    assert float(k.max(axis=(1, 2)).min()) < 0.9  # longer paths spread over several taps
    with pytest.raises(ValueError, match="n must be a positive int"):
        motion_kernels(jax.random.key(0), 0, **args)


def test_nll_falls_while_training_through_the_trainer(run):
    """The held-out NLL falls, both as the trainer evaluates it (running statistics, which also warm up) and with
    the batch norms in training mode on the same fixed kernels (so only the learned parameters differ)."""
    task, result = run
    program = program_for(task, data_mesh())
    initial_state = program.initial_state(task.config.train.seed)
    batches = task.eval_batches()
    initial = program.evaluate(initial_state, program.device_eval_batches(batches))["nll"]
    lines = [json.loads(line) for line in (result.workdir / "metrics.jsonl").read_text().splitlines()]
    evals = [line["eval"]["nll"] for line in lines if "eval" in line]
    assert len(evals) == 2 and evals[-1] == pytest.approx(result.eval_metrics["nll"])
    assert initial > evals[0] > evals[1]
    assert all(np.isfinite(line["train"]["nll"]) for line in lines if "train" in line)

    batch_nll = nnx.jit(lambda m, k, u: -jnp.mean(m.log_prob(k, noise=u, use_running_average=False)))
    before = np.mean([batch_nll(program.model(initial_state), b["kernel"], b["noise"]) for b in batches])
    after = np.mean([batch_nll(result.model(), b["kernel"], b["noise"]) for b in batches])
    assert after < before - 0.3


def test_export_then_load_reproduces_the_stored_metric(run, tmp_path):
    task, result = run
    export(task, result, tmp_path, preset="tiny", data={"kernels": "jaxdeblur.kernels.motion (on device)"},
           metrics=result.eval_metrics)
    prior = models.load("kernel_prior-tiny", root=tmp_path)
    assert isinstance(prior.fn, KernelPrior)
    batches = task.eval_batches()
    rows = [(np.asarray(prior.fn.log_prob(b["kernel"], noise=b["noise"])), len(b["kernel"])) for b in batches]
    nll = -sum(r.sum() for r, _ in rows) / sum(n for _, n in rows)
    assert nll == pytest.approx(prior.manifest["metrics"]["nll"], rel=1e-5)
    samples = prior.fn.sample(jax.random.key(0), 4)
    assert samples.shape == (4, 5, 5) and float(samples.min()) >= 0
    np.testing.assert_allclose(samples.sum(axis=(1, 2)), 1.0, atol=1e-5)
    kernels = jnp.asarray(batches[0]["kernel"][:3])
    np.testing.assert_allclose(prior(prior.fn.encode(kernels)), kernels, atol=2e-5)


def test_loader_and_task_inputs():
    loader = KernelCounter(3)
    first = next(loader)
    state = loader.get_state()
    second = next(loader)
    loader.set_state(state)
    np.testing.assert_array_equal(next(loader)["index"], second["index"])
    np.testing.assert_array_equal(first["index"], [0, 1, 2])
    with pytest.raises(ValueError, match="data must be None"):
        make_task(TINY, data="some/folder")
    assert kernel_prior.build_model is kernel_prior.build_flow


def test_shipped_cpu_weights_reproduce_their_manifest():
    if "kernel_prior-cpu" not in models.available():
        pytest.fail("checkpoints/kernel_prior/cpu is missing: the CPU flow prior must ship with the package")
    prior = models.load("kernel_prior-cpu")
    batches = make_task(prior.config).eval_batches()
    log_probs = np.concatenate([np.asarray(prior.fn.log_prob(b["kernel"], noise=b["noise"])) for b in batches])
    assert -log_probs.mean() == pytest.approx(prior.manifest["metrics"]["nll"], abs=0.01)
    samples = prior.fn.sample(jax.random.key(0), 4)
    assert samples.shape == (4, 19, 19) and float(samples.min()) >= 0
    np.testing.assert_allclose(samples.sum(axis=(1, 2)), 1.0, atol=1e-5)
