"""Data: benchmarks and fixed test sets (`benchmarks`), more to come (sources, degradation, pipeline).

Everything of `benchmarks` is re-exported here: `jaxdeblur.data.levin()`, ...
"""

from jaxdeblur.data.benchmarks import (
    LAI_CATEGORIES,
    LEVIN_KERNEL_SIZES,
    SAMPLE_PHOTOS,
    DeblurItem,
    default_root,
    lai,
    lai_psnr_ssim,
    levin,
    levin_kernel_size,
    sample_photos,
    synthetic_set,
)

__all__ = ["DeblurItem", "LEVIN_KERNEL_SIZES", "SAMPLE_PHOTOS", "LAI_CATEGORIES", "default_root", "lai",
           "lai_psnr_ssim", "levin", "levin_kernel_size", "sample_photos", "synthetic_set"]
