"""The registry of trained models: name -> the module that defines the model (imported on first use)."""

from __future__ import annotations

import importlib
from types import ModuleType

# name -> importable module path. A model module offers PRESETS, make_task,
# build_model and make_inference (see jaxdeblur.models). Add new models here.
MODELS: dict[str, str] = {"denoiser": "jaxdeblur.models.denoiser", "kernel_prior": "jaxdeblur.models.kernel_prior",
                          "kernel_space": "jaxdeblur.models.kernel_space", "nafnet": "jaxdeblur.models.nafnet",
                          "region": "jaxdeblur.models.region", "ufpnet": "jaxdeblur.models.ufpnet"}

REQUIRED = ("PRESETS", "make_task", "build_model", "make_inference")


def model_names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(MODELS)


def get_model(name: str) -> ModuleType:
    """The module of model `name`, imported and checked for the model interface.

    Raises:
      ValueError: an unknown name (the known ones are listed).
      TypeError: the module lacks part of the interface.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {model_names()}")
    module = importlib.import_module(MODELS[name])
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise TypeError(f"model module {MODELS[name]} lacks {missing} (the interface is described in "
                        "jaxdeblur.models)")
    return module
