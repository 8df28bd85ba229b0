"""UFPNet (Fang et al. 2023): per-pixel motion kernels from a flow prior, with uncertainty, and a kernel-conditioned NAFNet.

    from jaxdeblur.models import load, ufpnet
    restorer = load("ufpnet-cpu")             # a Pretrained wrapping a UFPNetRestorer
    result = restorer(blurred)                # UFPNetResult: .restored, .kernels (H, W, 19, 19), .sigma (H, W)
    ufpnet.kernel_field_figure("kernels.png", blurred, result)

Training, in the paper's stages (see `config`), with the one trainer::

    jaxdeblur train ufpnet --preset cpu_kernel --data train400 --workdir runs/ufpnet-k --export runs/ufpnet-k/export
    jaxdeblur train ufpnet --preset cpu --data train400 --workdir runs/ufpnet-d \\
        --set init_weights=runs/ufpnet-k/export/ufpnet/cpu_kernel --export checkpoints

The model interface of `jaxdeblur.models`: `PRESETS`, `make_task`,
`build_model`, `make_inference`, `check_metrics`. Modules: config (presets
and stages), task (losses, stage filters, pretrained parts), inference
(`UFPNetRestorer`), figures. The networks are `jaxdeblur.nets.ufpnet` and
`jaxdeblur.nets.kernel_code`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.metrics import psnr_per_image
from jaxdeblur.models.nafnet.task import check_pairs
from jaxdeblur.models.ufpnet.config import (CPU, CPU_KERNEL, PAPER, PAPER_KERNEL, PRESETS, STAGES, TINY, TINY_KERNEL,
                                            UFPNetConfig)
from jaxdeblur.models.ufpnet.figures import draw_kernels, kernel_field_figure
from jaxdeblur.models.ufpnet.inference import UFPNetRestorer, UFPNetResult
from jaxdeblur.models.ufpnet.task import UFPNetTask, build_network, make_task, reblur_l1
from jaxdeblur.nets.ufpnet import UFPNet


def build_model(config: UFPNetConfig, *, rngs: nnx.Rngs) -> UFPNet:
    """The network of `config`, randomly initialised (what `load` restores weights into)."""
    return build_network(config, rngs)


def make_inference(model: UFPNet, config: UFPNetConfig) -> UFPNetRestorer:
    """The trained network as a function of images returning a `UFPNetResult`."""
    return UFPNetRestorer(model, config)


def check_metrics(restorer: UFPNetRestorer, config: UFPNetConfig) -> dict:
    """Metrics on NAFNet's data-free check set (`jaxdeblur.models.nafnet.check_pairs` with this config's degradation).

    {"check_psnr", "check_psnr_input"}: mean PSNR (dB) of the restoration and
    of the input; "check_reblur_l1": mean |blur_sv(sharp, kernels) - blurred|
    over the interior (the kernel estimation loss).
    """
    pairs = check_pairs(config)
    result = restorer(pairs["blurred"])
    border = config.data.degrade.kernel_size // 2
    reblur = reblur_l1(jnp.asarray(pairs["sharp"]), jnp.asarray(result.kernels), jnp.asarray(pairs["blurred"]),
                       border=border)
    return {"check_psnr": float(jnp.mean(psnr_per_image(jnp.asarray(result.restored), pairs["sharp"]))),
            "check_psnr_input": float(jnp.mean(psnr_per_image(pairs["blurred"], pairs["sharp"]))),
            "check_reblur_l1": float(jax.device_get(reblur))}


__all__ = ["CPU", "CPU_KERNEL", "PAPER", "PAPER_KERNEL", "PRESETS", "STAGES", "TINY", "TINY_KERNEL", "UFPNet",
           "UFPNetConfig", "UFPNetRestorer", "UFPNetResult", "UFPNetTask", "build_model", "check_metrics",
           "draw_kernels", "kernel_field_figure", "make_inference", "make_task"]
