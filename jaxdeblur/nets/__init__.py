"""Flax NNX networks of the DIP deblurring methods, used as pure functions.

Build a module once, `split_module` it, then `apply` it purely inside
jit / vmap / grad / scan (see `jaxdeblur.nets.functional`).
"""

from jaxdeblur.nets.functional import apply, split_module, torch_batch_norm, torch_conv, torch_linear
from jaxdeblur.nets.kernel_generator import KernelGenerator, RefinementNet
from jaxdeblur.nets.nonlocal_block import NonLocalBlock
from jaxdeblur.nets.skip_generator import SkipGenerator, concat_center_crop, upsample2x_bilinear

__all__ = [
    "KernelGenerator",
    "NonLocalBlock",
    "RefinementNet",
    "SkipGenerator",
    "apply",
    "concat_center_crop",
    "split_module",
    "torch_batch_norm",
    "torch_conv",
    "torch_linear",
    "upsample2x_bilinear",
]
