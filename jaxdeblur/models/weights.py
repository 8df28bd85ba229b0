"""`load` of shipped weights: find ``<root>/<model>/<preset>/``, check it, rebuild the model, restore it.

Where weights are looked for, in order (the first folder holding the
model's manifest wins):

1. the folder named by the environment variable ``JAXDEBLUR_CHECKPOINTS``;
2. the installed package data ``jaxdeblur_checkpoints`` (``pip install``;
   pyproject maps the repository's ``checkpoints/`` to it);
3. ``checkpoints/`` of the source tree this package was imported from (a
   clone, or an editable install made before that mapping existed).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from pathlib import Path
from typing import Any, Callable

from flax import nnx

from jaxdeblur.models.registry import get_model
from jaxdeblur.train.export import MANIFEST, read_manifest, restore_state
from jaxdeblur.train.records import config_from_record

ENV_ROOT = "JAXDEBLUR_CHECKPOINTS"
PACKAGE = "jaxdeblur_checkpoints"


def checkpoint_roots() -> list[Path]:
    """The folders searched for weights, in order (existing ones only, no duplicates)."""
    candidates = []
    if os.environ.get(ENV_ROOT):
        candidates.append(Path(os.environ[ENV_ROOT]))
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) for p in spec.submodule_search_locations]
    source_tree = Path(__file__).resolve().parents[2]
    if (source_tree / "pyproject.toml").is_file():
        candidates.append(source_tree / "checkpoints")
    roots: list[Path] = []
    for path in candidates:
        if path.is_dir() and path.resolve() not in [r.resolve() for r in roots]:
            roots.append(path)
    return roots


def available(*, root: str | Path | None = None) -> list[str]:
    """Names "<model>-<preset>" of the weights found (in `root`, or in every searched root)."""
    roots = [Path(root)] if root is not None else checkpoint_roots()
    return sorted({f"{m.parent.parent.name}-{m.parent.name}" for r in roots for m in r.glob(f"*/*/{MANIFEST}")})


def split_name(name: str, preset: str | None = None) -> tuple[str, str]:
    """(model, preset) of "nafnet-cpu", or of ("nafnet", preset="cpu")."""
    if preset is not None:
        return name, preset
    model, dash, preset = name.rpartition("-")
    if not dash or not model or not preset:
        raise ValueError(f"name must be '<model>-<preset>' (e.g. 'nafnet-cpu') or pass preset=, got {name!r}")
    return model, preset


def find_weights(model: str, preset: str, *, root: str | Path | None = None) -> Path:
    """The weights folder of (model, preset). FileNotFoundError lists where it looked and what exists."""
    roots = [Path(root)] if root is not None else checkpoint_roots()
    for r in roots:
        if (r / model / preset / MANIFEST).is_file():
            return r / model / preset
    raise FileNotFoundError(f"no weights {model}-{preset} in {[str(r) for r in roots]}; found: "
                            f"{available(root=root)}")


@dataclasses.dataclass(frozen=True, eq=False)
class Pretrained:
    """A trained model ready for inference: call it like the model's inference function.

    Attributes:
      name: "<model>-<preset>".
      config: the model's config, rebuilt from the manifest.
      manifest: the manifest (data, steps, measured metrics, versions, hashes).
      folder: the weights folder it was loaded from.
      model: the network with the restored variables (an nnx.Module).
      fn: `make_inference(model, config)` of the model's module (pure apply inside).
    """

    name: str
    config: Any
    manifest: dict
    folder: Path
    model: nnx.Module
    fn: Callable

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def load(name: str, *, preset: str | None = None, root: str | Path | None = None) -> Pretrained:
    """The shipped model `name` ("nafnet-cpu", or "nafnet" with preset="cpu"), ready for inference.

    Checks the sha256 of every file before restoring, rebuilds the network
    from the manifest's config (the model module's `build_model`) and wraps it
    with the module's `make_inference`.

    Raises:
      ValueError: unknown model, bad name, corrupt files or a manifest of another model.
      FileNotFoundError: no such weights, or missing files (named).
    """
    model_name, preset = split_name(name, preset)
    module = get_model(model_name)
    folder = find_weights(model_name, preset, root=root)
    manifest = read_manifest(folder)
    if (manifest.get("model"), manifest.get("preset")) != (model_name, preset):
        raise ValueError(f"{folder / MANIFEST} describes {manifest.get('model')}-{manifest.get('preset')}, "
                         f"not {model_name}-{preset}")
    template = module.PRESETS.get(preset, next(iter(module.PRESETS.values())))
    config = config_from_record(template, manifest["config"])
    abstract = nnx.eval_shape(lambda: module.build_model(config, rngs=nnx.Rngs(0)))
    graphdef, abstract_state = nnx.split(abstract)
    model = nnx.merge(graphdef, restore_state(folder, abstract_state))
    return Pretrained(name=f"{model_name}-{preset}", config=config, manifest=manifest, folder=folder, model=model,
                      fn=module.make_inference(model, config))


@functools.lru_cache(maxsize=8)
def _load_once(name: str, root: str | None) -> Pretrained:
    return load(name, root=root)


def load_weights(weights: str | Path, *, model: str) -> Pretrained:
    """The `Pretrained` of `model` named by `weights`: a shipped name ("ufpnet-cpu") or a weights folder
    <root>/<model>/<preset> (as `jaxdeblur train --export` writes it); loaded once per process and kept.

    Raises:
      ValueError: the weights hold another model than `model` (or a bad name).
      FileNotFoundError: no such weights, or a folder without a manifest.
    """
    folder = Path(weights)
    if folder.is_dir() or "/" in str(weights):
        if not (folder / MANIFEST).is_file():
            raise FileNotFoundError(f"{weights} is not a weights folder (no {MANIFEST}); pass the folder an export "
                                    "wrote, <root>/<model>/<preset>")
        folder = folder.absolute()
        name, root = f"{folder.parent.name}-{folder.name}", str(folder.parent.parent)
    else:
        name, root = str(weights), None
    found = split_name(name)[0]
    if found != model:
        raise ValueError(f"weights {str(weights)!r} hold a {found!r} model, expected {model!r}")
    return _load_once(name, root)
