"""The compiled programs of one task on one device mesh: initialisation, train calls, evaluation.

A train call runs `steps` optimiser steps on stacked batches (steps, B, ...)
in one device call (`lax.scan`; a single step is called directly). One step:

1. key = fold_in(base key, step), split into the `prepare` and `loss` keys;
2. batch = task.prepare(key, host batch), on device;
3. the module is merged from (graphdef, trainable params, rest) inside the
   trace, `task.loss` is differentiated w.r.t. the trainable params only, and
   the model's other variables are re-split after the call (BatchNorm);
4. optax update; when the loss or any gradient is not finite the whole update
   (params, rest, optimiser state) is dropped ON DEVICE and `skipped` counts it.

With compute_dtype "bfloat16" the step casts the parameters (trainable and
frozen) and the floating inputs to bfloat16; the state stays float32
(gradients flow back through the cast in float32).

`program_for(task, mesh)` caches the programs per (task, mesh), so runs of the
same task (resume, tests) share compiled code.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from jaxdeblur.nets.conv import CPU_COMPILER_OPTIONS
from jaxdeblur.nets.platform import mesh_platform, traced_for
from jaxdeblur.train.parallel import batch_sharding, global_batch, replicated
from jaxdeblur.train.state import TrainState, model_of
from jaxdeblur.train.task import Task

# Initialisation runs once, but its threefry draws (one per parameter array)
# take XLA:CPU long to optimise (see DESIGN.md): compile it unoptimised.
UNOPTIMISED = {"xla_backend_optimization_level": 0}


def _cast_floats(tree: Any, dtype: jnp.dtype) -> Any:
    """`tree` with its floating arrays cast to `dtype` (others unchanged)."""
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]
    return jnp.stack(leaves).all() if leaves else jnp.bool_(True)


class Program:
    """The jitted init / train call / evaluation of `task` on `mesh` (state replicated, batches split)."""

    def __init__(self, task: Task, mesh: Mesh):
        self.task, self.mesh = task, mesh
        self.compute_dtype = jnp.dtype(task.config.train.compute_dtype)
        self.optimizer = task.optimizer()
        self.trainable = task.trainable()
        abstract = nnx.eval_shape(lambda: task.init_model(nnx.Rngs(0)))
        self.graphdef = nnx.split(abstract, self.trainable, ...)[0]
        self.replicated = replicated(mesh)
        self.platform = mesh_platform(mesh)  # the nets are traced for the mesh's devices (`jaxdeblur.nets.platform`)
        # XLA:CPU's YNNPACK fusions off, as for the DIP engine (`jaxdeblur.nets.conv.CPU_COMPILER_OPTIONS`)
        self.compiler_options = CPU_COMPILER_OPTIONS if self.platform == "cpu" else None
        self.init = jax.jit(self._init, out_shardings=self.replicated, compiler_options=UNOPTIMISED)
        self._evaluate = jax.jit(traced_for(self._evaluate_batch, self.platform), out_shardings=self.replicated,
                                 compiler_options=self.compiler_options)
        self._calls: dict[int, Any] = {}

    # -- initialisation ---------------------------------------------------------------------
    def _init(self, key: jax.Array) -> TrainState:
        k_model, k_steps = jax.random.split(key)
        model = self.task.init_model(nnx.Rngs(k_model))
        _, params, rest = nnx.split(model, self.trainable, ...)
        zero = jnp.zeros((), jnp.int32)
        return TrainState(step=zero, params=params, rest=rest, opt_state=self.optimizer.init(params),
                          key=jax.random.key_data(k_steps), skipped=zero)

    def initial_state(self, seed: int) -> TrainState:
        """The run's first state (replicated on the mesh), deterministic by `seed`."""
        return self.init(jax.random.key(seed))

    # -- training -----------------------------------------------------------------------------
    def _step(self, state: TrainState, host_batch: dict) -> tuple[TrainState, tuple[dict, jax.Array]]:
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        k_prepare, k_loss = jax.random.split(key)
        batch = self.task.prepare(k_prepare, host_batch)
        low = self.compute_dtype != jnp.float32
        if low:
            batch = _cast_floats(batch, self.compute_dtype)
        frozen, other = nnx.split_state(state.rest, nnx.Param, ...)

        def loss_fn(params):
            if low:
                params, frozen_c = _cast_floats(params, self.compute_dtype), _cast_floats(frozen, self.compute_dtype)
            else:
                frozen_c = frozen
            model = nnx.merge(self.graphdef, params, frozen_c, other, copy=True)
            loss, metrics = self.task.loss(model, batch, k_loss)
            _, _, new_rest = nnx.split(model, self.trainable, ...)
            return jnp.asarray(loss, jnp.float32), (metrics, new_rest)

        (loss, (metrics, new_rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        new_rest = jax.tree.map(lambda new, old: new.astype(old.dtype), new_rest, state.rest)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(loss) & _all_finite(grads)

        def keep(new, old):
            return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)

        new_state = TrainState(step=state.step + 1, params=keep(params, state.params), rest=keep(new_rest, state.rest),
                               opt_state=keep(opt_state, state.opt_state), key=state.key,
                               skipped=state.skipped + (~finite).astype(jnp.int32))
        values = {"loss": loss, **{name: jnp.asarray(v, jnp.float32) for name, v in metrics.items()}}
        return new_state, (values, finite)

    def _call(self, state: TrainState, batches: dict, *, steps: int):
        if steps == 1:
            state, (values, finite) = self._step(state, jax.tree.map(lambda x: x[0], batches))
            return state, jax.tree.map(lambda x: x[None], (values, finite))
        return jax.lax.scan(self._step, state, batches)

    def train_call(self, steps: int):
        """The jitted call (state, batches (steps, B, ...)) -> (state, ({name: (steps,)}, finite (steps,)))."""
        if steps not in self._calls:
            self._calls[steps] = jax.jit(traced_for(functools.partial(self._call, steps=steps), self.platform),
                                         in_shardings=(self.replicated, batch_sharding(self.mesh, axis=1)),
                                         out_shardings=self.replicated, compiler_options=self.compiler_options)
        return self._calls[steps]

    def device_batches(self, host_batches: list[dict]) -> dict:
        """This process's loader batches of one call, stacked to (steps, B, ...) over the mesh.

        Raises:
          ValueError: a batch whose rows are not batch_size / process_count.
        """
        local = self.task.config.train.batch_size // jax.process_count()
        for batch in host_batches:
            for name, value in batch.items():
                if np.shape(value)[:1] != (local,):
                    raise ValueError(f"the train loader yielded {name!r} of shape {np.shape(value)}; expected "
                                     f"{local} rows (batch_size / process count)")
        stacked = {name: np.stack([b[name] for b in host_batches]) for name in host_batches[0]}
        return global_batch(stacked, batch_sharding(self.mesh, axis=1), axis=1, process_local=True)

    # -- evaluation ---------------------------------------------------------------------------
    def _evaluate_batch(self, params, rest, batch):
        model = nnx.merge(self.graphdef, params, rest, copy=True)
        model.eval()
        return {name: jnp.asarray(v, jnp.float32) for name, v in self.task.evaluate(model, batch).items()}

    def device_eval_batches(self, host_batches: list[dict]) -> list[tuple[dict, int]]:
        """(device batch, rows) of each evaluation batch: split over the mesh when the rows divide evenly."""
        out = []
        for batch in host_batches:
            rows = len(next(iter(batch.values())))
            sharding = batch_sharding(self.mesh, axis=0) if rows % self.mesh.size == 0 else self.replicated
            out.append((global_batch(batch, sharding, axis=0, process_local=False), rows))
        return out

    def evaluate(self, state: TrainState, batches: list[tuple[dict, int]]) -> dict[str, float]:
        """Metrics of `state` averaged over the evaluation batches, weighted by their rows."""
        if not batches:
            return {}
        results = [(self._evaluate(state.params, state.rest, batch), rows) for batch, rows in batches]
        fetched = jax.device_get(results)
        total = sum(rows for _, rows in fetched)
        return {name: float(sum(float(m[name]) * rows for m, rows in fetched) / total) for name in fetched[0][0]}

    def model(self, state: TrainState) -> nnx.Module:
        """The live module holding `state`'s variables."""
        return model_of(self.graphdef, state)


@functools.lru_cache(maxsize=8)
def _cached_program(task: Task, mesh: Mesh) -> Program:
    return Program(task, mesh)


def program_for(task: Task, mesh: Mesh) -> Program:
    """The (cached) programs of `task` on `mesh`. Raises TypeError for an unhashable task."""
    try:
        hash(task)
    except TypeError:
        raise TypeError(f"task {type(task).__name__} must be hashable (a frozen dataclass) to be trained") from None
    return _cached_program(task, mesh)
