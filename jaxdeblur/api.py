"""The public entry points: `deblur` one image, `deblur_batch` many at once."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from jaxdeblur.color import rgb_to_ycbcr, ycbcr_to_rgb
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.methods import get_method, resolve

COLOR_MODES = ("y", "rgb")


@dataclasses.dataclass
class DeblurResult:
    """The outcome of one blind deblurring run.

    image: (H, W) or (H, W, 3) float32 in [0, 1], the input's shape.
    kernel: (kh, kw) float32, non-negative, sum 1, blur (true convolution) convention.
    history: {loss term: (iterations,)} per-iteration values ("loss" is their sum).
    latent: the generator's full output (H+kh-1, W+kw-1, C) (C = 1 in "y" colour mode).
    extras: method-specific outputs (e.g. the kernel variance of the uncertainty method).
    """

    image: np.ndarray
    kernel: np.ndarray
    history: dict
    latent: np.ndarray
    extras: dict
    method: str
    preset: str
    config: Any
    seed: int
    timings: dict
    device: str


def _kernel_size(size) -> tuple[int, int]:
    kh, kw = (size, size) if np.isscalar(size) else tuple(size)
    if int(kh) != kh or int(kw) != kw or kh < 1 or kw < 1:
        raise ValueError(f"kernel size must be a positive int or (kh, kw), got {size!r}")
    return int(kh), int(kw)


def _as_image(x, index: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] not in (1, 3)):
        raise ValueError(f"image {index}: expected (H, W), (H, W, 1) or (H, W, 3), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"image {index}: expected float values in [0, 1], got dtype {x.dtype} "
                        "(use jaxdeblur.io.load_image to read files)")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"image {index} contains NaN or infinite values")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"image {index}: values must lie in [0, 1], got [{x.min():.3g}, {x.max():.3g}]")
    return x.astype(np.float32)


def _split_color(x: np.ndarray, color: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(channels the generator fits (H, W, C), chroma kept aside or None)."""
    if x.ndim == 2:
        return x[..., None], None
    if x.shape[2] == 1 or color == "rgb":
        return x, None
    ycc = np.asarray(rgb_to_ycbcr(x))
    return ycc[..., :1], ycc[..., 1:]


def _merge_color(fitted: np.ndarray, chroma: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    if chroma is not None:
        return np.clip(np.asarray(ycbcr_to_rgb(np.concatenate([fitted, chroma], axis=-1))), 0, 1)
    return fitted[..., 0] if like.ndim == 2 else fitted


def _group_options(options: EngineOptions, shape, size, groups: int) -> EngineOptions:
    """Each group of a batch keeps its checkpoints in a folder of its own (<dir>/<H>x<W>x<C>_k<kh>x<kw>)."""
    if options.checkpoint_dir is None or groups == 1:
        return options
    name = "x".join(map(str, shape)) + "_k" + "x".join(map(str, size))
    return dataclasses.replace(options, checkpoint_dir=str(Path(options.checkpoint_dir) / name))


def deblur(blurred, kernel_size, method: str = "selfdeblur", *, preset: str = "paper", iterations: int | None = None,
           seed: int = 0, config: Any = None, color: str = "y", options: EngineOptions | None = None) -> DeblurResult:
    """Blind deblurring of one image.

    blurred: (H, W) or (H, W, 3) float in [0, 1]. kernel_size: int or (kh, kw),
    the support to estimate (at least the true blur's). method: a name of
    `jaxdeblur.methods.METHODS`; preset "paper" | "fast" | "tiny"; iterations
    overrides the preset's; config: a config object or a dict of overrides.
    color: "y" deblurs the luma and keeps the chroma (SelfDeblur's way), "rgb"
    fits a 3-channel image with one kernel. The same seed gives the same result.
    """
    return deblur_batch([blurred], [kernel_size], method, preset=preset, iterations=iterations, seeds=[seed],
                        config=config, color=color, options=options)[0]


def deblur_batch(blurred_list: Sequence, kernel_sizes, method: str = "selfdeblur", *, preset: str = "paper",
                 iterations: int | None = None, seeds: Sequence[int] | None = None, config: Any = None,
                 color: str = "y", options: EngineOptions | None = None) -> list[DeblurResult]:
    """Blind deblurring of many images in batched, compiled runs.

    Result i equals `deblur(blurred_list[i], kernel_sizes[i], seed=seeds[i], ...)`.
    kernel_sizes: one size for all or one per image. seeds default to 0..N-1.
    Images are grouped by (image shape, kernel size): each group is one batch
    of runs (the generators' shapes depend on both), spread over all devices.
    """
    if color not in COLOR_MODES:
        raise ValueError(f"color must be one of {COLOR_MODES}, got {color!r}")
    images = [_as_image(x, i) for i, x in enumerate(blurred_list)]
    if not images:
        raise ValueError("empty batch: no images to deblur")
    n = len(images)
    sizes = [_kernel_size(kernel_sizes)] * n if np.isscalar(kernel_sizes) else [_kernel_size(s) for s in kernel_sizes]
    seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
    if len(sizes) != n or len(seeds) != n:
        raise ValueError(f"got {n} images, {len(sizes)} kernel sizes and {len(seeds)} seeds; they must match")
    algorithm = get_method(method)
    cfg = resolve(algorithm.presets, preset, config)
    if iterations is not None:
        cfg = dataclasses.replace(cfg, iterations=int(iterations))
    options = options or EngineOptions()

    parts = [_split_color(x, color) for x in images]
    groups: Mapping[tuple, list[int]] = defaultdict(list)
    for i, ((fit, _), size) in enumerate(zip(parts, sizes)):
        if size[0] > fit.shape[0] or size[1] > fit.shape[1]:
            raise ValueError(f"image {i}: kernel size {size} is larger than the image {fit.shape[:2]}")
        groups[(fit.shape, size)].append(i)

    results: list[DeblurResult | None] = [None] * n
    for (shape, size), members in groups.items():
        ys = np.stack([parts[i][0] for i in members])
        keys = jax.numpy.stack([jax.random.key(seeds[i]) for i in members])
        out = algorithm.run(cfg, ys, size, keys, _group_options(options, shape, size, len(groups)))
        oy, ox = (size[0] - 1) // 2, (size[1] - 1) // 2
        for j, i in enumerate(members):
            fitted = out.latents[j][oy:oy + shape[0], ox:ox + shape[1]]
            results[i] = DeblurResult(
                image=_merge_color(fitted, parts[i][1], images[i]), kernel=out.kernels[j],
                history={k: v[j] for k, v in out.history.items()}, latent=out.latents[j],
                extras={k: v[j] for k, v in out.extras.items()}, method=method, preset=preset, config=cfg,
                seed=seeds[i], timings=out.timings, device=out.device)
    return results
