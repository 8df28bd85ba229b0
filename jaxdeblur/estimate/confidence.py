"""How far to trust one kernel estimate: a few cheap measurements and a flag (`kernel_confidence`).

For a gray blurred image y (H, W) and a kernel k (kh, kw):

- noise_sigma: the noise std of y (`jaxdeblur.noise.estimate_sigma`,
  Immerkaer's estimate, at least that of 8-bit quantisation); [0, 1] units;
- residual_ratio: how well the kernel explains y: x = y deconvolved with k
  (`jaxdeblur.deconv.hyper_laplacian`, exponent `confidence_alpha`, data
  weight `confidence_lam` x (`confidence_noise_ref` / noise_sigma)^2, i.e.
  Krishnan & Fergus's 2e3 at 1 % noise and proportionally more trust in the
  data for cleaner images; independent of the pipeline's non-blind step),
  then the RMS of blur(x, k) - y over the interior (a kernel size in from
  every border) divided by noise_sigma. A kernel that is the blur leaves
  about the noise or less (measured 0.44-1.25 for true kernels, see below);
  a wrong one leaves the edges it cannot explain;
- border_mass: the fraction of k's mass in the outermost ring of its support
  (a kernel cut off by a too small support leans on it);
- spread: exp(entropy of k) / (kh kw), the share of the support the kernel
  effectively covers (1: uniform over the support, a diffuse failure;
  1 / (kh kw): a delta). Reported, not used for the flag: a wide defocus blur
  legitimately covers much of its support.

The estimate is flagged (`confident` False, with the reasons) when
residual_ratio > `confidence_residual_max` (1.5) or border_mass >
`confidence_border_max` (0.25) (fields of `MapConfig`).

Calibration (experiments/map_confidence.py, results in
experiments/results/map_confidence_cpu.md), residual_ratio:

- synthetic: 96 x 96 crops of 4 skimage photos, 2 motion kernels (13 px),
  Gaussian noise 0.003 or 0.01, 8 cases each. True kernels 0.53-1.25 (0.003)
  and 0.83-0.94 (0.01), none flagged; wrong kernels (the truth rotated by 90
  degrees, another motion kernel, a Gaussian) flagged 23 / 24 at noise 0.003
  but only 12 / 24 at 0.01 (1.02-8.15: noise hides what a kernel of similar
  extent leaves);
- Levin et al.'s real blur (16 images, kernels 1, 3, 5, 7): true kernels
  0.44-1.08, none flagged; rot90 / the next Levin kernel flagged 15 / 16 and
  16 / 16; the MAP estimates ("default" preset, SelfDeblur's sizes) 0.87-3.11,
  4 / 16 flagged: exactly the four with the largest error ratios (2.60, 2.40,
  2.38, 1.53 in experiments/results/levin_map_cpu.md; the 12 passed: 1.07-1.45).
  Limitation: the true kernels of Levin's kernels 2 and 6 give 0.39-1.32, but
  those of kernels 4 and 8 give 2.23-13.2 (those captures are not one uniform
  convolution of the sharp image): there the flag says that the single-kernel
  model does not explain the image, whatever the estimate's quality (of the 32
  `kernel_size="auto"` estimates, experiments/map_auto_size.py, 13 are flagged:
  the 8 of kernels 4 and 8, and 5 of the hardest image, im4).

The residual says nothing against a kernel that is too small (a delta
explains y: 0.02-0.23): border_mass does, for estimates at a support too
small for the blur (the synthetic 13 px blurs estimated at 5 px: 0.32-0.60,
16 / 16 flagged; at 13 px: at most 0.15).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxdeblur.deconv import hyper_laplacian
from jaxdeblur.estimate.config import MapConfig
from jaxdeblur.forward import blur
from jaxdeblur.noise import estimate_sigma

@dataclasses.dataclass(frozen=True)
class Confidence:
    """The measurements of `kernel_confidence` (see the module docstring) and the flag.

    noise_sigma: [0, 1] units; residual_ratio, border_mass, spread: dimensionless;
    confident: no reason to doubt the estimate; reasons: one short phrase per test failed.
    """

    noise_sigma: float
    residual_ratio: float
    border_mass: float
    spread: float
    confident: bool
    reasons: tuple[str, ...]

    def record(self) -> dict:
        """JSON-able dict of every field."""
        return {"confident": self.confident, "reasons": list(self.reasons), "noise_sigma": self.noise_sigma,
                "residual_ratio": self.residual_ratio, "border_mass": self.border_mass, "spread": self.spread}

    def summary(self) -> str:
        """One line: 'low confidence in the kernel estimate: <reasons>' or 'confident'."""
        if self.confident:
            return f"confident (residual {self.residual_ratio:.2f} x noise)"
        return "low confidence in the kernel estimate: " + "; ".join(self.reasons)


def border_mass(kernel) -> float:
    """Fraction of a (kh, kw) kernel's (positive) mass on the outermost ring of its support (0 for kh or kw < 3)."""
    k = np.maximum(np.asarray(kernel, np.float64), 0.0)
    if min(k.shape) < 3 or k.sum() <= 0:
        return 0.0
    return float(1.0 - k[1:-1, 1:-1].sum() / k.sum())


def spread(kernel) -> float:
    """exp(entropy) of a (kh, kw) kernel's normalised positive taps divided by kh kw, in (0, 1]."""
    k = np.maximum(np.asarray(kernel, np.float64), 0.0)
    if k.sum() <= 0:
        return 1.0 / k.size
    p = k[k > 0] / k.sum()
    return float(np.exp(-(p * np.log(p)).sum()) / k.size)


def residual_ratio(gray, kernel, config: MapConfig, sigma: float | None = None) -> float:
    """RMS of blur(x, k) - y over y's interior (a kernel size in from each border), divided by the noise std,
    x = `gray` (H, W) deconvolved with `kernel` (kh, kw) by the hyper-Laplacian step (`confidence_alpha`, data
    weight `confidence_lam` x (`confidence_noise_ref` / sigma)^2); sigma: the noise std ([0, 1] units; default
    `estimate_sigma(gray)`). The interior is the whole image when the image is under 3 kernel sizes wide."""
    y = np.asarray(gray, np.float32)
    k = np.asarray(kernel, np.float32)
    sigma = estimate_sigma(y) if sigma is None else sigma
    lam = config.confidence_lam * (config.confidence_noise_ref / sigma) ** 2
    x = hyper_laplacian(y, k, lam=lam, alpha=config.confidence_alpha)
    reblurred = np.asarray(blur(x, jnp.asarray(k), "reflect"))
    kh, kw = k.shape
    rows = slice(kh, y.shape[0] - kh) if y.shape[0] >= 3 * kh else slice(None)
    cols = slice(kw, y.shape[1] - kw) if y.shape[1] >= 3 * kw else slice(None)
    residual = (reblurred - y)[rows, cols]
    return float(np.sqrt(np.mean(residual.astype(np.float64) ** 2)) / sigma)


def kernel_confidence(gray, kernel, config: MapConfig) -> Confidence:
    """The measurements and flag for `kernel` (kh, kw) (blur convention, sum 1) estimated from the gray (H, W)
    blurred image `gray` in [0, 1] (the luma of a colour image), with `config`'s thresholds."""
    sigma = estimate_sigma(gray)
    ratio = residual_ratio(gray, kernel, config, sigma)
    ring = border_mass(kernel)
    reasons = []
    if not np.isfinite(ratio) or ratio > config.confidence_residual_max:
        reasons.append(f"the kernel leaves {ratio:.2f} x the noise in the residual (> "
                       f"{config.confidence_residual_max:g}): it does not explain the blur")
    if ring > config.confidence_border_max:
        reasons.append(f"{100 * ring:.0f} % of the kernel lies on the border of its support (> "
                       f"{100 * config.confidence_border_max:.0f} %): the blur may be larger than the kernel size")
    return Confidence(noise_sigma=sigma, residual_ratio=ratio, border_mass=ring, spread=spread(kernel),
                      confident=not reasons, reasons=tuple(reasons))


__all__ = ["Confidence", "kernel_confidence", "residual_ratio", "border_mass", "spread"]
