"""Classical blind MAP kernel estimation (Pan et al.'s L0 intensity + gradient prior), a fast CPU method.

- `estimate_kernels(blurred, kernel_size, ...)`: kernels of one gray image or
  a batch of same-size images in one jitted, vmapped call (`KernelEstimate`).
- `map_deblur(blurred, kernel_size, ...)` / `map_deblur_batch`: the blind
  method for users: the kernel (from the luma for colour input) and the image
  restored by the non-blind step `deconvolve` (learned plug-and-play with a denoiser, or
  hyper-Laplacian) (`MapResult`).
- `MapConfig`, `PRESETS` ("default" = tuned, "paper" = Pan et al.'s values, "fast",
  "tiny"), `resolve_config`: every number of the method.
- `edge_contrast`: the flat-image check (windows below `MIN_EDGE_CONTRAST` are refused).
- kernel_size="auto" (`support`: `auto_kernel_sizes`, `AutoSize`) and the confidence of an estimate
  (`confidence`: `kernel_confidence`, `Confidence`); `map_deblur*` put both in each result's extras.
"""

from jaxdeblur.estimate.confidence import Confidence, kernel_confidence
from jaxdeblur.estimate.config import NONBLIND, PRESETS, MapConfig, resolve_config
from jaxdeblur.estimate.deblur import MapResult, deconvolve, map_deblur, map_deblur_batch
from jaxdeblur.estimate.map_estimator import MIN_EDGE_CONTRAST, KernelEstimate, edge_contrast, estimate_kernels
from jaxdeblur.estimate.support import AutoSize, auto_kernel_sizes

__all__ = ["MapConfig", "PRESETS", "resolve_config", "KernelEstimate", "estimate_kernels", "edge_contrast",
           "MIN_EDGE_CONTRAST", "MapResult", "NONBLIND", "deconvolve", "map_deblur", "map_deblur_batch", "AutoSize",
           "auto_kernel_sizes", "Confidence", "kernel_confidence"]
