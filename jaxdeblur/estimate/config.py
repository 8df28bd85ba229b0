"""Settings of the classical MAP kernel estimator: one frozen dataclass and its presets.

Units: images are intensities in [0, 1]; the data term is the SUM of squared
residuals over pixels (not the mean), as in Pan et al.'s code, so the weights
keep their published scale.

Where the values come from:

- Pan, Hu, Su & Yang 2014 / Pan, Sun, Pfister & Yang 2016 (the L0 intensity
  and gradient prior, and their public MATLAB code, read for facts): scale
  factor sqrt(0.5), coarsest kernel about 5 px, 5 latent/kernel alternations
  per scale, lambda 4e-3 divided by 1.1 after every alternation down to 1e-4,
  splitting weights from 2 lambda up to 1e5 by a factor 2, kernel Tikhonov
  weight 2 solved by 20 conjugate-gradient steps, taps under 5% of the peak
  zeroed, 8-connected kernel components holding less than 10% of the mass
  removed, the edge selection of Cho & Lee (a gradient threshold that keeps at
  least 20 px per kernel pixel width in each of 4 orientation bins, divided by
  1.1 per alternation). The "paper" preset holds exactly these values (with
  the intensity prior off, as in Pan's code for natural images).
- Tuned on 16 of the 32 Levin images (experiments/levin_map.py, the tuning
  set named there; the other 16 held out; results and the values tried in
  experiments/results/levin_map_cpu.md): the defaults differ from "paper" in
  the kernel's Tikhonov weight, 0.5 x the blurred input's gradient energy
  (about 15-19 in absolute units on a 255 x 255 Levin image, where Pan's
  absolute 2 regularised too little) and `component_mass` (0.05 instead of 0.1).
- This project's own choices (documented in `jaxdeblur.estimate.map_estimator`):
  one joint continuation for both splitting weights (Pan's text code nests an
  intensity loop around the gradient loop), a kernel-independent edge taper
  of the padded latent domain, linear (zero-padded) gradient correlations for
  the kernel step, orientation bins centred on the axes.
"""

from __future__ import annotations

import dataclasses
import math

from jaxdeblur.config import resolve


NONBLIND = ("learned", "hyper_laplacian")


@dataclasses.dataclass(frozen=True)
class MapConfig:
    """Every number of the MAP kernel estimator and of its non-blind step.

    Pyramid:
      iterations: latent/kernel alternations per scale (a `lax.scan`).
      scale_factor: image (and kernel) size ratio between consecutive scales, in (0, 1).
      coarsest_kernel: scales are added while the kernel there is at least
        this wide (px); the number of scales is
        1 + max(0, floor(log(coarsest_kernel / min(kh, kw)) / log(scale_factor))).
    Latent step (L0 prior, half-quadratic splitting with FFT solves):
      lambda_grad: weight of ||grad x||_0 (> 0), decayed per alternation.
      lambda_intensity: weight of ||x||_0 (>= 0; 0 turns the intensity prior off).
      lambda_decay: both lambdas are divided by this after every alternation (>= 1) ...
      lambda_min: ... but not below this (Pan: 1e-4).
      splitting_rate: factor between consecutive splitting weights (> 1).
      splitting_max: the gradient splitting weight grows from 2 lambda_grad to
        this; the number of splitting steps is fixed from the initial lambda.
    Kernel step (least squares on image gradients, Fourier domain):
      kernel_reg: Tikhonov weight gamma of gamma ||k||^2, the same at every
        scale: when kernel_reg_relative, in units of the gradient energy
        sum |grad y|^2 of the blurred input at full resolution (so one value
        suits any image size and contrast); else absolute, in the data term's
        sum-of-squares units (Pan et al.: 2).
      kernel_reg_relative: see kernel_reg.
      kernel_cg_iterations: conjugate-gradient steps on the normal equations.
      kernel_threshold: taps below this fraction of the peak are zeroed.
      component_mass: 8-connected components of the support holding less than
        this fraction of the kernel's mass are removed.
      edge_selection: keep only the strongest latent gradients for the kernel
        step (Cho & Lee's thresholding, as in Pan's code).
      edge_pixels: the initial threshold keeps at least edge_pixels * (coarsest
        kernel width) pixels in each of 4 gradient orientation bins.
      edge_decay: the threshold is divided by this after every alternation.
    Non-blind step (`jaxdeblur.estimate.deblur.deconvolve`):
      nonblind: "learned": plug-and-play HQS with a trained denoiser
        (`jaxdeblur.deconv.pnp_hqs`; the caller passes the denoiser, as
        method="map" of `jaxdeblur.deblur` does with the shipped one), or
        "hyper_laplacian" (`jaxdeblur.deconv.hyper_laplacian`, no weights).
      deconv_lam, deconv_alpha: the hyper-Laplacian's data weight and prior exponent.
      denoiser: the weights of the learned step (a shipped name, or a folder an export wrote).
      pnp_iterations, pnp_sigma_start, pnp_noise_sigma, pnp_lam: the HQS iterations, the first denoiser
        std, the noise std assumed (the last denoiser std; [0, 1] units) and the prior weight (DPIR's 0.23).
      pnp_noise_estimate: the noise std is measured on each image (Immerkaer's estimate,
        `jaxdeblur.estimate.confidence.noise_sigma`) and pnp_noise_sigma is its floor; False: pnp_noise_sigma
        is used as it is. Measured (experiments/results/levin_pipeline_cpu.md): with the TRUE kernel, 1 % noise
        deconvolved as 0.5 % loses 5 dB and Levin's nearly noise-free inputs (measured 0.2 %) gain 0.7 dB at a
        0.5 % floor; with MAP's estimated kernels the kernel's error acts as noise and a 1 % floor is best
        (Levin tuning half: 0.5 %: worse by 1-3 dB on some images; 1 %: 31.73 dB; 1.5 %: 31.51; 2 %: 30.97), hence
        the default floor 0.01.
    """

    iterations: int = 5
    scale_factor: float = math.sqrt(0.5)
    coarsest_kernel: int = 5
    lambda_grad: float = 4e-3
    lambda_intensity: float = 0.0
    lambda_decay: float = 1.1
    lambda_min: float = 1e-4
    splitting_rate: float = 2.0
    splitting_max: float = 1e5
    kernel_reg: float = 0.5
    kernel_reg_relative: bool = True
    kernel_cg_iterations: int = 20
    kernel_threshold: float = 0.05
    component_mass: float = 0.05
    edge_selection: bool = True
    edge_pixels: int = 20
    edge_decay: float = 1.1
    deconv_lam: float = 2e3
    deconv_alpha: float = 2.0 / 3.0
    nonblind: str = "learned"
    denoiser: str = "denoiser-cpu"
    pnp_iterations: int = 16
    pnp_sigma_start: float = 49.0 / 255.0
    pnp_noise_sigma: float = 0.01
    pnp_noise_estimate: bool = True
    pnp_lam: float = 0.23
    # kernel_size="auto" (`jaxdeblur.estimate.support`): the first pass's support is
    # odd(min(H, W) * auto_support_fraction) in [auto_support_min, auto_support_max] px; the final support is
    # the first kernel's centred extent holding auto_mass of its mass (components under auto_component_mass of
    # the mass dropped) + auto_margin px per side, odd.
    auto_support_fraction: float = 1.0 / 6.0
    auto_support_min: int = 5
    auto_support_max: int = 61
    auto_mass: float = 0.99
    auto_component_mass: float = 0.1
    auto_margin: int = 1
    # The confidence of each estimate (`jaxdeblur.estimate.confidence`, calibrated there): flagged when the
    # residual of the hyper-Laplacian deconvolution (exponent confidence_alpha, data weight confidence_lam at a
    # noise std of confidence_noise_ref, scaled by (confidence_noise_ref / the image's noise std)^2), reblurred,
    # exceeds confidence_residual_max x the noise std, or more than confidence_border_max of the kernel's mass
    # lies on the outer ring of its support.
    confidence_lam: float = 2e3
    confidence_noise_ref: float = 0.01
    confidence_alpha: float = 2.0 / 3.0
    confidence_residual_max: float = 1.5
    confidence_border_max: float = 0.25

    def __post_init__(self):
        checks = {
            "iterations": self.iterations >= 1,
            "scale_factor": 0 < self.scale_factor < 1,
            "coarsest_kernel": self.coarsest_kernel >= 1,
            "lambda_grad": self.lambda_grad > 0,
            "lambda_intensity": self.lambda_intensity >= 0,
            "lambda_decay": self.lambda_decay >= 1,
            "lambda_min": self.lambda_min >= 0,
            "splitting_rate": self.splitting_rate > 1,
            "splitting_max": self.splitting_max > 2 * self.lambda_grad,
            "kernel_reg": self.kernel_reg > 0,
            "kernel_cg_iterations": self.kernel_cg_iterations >= 1,
            "kernel_threshold": 0 <= self.kernel_threshold < 1,
            "component_mass": 0 <= self.component_mass < 1,
            "edge_pixels": self.edge_pixels >= 1,
            "edge_decay": self.edge_decay >= 1,
            "deconv_lam": self.deconv_lam > 0,
            "deconv_alpha": 0 < self.deconv_alpha <= 1,
            "nonblind": self.nonblind in NONBLIND,
            "pnp_iterations": self.pnp_iterations >= 1,
            "pnp_noise_sigma": 0 < self.pnp_noise_sigma <= self.pnp_sigma_start,
            "pnp_lam": self.pnp_lam > 0,
            "auto_support_fraction": 0 < self.auto_support_fraction <= 1,
            "auto_support_min": self.auto_support_min >= 1,
            "auto_support_max": self.auto_support_max >= self.auto_support_min,
            "auto_mass": 0 < self.auto_mass <= 1,
            "auto_component_mass": 0 <= self.auto_component_mass < 1,
            "auto_margin": self.auto_margin >= 0,
            "confidence_lam": self.confidence_lam > 0,
            "confidence_noise_ref": self.confidence_noise_ref > 0,
            "confidence_alpha": 0 < self.confidence_alpha <= 1,
            "confidence_residual_max": self.confidence_residual_max > 0,
            "confidence_border_max": 0 < self.confidence_border_max <= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ValueError(f"invalid MapConfig value(s): {values} (see the MapConfig docstring for the ranges)")

    @property
    def splitting_steps(self) -> int:
        """Splitting (HQS) steps per latent estimate: 2 lambda_grad * rate^t stays below splitting_max."""
        return math.ceil(math.log(self.splitting_max / (2 * self.lambda_grad)) / math.log(self.splitting_rate))


PRESETS = {
    # The tuned defaults (see the module docstring).
    "default": MapConfig(),
    # Pan et al.'s values (see the module docstring).
    "paper": MapConfig(kernel_reg=2.0, kernel_reg_relative=False, component_mass=0.1),
    # About 2x cheaper: 3 alternations per scale, splitting weights grown by 4 per step.
    "fast": MapConfig(iterations=3, splitting_rate=4.0),
    # For tests: 2 alternations per scale, coarse continuation, few CG steps, the weight-free non-blind step.
    "tiny": MapConfig(iterations=2, splitting_rate=8.0, kernel_cg_iterations=10, nonblind="hyper_laplacian"),
}


def resolve_config(preset: str = "default", config: MapConfig | dict | None = None) -> MapConfig:
    """`PRESETS[preset]`, replaced by `config` (a MapConfig) or overridden by it (a dict of field values)."""
    return resolve(PRESETS, preset, config)


__all__ = ["MapConfig", "NONBLIND", "PRESETS", "resolve_config"]
