"""The smallest DIP method, for the engine's contract tests: one file, registered by one line.

It shows what a new method needs: a frozen config with presets ("paper",
"fast", "tiny"), and a `DIPMethod` subclass writing the step's parts
(`networks`, `inputs`, `loss`, `estimate`, `optimizer`); the base class gives
`run` and the optional hooks. Its "networks" are a learnt pixel grid (the
latent, through a sigmoid, plus a fixed noise input) and learnt kernel logits
(softmax): a double DIP without the convolutional prior, so it compiles in
about a second. Registering it is one line (tests/methods/test_contract.py)::

    monkeypatch.setitem(jaxdeblur.methods.METHODS, ToyMethod.name, ToyMethod())
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxdeblur import losses
from jaxdeblur.engine import DIPMethod
from jaxdeblur.forward import blur


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    """Every number of a toy run: Adam at `lr` x `lr_gamma` at each of `lr_milestones`, `iterations` steps,
    fixed input noise of amplitude `input_scale`, initial parameters of amplitude `init_scale`."""

    iterations: int = 400
    lr: float = 0.05
    lr_milestones: tuple[int, ...] = (200, 300)
    lr_gamma: float = 0.5
    input_scale: float = 0.1
    init_scale: float = 0.1


class PixelGrid(nnx.Module):
    """A learnt latent: sigmoid(logits + z), logits starting near 0 (a grey image)."""

    def __init__(self, shape: tuple[int, ...], scale: float, *, rngs: nnx.Rngs):
        self.logits = nnx.Param(scale * jax.random.normal(rngs.params(), shape))

    def __call__(self, z):
        return jax.nn.sigmoid(self.logits[...] + z)


class KernelLogits(nnx.Module):
    """A learnt kernel: softmax of (kh, kw) logits (non-negative, sum 1)."""

    def __init__(self, kernel_size: tuple[int, int], scale: float, *, rngs: nnx.Rngs):
        self.logits = nnx.Param(scale * jax.random.normal(rngs.params(), tuple(kernel_size)))

    def __call__(self):
        return jax.nn.softmax(self.logits[...].reshape(-1)).reshape(self.logits.shape)


class ToyMethod(DIPMethod):
    """The toy DIP method: MSE of blur(latent, kernel, "valid") to the blurred image."""

    name = "toy"
    presets = {
        "paper": ToyConfig(),
        "fast": dataclasses.replace(ToyConfig(), iterations=80, lr_milestones=(40, 60)),
        "tiny": ToyConfig(iterations=4, lr_milestones=(2,)),
    }

    def networks(self, cfg: ToyConfig, latent_shape, kernel_size, rngs: nnx.Rngs):
        return {"image": PixelGrid(latent_shape, cfg.init_scale, rngs=rngs),
                "kernel": KernelLogits(kernel_size, cfg.init_scale, rngs=rngs)}

    def inputs(self, cfg: ToyConfig, key, latent_shape):
        return {"image": cfg.input_scale * jax.random.uniform(key, latent_shape)}

    def _generate(self, nets, params, net_state, inputs):
        latent, _ = nets.apply("image", params, net_state, inputs["image"])
        kernel, _ = nets.apply("kernel", params, net_state)
        return latent, kernel

    def loss(self, cfg, nets, params, net_state, inputs, method_state, y, step, key):
        latent, kernel = self._generate(nets, params, net_state, inputs)
        data = losses.mse(blur(latent, kernel, "valid"), y)
        return data, ({"data": data}, net_state, method_state)

    def estimate(self, cfg, nets, params, net_state, inputs, method_state):
        latent, kernel = self._generate(nets, params, net_state, inputs)
        return latent, kernel, {"mean": jnp.mean(latent)}

    def optimizer(self, cfg: ToyConfig) -> optax.GradientTransformation:
        return optax.adam(optax.piecewise_constant_schedule(cfg.lr, {m: cfg.lr_gamma for m in cfg.lr_milestones}))
