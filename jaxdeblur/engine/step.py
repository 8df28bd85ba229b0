"""The jitted DIP step and the on-device chunk of steps (lax.scan), with an on-device NaN guard.

`make_chunk(method, cfg, nets, length)` returns a pure function
(state, shared) -> (state, history, finite) running `length` iterations of
one run on device (`shared`: the method's run-shared constants): history
holds every named loss term per iteration, shape (length,); finite (bool
scalar) says whether every step of the chunk was finite.
Batching and sharding wrap this function (`jaxdeblur.engine.batching`).

The NaN guard lives in the scan's carry: a step whose loss or gradients are
not all finite is not applied (params, optimiser state, statistics, step
counter and key stay as they were), and once one step of a run was skipped
the run stays frozen for the rest of the chunk. So the state a chunk returns
is each run's last good state, its `step` the iteration at which it stopped,
and the host only reads the small `finite` flag to notice (no copy of the
state before each chunk). History entries from the first non-finite step on
keep the non-finite loss at that step and NaN after it ("not run").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxdeblur.engine.state import RunState


def all_finite(tree) -> jax.Array:
    """True (bool scalar) when every element of every leaf of `tree` is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def make_step(method, cfg, nets):
    """One guarded optimisation step of one run: (state, active) -> (state, {term: scalar}, applied).

    The update is applied when `active` (bool scalar) holds and the loss and
    every gradient are finite; otherwise the returned state is `state`
    unchanged. `applied` says which happened.
    """
    optimizer = method.optimizer(cfg)

    def step(state: RunState, active: jax.Array):
        key, sub = jax.random.split(jax.random.wrap_key_data(state.key))

        def loss_fn(params):
            return method.loss(cfg, nets, params, state.net_state, state.inputs, state.method_state,
                               state.y, state.step, sub)

        (loss, (terms, net_state, method_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new = state.replace(params=params, net_state=net_state, opt_state=opt_state,
                            method_state=method_state, step=state.step + 1, key=jax.random.key_data(key))
        applied = active & jnp.isfinite(loss) & all_finite(grads)
        kept = jax.tree.map(lambda n, o: jnp.where(applied, n, o), new, state)
        return kept, {"loss": loss, **terms}, applied

    return step


def make_chunk(method, cfg, nets, length: int):
    """`length` guarded steps of one run in a lax.scan: (state, shared) -> (state, {term: (length,)}, finite).

    `shared` holds the method's run-shared constants (the same arrays for
    every run, e.g. a frozen pretrained network); the steps see them as
    `nets.shared`. Methods without any get an empty dict.
    """

    def chunk(state: RunState, shared=None):
        step = make_step(method, cfg, nets.with_shared(shared))

        def body(carry, _):
            state, finite = carry
            state, terms, applied = step(state, finite)
            # the first non-finite step keeps its (non-finite) terms; steps not run after it are NaN
            terms = jax.tree.map(lambda t: jnp.where(finite, t, jnp.nan), terms)
            return (state, applied), terms

        (state, finite), history = jax.lax.scan(body, (state, jnp.ones((), bool)), None, length=length)
        return state, history, finite

    return chunk
