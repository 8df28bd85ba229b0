"""Helpers of the UFPNet model tests: one trainer step of a task, and comparisons of a UFPNet's parts."""

import jax
import numpy as np
from flax import nnx

from jaxdeblur.train.parallel import data_mesh
from jaxdeblur.train.program import program_for


def one_step(task):
    """(initial model, TrainState after one step, model after it) with the trainer's compiled step."""
    program = program_for(task, data_mesh())
    state = program.initial_state(task.config.train.seed)
    initial = program.model(state)
    batches = program.device_batches([next(task.train_loader(task.config.train.seed))])
    state, (values, finite) = program.train_call(1)(state, batches)
    assert bool(finite[0]) and np.isfinite(float(values["loss"][0]))
    return initial, state, program.model(state)


def part(model, name: str):
    """The host state (parameters and batch statistics) of one part of a UFPNet."""
    return jax.device_get(nnx.state(getattr(model, name)))


def assert_same(a, b) -> None:
    jax.tree.map(np.testing.assert_array_equal, a, b)


def changed(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
