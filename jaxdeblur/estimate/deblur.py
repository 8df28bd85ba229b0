"""The blind method for users: MAP kernel estimation, then a non-blind step (learned PnP or hyper-Laplacian).

Colour input: the kernel is estimated on the luma (`jaxdeblur.color.rgb_to_gray`,
full-range BT.601) and every channel is deconvolved with it. The method is
deterministic (no random draws): `seed` is accepted for symmetry with the DIP
methods and ignored. A kernel size "auto" is chosen per image by
`jaxdeblur.estimate.support` (two estimations); every estimate gets a
confidence (`jaxdeblur.estimate.confidence`), in `extras`.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from typing import Sequence

import jax
import numpy as np

from jaxdeblur.color import rgb_to_gray
from jaxdeblur.deconv import hyper_laplacian, pnp_hqs
from jaxdeblur.estimate.confidence import kernel_confidence
from jaxdeblur.estimate.config import MapConfig, resolve_config
from jaxdeblur.estimate.map_estimator import as_kernel_shape, estimate_kernels
from jaxdeblur.estimate.support import is_auto, resolve_kernel_sizes
from jaxdeblur.noise import estimate_sigma


@dataclasses.dataclass
class MapResult:
    """One image deblurred by the MAP method (field names as `jaxdeblur.api.DeblurResult`).

    image: (H, W) or (H, W, C) float32 in [0, 1], the input's shape: the
      input deconvolved with `kernel` by the config's non-blind step (`deconvolve`).
    kernel: (kh, kw) float32, non-negative, sum 1, blur (true convolution) convention, centred.
    history: {"objective", "data", "prior", "lambda_grad", "edge_threshold", "scale": (T,)}
      per alternation, coarse to fine (see `KernelEstimate`).
    latent: (H, W) the estimator's last intermediate L0 latent (of the luma for colour input).
    extras: {"scales": the pyramid's (image shape, kernel shape) pairs, coarse to fine;
      "kernel_size": how the support was chosen: {"requested": "auto" or [kh, kw], "chosen": [kh, kw],
      "how": "given" or "auto"} and for "auto" the `support.AutoSize` record ("initial": the first pass's
      support, "extent": the extent measured on its kernel, "saturated"), all in pixels;
      "confidence": `confidence.Confidence.record()` of the kernel on the (luma of the) input:
      "confident", "reasons", "noise_sigma", "residual_ratio", "border_mass", "spread"}.
    timings: {"estimate_s": kernel estimation of the image's group, compile included on a
      first call ("auto": + "auto_size_s", the first passes of every "auto" image of the call); "deconv_s": the
      non-blind step of this image; "confidence_s"}.
    """

    image: np.ndarray
    kernel: np.ndarray
    history: dict
    latent: np.ndarray
    extras: dict
    method: str
    preset: str
    config: MapConfig
    seed: int
    timings: dict
    device: str


def _as_image(x, index: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] not in (1, 3)):
        raise ValueError(f"blurred image {index}: expected (H, W), (H, W, 1) or (H, W, 3), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"blurred image {index}: expected float values in [0, 1], got dtype {x.dtype}")
    return x.astype(np.float32)


def _gray(x: np.ndarray) -> np.ndarray:
    if x.ndim == 2:
        return x
    return x[..., 0] if x.shape[2] == 1 else np.asarray(rgb_to_gray(x))


def deconvolve(image, kernel, config: MapConfig, *, denoiser=None) -> np.ndarray:
    """The non-blind step of `config` (`config.nonblind`): `image` (H, W) or (H, W, C) in [0, 1] deconvolved by
    `kernel` (kh, kw) (blur convention), every channel; float32 of the image's shape, in [0, 1].

    "learned": `jaxdeblur.deconv.pnp_hqs` with `denoiser`, a pure function (x (N, H, W, 1), sigma) -> same
    (e.g. ``jaxdeblur.models.load("denoiser-cpu").fn.apply``; `jaxdeblur.deblur(method="map")` passes the
    weights named by `config.denoiser`); "hyper_laplacian": `jaxdeblur.deconv.hyper_laplacian`.

    Raises:
      ValueError: "learned" without a denoiser.
    """
    if config.nonblind == "hyper_laplacian":
        return np.asarray(hyper_laplacian(image, kernel, lam=config.deconv_lam, alpha=config.deconv_alpha))
    if denoiser is None:
        raise ValueError("config.nonblind='learned' needs denoiser= (a trained denoiser's pure apply, e.g. "
                         "jaxdeblur.models.load('denoiser-cpu').fn.apply; jaxdeblur.deblur(method='map') passes "
                         "it), or config nonblind='hyper_laplacian'")
    return np.asarray(pnp_hqs(image, kernel, denoiser=denoiser, noise_sigma=pnp_noise(image, config),
                              iterations=config.pnp_iterations, sigma_start=config.pnp_sigma_start,
                              lam=config.pnp_lam))


def pnp_noise(image, config: MapConfig) -> float:
    """The noise std ([0, 1] units) the learned step assumes for `image` (H, W) or (H, W, C): the measured one
    (mean over channels), at least config.pnp_noise_sigma, when config.pnp_noise_estimate; else the field."""
    if not config.pnp_noise_estimate:
        return config.pnp_noise_sigma
    image = np.asarray(image, np.float32)
    channels = image.reshape(image.shape[0], image.shape[1], -1)
    measured = np.mean([estimate_sigma(channels[..., c]) for c in range(channels.shape[-1])])
    return float(min(max(measured, config.pnp_noise_sigma), config.pnp_sigma_start))


def map_deblur_batch(blurred_list: Sequence, kernel_sizes, *, preset: str = "default",
                     config: MapConfig | dict | None = None, iterations: int | None = None,
                     seeds: Sequence[int] | None = None, denoiser=None) -> list[MapResult]:
    """Blind deblurring of many images; images of one (shape, kernel size) share one batched estimation.

    Args:
      blurred_list: images (H, W), (H, W, 1) or (H, W, 3), float in [0, 1].
      kernel_sizes: one int (or "auto") for all, or one int / (kh, kw) / "auto" per image. "auto": the
        support is chosen by `jaxdeblur.estimate.support` (a first estimation at a generous support, the
        kernel's measured extent + a margin, then the estimation at that size; the config's auto_* fields).
      preset: "default" | "paper" | "fast" | "tiny"; config: a MapConfig or a dict of overrides.
      iterations: overrides the alternations per scale (`MapConfig.iterations`).
      seeds: ignored (the method is deterministic); kept in the results.
      denoiser: the learned non-blind step's denoiser (see `deconvolve`), needed when config.nonblind is
        "learned" (the default presets; "tiny" is weight-free).

    Returns:
      one MapResult per image, in order; result i equals `map_deblur(blurred_list[i], ...)`.
    """
    images = [_as_image(x, i) for i, x in enumerate(blurred_list)]
    if not images:
        raise ValueError("blurred_list is empty: no images to deblur")
    n = len(images)
    def entry(s):
        return "auto" if is_auto(s) else as_kernel_shape(s)

    sizes = [entry(kernel_sizes)] * n if np.isscalar(kernel_sizes) else [entry(s) for s in kernel_sizes]
    seeds = [0] * n if seeds is None else [int(s) for s in seeds]
    if len(sizes) != n or len(seeds) != n:
        raise ValueError(f"got {n} images, {len(sizes)} kernel sizes and {len(seeds)} seeds; they must match")
    cfg = resolve_config(preset, config)
    if iterations is not None:
        cfg = dataclasses.replace(cfg, iterations=int(iterations))

    grays = [_gray(x) for x in images]
    for i, gray in enumerate(grays):  # the first pass of "auto" checks what estimate_kernels would
        if not np.isfinite(gray).all():
            raise ValueError(f"blurred image {i} contains NaN or infinite values")
    t0 = time.perf_counter()
    requested = sizes
    sizes, autos = resolve_kernel_sizes(grays, sizes, cfg)
    auto_s = time.perf_counter() - t0
    groups = defaultdict(list)
    for i, (gray, size) in enumerate(zip(grays, sizes)):
        groups[(gray.shape, size)].append(i)
    device = jax.devices()[0].device_kind
    results: list[MapResult | None] = [None] * n
    for (_, size), members in groups.items():
        t0 = time.perf_counter()
        estimate = estimate_kernels(np.stack([grays[i] for i in members]), size, config=cfg)
        estimate_s = time.perf_counter() - t0
        for j, i in enumerate(members):
            t0 = time.perf_counter()
            kernel = estimate.kernel[j]
            image = deconvolve(images[i], kernel, cfg, denoiser=denoiser)
            timings = {"estimate_s": estimate_s, "deconv_s": time.perf_counter() - t0}
            t0 = time.perf_counter()
            confidence = kernel_confidence(grays[i], kernel, cfg)
            timings["confidence_s"] = time.perf_counter() - t0
            choice = {"requested": "auto" if autos[i] else list(requested[i]), "chosen": list(size),
                      "how": "auto" if autos[i] else "given"}
            if autos[i]:
                choice.update({k: v for k, v in autos[i].record().items() if k != "size"})
                timings["auto_size_s"] = auto_s
            results[i] = MapResult(
                image=image, kernel=kernel,
                history={name: v if name == "scale" else v[j] for name, v in estimate.history.items()},
                latent=estimate.latent[j],
                extras={"scales": [(s.image_shape, s.kernel_shape) for s in estimate.scales],
                        "kernel_size": choice, "confidence": confidence.record()},
                method="map", preset=preset, config=cfg, seed=seeds[i], timings=timings, device=device)
    return results


def map_deblur(blurred, kernel_size, *, preset: str = "default", config: MapConfig | dict | None = None,
               iterations: int | None = None, seed: int = 0, denoiser=None) -> MapResult:
    """Blind deblurring of one image by MAP kernel estimation + the non-blind step (`deconvolve`).

    Args:
      blurred: (H, W), (H, W, 1) or (H, W, 3) float in [0, 1].
      kernel_size: int or (kh, kw), the support to estimate (at least the true blur's), or "auto" (see
        `map_deblur_batch`).
      preset: "default" | "paper" | "fast" | "tiny" (`jaxdeblur.estimate.PRESETS`).
      config: a MapConfig or a dict of field overrides of the preset.
      iterations: overrides the alternations per scale.
      seed: ignored (deterministic method).
      denoiser: see `map_deblur_batch`.

    Raises:
      TypeError / ValueError: see `estimate_kernels` (shape, dtype, NaN, kernel
      larger than the image, a flat image), or a bad config value.
    """
    return map_deblur_batch([blurred], [kernel_size], preset=preset, config=config, iterations=iterations,
                            seeds=[seed], denoiser=denoiser)[0]


__all__ = ["MapResult", "deconvolve", "map_deblur", "map_deblur_batch"]
