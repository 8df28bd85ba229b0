"""Blur kernel space (Tran et al. 2021): a learned blur operator F and kernel extractor G, at any image size.

    from jaxdeblur.models import kernel_space, load
    task = kernel_space.make_task(kernel_space.PRESETS["cpu"], data="train400/")   # jaxdeblur.train.train(task, dir)
    space = load("kernel_space-cpu")                 # a Pretrained wrapping a KernelSpaceModel
    code = space.fn.encode(sharp, blurred)           # G: the pair's blur as a code map
    blurred_b = space(sharp_a, blurred_a, sharp_b)   # blur transfer: F(sharp_b, G(sharp_a, blurred_a))
    kernel_space.transfer_blur(sharp_a, blurred_a, sharp_b)      # the same with the shipped CPU weights
                                                                 # (also `jaxdeblur.transfer_blur`)

The model interface of `jaxdeblur.models`: `PRESETS` (paper / cpu / tiny),
`make_task`, `build_model`, `make_inference`, `check_metrics`. Modules:
config, task (training, check set), inference (`KernelSpaceModel`),
transfer (`transfer_blur`, `load_weights`, the least-squares baseline, evaluation
pairs).
The network is `jaxdeblur.nets.kernel_space.KernelSpace`; the kernel-space
DIP deblurring method (`jaxdeblur.methods.kernel_space`) uses its F, frozen.
"""

from __future__ import annotations

from flax import nnx

from jaxdeblur.models.kernel_space.config import CPU, PAPER, PRESETS, TINY, KernelSpaceConfig
from jaxdeblur.models.kernel_space.inference import KernelSpaceModel
from jaxdeblur.models.kernel_space.task import (KernelSpaceTask, build_network, check_metrics, check_pairs,
                                                make_optimizer, make_task, naive_reblur)
from jaxdeblur.models.kernel_space.transfer import (fit_uniform_kernel, load_weights, naive_transfer,
                                                    same_blur_pairs, transfer_blur)
from jaxdeblur.nets.kernel_space import KernelSpace


def build_model(config: KernelSpaceConfig, *, rngs: nnx.Rngs) -> KernelSpace:
    """The network of `config` (what the task trains and `load` restores)."""
    return build_network(config, rngs)


def make_inference(model: KernelSpace, config: KernelSpaceConfig) -> KernelSpaceModel:
    """The trained network as functions of images: encode (G), blur (F), transfer (also the call)."""
    return KernelSpaceModel(model, config)


__all__ = ["CPU", "PAPER", "PRESETS", "TINY", "KernelSpaceConfig", "KernelSpaceModel", "KernelSpaceTask",
           "build_model", "build_network", "check_metrics", "check_pairs", "fit_uniform_kernel", "load_weights",
           "make_inference", "make_optimizer", "make_task", "naive_reblur", "naive_transfer",
           "same_blur_pairs", "transfer_blur"]
