"""jaxdeblur: blind image deblurring in JAX/Flax.

Forward model: `blur`, `correlate`, `blur_spatially_varying` (true convolution
unless named otherwise). Blind deblurring: `deblur`, `deblur_batch` (DIP
methods and the classical MAP estimator). Trained networks: `restore` (the
shipped weights, `jaxdeblur.models.load`), `transfer_blur` (one pair's blur
applied to other sharp images, learned blur kernel space), `select_region` (the
window a CNN rates best for kernel estimation). `clear_caches` empties the
process-wide caches (loaded weights, compiled programs). Submodules:
kernels, metrics, io, deconv, data, losses, nets, estimate, engine, methods,
train, models.

Every name here is imported on first use (PEP 562), so `import jaxdeblur`
loads neither the methods, the models, the trainer nor the command line.
"""

from __future__ import annotations

import importlib
import pkgutil

# public name -> the module that defines it (imported on first access)
_LAZY = {
    "blur": "jaxdeblur.forward", "correlate": "jaxdeblur.forward", "blur_spatially_varying": "jaxdeblur.forward",
    "deblur": "jaxdeblur.api", "deblur_batch": "jaxdeblur.api", "DeblurResult": "jaxdeblur.api",
    "restore": "jaxdeblur.restoration", "transfer_blur": "jaxdeblur.blur_transfer",
    "clear_caches": "jaxdeblur.caches",
}
_SUBMODULES = frozenset(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def select_region(image, size, *, stride=None, weights: str = "region-cpu", scorer=None, kernel_size=None):
    """The window of `size` where a trained CNN expects the best kernel estimate: `models.region.select_region`.

    Args:
      image: (H, W) or (H, W, 3) float in [0, 1] (colour: scored on the luma).
      size: window side (int) or (h, w).
      stride: step between windows in pixels (default max(1, min(h, w) // 8)).
      weights: shipped weights to load (`jaxdeblur.models.load`), unless `scorer`.
      scorer: a `RegionScorer` to use instead (e.g. a freshly trained one).
      kernel_size: optional int or (kh, kw): the kernel to be estimated on the window, checked to fit in it.

    Returns:
      RegionChoice (box (x, y, w, h), its score, the score map and the window positions).
    """
    from jaxdeblur.models.region.inference import select_region as select

    return select(image, size, stride=stride, weights=weights, scorer=scorer, kernel_size=kernel_size)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


__all__ = ["blur", "correlate", "blur_spatially_varying", "deblur", "deblur_batch", "DeblurResult", "restore",
           "select_region", "transfer_blur", "clear_caches"]
__version__ = "0.1.0"
