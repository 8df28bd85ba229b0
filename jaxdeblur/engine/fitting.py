"""Fit a batch of runs' generators to given outputs (warm starts of DIP networks).

Coarse-to-fine and initialised DIP methods (Kotera et al.) start the
deblurring of a scale from networks that already produce a chosen image
and kernel: min_theta ||G(theta) - target||^2 for each generator, stopped
when the generator's RMSE reaches a tolerance or after an iteration cap.

`fit_generators` does this for R runs at once. Per run it is one compiled
`lax.while_loop` (no Python loop over iterations) with its own Adam per
network; each network stops on its own (its updates and Adam state freeze
once its RMSE is at or below its tolerance), and the loop of a run ends when
all its fitted networks are done or at the cap. Runs are batched with the
engine's strategies ("vmap" / "map", `jaxdeblur.engine.batching`) and split
over devices like the DIP steps, so run r gives the same result as a batch
of one (exactly with "map").

What a network produces is read from the method's `estimate` (clean
inputs, no input noise), through an `outputs` function mapping
(latent, kernel, extras) to {network name: output}; the default maps the
latent to "image" and the kernel to "kernel" (the double-DIP networks).
Networks without a target are left untouched; the network state
(BatchNorm running statistics, unused by the DIP nets) is not changed.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdeblur.engine import batching
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.engine.state import RunState
from jaxdeblur.nets.platform import mesh_platform


def double_dip_outputs(latent, kernel, extras) -> dict:
    """The default `outputs`: {"image": latent (H+kh-1, W+kw-1, C), "kernel": kernel (kh, kw)}."""
    return {"image": latent, "kernel": kernel}


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How to fit: iteration cap and Adam learning rate per network.

    max_iterations: the most Adam updates a network gets (the cap), >= 0.
    learning_rates: ((network name, learning rate), ...) for every network
      that may be fitted (a tuple of pairs, so the settings are hashable).
    """

    max_iterations: int
    learning_rates: tuple[tuple[str, float], ...]

    def __post_init__(self):
        if int(self.max_iterations) != self.max_iterations or self.max_iterations < 0:
            raise ValueError(f"max_iterations must be an int >= 0, got {self.max_iterations!r}")
        for name, lr in self.learning_rates:
            if not lr > 0:
                raise ValueError(f"learning rate of {name!r} must be > 0, got {lr!r}")


@dataclasses.dataclass
class FitInfo:
    """What a fit did, per run (host arrays, leading axis R).

    iterations: {network: (R,) int32} Adam updates applied.
    rmse: {network: (R,) float32} RMSE of the final output against the target.
    reached: {network: (R,) bool} rmse <= tolerance.
    fit_s: wall seconds (compile included on the first call of a shape).
    """

    iterations: dict
    rmse: dict
    reached: dict
    fit_s: float


def _rmse(a, b):
    return jnp.sqrt(jnp.mean((a - b) ** 2))


def _fit_one(method, cfg, nets, settings: FitSettings, outputs: Callable, names: tuple[str, ...], args):
    """Fits one run: args = (state, {name: target}, {name: tolerance}) -> (params, iters, rmse)."""
    state, targets, tolerances = args
    rates = dict(settings.learning_rates)
    optimizers = {n: optax.adam(rates[n]) for n in names}

    def errors(sub):
        params = {**state.params, **sub}
        latent, kernel, extras = method.estimate(cfg, nets, params, state.net_state, state.inputs,
                                                 state.method_state)
        produced = outputs(latent, kernel, extras)
        rmse = {n: _rmse(produced[n], targets[n]) for n in names}
        return sum(r**2 for r in rmse.values()), rmse

    def cond(carry):
        _, _, i, rmse, _ = carry
        undone = jnp.stack([rmse[n] > tolerances[n] for n in names])
        return (i < settings.max_iterations) & jnp.any(undone)

    def body(carry):
        sub, opt, i, _, iters = carry
        (_, rmse), grads = jax.value_and_grad(errors, has_aux=True)(sub)
        new_sub, new_opt, new_iters = {}, {}, {}
        for n in names:
            go = rmse[n] > tolerances[n]  # not yet at its tolerance: keep fitting this network
            updates, o = optimizers[n].update(grads[n], opt[n], sub[n])
            p = optax.apply_updates(sub[n], updates)
            new_sub[n] = jax.tree.map(lambda new, old: jnp.where(go, new, old), p, sub[n])
            new_opt[n] = jax.tree.map(lambda new, old: jnp.where(go, new, old), o, opt[n])
            new_iters[n] = iters[n] + go.astype(jnp.int32)
        return new_sub, new_opt, i + 1, rmse, new_iters

    sub = {n: state.params[n] for n in names}
    _, rmse0 = errors(sub)
    carry = (sub, {n: optimizers[n].init(sub[n]) for n in names}, jnp.zeros((), jnp.int32), rmse0,
             {n: jnp.zeros((), jnp.int32) for n in names})
    sub, _, _, _, iters = jax.lax.while_loop(cond, body, carry)
    _, rmse = errors(sub)  # of the final parameters (the loop's carry lags one update at the cap)
    return {**state.params, **sub}, iters, rmse


@functools.lru_cache(maxsize=32)
def _fit_program(method, cfg, nets, settings, outputs, names, strategy, mesh):
    one = functools.partial(_fit_one, method, cfg, nets, settings, outputs, names)
    return jax.jit(batching.sharded_over_runs(batching.over_runs(one, strategy), mesh))


def fit_generators(method, cfg, nets, state: RunState, targets: Mapping[str, Any], tolerances: Mapping[str, Any],
                   settings: FitSettings, *, options: EngineOptions = EngineOptions(),
                   outputs: Callable = double_dip_outputs) -> tuple[RunState, FitInfo]:
    """Fits the networks of R runs to targets; returns (host RunState with fitted params, FitInfo).

    state: a RunState batch (e.g. from `jaxdeblur.engine.runner.init_batch`,
      which also gives `nets`), leading axis R.
    targets: {network name: (R, ...) target output}, e.g. {"image": (R, H+kh-1,
      W+kw-1, C) in [0, 1], "kernel": (R, kh, kw) summing to 1}; networks not
      named keep their parameters.
    tolerances: {network name: (R,) or scalar RMSE} stop fitting a network
      once the RMSE of its output is <= this (0: run to the cap).
    settings: cap and per-network Adam learning rates.
    The optimiser state of `state` (the deblurring's) is returned unchanged.
    """
    names = tuple(sorted(targets))
    if not names:
        return state, FitInfo({}, {}, {}, 0.0)
    rates = dict(settings.learning_rates)
    missing = [n for n in names if n not in rates]
    if missing:
        raise ValueError(f"no learning rate for network(s) {missing} in {settings.learning_rates}")
    unknown = [n for n in names if n not in state.params]
    if unknown:
        raise ValueError(f"no network(s) {unknown} to fit; the method has {sorted(state.params)}")
    runs = int(np.asarray(state.step).shape[0])
    targets = {n: np.asarray(targets[n], np.float32) for n in names}
    tolerances = {n: np.broadcast_to(np.asarray(tolerances[n], np.float32), (runs,)).copy() for n in names}
    for n in names:
        if targets[n].shape[0] != runs:
            raise ValueError(f"target {n!r} has {targets[n].shape[0]} runs, the state {runs}")
        if not np.all(np.isfinite(targets[n])):
            raise ValueError(f"target {n!r} contains NaN or infinite values")

    mesh = batching.run_mesh(options.devices)
    strategy = batching.resolve_strategy(options.strategy, mesh_platform(mesh))
    program = _fit_program(method, cfg, nets, settings, outputs, names, strategy, mesh)
    size = batching.padded_size(runs, mesh)
    args = batching.place(batching.pad_runs((state, targets, tolerances), size), mesh)
    t0 = time.perf_counter()
    params, iters, rmse = batching.to_host(program(args))
    fit_s = time.perf_counter() - t0
    params = jax.tree.map(lambda x: x[:runs], params)
    iters = {n: v[:runs] for n, v in iters.items()}
    rmse = {n: v[:runs] for n, v in rmse.items()}
    reached = {n: rmse[n] <= tolerances[n] for n in names}
    return state.replace(params=params), FitInfo(iters, rmse, reached, fit_s)


__all__ = ["FitSettings", "FitInfo", "fit_generators", "double_dip_outputs"]
