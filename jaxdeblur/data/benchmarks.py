"""Benchmarks and fixed test sets: Levin et al., Lai et al., synthetic blur sets and sample photos.

Every loader returns `DeblurItem`s of NumPy float32 arrays in [0, 1] with
kernels in the library's blur convention (TRUE convolution, centre tap
(kh // 2, kw // 2); see `jaxdeblur.forward.blur`).

The data root (`default_root`) is $JAXDEBLUR_DATA when set, else the folder
``shared/data`` beside the repository checkout; the Levin set lives in
``<root>/levin``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

import jax
import numpy as np
from skimage import data as skdata
from skimage.transform import resize

from jaxdeblur.color import rgb_to_gray
from jaxdeblur.forward import MODES, blur
from jaxdeblur.io import load_image, load_kernel_png, load_kernels_npz
from jaxdeblur.kernels import flip
from jaxdeblur.noise import add_gaussian_noise

# Kernel supports SelfDeblur estimates on Levin (the true kernels are 19, 17,
# 15, 27, 13, 21, 23, 23 px wide including their zero margins).
LEVIN_KERNEL_SIZES: Mapping[str, int] = MappingProxyType(
    {"kernel1": 17, "kernel2": 15, "kernel3": 13, "kernel4": 27, "kernel5": 11, "kernel6": 19, "kernel7": 21, "kernel8": 21}
)
# skimage.data photos bundled in the scikit-image wheel (no download needed).
SAMPLE_PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "rocket", "page", "text", "coins")


@dataclasses.dataclass(frozen=True, eq=False)
class DeblurItem:
    """One deblurring problem.

    name: e.g. "im1_kernel1" or "astronaut_k3".
    blurred: the observed image, (H, W) or (H, W, C) float32.
    sharp: the ground truth with the same shape, aligned with `blurred`.
    kernel: (kh, kw) float32, sum 1, such that blurred ~ blur(sharp, kernel)
      (for Levin up to a small shift and noise: see `levin`).
    """

    name: str
    blurred: np.ndarray
    sharp: np.ndarray
    kernel: np.ndarray


def default_root() -> Path:
    """The data root: $JAXDEBLUR_DATA if set, else <checkout>/../shared/data."""
    env = os.environ.get("JAXDEBLUR_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def levin(root=None) -> list[DeblurItem]:
    """The 32 items of Levin et al. 2009 (4 images x 8 kernels), im1_kernel1 .. im4_kernel8.

    `blurred` and `sharp` are (255, 255) float32; `kernel` is the float kernel
    of ``kernels_float.npz`` rotated by 180 degrees. The distributed kernels
    are correlation kernels (the blurred images are reproduced by correlating
    the sharp ones with them, as in SelfDeblur's code), so the rotation makes
    them blur (true convolution) kernels: ``blur(sharp, kernel, "valid")``
    matches `blurred` within a few pixels of shift (the kernels are not
    centred) and the camera noise, at 40-47 dB after a half-pixel-grid shift
    search. The kernels are 19 to 27 px; SelfDeblur's estimation sizes are
    in `LEVIN_KERNEL_SIZES`. The 8-bit ``gt/kernelJ.png`` files are not used:
    ``kernel4.png`` and ``kernel8.png`` are stored rotated by 180 degrees
    relative to the float kernels (the other six agree with them).

    Args:
      root: data root holding ``levin/`` (default `default_root()`).

    Raises:
      FileNotFoundError: the data (or one of its files) is missing; the
        message says how to point JAXDEBLUR_DATA at it.
    """
    root = default_root() if root is None else Path(os.fspath(root))
    folder = root / "levin"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Levin data not found at {folder}: set the JAXDEBLUR_DATA environment variable to the "
            "folder that holds levin/ (with gt/im1..4.png, imI_kernelJ_img.png, kernels_float.npz)"
        )
    names = [(i, j) for i in range(1, 5) for j in range(1, 9)]
    needed = [folder / "kernels_float.npz"] + [folder / "gt" / f"im{i}.png" for i in range(1, 5)]
    needed += [folder / f"im{i}_kernel{j}_img.png" for i, j in names]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"incomplete Levin data in {folder}: missing {', '.join(missing[:4])}"
            + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            + "; set JAXDEBLUR_DATA to a complete copy"
        )
    kernels = load_kernels_npz(folder / "kernels_float.npz")
    sharp = {i: load_image(folder / "gt" / f"im{i}.png") for i in range(1, 5)}
    return [
        DeblurItem(
            name=f"im{i}_kernel{j}",
            blurred=load_image(folder / f"im{i}_kernel{j}_img.png"),
            sharp=sharp[i],
            kernel=np.ascontiguousarray(flip(kernels[f"kernel{j}"])),
        )
        for i, j in names
    ]


LAI_CATEGORIES = ("manmade", "natural", "people", "saturated", "text")


def lai(root, *, categories: Sequence[str] = LAI_CATEGORIES, flip_kernels: bool = False) -> list[DeblurItem]:
    """Lai et al. 2016's uniform blur set in its folder layout, colour (H, W, 3) items.

    Layout (as distributed: 5 categories x 5 images x 4 kernels = 100 items)::

        root/ground_truth/<category>_<NN>.png                 sharp images
        root/kernels/kernel_<KK>.png  (or root/kernel/...)    8/16-bit kernel images
        root/blurred/<category>_<NN>_kernel_<KK>.png          blurred inputs

    Every file in ``blurred/`` named ``<image>_kernel_<KK>.png`` (any image
    extension) becomes an item ``<image>_kernel_<KK>`` (sorted by name), with
    the ground truth ``ground_truth/<image>.*`` and the kernel
    ``kernel_<KK>.*`` scaled to sum 1. Kernel sizes are 31, 51, 55 and 75 px.
    No data ships with the library; images are read as RGB float32 in [0, 1]
    (evaluate them with `lai_psnr_ssim`, on MATLAB's Y channel).

    Args:
      root: the folder holding ``ground_truth/``, ``kernels/`` and ``blurred/``.
      categories: keep only images whose name starts with one of these.
      flip_kernels: rotate the kernels by 180 degrees. The files are used as
        stored by default (taken as blur, i.e. true-convolution, kernels);
        their orientation has not been checked against the data here.

    Raises:
      FileNotFoundError: a folder, or the ground truth / kernel of a blurred
        image, is missing (the message names it).
      ValueError: a blurred file name not of the form above, or a blurred
        image whose shape differs from its ground truth.
    """
    root = Path(os.fspath(root))
    kernel_dir = root / "kernels" if (root / "kernels").is_dir() else root / "kernel"
    for folder in (root / "ground_truth", kernel_dir, root / "blurred"):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"Lai data folder {folder} not found: `lai(root)` expects root/ground_truth, root/kernels "
                "and root/blurred (Lai et al. 2016's uniform set)"
            )

    def find(folder: Path, stem: str, what: str) -> Path:
        hits = sorted(p for p in folder.glob(f"{stem}.*") if p.is_file())
        if not hits:
            raise FileNotFoundError(f"no {what} {folder / stem}.* for the Lai item")
        return hits[0]

    items = []
    for path in sorted(p for p in (root / "blurred").iterdir() if p.is_file() and not p.name.startswith(".")):
        image, sep, kernel = path.stem.rpartition("_kernel_")
        if not sep or not image or not kernel:
            raise ValueError(f"Lai blurred file {path.name!r} is not named <category>_<NN>_kernel_<KK>.<ext>")
        if not image.startswith(tuple(categories)):
            continue
        sharp = load_image(find(root / "ground_truth", image, "ground truth"), mode="rgb")
        blurred = load_image(path, mode="rgb")
        if blurred.shape != sharp.shape:
            raise ValueError(f"Lai item {path.stem}: blurred {blurred.shape} and ground truth {sharp.shape} differ")
        k = load_kernel_png(find(kernel_dir, f"kernel_{kernel}", "kernel"), flip=flip_kernels)
        items.append(DeblurItem(name=path.stem, blurred=blurred, sharp=sharp, kernel=k))
    return items


def lai_psnr_ssim(estimate, sharp, *, max_shift: float = 5.0, crop: int = 15) -> tuple[float, float]:
    """Lai et al.'s metrics: aligned PSNR (dB) / SSIM on the Y channel of MATLAB ``rgb2ycbcr``.

    estimate, sharp: (H, W, 3) RGB in [0, 1] (an (H, W) estimate is taken as
    already being Y). Both are converted with `jaxdeblur.color.rgb_to_y`
    (studio range; NOT OpenCV's full-range YCrCb), then compared by
    `jaxdeblur.metrics.aligned_psnr_ssim` (sub-pixel shift search up to
    `max_shift` px, `crop` px removed from every border) at peak 1 (= 255 on
    8-bit images).
    """
    from jaxdeblur.color import rgb_to_y
    from jaxdeblur.metrics import aligned_psnr_ssim

    def y(x):
        x = np.asarray(x, np.float32)
        return x if x.ndim == 2 else np.asarray(rgb_to_y(x))

    p, s, _ = aligned_psnr_ssim(y(estimate), y(sharp), max_shift=max_shift, crop=crop)
    return float(p), float(s)


def levin_kernel_size(name: str) -> int:
    """SelfDeblur's kernel size for a Levin item or kernel name ("im2_kernel4" or "kernel4" -> 27)."""
    key = name.rsplit("_", 1)[-1]
    if key not in LEVIN_KERNEL_SIZES:
        raise ValueError(f"not a Levin item or kernel name: {name!r} (expected e.g. 'im1_kernel4' or 'kernel4')")
    return LEVIN_KERNEL_SIZES[key]


def synthetic_set(
    images: Mapping[str, np.ndarray],
    kernels: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    *,
    noise_sigma: float = 0.01,
    seed: int = 0,
    mode: str = "valid",
    quantize: bool = True,
) -> list[DeblurItem]:
    """Blur every image with every kernel and add Gaussian noise.

    blurred = blur(sharp, kernel, mode) + noise_sigma * N(0, 1), the noise
    drawn with ``jax.random.fold_in(jax.random.key(seed), p)`` for the p-th
    (image, kernel) pair (images outer, kernels inner), so a set is
    reproducible from its seed. In "valid" mode `blurred` is smaller than the
    input by (kh - 1, kw - 1) and the item's `sharp` is the input cropped to
    the same footprint (the pixels under each blurred pixel's centre tap), so
    blurred and sharp always have equal shapes and are aligned.

    Args:
      images: {name: sharp image (H, W) or (H, W, C) float in [0, 1]}.
      kernels: {name: (kh, kw) kernel}, or a sequence named k1, k2, ...
      noise_sigma: noise standard deviation (image units), >= 0.
      seed: integer seed of the noise.
      mode: a `jaxdeblur.forward.blur` mode.
      quantize: clip to [0, 1] and round to 8-bit levels (like a saved
        camera image); False keeps the plain Gaussian model (values may leave
        [0, 1]).

    Returns:
      DeblurItems named "<image>_<kernel>" (e.g. "astronaut_k3"), float32.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not noise_sigma >= 0:
        raise ValueError(f"noise_sigma must be >= 0, got {noise_sigma!r}")
    if not isinstance(images, Mapping):
        raise TypeError("images must be a mapping {name: image}, e.g. the dict from sample_photos()")
    named_kernels = dict(kernels) if isinstance(kernels, Mapping) else {f"k{i + 1}": k for i, k in enumerate(kernels)}
    base = jax.random.key(seed)
    items = []
    for i, (image_name, sharp) in enumerate(images.items()):
        sharp = np.asarray(sharp, dtype=np.float32)
        for j, (kernel_name, kernel) in enumerate(named_kernels.items()):
            kernel = np.asarray(kernel, dtype=np.float32)
            if kernel.ndim != 2:
                raise ValueError(f"kernel {kernel_name!r} must have shape (kh, kw), got {kernel.shape}")
            clean = np.asarray(blur(sharp, kernel, mode))
            key = jax.random.fold_in(base, i * len(named_kernels) + j)
            noisy = np.asarray(add_gaussian_noise(key, clean, noise_sigma, quantize=quantize, clip=quantize))
            target = sharp
            if mode == "valid":
                kh, kw = kernel.shape
                top, left = kh - 1 - kh // 2, kw - 1 - kw // 2
                target = sharp[top : top + clean.shape[0], left : left + clean.shape[1]]
            items.append(
                DeblurItem(
                    name=f"{image_name}_{kernel_name}",
                    blurred=np.ascontiguousarray(noisy, dtype=np.float32),
                    sharp=np.ascontiguousarray(target),
                    kernel=kernel,
                )
            )
    return items


def sample_photos(names: Sequence[str] = SAMPLE_PHOTOS, size: int = 256, gray: bool = True) -> dict[str, np.ndarray]:
    """Sharp photos from `skimage.data` (bundled in the wheel, no download), as float32 in [0, 1].

    Each photo is centre-cropped to a square of its short side and resized
    to size x size (skimage.transform.resize, bilinear, anti-aliased when
    shrinking). Short sides: camera/astronaut 512, rocket 427, coffee 400,
    coins 303, chelsea 300, page 191, text 172; photos shorter than `size`
    are upsampled and so slightly soft. Colour photos become gray by BT.601 luma
    (`jaxdeblur.color.rgb_to_gray`) when `gray`; gray photos are repeated to
    3 channels when not.

    Args:
      names: a subset of `SAMPLE_PHOTOS`.
      size: output side in pixels, >= 8.
      gray: (size, size) outputs if True, else (size, size, 3).

    Returns:
      {name: image} in the order of `names`.
    """
    unknown = [n for n in names if n not in SAMPLE_PHOTOS]
    if unknown:
        raise ValueError(f"unknown sample photo(s) {unknown}; choose from {SAMPLE_PHOTOS}")
    if int(size) != size or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    photos = {}
    for name in names:
        img = getattr(skdata, name)().astype(np.float32) / 255.0
        h, w = img.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        img = img[top : top + side, left : left + side]
        if gray and img.ndim == 3:
            img = np.asarray(rgb_to_gray(img))
        elif not gray and img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        img = resize(img, (int(size), int(size)) + img.shape[2:], order=1, anti_aliasing=side > size)
        photos[name] = np.ascontiguousarray(np.clip(img, 0.0, 1.0), dtype=np.float32)
    return photos


__all__ = [
    "DeblurItem",
    "LEVIN_KERNEL_SIZES",
    "SAMPLE_PHOTOS",
    "default_root",
    "LAI_CATEGORIES",
    "lai",
    "lai_psnr_ssim",
    "levin",
    "levin_kernel_size",
    "synthetic_set",
    "sample_photos",
]
