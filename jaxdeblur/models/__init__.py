"""Trained models: a registry of model modules, and `load` of their shipped weights.

    import jaxdeblur.models as models
    restore = models.load("nafnet-cpu")          # or models.load("nafnet", preset="cpu")
    sharp = restore(blurred)                     # the model's inference function
    restore.manifest["metrics"]                  # what was measured when it was exported
    models.available()                           # ["nafnet-cpu", ...]: weights found

A model is a module (``jaxdeblur/models/<m>/__init__.py`` or a single file)
registered in `registry.MODELS` ({"nafnet": "jaxdeblur.models.nafnet"}) by one
line, imported on first use (the smallest: tests/train/toy.py; every registered
model passes tests/models/test_contract.py). It offers:

- ``PRESETS: dict[str, Config]``: frozen config dataclasses ("cpu", "paper",
  "tiny", ...), each with a field ``train: jaxdeblur.train.TrainSettings``
  (and, for the models trained on image folders, ``optim:
  jaxdeblur.models.optim.OptimConfig`` and ``data:
  jaxdeblur.models.folder_data.DataConfig``);
- ``make_task(config, *, data=None) -> jaxdeblur.train.Task``: the training
  task; `data` is a folder (str or Path) or None for the model's default data;
- ``build_model(config, *, rngs: nnx.Rngs) -> nnx.Module``: the network of a
  config (what `Task.init_model` builds; `load` rebuilds shipped weights with it);
- ``make_inference(model, config) -> Callable``: the ready inference function
  of a trained network (jitted pure apply inside);
- optionally ``check_metrics(inference, config) -> dict``: metrics on a small
  data-free check set; `jaxdeblur train --export` stores them in the manifest
  so that a user or a test can recompute them after `load`. A model that
  takes data accepts ``make_task(config, *, data=None, val_data=None)``.

Training: `jaxdeblur train <model> --preset P --data DIR --workdir DIR`
(jaxdeblur.train.command) or `jaxdeblur.train.train(module.make_task(config), workdir)`;
`jaxdeblur.train.export` writes the weights folder that `load` reads
(format: jaxdeblur.train.export; search order: jaxdeblur.models.weights).
`import_torch` turns the authors' PyTorch checkpoints (NAFNet's GoPro
width 32 / 64 .pth) into that format without torch (jaxdeblur.models.torch_import;
`jaxdeblur import-weights MODEL FILE.pth -o DIR`).
"""

from jaxdeblur.models.registry import MODELS, get_model, model_names
from jaxdeblur.models.weights import Pretrained, available, checkpoint_roots, find_weights, load


def import_torch(name: str, state_dict_path, **kwargs) -> Pretrained:
    """Model `name` with the weights of an authors' PyTorch checkpoint (`jaxdeblur.models.torch_import.import_torch`:
    out=ROOT writes ROOT/<name>/<preset>/ for `load`; preset=, key=, overwrite=)."""
    from jaxdeblur.models.torch_import import import_torch as _import_torch

    return _import_torch(name, state_dict_path, **kwargs)


__all__ = ["MODELS", "Pretrained", "available", "checkpoint_roots", "find_weights", "get_model", "import_torch",
           "load", "model_names"]
