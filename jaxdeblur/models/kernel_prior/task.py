"""The training task of the flow prior: maximum likelihood on motion kernels made on the device.

Per step (see `jaxdeblur.train.task`): the host loader only counts
(`KernelCounter`: {"index": (B,) int32}); `prepare` draws B fresh motion
kernels (`data.config_kernels`) and their U(0, 1) dequantisation noise from
the step's key; `loss` is the mean negative log-likelihood in nats per kernel
(`KernelFlow.log_prob`, kernel space, batch norms in training mode). The
evaluation set is fixed: `eval_kernels` kernels from `config.eval_seed` with
fixed noise, scored in evaluation mode (running statistics).
Keep `compute_dtype` "float32": the flow is small, and bfloat16 inputs would
quantise the taps and the 1/720 dequantisation noise the logit pre-process
resolves.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxdeblur.models.kernel_prior.config import KernelPriorConfig
from jaxdeblur.models.kernel_prior.data import config_kernels
from jaxdeblur.nets.flow import KernelFlow
from jaxdeblur.train.task import Task


def build_flow(config: KernelPriorConfig, *, rngs: nnx.Rngs) -> KernelFlow:
    """The `KernelFlow` of a config, in training mode (call `.eval()` for inference)."""
    return KernelFlow(config.kernel_size, num_couplings=config.num_couplings, hidden=config.hidden,
                      num_hidden=config.num_hidden, batch_norm=config.batch_norm, alpha=config.alpha,
                      norm=config.norm, dequantization=config.dequantization, momentum=config.momentum,
                      raw_decode=config.raw_decode, rngs=rngs)


def make_optimizer(config: KernelPriorConfig) -> optax.GradientTransformation:
    """FKP's optimiser: Adam with PyTorch's coupled weight decay (added to the gradient), lr halved at milestones."""
    steps = config.train.steps
    schedule = optax.piecewise_constant_schedule(
        config.learning_rate, {max(1, round(f * steps)): config.lr_decay for f in config.lr_milestones})
    return optax.chain(optax.add_decayed_weights(config.weight_decay), optax.adam(schedule))


class KernelCounter:
    """The host loader of on-device data: yields {"index": (B,) int32 kernel numbers}, checkpointable.

    Only the number of rows matters (`prepare` draws the kernels from the step key).
    """

    def __init__(self, batch_size: int):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        b = self.batch_size
        self.position += 1
        return {"index": np.arange((self.position - 1) * b, self.position * b, dtype=np.int32)}

    def get_state(self) -> dict:
        return {"position": self.position}

    def set_state(self, state: dict) -> None:
        self.position = int(state["position"])


@dataclasses.dataclass(frozen=True)
class KernelPriorTask(Task):
    """Maximum-likelihood training of `KernelFlow` on random motion kernels (see the module docstring)."""

    config: KernelPriorConfig
    name: str = "kernel_prior"
    best_metric: tuple[str, str] = ("nll", "min")

    def init_model(self, rngs: nnx.Rngs) -> KernelFlow:
        return build_flow(self.config, rngs=rngs)

    def optimizer(self) -> optax.GradientTransformation:
        return make_optimizer(self.config)

    def train_loader(self, seed: int) -> KernelCounter:
        return KernelCounter(self.config.train.batch_size // jax.process_count())  # this process's rows

    def eval_batches(self) -> list[dict]:
        cfg = self.config
        k_kernels, k_noise = jax.random.split(jax.random.key(cfg.eval_seed))
        kernels = np.asarray(jax.jit(config_kernels, static_argnums=(1, 2))(k_kernels, cfg.eval_kernels, cfg))
        noise = np.asarray(jax.random.uniform(k_noise, kernels.shape, jnp.float32))
        starts = range(0, cfg.eval_kernels, cfg.eval_batch_size)
        return [{"kernel": kernels[s:s + cfg.eval_batch_size], "noise": noise[s:s + cfg.eval_batch_size]}
                for s in starts]

    def prepare(self, key: jax.Array, batch: dict) -> dict:
        k_kernels, k_noise = jax.random.split(key)
        n = batch["index"].shape[0]
        kernels = config_kernels(k_kernels, n, self.config)
        return {"kernel": kernels, "noise": jax.random.uniform(k_noise, kernels.shape, jnp.float32)}

    def loss(self, model: KernelFlow, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        nll = -jnp.mean(model.log_prob(batch["kernel"], noise=batch["noise"], use_running_average=False))
        return nll, {"nll": nll}

    def evaluate(self, model: KernelFlow, batch: dict) -> dict:
        return {"nll": -jnp.mean(model.log_prob(batch["kernel"], noise=batch["noise"], use_running_average=True))}


def make_task(config: KernelPriorConfig, *, data=None) -> KernelPriorTask:
    """The task of `config`. The kernels are synthetic: `data` must be None."""
    if data is not None:
        raise ValueError(f"kernel_prior makes its own motion kernels; data must be None, got {data!r}")
    return KernelPriorTask(config)
