"""`train(task, workdir)`: the supervised training loop.

Host side of a run: fetch `steps_per_call` host batches, place them on the
mesh, run one jitted call, and between calls (at the first call boundary at
or after each multiple of their periods, and at the last step): log JSON
lines, evaluate, save checkpoints. The device is never waited for except at
those events, so the host prepares the next batches while the device computes.

Workdir layout: ``checkpoints/<step>/`` (orbax), ``metrics.jsonl`` (see
`jaxdeblur.train.log`), ``run.json`` (the run stamp: task name + config).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import jax
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from jaxdeblur import distributed
from jaxdeblur.engine.runner import RunInterrupted
from jaxdeblur.train.checkpoints import TrainCheckpoints
from jaxdeblur.train.lock import workdir_lock
from jaxdeblur.train.log import MetricsLog, Window
from jaxdeblur.train.parallel import check_batch_size, data_mesh
from jaxdeblur.train.program import Program, program_for
from jaxdeblur.train.records import run_stamp, upgrade_stamp
from jaxdeblur.train.state import TrainState, model_of
from jaxdeblur.train.task import Task, TrainSettings


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """The end of a training run.

    Attributes:
      state: the final `TrainState` (replicated device arrays).
      graphdef: the model's static structure (`model()` merges it with the state).
      eval_metrics: the evaluation at the last step {metric: float}.
      best_step: the step of the best evaluated checkpoint kept, or None.
      workdir: where the checkpoints and metrics.jsonl are.
    """

    state: TrainState
    graphdef: nnx.GraphDef
    eval_metrics: dict
    best_step: int | None
    workdir: Path

    def model(self) -> nnx.Module:
        """The trained network as a live module."""
        return model_of(self.graphdef, self.state)


def settings_of(task: Task) -> TrainSettings:
    """`task.config.train`; TypeError naming the task when it is missing."""
    settings = getattr(getattr(task, "config", None), "train", None)
    if not isinstance(settings, TrainSettings):
        raise TypeError(f"task {getattr(task, 'name', type(task).__name__)!r} needs config.train: TrainSettings")
    return settings


def _due(every: int, before: int, after: int, last: int) -> bool:
    """Whether a call from step `before` to `after` crosses a multiple of `every` (or ends the run)."""
    return after // every > before // every or after == last


def train(task: Task, workdir: str | Path, *, resume: bool = False, progress: bool = True,
          devices: Sequence[jax.Device] | None = None) -> TrainResult:
    """Trains `task` for `task.config.train.steps` steps, data parallel over `devices` (default: all).

    Args:
      task: the model's `Task`.
      workdir: the run's folder (created); holds checkpoints and metrics.jsonl.
      resume: continue from the newest checkpoint in `workdir` (a fresh start
        when there is none). The resumed run ends with exactly the parameters
        an uninterrupted run would have.
      progress: show a tqdm bar (loss, images/s, skipped steps).
      devices: the devices of the data-parallel mesh.

    Returns:
      TrainResult. On KeyboardInterrupt the current state and loader position
      are saved as a checkpoint, then `RunInterrupted` (a KeyboardInterrupt
      with .checkpoint_dir and .step, where resume=True continues) is raised.

    Raises:
      FileExistsError: `workdir` already holds checkpoints and resume is False.
      WorkdirInUse: another training is running in `workdir` (jaxdeblur.train.lock).
      ValueError: resuming a workdir written by another task or config; a
        batch size that does not split over the devices.
    """
    workdir = Path(workdir).absolute()
    with workdir_lock(workdir):
        return _train_locked(task, workdir, resume, progress, devices)


def _train_locked(task: Task, workdir: Path, resume: bool, progress: bool,
                  devices: Sequence[jax.Device] | None) -> TrainResult:
    settings = settings_of(task)
    mesh = data_mesh(devices)
    check_batch_size(settings.batch_size, mesh)
    program = program_for(task, mesh)
    stamp = run_stamp(task)
    host_eval_batches = task.eval_batches()
    if jax.process_count() > 1:  # one run over several processes: the same job everywhere, else one clear error
        distributed.check_same(
            distributed.digest(json.dumps(stamp, sort_keys=True, default=str), resume,
                               [np.asarray(v) for b in host_eval_batches for _, v in sorted(b.items())]),
            f"the trainings of task {task.name!r} (config, resume or evaluation batches)",
            "start the same command on every process; only the train loader's rows differ (each process's own "
            "block of the global batch)")
    checkpoints = TrainCheckpoints(workdir / "checkpoints", keep=settings.keep_checkpoints,
                                   best_metric=task.best_metric)
    try:
        latest = checkpoints.latest_step()
        if latest is not None and not resume:
            raise FileExistsError(f"{workdir} already holds checkpoints (newest: step {latest}); pass resume=True "
                                  "(--resume) to continue that run, or use a new workdir")
        if latest is not None:
            checkpoints.check_stamp(stamp, upgrade=functools.partial(upgrade_stamp, task))
        state = program.initial_state(settings.seed)
        loader = task.train_loader(settings.seed)
        if latest is not None:
            state, loader_state = checkpoints.restore(state)
            loader.set_state(loader_state)
        if jax.process_index() == 0:
            (workdir / "run.json").write_text(json.dumps(stamp, indent=1))
        log = MetricsLog(workdir / "metrics.jsonl", resumed_at=latest)
        eval_batches = program.device_eval_batches(host_eval_batches)
        state, eval_metrics = _run(task, program, settings, state, loader, eval_batches, checkpoints, log, stamp,
                                   progress)
        return TrainResult(state=state, graphdef=program.graphdef, eval_metrics=eval_metrics,
                           best_step=checkpoints.best_step(), workdir=workdir)
    finally:
        checkpoints.close()


def _next_batches(loader, count: int, step: int) -> list[dict]:
    try:
        return [next(loader) for _ in range(count)]
    except StopIteration:
        raise RuntimeError(f"the train loader ran out of batches at step {step}; it must repeat (epochs)") from None


def _run(task, program: Program, settings: TrainSettings, state: TrainState, loader, eval_batches, checkpoints,
         log: MetricsLog, stamp: dict, progress: bool) -> tuple[TrainState, dict]:
    """The loop from `state` to the last step; returns (final state, last evaluation)."""
    start, last = int(state.step), settings.steps
    current = (state, loader.get_state())  # replaced as one pair: always a consistent checkpoint
    window = Window(settings.batch_size)
    eval_metrics: dict | None = None
    t0 = time.perf_counter()
    bar = tqdm(total=last, initial=start, unit="step", disable=not progress or jax.process_index() != 0,
               file=sys.stderr, dynamic_ncols=True)
    step = start
    pending: dict = {}  # compile_s, written with the next line
    try:
        while step < last:
            count = min(settings.steps_per_call, last - step)
            batches = program.device_batches(_next_batches(loader, count, step))
            new_state, (values, finite) = program.train_call(count)(current[0], batches)
            current = (new_state, loader.get_state())
            window.add(values, finite)
            before, step = step, step + count
            bar.update(count)
            record: dict = {}
            if before == start:  # the first call compiled: keep it out of the throughput
                window.pause(current[0])
                pending["compile_s"] = round(time.perf_counter() - t0, 3)
                window.restart()
            if _due(settings.log_every, before, step, last):
                window.pause(current[0])
                record.update(window.summary())
                record["skipped"] = int(current[0].skipped)
                bar.set_postfix(loss=f"{record.get('train', {}).get('loss', float('nan')):.4g}",
                                img_s=f"{record.get('images_per_s', 0):.1f}", skipped=record["skipped"])
                window.resume()
            metrics = None
            if _due(settings.eval_every, before, step, last):
                window.pause(current[0])
                metrics = eval_metrics = program.evaluate(current[0], eval_batches) or None
                if metrics is not None:
                    if task.best_metric[0] not in metrics:
                        raise ValueError(f"task {task.name!r}: evaluate returned {sorted(metrics)}, without its "
                                         f"best_metric {task.best_metric[0]!r}")
                    record["eval"] = metrics
                window.resume()
            if metrics is not None or _due(settings.checkpoint_every, before, step, last):
                window.pause(current[0])
                checkpoints.save(step, *current, stamp, metrics)
                window.resume()
            if record:
                log.write({"step": step, "time_s": round(time.perf_counter() - t0, 3), **pending, **record})
                pending = {}
    except KeyboardInterrupt as interrupt:
        step = int(current[0].step)
        checkpoints.save(step, *current, stamp)
        raise RunInterrupted(str(checkpoints.directory), step) from interrupt
    finally:
        bar.close()
    if eval_metrics is None:  # resumed at the end: nothing ran
        eval_metrics = program.evaluate(current[0], eval_batches)
    return current[0], eval_metrics
