"""Orbax checkpoints of a training run: the train state, the loader position and the run stamp.

``<workdir>/checkpoints/<step>/`` holds three items: ``state`` (the whole
`TrainState`), ``loader`` (the training loader's `get_state()`, JSON) and
``stamp`` (task name + config record, JSON). Checkpoints saved after an
evaluation carry its metrics; the manager keeps the newest `keep` checkpoints
and the best evaluated one (by `Task.best_metric`). Saving blocks until the
files are written, so nothing is lost when the process is killed afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as policies

from jaxdeblur.distributed import gather_strings
from jaxdeblur.train.records import record_differences

BEST_MODES = ("max", "min")


class TrainCheckpoints:
    """The checkpoints of one training run in `directory`."""

    def __init__(self, directory: str | Path, *, keep: int, best_metric: tuple[str, str]):
        name, mode = best_metric
        if mode not in BEST_MODES:
            raise ValueError(f"best_metric mode must be one of {BEST_MODES}, got {mode!r}")
        self.directory = Path(directory).absolute()
        self.best_metric = (name, mode)
        policy = policies.AnyPreservationPolicy([
            policies.LatestN(keep),
            policies.BestN(get_metric_fn=lambda metrics: metrics[name], reverse=mode == "min", n=1,
                           keep_checkpoints_without_metrics=False),
        ])
        # best_fn makes the manager write the metrics of evaluated checkpoints (and answer best_step).
        options = ocp.CheckpointManagerOptions(preservation_policy=policy, best_fn=lambda metrics: metrics[name],
                                               best_mode=mode, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "loader", "stamp"))

    def latest_step(self) -> int | None:
        """The newest checkpoint's step, or None when there is none."""
        return self._manager.latest_step()

    def steps(self) -> list[int]:
        """The steps of the checkpoints on disk, ascending."""
        return sorted(self._manager.all_steps())

    def save(self, step: int, state, loader_state: Any, stamp: dict, metrics: dict | None = None) -> bool:
        """Writes the checkpoint of `step` (blocking); False when that step is already saved.

        On several processes every process calls it (a collective): the state
        is replicated, so orbax writes it once, and process 0 writes the JSON
        items, with every process's loader state (each reads its own shard of
        the data) gathered into ``loader["processes"]``.
        """
        if step in self._manager.all_steps():
            return False
        loader = {"state": loader_state}
        if jax.process_count() > 1:
            loader["processes"] = [json.loads(s) for s in gather_strings(json.dumps(loader_state))]
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            loader=ocp.args.JsonSave(loader),
            stamp=ocp.args.JsonSave(stamp),
        ), metrics=metrics, force=True)
        self._manager.wait_until_finished()
        return True

    def check_stamp(self, stamp: dict, upgrade: Callable[[dict], dict] | None = None) -> None:
        """Raises ValueError unless the newest checkpoint was written by a run with this stamp (the saved one
        passed through `upgrade` first, e.g. `records.upgrade_stamp`: a stamp of an older config layout)."""
        step = self.latest_step()
        saved = self._manager.restore(step, args=ocp.args.Composite(stamp=ocp.args.JsonRestore()))["stamp"]
        if upgrade is not None:
            saved = upgrade(saved)
        if saved != stamp:
            differences = record_differences(saved, stamp)
            raise ValueError(
                f"cannot resume: {self.directory} holds a run of task {saved.get('task')!r} whose stamp differs "
                f"from this one ({stamp.get('task')!r}) in {differences}; use another workdir, or the same task "
                "and config")

    def restore(self, state_like) -> tuple[Any, Any]:
        """(state, loader state) of the newest checkpoint, the state placed like `state_like`."""
        step = self.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), loader=ocp.args.JsonRestore()))
        loader = restored["loader"]
        saved_by = len(loader.get("processes", [None]))
        if saved_by != jax.process_count():
            raise ValueError(f"cannot resume: the checkpoint of step {step} in {self.directory} was written by "
                             f"{saved_by} process(es) and this run has {jax.process_count()}; each process's data "
                             "loader position is saved, so resume with the same number of processes")
        if "processes" in loader:
            return restored["state"], loader["processes"][jax.process_index()]
        return restored["state"], loader["state"]

    def best_step(self) -> int | None:
        """The step of the best evaluated checkpoint on disk, or None when none was evaluated."""
        step = self._manager.best_step()
        return step if step is not None and self._manager.metrics(step) else None

    def close(self) -> None:
        self._manager.close()
