"""Coarse-to-fine DIP pipelines: scale plans, resampling between scales, the stage loop.

A pipeline deblurs the input at S scales, coarsest first. Scale s has the
factor f_s = factor ** -(S - 1 - s) of the full size (Kotera et al.: S = 3,
factor sqrt(2): 1/2, 1/sqrt(2), 1), the image side round(f_s * H) and the
kernel side `jaxdeblur.kernels.resized_size(kh, f_s)`, never below
min(min_kernel, kh). Each scale is one `run_batch` stage; between scales
the previous estimates are resampled to the next scale and the next scale's
generators are fitted to them (`jaxdeblur.engine.fitting`). Before the
first stage the generators can be fitted to given estimates instead (a
`WarmStart`, at full scale: e.g. the MAP estimator's kernel and non-blind
image, `jaxdeblur.methods.map_init`); a single-scale method runs that as a
pipeline of one stage. Works for double-DIP methods; the networks fitted to
the latent and to the kernel are the method's `fit_networks(cfg)` ("image"
and "kernel" by default, `DIPMethod`; the uncertainty method's kernel comes
out of its "refine" net).

Geometry: with the 'valid' forward model a scale's latent image is
(h + kh - 1, w + kw - 1) and the observed pixels sit at rows/columns
a = k - 1 - k // 2 ... (the taps under the kernel centre). Latents are
resampled so that these observed regions map onto each other (edge values
extend the margins), kernels about their centre tap (`jaxdeblur.kernels.resize`)
and then zero-padded or cropped to the next kernel size and renormalised.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import TYPE_CHECKING, Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxdeblur import kernels as K
from jaxdeblur.engine.fitting import FitInfo, FitSettings, fit_generators
from jaxdeblur.engine.runner import BatchOutcome, EngineOptions, init_batch, run_batch

if TYPE_CHECKING:
    from jaxdeblur.engine.method import DIPMethod


@dataclasses.dataclass(frozen=True)
class ScaleSize:
    """One scale of a plan: factor of the full size, image (h, w) and kernel (kh, kw) in pixels."""

    factor: float
    image_size: tuple[int, int]
    kernel_size: tuple[int, int]


def scale_factors(scales: int, factor: float) -> list[float]:
    """[factor ** -(S - 1), ..., factor ** -1, 1]: the size of each scale relative to the input."""
    if int(scales) != scales or scales < 1:
        raise ValueError(f"scales must be an int >= 1, got {scales!r}")
    if not factor > 1:
        raise ValueError(f"the factor between scales must be > 1, got {factor!r}")
    return [float(factor) ** -(scales - 1 - s) for s in range(scales)]


def scale_plan(image_size: tuple[int, int], kernel_size: tuple[int, int], scales: int, factor: float,
               min_kernel: int = 7) -> list[ScaleSize]:
    """Image and kernel sizes of every scale, coarsest first (the last is the input's).

    Raises ValueError when a scale's kernel would not fit in its image.
    """
    h, w = image_size
    plan = []
    for f in scale_factors(scales, factor):
        size = (max(1, math.floor(h * f + 0.5)), max(1, math.floor(w * f + 0.5))) if f != 1 else (h, w)
        ks = tuple(max(K.resized_size(k, f), min(min_kernel, k)) if f != 1 else k for k in kernel_size)
        if ks[0] > size[0] or ks[1] > size[1]:
            raise ValueError(f"at scale {f:.3g} the kernel {ks} is larger than the image {size}; "
                             "use fewer scales or a larger image")
        plan.append(ScaleSize(f, size, ks))
    return plan


def resize_images(ys, size: tuple[int, int]) -> np.ndarray:
    """(R, H, W, C) -> (R, h, w, C) by antialiased linear interpolation (identity at the same size)."""
    ys = np.asarray(ys, np.float32)
    if ys.shape[1:3] == tuple(size):
        return ys
    # one run at a time, so run r never depends on the batch it is in
    return np.stack([np.asarray(jax.image.resize(y, (*size, y.shape[2]), "linear", antialias=True)) for y in ys])


def _latent_origin(k: int) -> int:
    """First latent row/column under an observed pixel for kernel side k ('valid' model)."""
    return k - 1 - k // 2


def resample_latents(latents, src: ScaleSize, dst: ScaleSize) -> np.ndarray:
    """Latents (R, hs+khs-1, ws+kws-1, C) of scale `src` -> (R, hd+khd-1, wd+kwd-1, C) of scale `dst`.

    The observed region maps onto the observed region (per-axis ratio of the
    image sizes); margins come from edge-extended values. Clipped to [0, 1].
    """
    # One run at a time: XLA may sum in another order for another batch size, and
    # run r must not depend on the batch it is in.
    return np.stack([_resample_latent(x, src, dst) for x in np.asarray(latents, np.float32)])


def _resample_latent(latent, src: ScaleSize, dst: ScaleSize) -> np.ndarray:
    latents = jnp.asarray(latent, jnp.float32)[None]
    pad = max(dst.kernel_size) + 2
    padded = jnp.pad(latents, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    scale = np.array([dst.image_size[0] / src.image_size[0], dst.image_size[1] / src.image_size[1]], np.float32)
    origin_src = np.array([_latent_origin(k) for k in src.kernel_size], np.float32) + pad
    origin_dst = np.array([_latent_origin(k) for k in dst.kernel_size], np.float32)
    shape = (latents.shape[0], dst.image_size[0] + dst.kernel_size[0] - 1, dst.image_size[1] + dst.kernel_size[1] - 1,
             latents.shape[3])
    translation = jnp.asarray(origin_dst - origin_src * scale)
    out = jax.image.scale_and_translate(padded, shape, (1, 2), jnp.asarray(scale), translation,
                                        method="linear", antialias=bool(np.any(scale < 1)))
    return np.asarray(jnp.clip(out, 0.0, 1.0))[0]


def resample_kernels(kernels, src: ScaleSize, dst: ScaleSize) -> np.ndarray:
    """Kernels (R, khs, kws) of scale `src` -> (R, khd, kwd) of scale `dst` (sum 1, non-negative)."""
    return np.stack([_resample_kernel(k, src, dst) for k in np.asarray(kernels, np.float32)])


def _resample_kernel(k, src: ScaleSize, dst: ScaleSize) -> np.ndarray:
    k = K.resize(jnp.asarray(k, jnp.float32), float(dst.factor / src.factor))
    kh, kw = dst.kernel_size
    if k.shape[-2] < kh or k.shape[-1] < kw:
        k = K.pad_to(k, (max(kh, k.shape[-2]), max(kw, k.shape[-1])))
    k = K.crop_to(k, (kh, kw))
    k = jnp.maximum(k, 0.0)
    return np.asarray(k / jnp.sum(k, axis=(-2, -1), keepdims=True))


@dataclasses.dataclass(frozen=True)
class Stage:
    """One scale of a pipeline: the method config to run it with, its sizes and iterations."""

    cfg: Any
    size: ScaleSize
    iterations: int


@dataclasses.dataclass(frozen=True)
class Tolerances:
    """When a fit stops: image RMSE (image units, [0, 1]) and kernel RMSE relative to the target's peak."""

    image: float
    kernel_relative: float


@dataclasses.dataclass(frozen=True)
class WarmStart:
    """Estimates the generators are fitted to before a pipeline's first stage, at the input's full scale.

    latents: (R, H+kh-1, W+kw-1, C) float32 in [0, 1], the image generator's
      target (the method's latent shape; None: that generator stays random).
    kernels: (R, kh, kw) float32, non-negative, sum 1, blur convention (None:
      that generator stays random).
    fit: the fit's cap and Adam rates, keyed by role ("image", "kernel").
    tolerances: when each fit stops (see `Tolerances`).
    Both are resampled to the first stage's scale (`resample_latents`,
    `resample_kernels`) when that is not the full one.
    """

    latents: Any
    kernels: Any
    fit: FitSettings
    tolerances: Tolerances


def fit_networks(method: DIPMethod, cfg) -> dict[str, str]:
    """{"image": network fitted to the latent, "kernel": network fitted to the kernel}: the method's
    `fit_networks(cfg)` (the base's default: the double-DIP names)."""
    return dict(method.fit_networks(cfg))


@dataclasses.dataclass(frozen=True)
class _RoleOutputs:
    """`fit_generators`' outputs for renamed networks: (latent, kernel, extras) -> {network: output}."""

    image: str
    kernel: str

    def __call__(self, latent, kernel, extras) -> dict:
        return {self.image: latent, self.kernel: kernel}


def fit_roles(method, cfg, nets, state, targets: dict, tolerances: dict, fit: FitSettings,
              options: EngineOptions) -> tuple[Any, FitInfo]:
    """`fit_generators` with targets, tolerances and rates keyed by role ("image" / "kernel"); the method's
    `fit_networks` names the network of each role. The FitInfo is keyed by role too."""
    names = fit_networks(method, cfg)
    if names == {"image": "image", "kernel": "kernel"}:
        return fit_generators(method, cfg, nets, state, targets, tolerances, fit, options=options)
    rates = dict(fit.learning_rates)
    settings = FitSettings(fit.max_iterations, tuple((names[role], rates[role]) for role in sorted(rates)))
    state, info = fit_generators(method, cfg, nets, state, {names[r]: v for r, v in targets.items()},
                                 {names[r]: v for r, v in tolerances.items()}, settings, options=options,
                                 outputs=_RoleOutputs(names["image"], names["kernel"]))
    role = {net: r for r, net in names.items()}
    back = lambda d: {role[n]: v for n, v in d.items()}  # noqa: E731
    return state, FitInfo(back(info.iterations), back(info.rmse), back(info.reached), info.fit_s)


@dataclasses.dataclass
class PipelineResult:
    """outcomes[s]: the BatchOutcome of stage s; fits[s]: its FitInfo (empty when nothing was fitted)."""

    outcomes: list[BatchOutcome]
    fits: list[FitInfo]


def stage_keys(keys, stage: int, stages: int):
    """The run keys of a stage: the keys themselves for the last stage, fold_in(key, stage) before."""
    if stage == stages - 1:
        return keys
    return jax.vmap(lambda k: jax.random.fold_in(k, stage))(keys)


def _fit_targets(image, kernel, tol: Tolerances):
    targets, tolerances = {}, {}
    if image is not None:
        targets["image"], tolerances["image"] = image, np.full(image.shape[0], tol.image, np.float32)
    if kernel is not None:
        targets["kernel"] = kernel
        tolerances["kernel"] = tol.kernel_relative * np.max(kernel, axis=(-2, -1)).astype(np.float32)
    return targets, tolerances


def run_scales(method: DIPMethod, stages: Sequence[Stage], ys, keys, *, options: EngineOptions = EngineOptions(),
               fit: FitSettings | None = None, tolerances: Tolerances | None = None, initial_kernels=None,
               transfer: bool = True, stage_options: Callable[[int, EngineOptions], EngineOptions] | None = None,
               warm_start: WarmStart | None = None) -> PipelineResult:
    """Runs the stages coarsest first on full-size blurred images ys (R, H, W, C).

    Stage s sees ys resized to its image size. Before stage 0 the kernel
    generator is fitted to `initial_kernels` ((R, kh0, kw0), None: no fit),
    or, with a `warm_start`, the generators to its estimates (given at the
    last stage's scale, the input's; resampled to stage 0's; fitted with its
    own settings); before each later stage, when `transfer`, both generators
    are fitted to the previous stage's latent and kernel resampled to this scale (stage 0
    and transfer=False start from random networks). Fits use `fit` and
    `tolerances`. Keys: `stage_keys`. Checkpoints of stage s go to
    <checkpoint_dir>/scale<s> unless `stage_options` says otherwise.
    """
    if not stages:
        raise ValueError("a pipeline needs at least one stage")
    if warm_start is not None and initial_kernels is not None:
        raise ValueError("give initial_kernels or a warm_start, not both")
    if (initial_kernels is not None or (transfer and len(stages) > 1)) and (fit is None or tolerances is None):
        raise ValueError("fitting generators needs `fit` settings and `tolerances`")
    ys = np.asarray(ys, np.float32)
    outcomes: list[BatchOutcome] = []
    fits: list[FitInfo] = []
    for s, stage in enumerate(stages):
        opts = _options_for(s, len(stages), options) if stage_options is None else stage_options(s, options)
        ys_s = resize_images(ys, stage.size.image_size)
        image = kernel = None
        fit_s, tolerances_s = fit, tolerances
        if s == 0 and warm_start is not None:
            image, kernel = _warm_targets(warm_start, ys.shape[0], stages[-1].size, stage.size)
            fit_s, tolerances_s = warm_start.fit, warm_start.tolerances
        elif s == 0 and initial_kernels is not None:
            kernel = np.asarray(initial_kernels, np.float32)
            if kernel.shape[1:] != tuple(stage.size.kernel_size):
                raise ValueError(f"initial kernels {kernel.shape[1:]} do not match stage 0's size "
                                 f"{stage.size.kernel_size}")
        elif s > 0 and transfer:
            prev = outcomes[-1]
            image = resample_latents(prev.latents, stages[s - 1].size, stage.size)
            kernel = resample_kernels(prev.kernels, stages[s - 1].size, stage.size)
        state = None
        info = FitInfo({}, {}, {}, 0.0)
        if image is not None or kernel is not None:
            nets, state = init_batch(method, stage.cfg, ys_s, stage.size.kernel_size,
                                     stage_keys(keys, s, len(stages)), opts)
            targets, tols = _fit_targets(image, kernel, tolerances_s)
            state, info = fit_roles(method, stage.cfg, nets, state, targets, tols, fit_s, opts)
        out = run_batch(method, stage.cfg, ys_s, stage.size.kernel_size, stage_keys(keys, s, len(stages)),
                        iterations=stage.iterations, options=opts, state=state,
                        meta={"scale": s, "scales": len(stages)})
        outcomes.append(out)
        fits.append(info)
    return PipelineResult(outcomes, fits)


def _warm_targets(warm: WarmStart, runs: int, full: ScaleSize, size: ScaleSize) -> tuple:
    """A warm start's (latents, kernels) given at the scale `full` (the input's), resampled to the scale
    `size`; either may be None. Raises ValueError when their shapes do not match `full` and `runs`."""
    image = kernel = None
    if warm.kernels is not None:
        kernel = np.asarray(warm.kernels, np.float32)
        if kernel.shape != (runs, *full.kernel_size) or not np.all(np.isfinite(kernel)):
            raise ValueError(f"warm-start kernels {kernel.shape} must be finite and match the runs' "
                             f"{(runs, *full.kernel_size)}")
    if warm.latents is not None:
        image = np.asarray(warm.latents, np.float32)
        expected = (runs, full.image_size[0] + full.kernel_size[0] - 1, full.image_size[1] + full.kernel_size[1] - 1)
        if image.shape[:3] != expected or image.ndim != 4 or not np.all(np.isfinite(image)):
            raise ValueError(f"warm-start latents {image.shape} must be finite and match the runs' latents "
                             f"{expected} x channels")
    if (full.image_size, full.kernel_size) != (tuple(size.image_size), tuple(size.kernel_size)):
        image = None if image is None else resample_latents(image, full, size)
        kernel = None if kernel is None else resample_kernels(kernel, full, size)
    return image, kernel


def fit_extras(fits: Sequence[FitInfo], runs: int) -> dict:
    """Per-run records of a pipeline's fits, one column per stage: "fit_iterations_<role>" (R, S) int32 (0
    where not fitted) and "fit_rmse_<role>" (R, S) float32 (NaN where not fitted), roles image and kernel."""
    extras = {}
    for role in ("image", "kernel"):
        extras[f"fit_iterations_{role}"] = np.stack(
            [f.iterations.get(role, np.zeros(runs, np.int32)) for f in fits], axis=1)
        extras[f"fit_rmse_{role}"] = np.stack(
            [f.rmse.get(role, np.full(runs, np.nan, np.float32)) for f in fits], axis=1)
    return extras


def _options_for(stage: int, stages: int, options: EngineOptions) -> EngineOptions:
    changes: dict = {"description": f"{options.description} (scale {stage + 1}/{stages})"} if stages > 1 else {}
    if options.checkpoint_dir and stages > 1:
        changes["checkpoint_dir"] = os.path.join(options.checkpoint_dir, f"scale{stage}")
    return dataclasses.replace(options, **changes) if changes else options


__all__ = ["ScaleSize", "Stage", "Tolerances", "WarmStart", "PipelineResult", "fit_networks", "fit_roles",
           "fit_extras", "scale_factors", "scale_plan", "resize_images",
           "resample_latents", "resample_kernels", "stage_keys", "run_scales"]
