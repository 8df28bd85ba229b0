"""Kernel-space DIP deblurring (Tran et al. 2021): a deep image prior over (image, blur code), F frozen.

The image generator G_x (SelfDeblur's skip net) maps fixed noise to the
sharp image x, of the INPUT's size (no kernel margin: F maps an image to a
blurred image of the same size); a small code generator G_k (`CodeHead`:
conv7x7, stride-2 convs, ResNet blocks, as the reference's KernelDIP) maps
fixed noise to a code map of F's grid; the trained blur operator F
(`jaxdeblur.models.kernel_space`, frozen, one copy shared by all runs
through the engine's run-shared constants) re-blurs: y ~ F(x, code). So the
blur model is whatever F learned, uniform or spatially varying.

Schedule (iteration i of `iterations`, the reference's generic deblurring):

- warm-up, i < warmup_iterations (300): x fitted to y and the code to a
  warm-up code by MSE (the reference fits its generators one after the other
  for 300 steps each with the same Adam; the two fits do not interact, so
  running them together is the same). The reference's warm-up code is a
  stored code of unknown origin; ours is G(y, blur(y, k0)), the code of a
  Gaussian blur k0 (sigma = warmup_sigma x half the kernel size, as Kotera
  et al.'s initial kernel) seen on the input itself, so deblurring starts
  from "the input, blurred a bit more" and the data term pulls x sharper.
- first phase, until second_phase_from (paper: half of the 5000):
  ssim_weights[0] (1 - SSIM(F(x, code), y)) + perceptual_weights[0] P
  + hyper_laplacian_weights[0] HL(x) + code_norm_weights[0] ||code||;
- second phase: the same with the second weights (paper: P + 5e-2 HL +
  5e-4 ||code||).

HL is the hyper-Laplacian prior (`losses.hyper_laplacian_penalty`, alpha
0.66), ||code|| the l2 norm of the code map. P is the reference's VGG-19
perceptual loss, sum_l w_l mean |phi_l(F(x, code)) - phi_l(y)|; VGG weights
cannot be downloaded here, so P is an OPTION: `perceptual` takes the user's
feature extractor (a pure JAX function of an (N, H, W, C) image in [0, 1]
returning a sequence of feature maps, e.g. VGG-19 relu1_1 ... relu5_1 with
the user's weights) and `perceptual_layer_weights` the w_l (the reference's
0.2, 0.4, 0.8, 1.0, 3.0). It is off by default (None). The reference's
second phase has no SSIM term (P is its only data term); without P the
default keeps 1 - SSIM in both phases (ssim_weights (1, 1)); with P, set
ssim_weights=(1, 0) for the reference's exact schedule.
Adam 5e-4 for both generators, x0.7 every fifth of the 5000 main
iterations (milestones counted from the start, warm-up included); input
noise std 0.001 on both fixed inputs at every step.

The result: the latent x (H, W, C) is the image (offset (0, 0)); the
"kernel" reported for the engine / API (and a non-blind finishing step) is
the uniform kernel of the requested size that best maps x onto F(x, code)
(least squares, `models.kernel_space.fit_uniform_kernel`): a summary of the
coded blur, exact only for uniform blur. Extras: "code" (the code map) and
"reblurred" (F(x, code)).

Operator weights (`weights`): a shipped weights name ("kernel_space-cpu",
gray: colour images are re-blurred channel by channel with one code), a
weights folder (<root>/kernel_space/<preset>), or None for an UNTRAINED
operator of the model's tiny preset (tests only).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxdeblur import kernels as K
from jaxdeblur import losses
from jaxdeblur.config import compress_schedule
from jaxdeblur.engine.method import DIPMethod
from jaxdeblur.engine.runner import EngineOptions, init_batch, run_batch
from jaxdeblur.forward import blur
from jaxdeblur.methods.selfdeblur import (FAST_GENERATOR, GeneratorConfig, grouped_adam, image_generator, noise_input,
                                          perturbed)
from jaxdeblur.nets.kernel_space import CodeHead, KernelSpace


@dataclasses.dataclass(frozen=True)
class _Operator:
    """The frozen operator's field, a base of `KernelSpaceDIPConfig` only so that `weights` stays its first
    field (dataclass fields follow the bases: the config's repr, in every run record, is as before)."""

    weights: str | None = "kernel_space-cpu"


@dataclasses.dataclass(frozen=True)
class KernelSpaceDIPConfig(GeneratorConfig, _Operator):
    """Every number of a kernel-space DIP run (defaults: the reference's generic deblurring, see the module doc).

    weights: the frozen operator (a weights name, a weights folder, or None: untrained, tests only).
      Every preset but "tiny" uses the shipped "kernel_space-cpu" operator; the "paper" schedule with
      the paper's operator needs weights trained with the model's "paper" preset (a folder here).
    Image generator: SelfDeblur's (`GeneratorConfig`'s fields: `input_channels` noise channels x
    `input_scale`, `channels_*`, `nonlocal_levels`; the reference's ImageDIP has no non-local blocks).
    Code generator: `code_input_channels` noise channels (x input_scale) at the code grid x
    2^code_downsamples, `code_width`, `code_downsamples` stride-2 convs, `code_blocks` ResNet blocks.
    Schedule: `iterations` steps in all, the first `warmup_iterations` the warm-up, the second loss
    phase from `second_phase_from`; Adam `lr_image` / `lr_code` x `lr_gamma` at each `lr_milestones`.
    Loss weights per phase (first, second): ssim_weights, perceptual_weights, hyper_laplacian_weights,
    code_norm_weights; `hyper_laplacian_alpha`; `warmup_sigma` (the warm-up blur, in half kernel sizes).
    perceptual: None, or the user's feature extractor (see the module doc); perceptual_layer_weights.
    """

    nonlocal_levels: tuple[int, ...] = ()
    code_input_channels: int = 64
    code_width: int = 64
    code_downsamples: int = 5
    code_blocks: int = 6
    iterations: int = 5300
    warmup_iterations: int = 300
    second_phase_from: int = 2800
    lr_image: float = 5e-4
    lr_code: float = 5e-4
    lr_milestones: tuple[int, ...] = (1300, 2300, 3300, 4300)
    lr_gamma: float = 0.7
    ssim_weights: tuple[float, float] = (1.0, 1.0)
    perceptual_weights: tuple[float, float] = (0.6, 1.0)
    hyper_laplacian_weights: tuple[float, float] = (2e-2, 5e-2)
    hyper_laplacian_alpha: float = 0.66
    code_norm_weights: tuple[float, float] = (5e-5, 5e-4)
    warmup_sigma: float = 1.0
    perceptual: Callable[[jax.Array], Any] | None = None
    perceptual_layer_weights: tuple[float, ...] = (0.2, 0.4, 0.8, 1.0, 3.0)

    def __post_init__(self):
        for name in ("ssim_weights", "perceptual_weights", "hyper_laplacian_weights", "code_norm_weights"):
            value = getattr(self, name)
            if len(value) != 2 or min(value) < 0:
                raise ValueError(f"{name} must be two non-negative weights (first phase, second phase), got {value}")
        if not 0 <= self.warmup_iterations <= self.second_phase_from:
            raise ValueError(f"need 0 <= warmup_iterations <= second_phase_from, got {self.warmup_iterations} and "
                             f"{self.second_phase_from}")
        if self.warmup_sigma <= 0:
            raise ValueError(f"warmup_sigma must be > 0, got {self.warmup_sigma}")
        if self.perceptual is not None and not callable(self.perceptual):
            raise TypeError(f"perceptual must be a feature extractor function or None, got {self.perceptual!r}")


@functools.lru_cache(maxsize=4)
def load_operator(weights: str | None) -> tuple[nnx.GraphDef, nnx.State]:
    """(graphdef, state) of the frozen `KernelSpace` named by `weights` (see the module docstring); cached."""
    from jaxdeblur.models import kernel_space  # noqa: PLC0415 - methods load weights, never the reverse

    if weights is None:
        return nnx.split(kernel_space.build_model(kernel_space.TINY, rngs=nnx.Rngs(0)))
    return nnx.split(kernel_space.load_weights(weights).model)


def _operator(cfg: KernelSpaceDIPConfig, shared) -> KernelSpace:
    """The frozen operator, merged from its static graph and the run-shared state."""
    return nnx.merge(load_operator(cfg.weights)[0], shared["operator"])


def apply_operator(op: KernelSpace, x: jax.Array, code: jax.Array) -> jax.Array:
    """F(x, code) for ONE image x (H, W, C) and code map (ch, cw, D), whatever C the operator takes.

    A gray operator re-blurs each channel with the same code; an RGB one
    sees a gray image as three equal channels and returns their mean.
    """
    c = x.shape[-1]
    if op.channels == c:
        return op.blur(x[None], code[None])[0]
    if op.channels == 1:
        out = op.blur(jnp.moveaxis(x, -1, 0)[..., None], jnp.broadcast_to(code, (c, *code.shape)))
        return jnp.moveaxis(out[..., 0], 0, -1)
    return jnp.mean(op.blur(jnp.repeat(x[None], op.channels, axis=-1), code[None])[0], axis=-1, keepdims=True)


def _phase_weight(pair: tuple[float, float], second: jax.Array) -> jax.Array:
    return jnp.where(second, pair[1], pair[0])


def perceptual_distance(features: Callable, layer_weights: tuple[float, ...], a: jax.Array,
                        b: jax.Array) -> jax.Array:
    """sum_l w_l mean |phi_l(a) - phi_l(b)| of two (H, W, C) images through a user's feature extractor."""
    fa, fb = features(a[None]), features(b[None])
    if len(fa) != len(layer_weights):
        raise ValueError(f"the perceptual feature extractor returned {len(fa)} feature maps but "
                         f"perceptual_layer_weights has {len(layer_weights)} weights")
    return sum(w * jnp.mean(jnp.abs(u - v)) for w, u, v in zip(layer_weights, fa, fb))


class KernelSpaceDIP(DIPMethod):
    """The kernel-space DIP method for the DIP engine (networks "image" and "code"; F is run-shared)."""

    name = "kernel_space"
    presets = {
        "paper": KernelSpaceDIPConfig(),
        # CPU setting: the fast generator (as SelfDeblur's "fast"), a code generator of width 32 (3 stride-2
        # convs, 2 blocks), the paper's schedule compressed 5x (60 warm-up + 1000 iterations) and 10x the
        # learning rates (measured on 48 px set12 crops, 200 iterations: 5e-4 left 2 of 4 inputs below
        # the blurred input's aligned PSNR, 5e-3 improved all 4 by 0.2-3.2 dB).
        "fast": compress_schedule(dataclasses.replace(
            KernelSpaceDIPConfig(), **FAST_GENERATOR.generator_fields(), code_input_channels=16, code_width=32,
            code_downsamples=3, code_blocks=2, lr_image=5e-3, lr_code=5e-3), 1060),
        # Tests: an untrained tiny operator, tiny generators, 12 iterations (4 warm-up, switch at 8).
        "tiny": KernelSpaceDIPConfig(weights=None, input_channels=4, channels_down=(8, 8), channels_up=(8, 8),
                                     channels_skip=(4, 4), code_input_channels=4, code_width=8, code_downsamples=1,
                                     code_blocks=1, iterations=12, warmup_iterations=4, second_phase_from=8,
                                     lr_milestones=(6, 10)),
    }

    # -- the engine's hooks ----------------------------------------------------------------
    def shared(self, cfg: KernelSpaceDIPConfig) -> dict:
        """Run-shared constants: the frozen operator's state (F and G), one copy for all runs."""
        return {"operator": load_operator(cfg.weights)[1]}

    def latent_shape(self, cfg, image_shape, kernel_size) -> tuple[int, int, int]:
        """The image generator's output: the input's own size (F keeps sizes)."""
        return tuple(image_shape)

    def image_offset(self, cfg, kernel_size) -> tuple[int, int]:
        """Where the image sits in the latent: (0, 0), the latent IS the image."""
        return (0, 0)

    def code_grid(self, cfg: KernelSpaceDIPConfig, latent_shape) -> tuple[int, int, int]:
        """The code map (ch, cw, code_dim) F takes for an image of `latent_shape`."""
        graphdef, state = load_operator(cfg.weights)
        return nnx.merge(graphdef, state).code_shape(*latent_shape[:2])

    def networks(self, cfg: KernelSpaceDIPConfig, latent_shape, kernel_size, rngs: nnx.Rngs):
        code_dim = self.code_grid(cfg, latent_shape)[2]
        return {
            "image": image_generator(cfg, latent_shape[2], rngs),
            "code": CodeHead(cfg.code_input_channels, width=cfg.code_width, code_dim=code_dim,
                             downsamples=cfg.code_downsamples, blocks=cfg.code_blocks, rngs=rngs),
        }

    def inputs(self, cfg: KernelSpaceDIPConfig, key, latent_shape):
        k_x, k_k = jax.random.split(key)
        h, w, _ = latent_shape
        ch, cw, _ = self.code_grid(cfg, latent_shape)
        scale = 2**cfg.code_downsamples
        return {"image": noise_input(cfg, k_x, (1, h, w, cfg.input_channels)),
                "code": noise_input(cfg, k_k, (1, ch * scale, cw * scale, cfg.code_input_channels))}

    def init_method_state(self, cfg, latent_shape, kernel_size):
        """{"warmup_code": zeros (ch, cw, D), filled by `run`; "kernel": zeros (kh, kw), the reported support}."""
        return {"warmup_code": jnp.zeros(self.code_grid(cfg, latent_shape), jnp.float32),
                "kernel": jnp.zeros(tuple(kernel_size), jnp.float32)}

    def generate(self, cfg, nets, params, net_state, inputs, key=None):
        """Both generators: (image (H, W, C), code (ch, cw, D), new net state); input noise with a key."""
        k_x, k_k = jax.random.split(key) if key is not None else (None, None)
        image, image_state = nets.apply("image", params, net_state, perturbed(cfg, inputs["image"], k_x))
        code, code_state = nets.apply("code", params, net_state, perturbed(cfg, inputs["code"], k_k))
        return image[0], code[0], {"image": image_state, "code": code_state}

    def loss(self, cfg, nets, params, net_state, inputs, method_state, y, step, key):
        x, code, net_state = self.generate(cfg, nets, params, net_state, inputs, key)
        op = _operator(cfg, nets.shared)
        zero = jnp.zeros((), jnp.float32)

        def warmup(_):
            fit = losses.mse(x, y) + losses.mse(code, method_state["warmup_code"])
            return {"warmup": fit, "data": zero, "prior": zero, "code_norm": zero}

        def deblur(_):
            second = step >= cfg.second_phase_from
            reblurred = apply_operator(op, x, code)
            data = _phase_weight(cfg.ssim_weights, second) * losses.ssim_loss(reblurred, y)
            if cfg.perceptual is not None:
                data = data + _phase_weight(cfg.perceptual_weights, second) * perceptual_distance(
                    cfg.perceptual, cfg.perceptual_layer_weights, reblurred, y)
            prior = _phase_weight(cfg.hyper_laplacian_weights, second) * losses.hyper_laplacian_penalty(
                x, alpha=cfg.hyper_laplacian_alpha)
            norm = _phase_weight(cfg.code_norm_weights, second) * jnp.sqrt(jnp.sum(code**2))
            return {"warmup": zero, "data": data, "prior": prior, "code_norm": norm}

        terms = jax.lax.cond(step < cfg.warmup_iterations, warmup, deblur, None)
        return sum(terms.values()), (terms, net_state, method_state)

    def estimate(self, cfg, nets, params, net_state, inputs, method_state):
        from jaxdeblur.models.kernel_space.transfer import fit_uniform_kernel  # noqa: PLC0415

        x, code, _ = self.generate(cfg, nets, params, net_state, inputs)
        reblurred = apply_operator(_operator(cfg, nets.shared), x, code)
        kh, kw = method_state["kernel"].shape
        if kh == kw and kh % 2 and min(x.shape[:2]) >= 2:
            kernel = fit_uniform_kernel(x, reblurred, kernel_size=kh)
        else:  # the least-squares fit takes odd square supports: report a centred delta
            kernel = jnp.zeros((kh, kw), jnp.float32).at[kh // 2, kw // 2].set(1.0)
        return x, kernel, {"code": code, "reblurred": reblurred}

    def optimizer(self, cfg: KernelSpaceDIPConfig) -> optax.GradientTransformation:
        return grouped_adam({"image": cfg.lr_image, "code": cfg.lr_code}, cfg.lr_milestones, cfg.lr_gamma)

    # -- the run -----------------------------------------------------------------------------
    def warmup_codes(self, cfg: KernelSpaceDIPConfig, ys, kernel_size) -> np.ndarray:
        """The warm-up code of each blurred image (R, ch, cw, D): G(y, blur(y, k0)), one image at a time.

        k0 is a Gaussian of sigma warmup_sigma x (kh // 2, kw // 2) (at least
        0.5 px); a gray operator sees the channel mean of a colour image.
        """
        graphdef, state = load_operator(cfg.weights)
        sigma = tuple(max(0.5, cfg.warmup_sigma * (k // 2)) for k in kernel_size)
        k0 = K.gaussian(tuple(kernel_size), sigma)
        return np.stack([np.asarray(_warmup_code(graphdef, state, jnp.asarray(y), k0)) for y in np.asarray(ys)])

    def run(self, cfg: KernelSpaceDIPConfig, ys, kernel_size, keys, options=EngineOptions(), init=None):
        """Runs the method on a batch ys (R, H, W, C): warm-up codes, then one stage of cfg.iterations
        (no warm start: `init` must be None)."""
        if init is not None:
            raise ValueError(f"method {self.name!r} cannot start from a warm start (its inits: {list(self.inits)})")
        if not isinstance(cfg, KernelSpaceDIPConfig):
            raise TypeError(f"kernel_space needs a KernelSpaceDIPConfig, got {type(cfg).__name__}")
        ys = np.asarray(ys, np.float32)
        _, state = init_batch(self, cfg, ys, kernel_size, keys, options)
        codes = self.warmup_codes(cfg, ys, kernel_size)
        state = state.replace(method_state={**state.method_state, "warmup_code": codes})
        return run_batch(self, cfg, ys, kernel_size, keys, iterations=cfg.iterations, options=options, state=state)


@functools.partial(jax.jit, static_argnums=0)
def _warmup_code(graphdef, state, y, k0):
    """G(y, blur(y, k0, "replicate")) of one image (H, W, C) -> (ch, cw, D)."""
    op = nnx.merge(graphdef, state)
    blurred = blur(y, k0, "replicate")
    if op.channels == y.shape[-1]:
        return op.encode(y[None], blurred[None])[0]
    gray = lambda x: jnp.mean(x, axis=-1, keepdims=True)  # noqa: E731
    pair = (y, blurred) if op.channels != 1 else (gray(y), gray(blurred))
    if op.channels == 3:
        pair = tuple(jnp.repeat(p, 3, axis=-1) for p in pair)
    return op.encode(pair[0][None], pair[1][None])[0]


__all__ = ["KernelSpaceDIP", "KernelSpaceDIPConfig", "apply_operator", "load_operator", "perceptual_distance"]
