"""Data: benchmarks and fixed test sets (`benchmarks`), training sources (`sources`), on-device
degradation (`degrade`) and the host pipeline (`pipeline`).

Everything public of these modules is re-exported here (`jaxdeblur.data.levin()`,
`jaxdeblur.data.ImageFolder(...)`, `jaxdeblur.data.DegradeConfig(...)`, `jaxdeblur.data.loader(...)`, ...)
except the function `degrade` itself: `jaxdeblur.data.degrade` stays the module, so call
`jaxdeblur.data.degrade.degrade(key, tiles, cfg)` (or `from jaxdeblur.data.degrade import degrade`).
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
from jaxdeblur.data.degrade import (
    KERNEL_KINDS,
    DegradeConfig,
    augment,
    blur_kernel_grid,
    field_weights,
    kernel_field,
    tile_size,
)
from jaxdeblur.data.pipeline import CentreTile, RandomTile, check_tiles_fit, eval_batches, loader
from jaxdeblur.data.sources import IMAGE_SUFFIXES, ImageFolder, PairedFolder, SamplePhotos, Source, Subset, split

__all__ = ["DeblurItem", "LEVIN_KERNEL_SIZES", "SAMPLE_PHOTOS", "LAI_CATEGORIES", "default_root", "lai",
           "lai_psnr_ssim", "levin", "levin_kernel_size", "sample_photos", "synthetic_set",
           "KERNEL_KINDS", "DegradeConfig", "augment", "blur_kernel_grid", "field_weights",
           "kernel_field", "tile_size",
           "CentreTile", "RandomTile", "check_tiles_fit", "eval_batches", "loader",
           "IMAGE_SUFFIXES", "ImageFolder", "PairedFolder", "SamplePhotos", "Source", "Subset", "split"]
