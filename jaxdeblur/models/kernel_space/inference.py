"""A trained blur operator F and extractor G as ready functions of images: encode, blur, transfer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdeblur.color import rgb_to_gray
from jaxdeblur.models.kernel_space.config import KernelSpaceConfig
from jaxdeblur.nets.kernel_space import KernelSpace


def as_batch(images, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N, H, W, C) float32 of (H, W), (H, W, C) or (N, H, W, C) images, and the input's shape.

    Raises ValueError naming `name` for another rank, C not in (1, 3), an
    empty or a non-finite array.
    """
    x = np.asarray(images, np.float32)
    if x.ndim not in (2, 3, 4) or (x.ndim >= 3 and x.shape[-1] not in (1, 3)):
        raise ValueError(f"{name} must be (H, W), (H, W, C) or (N, H, W, C) with C in (1, 3), got {x.shape}")
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"{name} must be non-empty and finite")
    x4 = x[..., None] if x.ndim == 2 else x
    return (x4[None] if x4.ndim == 3 else x4), x.shape


def _with_channels(x4: np.ndarray, channels: int) -> np.ndarray:
    """(N, H, W, C) images with `channels` channels: RGB -> gray by luma (BT.601), gray -> three equal ones."""
    if x4.shape[-1] == channels:
        return x4
    if channels == 1:
        return np.asarray(rgb_to_gray(x4))[..., None]
    return np.repeat(x4, channels, axis=-1)


class KernelSpaceModel:
    """Calls a trained `KernelSpace` on images (float in [0, 1], (H, W), (H, W, C) or (N, H, W, C)).

    - `encode(sharp, blurred)` -> code maps (N, ceil(H/s), ceil(W/s), code_dim) (G);
    - `blur(sharp, code)` -> images re-blurred with the coded blur (F), clamped to [0, 1];
    - `transfer(sharp_a, blurred_a, sharp_b)` (also `__call__`) -> sharp_b blurred like pair a.

    Channels: a gray model (config.channels == 1) handles colour images
    channel by channel (codes then carry a channel axis folded into the
    batch: N * C maps, channel-major per image); an RGB model sees a gray
    image as three equal channels and returns their mean.
    """

    def __init__(self, model: KernelSpace, config: KernelSpaceConfig):
        self.config = config
        self.stride, self.code_dim = model.stride, model.code_dim
        graphdef, state = nnx.split(model)
        self._encode = jax.jit(lambda s, b: nnx.merge(graphdef, state).encode(s, b))
        self._blur = jax.jit(lambda s, c: jnp.clip(nnx.merge(graphdef, state).blur(s, c), 0.0, 1.0))

    def code_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """The code map of one H x W image (per channel for a gray model on colour images)."""
        s = self.stride
        return (-(-height // s), -(-width // s), self.code_dim)

    def _to_model(self, x4: np.ndarray) -> np.ndarray:
        """(N, H, W, C) -> the model's channels: (N * C, H, W, 1) for a gray model, 3 channels for RGB."""
        n, h, w, c = x4.shape
        if self.config.channels == 1 and c > 1:
            return x4.transpose(0, 3, 1, 2).reshape(n * c, h, w, 1)
        if self.config.channels == 3 and c == 1:
            return np.repeat(x4, 3, axis=-1)
        return x4

    def _from_model(self, y: np.ndarray, n: int, c: int) -> np.ndarray:
        if self.config.channels == 1 and c > 1:
            h, w = y.shape[1:3]
            return y.reshape(n, c, h, w).transpose(0, 2, 3, 1)
        if self.config.channels == 3 and c == 1:
            return y.mean(-1, keepdims=True)
        return y

    def encode(self, sharp, blurred) -> np.ndarray:
        """G: the code maps of pairs of equal shape (see the class docstring for colour images)."""
        s4, _ = as_batch(sharp, "sharp")
        b4, _ = as_batch(blurred, "blurred")
        if s4.shape != b4.shape:
            raise ValueError(f"sharp {np.shape(sharp)} and blurred {np.shape(blurred)} must have the same shape")
        return np.asarray(self._encode(jnp.asarray(self._to_model(s4)), jnp.asarray(self._to_model(b4))))

    def blur(self, sharp, code) -> np.ndarray:
        """F: sharp images re-blurred by code maps (one per image, or one for all), same shape as `sharp`.

        A code map of another grid size than the image's (a code taken from
        an image of another size) is resized bilinearly to the image's grid.
        """
        s4, shape = as_batch(sharp, "sharp")
        n, h, w, c = s4.shape
        x = self._to_model(s4)
        code = np.asarray(code, np.float32)
        code = code[None] if code.ndim == 3 else code
        if code.ndim != 4 or code.shape[-1] != self.code_dim or code.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"code must be (ch, cw, {self.code_dim}) or (M, ch, cw, {self.code_dim}) with M = 1 or "
                             f"{x.shape[0]} (one per image{' and channel' if x.shape[0] != n else ''}), "
                             f"got {code.shape}")
        grid = self.code_shape(h, w)
        code = jnp.broadcast_to(jnp.asarray(code), (x.shape[0], *code.shape[1:]))
        if code.shape[1:3] != grid[:2]:
            code = jax.image.resize(code, (x.shape[0], *grid), "linear")
        out = np.asarray(self._blur(jnp.asarray(x), code))
        return self._from_model(out, n, c).reshape(shape)

    def transfer(self, sharp_a, blurred_a, sharp_b) -> np.ndarray:
        """sharp_b blurred with the blur of the pairs (sharp_a, blurred_a): F(sharp_b, G(sharp_a, blurred_a)).

        Pair i's blur goes to image i of sharp_b (equal batch sizes), or one
        pair's blur to every image of sharp_b. Sizes may differ between a and
        b (the code map is resized to b's grid: a spatially varying blur is
        stretched with the image); channels too: a colour pair is taken as
        its luma for gray images, a gray pair as three equal channels for
        colour ones.
        """
        a4, _ = as_batch(sharp_a, "sharp_a")
        y4, _ = as_batch(blurred_a, "blurred_a")
        b4, _ = as_batch(sharp_b, "sharp_b")
        if a4.shape != y4.shape:
            raise ValueError(f"sharp_a {np.shape(sharp_a)} and blurred_a {np.shape(blurred_a)} must have the same "
                             "shape")
        if a4.shape[0] not in (1, b4.shape[0]):
            raise ValueError(f"sharp_a {np.shape(sharp_a)} must hold one pair or as many as sharp_b "
                             f"{np.shape(sharp_b)}")
        if a4.shape[-1] != b4.shape[-1]:
            a4, y4 = (_with_channels(x, b4.shape[-1]) for x in (a4, y4))
        code = self.encode(a4, y4)  # (N_a, ...) or, per channel, (N_a * C, ...)
        return self.blur(sharp_b, np.tile(code, (b4.shape[0] // a4.shape[0], 1, 1, 1)))

    __call__ = transfer
