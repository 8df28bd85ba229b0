"""The DIP runner: initialise a batch of runs, iterate on device, report.

Host work happens only between chunks of `chunk` iterations (each chunk is one
compiled lax.scan on device): progress bar, loss history, checkpoints, and
reading the NaN guard's per-run flag (the guard itself runs on device, see
`jaxdeblur.engine.step`: the state is never copied to the host just in
case). One compiled program serves every batch of the same method,
config, shapes, strategy and mesh.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxdeblur import distributed
from jaxdeblur.engine import batching
from jaxdeblur.engine import memory
from jaxdeblur.engine.checkpoint import RunCheckpointer
from jaxdeblur.engine.networks import build_networks
from jaxdeblur.engine.state import RunState
from jaxdeblur.engine.step import make_chunk
from jaxdeblur.nets.conv import CPU_COMPILER_OPTIONS
from jaxdeblur.nets.platform import mesh_platform

if TYPE_CHECKING:  # the base class imports this module (its `run` calls run_batch)
    from jaxdeblur.engine.method import DIPMethod


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """How to run (not what): chunking, batching, devices, checkpoints, progress.

    chunk: iterations per compiled on-device chunk (host work in between).
    strategy: "auto", "vmap" or "map" (see `jaxdeblur.engine.batching`).
    devices: devices to spread runs over (default: all).
    checkpoint_dir: where to keep orbax checkpoints (None: no checkpoints), one
      job per folder: a folder that already holds checkpoints is refused
      unless `resume`.
    checkpoint_every: iterations between checkpoints, honoured exactly (a
      chunk ends at every multiple of it; a value that is not a multiple of
      `chunk` costs one more compiled chunk length).
    resume: continue from the newest valid checkpoint in checkpoint_dir if any
      (damaged or non-finite steps are reported through `log`, removed, and
      the previous step is used).
    progress: show a progress bar.
    log: where one-line notices go (expected run time, checkpoint problems);
      None: printed to stderr while `progress` is on, else problems only, as warnings.
    run_info: what identifies the job beyond the engine's own fields (the
      API's stamp: input hashes, preset, colour mode, seeds, version); saved
      with every checkpoint and compared on resume ("labels" excepted: input
      names, for messages only).
    check_memory: before the first step, compare the compiled program's memory
      need with the device's free memory and stop (NotEnoughMemoryError) if it
      does not fit.
    """

    chunk: int = 100
    strategy: str = "auto"
    devices: Sequence[Any] | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 500
    resume: bool = False
    progress: bool = True
    description: str = "deblurring"
    log: Callable[[str], None] | None = None
    run_info: Mapping[str, Any] | None = None
    check_memory: bool = True


def notify(options: EngineOptions, message: str, *, problem: bool = False) -> None:
    """One line for the user: to `options.log`, else stderr while progress is on, else a warning if a problem."""
    if options.log is not None:
        options.log(message)
    elif options.progress:
        tqdm.write(message, file=sys.stderr)
    elif problem:
        warnings.warn(message, RuntimeWarning, stacklevel=3)


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


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; `checkpoint_dir` / `step`: where a resume continues from (step None: the start)."""

    def __init__(self, checkpoint_dir: str | None, step: int | None):
        super().__init__(checkpoint_dir, step)
        self.checkpoint_dir, self.step = checkpoint_dir, step

    def __str__(self) -> str:
        if self.checkpoint_dir is None:
            return "interrupted; no checkpoints were kept, so a new run starts from the beginning"
        if self.step is None:
            return (f"interrupted before the first checkpoint; --resume (resume=True) starts from the beginning "
                    f"({self.checkpoint_dir})")
        return (f"interrupted; --resume (resume=True) will continue from iteration {self.step} "
                f"(checkpoint {self.checkpoint_dir}/{self.step})")


class NonFiniteLossError(FloatingPointError):
    """A run's loss became NaN or infinite; `last_good` holds the outcome before it."""

    def __init__(self, message: str, last_good: BatchOutcome | None):
        super().__init__(message)
        self.last_good = last_good


def latent_shape(image_shape: tuple[int, int, int], kernel_size: tuple[int, int]) -> tuple[int, int, int]:
    """The generator's output shape (H+kh-1, W+kw-1, C) for a 'valid' forward model."""
    h, w, c = image_shape
    return (h + kernel_size[0] - 1, w + kernel_size[1] - 1, c)


def method_latent_shape(method: DIPMethod, cfg, image_shape, kernel_size) -> tuple[int, int, int]:
    """The latent a method's generator makes (its `latent_shape`; the base's default is `latent_shape`)."""
    return tuple(method.latent_shape(cfg, tuple(image_shape), tuple(kernel_size)))


def image_offset(method: DIPMethod, cfg, kernel_size: tuple[int, int]) -> tuple[int, int]:
    """(row, column) of the image's top-left pixel in the latent (its `image_offset`; the base's default is
    ((kh - 1) // 2, (kw - 1) // 2), the 'valid' model's observed region). Crop latent[oy:oy + H, ox:ox + W]."""
    return tuple(method.image_offset(cfg, tuple(kernel_size)))


UNOPTIMISED = {"xla_backend_optimization_level": 0}  # for run-once programs where compile time dominates


class _Program:
    """Compiled pieces for one (method, config, shapes, strategy, mesh)."""

    def __init__(self, method: DIPMethod, cfg, image_shape, kernel_size, strategy, mesh):
        self.method, self.cfg, self.mesh, self.strategy = method, cfg, mesh, strategy
        self.latent_shape = method_latent_shape(method, cfg, image_shape, kernel_size)
        self.kernel_size = kernel_size
        # the method's run-shared constants (frozen pretrained nets): one replicated copy, an argument of
        # every step (never a per-run leaf of the state, never baked into the compiled program)
        self.shared = batching.replicate(method.shared(cfg), mesh)
        self.nets, self._init_params = build_networks(
            lambda rngs: method.networks(cfg, self.latent_shape, kernel_size, rngs))
        self.optimizer = method.optimizer(cfg)
        # Initialisation runs once per batch, but its many threefry draws (one per
        # parameter array) take XLA's CPU backend minutes to optimise (measured:
        # 42 s for 12 draws at the default level, 1.4 s at level 0): compile it unoptimised.
        self.init = jax.jit(jax.vmap(self._init_one), compiler_options=UNOPTIMISED)
        self._estimate = jax.jit(self._batched(self._estimate_one))
        self._chunk_fns: dict[int, Any] = {}
        self._chunks: dict[tuple[int, int], Any] = {}
        self._loss_terms: tuple[str, ...] | None = None

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

    def _estimate_one(self, state: RunState, shared):
        return self.method.estimate(self.cfg, self.nets.with_shared(shared), state.params, state.net_state,
                                    state.inputs, state.method_state)

    def estimate(self, state):
        """(latents, kernels, extras) of a batch of run states (the method's `estimate`, batched)."""
        return self._estimate(state, self.shared)

    def chunk_fn(self, length: int):
        """The jitted (not yet compiled) batched chunk of `length` steps: one per length, so its trace is shared
        by `loss_terms`, the compile and the memory estimate."""
        if length not in self._chunk_fns:
            self._chunk_fns[length] = jax.jit(self._batched(make_chunk(self.method, self.cfg, self.nets, length)),
                                              donate_argnums=0)
        return self._chunk_fns[length]

    def compiled_chunk(self, length: int, state):
        """The compiled chunk for states like `state`; (executable, compile seconds, 0 if cached)."""
        key = (length, jax.tree.leaves(state)[0].shape[0])
        if key in self._chunks:
            return self._chunks[key], 0.0
        t0 = time.perf_counter()
        # on CPUs with the options that keep XLA's fastest convolution kernels (see `jaxdeblur.nets.conv`)
        options = CPU_COMPILER_OPTIONS if mesh_platform(self.mesh) == "cpu" else None
        self._chunks[key] = self.chunk_fn(length).lower(state, self.shared).compile(compiler_options=options)
        return self._chunks[key], time.perf_counter() - t0

    def loss_terms(self, state, length: int) -> tuple[str, ...]:
        """Names of the loss terms a step records: read from the trace of the chunk of `length` steps for
        states like `state` (the trace its compile then reuses; once per program, nothing runs)."""
        if self._loss_terms is None:
            self._loss_terms = tuple(jax.eval_shape(self.chunk_fn(length), state, self.shared)[1])
        return self._loss_terms

@functools.lru_cache(maxsize=32)
def _program(method: DIPMethod, cfg, image_shape, kernel_size, strategy, mesh) -> _Program:
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
    return batching.to_host(tree)  # gathers the runs of other processes (jax.distributed)


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


def init_batch(method: DIPMethod, cfg, ys: np.ndarray, kernel_size: tuple[int, int], keys: jax.Array,
               options: EngineOptions = EngineOptions()) -> tuple[Any, RunState]:
    """Initialises R runs (one key each) and returns (networks, host RunState batch).

    Stages that start from fitted networks (Kotera's initialisation, the
    kernel-space warm-up) change the returned state before `run_batch`.
    """
    ys = np.asarray(ys, np.float32)
    _check_batch(ys, kernel_size)
    program = _get_program(method, cfg, ys.shape[1:], kernel_size, options)
    return program.nets, _to_host(program.init(jnp.asarray(keys), jnp.asarray(ys)))


def _get_program(method: DIPMethod, cfg, image_shape, kernel_size, options):
    from jaxdeblur.engine.method import DIPMethod  # noqa: PLC0415 - the base imports this module

    if not isinstance(method, DIPMethod):
        raise TypeError(f"the DIP engine runs subclasses of jaxdeblur.engine.DIPMethod, got {type(method).__name__}")
    mesh = batching.run_mesh(options.devices)
    strategy = batching.resolve_strategy(options.strategy, mesh_platform(mesh))
    if hasattr(cfg, "iterations"):  # the step does not depend on the run length: share the program
        cfg = dataclasses.replace(cfg, iterations=0)
    return _program(method, cfg, tuple(image_shape), tuple(kernel_size), strategy, mesh)


def run_batch(method: DIPMethod, cfg, ys: np.ndarray, kernel_size: tuple[int, int], keys: jax.Array, *,
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
    meta = {"method": method.name, "config": repr(cfg), "runs": ys.shape[0], "iterations": iterations,
            "image_shape": list(ys.shape[1:]),
            "kernel_size": list(kernel_size), **(meta or {}), "run_info": dict(options.run_info or {})}
    if jax.process_count() > 1:  # before anything is placed on the other processes' devices
        _check_same_batch(ys, keys, {**meta, "checkpoints": options.checkpoint_dir is not None}, state)
        if options.checkpoint_dir is not None:  # the same on every process (checked above): all stop here
            raise ValueError(f"checkpoint_dir: the DIP engine's checkpoints are not supported on several processes "
                             f"yet ({jax.process_count()} processes); run without checkpoint_dir")
    program = _get_program(method, cfg, ys.shape[1:], kernel_size, options)
    runs = _Runs(program, ys.shape[0], iterations, options)
    if state is None:
        state = program.init(jnp.asarray(keys), jnp.asarray(ys))
    state = runs.place(state)
    ckpt = _open_checkpoints(options)
    terms = program.loss_terms(state, _chunk_length(options, ckpt, 0, max(iterations, 1)))
    history = {k: np.full((runs.size, iterations), np.nan, np.float32) for k in terms}
    done = 0
    if ckpt is not None and ckpt.latest_step() is not None:
        state, history, done = _resume(ckpt, runs, state, history, meta, options)
    start = done
    timings = {"compile_s": 0.0, "run_s": 0.0}
    if options.check_memory and done < iterations:
        timings["compile_s"] += _check_memory(program, state, _chunk_length(options, ckpt, done, iterations),
                                              ys.shape[1:], runs.runs)
    bar = tqdm(total=iterations, initial=done, desc=options.description, disable=not options.progress, unit="it")
    try:
        while done < iterations:
            length = _chunk_length(options, ckpt, done, iterations)
            compiled, compile_s = program.compiled_chunk(length, state)
            timings["compile_s"] += compile_s
            t0 = time.perf_counter()
            state, chunk_history, finite = compiled(state, program.shared)
            # only the small history (R, length) per term and flags (R,) come to the host; waits for the device
            chunk_history, finite = _to_host((chunk_history, finite))
            timings["run_s"] += time.perf_counter() - t0
            for k, v in chunk_history.items():
                history[k][:, done:done + length] = v
            if not finite.all():
                _stop_on_nan(runs, ckpt, state, history, meta, timings, done, length, finite)
            done += length
            bar.update(length)
            bar.set_postfix(loss=f"{float(np.mean(chunk_history['loss'][:runs.runs, -1])):.4g}")
            if done - start == length and done < iterations:
                _report_expected_time(options, timings["run_s"], length, iterations - done)
            if ckpt is not None and (done % options.checkpoint_every == 0 or done == iterations):
                ckpt.save(done, state, history, meta)
    except KeyboardInterrupt as err:
        raise RunInterrupted(None if ckpt is None else str(ckpt.directory),
                             None if ckpt is None else ckpt.latest_step()) from err
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()
    timings["iterations_run"] = done - start
    timings["ms_per_iteration"] = 1e3 * timings["run_s"] / max(done - start, 1)
    return runs.outcome(state, history, timings)


def _check_same_batch(ys: np.ndarray, keys, meta: dict, state=None) -> None:
    """On several processes (jax.distributed): ValueError, on every process, unless all hold the same batch
    (images, keys, job record and the starting state, when given)."""
    try:
        key_data = np.asarray(jax.random.key_data(keys))
    except TypeError:  # raw key data
        key_data = np.asarray(keys)
    record = {k: v for k, v in meta.items() if k != "run_info"}
    record["run_info"] = {k: v for k, v in meta.get("run_info", {}).items() if k != "labels"}  # names may differ
    distributed.check_same(
        distributed.digest(ys, key_data, json.dumps(record, sort_keys=True, default=str),
                           [np.asarray(x) for x in jax.tree.leaves(_to_host(state))] if state is not None else None),
        "the batches of runs (images, seeds, kernel size, method, config or iterations)",
        "every process must pass the same whole batch (each computes its share of the runs and gets every result)")


def _stop_on_nan(runs: _Runs, ckpt, state, history, meta, timings, done, length, finite):
    """Raises NonFiniteLossError naming the runs; saves the last good state when the runs stopped together.

    The chunk's on-device guard froze each run at its last good state, so
    `state.step` (R,) is the iteration each run stopped at (its first
    non-finite step for the runs that went bad). A checkpoint needs one
    iteration for the whole batch: it is written when all runs stopped there.
    """
    stopped = _to_host(state.step).reshape(-1)
    bad = [int(i) for i in np.flatnonzero(~finite) if i < runs.runs]
    where = ""
    if ckpt is not None and np.all(stopped == stopped[0]):
        ckpt.save(int(stopped[0]), state, history, meta)
        where = f" and saved in {ckpt.directory}"
    raise NonFiniteLossError(
        f"loss became NaN or infinite for run(s) {bad} at iteration(s) {[int(stopped[i]) for i in bad]} "
        f"(between iterations {done} and {done + length}); stopped. The last good state of each run "
        f"(before its first non-finite step) is attached as .last_good{where}. "
        "Try a lower learning rate or another seed.", runs.outcome(state, history, timings))


def _open_checkpoints(options: EngineOptions) -> RunCheckpointer | None:
    if options.checkpoint_dir is None:
        return None
    every = options.checkpoint_every
    if isinstance(every, bool) or int(every) != every or every < 1:
        raise ValueError(f"checkpoint_every must be a positive number of iterations (e.g. {options.chunk} or "
                         f"{5 * options.chunk}), got {every!r}")
    return RunCheckpointer(options.checkpoint_dir)


def _chunk_length(options: EngineOptions, ckpt, done: int, iterations: int) -> int:
    """The next chunk: `chunk` iterations, cut short at the end and at the next checkpoint."""
    length = min(options.chunk, iterations - done)
    if ckpt is not None:
        length = min(length, options.checkpoint_every - done % options.checkpoint_every)
    return length


def _check_memory(program: _Program, state, length: int, image_shape, runs: int) -> float:
    """Compiles the first chunk and stops (NotEnoughMemoryError) if it cannot fit; returns the compile seconds."""
    compiled, compile_s = program.compiled_chunk(length, state)
    need = memory.program_need(compiled)
    if need is None:
        need = memory.traced_need(program.chunk_fn(length), state, program.shared)
    memory.check_fits(need, program.mesh.devices.flat[0], image_shape=tuple(image_shape), runs=runs)
    return compile_s


def _report_expected_time(options: EngineOptions, run_s: float, length: int, remaining: int) -> None:
    per_iteration = run_s / length
    left = per_iteration * remaining
    notify(options, f"expected run time: about {_duration(left)} more ({1e3 * per_iteration:.0f} ms per "
                    f"iteration over the first {length}, {remaining} iterations to go)")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_JOB_FIELDS = ("method", "config", "runs", "image_shape", "kernel_size", "iterations")


def _same_job(ckpt: RunCheckpointer, saved: dict, meta: dict) -> None:
    """Raises ValueError when a checkpoint's record names another job (never resume another input's state)."""
    mine = {k: v for k, v in meta.get("run_info", {}).items() if k != "labels"}
    theirs = {k: v for k, v in saved.get("run_info", {}).items() if k != "labels"}
    for field in _JOB_FIELDS:
        if saved.get(field) != meta.get(field):
            raise ValueError(f"checkpoint in {ckpt.directory} is from another job ({field}: "
                             f"{saved.get(field)!r} != {meta.get(field)!r}); use another directory")
    if mine != theirs:
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise ValueError(f"checkpoint in {ckpt.directory} is from another job (inputs "
                         f"{saved.get('run_info', {}).get('labels', '?')}; differs in {differ}); "
                         "use another directory")


def _resume(ckpt: RunCheckpointer, runs: _Runs, state, history: dict, meta: dict, options: EngineOptions):
    """Loads the newest valid checkpoint in the layout of `state`; returns (state, history, iterations done).

    A folder with checkpoints is refused unless `options.resume` (it would
    otherwise be left holding another attempt's steps). Damaged or non-finite
    steps are reported and skipped; when none is left the run starts afresh.
    """
    if not options.resume:
        raise FileExistsError(f"{ckpt.directory} already holds checkpoints (newest: iteration "
                              f"{ckpt.latest_step()}); resume to continue from them, or remove the folder "
                              "to start again")
    found = ckpt.restore_newest_valid(state, history, check_meta=lambda saved: _same_job(ckpt, saved, meta),
                                      notify=lambda message: notify(options, message, problem=True))
    if found is None:
        notify(options, f"no usable checkpoint left in {ckpt.directory}: starting from the beginning", problem=True)
        return state, history, 0
    restored, saved_history, _ = found
    done = int(np.asarray(restored.step).reshape(-1)[0])
    return runs.place(_to_host(restored)), {k: np.array(v) for k, v in saved_history.items()}, done


__all__ = ["EngineOptions", "BatchOutcome", "NonFiniteLossError", "RunInterrupted", "notify", "init_batch",
           "run_batch", "latent_shape", "method_latent_shape", "image_offset"]
