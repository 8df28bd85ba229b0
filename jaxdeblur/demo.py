"""`make demo`: blind deblurring of a photo that ships with scikit-image.

The photo (scikit-image's "camera") is blurred by a fixed motion kernel from
`jaxdeblur.kernels.motion` ('valid' blur plus 1% Gaussian noise), deblurred
blindly (method "auto": on a CPU the MAP kernel + the learned non-blind step,
on an accelerator SelfDeblur), and scored against the known sharp image: ISNR (dB: the gain in
PSNR over the blurred input, both aligned by Levin's sub-pixel shift search,
since a blind estimate is only defined up to a shift), aligned PSNR and SSIM,
and the kernel similarity, for both the generator's image and the
finishing step's (the blurred input deconvolved with the estimated kernel).
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

from jaxdeblur.api import deblur
from jaxdeblur.data import sample_photos, synthetic_set
from jaxdeblur.kernels import motion
from jaxdeblur.metrics import aligned_psnr_ssim, isnr, kernel_similarity
from jaxdeblur.outputs import check_writable, deblur_files, plan_outputs, write_deblur_outputs

DEMO_PHOTO = "camera"
DEMO_SIZE = 128
DEMO_KERNEL_SIZE = 13
DEMO_KERNEL_SEED = 2
DEMO_NOISE = 0.01
DEMO_NAME = "demo"


def demo_problem():
    """(blurred (h, w), sharp crop aligned with it (h, w), true kernel) of the demo."""
    photos = sample_photos((DEMO_PHOTO,), size=DEMO_SIZE)
    kernel = np.asarray(motion(jax.random.key(DEMO_KERNEL_SEED), DEMO_KERNEL_SIZE))
    item = synthetic_set(photos, [kernel], noise_sigma=DEMO_NOISE, seed=0, mode="valid")[0]
    return item.blurred, item.sharp, kernel


def run_demo(out: str | Path, *, method: str = "auto", preset: str = "auto", iterations: int | None = None,
             seed: int = 0, overwrite: bool = False, options=None) -> dict:
    """Runs the demo, writes its outputs to `out`, returns a report (numbers and paths).

    method / preset / iterations as `jaxdeblur.deblur` ("auto": the MAP pipeline on a CPU; iterations are
    DIP iterations, or MAP alternations per scale).

    Raises OutputExistsError (before any work) when `out` holds an earlier
    demo's files, unless overwrite. options: `EngineOptions` for the run.
    """
    files = plan_outputs([Path(DEMO_NAME)], out, files=deblur_files(finish=True, region=False))[0]
    check_writable([files], overwrite=overwrite)
    blurred, sharp, kernel = demo_problem()
    t0 = time.perf_counter()
    result = deblur(blurred, DEMO_KERNEL_SIZE, method, preset=preset, iterations=iterations, seed=seed,
                    options=options)
    wall = time.perf_counter() - t0
    psnr_est, ssim_est, _ = aligned_psnr_ssim(result.image, sharp, crop=8)
    psnr_dec, ssim_dec, _ = aligned_psnr_ssim(result.deconvolved, sharp, crop=8)
    psnr_blur, ssim_blur, _ = aligned_psnr_ssim(blurred, sharp, crop=8)
    report = {
        "photo": f"skimage.data.{DEMO_PHOTO}() resized to {DEMO_SIZE}", "kernel_size": DEMO_KERNEL_SIZE,
        "noise_sigma": DEMO_NOISE, "method": result.method, "preset": result.preset, "seed": seed,
        "iterations": len(result.history["loss"]) if "loss" in result.history else result.config.iterations,
        # The estimate is known up to a shift (the kernel can absorb one), so the
        # ISNR compares aligned PSNRs (Levin's protocol for both images).
        "isnr_db": float(psnr_est - psnr_blur),
        "isnr_deconvolved_db": float(psnr_dec - psnr_blur),
        "isnr_unaligned_db": float(isnr(result.image, blurred, sharp)),
        "aligned_psnr_db": {"blurred": float(psnr_blur), "restored": float(psnr_est),
                            "deconvolved": float(psnr_dec)},
        "aligned_ssim": {"blurred": float(ssim_blur), "restored": float(ssim_est), "deconvolved": float(ssim_dec)},
        "kernel_similarity": float(kernel_similarity(result.kernel, kernel)),
        "wall_s": round(wall, 1), "device": result.device,
    }
    report["paths"] = write_deblur_outputs(files, blurred, result, extra=dict(report),
                                           figure={"sharp": sharp, "true_kernel": kernel})
    return report
