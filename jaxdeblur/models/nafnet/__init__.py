"""NAFNet (Chen et al. 2022), the supervised deblurring baseline and UFPNet's backbone.

The model interface of `jaxdeblur.models`: `PRESETS` (paper / cpu / tiny),
`make_task`, `build_model`, `make_inference`. Shipped weights:
``jaxdeblur.models.load("nafnet-cpu")``.
"""

from __future__ import annotations

from flax import nnx

from jaxdeblur.models.nafnet.config import CPU, PAPER, PRESETS, TINY, NAFNetConfig
from jaxdeblur.models.nafnet.inference import NAFNetRestorer
from jaxdeblur.models.nafnet.task import NAFNetTask, build_network, check_metrics, check_pairs
from jaxdeblur.nets.nafnet import NAFNet


def make_task(config: NAFNetConfig, *, data=None, val_data=None) -> NAFNetTask:
    """The training task: `data` a folder of sharp images (or GoPro pairs for a paired config), None for
    the photos bundled with scikit-image; `val_data` a validation folder (None: hold out part of `data`)."""
    return NAFNetTask(config, data=None if data is None else str(data),
                      val_data=None if val_data is None else str(val_data))


def build_model(config: NAFNetConfig, *, rngs: nnx.Rngs) -> NAFNet:
    """The network of `config` (what the task trains and `load` restores)."""
    return build_network(config, rngs)


def make_inference(model: NAFNet, config: NAFNetConfig) -> NAFNetRestorer:
    """The trained network as a function of images (any shape, gray or colour), clamped to [0, 1]."""
    return NAFNetRestorer(model, config)


__all__ = ["PRESETS", "PAPER", "CPU", "TINY", "NAFNetConfig", "NAFNetTask", "NAFNetRestorer", "make_task",
           "build_model", "make_inference", "check_pairs", "check_metrics"]
