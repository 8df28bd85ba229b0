"""The jitted DIP step and the on-device chunk of steps (lax.scan).

`make_chunk(method, cfg, nets, length)` returns a pure function
state -> (state, history) running `length` iterations of one run on device;
history holds every named loss term per iteration, shape (length,).
Batching and sharding wrap this function (`jaxdeblur.engine.batching`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxdeblur.engine.state import RunState


def make_step(method, cfg, nets):
    """One optimisation step of one run: state -> (state, {term: scalar})."""
    optimizer = method.optimizer(cfg)

    def step(state: RunState):
        key, sub = jax.random.split(jax.random.wrap_key_data(state.key))

        def loss_fn(params):
            return method.loss(cfg, nets, params, state.net_state, state.inputs, state.method_state,
                               state.y, state.step, sub)

        (loss, (terms, net_state, method_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new = state.replace(params=params, net_state=net_state, opt_state=opt_state,
                            method_state=method_state, step=state.step + 1, key=jax.random.key_data(key))
        return new, {"loss": loss, **terms}

    return step


def make_chunk(method, cfg, nets, length: int):
    """`length` steps of one run in a lax.scan: state -> (state, {term: (length,)})."""
    step = make_step(method, cfg, nets)

    def chunk(state: RunState):
        return jax.lax.scan(lambda s, _: step(s), state, None, length=length)

    return chunk


def loss_is_finite(history) -> jnp.ndarray:
    """True where every recorded loss of a run is finite; history leaves (..., length)."""
    return jnp.all(jnp.isfinite(history["loss"]), axis=-1)
