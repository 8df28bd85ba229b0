"""The jitted train call: k fused steps equal k single steps, the NaN guard, bfloat16 compute."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdeblur.train.parallel import data_mesh
from jaxdeblur.train.program import program_for
from tests.train import toy

TASK = toy.make_task(toy.PRESETS["tiny"])


@pytest.fixture(scope="module")
def program():
    return program_for(TASK, data_mesh())


@pytest.fixture(scope="module")
def start(program):
    return program.initial_state(0)


def host_batches(count, poison_at=()):
    loader = toy.CounterLoader(8, poison_at=poison_at)
    return [next(loader) for _ in range(count)]


def assert_close_trees(a, b, **tolerance):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), **tolerance)


def test_fused_steps_equal_single_steps(program, start):
    batches = host_batches(3)
    fused, (values, finite) = program.train_call(3)(start, program.device_batches(batches))
    state, losses = start, []
    for batch in batches:
        state, (single_values, _) = program.train_call(1)(state, program.device_batches([batch]))
        losses.append(float(single_values["loss"][0]))
    assert int(fused.step) == 3 and bool(np.all(finite))
    np.testing.assert_allclose(np.asarray(values["loss"]), losses, rtol=1e-5)
    assert losses[-1] < losses[0]
    assert_close_trees(fused, state, rtol=1e-5, atol=1e-6)


def test_non_finite_step_keeps_the_state_and_counts(program, start):
    state, (values, finite) = program.train_call(1)(start, program.device_batches(host_batches(1, poison_at=(0,))))
    assert not bool(finite[0]) and not np.isfinite(float(values["loss"][0]))
    assert int(state.step) == 1 and int(state.skipped) == 1
    for name in ("params", "rest", "opt_state", "key"):
        assert_close_trees(getattr(state, name), getattr(start, name), rtol=0, atol=0)


def test_bfloat16_compute_keeps_float32_state(program, start):
    config = toy.PRESETS["tiny"]
    low = program_for(toy.make_task(dataclasses.replace(
        config, train=dataclasses.replace(config.train, compute_dtype="bfloat16"))), data_mesh())
    batch = program.device_batches(host_batches(1))
    low_state, (low_values, _) = low.train_call(1)(start, batch)
    _, (values, _) = program.train_call(1)(start, batch)
    assert {x.dtype for x in jax.tree.leaves(low_state.params)} == {jnp.dtype(jnp.float32)}
    assert jax.tree.map(lambda x: x.dtype, low_state.rest) == jax.tree.map(lambda x: x.dtype, start.rest)
    np.testing.assert_allclose(float(low_values["loss"][0]), float(values["loss"][0]), rtol=5e-2)
    changed = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in
               zip(jax.tree.leaves(low_state.params), jax.tree.leaves(start.params))]
    assert min(changed) > 0


def test_loader_batches_of_the_wrong_size_are_refused(program):
    batch = {"index": np.arange(3, dtype=np.int32), "poison": np.zeros(3, np.float32)}
    with pytest.raises(ValueError, match="expected 8 rows"):
        program.device_batches([batch])
