"""jaxdeblur: blind image deblurring in JAX/Flax.

Forward model: `blur`, `correlate`, `blur_spatially_varying` (true convolution
unless named otherwise). Blind deblurring: `deblur`, `deblur_batch` (DIP
methods and the classical MAP estimator). Trained networks: `restore` (the
shipped weights, `jaxdeblur.models.load`). Submodules: kernels, metrics, io,
deconv, data, losses, nets, estimate, engine, methods, train, models.
"""

from jaxdeblur.api import DeblurResult, deblur, deblur_batch
from jaxdeblur.forward import blur, blur_spatially_varying, correlate
from jaxdeblur.restoration import restore

__all__ = ["blur", "correlate", "blur_spatially_varying", "deblur", "deblur_batch", "DeblurResult", "restore"]
__version__ = "0.1.0"
