"""Shipped weights: `export` a trained model to ``<root>/<model>/<preset>/``, and the folder's format.

A weights folder holds::

    params/         orbax checkpoint of the model's whole nnx state (trainable and
                    non-trainable variables), float32 host arrays
    manifest.json   {"format", "model", "preset", "config" (full config record), "data",
                     "steps", "metrics", "parameters" (count), "versions", "files":
                     {relative path: sha256 of every other file}}

`read_manifest` checks every hash before anything is restored, so a missing
or corrupt file is reported by name instead of failing somewhere in orbax.
`jaxdeblur.models.load` reads these folders back.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from jaxdeblur.train.records import config_record
from jaxdeblur.train.state import TrainState, model_of
from jaxdeblur.train.task import Task
from jaxdeblur.train.trainer import TrainResult

MANIFEST = "manifest.json"
PARAMS = "params"
FORMAT = 1
MAX_MB = 20.0  # shipped weights live in git: keep each model under this size
_VERSIONED = ("jaxdeblur", "jax", "flax", "optax", "orbax-checkpoint")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """{path relative to `folder` (posix): sha256} of every file under it except the manifest."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST)
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in files}


def _versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _trained_model(task: Task, trained: Any) -> tuple[nnx.Module, int | None]:
    """(module, steps trained or None) of a TrainResult, TrainState or nnx.Module."""
    if isinstance(trained, TrainResult):
        return trained.model(), int(trained.state.step)
    if isinstance(trained, TrainState):
        abstract = nnx.eval_shape(lambda: task.init_model(nnx.Rngs(0)))
        graphdef = nnx.split(abstract, task.trainable(), ...)[0]
        return model_of(graphdef, trained), int(trained.step)
    if isinstance(trained, nnx.Module):
        return trained, None
    raise TypeError(f"trained must be a TrainResult, TrainState or nnx.Module, got {type(trained).__name__}")


def export(task: Task, trained: Any, root: str | Path, *, preset: str, data: Any, metrics: dict,
           steps: int | None = None, overwrite: bool = False, max_mb: float | None = MAX_MB) -> Path:
    """Writes the weights folder ``<root>/<task.name>/<preset>/``; returns its path.

    Args:
      task: the task that trained the model (its name and config go in the manifest).
      trained: a `TrainResult`, a `TrainState` or the trained `nnx.Module`.
      root: the checkpoints root (the repository's ``checkpoints/`` for shipped weights).
      preset: the preset name the config came from (`load("<model>-<preset>")`).
      data: JSON description of the training data (folder, degradation, ...).
      metrics: measured metrics to store {name: float} (e.g. `TrainResult.eval_metrics`).
      steps: steps trained; default: from `trained` (None for a bare module).
      overwrite: replace an existing folder.
      max_mb: refuse a folder larger than this (None: no limit).

    Raises:
      FileExistsError: the folder exists and overwrite is False.
      ValueError: the written folder exceeds max_mb (it is removed again).
    """
    model, trained_steps = _trained_model(task, trained)
    folder = Path(root).absolute() / task.name / preset
    if folder.exists():
        if not overwrite:
            raise FileExistsError(f"{folder} exists; pass overwrite=True to replace it")
        shutil.rmtree(folder)
    state = jax.device_get(nnx.state(model))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(folder / PARAMS, state)
    checkpointer.wait_until_finished()
    checkpointer.close()
    files = file_hashes(folder)
    size_mb = sum((folder / name).stat().st_size for name in files) / 1e6
    if max_mb is not None and size_mb > max_mb:
        shutil.rmtree(folder)
        raise ValueError(f"the weights of {task.name}-{preset} take {size_mb:.1f} MB, over max_mb={max_mb}")
    manifest = {
        "format": FORMAT,
        "model": task.name,
        "preset": preset,
        "config": config_record(task.config),
        "data": data,
        "steps": trained_steps if steps is None else steps,
        "metrics": {name: float(value) for name, value in metrics.items()},
        "parameters": int(sum(np.size(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))),
        "size_mb": round(size_mb, 3),
        "versions": _versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return folder


def read_manifest(folder: str | Path) -> dict:
    """The manifest of a weights folder, after checking the sha256 of every file it lists.

    Raises:
      FileNotFoundError: no manifest, or listed files are missing (named).
      ValueError: an unreadable manifest, or files whose content changed (named).
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not a weights folder")
    try:
        manifest = json.loads(path.read_text())
        listed = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a valid manifest ({error})") from None
    missing = [name for name in listed if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"weights {folder} are incomplete: missing {missing} (reinstall or re-export them)")
    corrupt = [name for name, digest in listed.items() if _sha256(folder / name) != digest]
    if corrupt:
        raise ValueError(f"weights {folder} are corrupt: sha256 of {corrupt} differs from {MANIFEST} "
                         "(reinstall or re-export them)")
    return manifest


def restore_state(folder: str | Path, abstract_state: nnx.State) -> nnx.State:
    """The model state saved in `folder`/params, shaped like `abstract_state`, on the default device."""
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract_state)
    checkpointer = ocp.StandardCheckpointer()
    try:
        return checkpointer.restore(Path(folder).absolute() / PARAMS, target)
    finally:
        checkpointer.close()
