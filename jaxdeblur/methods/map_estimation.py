"""The classical MAP estimator as a method of `jaxdeblur.deblur` (method="map").

Not a DIP method (`MapMethod` subclasses `jaxdeblur.engine.method.BlindMethod`,
the declarations the API reads of every method, not `DIPMethod`): there is no
generator and no engine run. The estimator is
`jaxdeblur.estimate` (Pan et al.'s L0 prior, coarse to fine, vmapped over
images); this module only tells the API how to call it:

- its presets are `jaxdeblur.estimate.PRESETS`; preset="auto" picks
  ``auto_preset`` ("default": the settings tuned on Levin's images) on any
  platform, since the method is cheap everywhere;
- ``iterations`` sets `MapConfig.iterations` (alternations per scale;
  `config.compress_schedule` does exactly that for a MapConfig);
- `run_images` hands the images of one group to
  `jaxdeblur.estimate.map_deblur_batch`, which estimates the kernels of all of
  them in one batched call (from the luma of colour input) and deconvolves
  every channel with the config's non-blind step: by default the learned one
  (plug-and-play HQS with the shipped denoiser named by `MapConfig.denoiser`,
  loaded here once per process), or the hyper-Laplacian step;
- the method is deterministic (seeds are kept in the results, not used) and
  has no checkpoints (``checkpoints = False``: a run takes seconds);
- it accepts kernel_size="auto" (``auto_kernel_size = True``): the support
  is chosen per image (`jaxdeblur.estimate.support`), and every result's
  extras say the size chosen and how ("kernel_size") and how far to trust the
  estimate ("confidence", `jaxdeblur.estimate.confidence`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxdeblur.engine.method import BlindMethod
from jaxdeblur.estimate import PRESETS, MapConfig, MapResult, deconvolve, map_deblur_batch
from jaxdeblur.models.weights import load_weights


def denoiser_for(config: MapConfig):
    """The pure denoiser apply of `config.denoiser` when `config.nonblind` is "learned", else None."""
    if config.nonblind != "learned":
        return None
    return load_weights(config.denoiser, model="denoiser").fn.apply


class MapMethod(BlindMethod):
    """method="map": blind MAP kernel estimation + the non-blind step (learned plug-and-play by default).

    A `BlindMethod` (what the API reads of every method), not a `DIPMethod`: no networks, no engine run;
    the API hands it whole groups of images (`run_images`) instead.
    """

    name = "map"
    presets: dict[str, MapConfig] = PRESETS
    auto_preset = "default"
    auto_reason = "the MAP estimator's tuned defaults, on every platform"
    checkpoints = False
    color_modes = ("y",)
    auto_kernel_size = True

    def run_images(self, config: MapConfig, images: Sequence[np.ndarray], kernel_size: tuple[int, int] | str,
                   seeds: Sequence[int], preset: str) -> list[MapResult]:
        """`map_deblur_batch` of `images` ((H, W) or (H, W, C), one shape) with one kernel size (kh, kw) or
        "auto" (chosen per image)."""
        size = kernel_size if isinstance(kernel_size, str) else tuple(kernel_size)
        return map_deblur_batch(list(images), [size] * len(images), preset=preset, config=config,
                                seeds=list(seeds), denoiser=denoiser_for(config))

    def deconvolve(self, config: MapConfig, image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """The config's non-blind step of `image` ((H, W) or (H, W, C)) with `kernel` (every channel)."""
        return deconvolve(image, kernel, config, denoiser=denoiser_for(config))


__all__ = ["MapMethod", "denoiser_for"]
