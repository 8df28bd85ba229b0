"""jaxdeblur: blind image deblurring in JAX/Flax.

Forward model: `blur`, `correlate`, `blur_spatially_varying` (true convolution
unless named otherwise). Blind deblurring: `deblur`, `deblur_batch` (DIP
methods and the classical MAP estimator). Trained networks: `restore` (the
shipped weights, `jaxdeblur.models.load`), `transfer_blur` (one pair's blur
applied to other sharp images, learned blur kernel space), `select_region` (the
window a CNN rates best for kernel estimation). Submodules:
kernels, metrics, io, deconv, data, losses, nets, estimate, engine, methods,
train, models.
"""

from jaxdeblur.api import DeblurResult, deblur, deblur_batch
from jaxdeblur.blur_transfer import transfer_blur
from jaxdeblur.forward import blur, blur_spatially_varying, correlate
from jaxdeblur.restoration import restore


def select_region(image, size, *, stride=None, weights: str = "region-cpu", scorer=None, kernel_size=None):
    """The window of `size` where a trained CNN expects the best kernel estimate: `models.region.select_region`."""
    from jaxdeblur.models.region.inference import select_region as select

    return select(image, size, stride=stride, weights=weights, scorer=scorer, kernel_size=kernel_size)


__all__ = ["blur", "correlate", "blur_spatially_varying", "deblur", "deblur_batch", "DeblurResult", "restore",
           "select_region", "transfer_blur"]
__version__ = "0.1.0"
