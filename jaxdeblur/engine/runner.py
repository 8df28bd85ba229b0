"""The DIP runner: initialise a batch of runs, iterate on device, report.

Host work happens only between chunks of `chunk` iterations (each chunk is one
compiled lax.scan on device): progress bar, loss history, NaN guard and
checkpoints. One compiled program serves every batch of the same method,
config, shapes, strategy and mesh.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxdeblur.engine import batching
from jaxdeblur.engine.checkpoint import RunCheckpointer
from jaxdeblur.engine.networks import build_networks
from jaxdeblur.engine.state import RunState
from jaxdeblur.engine.step import loss_is_finite, make_chunk


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """How to run (not what): chunking, batching, devices, checkpoints, progress.

    chunk: iterations per compiled on-device chunk (host work in between).
    strategy: "auto", "vmap" or "map" (see `jaxdeblur.engine.batching`).
    devices: devices to spread runs over (default: all).
    checkpoint_dir: where to keep orbax checkpoints (None: no checkpoints).
    checkpoint_every: iterations between checkpoints (a multiple of chunk).
    resume: continue from the newest checkpoint in checkpoint_dir if any.
    progress: show a progress bar.
    """

    chunk: int = 100
    strategy: str = "auto"
    devices: Sequence[Any] | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 500
    resume: bool = False
    progress: bool = True
    description: str = "deblurring"


@dataclasses.dataclass
class BatchOutcome:
    """The end of a batch of R runs (host numpy arrays, leading axis R).

    latents: (R, H+kh-1, W+kw-1, C) the generators' full latent images.
    kernels: (R, kh, kw) estimated kernels (blur convention, sum 1).
    extras: method outputs, each (R, ...).
    history: {term: (R, iterations)} loss terms per iteration.
    state: the final RunState (for chaining stages); timings in seconds.
    """

    latents: np.ndarray
    kernels: np.ndarray
    extras: dict
    history: dict
    state: Any
    timings: dict
    strategy: str
    device: str


class NonFiniteLossError(FloatingPointError):
    """A run's loss became NaN or infinite; `last_good` holds the outcome before it."""

    def __init__(self, message: str, last_good: BatchOutcome | None):
        super().__init__(message)
        self.last_good = last_good


def latent_shape(image_shape: tuple[int, int, int], kernel_size: tuple[int, int]) -> tuple[int, int, int]:
    """The generator's output shape (H+kh-1, W+kw-1, C) for a 'valid' forward model."""
    h, w, c = image_shape
    return (h + kernel_size[0] - 1, w + kernel_size[1] - 1, c)


UNOPTIMISED = {"xla_backend_optimization_level": 0}  # for run-once programs where compile time dominates


class _Program:
    """Compiled pieces for one (method, config, shapes, strategy, mesh)."""

    def __init__(self, method, cfg, image_shape, kernel_size, strategy, mesh):
        self.method, self.cfg, self.mesh, self.strategy = method, cfg, mesh, strategy
        self.latent_shape = latent_shape(image_shape, kernel_size)
        self.kernel_size = kernel_size
        self.nets, self._init_params = build_networks(
            lambda rngs: method.networks(cfg, self.latent_shape, kernel_size, rngs))
        self.optimizer = method.optimizer(cfg)
        # Initialisation runs once per batch, but its many threefry draws (one per
        # parameter array) take XLA's CPU backend minutes to optimise (measured:
        # 42 s for 12 draws at the default level, 1.4 s at level 0): compile it unoptimised.
        self.init = jax.jit(jax.vmap(self._init_one), compiler_options=UNOPTIMISED)
        self.estimate = jax.jit(self._batched(self._estimate_one))
        self._chunks: dict[int, Any] = {}

    def _batched(self, fn):
        return batching.sharded_over_runs(batching.over_runs(fn, self.strategy), self.mesh)

    def _init_one(self, key, y):
        k_params, k_inputs, k_run = jax.random.split(key, 3)
        params, net_state = self._init_params(k_params)
        return RunState(
            params=params, net_state=net_state, opt_state=self.optimizer.init(params),
            inputs=self.method.inputs(self.cfg, k_inputs, self.latent_shape),
            method_state=self.method.init_method_state(self.cfg, self.latent_shape, self.kernel_size),
            y=y, step=jnp.zeros((), jnp.int32), key=jax.random.key_data(k_run))

    def _estimate_one(self, state: RunState):
        return self.method.estimate(self.cfg, self.nets, state.params, state.net_state, state.inputs,
                                    state.method_state)

    def chunk_fn(self, length: int):
        """The jitted (not yet compiled) batched chunk of `length` steps."""
        return jax.jit(self._batched(make_chunk(self.method, self.cfg, self.nets, length)), donate_argnums=0)

    def compiled_chunk(self, length: int, state):
        """The compiled chunk for states like `state`; (executable, compile seconds, 0 if cached)."""
        key = (length, jax.tree.leaves(state)[0].shape[0])
        if key in self._chunks:
            return self._chunks[key], 0.0
        t0 = time.perf_counter()
        self._chunks[key] = self.chunk_fn(length).lower(state).compile()
        return self._chunks[key], time.perf_counter() - t0

    def loss_terms(self, state) -> tuple[str, ...]:
        """Names of the loss terms a step records (traced abstractly, nothing runs)."""
        return tuple(jax.eval_shape(self.chunk_fn(1), state)[1])

@functools.lru_cache(maxsize=32)
def _program(method, cfg, image_shape, kernel_size, strategy, mesh) -> _Program:
    return _Program(method, cfg, image_shape, kernel_size, strategy, mesh)


def _check_batch(ys: np.ndarray, kernel_size: tuple[int, int]) -> None:
    if ys.ndim != 4:
        raise ValueError(f"blurred images must be stacked as (R, H, W, C), got shape {ys.shape}")
    if ys.shape[0] == 0:
        raise ValueError("empty batch: no images to deblur")
    kh, kw = kernel_size
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel size must be positive, got {kernel_size}")
    if kh > ys.shape[1] or kw > ys.shape[2]:
        raise ValueError(f"kernel size {kernel_size} is larger than the image {ys.shape[1:3]}")
    if not np.all(np.isfinite(ys)):
        raise ValueError("blurred images contain NaN or infinite values")


def _to_host(tree):
    return jax.tree.map(np.asarray, tree)


class _Runs:
    """Host bookkeeping of a batch: placement, padding, history, checkpoints."""

    def __init__(self, program: _Program, runs: int, iterations: int, options: EngineOptions):
        self.program, self.runs, self.iterations, self.options = program, runs, iterations, options
        self.size = batching.padded_size(runs, program.mesh)

    def place(self, tree):
        return batching.place(batching.pad_runs(tree, self.size), self.program.mesh)

    def outcome(self, state, history, timings) -> BatchOutcome:
        latents, kernels, extras = _to_host(self.program.estimate(state))
        r = self.runs
        return BatchOutcome(
            latents=latents[:r], kernels=kernels[:r], extras={k: v[:r] for k, v in extras.items()},
            history={k: v[:r] for k, v in history.items()}, state=jax.tree.map(lambda x: x[:r], _to_host(state)),
            timings=timings, strategy=self.program.strategy, device=jax.devices()[0].device_kind)


def init_batch(method, cfg, ys: np.ndarray, kernel_size: tuple[int, int], keys: jax.Array,
               options: EngineOptions = EngineOptions()) -> tuple[Any, RunState]:
    """Initialises R runs (one key each) and returns (networks, host RunState batch).

    Stages that start from fitted networks (Kotera's initialisation, the
    kernel-space warm-up) change the returned state before `run_batch`.
    """
    ys = np.asarray(ys, np.float32)
    _check_batch(ys, kernel_size)
    program = _get_program(method, cfg, ys.shape[1:], kernel_size, options)
    return program.nets, _to_host(program.init(jnp.asarray(keys), jnp.asarray(ys)))


def _get_program(method, cfg, image_shape, kernel_size, options):
    mesh = batching.run_mesh(options.devices)
    strategy = batching.resolve_strategy(options.strategy, mesh.devices.flat[0].platform)
    if hasattr(cfg, "iterations"):  # the step does not depend on the run length: share the program
        cfg = dataclasses.replace(cfg, iterations=0)
    return _program(method, cfg, tuple(image_shape), tuple(kernel_size), strategy, mesh)


def run_batch(method, cfg, ys: np.ndarray, kernel_size: tuple[int, int], keys: jax.Array, *,
              iterations: int, options: EngineOptions = EngineOptions(), state: RunState | None = None,
              meta: dict | None = None) -> BatchOutcome:
    """Runs `iterations` DIP steps on each of R blurred images, all in one compiled program.

    ys: (R, H, W, C) float32 in [0, 1], one kernel size for all (group mixed
    sizes with `jaxdeblur.api.deblur_batch`). keys: (R,) PRNG keys, one per
    run; run r gives the same result as a batch of one with keys[r].
    state: a RunState batch to start from (default: fresh from `keys`).
    Raises NonFiniteLossError when a loss turns NaN (last good outcome attached).
    """
    ys = np.asarray(ys, np.float32)
    _check_batch(ys, kernel_size)
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    program = _get_program(method, cfg, ys.shape[1:], kernel_size, options)
    runs = _Runs(program, ys.shape[0], iterations, options)
    if state is None:
        state = program.init(jnp.asarray(keys), jnp.asarray(ys))
    state = runs.place(state)
    history = {k: np.full((runs.size, iterations), np.nan, np.float32) for k in program.loss_terms(state)}
    meta = {"method": method.name, "config": repr(cfg), "runs": runs.runs, "iterations": iterations,
            "image_shape": list(ys.shape[1:]),
            "kernel_size": list(kernel_size), **(meta or {})}
    ckpt = RunCheckpointer(options.checkpoint_dir) if options.checkpoint_dir else None
    done = 0
    if ckpt is not None and options.resume and ckpt.latest_step() is not None:
        state, history, done = _resume(ckpt, runs, state, history, meta)
    start = done
    every = max(1, options.checkpoint_every // options.chunk) * options.chunk
    timings = {"compile_s": 0.0, "run_s": 0.0}
    bar = tqdm(total=iterations, initial=done, desc=options.description, disable=not options.progress, unit="it")
    try:
        while done < iterations:
            length = min(options.chunk, iterations - done)
            compiled, compile_s = program.compiled_chunk(length, state)
            timings["compile_s"] += compile_s
            snapshot = _to_host(state)  # the last good state: the chunk donates `state`
            t0 = time.perf_counter()
            state, chunk_history = compiled(state)
            chunk_history = _to_host(chunk_history)  # (R, length) per term; waits for the device
            timings["run_s"] += time.perf_counter() - t0
            finite = np.asarray(loss_is_finite(chunk_history))
            if not finite.all():
                _stop_on_nan(runs, ckpt, snapshot, history, meta, timings, done, length, finite)
            for k, v in chunk_history.items():
                history[k][:, done:done + length] = v
            done += length
            bar.update(length)
            bar.set_postfix(loss=f"{float(np.mean(chunk_history['loss'][:runs.runs, -1])):.4g}")
            if ckpt is not None and (done % every == 0 or done == iterations):
                ckpt.save(done, state, history, meta)
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()
    timings["iterations_run"] = done - start
    timings["ms_per_iteration"] = 1e3 * timings["run_s"] / max(done - start, 1)
    return runs.outcome(state, history, timings)


def _stop_on_nan(runs: _Runs, ckpt, snapshot, history, meta, timings, done, length, finite):
    """Saves the last good state and raises NonFiniteLossError naming the runs."""
    bad = [int(i) for i in np.flatnonzero(~finite) if i < runs.runs]
    good_state = runs.place(snapshot)
    if ckpt is not None:
        ckpt.save(done, good_state, history, meta)
    where = f" and saved in {ckpt.directory}" if ckpt is not None else ""
    raise NonFiniteLossError(
        f"loss became NaN or infinite for run(s) {bad} between iterations {done} and {done + length}; "
        f"stopped. The last good state (iteration {done}) is attached as .last_good{where}. "
        "Try a lower learning rate or another seed.", runs.outcome(good_state, history, timings))


def _resume(ckpt: RunCheckpointer, runs: _Runs, state, history: dict, meta: dict):
    """Loads the newest checkpoint in the layout of `state`; returns (state, history, iterations done)."""
    saved_meta = ckpt.meta()  # checked before the state, whose layout may not even match
    for field in ("method", "config", "runs", "image_shape", "kernel_size", "iterations"):
        if saved_meta.get(field) != meta.get(field):
            raise ValueError(f"checkpoint in {ckpt.directory} is from another job ({field}: "
                             f"{saved_meta.get(field)!r} != {meta.get(field)!r}); use another directory")
    restored, saved_history, _ = ckpt.restore(state, history)
    done = int(np.asarray(restored.step).reshape(-1)[0])
    return runs.place(_to_host(restored)), {k: np.array(v) for k, v in saved_history.items()}, done


__all__ = ["EngineOptions", "BatchOutcome", "NonFiniteLossError", "init_batch", "run_batch", "latent_shape"]
