"""Blind methods looked up by name: the DIP methods (one module per paper) and "map" (the classical estimator).

Every entry of METHODS is a `jaxdeblur.engine.method.BlindMethod` (what the API reads: presets, colour modes,
preset "auto", ...); the DIP methods subclass `DIPMethod` (the engine's hooks, `run`). A new DIP method is one
module plus one entry here (tests/methods/test_contract.py runs the contract over every entry).
"""

from jaxdeblur.config import compress_schedule, override, resolve
from jaxdeblur.engine.method import BlindMethod, DIPMethod
from jaxdeblur.methods.kernel_space import KernelSpaceDIP, KernelSpaceDIPConfig
from jaxdeblur.methods.kotera import Kotera, KoteraConfig
from jaxdeblur.methods.map_estimation import MapMethod
from jaxdeblur.methods.selfdeblur import DIPConfig, SelfDeblur
from jaxdeblur.methods.uncertainty import Uncertainty, UncertaintyConfig

METHODS: dict[str, BlindMethod] = {m.name: m for m in (SelfDeblur(), Kotera(), Uncertainty(), KernelSpaceDIP(),
                                                         MapMethod())}


def get_method(name: str) -> BlindMethod:
    """The method object registered under `name` (ValueError listing the choices)."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}") from None


__all__ = ["METHODS", "get_method", "BlindMethod", "DIPMethod", "DIPConfig", "SelfDeblur", "Kotera", "KoteraConfig",
           "Uncertainty", "UncertaintyConfig", "KernelSpaceDIP", "KernelSpaceDIPConfig", "MapMethod",
           "compress_schedule", "override", "resolve"]
