"""MAP-initialised DIP: start a DIP method from the classical MAP estimator (`init="map"` of `jaxdeblur.deblur`).

Kotera et al.'s point is that a DIP's initialisation decides where it ends.
With init="map" a DIP method (selfdeblur, kotera, uncertainty: the methods
with ``inits`` containing "map") first runs the MAP estimator (method "map",
`jaxdeblur.estimate.map_deblur_batch`, batched over the group's images) on
the channels the generator fits (the luma, or RGB with color="rgb"; the
kernel is estimated from their luma), giving per run a kernel (kh, kw) and
a non-blind deconvolution (H, W, C) with it. The deconvolution, extended by
its edge values to the generator's latent (H+kh-1, W+kw-1, C) with the image
at the method's `image_offset`, is the image generator's target and MAP's
kernel the kernel generator's; the engine fits both generators
(`jaxdeblur.engine.multiscale.run_scales` with a `WarmStart`, i.e.
`jaxdeblur.engine.fitting.fit_generators`: Adam per network, batched) and the
method's schedule runs from there (Kotera's coarse-to-fine pipeline: the
estimates resampled to the coarsest scale, replacing its Gaussian kernel).

`MapInitConfig` holds every number of this: the MAP config and the fit's
tolerances, cap and learning rates. A fit stops per network at image RMSE
`fit_image_rmse` ([0, 1] units) and kernel RMSE `fit_kernel_rmse` x the
peak of MAP's kernel, or after `fit_max_iterations` Adam updates. The
defaults fit tighter than Kotera's Gaussian start (10/255 both): the point
is to start AT MAP's estimate.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Mapping

import numpy as np

from jaxdeblur.config import override
from jaxdeblur.engine.fitting import FitSettings
from jaxdeblur.engine.multiscale import Tolerances, WarmStart
from jaxdeblur.engine.runner import image_offset, method_latent_shape
from jaxdeblur.estimate import PRESETS, MapConfig
from jaxdeblur.methods.map_estimation import MapMethod

INITS = ("map",)
MAP_PRESET = "default"  # MapInitConfig.map's default: the estimator's tuned preset (as method "map")


@dataclasses.dataclass(frozen=True)
class MapInitConfig:
    """Every number of a MAP initialisation.

    map: the MAP estimator's config (default: its tuned "default" preset,
      whose non-blind step is the learned one; nonblind="hyper_laplacian"
      needs no weights).
    fit_image_rmse: the image generator's fit stops at this RMSE to the
      target latent ([0, 1] intensity units), >= 0.
    fit_kernel_rmse: the kernel generator's fit stops at this RMSE relative to
      the peak of MAP's kernel, >= 0.
    fit_max_iterations: at most this many Adam updates per network, >= 0.
    fit_lr_image, fit_lr_kernel: the fit's Adam learning rates, > 0.
    """

    map: MapConfig = PRESETS[MAP_PRESET]
    fit_image_rmse: float = 5 / 255
    fit_kernel_rmse: float = 0.02
    fit_max_iterations: int = 1000
    fit_lr_image: float = 1e-2
    fit_lr_kernel: float = 1e-3

    def __post_init__(self):
        if not isinstance(self.map, MapConfig):
            raise TypeError(f"MapInitConfig.map must be a MapConfig, got {type(self.map).__name__}")
        if not (self.fit_image_rmse >= 0 and self.fit_kernel_rmse >= 0):
            raise ValueError(f"fit tolerances must be >= 0, got fit_image_rmse={self.fit_image_rmse!r}, "
                             f"fit_kernel_rmse={self.fit_kernel_rmse!r}")
        if int(self.fit_max_iterations) != self.fit_max_iterations or self.fit_max_iterations < 0:
            raise ValueError(f"fit_max_iterations must be an int >= 0, got {self.fit_max_iterations!r}")
        if not (self.fit_lr_image > 0 and self.fit_lr_kernel > 0):
            raise ValueError(f"fit learning rates must be > 0, got fit_lr_image={self.fit_lr_image!r}, "
                             f"fit_lr_kernel={self.fit_lr_kernel!r}")

    def fit(self) -> tuple[FitSettings, Tolerances]:
        """The engine's fit settings (rates keyed by role) and tolerances."""
        return (FitSettings(self.fit_max_iterations, (("image", self.fit_lr_image), ("kernel", self.fit_lr_kernel))),
                Tolerances(self.fit_image_rmse, self.fit_kernel_rmse))


def init_config(config: MapInitConfig | Mapping[str, Any] | None) -> MapInitConfig:
    """A MapInitConfig from None (the defaults), a MapInitConfig, or a dict of overrides.

    Overrides name MapInitConfig fields, or MAP config fields as "map.<field>"
    (e.g. {"map.nonblind": "hyper_laplacian", "fit_max_iterations": 500});
    values are coerced as by `jaxdeblur.config.override` (CLI strings work).
    """
    if config is None or isinstance(config, MapInitConfig):
        return config or MapInitConfig()
    if not isinstance(config, Mapping):
        raise TypeError(f"init_config must be a MapInitConfig or a dict of overrides, got {type(config).__name__}")
    base = MapInitConfig()
    nested = {k[len("map."):]: v for k, v in config.items() if k.startswith("map.")}
    flat = {k: v for k, v in config.items() if not k.startswith("map.")}
    if nested:
        if "map" in flat:
            raise ValueError("give init_config 'map' (a MapConfig) or 'map.<field>' overrides, not both")
        base = dataclasses.replace(base, map=override(base.map, nested))
    return override(base, flat)


def check_init(init, config, method) -> MapInitConfig | None:
    """The checked init config of `deblur(init=..., init_config=...)` for `method` (a method object), or None.

    Raises ValueError (one line) for an unknown init, an init the method cannot
    start from, or init_config without init; TypeError for an init_config of the
    wrong type.
    """
    if init is None:
        if config is not None:
            raise ValueError("init_config is only used with init='map'")
        return None
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"init must be None (the method's own start) or one of {list(INITS)}, got {init!r}")
    if init not in method.inits:
        raise ValueError(f"init={init!r} starts a DIP method's generators (selfdeblur, kotera, uncertainty); "
                         f"method {method.name!r} cannot start from it")
    return init_config(config)


def latent_target(image: np.ndarray, latent_shape: tuple[int, int, int], offset: tuple[int, int]) -> np.ndarray:
    """`image` (H, W, C) placed at `offset` (oy, ox) in a (Hl, Wl, C) latent, the margins its edge values."""
    h, w = image.shape[:2]
    oy, ox = offset
    pad = ((oy, latent_shape[0] - h - oy), (ox, latent_shape[1] - w - ox), (0, 0))
    if min(min(p) for p in pad[:2]) < 0:
        raise ValueError(f"an image {image.shape} at {offset} does not fit in the latent {latent_shape}")
    return np.pad(np.asarray(image, np.float32), pad, mode="edge")


def map_warm_start(config: MapInitConfig, method, cfg, ys, kernel_size) -> tuple[WarmStart, dict, dict]:
    """Runs MAP on a group's fitted channels ys (R, H, W, C) and returns (WarmStart, extras, timings).

    extras: "init_kernel" (R, kh, kw) MAP's kernels and "init_image" (R, H, W, C)
    its non-blind results (the fit's targets, before the latent extension).
    timings: {"init_s": wall seconds of MAP (estimation + non-blind step)}.
    """
    ys = np.asarray(ys, np.float32)
    kernel_size = tuple(kernel_size)
    t0 = time.perf_counter()
    outs = MapMethod().run_images(config.map, list(ys), kernel_size, [0] * len(ys), MAP_PRESET)
    init_s = time.perf_counter() - t0
    images = np.stack([np.asarray(o.image, np.float32).reshape(y.shape) for o, y in zip(outs, ys)])
    kernels = np.stack([np.asarray(o.kernel, np.float32) for o in outs])
    shape = method_latent_shape(method, cfg, ys.shape[1:], kernel_size)
    offset = image_offset(method, cfg, kernel_size)
    latents = np.stack([latent_target(np.clip(x, 0.0, 1.0), shape, offset) for x in images])
    fit, tolerances = config.fit()
    return (WarmStart(latents, kernels, fit, tolerances), {"init_kernel": kernels, "init_image": images},
            {"init_s": init_s})


__all__ = ["INITS", "MapInitConfig", "init_config", "check_init", "latent_target", "map_warm_start"]
