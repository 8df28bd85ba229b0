"""Orbax checkpoints of a batch of DIP runs: state + loss history + metadata, verified on restore.

A checkpoint directory holds numbered steps (orbax CheckpointManager, the
last two kept) of ONE job. Each step stores the whole `RunState` (all runs),
the loss history so far as (R, iterations) arrays (NaN where not yet run) and
a JSON record of what was run (so a resumed run can check it continues the
same job) with a SHA-256 digest of the state, checked on restore: a
truncated or damaged step fails to restore or fails the digest, and
`restore_newest_valid` then falls back to an older step.

A job folder may also hold `run.json` (`write_run_record`): the stamp that
identifies the job (input hashes, method, preset, config, seeds, colour mode,
package version) and the names of its inputs, so a tool can say whose
checkpoints a folder holds (`find_runs`) without restoring anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp

RUN_RECORD = "run.json"


def state_digest(tree) -> str | None:
    """SHA-256 over the bytes, shapes and dtypes of every leaf (None when some leaf lives on another host)."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return None
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _all_finite(tree) -> bool:
    return all(bool(np.isfinite(np.asarray(x)).all()) for x in jax.tree.leaves(tree)
               if np.issubdtype(np.asarray(x).dtype, np.inexact))


class CheckpointUnusable(ValueError):
    """A checkpoint step that cannot be used (fails to restore, fails its digest, or is not finite)."""


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

    def steps(self) -> list[int]:
        """Every saved step, oldest first."""
        return sorted(self._manager.all_steps())

    def step_path(self, step: int) -> Path:
        """The folder of one step (for messages)."""
        return self.directory / str(step)

    def save(self, step: int, state, history: dict, meta: dict) -> None:
        """Writes a checkpoint at `step` (blocking, so nothing is lost on a kill).

        A step that already exists is kept as it is (the same job at the same
        iteration). Raises RuntimeError when orbax declines another way (a
        newer step exists), rather than losing the checkpoint silently.
        """
        if step in self._manager.all_steps():
            return
        meta = {**meta, "state_sha256": state_digest(state)}
        saved = self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            history=ocp.args.StandardSave(history),
            meta=ocp.args.JsonSave(meta),
        ))
        self._manager.wait_until_finished()
        if not saved:
            raise RuntimeError(f"checkpoint step {step} was not written to {self.directory} "
                               f"(it already holds steps {self.steps()})")

    def meta(self, step: int | None = None) -> dict:
        """The JSON record saved with the checkpoint at `step` (default: the newest)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, state_template, history_template: dict, step: int | None = None) -> tuple[Any, dict, dict]:
        """Restores (state, history, meta) shaped and placed like the templates.

        Raises CheckpointUnusable when the step cannot be read, does not match
        its saved digest, or holds NaN/inf values.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(state_template),
                history=ocp.args.StandardRestore(history_template),
                meta=ocp.args.JsonRestore(),
            ))
        except Exception as err:  # noqa: BLE001 - orbax/tensorstore raise many types on damaged files
            raise CheckpointUnusable(f"it cannot be restored ({type(err).__name__}: {str(err)[:120]})") from err
        state, meta = restored["state"], restored["meta"]
        expected = meta.get("state_sha256")
        if expected is not None and state_digest(state) != expected:
            raise CheckpointUnusable("its state does not match the digest saved with it (damaged data)")
        if not _all_finite(state):
            raise CheckpointUnusable("its state holds NaN or infinite values")
        return state, restored["history"], meta

    def restore_newest_valid(self, state_template, history_template: dict, *,
                             check_meta: Callable[[dict], None] = lambda meta: None,
                             notify: Callable[[str], None] = print) -> tuple[Any, dict, dict] | None:
        """The newest step that restores and verifies, as (state, history, meta), or None when none does.

        Steps that fail get one line each through `notify` (naming the step's
        folder and the reason) and are removed, so that the resumed run can
        write its own checkpoints at those steps again. `check_meta(meta)` runs
        before the state is read; what it raises (e.g. "another job") propagates.
        """
        for step in reversed(self.steps()):
            try:
                meta = self.meta(step)
            except Exception as err:  # noqa: BLE001 - a damaged record
                problem = f"its record cannot be read ({type(err).__name__})"
            else:
                check_meta(meta)
                try:
                    return self.restore(state_template, history_template, step)
                except CheckpointUnusable as err:
                    problem = str(err)
            notify(f"checkpoint {self.step_path(step)} is unusable: {problem}; removed it, "
                   "falling back to the previous one")
            self._manager.delete(step)
        return None

    def close(self) -> None:
        self._manager.close()


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A job folder found on disk: its stamp id, record (run.json) and newest checkpoint step (None: none)."""

    directory: Path
    record: dict
    newest_step: int | None

    def describe(self) -> str:
        inputs = ", ".join(self.record.get("labels", [])) or "unnamed input"
        step = f"step {self.newest_step}" if self.newest_step is not None else "no checkpoint yet"
        return f"{self.directory.name} (input {inputs}, {step})"


def write_run_record(directory: str | Path, record: dict) -> Path:
    """Writes `record` as <directory>/run.json (atomically: a temporary file renamed into place)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RUN_RECORD
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{RUN_RECORD}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def package_version() -> str:
    """The installed jaxdeblur's version: part of every run's stamp.

    Returns:
      the version string, "unknown" when the package is not installed.
    """
    try:
        return importlib.metadata.version("jaxdeblur")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def pixels_sha256(x) -> str:
    """SHA-256 of an image's shape and float32 pixels (how a stamp names an input).

    Args:
      x: an image (any shape), cast to float32.

    Returns:
      the hex digest.
    """
    x = np.ascontiguousarray(x, np.float32)
    return hashlib.sha256(f"{x.shape}".encode() + x.tobytes()).hexdigest()


def run_stamp(*, method: str, preset: str, config, kernel_size, color: str, seeds, images, regions,
              init: str | None = None, init_config=None) -> tuple[dict, str]:
    """What identifies one job (a group of runs), and its id: the name of its checkpoint folder.

    Args:
      method, preset, config: the method's name, preset name and resolved config (a dataclass).
      kernel_size: (kh, kw) or "auto".
      color: the colour mode; seeds: one per run.
      images: the runs' whole inputs (hashed: `pixels_sha256`); regions: one (x, y, w, h) or None per run.
      init, init_config: a warm start's name and config, or None (then absent from the stamp, so the
        stamps of runs without one stay as they were).

    Returns:
      (stamp, stamp id): the stamp a JSON-able dict (with `package_version()`), the id the first 16 hex
      digits of the SHA-256 of its sorted JSON.
    """
    stamp = {"method": method, "preset": preset, "config": _json_record(config),
             "kernel_size": kernel_size if isinstance(kernel_size, str) else list(kernel_size),
             "color": color, "seeds": list(seeds), "inputs_sha256": [pixels_sha256(x) for x in images],
             "regions": [None if r is None else list(r) for r in regions], "version": package_version()}
    if init is not None:
        stamp["init"] = {"method": init, "config": _json_record(init_config)}
    return stamp, hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]


def _json_record(config) -> Any:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def newest_step(directory: str | Path) -> int | None:
    """The highest checkpoint step under `directory` (any depth: a pipeline keeps one folder per scale)."""
    steps = [int(p.name) for p in Path(directory).rglob("*") if p.is_dir() and p.name.isdigit()
             and (p / "_CHECKPOINT_METADATA").exists()]
    return max(steps) if steps else None


def find_runs(root: str | Path) -> list[RunRecord]:
    """The job folders directly under `root` that hold a run.json, newest checkpoint first."""
    root = Path(root)
    found = []
    if not root.is_dir():
        return found
    for path in sorted(root.iterdir()):
        record_path = path / RUN_RECORD
        if not record_path.is_file():
            continue
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = {}
        found.append(RunRecord(path, record, newest_step(path)))
    return sorted(found, key=lambda r: -1 if r.newest_step is None else r.newest_step, reverse=True)


__all__ = ["RunCheckpointer", "CheckpointUnusable", "RunRecord", "state_digest", "write_run_record", "run_stamp",
           "pixels_sha256", "package_version",
           "newest_step", "find_runs", "RUN_RECORD"]
