"""Reading and writing images and kernels (NumPy in, NumPy out).

`load_image` returns float32 in [0, 1]: (H, W) for mode "gray", (H, W, 3) for
mode "rgb", and the file's own kind for mode "auto" ((H, W) for grey files,
(H, W, 3) for colour ones). It reads everything PIL reads, with these rules:

* 8-bit data is divided by 255, 16-bit grayscale PNGs (PIL modes "I;16*", or
  "I" from older PIL versions) by 65535, so no precision is lost; 1-bit images
  become 0/1. PIL decodes 16-bit *RGB* PNGs to 8 bits per channel itself.
* Palette ("P", "PA") and other colour modes (CMYK, YCbCr, ...) are converted
  to RGB by PIL.
* An alpha channel (LA, RGBA, PA, palette transparency) is dropped; a warning
  is issued when it is not fully opaque (the result is then not what a viewer
  composited on a background shows).
* The EXIF orientation tag is applied (`PIL.ImageOps.exif_transpose`), so
  phone photos come out upright.
* Gray from colour is the full-range ITU-R BT.601 luma
  0.299 R + 0.587 G + 0.114 B (`jaxdeblur.color.rgb_to_gray`, the weights of
  PIL's "L" conversion), computed in float from the full-precision channels;
  RGB from gray repeats the channel.

A file that cannot be decoded (empty, truncated, corrupted, not an image, a
directory) raises `ImageReadError` (a ValueError) naming it, whatever the
decoder's own exception was; a missing file raises FileNotFoundError.

`save_image` writes 8-bit files (format from the suffix; use .png for
lossless), `save_kernel` a viewable kernel image. The MATLAB-compatible
YCbCr conversions are re-exported from `jaxdeblur.color`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jaxdeblur.color import rgb_to_gray, rgb_to_ycbcr, ycbcr_to_rgb

_MODES = ("gray", "rgb", "auto")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_NATIVE_MODES = ("1", "L", "LA", "RGB", "RGBA", "F")


class ImageReadError(ValueError):
    """An image file exists but cannot be read as an image (the message names the file and why)."""


def _pixels(img: Image.Image, path: Path) -> np.ndarray:
    """PIL image -> float64 (H, W) or (H, W, 3) in [0, 1], alpha dropped."""
    if img.mode in _SIXTEEN_BIT_MODES:
        return np.asarray(img).astype(np.float64) / 65535.0
    if img.mode not in _NATIVE_MODES:
        has_alpha = "A" in img.mode or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    arr = np.asarray(img).astype(np.float64)
    if img.mode in ("1", "F"):
        return arr
    arr = arr / 255.0
    if img.mode in ("LA", "RGBA"):
        if np.any(arr[..., -1] < 1.0):
            warnings.warn(
                f"{path}: dropping a non-opaque alpha channel (the colour values are kept as stored)",
                stacklevel=3,
            )
        arr = arr[..., :-1]
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    return arr


def load_image(path, *, mode: str = "gray") -> np.ndarray:
    """Read an image file as float32 in [0, 1].

    Args:
      path: file path (str or PathLike).
      mode: "gray" -> (H, W), "rgb" -> (H, W, 3), "auto" -> (H, W) for a grey
        file (modes 1, L, LA, I;16, I, F) and (H, W, 3) for any other. See the
        module docstring for bit depths, palettes, alpha, EXIF orientation and
        the gray conversion.

    Returns:
      np.float32 array, C-contiguous.

    Raises:
      FileNotFoundError: no file at `path`.
      ImageReadError (a ValueError): a path that is a directory, or a file
        that is empty, not an image, truncated/corrupt, or holds a zero-size
        image (the message names it).
      ValueError: unknown `mode`.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"no image file at {path}")
    if path.is_dir():
        raise ImageReadError(f"cannot read image {path}: it is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"cannot read image {path}: the file is empty (0 bytes)")
    arr = _decode(path)
    if mode == "gray" and arr.ndim == 3:
        arr = np.asarray(rgb_to_gray(arr.astype(np.float32)))
    elif mode == "rgb" and arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return np.ascontiguousarray(arr, dtype=np.float32)


def _decode(path: Path) -> np.ndarray:
    """The file's pixels as float64 (H, W) or (H, W, 3); every decoder failure becomes ImageReadError.

    PIL's plugins raise many exception types on damaged data (OSError,
    SyntaxError, struct.error, IndexError, EOFError, DecompressionBombError,
    ...), so any exception from decoding is reported as one error type.
    """
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.width == 0 or img.height == 0:
                raise ImageReadError(f"cannot read image {path}: it has zero size {img.size}")
            return _pixels(img, path)
    except ImageReadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from err
    except (Exception, MemoryError) as err:  # noqa: BLE001 - a damaged file can make any decoder step fail
        raise ImageReadError(f"cannot read image {path}: damaged or truncated data "
                             f"({type(err).__name__}: {err})") from err


def save_image(path, x) -> Path:
    """Write a float image in [0, 1] as an 8-bit file, creating parent folders.

    Args:
      path: destination; the format follows the suffix (.png is lossless).
      x: (H, W), (H, W, 1) or (H, W, 3) floating array (NumPy or JAX); values
        are clipped to [0, 1], then rounded to the nearest of 0..255.

    Returns:
      The path written, as a Path.

    Raises:
      TypeError: non-floating input (8-bit data should be divided by 255 first).
      ValueError: another shape, an empty image, or NaN/inf values.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"save_image expects a float image in [0, 1], got dtype {x.dtype}")
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if not (x.ndim == 2 or (x.ndim == 3 and x.shape[-1] == 3)):
        raise ValueError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got {x.shape}")
    if x.size == 0:
        raise ValueError(f"cannot save an empty image of shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("image contains NaN or infinite values")
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.round(np.clip(x.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def save_kernel(path, k, *, upscale: int = 1) -> Path:
    """Write a kernel as a viewable 8-bit image: scaled so its maximum is white.

    Args:
      path: destination (.png recommended); parent folders are created.
      k: (kh, kw) kernel (NumPy or JAX); negative values show as black.
      upscale: integer nearest-neighbour magnification, so that small kernels
        stay visible (each tap becomes an upscale x upscale block).

    Returns:
      The path written, as a Path.
    """
    # Imported here: jaxdeblur.kernels imports this module for its PNG loader.
    from jaxdeblur.kernels import to_image

    k = np.asarray(k)
    if k.ndim != 2:
        raise ValueError(f"kernel must have shape (kh, kw), got {k.shape}")
    if int(upscale) != upscale or upscale < 1:
        raise ValueError(f"upscale must be a positive integer, got {upscale}")
    view = np.asarray(to_image(k.astype(np.float32)))
    view = np.repeat(np.repeat(view, int(upscale), axis=0), int(upscale), axis=1)
    return save_image(path, view)


def load_kernel_png(path, *, flip: bool = False) -> np.ndarray:
    """Read a kernel stored as a grayscale (8- or 16-bit) image, scaled to sum 1.

    Args:
      path: image file (colour files are converted to gray).
      flip: rotate by 180 degrees (e.g. to turn a correlation kernel into a
        convolution kernel, or to undo a rotated PNG).

    Returns:
      (kh, kw) np.float32, non-negative, sum 1.

    Raises:
      FileNotFoundError / ValueError: as `load_image`; ValueError
      also for an all-black image.
    """
    k = load_image(path, mode="gray").astype(np.float64)
    if flip:
        k = k[::-1, ::-1]
    total = k.sum()
    if total <= 0:
        raise ValueError(f"kernel image {path} is all zero")
    return np.ascontiguousarray(k / total, dtype=np.float32)


def load_kernels_npz(path) -> dict[str, np.ndarray]:
    """Read an .npz of float kernels (e.g. Levin's ``kernels_float.npz``) as {name: (kh, kw) float32}.

    Kernels are returned as stored (no flip; Levin's are correlation kernels,
    see `jaxdeblur.data.levin`), renormalised to sum 1 in float32, in the
    file's order.

    Args:
      path: the .npz file.

    Returns:
      {name: (kh, kw) float32 kernel}.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: an unreadable file, or an array that is not a 2-D
        non-negative kernel with a positive sum.
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"no kernel file at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: np.asarray(npz[name], dtype=np.float64) for name in npz.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read kernels from {path}: {err}") from err
    kernels = {}
    for name, k in arrays.items():
        if k.ndim != 2 or np.any(k < 0) or not k.sum() > 0:
            raise ValueError(f"{path}: array {name!r} of shape {k.shape} is not a non-negative 2-D kernel")
        kernels[name] = np.ascontiguousarray(k / k.sum(), dtype=np.float32)
    return kernels


__all__ = ["ImageReadError", "load_image", "save_image", "save_kernel", "load_kernel_png", "load_kernels_npz",
           "rgb_to_ycbcr", "ycbcr_to_rgb"]
