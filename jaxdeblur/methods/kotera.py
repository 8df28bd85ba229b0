"""Kotera et al. 2021, "Improving neural blind deconvolution": SelfDeblur + three changes.

The networks, the per-step loss (`dip_loss_terms`) and the optimiser are
SelfDeblur's (`Kotera` subclasses `SelfDeblur`); what changes is the run:

1. Multiscale (`multiscale`): `scales` scales, the coarsest `scale_factor`
   ** -(scales-1) of the input (paper: 3 scales, factor sqrt(2), so 1/2,
   1/sqrt(2), 1); `coarse_iterations` (500) on each coarse scale,
   `iterations` (5000) on the last; kernel sides scale with the image, never
   below `min_kernel_size` (7, or the requested size if smaller). Between
   scales both generators are fitted to the upsampled latent and kernel of
   the previous scale (the only way a DIP can carry an estimate to the next
   scale, so this transfer belongs to the multiscale switch).
2. Initialisation (`init`): before the first (coarsest, or only) scale the
   kernel generator is fitted to a Gaussian (or, given a `WarmStart` such as
   MAP's, `run(init=...)`, both generators to its estimates) with sigma = `init_sigma` x the
   kernel half-width (kh // 2, kw // 2); the image generator stays random.
   Fits stop at RMSE `fit_image_rmse` (10/255) for the image and
   `fit_kernel_rmse` x max(target kernel) for the kernel (our reading of the
   paper's "correspondingly scaled value": the image tolerance is 10/255 of
   the image's range [0, 1], the kernel's is 10/255 of the kernel's range
   [0, max k0]), or after `fit_max_iterations` Adam updates, with Adam rates
   `fit_lr_image` / `fit_lr_kernel` (not given by the paper; our choice).
3. Regularisation, on the last scale (iteration i counted from 0 on that
   scale): data term MSE if i < ssim_from (2000) else 1 - SSIM (`ssim_switch`;
   off: MSE throughout); + tv_weight (0.01) TV(x) if i >= tv_from (2000)
   (`use_tv`); + kernel_l2_weight (0.1) ||k||^2 if i < kernel_l2_until (2000)
   (`use_kernel_l2`). Coarse scales (500 iterations, all before 2000 in the
   paper) use the pre-switch phase throughout: MSE, kernel l2 (if on), no TV,
   and constant learning rates (the paper's halvings at 2000/3000/4000 never
   occur there).

With all five switches off the method is SelfDeblur with MSE throughout (same
networks, keys and steps). `run` returns the last scale's BatchOutcome; its
history covers the last scale only; extras add per run: "scale<s>_loss"
(R, coarse_iterations) per coarse scale, "scale<s>_kernel" and
"scale<s>_latent" (the estimates of the coarse scales), and per scale
"fit_iterations_image" / "fit_iterations_kernel" (R, scales; 0 where not
fitted) and "fit_rmse_image" / "fit_rmse_kernel" (R, scales; NaN where not
fitted). Timings add up all scales ("fit_s" the fits).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxdeblur import kernels as K
from jaxdeblur.config import NEVER, compress_schedule
from jaxdeblur.engine.fitting import FitSettings
from jaxdeblur.engine.multiscale import Stage, Tolerances, WarmStart, fit_extras, run_scales, scale_plan
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.methods.selfdeblur import DIPConfig, SelfDeblur


@dataclasses.dataclass(frozen=True)
class KoteraConfig(DIPConfig):
    """Every number of Kotera et al.'s method (defaults: the paper's settings).

    Inherits the SelfDeblur networks/optimiser fields of `DIPConfig`, with
    the paper's loss schedule as defaults (ssim_from = tv_from =
    kernel_l2_until = 2000, tv_weight 0.01, kernel_l2_weight 0.1);
    `iterations` is the last scale's. Switches (each independent, for
    ablations): multiscale, init, use_tv, use_kernel_l2, ssim_switch.
    """

    ssim_from: int = 2000
    tv_weight: float = 0.01
    tv_from: int = 2000
    kernel_l2_weight: float = 0.1
    kernel_l2_until: int = 2000
    multiscale: bool = True
    init: bool = True
    use_tv: bool = True
    use_kernel_l2: bool = True
    ssim_switch: bool = True
    scales: int = 3
    scale_factor: float = math.sqrt(2.0)
    coarse_iterations: int = 500
    min_kernel_size: int = 7
    init_sigma: float = 1.0
    fit_image_rmse: float = 10 / 255
    fit_kernel_rmse: float = 10 / 255
    fit_max_iterations: int = 2000
    fit_lr_image: float = 1e-2
    fit_lr_kernel: float = 1e-3


_DIP_FIELDS = tuple(f.name for f in dataclasses.fields(DIPConfig))


def stage_config(cfg: KoteraConfig, final: bool) -> DIPConfig:
    """The SelfDeblur config a scale runs with (switches applied; see the module docstring)."""
    base = {name: getattr(cfg, name) for name in _DIP_FIELDS}
    base["tv_weight"] = cfg.tv_weight if cfg.use_tv and final else 0.0
    base["kernel_l2_weight"] = cfg.kernel_l2_weight if cfg.use_kernel_l2 else 0.0
    if final:
        base["ssim_from"] = cfg.ssim_from if cfg.ssim_switch else NEVER
        base["iterations"] = cfg.iterations
    else:
        base.update(ssim_from=NEVER, kernel_l2_until=NEVER, lr_milestones=(), iterations=cfg.coarse_iterations)
    return DIPConfig(**base)


def _check(cfg: KoteraConfig) -> None:
    if cfg.coarse_iterations < 0 or cfg.iterations < 0 or cfg.fit_max_iterations < 0:
        raise ValueError("iterations, coarse_iterations and fit_max_iterations must be >= 0")
    if cfg.min_kernel_size < 1:
        raise ValueError(f"min_kernel_size must be >= 1, got {cfg.min_kernel_size}")
    if not cfg.init_sigma > 0:
        raise ValueError(f"init_sigma must be > 0, got {cfg.init_sigma}")
    if cfg.fit_image_rmse < 0 or cfg.fit_kernel_rmse < 0:
        raise ValueError("fit tolerances must be >= 0")


class Kotera(SelfDeblur):
    """Kotera et al.'s method for the DIP engine: SelfDeblur's networks and steps, run coarse to fine."""

    name = "kotera"
    presets = {
        "paper": KoteraConfig(),
        # CPU setting: SelfDeblur's "fast" networks, 1000 final iterations with every switch point, milestone and
        # coarse scale compressed 5x (100 per coarse scale); fits capped at 500 updates.
        "fast": compress_schedule(dataclasses.replace(KoteraConfig(), **SelfDeblur.presets["fast"].network_fields(),
                                                      fit_max_iterations=500), 1000),
        # Tests: SelfDeblur's tiny networks, 20 final / 10 coarse iterations, switches at 10.
        "tiny": KoteraConfig(**SelfDeblur.presets["tiny"].network_fields(), iterations=20, lr_milestones=(10, 15),
                             ssim_from=10, tv_from=10, kernel_l2_until=10, coarse_iterations=10,
                             fit_max_iterations=20),
    }

    def plan(self, cfg: KoteraConfig, image_size: tuple[int, int], kernel_size: tuple[int, int]):
        """The scales this config runs for an input (h, w) and kernel (kh, kw): list of ScaleSize."""
        scales = cfg.scales if cfg.multiscale else 1
        return scale_plan(tuple(image_size), tuple(kernel_size), scales, cfg.scale_factor, cfg.min_kernel_size)

    def stages(self, cfg: KoteraConfig, image_size, kernel_size) -> list[Stage]:
        """The pipeline: one Stage per scale, coarsest first."""
        plan = self.plan(cfg, image_size, kernel_size)
        last = len(plan) - 1
        return [Stage(stage_config(cfg, s == last), size, cfg.iterations if s == last else cfg.coarse_iterations)
                for s, size in enumerate(plan)]

    def initial_kernel(self, cfg: KoteraConfig, kernel_size: tuple[int, int]) -> np.ndarray:
        """The Gaussian k0 of the first scale: sigma = init_sigma x half-width (kh // 2, kw // 2), >= 0.5 px."""
        sigma = tuple(max(0.5, cfg.init_sigma * (k // 2)) for k in kernel_size)
        return np.asarray(K.gaussian(tuple(kernel_size), sigma))

    def fit_settings(self, cfg: KoteraConfig) -> tuple[FitSettings, Tolerances]:
        return (FitSettings(cfg.fit_max_iterations, (("image", cfg.fit_lr_image), ("kernel", cfg.fit_lr_kernel))),
                Tolerances(cfg.fit_image_rmse, cfg.fit_kernel_rmse))

    def run(self, cfg: KoteraConfig, ys, kernel_size, keys, options=EngineOptions(), init: WarmStart | None = None):
        """Runs the pipeline on a batch ys (R, H, W, C); the BatchOutcome of the last scale (see module doc).

        init: a WarmStart (full-scale estimates, e.g. MAP's: `jaxdeblur.methods.map_init`) the generators of
        the first scale are fitted to, with its own fit settings, instead of the Gaussian of `cfg.init`.
        """
        if not isinstance(cfg, KoteraConfig):
            raise TypeError(f"kotera needs a KoteraConfig, got {type(cfg).__name__}")
        _check(cfg)
        ys = np.asarray(ys, np.float32)
        if ys.ndim != 4:
            raise ValueError(f"blurred images must be stacked as (R, H, W, C), got shape {ys.shape}")
        stages = self.stages(cfg, ys.shape[1:3], kernel_size)
        fit, tolerances = self.fit_settings(cfg)
        k0 = None
        if cfg.init and init is None:
            k0 = np.broadcast_to(self.initial_kernel(cfg, stages[0].size.kernel_size),
                                 (ys.shape[0], *stages[0].size.kernel_size))
        result = run_scales(self, stages, ys, keys, options=options, fit=fit, tolerances=tolerances,
                            initial_kernels=k0, transfer=cfg.multiscale, warm_start=init)
        final = result.outcomes[-1]
        runs, n = ys.shape[0], len(stages)
        extras = dict(final.extras)
        for s, out in enumerate(result.outcomes[:-1]):
            extras[f"scale{s}_loss"] = out.history["loss"]
            extras[f"scale{s}_kernel"] = out.kernels
            extras[f"scale{s}_latent"] = out.latents
        extras.update(fit_extras(result.fits, runs))
        timings = {k: float(sum(o.timings.get(k, 0.0) for o in result.outcomes))
                   for k in ("compile_s", "run_s", "iterations_run")}
        timings["fit_s"] = float(sum(f.fit_s for f in result.fits))
        timings["ms_per_iteration"] = 1e3 * timings["run_s"] / max(timings["iterations_run"], 1)
        timings["scales"] = n
        return dataclasses.replace(final, extras=extras, timings=timings)
