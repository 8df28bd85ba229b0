"""What the trainer needs from a model: `TrainSettings` (in every model config) and the `Task` protocol.

A model package (``jaxdeblur/models/<m>/task.py``) implements `Task` with a
frozen (hence hashable) dataclass; `jaxdeblur.train.train(task, workdir)`
runs it. The trainer owns everything generic: the jitted step, data
parallelism, the NaN/inf guard, checkpoints, evaluation, logging. The task
owns everything specific: the network, the loss, the optimiser, the data.

Lifecycle of one optimiser step (inside one jitted device call)::

    host:   batch = next(task.train_loader(seed))      # {name: np.ndarray (B, ...)}
    device: batch = task.prepare(key_prepare, batch)  # e.g. degrade sharp tiles
            model = merge(graphdef, trainable, rest)   # a live nnx.Module
            loss, metrics = task.loss(model, batch, key_loss)
            grads of loss w.r.t. the `task.trainable()` variables only -> optax update
            rest  = the model's other variables after the call (BatchNorm statistics)

Subclass `Task` explicitly (``class MyTask(Task)``) to inherit the default
`trainable` (every `nnx.Param`); a task with a frozen pretrained part
returns a narrower filter, and the excluded parameters are neither
differentiated nor updated.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Protocol, runtime_checkable

import jax
import optax
from flax import nnx

COMPUTE_DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """The trainer's settings; every model config has a field ``train: TrainSettings``.

    Attributes:
      steps: optimiser steps in all.
      batch_size: global batch (images per step), split evenly over all devices.
      seed: seeds the model initialisation, the loader and the per-step keys.
      steps_per_call: steps fused in one device call (`lax.scan` over stacked
        batches); evaluation, logging and checkpoints happen between calls, at
        the first call boundary at or after each multiple of their period.
      eval_every, checkpoint_every, log_every: periods in steps (evaluation
        also saves a checkpoint, ranked by `Task.best_metric`).
      keep_checkpoints: the newest checkpoints kept, plus the best one.
      compute_dtype: "float32", or "bfloat16" on accelerators (parameters,
        optimiser state and gradients stay float32; the step casts the
        parameters and the floating inputs).
    """

    steps: int
    batch_size: int
    seed: int = 0
    steps_per_call: int = 1
    eval_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    compute_dtype: str = "float32"

    def __post_init__(self):
        for name in ("steps", "batch_size", "steps_per_call", "eval_every", "checkpoint_every", "keep_checkpoints",
                     "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"TrainSettings.compute_dtype must be one of {COMPUTE_DTYPES}, got {self.compute_dtype!r}")


@runtime_checkable
class Loader(Protocol):
    """A host iterator of training batches whose position can be saved and restored.

    Yields dicts {name: np.ndarray (B, ...)} of this process's rows: B =
    `TrainSettings.batch_size` / jax.process_count() (the whole batch on one
    host; process p yields block p of the global batch, as
    `jaxdeblur.data.pipeline.loader` does). `get_state()` returns a
    JSON-serialisable value (a grain `DatasetIterator` state is one); after
    `set_state(s)` the iterator yields exactly what it yielded after the
    `get_state()` that gave s.
    """

    def __iter__(self) -> Iterator[dict]: ...

    def __next__(self) -> dict: ...

    def get_state(self) -> Any: ...

    def set_state(self, state: Any) -> None: ...


class Task(Protocol):
    """A trainable model: network, loss, optimiser, metrics, data. Implement with a frozen dataclass.

    Attributes:
      name: the model's registry name ("nafnet"); names checkpoints and exports.
      config: the model's frozen config dataclass, with ``config.train: TrainSettings``.
      best_metric: (metric name from `evaluate`, "max" or "min"): which
        checkpoint is the best one, e.g. ("psnr", "max").
    """

    name: str
    config: Any
    best_metric: tuple[str, str]

    def init_model(self, rngs: nnx.Rngs) -> nnx.Module:
        """The network, freshly initialised (runs once, eagerly on the host)."""
        ...

    def trainable(self) -> Any:
        """The nnx filter of the variables to train; the others stay as initialised (frozen)."""
        return nnx.Param

    def optimizer(self) -> optax.GradientTransformation:
        """The optax optimiser (schedule, clipping, weight decay), over the trainable variables."""
        ...

    def train_loader(self, seed: int) -> Loader:
        """The host iterator of training batches, deterministic by `seed` (see `Loader`).

        It may yield only a step counter when `prepare` makes the data on device.
        """
        ...

    def eval_batches(self) -> list[dict]:
        """Fixed held-out batches {name: np.ndarray (B, ...)}, ready for `evaluate` (not `prepare`d).

        Whole batches, the same on every process (the trainer keeps each process's rows).
        """
        ...

    def prepare(self, key: jax.Array, batch: dict) -> dict:
        """Turns a host batch into the training batch ON DEVICE (e.g. degrades sharp tiles).

        Pure and jit-able; `key` is a typed PRNG key, different at every step.
        It runs on the global (sharded) batch, so it sees the same values on
        one device or many.
        """
        ...

    def loss(self, model: nnx.Module, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """(scalar loss, {name: scalar}) of the model in training mode on a prepared batch."""
        ...

    def evaluate(self, model: nnx.Module, batch: dict) -> dict:
        """{metric: scalar} on one evaluation batch, the model in eval mode (mean over the batch)."""
        ...
