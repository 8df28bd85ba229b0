"""SelfDeblur (Ren et al. 2020): a double deep image prior.

An image generator G_x (skip encoder-decoder) maps fixed noise to the latent
sharp image of size (H+kh-1, W+kw-1); a kernel generator G_k (FCN + softmax)
maps a fixed 200-d code to the kernel. Both are fitted to one blurred image
through the 'valid' forward model y = blur(G_x, G_k) (true convolution here;
the reference code correlates, which only mirrors the kernel the generator
learns). Settings follow the reference code (REFERENCE.md):
Adam 1e-2 (G_x) / 1e-4 (G_k), halved at 2000/3000/4000; MSE, then 1 - SSIM
from iteration 1000; input noise std 0.001 per step; 5000 iterations.

`DIPConfig` also carries the optional terms Kotera et al. add (TV after an
iteration, kernel l2 before an iteration), zero in SelfDeblur's presets.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxdeblur import losses
from jaxdeblur.config import compress_schedule
from jaxdeblur.engine.method import DIPMethod
from jaxdeblur.engine.multiscale import ScaleSize, Stage, WarmStart, fit_extras, run_scales
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.forward import blur
from jaxdeblur.nets import KernelGenerator, SkipGenerator


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """The image generator (SelfDeblur's skip encoder-decoder, `nets.SkipGenerator`) and its fixed input.

    One declaration for every method config whose image comes out of this
    generator (`DIPConfig` and so Kotera's and the uncertainty method's,
    `KernelSpaceDIPConfig`): flat fields, inherited, so the configs' `--set`
    names, records and checkpoint stamps are the fields' own names.
    Input: `input_channels` noise channels scaled by `input_scale`, plus
    Gaussian noise of std `input_noise_std` each step. Widths per level:
    `channels_down` / `channels_up` / `channels_skip`; non-local blocks at
    `nonlocal_levels`. Defaults: SelfDeblur's reference settings.
    """

    input_channels: int = 8
    input_scale: float = 0.1
    input_noise_std: float = 0.001
    channels_down: tuple[int, ...] = (128, 128, 128, 128, 128)
    channels_up: tuple[int, ...] = (128, 128, 128, 128, 128)
    channels_skip: tuple[int, ...] = (16, 16, 16, 16, 16)
    nonlocal_levels: tuple[int, ...] = (2, 3, 4)

    def generator_fields(self) -> dict:
        """{field: value} of the generator's fields, to give another config the same generator
        (`dataclasses.replace(cfg, **gen.generator_fields())`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(GeneratorConfig)}


# The generator of the "fast" presets (CPU: 4 levels of 32 channels, 16 skip, no non-local blocks) and of the
# "tiny" ones (tests: 2 levels of 8 channels, a non-local block at level 1).
FAST_GENERATOR = GeneratorConfig(channels_down=(32,) * 4, channels_up=(32,) * 4, channels_skip=(16,) * 4,
                                 nonlocal_levels=())
TINY_GENERATOR = GeneratorConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(4, 4), nonlocal_levels=(1,))


def image_generator(cfg: GeneratorConfig, channels: int, rngs: nnx.Rngs) -> SkipGenerator:
    """The config's image generator making `channels` output channels."""
    return SkipGenerator(cfg.input_channels, channels, channels_down=cfg.channels_down, channels_up=cfg.channels_up,
                         channels_skip=cfg.channels_skip, nonlocal_levels=cfg.nonlocal_levels, rngs=rngs)


def noise_input(cfg: GeneratorConfig, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """A fixed generator input: uniform noise in [0, input_scale) of `shape`."""
    return cfg.input_scale * jax.random.uniform(key, shape)


def perturbed(cfg: GeneratorConfig, z: jax.Array, key: jax.Array | None) -> jax.Array:
    """A generator input for one step: z + N(0, input_noise_std^2) with a key (training), z without."""
    return z if key is None else z + cfg.input_noise_std * jax.random.normal(key, z.shape)


@dataclasses.dataclass(frozen=True)
class DIPConfig(GeneratorConfig):
    """Every number of a double-DIP run (defaults: SelfDeblur's reference settings).

    Networks: the image generator (`GeneratorConfig`'s fields); kernel FCN
    `kernel_code` -> `kernel_hidden` -> kh*kw.
    Optimisation: Adam with `lr_image` / `lr_kernel`, multiplied by `lr_gamma`
    at each of `lr_milestones`; `iterations` steps.
    Loss (iteration i): MSE if i < ssim_from else 1 - SSIM;
    + tv_weight * TV(image) if i >= tv_from; + kernel_l2_weight * ||k||^2 if i < kernel_l2_until.
    """

    kernel_code: int = 200
    kernel_hidden: int = 1000
    iterations: int = 5000
    lr_image: float = 1e-2
    lr_kernel: float = 1e-4
    lr_milestones: tuple[int, ...] = (2000, 3000, 4000)
    lr_gamma: float = 0.5
    ssim_from: int = 1000
    tv_weight: float = 0.0
    tv_from: int = 0
    kernel_l2_weight: float = 0.0
    kernel_l2_until: int = 0

    def network_fields(self) -> dict:
        """{field: value} of both networks (the generator's fields, kernel_code, kernel_hidden), to give another
        double-DIP config the same networks."""
        return {**self.generator_fields(), "kernel_code": self.kernel_code, "kernel_hidden": self.kernel_hidden}


def multistep_lr(lr: float, milestones: tuple[int, ...], gamma: float) -> optax.Schedule:
    """PyTorch MultiStepLR as an optax schedule: lr * gamma^(number of milestones <= step)."""
    return optax.piecewise_constant_schedule(lr, {int(m): gamma for m in milestones})


def grouped_adam(rates: Mapping[str, float], milestones: tuple[int, ...], gamma: float,
                 group: Mapping[str, str] | None = None) -> optax.GradientTransformation:
    """Adam per group of networks over the params dict {network: params}: group g at rates[g] x gamma at each
    milestone (`multistep_lr`); `group` maps a network to its group (default: its own name)."""
    group = dict(group or {})
    return optax.multi_transform(
        {name: optax.adam(multistep_lr(lr, milestones, gamma)) for name, lr in rates.items()},
        param_labels=lambda params: {n: jax.tree.map(lambda _: group.get(n, n), tree) for n, tree in params.items()})


def dip_loss_terms(cfg: DIPConfig, latent: jax.Array, kernel: jax.Array, y: jax.Array,
                   step: jax.Array) -> dict[str, jax.Array]:
    """The scheduled loss terms of a double-DIP step, each already weighted.

    latent (H+kh-1, W+kw-1, C), kernel (kh, kw), y (H, W, C); returns
    {"data": ..., "tv": ..., "kernel_l2": ...}; their sum is the loss.
    """
    reblurred = blur(latent, kernel, "valid")
    data = jnp.where(step < cfg.ssim_from, losses.mse(reblurred, y), losses.ssim_loss(reblurred, y))
    terms = {"data": data}
    if cfg.tv_weight:
        terms["tv"] = jnp.where(step >= cfg.tv_from, cfg.tv_weight, 0.0) * losses.total_variation(latent)
    if cfg.kernel_l2_weight:
        terms["kernel_l2"] = jnp.where(step < cfg.kernel_l2_until, cfg.kernel_l2_weight, 0.0) * losses.kernel_l2(kernel)
    return terms


class SelfDeblur(DIPMethod):
    """The SelfDeblur method for the DIP engine (see `jaxdeblur.engine.method`)."""

    name = "selfdeblur"
    inits = ("map",)  # starts a run can take besides its random one (`run(init=...)`, `jaxdeblur.methods.map_init`)
    presets = {
        "paper": DIPConfig(),
        # CPU setting: the fast generator (4 levels of 32 channels, 16 skip, no non-local blocks), a kernel FCN
        # of 500, 1000 iterations with the schedule compressed 5x.
        "fast": compress_schedule(dataclasses.replace(DIPConfig(), **FAST_GENERATOR.generator_fields(),
                                                      kernel_hidden=500), 1000),
        "tiny": DIPConfig(**TINY_GENERATOR.generator_fields(), kernel_code=16, kernel_hidden=32, iterations=20,
                          lr_milestones=(10, 15), ssim_from=10),
    }

    def networks(self, cfg: DIPConfig, latent_shape, kernel_size, rngs: nnx.Rngs):
        return {
            "image": image_generator(cfg, latent_shape[2], rngs),
            "kernel": KernelGenerator(kernel_size, in_features=cfg.kernel_code, hidden=cfg.kernel_hidden, rngs=rngs),
        }

    def inputs(self, cfg: DIPConfig, key, latent_shape):
        k_x, k_k = jax.random.split(key)
        h, w, _ = latent_shape
        return {"image": noise_input(cfg, k_x, (1, h, w, cfg.input_channels)),
                "kernel": noise_input(cfg, k_k, (cfg.kernel_code,))}

    def generate(self, cfg: DIPConfig, nets, params, net_state, inputs, key=None):
        """Runs both generators: (latent (H+kh-1, W+kw-1, C), kernel (kh, kw), new net state).

        With a key, the image input is perturbed by N(0, input_noise_std^2) (training);
        without, the clean input is used (the final estimate).
        """
        latent, image_state = nets.apply("image", params, net_state, perturbed(cfg, inputs["image"], key))
        kernel, kernel_state = nets.apply("kernel", params, net_state, inputs["kernel"])
        return latent[0], kernel, {"image": image_state, "kernel": kernel_state}

    def loss(self, cfg, nets, params, net_state, inputs, method_state, y, step, key):
        latent, kernel, net_state = self.generate(cfg, nets, params, net_state, inputs, key)
        terms = dip_loss_terms(cfg, latent, kernel, y, step)
        return sum(terms.values()), (terms, net_state, method_state)

    def estimate(self, cfg, nets, params, net_state, inputs, method_state):
        latent, kernel, _ = self.generate(cfg, nets, params, net_state, inputs)
        return latent, kernel, {}

    def optimizer(self, cfg: DIPConfig) -> optax.GradientTransformation:
        return grouped_adam({"image": cfg.lr_image, "kernel": cfg.lr_kernel}, cfg.lr_milestones, cfg.lr_gamma)

    def run(self, cfg: DIPConfig, ys, kernel_size, keys, options=EngineOptions(), init: WarmStart | None = None):
        """Runs the whole method on a batch (R, H, W, C): one stage of cfg.iterations.

        init: a WarmStart (e.g. the MAP estimator's kernel and non-blind image, `jaxdeblur.methods.map_init`):
        the generators are first fitted to it (a pipeline of one stage, `run_scales`); the outcome's extras
        then add "fit_iterations_<image|kernel>" (R, 1) and "fit_rmse_<image|kernel>" (R, 1), its timings
        "fit_s".
        """
        if init is None:
            return super().run(cfg, ys, kernel_size, keys, options)
        ys = np.asarray(ys, np.float32)
        stage = Stage(cfg, ScaleSize(1.0, tuple(ys.shape[1:3]), tuple(kernel_size)), cfg.iterations)
        result = run_scales(self, [stage], ys, keys, options=options, warm_start=init)
        out = result.outcomes[0]
        timings = {**out.timings, "fit_s": float(result.fits[0].fit_s)}
        return dataclasses.replace(out, extras={**out.extras, **fit_extras(result.fits, ys.shape[0])},
                                   timings=timings)
