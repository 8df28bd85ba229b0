"""A trained UFPNet as a ready function: images in; the restoration, the kernel field and the sigma map out."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdeblur.models.ufpnet.config import UFPNetConfig
from jaxdeblur.models.ufpnet.task import EVAL_KEY_SEED
from jaxdeblur.nets.ufpnet import UFPNet, restore


@functools.partial(jax.jit, static_argnames=("graphdef", "uncertainty", "rows_per_chunk"))
def _restore(graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array, key: jax.Array, *, uncertainty: bool,
             rows_per_chunk: int | None):
    """`restore` of the model (graphdef, state): one compiled program per network structure and image shape,
    shared by every restorer of that structure (the weights are an argument)."""
    return restore(nnx.merge(graphdef, state), x, key, uncertainty=uncertainty, rows_per_chunk=rows_per_chunk)


@dataclasses.dataclass(frozen=True)
class UFPNetResult:
    """What `UFPNetRestorer` returns (host float32 arrays).

    Attributes:
      restored: the restoration, the input's shape, in [0, 1].
      kernels: the per-pixel kernels (H, W, kh, kw), or (N, H, W, kh, kw) for
        a batch; non-negative, each sums to 1 (true-convolution orientation,
        `jaxdeblur.forward.blur_spatially_varying` re-blurs with them).
      sigma: the code uncertainty per pixel (H, W) or (N, H, W), in [0, 1).
    """

    restored: np.ndarray
    kernels: np.ndarray
    sigma: np.ndarray


class UFPNetRestorer:
    """Calls a UFPNet on images: (H, W), (H, W, C) or (N, H, W, C) float in [0, 1] -> `UFPNetResult`.

    A gray model (config.channels == 1) restores colour images channel by
    channel with one kernel field estimated from the channels' mean; an RGB
    model sees a gray image as three equal channels and returns their mean.
    The whole image is processed at once (no tiles): the kernel field and
    its code decoding run in row chunks (`rows_per_chunk`, see
    `jaxdeblur.nets.kernel_code.kernel_field`), so memory grows with the
    image as the field itself does (kh * kw floats per pixel, 1.3 GB at
    1280 x 720 for 19 x 19 kernels; `experiments/bench_ufpnet_memory.py`).

    Call options:
      key: PRNG key of the code noise eps (default: the fixed key
        `EVAL_KEY_SEED`, as in training's evaluation; the reference samples
        it at test time too).
      uncertainty: False switches the uncertainty branch off (sigma = 0: the
        codes are the predicted means).
    """

    estimates_kernels = True  # its results carry a kernel field (`jaxdeblur restore` draws it)

    def __init__(self, model: UFPNet, config: UFPNetConfig, *, rows_per_chunk: int | None = None):
        self.config = config
        self.rows_per_chunk = rows_per_chunk
        self._graphdef, self._state = nnx.split(model)

    def __call__(self, images, *, key: jax.Array | None = None, uncertainty: bool = True) -> UFPNetResult:
        x = np.asarray(images, np.float32)
        if x.ndim not in (2, 3, 4) or (x.ndim >= 3 and x.shape[-1] not in (1, 3)):
            raise ValueError(f"images must be (H, W), (H, W, C) or (N, H, W, C) with C in (1, 3), got {x.shape}")
        if x.size == 0 or not np.isfinite(x).all():
            raise ValueError("images must be non-empty and finite")
        key = jax.random.key(EVAL_KEY_SEED) if key is None else key
        x4 = x[..., None] if x.ndim == 2 else x
        batched = x4.ndim == 4
        x4 = x4 if batched else x4[None]
        rgb_model_on_gray = self.config.channels == 3 and x4.shape[-1] == 1
        x4 = jnp.repeat(jnp.asarray(x4), 3, axis=-1) if rgb_model_on_gray else jnp.asarray(x4)
        out = _restore(self._graphdef, self._state, x4, key, uncertainty=bool(uncertainty),
                       rows_per_chunk=self.rows_per_chunk)
        restored = np.asarray(out.restored)
        if rgb_model_on_gray:
            restored = restored.mean(-1, keepdims=True)
        kernels, sigma = np.asarray(out.kernels), np.asarray(out.sigma)
        if not batched:
            kernels, sigma = kernels[0], sigma[0]
        return UFPNetResult(restored=restored.reshape(x.shape), kernels=kernels, sigma=sigma)
