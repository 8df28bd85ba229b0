"""The DIP engine: runs any `DIPMethod` on batches of images (see jaxdeblur.engine.runner).

The package face: `run_batch`, `EngineOptions`, `BatchOutcome`, the method bases `DIPMethod` /
`BlindMethod`, `init_batch`. They are imported on first use (PEP 562), so importing a submodule
(`jaxdeblur.engine.checkpoint`, ...) costs no more than that submodule.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "run_batch": "runner", "init_batch": "runner", "EngineOptions": "runner", "BatchOutcome": "runner",
    "NonFiniteLossError": "runner", "RunInterrupted": "runner",
    "DIPMethod": "method", "BlindMethod": "method",
}

if TYPE_CHECKING:
    from jaxdeblur.engine.method import BlindMethod, DIPMethod
    from jaxdeblur.engine.runner import (BatchOutcome, EngineOptions, NonFiniteLossError, RunInterrupted,
                                         init_batch, run_batch)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"jaxdeblur.engine.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'jaxdeblur.engine' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = ["run_batch", "init_batch", "EngineOptions", "BatchOutcome", "NonFiniteLossError", "RunInterrupted",
           "DIPMethod", "BlindMethod"]
