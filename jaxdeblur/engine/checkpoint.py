"""Orbax checkpoints of a batch of DIP runs: state + loss history + metadata.

A checkpoint directory holds numbered steps (orbax CheckpointManager, the
last two kept). Each step stores the whole `RunState` (all runs), the loss
history so far as (R, iterations) arrays (NaN where not yet run) and a JSON
record of what was run, so a resumed run can check it continues the same job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp


class RunCheckpointer:
    """Saves and restores the state and history of a batch of runs."""

    def __init__(self, directory: str | Path, *, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_names=("state", "history", "meta"))

    def latest_step(self) -> int | None:
        """The step of the newest checkpoint, or None when there is none."""
        return self._manager.latest_step()

    def save(self, step: int, state, history: dict, meta: dict) -> None:
        """Writes a checkpoint at `step` (blocking, so nothing is lost on a kill)."""
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            history=ocp.args.StandardSave(history),
            meta=ocp.args.JsonSave(meta),
        ))
        self._manager.wait_until_finished()

    def meta(self, step: int | None = None) -> dict:
        """The JSON record saved with the checkpoint at `step` (default: the newest)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, state_template, history_template: dict, step: int | None = None) -> tuple[Any, dict, dict]:
        """Restores (state, history, meta) shaped and placed like the templates."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(state_template),
            history=ocp.args.StandardRestore(history_template),
            meta=ocp.args.JsonRestore(),
        ))
        return restored["state"], restored["history"], restored["meta"]

    def close(self) -> None:
        self._manager.close()
