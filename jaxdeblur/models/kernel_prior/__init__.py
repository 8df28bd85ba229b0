"""The flow prior on motion kernels (FKP's KernelPrior, UFPNet's motion prior), trained by maximum likelihood.

    from jaxdeblur.models import kernel_prior, load
    task = kernel_prior.make_task(kernel_prior.PRESETS["cpu"])   # jaxdeblur.train.train(task, workdir)
    prior = load("kernel_prior-cpu")          # a Pretrained wrapping a KernelPrior
    kernels = prior.fn.sample(jax.random.key(0), 16)             # (16, 19, 19), sum 1
    z = prior.fn.encode(kernels); prior(z)                       # codes and back

Modules: config (KernelPriorConfig, presets paper / cpu / tiny), data (the
random motion kernels), task (KernelPriorTask, build_flow), inference
(KernelPrior). The network is `jaxdeblur.nets.flow.KernelFlow`.
"""

from jaxdeblur.models.kernel_prior.config import CPU, PAPER, PRESETS, TINY, KernelPriorConfig
from jaxdeblur.models.kernel_prior.data import config_kernels, motion_kernels
from jaxdeblur.models.kernel_prior.inference import KernelPrior, make_inference
from jaxdeblur.models.kernel_prior.task import KernelCounter, KernelPriorTask, build_flow, make_optimizer, make_task

build_model = build_flow

__all__ = ["CPU", "PAPER", "PRESETS", "TINY", "KernelCounter", "KernelPrior", "KernelPriorConfig", "KernelPriorTask",
           "build_flow", "build_model", "config_kernels", "make_inference", "make_optimizer", "make_task",
           "motion_kernels"]
