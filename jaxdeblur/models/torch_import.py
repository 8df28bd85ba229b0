"""Import the authors' PyTorch checkpoints as jaxdeblur weights (no torch needed).

    import jaxdeblur.models as models
    restorer = models.import_torch("nafnet", "NAFNet-GoPro-width32.pth", out="weights")
    # -> weights/nafnet/nafnet_gopro_width32/ (manifest + sha256), the same as
    restorer = models.load("nafnet-nafnet_gopro_width32", root="weights")

    jaxdeblur import-weights nafnet NAFNet-GoPro-width32.pth -o weights
    JAXDEBLUR_CHECKPOINTS=weights jaxdeblur restore --model nafnet-nafnet_gopro_width32 blurred.png -o out

The ``.pth`` is read by `jaxdeblur.models.pth` (a restricted unpickler over
the zip: tensors only, never code). A model is importable when its module
has an importer in `IMPORTERS`: a module with ``from_state_dict(state) ->
(config, nnx.Module)`` that reads the architecture from the state dict and
maps the authors' names and layouts onto ours (NAFNet:
`jaxdeblur.models.nafnet.torch_weights`, the authors' GoPro width 32 / 64
and any other block counts; blur kernel space: `models.kernel_space.torch_weights`,
their KernelWizard; UFPNet: `models.ufpnet.torch_weights`, their
UFPNet_code_uncertainty with its flow). `assign_state_dict` is the strict
name-by-name setter they share. The weights folder is the export format of
`jaxdeblur.train.export`; its manifest records the source file and its sha256.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from jaxdeblur.models.pth import read_state_dict
from jaxdeblur.models.registry import get_model
from jaxdeblur.models.weights import Pretrained, load

IMPORTERS = {"nafnet": "jaxdeblur.models.nafnet.torch_weights",
             "kernel_space": "jaxdeblur.models.kernel_space.torch_weights",
             "ufpnet": "jaxdeblur.models.ufpnet.torch_weights"}


def conv_layout(value: np.ndarray) -> np.ndarray:
    """A PyTorch Conv2d / Linear weight in our layout: OIHW -> HWIO, (out, in) -> (in, out); others unchanged."""
    value = np.asarray(value)
    if value.ndim == 4:
        return value.transpose(2, 3, 1, 0)
    if value.ndim == 2:
        return value.T
    return value


def transposed_conv_layout(value: np.ndarray) -> np.ndarray:
    """A PyTorch ConvTranspose2d weight (in, out, kh, kw) as the kernel of the equivalent conv over the
    zero-dilated input, HWIO: kernel[h, w, i, o] = weight[i, o, kh - 1 - h, kw - 1 - w]."""
    return np.asarray(value)[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)


def assign_state_dict(model: nnx.Module, state, path_of, layout_of, what: str, variables=nnx.Param) -> nnx.Module:
    """Sets every parameter of `model` from a PyTorch state dict (in place; returns `model`), strictly.

    `variables`: the nnx filter of what is set (default the parameters; e.g.
    ``nnx.Any(nnx.Param, nnx.BatchStat)`` for batch-norm running statistics too).

    `path_of(name)` is our parameter path (as `nnx.to_flat_state` spells it)
    of a state-dict name (KeyError: not a parameter of this network);
    `layout_of(name, value)` the value in our layout. Every parameter must
    be found with its shape and nothing else may be in `state` (as PyTorch's
    `load_state_dict(strict=True)`). Values become float32 (float64 under x64).

    Raises:
      ValueError: unexpected or missing names, or a shape mismatch (each named, `what` the network).
    """
    flat = dict(nnx.to_flat_state(nnx.state(model, variables)))
    found, unexpected = {}, []
    for name, value in state.items():
        try:
            found[tuple(path_of(name))] = (name, layout_of(name, np.asarray(value)))
        except KeyError:
            unexpected.append(name)
    missing = [".".join(map(str, p)) for p in flat if p not in found]
    unexpected += [found[p][0] for p in found if p not in flat]
    if missing or unexpected:
        raise ValueError(f"the state dict does not fit this {what}: {len(missing)} parameters missing "
                         f"{missing[:4]}, {len(unexpected)} unexpected {unexpected[:4]}")
    wrong = [f"{found[p][0]} {found[p][1].shape} vs {v.shape}" for p, v in flat.items() if found[p][1].shape != v.shape]
    if wrong:
        raise ValueError(f"the state dict does not fit this {what}: shapes differ: {wrong[:4]}")
    dtype = jax.numpy.zeros((), float).dtype  # float32, or float64 under x64
    for path, variable in flat.items():
        variable.set_value(jax.numpy.asarray(found[path][1], dtype=dtype))
    nnx.update(model, nnx.from_flat_state(flat))
    return model


def default_preset(path: str | Path) -> str:
    """The preset name of an imported file: its stem, lower case, runs of other characters as "_"
    ("NAFNet-GoPro-width32.pth" -> "nafnet_gopro_width32"); never a "-" (`load` splits names at it)."""
    preset = re.sub(r"[^a-z0-9_]+", "_", Path(path).stem.lower()).strip("_")
    return preset or "imported"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _importer(name: str):
    if name not in IMPORTERS:
        raise ValueError(f"no PyTorch importer for model {name!r} (importable: {sorted(IMPORTERS)})")
    return importlib.import_module(IMPORTERS[name])


def convert(name: str, state_dict_path: str | Path, *, key: str | None = None):
    """(config, module) of model `name` from the checkpoint at `state_dict_path`, in memory.

    Raises:
      FileNotFoundError: no such file.
      ValueError: unknown model, unreadable / corrupt file, or a state dict of another network (one line, naming
        the file).
    """
    importer, path = _importer(name), Path(state_dict_path)
    state = read_state_dict(path, key=key)
    try:
        config, model = importer.from_state_dict(state)
    except ValueError as error:
        raise ValueError(f"{path} is not a {name} checkpoint: {error}") from None
    arrays = (jax.Array, np.ndarray)
    abstract = [p for p, v in nnx.to_flat_state(nnx.state(model)) if not isinstance(v.get_value(), arrays)]
    if abstract:
        raise ValueError(f"{path}: the importer left {len(abstract)} variables unset, e.g. {abstract[0]}")
    return config, model


def import_torch(name: str, state_dict_path: str | Path, *, out: str | Path | None = None,
                 preset: str | None = None, key: str | None = None, overwrite: bool = False) -> Pretrained:
    """Model `name` ("nafnet") with the weights of an authors' PyTorch checkpoint, ready for inference.

    Args:
      name: the model (see `IMPORTERS`).
      state_dict_path: a ``torch.save`` file: a state dict, or one under
        "params" (basicsr / NAFNet), "params_ema", "state_dict", "model" or "net".
      out: a checkpoints root: write ``<out>/<name>/<preset>/`` (the export
        format) and return it as `load` reads it; None: only in memory.
      preset: the preset name of the written folder; default: from the file
        name (`default_preset`). No "-" allowed.
      key: the wrapper key holding the state dict; None: found.
      overwrite: replace an existing folder.

    Returns:
      the `Pretrained` (the model's inference function): loaded back from the
      written folder when `out` is given (hashes checked), else built in memory (``folder`` None).

    Raises:
      FileNotFoundError: no such file. FileExistsError: the folder exists and not overwrite.
      ValueError: unknown model, bad preset, unreadable / corrupt file, or weights of another network.
    """
    from jaxdeblur.train.export import export

    path = Path(state_dict_path)
    preset = default_preset(path) if preset is None else preset
    if not re.fullmatch(r"[A-Za-z0-9_.]+", preset):
        raise ValueError(f"preset {preset!r} must be letters, digits, '_' or '.' (no '-': names are <model>-<preset>)")
    config, model = convert(name, path, key=key)
    module = get_model(name)
    if out is None:
        return Pretrained(name=f"{name}-{preset}", config=config, manifest={}, folder=None, model=model,
                          fn=module.make_inference(model, config))
    task = module.make_task(config)
    data = {"imported_from": "pytorch state dict", "file": path.name, "sha256": _sha256(path),
            "importer": IMPORTERS[name]}
    export(task, model, out, preset=preset, data=data, metrics={}, steps=None, overwrite=overwrite, max_mb=None)
    return load(name, preset=preset, root=out)
