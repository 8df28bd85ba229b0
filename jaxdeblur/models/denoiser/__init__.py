"""A small noise-level-conditioned denoiser (DRUNet-style): the learned prior of plug-and-play deconvolution.

The model interface of `jaxdeblur.models`: `PRESETS` (paper / cpu / tiny),
`make_task`, `build_model`, `make_inference`, `check_metrics`. Shipped
weights: ``jaxdeblur.models.load("denoiser-cpu")``; used by
`jaxdeblur.deconv.pnp_hqs` and the MAP pipeline's learned non-blind step.
"""

from __future__ import annotations

from flax import nnx

from jaxdeblur.models.denoiser.config import CPU, PAPER, PRESETS, TINY, DenoiserConfig
from jaxdeblur.models.denoiser.inference import DenoiserFn
from jaxdeblur.models.denoiser.task import DenoiserTask, build_network, check_metrics
from jaxdeblur.nets.denoiser import Denoiser


def make_task(config: DenoiserConfig, *, data=None, val_data=None) -> DenoiserTask:
    """The training task: `data` a folder of clean images (None: scikit-image's photos), `val_data` a
    validation folder (None: hold out part of `data`)."""
    return DenoiserTask(config, data=None if data is None else str(data),
                        val_data=None if val_data is None else str(val_data))


def build_model(config: DenoiserConfig, *, rngs: nnx.Rngs) -> Denoiser:
    """The network of `config` (what the task trains and `load` restores)."""
    return build_network(config, rngs)


def make_inference(model: Denoiser, config: DenoiserConfig) -> DenoiserFn:
    """The trained network as `fn(images, sigma)` and the pure `fn.apply(x, sigma)`."""
    return DenoiserFn(model, config)


__all__ = ["PRESETS", "PAPER", "CPU", "TINY", "DenoiserConfig", "DenoiserTask", "DenoiserFn", "make_task",
           "build_model", "make_inference", "check_metrics"]
