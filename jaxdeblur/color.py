"""Colour conversions: MATLAB's studio-range YCbCr and BT.601 luma.

`rgb_to_ycbcr` / `ycbcr_to_rgb` reproduce MATLAB's ``rgb2ycbcr`` /
``ycbcr2rgb`` for double input in [0, 1] (ITU-R BT.601, *studio* range):

    Y  = (16  +  65.481 R + 128.553 G +  24.966 B) / 255   in [16/255, 235/255]
    Cb = (128 -  37.797 R -  74.203 G + 112.000 B) / 255   in [16/255, 240/255]
    Cr = (128 + 112.000 R -  93.786 G -  18.214 B) / 255   in [16/255, 240/255]

and the exact inverse matrix. Lai et al.'s benchmark (and SelfDeblur's colour
scripts) measure PSNR/SSIM on this Y channel.

A known trap: OpenCV's ``cv2.cvtColor(..., COLOR_RGB2YCrCb)`` is FULL range
(Y = 0.299 R + 0.587 G + 0.114 B in [0, 1], chroma centred at 0.5) and orders
the chroma channels Cr, Cb; its Y is `rgb_to_gray`, not `rgb_to_y`, and PSNRs
computed on it differ from the published ones.

The conversions take arrays (..., 3) (RGB last), NumPy or JAX, any leading
shape, and are pure jnp (jit/vmap/grad-able). Outputs are float32.

`split_color` / `merge_color` are the host-side (NumPy) colour handling of
blind deblurring (`jaxdeblur.deblur`): which channels a method fits (the luma,
or all three with mode "rgb") and how the fitted channels go back into the
input's layout.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

# MATLAB's rgb2ycbcr matrix (rows Y, Cb, Cr; for RGB in [0, 255]) and offset.
_YCBCR_MATRIX = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64) / 255.0
# For values in [0, 1]: ycc = _FWD @ rgb + offset; rgb = _INV @ (ycc - offset).
_FWD = (_YCBCR_MATRIX / 255.0).astype(np.float32)
_INV = np.linalg.inv(_YCBCR_MATRIX / 255.0).astype(np.float32)
COLOR_MODES = ("y", "rgb")  # what a blind method fits: the luma, or every RGB channel
# ITU-R BT.601 luma weights (full range), as PIL's "L" conversion and OpenCV's Y.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _check_rgb(x, name: str) -> jnp.ndarray:
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3) with the 3 channels last, got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must be floating point in [0, 1], got dtype {x.dtype}; divide 8-bit data by 255")
    return x.astype(jnp.float32)


def _mix(x: jnp.ndarray, matrix: np.ndarray) -> jnp.ndarray:
    """x (..., 3) times matrix (m, 3) transposed -> (..., m).

    An elementwise product and sum rather than a matmul, so accelerators do
    not run it at reduced (TF32/bf16) precision.
    """
    return jnp.sum(x[..., None, :] * jnp.asarray(matrix), axis=-1)


def rgb_to_ycbcr(x) -> jnp.ndarray:
    """MATLAB ``rgb2ycbcr`` for double RGB in [0, 1]: (..., 3) RGB -> (..., 3) YCbCr.

    Studio range: white -> (235, 128, 128) / 255, black -> (16, 128, 128) / 255.
    Not OpenCV's full-range YCrCb (see the module docstring).

    Args:
      x: RGB (..., 3), floating point in [0, 1].

    Returns:
      YCbCr (..., 3) float32.
    """
    x = _check_rgb(x, "x")
    return _mix(x, _FWD) + jnp.asarray(_YCBCR_OFFSET, dtype=jnp.float32)


def ycbcr_to_rgb(x) -> jnp.ndarray:
    """MATLAB ``ycbcr2rgb`` for double YCbCr: (..., 3) YCbCr -> (..., 3) RGB.

    The exact inverse of `rgb_to_ycbcr` (round trip within float32 rounding);
    values are not clipped, so out-of-gamut YCbCr gives RGB outside [0, 1].

    Args:
      x: YCbCr (..., 3), floating point.

    Returns:
      RGB (..., 3) float32.
    """
    x = _check_rgb(x, "x")
    return _mix(x - jnp.asarray(_YCBCR_OFFSET, dtype=jnp.float32), _INV)


def rgb_to_y(x) -> jnp.ndarray:
    """The Y channel of MATLAB ``rgb2ycbcr``: (..., 3) RGB in [0, 1] -> (...) in [16/255, 235/255].

    Args:
      x: RGB (..., 3), floating point in [0, 1].

    Returns:
      Y (...) float32: the channel axis is dropped; use ``rgb_to_y(x)[..., None]`` to keep it.
    """
    return rgb_to_ycbcr(x)[..., 0]


def rgb_to_gray(x) -> jnp.ndarray:
    """Full-range ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B: (..., 3) -> (...).

    The weights of PIL's "L" conversion and OpenCV's gray, computed in float
    (no 8-bit rounding). Maps [0, 1] onto [0, 1], unlike the studio-range
    `rgb_to_y`.

    Args:
      x: RGB (..., 3), floating point.

    Returns:
      luma (...) float32.
    """
    x = _check_rgb(x, "x")
    return _mix(x, _LUMA[None])[..., 0]


def split_color(x: np.ndarray, *, mode: str = "y") -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The channels a blind method fits, the chroma kept aside, and a record of both.

    Args:
      x: image (H, W), (H, W, 1) or (H, W, 3), float32 in [0, 1].
      mode: "y": a colour image's studio-range luma (`rgb_to_ycbcr`), its
        chroma kept from the input; "rgb": all three channels. A grey input
        is one channel either way (with a note for "rgb").

    Returns:
      (fitted (H, W, C) with C = 1 or 3, chroma (H, W, 2) or None, record): the
      record says the input's kind ("input": "gray" | "rgb"), the mode, the
      channels fitted ("deblurred") and taken from the input
      ("kept_from_input"), and a "note" (or None).
    """
    if x.ndim == 2 or x.shape[2] == 1:
        note = ("grey input: color='rgb' runs one channel and the result is grey" if mode == "rgb" else None)
        return x.reshape(*x.shape[:2], 1), None, {"input": "gray", "mode": mode, "deblurred": ["gray"],
                                                   "kept_from_input": [], "note": note}
    if mode == "rgb":
        return x, None, {"input": "rgb", "mode": mode, "deblurred": ["R", "G", "B"], "kept_from_input": [],
                         "note": None}
    ycc = np.asarray(rgb_to_ycbcr(x))
    return ycc[..., :1], ycc[..., 1:], {"input": "rgb", "mode": mode, "deblurred": ["Y"],
                                        "kept_from_input": ["Cb", "Cr"], "note": None}


def merge_color(fitted: np.ndarray, chroma: np.ndarray | None, *, shape: tuple[int, ...]) -> np.ndarray:
    """The fitted channels back in the input's layout (the inverse of `split_color`).

    Args:
      fitted: (H, W, C) channels a method restored.
      chroma: the (H, W, 2) chroma `split_color` kept aside, or None.
      shape: the input's shape ((H, W), (H, W, 1) or (H, W, 3)).

    Returns:
      luma + chroma converted to RGB and clipped to [0, 1], or the fitted
      channels reshaped to `shape` (grey stays grey, "rgb" stays RGB).
    """
    if chroma is not None:
        return np.clip(np.asarray(ycbcr_to_rgb(np.concatenate([fitted, chroma], axis=-1))), 0, 1)
    return fitted.reshape(shape)


__all__ = ["COLOR_MODES", "rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_y", "rgb_to_gray", "split_color", "merge_color"]
