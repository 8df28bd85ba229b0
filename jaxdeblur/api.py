"""The public entry points: `deblur` one image, `deblur_batch` many at once.

What a run does, in order:

1. `plan_batch` checks every argument (one clear error each), picks the
   method and preset ("auto": `resolve_method`, `jaxdeblur.config.resolve_preset`),
   resolves the config (`jaxdeblur.config.resolve`: the schedule compressed
   to `iterations`, then the overrides), splits colour
   (`jaxdeblur.color.split_color`: the generator fits the luma of a colour
   image, or all three channels with color="rgb"), cuts the
   kernel-estimation window (`region`), and stamps each group of runs with
   what identifies it (`jaxdeblur.engine.checkpoint.run_stamp`).
2. `run_plan` runs each group (same image and kernel size) as one batched,
   compiled DIP job, or one call of a method without engine (method "map");
   with checkpoints, a group keeps them in <checkpoint_dir>/<stamp id>/, so
   runs for other inputs or settings never share, hide or resume one
   another's state.
3. Each run becomes one `DeblurResult` (DIP and MAP alike), with the
   finishing step (on by default): the whole input, every colour channel,
   deconvolved non-blind with the estimated kernel
   (`jaxdeblur.deconv.finishing_step`; for "map" its own non-blind step).
   The result carries both images.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from jaxdeblur.color import COLOR_MODES, merge_color, split_color
from jaxdeblur.config import AUTO_PRESET, resolve, resolve_preset
from jaxdeblur.deconv import FINISH_LAM, finishing_step
from jaxdeblur.engine.checkpoint import find_runs, newest_step, package_version, run_stamp, write_run_record
from jaxdeblur.engine.method import DIPMethod
from jaxdeblur.engine.runner import EngineOptions, image_offset, notify
from jaxdeblur.estimate.support import AUTO as AUTO_KERNEL_SIZE
from jaxdeblur.estimate.support import is_auto
from jaxdeblur.methods import get_method
from jaxdeblur.methods.map_init import check_init, map_warm_start
from jaxdeblur.regions import resolve_region

AUTO_METHOD = "auto"


@dataclasses.dataclass
class DeblurResult:
    """The outcome of one blind deblurring run, for every method (DIP or "map").

    image: the generator's image, float32 in [0, 1], the input's shape ((H, W)
      or (H, W, 3)); with a `region`, the window's shape (h, w[, 3]).
    deconvolved: the finishing step, the whole input deconvolved non-blind with
      `kernel` (every colour channel), the input's shape; None when finish=False.
    kernel: (kh, kw) float32, non-negative, sum 1, blur (true convolution) convention.
    history: {loss term: (iterations,)} per-iteration values ("loss" is their sum).
    latent: the generator's full output (h+kh-1, w+kw-1, C) (C = 1 for the luma).
    extras: method-specific outputs (e.g. the kernel variance of the uncertainty method).
    color: which channels the generator fitted ("deblurred"), which were taken
      from the input ("kept_from_input"), and a note when asked for colour on grey.
    region: (x, y, w, h) of the kernel-estimation window, or None (the whole image).
    stamp: what identifies the run; checkpoint_dir: where its checkpoints are (or None).
    init: how the generators started: None (randomly, or the method's own start) or "map" (fitted to the
      MAP estimator's kernel and non-blind image; extras then add "init_kernel" (kh, kw), "init_image"
      (h, w, C) and the fit's "fit_iterations_<image|kernel>" / "fit_rmse_<image|kernel>", timings
      "init_s" and "fit_s").
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
    deconvolved: np.ndarray | None = None
    color: dict = dataclasses.field(default_factory=dict)
    region: tuple[int, int, int, int] | None = None
    stamp: dict = dataclasses.field(default_factory=dict)
    checkpoint_dir: str | None = None
    init: str | None = None


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    """Images of one batched job: same fitted shape (h, w, C) and kernel size ((kh, kw), or "auto" for a method
    that chooses it per image); `stamp_id` names its folder."""

    members: tuple[int, ...]
    shape: tuple[int, int, int]
    kernel_size: tuple[int, int]
    stamp: dict
    stamp_id: str


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """Everything a batch will run, checked, before anything runs (see `plan_batch`)."""

    method: str
    method_reason: str
    preset: str
    preset_reason: str
    config: Any
    color: str
    finish: bool
    images: tuple[np.ndarray, ...]
    fitted: tuple[np.ndarray, ...]
    chroma: tuple[np.ndarray | None, ...]
    colors: tuple[dict, ...]
    regions: tuple[tuple[int, int, int, int] | None, ...]
    seeds: tuple[int, ...]
    labels: tuple[str, ...]
    groups: tuple[GroupPlan, ...]
    init: str | None = None
    init_config: Any = None

    def checkpoint_dir(self, root: str | Path, group: GroupPlan) -> Path:
        """The folder of one group's checkpoints under `root`."""
        return Path(root).absolute() / group.stamp_id


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _size_entry(entry, what: str) -> tuple[int, int]:
    """An int (square) or a (kh, kw) pair of positive ints."""
    if _is_int(entry):
        pair = (int(entry), int(entry))
    elif isinstance(entry, (tuple, list)) and len(entry) == 2 and all(_is_int(v) for v in entry):
        pair = (int(entry[0]), int(entry[1]))
    else:
        raise ValueError(f"{what} must be a positive int or a (kh, kw) pair of ints, got {entry!r}")
    if min(pair) < 1:
        raise ValueError(f"{what} must be positive, got {entry!r}")
    return pair


def _kernel_sizes(kernel_sizes, kernel_shape, n: int) -> list[tuple[int, int] | str]:
    """One (kh, kw) or "auto" per image from an int, "auto", one entry per image, or kernel_shape=(kh, kw)."""
    if kernel_shape is not None:
        if kernel_sizes is not None:
            raise ValueError("give either kernel_sizes or kernel_shape=(kh, kw), not both")
        return [_size_entry(tuple(kernel_shape), "kernel_shape")] * n
    if kernel_sizes is None:
        raise ValueError("kernel_sizes is required: an int (square, every image), one entry per image, "
                         "or kernel_shape=(kh, kw) for one rectangular kernel")
    if is_auto(kernel_sizes):
        return [AUTO_KERNEL_SIZE] * n
    if _is_int(kernel_sizes):
        return [_size_entry(kernel_sizes, "kernel size")] * n
    if not isinstance(kernel_sizes, (list, tuple, np.ndarray)):
        raise ValueError(f"kernel_sizes must be an int or a sequence with one entry per image (or 'auto' for "
                         f"method 'map'), got {kernel_sizes!r}")
    entries = list(kernel_sizes)
    if len(entries) != n:
        raise ValueError(f"kernel_sizes has {len(entries)} entries for {n} image(s): give one int for every "
                         "image, one entry per image, or kernel_shape=(kh, kw) for one rectangular kernel")
    return [AUTO_KERNEL_SIZE if is_auto(e) else _size_entry(e.tolist() if isinstance(e, np.ndarray) else e,
                                                            f"kernel size {i}")
            for i, e in enumerate(entries)]


def _as_image(x, label: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] not in (1, 3)):
        raise ValueError(f"{label}: expected (H, W), (H, W, 1) or (H, W, 3), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{label} is empty (shape {x.shape}): nothing to deblur")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{label}: expected float values in [0, 1], got dtype {x.dtype} "
                        "(use jaxdeblur.io.load_image to read files)")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{label} contains NaN or infinite values")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"{label}: values must lie in [0, 1], got [{x.min():.3g}, {x.max():.3g}]")
    return x.astype(np.float32)


def resolve_method(method: str, *, platform: str) -> tuple[str, str]:
    """The method a run uses, and why.

    Args:
      method: a method name, or "auto": "map" on a CPU, "selfdeblur" on an accelerator.
      platform: the platform the run will use.

    Returns:
      (method name, reason); the reason is "as asked" for any name but "auto".
    """
    if method != AUTO_METHOD:
        return method, "as asked"
    if platform == "cpu":
        return "map", ("on a CPU: MAP kernel estimation + the learned non-blind step, seconds per image; the DIP "
                       "methods need an accelerator's budget (--method selfdeblur|kotera|uncertainty)")
    return "selfdeblur", f"on {platform}: SelfDeblur's double deep image prior at its paper preset"


def _platform(options: EngineOptions | None) -> str:
    if options is not None and options.devices:
        return list(options.devices)[0].platform
    return jax.default_backend()


def plan_batch(blurred_list: Sequence, kernel_sizes=None, method: str = "selfdeblur", *,
               kernel_shape: tuple[int, int] | None = None, preset: str = AUTO_PRESET, iterations: int | None = None,
               seeds: Sequence[int] | None = None, config: Any = None, color: str = "y", finish: bool = True,
               region=None, labels: Sequence[str] | None = None, platform: str | None = None,
               init: str | None = None, init_config: Any = None) -> BatchPlan:
    """Checks every argument of `deblur_batch` and plans the jobs, running nothing.

    Args:
      blurred_list, kernel_sizes, method, kernel_shape, preset, iterations,
        seeds, config, color, finish, region, labels, init, init_config: as
        `deblur_batch`.
      platform: the platform the plan is for ("cpu", "gpu", "tpu"; it decides
        "auto"); default JAX's default backend.

    Returns:
      a `BatchPlan` (give it to `run_plan`).

    Raises:
      ValueError / TypeError naming the argument (and the image index) for
      every bad input: see `deblur_batch`.
    """
    if color not in COLOR_MODES:
        raise ValueError(f"color must be one of {COLOR_MODES}, got {color!r}")
    blurred_list = list(blurred_list)
    n = len(blurred_list)
    if n == 0:
        raise ValueError("empty batch: no images to deblur")
    labels = [f"image {i}" for i in range(n)] if labels is None else [str(s) for s in labels]
    seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n or len(labels) != n:
        raise ValueError(f"got {n} images, {len(seeds)} seeds and {len(labels)} labels; they must match")
    images = [_as_image(x, label) for x, label in zip(blurred_list, labels)]
    sizes = _kernel_sizes(kernel_sizes, kernel_shape, n)
    if region is not None and not finish:
        raise ValueError("a region (region= / --region) estimates the kernel on a window and the finishing step "
                         "restores the whole image, so it needs finish=True (not --no-finish)")
    platform = platform or jax.default_backend()
    method, method_reason = resolve_method(method, platform=platform)
    algorithm = get_method(method)
    if AUTO_KERNEL_SIZE in sizes and not algorithm.auto_kernel_size:
        raise ValueError(f"kernel size 'auto' is for method 'map' only (it measures the blur with the MAP "
                         f"estimator); give method {method!r} a kernel size in pixels, e.g. the one "
                         "`jaxdeblur deblur --method map -k auto` chooses")
    if color not in algorithm.color_modes:
        raise ValueError(f"method {method!r} supports color={list(algorithm.color_modes)} only (it estimates the "
                         f"kernel from the luma and deconvolves every channel), got {color!r}")
    preset_name, reason = resolve_preset(algorithm.presets, preset, platform=platform,
                                         auto=algorithm.auto_preset,
                                         auto_reason=algorithm.auto_reason)
    cfg = resolve(algorithm.presets, preset_name, config, iterations=iterations)
    init_cfg = check_init(init, init_config, algorithm)

    fitted, chroma, colors, regions = [], [], [], []
    for x, size, label in zip(images, sizes, labels):
        if size != AUTO_KERNEL_SIZE and (size[0] > x.shape[0] or size[1] > x.shape[1]):
            raise ValueError(f"{label}: kernel size {size} is larger than the image {x.shape[:2]}")
        box = None if region is None else resolve_region(x, region,
                                                         kernel_size=(1, 1) if size == AUTO_KERNEL_SIZE else size)
        fit, kept, record = split_color(x if box is None else _crop(x, box), mode=color)
        fitted.append(fit)
        chroma.append(kept)
        colors.append(record)
        regions.append(box)

    members: Mapping[tuple, list[int]] = defaultdict(list)
    for i, (fit, size) in enumerate(zip(fitted, sizes)):
        members[(fit.shape, size)].append(i)
    groups = []
    for (shape, size), idx in members.items():
        stamp, stamp_id = run_stamp(method=method, preset=preset_name, config=cfg, kernel_size=size, color=color,
                                    seeds=[seeds[i] for i in idx], images=[images[i] for i in idx],
                                    regions=[regions[i] for i in idx], init=init, init_config=init_cfg)
        groups.append(GroupPlan(tuple(idx), tuple(shape), size if size == AUTO_KERNEL_SIZE else tuple(size), stamp,
                                stamp_id))
    return BatchPlan(method=method, method_reason=method_reason, preset=preset_name, preset_reason=reason,
                     config=cfg, color=color, finish=bool(finish), images=tuple(images), fitted=tuple(fitted),
                     chroma=tuple(chroma),
                     colors=tuple(colors), regions=tuple(regions), seeds=tuple(seeds), labels=tuple(labels),
                     groups=tuple(groups), init=init, init_config=init_cfg)


def _group_options(plan: BatchPlan, group: GroupPlan, options: EngineOptions) -> EngineOptions:
    """The group's own checkpoint folder (<root>/<stamp id>) and run record; says what --resume finds."""
    labels = [plan.labels[i] for i in group.members]
    changes: dict[str, Any] = {"run_info": {"stamp_id": group.stamp_id, "labels": labels}}
    if options.checkpoint_dir is not None:
        root = Path(options.checkpoint_dir)
        folder = plan.checkpoint_dir(root, group)
        if options.resume:
            _say_what_resume_finds(options, root, folder, labels)
        write_run_record(folder, {"stamp": group.stamp, "stamp_id": group.stamp_id, "labels": labels})
        changes["checkpoint_dir"] = str(folder)
    return dataclasses.replace(options, **changes)


def _say_what_resume_finds(options: EngineOptions, root: Path, folder: Path, labels: list[str]) -> None:
    step = newest_step(folder) if folder.is_dir() else None
    if step is not None:
        notify(options, f"resuming {', '.join(labels)} from iteration {step} ({folder})")
        return
    others = [r for r in find_runs(root) if r.directory != folder and r.newest_step is not None]
    found = ("; found only checkpoints of other runs (another input or setting), not used: "
             + "; ".join(r.describe() for r in others[:3])) if others else ""
    notify(options, f"no checkpoint of this run of {', '.join(labels)} in {root}{found}; "
                    f"starting from the beginning in {folder}")


def run_plan(plan: BatchPlan, *, options: EngineOptions | None = None) -> list[DeblurResult]:
    """Runs a checked plan: one batched job per group, then the finishing step.

    Args:
      plan: from `plan_batch`.
      options: `EngineOptions` (devices, checkpoints, progress, ...).

    Returns:
      one `DeblurResult` per image of the plan, in order.
    """
    options = options or EngineOptions()
    algorithm = get_method(plan.method)
    if plan.method_reason != "as asked":
        notify(options, f"method: {plan.method} ({plan.method_reason})")
    if plan.preset_reason != "as asked":
        notify(options, f"preset: {plan.preset} ({plan.preset_reason}; {plan.config.iterations} iterations)")
    if not isinstance(algorithm, DIPMethod):  # the MAP estimator: no engine run
        return _run_classical(plan, algorithm)
    results: list[DeblurResult | None] = [None] * len(plan.images)
    for group in plan.groups:
        opts = _group_options(plan, group, options)
        ys = np.stack([plan.fitted[i] for i in group.members])
        keys = jax.numpy.stack([jax.random.key(plan.seeds[i]) for i in group.members])
        if plan.init is None:
            out = algorithm.run(plan.config, ys, group.kernel_size, keys, opts)
        else:  # MAP first, then the generators fitted to its estimates, then the method's schedule
            warm, init_extras, init_timings = map_warm_start(plan.init_config, algorithm, plan.config, ys,
                                                             group.kernel_size)
            out = algorithm.run(plan.config, ys, group.kernel_size, keys, opts, init=warm)
            out = dataclasses.replace(out, extras={**out.extras, **init_extras},
                                      timings={**out.timings, **init_timings})
        oy, ox = image_offset(algorithm, plan.config, group.kernel_size)  # the method's crop of its latent
        h, w = group.shape[:2]
        for j, i in enumerate(group.members):
            image = merge_color(out.latents[j][oy:oy + h, ox:ox + w], plan.chroma[i], shape=_window(plan, i).shape)
            results[i] = _result(plan, group, i, image=image,
                                 kernel=out.kernels[j], history={k: v[j] for k, v in out.history.items()},
                                 latent=out.latents[j], extras={k: v[j] for k, v in out.extras.items()},
                                 timings=out.timings, device=out.device, deconvolve=finishing_step,
                                 checkpoint_dir=opts.checkpoint_dir)
    return results


def _run_classical(plan: BatchPlan, algorithm) -> list[DeblurResult]:
    """A method without generator or engine (method="map"): `algorithm.run_images` per group.

    Each group's windows (the whole inputs, or their `region` crops; colour
    as given) go to the method in one batched call, which returns the kernel
    and the window restored with it (`image`). The finishing step is the
    window's own result when there is no region; with a region the whole
    input is deconvolved with the kernel by the method's own non-blind step
    (`algorithm.deconvolve`).
    """
    results: list[DeblurResult | None] = [None] * len(plan.images)
    for group in plan.groups:
        outs = algorithm.run_images(plan.config, [_window(plan, i) for i in group.members], group.kernel_size,
                                    [plan.seeds[i] for i in group.members], plan.preset)
        for i, out in zip(group.members, outs):
            results[i] = _result(plan, group, i, image=out.image, kernel=out.kernel, history=out.history,
                                 latent=out.latent, extras=out.extras, timings=out.timings, device=out.device,
                                 deconvolve=lambda image, kernel: algorithm.deconvolve(plan.config, image, kernel),
                                 deconvolved=out.image if plan.regions[i] is None else None, checkpoint_dir=None)
    return results


def _result(plan: BatchPlan, group: GroupPlan, i: int, *, image, kernel, history, latent, extras, timings, device,
            deconvolve, deconvolved=None, checkpoint_dir) -> DeblurResult:
    """Result i of a plan, DIP or not: the method's outputs, the finishing step, what the plan says of run i.

    The finishing step (when `plan.finish`): `deconvolved` when the method already restored the whole input
    (it then takes no time), else `deconvolve(whole input, kernel)` (timed, `timings["finish_s"]`).
    """
    timings = dict(timings)
    if not plan.finish:
        deconvolved = None
    elif deconvolved is not None:
        timings["finish_s"] = 0.0
    else:
        t0 = time.perf_counter()
        deconvolved = deconvolve(plan.images[i], kernel)
        timings["finish_s"] = time.perf_counter() - t0
    return DeblurResult(image=image, kernel=kernel, history=history, latent=latent, extras=extras,
                        method=plan.method, preset=plan.preset, config=plan.config, seed=plan.seeds[i],
                        timings=timings, device=device, deconvolved=deconvolved, color=plan.colors[i],
                        region=plan.regions[i], stamp=group.stamp, checkpoint_dir=checkpoint_dir, init=plan.init)


def _window(plan: BatchPlan, i: int) -> np.ndarray:
    """Input i where its kernel is estimated: the whole image, or its `region`."""
    return plan.images[i] if plan.regions[i] is None else _crop(plan.images[i], plan.regions[i])


def _crop(x: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    col, row, w, h = box
    return x[row:row + h, col:col + w]


def deblur(blurred, kernel_size, method: str = "selfdeblur", *, preset: str = AUTO_PRESET,
           iterations: int | None = None, seed: int = 0, config: Any = None, color: str = "y", finish: bool = True,
           region=None, init: str | None = None, init_config: Any = None,
           options: EngineOptions | None = None) -> DeblurResult:
    """Blind deblurring of one image.

    Args:
      blurred: (H, W) or (H, W, 3) float in [0, 1].
      kernel_size: int or (kh, kw), the support to estimate (at least the true
        blur's), or "auto" (method "map" only: the support is measured per
        image, `jaxdeblur.estimate.support`; `extras["kernel_size"]` says what
        was chosen and how; every "map" result also carries
        `extras["confidence"]`, `jaxdeblur.estimate.confidence`, whose
        "confident" is False for a doubtful estimate).
      method: a name of `jaxdeblur.methods.METHODS`: a DIP method, or "map"
        (classical MAP kernel estimation, seconds on a CPU; `image` and
        `deconvolved` are then the input deconvolved with its kernel by the
        learned plug-and-play step (`MapConfig.nonblind`), every colour
        channel, the kernel from the luma; deterministic, no checkpoints); or
        "auto": "map" on a CPU, "selfdeblur" on an accelerator
        (`resolve_method`).
      preset: "auto" (for a DIP method the paper's on an accelerator, "fast"
        on a CPU; for "map" its tuned "default"), "paper", "fast" or "tiny"
        ("default" too for "map").
      iterations: run length, the preset's schedule compressed to keep its
        proportions (`jaxdeblur.config.compress_schedule`).
      seed: the run's seed; the same seed gives the same result.
      config: a config object or a dict of raw field overrides (applied after
        the compression).
      color: "y" fits the luma and recombines it with the input's chroma
        (colour in, colour out); "rgb" fits three channels with one kernel (a
        grey input runs one channel and stays grey).
      finish: also deconvolve the whole input non-blind with the estimated
        kernel (`result.deconvolved`).
      region: estimate the kernel on a window only, (x, y, w, h) or a
        selector name ("auto": the most textured 256-pixel window; see
        `jaxdeblur.regions`), for photos too large for the generators; needs
        finish.
      init: None (the method's own start) or "map" (DIP methods selfdeblur /
        kotera / uncertainty: run the MAP estimator first and fit the
        generators to its kernel and non-blind image, then run the method's
        schedule; `jaxdeblur.methods.map_init`).
      init_config: a MapInitConfig or a dict of its overrides ("map.<field>"
        for the MAP config).
      options: `EngineOptions` (devices, checkpoints, progress, ...).

    Returns:
      a `DeblurResult`.

    Raises:
      ValueError / TypeError: see `deblur_batch`.
    """
    return deblur_batch([blurred], [kernel_size], method, preset=preset, iterations=iterations, seeds=[seed],
                        config=config, color=color, finish=finish, region=region, init=init,
                        init_config=init_config, options=options)[0]


def deblur_batch(blurred_list: Sequence, kernel_sizes=None, method: str = "selfdeblur", *,
                 kernel_shape: tuple[int, int] | None = None, preset: str = AUTO_PRESET,
                 iterations: int | None = None, seeds: Sequence[int] | None = None, config: Any = None,
                 color: str = "y", finish: bool = True, region=None, labels: Sequence[str] | None = None,
                 init: str | None = None, init_config: Any = None,
                 options: EngineOptions | None = None) -> list[DeblurResult]:
    """Blind deblurring of many images in batched, compiled runs.

    Result i equals `deblur(blurred_list[i], size_i, seed=seeds[i], ...)`.
    Images are grouped by (image shape, kernel size): each group is one batch
    of runs (the generators' shapes depend on both), spread over all devices.

    Args:
      blurred_list: the images, each as `deblur`'s `blurred`.
      kernel_sizes: an int (square, every image), "auto" (method "map") or a
        sequence with one entry per image (an int, a (kh, kw) pair or "auto"
        each).
      method: as `deblur`.
      kernel_shape: (kh, kw): one rectangular kernel for every image (instead
        of kernel_sizes).
      seeds: one per image; default 0..N-1.
      labels: input names, used in messages and checkpoint records.
      preset, iterations, config, color, finish, region, init, init_config,
        options: as `deblur` (region: one box or selector for every image).

    Returns:
      one `DeblurResult` per image, in order.

    Raises:
      ValueError (TypeError for a wrong type), before anything runs, for: an
      empty batch or image, an image that is not (H, W[, 1 or 3]) float in
      [0, 1] or holds NaN/inf, a kernel larger than its image, kernel sizes
      that are neither an int nor one entry per image, "auto" for a method
      other than "map", an unknown method, preset or config field, a config
      value of the wrong type, iterations < 1, a region outside the image, an
      unknown init or one the method cannot start from.
    """
    options = options or EngineOptions()
    plan = plan_batch(blurred_list, kernel_sizes, method, kernel_shape=kernel_shape, preset=preset,
                      iterations=iterations, seeds=seeds, config=config, color=color, finish=finish, region=region,
                      labels=labels, platform=_platform(options), init=init, init_config=init_config)
    return run_plan(plan, options=options)


__all__ = ["deblur", "deblur_batch", "DeblurResult", "plan_batch", "run_plan", "BatchPlan", "GroupPlan",
           "resolve_method", "finishing_step", "package_version", "COLOR_MODES", "AUTO_PRESET", "AUTO_METHOD",
           "FINISH_LAM"]
