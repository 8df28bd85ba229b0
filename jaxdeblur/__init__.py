"""jaxdeblur: blind image deblurring in JAX/Flax.

Forward model: `blur`, `correlate`, `blur_spatially_varying` (true convolution
unless named otherwise). Blind deblurring: `deblur`, `deblur_batch`.
Submodules: kernels, metrics, io, deconv, data, losses, nets, engine, methods.
"""

from jaxdeblur.api import DeblurResult, deblur, deblur_batch
from jaxdeblur.forward import blur, blur_spatially_varying, correlate

__all__ = ["blur", "correlate", "blur_spatially_varying", "deblur", "deblur_batch", "DeblurResult"]
__version__ = "0.1.0"
