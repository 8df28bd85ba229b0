"""Coarse-to-fine blind MAP kernel estimation with the L0 intensity + gradient prior (Pan et al.).

    min_{x, k}  ||k * x - y||^2 + lambda_i ||x||_0 + lambda_g ||grad x||_0 + gamma ||k||^2,
    k >= 0, sum k = 1

alternately in x (`jaxdeblur.estimate.l0`) and k (`jaxdeblur.estimate.kernel_fit`),
on a pyramid of scales (image and kernel shrunk by `scale_factor` per scale).
Per scale, `iterations` alternations run in one `lax.scan`:

1. latent x: L0 half-quadratic splitting on the blurred image padded by
   about a kernel size on every side (edge-replicated, then edge-tapered
   with a box of the kernel's size so the padded image is nearly periodic),
   cropped back;
2. kernel k: least squares on the (edge-selected) gradients of x against
   the gradients of the blurred image, Tikhonov weight gamma (by default
   `kernel_reg` times the gradient energy sum |grad y|^2 of the blurred input
   at full resolution, one value for all scales), by conjugate gradients;
   negatives and taps under `kernel_threshold` x peak zeroed, 8-connected
   components under `component_mass` of the mass removed,
   renormalised (`jaxdeblur.estimate.components`);
3. lambdas divided by `lambda_decay` (not below `lambda_min`), the edge
   threshold by `edge_decay`.

At the end of a scale the kernel is centred (`kernels.center`) and
resampled to the next scale (`kernels.resize` by 1 / scale_factor, then
padded / cropped to the next support); the lambdas carry over, the edge
threshold restarts from its initial value (set from the blurred image at the
coarsest scale), as in Pan et al.'s code. The coarsest kernel starts as a
centred delta; the finest scale uses the requested support (kh, kw), the
coarser ones odd supports ceil(kh * factor) (+1 if even), as in Pan's code.
The final kernel is centred, thresholded once more and renormalised.

Everything below `estimate_kernels`' host checks is one jitted, vmapped
program: a batch of same-size images (e.g. thousands of patches) runs in one
call; the scale loop is unrolled in Python (a few scales), the alternations
and every inner solver are `lax` loops. Kernels are in the library's blur
convention (`jaxdeblur.forward.blur`, TRUE convolution, centre tap
(kh // 2, kw // 2)).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from scipy.fft import next_fast_len

from jaxdeblur.deconv import edgetaper
from jaxdeblur.estimate.components import clean_kernel
from jaxdeblur.estimate.config import MapConfig, resolve_config
from jaxdeblur.estimate.kernel_fit import (gradient_spectra, initial_edge_threshold, normal_equations,
                                           select_edges, solve_kernel, spectrum_shape)
from jaxdeblur.estimate.l0 import l0_restore
from jaxdeblur.forward import kernel_to_otf
from jaxdeblur.kernels import center, crop_to, normalize, pad_to, resize

# An image whose neighbouring pixels never differ by more than one 8-bit level has no edge to estimate from.
MIN_EDGE_CONTRAST = 1.0 / 255.0
HISTORY_KEYS = ("objective", "data", "prior", "lambda_grad", "edge_threshold")


@dataclasses.dataclass(frozen=True)
class Scale:
    """One level of the pyramid: image and kernel shapes, and the image's size factor."""

    image_shape: tuple[int, int]
    kernel_shape: tuple[int, int]
    factor: float


@dataclasses.dataclass(frozen=True)
class KernelEstimate:
    """Output of `estimate_kernels` (NumPy arrays; no batch axis for a single (H, W) input).

    kernel: (N, kh, kw) float32, non-negative, sum 1, blur convention, centred.
    latent: (N, H, W) the last intermediate (L0) latent image of the finest scale.
    history: {"objective", "data", "prior", "lambda_grad", "edge_threshold": (N, T)}
      per alternation, T = scales x iterations, coarse to fine; the energy
      terms are divided by the number of pixels of their scale's padded domain
      (objective = data + prior + gamma ||k||^2, evaluated with the kernel of
      that alternation and the latent it was fitted to); "scale": (T,) scale
      index (0 = coarsest).
    scales: the pyramid, coarse to fine.
    config: the MapConfig used.
    """

    kernel: np.ndarray
    latent: np.ndarray
    history: dict
    scales: tuple[Scale, ...]
    config: MapConfig


def _odd_ceil(x: float) -> int:
    n = math.ceil(x - 1e-9)
    return n + 1 - n % 2


def pyramid(image_shape: tuple[int, int], kernel_shape: tuple[int, int], config: MapConfig) -> tuple[Scale, ...]:
    """The scales, coarse to fine (static: a function of the shapes and the config)."""
    h, w = image_shape
    kh, kw = kernel_shape
    f = config.scale_factor
    coarser = max(0, math.floor(math.log(config.coarsest_kernel / min(kh, kw)) / math.log(f) + 1e-9))
    scales = []
    for s in range(coarser, -1, -1):
        factor = f**s
        image = (max(1, round(h * factor)), max(1, round(w * factor)))
        kernel = (kh, kw) if s == 0 else tuple(min(_odd_ceil(n * factor), m - 1 + m % 2) for n, m in zip(
            (kh, kw), image))
        scales.append(Scale(image, kernel, factor))
    return tuple(scales)


def _valid_differences(x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Forward differences inside the image, both (H - 1, W - 1): (x[i, j+1] - x[i, j], x[i+1, j] - x[i, j])."""
    return x[:-1, 1:] - x[:-1, :-1], x[1:, :-1] - x[:-1, :-1]


def _resample_kernel(k: jnp.ndarray, shape: tuple[int, int], scale: float) -> jnp.ndarray:
    """k stretched by `scale` about its centre tap, then padded / cropped (centred) to `shape`, sum 1."""
    k = resize(k, scale)
    k = pad_to(k, (max(k.shape[0], shape[0]), max(k.shape[1], shape[1])))
    return normalize(crop_to(k, shape))


def _periodic_padding(y: jnp.ndarray, kernel_shape: tuple[int, int]) -> tuple[jnp.ndarray, tuple[int, int]]:
    """y edge-padded by at least a kernel size per side to a fast FFT size, edge-tapered; and y's offset."""
    (h, w), (kh, kw) = y.shape, kernel_shape
    hp, wp = next_fast_len(h + 2 * kh, real=True), next_fast_len(w + 2 * kw, real=True)
    top, left = (hp - h) // 2, (wp - w) // 2
    padded = jnp.pad(y, ((top, hp - h - top), (left, wp - w - left)), mode="edge")
    return edgetaper(padded, jnp.full(kernel_shape, 1.0 / (kh * kw))), (top, left)


# Config fields that enter the compiled program as traced scalars: changing them does not recompile.
WEIGHT_FIELDS = ("lambda_grad", "lambda_intensity", "lambda_decay", "lambda_min", "splitting_rate", "kernel_reg",
                 "kernel_threshold", "component_mass", "edge_decay")


class Plan(NamedTuple):
    """The static part of a run (shapes and loop counts): one compilation per distinct plan."""

    scales: tuple[Scale, ...]
    iterations: int
    splitting_steps: int
    cg_iterations: int
    edge_selection: bool
    edge_count: int
    intensity_prior: bool
    relative_kernel_reg: bool


def make_plan(image_shape: tuple[int, int], kernel_shape: tuple[int, int], config: MapConfig) -> Plan:
    scales = pyramid(image_shape, kernel_shape, config)
    return Plan(scales=scales, iterations=config.iterations, splitting_steps=config.splitting_steps,
                cg_iterations=config.kernel_cg_iterations, edge_selection=config.edge_selection,
                edge_count=max(config.edge_pixels * max(scales[0].kernel_shape), 10),
                intensity_prior=config.lambda_intensity > 0, relative_kernel_reg=config.kernel_reg_relative)


def _run_scale(y: jnp.ndarray, k: jnp.ndarray, lambdas: tuple, threshold, reg, weights: dict, plan: Plan):
    """`plan.iterations` alternations at one scale, kernel Tikhonov weight `reg` (absolute).

    Returns (kernel, lambdas, latent, history)."""
    h, w = y.shape
    kernel_shape = k.shape
    padded, (top, left) = _periodic_padding(y, kernel_shape)
    padded_spectrum = jnp.fft.rfft2(padded)
    fit_shape = spectrum_shape((h - 1, w - 1), kernel_shape)
    blurred_spectra = gradient_spectra(*_valid_differences(y), fit_shape)
    pixels = padded.size

    def alternate(carry, _):
        k, lambda_grad, lambda_intensity, threshold, _ = carry
        restored = l0_restore(padded, k, lambda_grad, lambda_intensity, steps=plan.splitting_steps,
                              rate=weights["splitting_rate"])
        latent = restored["x"][top : top + h, left : left + w]
        lx, ly = _valid_differences(latent)
        if plan.edge_selection:
            lx, ly, threshold = select_edges(lx, ly, threshold)
        r_lags, b = normal_equations(gradient_spectra(lx, ly, fit_shape), blurred_spectra, fit_shape, kernel_shape)
        k = solve_kernel(r_lags, b, reg=reg, iterations=plan.cg_iterations)
        k = clean_kernel(k, threshold=weights["kernel_threshold"], min_mass=weights["component_mass"])

        residual = jnp.fft.irfft2(kernel_to_otf(k, padded.shape) * restored["x_spectrum"] - padded_spectrum,
                                  s=padded.shape)
        data = jnp.sum(residual**2) / pixels
        prior = (lambda_intensity * restored["nonzero_intensity"] + lambda_grad * restored["nonzero_gradient"]) / pixels
        record = {"objective": data + prior + reg * jnp.sum(k**2) / pixels, "data": data,
                  "prior": prior, "lambda_grad": lambda_grad, "edge_threshold": threshold}

        lambda_grad = jnp.maximum(lambda_grad / weights["lambda_decay"], weights["lambda_min"])
        if plan.intensity_prior:
            lambda_intensity = jnp.maximum(lambda_intensity / weights["lambda_decay"], weights["lambda_min"])
        return (k, lambda_grad, lambda_intensity, threshold / weights["edge_decay"], latent), record

    initial = (k, *lambdas, threshold, jnp.zeros_like(y))
    (k, lambda_grad, lambda_intensity, _, latent), history = lax.scan(alternate, initial, None, length=plan.iterations)
    return center(k), (lambda_grad, lambda_intensity), latent, history


def _resize_image(y: jnp.ndarray, shape: tuple[int, int]) -> jnp.ndarray:
    if shape == y.shape:
        return y
    return jax.image.resize(y, shape, method="linear", antialias=True)


def _estimate_one(y: jnp.ndarray, weights: dict, plan: Plan):
    """The whole pyramid for one (H, W) image: (kernel, latent, history)."""
    scales = plan.scales
    coarsest = scales[0]
    kh, kw = coarsest.kernel_shape
    k = jnp.zeros(coarsest.kernel_shape, jnp.float32).at[kh // 2, kw // 2].set(1.0)
    threshold = jnp.float32(0.0)
    if plan.edge_selection:
        threshold = initial_edge_threshold(*_valid_differences(_resize_image(y, coarsest.image_shape)),
                                           plan.edge_count)
    lambdas = (weights["lambda_grad"], weights["lambda_intensity"])
    reg = weights["kernel_reg"]
    if plan.relative_kernel_reg:  # relative to the blurred image's gradient energy at full resolution
        reg = reg * sum(jnp.sum(g**2) for g in _valid_differences(y))
    histories = []
    for i, scale in enumerate(scales):
        if i > 0:
            k = _resample_kernel(k, scale.kernel_shape, scale.factor / scales[i - 1].factor)
        k, lambdas, latent, history = _run_scale(_resize_image(y, scale.image_shape), k, lambdas, threshold, reg,
                                                 weights, plan)
        histories.append(history)
    k = normalize(jnp.where(k >= weights["kernel_threshold"] * jnp.max(k), k, 0.0))
    history = {key: jnp.concatenate([h[key] for h in histories]) for key in HISTORY_KEYS}
    return k, latent, history


@functools.partial(jax.jit, static_argnames=("plan",))
def _estimate_batch(ys: jnp.ndarray, weights: dict, plan: Plan):
    return jax.vmap(lambda y: _estimate_one(y, weights, plan))(ys)


def as_kernel_shape(kernel_size) -> tuple[int, int]:
    """int or (kh, kw) -> (kh, kw) of positive Python ints; ValueError otherwise."""
    pair = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else tuple(kernel_size)
    if len(pair) != 2 or any(isinstance(n, bool) or int(n) != n or n < 1 for n in pair):
        raise ValueError(f"kernel_size must be a positive int or a pair (kh, kw) of them, got {kernel_size!r}")
    return int(pair[0]), int(pair[1])


def edge_contrast(ys) -> np.ndarray:
    """Largest absolute difference between neighbouring pixels of each image: (N,) or a scalar for (H, W)."""
    ys = np.asarray(ys, np.float32)
    dx = np.abs(np.diff(ys, axis=-1)).max(axis=(-2, -1), initial=0.0)
    dy = np.abs(np.diff(ys, axis=-2)).max(axis=(-2, -1), initial=0.0)
    return np.maximum(dx, dy)


def check_inputs(blurred, kernel_size) -> tuple[np.ndarray, tuple[int, int]]:
    """Host-side checks of `estimate_kernels`' arguments; returns ((N, H, W) float32, (kh, kw))."""
    ys = np.asarray(blurred)
    if not np.issubdtype(ys.dtype, np.floating):
        raise TypeError(f"blurred must be floating point in [0, 1], got dtype {ys.dtype}; divide 8-bit data by 255")
    if ys.ndim not in (2, 3):
        raise ValueError(f"blurred must be one gray image (H, W) or a batch (N, H, W), got shape {ys.shape}; "
                         "colour images: use map_deblur, or convert with jaxdeblur.color.rgb_to_gray")
    ys = ys.reshape((-1,) + ys.shape[-2:]).astype(np.float32)
    if ys.shape[0] == 0 or min(ys.shape[1:]) < 2:
        raise ValueError(f"blurred must hold at least one image of at least 2 x 2 pixels, got shape {ys.shape}")
    if not np.isfinite(ys).all():
        raise ValueError("blurred contains NaN or infinite values")
    kh, kw = as_kernel_shape(kernel_size)
    h, w = ys.shape[1:]
    if kh > h or kw > w:
        raise ValueError(f"kernel_size ({kh}, {kw}) is larger than the image / window ({h}, {w})")
    flat = np.flatnonzero(edge_contrast(ys) < MIN_EDGE_CONTRAST)
    if flat.size:
        which = "the image" if np.ndim(blurred) == 2 else f"image(s) {flat[:8].tolist()}" + (
            f" and {flat.size - 8} more" if flat.size > 8 else "")
        raise ValueError(f"blurred: {which} is flat (no neighbouring pixels differ by more than 1/255): there are "
                         "no edges to estimate a kernel from; filter such windows out first (see edge_contrast)")
    return ys, (kh, kw)


def estimate_kernels(blurred, kernel_size, *, config: MapConfig | dict | None = None,
                     preset: str = "default") -> KernelEstimate:
    """Blind kernel estimation for one gray image or a batch of same-size images, in one compiled call.

    Args:
      blurred: (H, W) or (N, H, W) float in [0, 1] (gray; colour: see `map_deblur`).
      kernel_size: int or (kh, kw), the support to estimate (at least the true blur's), <= (H, W).
      config: a MapConfig, or a dict of field overrides of the preset.
      preset: "default" | "paper" | "fast" | "tiny" (`jaxdeblur.estimate.config.PRESETS`).

    Returns:
      KernelEstimate (batch axis dropped for a single (H, W) image). Result i
      of a batch equals the estimate of image i alone.

    Raises:
      TypeError: non-floating input. ValueError: wrong shape, NaN/Inf, a
      kernel larger than the image, a flat image (no edges), a bad config.
    """
    cfg = resolve_config(preset, config)
    ys, kernel_shape = check_inputs(blurred, kernel_size)
    plan = make_plan(ys.shape[1:], kernel_shape, cfg)
    weights = {name: jnp.float32(getattr(cfg, name)) for name in WEIGHT_FIELDS}
    kernels, latents, history = jax.device_get(_estimate_batch(jnp.asarray(ys), weights, plan))
    history = {key: np.asarray(v) for key, v in history.items()}
    history["scale"] = np.repeat(np.arange(len(plan.scales)), cfg.iterations)
    if np.ndim(blurred) == 2:
        kernels, latents = kernels[0], latents[0]
        history = {key: v[0] if key != "scale" else v for key, v in history.items()}
    return KernelEstimate(kernel=np.asarray(kernels), latent=np.asarray(latents), history=history, scales=plan.scales,
                          config=cfg)


__all__ = ["MapConfig", "KernelEstimate", "Scale", "estimate_kernels", "pyramid", "check_inputs", "edge_contrast",
           "MIN_EDGE_CONTRAST"]
