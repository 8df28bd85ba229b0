"""Blur transfer: the blur of one pair (sharp_a, blurred_a) applied to other sharp images, and its baseline.

    blurred_b = transfer_blur(sharp_a, blurred_a, sharp_b)         # F(sharp_b, G(sharp_a, blurred_a))
    naive_b   = naive_transfer(sharp_a, blurred_a, sharp_b, kernel_size=19)

`transfer_blur` uses a trained kernel-space model (default: the shipped
``kernel_space-cpu`` weights); it keeps what a code holds: spatially varying
blur, and whatever of the blur the operator learned. The baseline
(`naive_transfer`) fits ONE uniform kernel to pair a by least squares
(`fit_uniform_kernel`) and convolves sharp_b with it.

Evaluation (`same_blur_pairs`): pair a is made by the shared degradation
pipeline, and sharp_b is blurred with the SAME true kernel(s) (the same
kernel field) to give the true blurred_b; a transfer is scored by its PSNR
against that image (`jaxdeblur.metrics.psnr_per_image`).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxdeblur.data.degrade import DegradeConfig, blur_kernel_grid, degrade
from jaxdeblur.estimate.kernel_fit import gradient_spectra, normal_equations, solve_kernel, spectrum_shape
from jaxdeblur.forward import blur
from jaxdeblur.models.kernel_space.inference import KernelSpaceModel, as_batch
from jaxdeblur.noise import add_gaussian_noise

DEFAULT_WEIGHTS = "kernel_space-cpu"


def _fit_one(sharp: jax.Array, blurred: jax.Array, kernel_shape: tuple[int, int], reg: float,
             iterations: int) -> jax.Array:
    """The least-squares uniform kernel of one pair (H, W, C) -> (kh, kw) (see `fit_uniform_kernel`)."""
    kh, kw = kernel_shape

    def gradients(x):  # forward differences inside the image, (H - 1, W - 1) per channel
        return x[:-1, 1:] - x[:-1, :-1], x[1:, :-1] - x[:-1, :-1]

    shape = spectrum_shape((sharp.shape[0] - 1, sharp.shape[1] - 1), kernel_shape)

    def channel(s, b):
        return normal_equations(gradient_spectra(*gradients(s), shape), gradient_spectra(*gradients(b), shape),
                                shape, kernel_shape)

    r_lags, rhs = jax.vmap(channel, in_axes=(2, 2))(sharp, blurred)
    r_lags, rhs = r_lags.sum(0), rhs.sum(0)
    k = solve_kernel(r_lags, rhs, reg=reg * r_lags[kh - 1, kw - 1], iterations=iterations)
    k = jnp.maximum(k, 0.0)
    total = jnp.sum(k)
    delta = jnp.zeros(kernel_shape, k.dtype).at[kh // 2, kw // 2].set(1.0)
    return jnp.where(total > 0, k / jnp.maximum(total, 1e-12), delta)


@functools.partial(jax.jit, static_argnames=("kernel_size", "iterations"))
def fit_uniform_kernel(sharp, blurred, *, kernel_size: int, reg: float = 1e-3, iterations: int = 100) -> jax.Array:
    """The one uniform kernel that best maps sharp onto blurred: least squares on image gradients.

    Minimises sum over channels and both gradient directions of
    ||k * grad(sharp) - grad(blurred)||^2 + reg * E ||k||^2 (E: the sharp
    gradients' energy, so `reg` is scale-free) over a kernel_size^2 support
    (the blur convention, centre tap in the middle), by conjugate gradients
    on its normal equations in the Fourier domain
    (`jaxdeblur.estimate.kernel_fit`); negative taps are then zeroed and the
    kernel renormalised to sum 1 (a delta if nothing is left). Linear
    correlations (zero-padded FFTs): no wrap-around across the border.

    Args:
      sharp, blurred: pairs (H, W, C) or batches (N, H, W, C) of equal shapes, float in [0, 1].
      kernel_size: odd side of the support (static).
      reg: relative Tikhonov weight.
      iterations: conjugate-gradient iterations (static).

    Returns:
      (kernel_size, kernel_size) or (N, kernel_size, kernel_size) float32, non-negative, sum 1.
    """
    sharp, blurred = jnp.asarray(sharp, jnp.float32), jnp.asarray(blurred, jnp.float32)
    if sharp.shape != blurred.shape or sharp.ndim not in (3, 4):
        raise ValueError(f"sharp {sharp.shape} and blurred {blurred.shape} must be equal (H, W, C) or (N, H, W, C)")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
    if min(sharp.shape[-3:-1]) < 2:
        raise ValueError(f"images must be at least 2 x 2 pixels, got {sharp.shape}")
    fit = functools.partial(_fit_one, kernel_shape=(kernel_size, kernel_size), reg=reg, iterations=iterations)
    return jax.vmap(fit)(sharp, blurred) if sharp.ndim == 4 else fit(sharp, blurred)


def naive_transfer(sharp_a, blurred_a, sharp_b, *, kernel_size: int) -> np.ndarray:
    """The baseline: sharp_b convolved ('replicate' borders) with the uniform kernel fitted to pair a.

    Batched like `transfer_blur` (pair i -> image i of sharp_b, or one pair
    for all); a and b must have the same channels. Returns sharp_b's shape.
    """
    a4, _ = as_batch(sharp_a, "sharp_a")
    y4, _ = as_batch(blurred_a, "blurred_a")
    b4, shape = as_batch(sharp_b, "sharp_b")
    if a4.shape != y4.shape:
        raise ValueError(f"sharp_a {np.shape(sharp_a)} and blurred_a {np.shape(blurred_a)} must have the same shape")
    if a4.shape[0] not in (1, b4.shape[0]) or a4.shape[-1] != b4.shape[-1]:
        raise ValueError(f"sharp_a {np.shape(sharp_a)} must hold one pair or as many as sharp_b {np.shape(sharp_b)}, "
                         "with the same channels")
    kernels = fit_uniform_kernel(a4, y4, kernel_size=kernel_size)
    kernels = jnp.broadcast_to(kernels, (b4.shape[0], *kernels.shape[1:]))
    return np.asarray(blur(jnp.asarray(b4), kernels, "replicate")).reshape(shape)


def load_weights(weights: str | Path = DEFAULT_WEIGHTS):
    """The kernel-space `Pretrained` named by `weights`: a shipped name ("kernel_space-cpu") or a weights
    folder (<root>/kernel_space/<preset>, as `jaxdeblur train --export` writes it); loaded once and kept.

    Raises ValueError (unknown name, another model's weights) or FileNotFoundError (no such weights).
    """
    from jaxdeblur.models.weights import load_weights as load_model_weights  # noqa: PLC0415 - weights import the registry, which imports us lazily

    return load_model_weights(weights, model="kernel_space")


def _check_unit_range(images, name: str) -> None:
    """`as_batch`'s checks (rank, channels, finite), and values in [0, 1]: one-line ValueErrors naming `name`."""
    x4, _ = as_batch(images, name)
    low, high = float(x4.min()), float(x4.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{name} must hold values in [0, 1] (float images), got values in [{low:.4g}, {high:.4g}]")


def transfer_blur(sharp_a, blurred_a, sharp_b, *, weights=DEFAULT_WEIGHTS) -> np.ndarray:
    """sharp_b blurred with the blur of the pair(s) (sharp_a, blurred_a), through the learned blur kernel space.

    F(sharp_b, G(sharp_a, blurred_a)), clamped to [0, 1]: uniform or
    spatially varying blur carries over (for data augmentation: one real
    pair's blur on many sharp images).

    Args:
      sharp_a, blurred_a: the source pair(s), (H, W), (H, W, C) or (N, H, W, C) with C in (1, 3), equal
        shapes, float in [0, 1].
      sharp_b: the image(s) to blur, (H', W'), (H', W', C') or (N', H', W', C'): as many images as pairs
        (pair i -> image i), or any number for one pair. Its size may differ from a's (the code map is
        resized to b's grid); its channels too (a colour pair is taken as its luma for gray images, a gray
        pair as three equal channels for colour ones).
      weights: a shipped weights name ("kernel_space-cpu", the default: gray, colour images channel by
        channel), a weights folder, or a loaded model (`jaxdeblur.models.load(...)` or its `.fn`).

    Returns:
      blurred_b, float32 of sharp_b's shape.

    Raises:
      ValueError: a bad shape (rank, channels, a pair of unequal shapes, pairs not matching sharp_b's
        batch), a non-finite value or a value outside [0, 1] (one line naming the argument).
    """
    if isinstance(weights, (str, Path)):
        weights = load_weights(weights)
    model = getattr(weights, "fn", weights)  # a Pretrained wraps the KernelSpaceModel
    if not isinstance(model, KernelSpaceModel):
        raise TypeError(f"weights must be a weights name or folder, a KernelSpaceModel or a loaded kernel_space "
                        f"Pretrained, got {type(model).__name__}")
    for name, images in (("sharp_a", sharp_a), ("blurred_a", blurred_a), ("sharp_b", sharp_b)):
        _check_unit_range(images, name)
    return model.transfer(sharp_a, blurred_a, sharp_b)


@functools.partial(jax.jit, static_argnames=("cfg",))
def same_blur_pairs(key, tiles_a, tiles_b, cfg: DegradeConfig) -> dict:
    """Evaluation pairs for blur transfer: pair a by `degrade`, and sharp_b blurred by the SAME kernel field.

    Args:
      key: a JAX PRNG key.
      tiles_a, tiles_b: (N, T, T, C) sharp tiles, T = `jaxdeblur.data.degrade.tile_size(cfg)`.
      cfg: the degradation (augmentation is turned off, so both tiles stay upright).

    Returns:
      {"sharp_a", "blurred_a", "sharp_b", "blurred_b": (N, crop, crop, C) float32, "kernel_grid":
       (N, gh, gw, k, k) the true kernels (the nodes of each field; uniform blur repeats one kernel)}.
      blurred_b gets the same noise level as blurred_a (fresh noise) and the same quantisation.
    """
    cfg = dataclasses.replace(cfg, augment=False)
    key_a, key_noise = jax.random.split(key)
    pair = degrade(key_a, tiles_a, cfg)
    offset = (cfg.kernel_size - 1) // 2
    sharp_b = jnp.asarray(tiles_b, jnp.float32)[:, offset:offset + cfg.crop, offset:offset + cfg.crop]
    blurred_b = blur_kernel_grid(tiles_b, pair["kernel_grid"])
    q = cfg.quantize
    blurred_b = add_gaussian_noise(key_noise, blurred_b, pair["noise_sigma"][:, None, None, None], quantize=q, clip=q)
    return {"sharp_a": pair["sharp"], "blurred_a": pair["blurred"], "sharp_b": sharp_b, "blurred_b": blurred_b,
            "kernel_grid": pair["kernel_grid"]}


__all__ = ["DEFAULT_WEIGHTS", "fit_uniform_kernel", "load_weights", "naive_transfer", "same_blur_pairs",
           "transfer_blur"]
