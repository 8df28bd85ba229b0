"""Nair & Patel: uncertainty-aware kernel estimation and edge-preserving attention.

SelfDeblur's double deep image prior (`jaxdeblur.methods.selfdeblur`) with two
additions, each behind a config switch so the paper's ablation (Table 3) can
be reproduced:

``uncertainty`` (kernel branch, "+ Kernel")
    The base kernel FCN G_kb has dropout p on each layer
    (`KernelGenerator(dropout_rate=p)`). Each step draws M dropout masks and
    evaluates the M kernels k_1..k_M in ONE `jax.vmap` pass over M keys
    (`mc_kernel_samples`); their pixelwise mean and variance (eq. 2,
    `kernel_moments`) go into the 2-layer FCN refinement net G_kr
    (`RefinementNet`, softmax output), whose output k is the kernel of L_MAP.
    L_mont (eq. 7) fits every sample to the data and penalises the variance::

        L_mont = 1/(2M) (sum_i |x * k_i - y|^2 + sum_j (k_var_j)^2)

``attention`` (image branch, "+ Image")
    The image generator is split at its penultimate layer
    (`SkipGenerator.features` / `.to_image`); the features pass through the
    gated edge-preserving attention (`GatedEdgeAttention`, eq. 3-5) whose gate
    also sees the generator's outputs of the previous m iterations. Those
    outputs are a ring buffer in the run's method state (newest first),
    pushed once per step, so the step stays pure and `lax.scan`-able.

Loss (eq. 6): L = L_MAP + L_mont + lambda L_tv with lambda = 1e-7.
Every squared-error term is taken as a MEAN over the y.size observed values
(`losses.mse`), i.e. the paper's sums divided by y.size; the variance penalty
and TV (a per-pixel mean, `losses.total_variation`) are divided the same way,
so the relative weights are the paper's. The paper writes L_MAP as a squared
error and gives no SSIM switch: the "paper" preset never switches
(`ssim_from=NEVER`); set ``ssim_from=1000`` for SelfDeblur's code behaviour.

Optimisation: Adam, lr 0.01 for every network (the paper gives one rate),
halved every 1000 iterations; 5000 iterations; M = 10, p = 0.2. The paper
gives neither m (past outputs seen by the gate) nor the window p of the
attention: 3 and 5 here (config fields `history`, `window`).

Switch settings of the ablation (all with this method's loss / optimiser):
  SelfDeblur:    attention=False, uncertainty=False
  + Image:       attention=True,  uncertainty=False
  + Kernel:      attention=False, uncertainty=True
  full (Ours):   attention=True,  uncertainty=True   (the default)

Outputs: `estimate` returns the latent image, the refined kernel and, with
the uncertainty branch, extras ``kernel_variance`` (kh, kw) and
``kernel_mean`` (kh, kw) of M dropout samples drawn with a fixed per-run key
(so the final kernel is reproducible).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxdeblur.config import NEVER, compress_schedule
from jaxdeblur.methods.selfdeblur import DIPConfig, SelfDeblur, dip_loss_terms, grouped_adam, perturbed
from jaxdeblur.nets import KernelGenerator, RefinementNet
from jaxdeblur.nets.edge_attention import GatedEdgeAttention, ring_buffer_init, ring_buffer_push



def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclasses.dataclass(frozen=True)
class UncertaintyConfig(DIPConfig):
    """Every number of a Nair & Patel run (defaults: the paper's settings).

    Inherits SelfDeblur's fields (`DIPConfig`: generator widths, input noise,
    learning rates and milestones, `ssim_from`, `tv_weight`, `iterations`);
    the defaults that differ from SelfDeblur are the paper's: lr_kernel 0.01,
    milestones every 1000 iterations, tv_weight 1e-7, no SSIM switch.

    Switches: `attention` (gated edge-preserving attention on the image
    generator), `uncertainty` (Monte-Carlo dropout kernel + refinement + L_mont).
    Kernel branch: `mc_samples` M dropout passes per step (>= 2), dropout
    rate `dropout_rate` p in [0, 1), refinement hidden width `refine_hidden`,
    `variance_weight` scales the variance penalty of L_mont (1: the paper).
    Image branch: `history` m past outputs seen by the gate, attention
    `window` (odd, pixels), gate hidden channels `gate_hidden`.
    """

    lr_kernel: float = 1e-2
    lr_milestones: tuple[int, ...] = (1000, 2000, 3000, 4000)
    ssim_from: int = NEVER
    tv_weight: float = 1e-7
    attention: bool = True
    uncertainty: bool = True
    mc_samples: int = 10
    dropout_rate: float = 0.2
    refine_hidden: int = 1000
    variance_weight: float = 1.0
    history: int = 3
    window: int = 5
    gate_hidden: int = 16

    def __post_init__(self):
        for name in ("attention", "uncertainty"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("mc_samples", "refine_hidden", "history", "gate_hidden", "window"):
            _positive_int(name, getattr(self, name))
        if self.uncertainty and self.mc_samples < 2:
            raise ValueError(f"mc_samples must be >= 2 for a kernel variance, got {self.mc_samples}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
        if self.window % 2 == 0:
            raise ValueError(f"window must be odd (it is centred on each pixel), got {self.window}")
        if not self.variance_weight >= 0:
            raise ValueError(f"variance_weight must be >= 0, got {self.variance_weight!r}")

    @property
    def variant(self) -> str:
        """The ablation name of the switch setting: selfdeblur, +image, +kernel or full."""
        return {(False, False): "selfdeblur", (True, False): "+image", (False, True): "+kernel",
                (True, True): "full"}[(self.attention, self.uncertainty)]


def ablation_config(cfg: UncertaintyConfig, variant: str) -> UncertaintyConfig:
    """`cfg` with the switches of an ablation variant: "selfdeblur", "+image", "+kernel" or "full"."""
    switches = {"selfdeblur": (False, False), "+image": (True, False), "+kernel": (False, True), "full": (True, True)}
    if variant not in switches:
        raise ValueError(f"unknown ablation variant {variant!r}; choose one of {list(switches)}")
    attention, uncertainty = switches[variant]
    return dataclasses.replace(cfg, attention=attention, uncertainty=uncertainty)


def mc_kernel_samples(nets, params, net_state, z: jax.Array, keys: jax.Array) -> jax.Array:
    """M Monte-Carlo dropout kernels of the base kernel net in one vmapped pass.

    z: (kernel_code,) the fixed code; keys: (M,) PRNG keys, one dropout draw
    each (sample i is exactly `nets.apply("kernel", ..., z, key=keys[i])`).
    Returns (M, kh, kw): non-negative kernels, each summing to 1.
    """
    def one(key):
        return nets.apply("kernel", params, net_state, z, key=key)[0]

    return jax.vmap(one)(keys)


def kernel_moments(samples: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eq. 2: pixelwise mean and (biased) variance of (M, kh, kw) samples -> ((kh, kw), (kh, kw)).

    The variance is computed as mean((k_i - mean)^2), equal to eq. 2's
    mean(k_i k_i) - mean^2 but never negative by rounding.
    """
    mean = jnp.mean(samples, axis=0)
    return mean, jnp.mean(jnp.square(samples - mean), axis=0)


class Uncertainty(SelfDeblur):
    """Nair & Patel's method for the DIP engine (see `jaxdeblur.engine.method`)."""

    name = "uncertainty"
    presets = {
        "paper": UncertaintyConfig(),
        # CPU setting: SelfDeblur's "fast" networks, 1000 iterations with the schedule compressed 5x (halved
        # every 200), refinement width 500.
        "fast": compress_schedule(dataclasses.replace(
            UncertaintyConfig(), **SelfDeblur.presets["fast"].network_fields(), refine_hidden=500), 1000),
        # Tests: seconds on a CPU (SelfDeblur's tiny networks).
        "tiny": UncertaintyConfig(**SelfDeblur.presets["tiny"].network_fields(), refine_hidden=16, iterations=20,
                                  lr_milestones=(5, 10, 15), mc_samples=4, history=2, window=3, gate_hidden=4),
    }

    # ----------------------------------------------------------------- engine
    def networks(self, cfg: UncertaintyConfig, latent_shape, kernel_size, rngs: nnx.Rngs):
        nets = super().networks(cfg, latent_shape, kernel_size, rngs)
        if cfg.uncertainty:
            nets["kernel"] = KernelGenerator(kernel_size, in_features=cfg.kernel_code, hidden=cfg.kernel_hidden,
                                             dropout_rate=cfg.dropout_rate, rngs=rngs)
            nets["refine"] = RefinementNet(kernel_size, hidden=cfg.refine_hidden, rngs=rngs)
        if cfg.attention:
            nets["attention"] = GatedEdgeAttention(cfg.channels_up[0], image_channels=latent_shape[2],
                                                   window=cfg.window, history=cfg.history,
                                                   gate_hidden=cfg.gate_hidden, rngs=rngs)
        return nets

    def inputs(self, cfg: UncertaintyConfig, key, latent_shape):
        k_nets, k_mc = jax.random.split(key)
        inputs = super().inputs(cfg, k_nets, latent_shape)
        if cfg.uncertainty:  # the dropout draws of the final estimate (raw key data)
            inputs["estimate_key"] = jax.random.key_data(k_mc)
        return inputs

    def init_method_state(self, cfg: UncertaintyConfig, latent_shape, kernel_size):
        """{"history": (m, 1, H+kh-1, W+kw-1, C) zeros} with attention, else {}."""
        if not cfg.attention:
            return {}
        return {"history": ring_buffer_init(cfg.history, (1, *latent_shape))}

    def loss(self, cfg, nets, params, net_state, inputs, method_state, y, step, key):
        """L_MAP (+ TV) + L_mont; terms "data", "tv", "mont_data", "mont_variance" as switched on."""
        k_noise, k_mc = jax.random.split(key)
        latent, image_state, method_state = self.image(cfg, nets, params, net_state, inputs, method_state, k_noise)
        kernel, kernel_state, mc = self.kernel(cfg, nets, params, net_state, inputs, k_mc)
        terms = dip_loss_terms(cfg, latent, kernel, y, step)
        if cfg.uncertainty:
            terms.update(mont_terms(cfg, latent, mc["samples"], mc["variance"], y, step))
        return sum(terms.values()), (terms, {**net_state, **image_state, **kernel_state}, method_state)

    def estimate(self, cfg, nets, params, net_state, inputs, method_state):
        latent, _, _ = self.image(cfg, nets, params, net_state, inputs, method_state, None)
        key = jax.random.wrap_key_data(inputs["estimate_key"]) if cfg.uncertainty else None
        kernel, _, mc = self.kernel(cfg, nets, params, net_state, inputs, key)
        extras = {"kernel_variance": mc["variance"], "kernel_mean": mc["mean"]} if cfg.uncertainty else {}
        return latent, kernel, extras

    def fit_networks(self, cfg: UncertaintyConfig) -> dict[str, str]:
        """The networks a warm start fits (`engine.multiscale.fit_networks`): the kernel is the refinement
        net's output with the uncertainty branch ("refine"; the base FCN's samples stay as drawn)."""
        return {"image": "image", "kernel": "refine" if cfg.uncertainty else "kernel"}

    def optimizer(self, cfg: UncertaintyConfig) -> optax.GradientTransformation:
        """Adam per group: image generator + attention at lr_image, kernel + refinement nets at lr_kernel."""
        return grouped_adam({"image": cfg.lr_image, "kernel": cfg.lr_kernel}, cfg.lr_milestones, cfg.lr_gamma,
                            group={"image": "image", "attention": "image", "kernel": "kernel", "refine": "kernel"})

    # --------------------------------------------------------------- branches
    def image(self, cfg, nets, params, net_state, inputs, method_state, key=None):
        """The image branch: (latent (H+kh-1, W+kw-1, C), {"image": ..., "attention": ...} state, method state).

        With a key (training) the input gets N(0, input_noise_std^2) noise
        and, with attention, the output is pushed into the history buffer
        (newest first); without a key (final estimate) the clean input is
        used and the buffer is left as it is.
        """
        z = perturbed(cfg, inputs["image"], key)
        if not cfg.attention:
            latent, image_state = nets.apply("image", params, net_state, z)
            return latent[0], {"image": image_state}, method_state
        features, image_state = nets.apply("image", params, net_state, z, method="features")
        filtered, attention_state = nets.apply("attention", params, net_state, features, method_state["history"])
        latent, image_state = nets.apply("image", params, {**net_state, "image": image_state}, filtered,
                                         method="to_image")
        if key is not None:
            method_state = {**method_state,
                            "history": ring_buffer_push(method_state["history"], jax.lax.stop_gradient(latent))}
        return latent[0], {"image": image_state, "attention": attention_state}, method_state

    def kernel(self, cfg, nets, params, net_state, inputs, key=None):
        """The kernel branch: (kernel (kh, kw), kernel nets' state, {"samples", "mean", "variance"} or {}).

        With `uncertainty`, `key` is split into the M dropout keys and the
        kernel is the refinement of the samples' moments; otherwise the plain
        SelfDeblur kernel generator (no dropout) and `key` is unused.
        """
        z = inputs["kernel"]
        if not cfg.uncertainty:
            kernel, kernel_state = nets.apply("kernel", params, net_state, z)
            return kernel, {"kernel": kernel_state}, {}
        if key is None:
            raise ValueError("the uncertainty kernel branch needs a key for its dropout samples")
        samples = mc_kernel_samples(nets, params, net_state, z, jax.random.split(key, cfg.mc_samples))
        mean, variance = kernel_moments(samples)
        kernel, refine_state = nets.apply("refine", params, net_state, mean, variance)
        return kernel, {"kernel": net_state["kernel"], "refine": refine_state}, \
            {"samples": samples, "mean": mean, "variance": variance}


def mont_terms(cfg: UncertaintyConfig, latent: jax.Array, samples: jax.Array, variance: jax.Array, y: jax.Array,
               step: jax.Array) -> dict[str, jax.Array]:
    """L_mont of eq. 7, divided by y.size like the other terms: {"mont_data", "mont_variance"}.

    latent (H+kh-1, W+kw-1, C), samples (M, kh, kw), variance (kh, kw), y (H, W, C).
    mont_data = 1/(2M) sum_i data(x * k_i, y) with the data loss of L_MAP
    (MSE, or 1 - SSIM from cfg.ssim_from); mont_variance =
    variance_weight / (2M) * sum_j k_var_j^2 / y.size.
    """
    m = samples.shape[0]
    data = jax.vmap(lambda k: dip_loss_terms(cfg, latent, k, y, step)["data"])(samples)
    return {"mont_data": jnp.sum(data) / (2 * m),
            "mont_variance": cfg.variance_weight * jnp.sum(jnp.square(variance)) / (2 * m * y.size)}


__all__ = ["NEVER", "Uncertainty", "UncertaintyConfig", "ablation_config", "kernel_moments", "mc_kernel_samples",
           "mont_terms"]
